//! The body of the `webauthn` fuzz target (`fuzz/fuzz_targets/webauthn.rs`),
//! kept here so the committed seed corpus also runs as an ordinary test
//! (`tests/fuzz_corpus.rs`). Not part of the API.
//!
//! Input: one mode byte, then length-prefixed parts (u16 big-endian length,
//! then that many bytes; a short last part takes what is left).
//!
//! | mode % 4 | parts | drives |
//! | --- | --- | --- |
//! | 0 | attestation root (DER), registration JSON | JSON, then every registration check |
//! | 1 | stored credential JSON, assertion JSON | JSON, then every assertion check |
//! | 2 | root (DER), clientDataJSON, attestationObject | the CBOR, authenticator data, COSE, attestation and X.509 parsers directly |
//! | 3 | COSE key, credential id, clientDataJSON, authenticatorData, signature, stored counter (4 bytes) | the assertion checks directly |
//!
//! Checks beyond "no panic": the same input gives the same answer twice,
//! and an accepted credential survives its JSON round trip. Returns
//! whether the ceremony was accepted, so the seed test can check that the
//! good seeds still reach the end of every check.

use crate::b64;
use crate::credential::{CredentialId, StoredCredential};
use crate::rp::{RelyingParty, UserVerification};
use crate::trust::AttestationTrust;
use crate::wire::{
    AssertionResponse, AttestationResponse, AuthenticatorAssertion, RegistrationResponse,
};
use crate::{verify_assertion, verify_registration};

/// The relying party id the seeds are made for.
pub const RP_ID: &str = "signet.example.com";
/// The origin the seeds are made for.
pub const ORIGIN: &str = "https://signet.example.com";
/// The challenge the seeds answer.
pub const CHALLENGE: [u8; 32] = [0x42; 32];

fn rp() -> RelyingParty {
    // Built directly: these constants are what `RelyingParty::new` would
    // produce, and the fuzz body must not depend on its checks.
    RelyingParty {
        rp_id: RP_ID.into(),
        rp_name: "Signet".into(),
        origins: vec![ORIGIN.into()],
        user_verification: UserVerification::Preferred,
    }
}

/// Splits `data` into length-prefixed parts.
pub fn parts(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        data = &rest[take..];
    }
    out
}

/// Joins parts into the input format (for seeds).
pub fn join(mode: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![mode];
    for part in parts {
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&part[..usize::from(len)]);
    }
    out
}

fn trust(root: &[u8]) -> AttestationTrust {
    let mut trust = AttestationTrust::default();
    // A root that does not parse leaves only the opt-in below.
    let _ = trust.add_root_der(root);
    trust.set_allow_none(true);
    trust
}

fn registration(trust: &AttestationTrust, response: &RegistrationResponse) -> bool {
    let rp = rp();
    let first = verify_registration(&rp, trust, &CHALLENGE, response);
    let second = verify_registration(&rp, trust, &CHALLENGE, response);
    assert_eq!(first, second, "same registration, different answers");
    if let Ok(cred) = &first {
        let json = serde_json::to_string(cred).unwrap_or_default();
        let back: Option<StoredCredential> = serde_json::from_str(&json).ok();
        assert_eq!(back.as_ref(), Some(cred), "stored credential round trip");
    }
    first.is_ok()
}

fn assertion(cred: &StoredCredential, response: &AssertionResponse) -> bool {
    let rp = rp();
    let mut accepted = false;
    for require_uv in [false, true] {
        let first = verify_assertion(&rp, &CHALLENGE, cred, response, require_uv);
        let second = verify_assertion(&rp, &CHALLENGE, cred, response, require_uv);
        assert_eq!(first, second, "same assertion, different answers");
        accepted |= first.is_ok();
    }
    accepted
}

/// One fuzz input; whether a ceremony was accepted.
pub fn one_input(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let p = parts(rest);
    let part = |i: usize| p.get(i).copied().unwrap_or_default();
    match mode % 4 {
        0 => serde_json::from_slice::<RegistrationResponse>(part(1))
            .is_ok_and(|response| registration(&trust(part(0)), &response)),
        1 => {
            let cred = serde_json::from_slice::<StoredCredential>(part(0));
            let response = serde_json::from_slice::<AssertionResponse>(part(1));
            match (cred, response) {
                (Ok(cred), Ok(response)) => assertion(&cred, &response),
                _ => false,
            }
        }
        2 => {
            let response = RegistrationResponse {
                id: String::new(),
                raw_id: String::new(),
                response: AttestationResponse {
                    client_data_json: b64::encode(part(1)),
                    attestation_object: b64::encode(part(2)),
                    transports: None,
                    authenticator_data: None,
                    public_key: None,
                    public_key_algorithm: None,
                },
                type_: "public-key".into(),
                authenticator_attachment: None,
                client_extension_results: None,
                extensions: None,
            };
            registration(&trust(part(0)), &response)
        }
        _ => {
            let counter = part(5);
            let cred = StoredCredential {
                id: CredentialId(part(1).to_vec()),
                public_key_cose: part(0).to_vec(),
                algorithm: crate::cose::CoseKey::from_bytes(part(0)).map_or(0, |k| k.alg),
                sign_count: u32::from_be_bytes([
                    counter.first().copied().unwrap_or(0),
                    counter.get(1).copied().unwrap_or(0),
                    counter.get(2).copied().unwrap_or(0),
                    counter.get(3).copied().unwrap_or(0),
                ]),
                aaguid: [0; 16],
                attestation_format: "none".into(),
                user_verified_at_registration: false,
            };
            let response = AssertionResponse {
                id: b64::encode(part(1)),
                raw_id: b64::encode(part(1)),
                response: AuthenticatorAssertion {
                    client_data_json: b64::encode(part(2)),
                    authenticator_data: b64::encode(part(3)),
                    signature: b64::encode(part(4)),
                    user_handle: None,
                },
                type_: "public-key".into(),
                authenticator_attachment: None,
                client_extension_results: None,
                extensions: None,
            };
            assertion(&cred, &response)
        }
    }
}
