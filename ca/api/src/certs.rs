//! Issuance with a touch: `POST /v1/certs/begin`, then `POST /v1/certs/finish`.
//!
//! The client sends its certificate request to `begin`; the CA checks it and
//! answers with WebAuthn request options whose challenge is
//! [`challenge`]`(request_sha256, nonce)`. The client recomputes both from
//! what it sent before the user touches the key, so the touch authorizes
//! exactly this request and no other (a hostile proxy that swapped the key
//! would change the challenge). `finish` carries the assertion; the CA issues
//! an OpenSSH user certificate and an X.509 client certificate for exactly
//! the requested public key, each with its log proof.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use signet_log::entry::{PinPolicy, TouchPolicy};

use crate::log::LogProof;
use crate::webauthn::{AssertionResponse, RequestOptions};
use crate::B64;

/// Domain separator of the request hash.
const REQUEST_DOMAIN: &[u8] = b"signet cert request v1\0";
/// Domain separator of the challenge.
const CHALLENGE_DOMAIN: &[u8] = b"signet cert challenge v1\0";

/// `POST /v1/certs/begin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginRequest {
    /// The enrolled user asking.
    pub user: String,
    /// The key to certify: DER SubjectPublicKeyInfo of the PIV slot key.
    pub public_key: B64,
    /// The PIV attestation chain, DER: the slot's attestation certificate,
    /// then the device's `f9` certificate, then any intermediates.
    pub attestation: Vec<B64>,
    /// SSH logins wanted, in order.
    pub principals: Vec<String>,
    /// Validity wanted, in seconds.
    pub ttl_seconds: u64,
}

impl BeginRequest {
    /// The SHA-256 the challenge commits to: an unambiguous encoding of every
    /// field (each a big-endian u32 length and the bytes, lists prefixed by
    /// their count), after a domain separator.
    pub fn sha256(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(REQUEST_DOMAIN);
        let mut field = |bytes: &[u8]| {
            hash.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
            hash.update(bytes);
        };
        field(self.user.as_bytes());
        field(&self.public_key.0);
        field(
            &u32::try_from(self.attestation.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for cert in &self.attestation {
            field(&cert.0);
        }
        field(
            &u32::try_from(self.principals.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for principal in &self.principals {
            field(principal.as_bytes());
        }
        field(&self.ttl_seconds.to_be_bytes());
        hash.finalize().into()
    }
}

/// The WebAuthn challenge for a request: `SHA-256(domain ‖ request_sha256 ‖ nonce)`.
pub fn challenge(request_sha256: &[u8; 32], nonce: &[u8; 32]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(CHALLENGE_DOMAIN);
    hash.update(request_sha256);
    hash.update(nonce);
    hash.finalize().into()
}

/// The answer to `begin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginResponse {
    /// Names this ceremony in `finish`; single use.
    pub ceremony: String,
    /// The server's nonce (32 bytes).
    pub nonce: B64,
    /// SHA-256 of the request as the CA understood it (32 bytes).
    pub request_sha256: B64,
    /// When the ceremony expires, unix seconds (60 s after begin).
    pub expires_at: u64,
    /// What to pass to `navigator.credentials.get` / the CTAP2 client; its
    /// challenge is [`challenge`]`(request_sha256, nonce)`.
    pub webauthn: RequestOptions,
}

/// `POST /v1/certs/finish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    /// The ceremony from [`BeginResponse::ceremony`].
    pub ceremony: String,
    /// The security key's assertion.
    pub assertion: AssertionResponse,
}

/// The attested hardware key a certificate was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// The YubiKey's serial number.
    pub serial: u32,
    /// PIN policy of the key: `never`, `once` or `always`.
    pub pin_policy: String,
    /// Touch policy of the key: `never`, `always` or `cached`.
    pub touch_policy: String,
}

/// What the user's roles demand of the key to certify: sent with a
/// [`crate::ErrorCode::KeyPolicyTooWeak`] refusal of `begin` (or of `finish`,
/// when the roles changed in between), so the client can tell its user
/// exactly what a qualifying key needs and, with their consent, make one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicyRequired {
    /// The strongest `hardware_key` of the roles that would grant the
    /// request: `attested`, `touch` or `touch_and_pin`.
    pub hardware_key: String,
    /// The PIN policies a qualifying key may have, weakest first.
    pub pin_policies: Vec<PinPolicy>,
    /// The touch policies a qualifying key may have (`always` before `cached`).
    pub touch_policies: Vec<TouchPolicy>,
    /// The PIN policy of the key sent, as its attestation says.
    pub key_pin_policy: PinPolicy,
    /// The touch policy of the key sent, as its attestation says.
    pub key_touch_policy: TouchPolicy,
}

/// An issued OpenSSH user certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshCertificate {
    /// The certificate as one OpenSSH line (`…-cert-v01@openssh.com AAAA…`).
    pub certificate: String,
    /// Its serial, decimal.
    pub serial: String,
    /// Its log entry and proof.
    pub log: LogProof,
}

/// An issued X.509 client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct X509Certificate {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// Its serial, lowercase hex.
    pub serial: String,
    /// Its log entry and proof.
    pub log: LogProof,
}

/// The answer to `finish`: both certificates, for the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishResponse {
    /// Who the certificates are for.
    pub user: String,
    /// The roles that allowed the issuance.
    pub roles: Vec<String>,
    /// The logins in the SSH certificate.
    pub principals: Vec<String>,
    /// Start of validity, unix seconds.
    pub not_before: u64,
    /// End of validity, unix seconds.
    pub not_after: u64,
    /// The attested device holding the key.
    pub device: Device,
    /// The OpenSSH user certificate.
    pub ssh: SshCertificate,
    /// The X.509 client certificate.
    pub x509: X509Certificate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> BeginRequest {
        BeginRequest {
            user: "alice".into(),
            public_key: B64(vec![1, 2, 3]),
            attestation: vec![B64(vec![4]), B64(vec![5, 6])],
            principals: vec!["root".into(), "ubuntu".into()],
            ttl_seconds: 3600,
        }
    }

    /// The vector in docs/api.md, computed independently (Python's hashlib
    /// following the documented encoding): client and CA must agree on it.
    #[test]
    fn request_hash_and_challenge_match_the_documented_vector() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let h = request().sha256();
        assert_eq!(
            hex(&h),
            "dc64468174251d0d01f7451fa7b6870700bc899bad2fe7c28d9c15b59c9b8486"
        );
        assert_eq!(
            hex(&challenge(&h, &[0; 32])),
            "b843805ff28344336440ff66fd2c5c8c6fbf3f6282350b199f4c33ea9f2429b8"
        );
    }

    #[test]
    fn every_field_changes_the_request_hash() {
        let base = request().sha256();
        let mut changed = Vec::new();
        let mut r = request();
        r.user = "alicf".into();
        changed.push(r.sha256());
        let mut r = request();
        r.public_key = B64(vec![1, 2, 4]);
        changed.push(r.sha256());
        let mut r = request();
        r.attestation = vec![B64(vec![4, 5]), B64(vec![6])];
        changed.push(r.sha256());
        let mut r = request();
        r.principals = vec!["rootubuntu".into()];
        changed.push(r.sha256());
        let mut r = request();
        r.ttl_seconds = 3601;
        changed.push(r.sha256());
        for hash in changed {
            assert_ne!(hash, base);
        }
    }

    #[test]
    fn the_challenge_commits_to_request_and_nonce() {
        let h = request().sha256();
        assert_ne!(challenge(&h, &[0; 32]), challenge(&h, &[1; 32]));
        assert_ne!(challenge(&h, &[0; 32]), challenge(&[0; 32], &[0; 32]));
    }

    #[test]
    fn unknown_fields_and_bad_base64_are_refused() {
        let good = serde_json::to_value(request()).unwrap();
        let mut extra = good.clone();
        extra["admin"] = true.into();
        assert!(serde_json::from_value::<BeginRequest>(extra).is_err());
        let mut bad = good.clone();
        bad["public_key"] = "not base64!".into();
        let err = serde_json::from_value::<BeginRequest>(bad).unwrap_err();
        assert!(err.to_string().contains("base64"), "{err}");
        assert!(serde_json::from_value::<BeginRequest>(good).is_ok());
    }
}
