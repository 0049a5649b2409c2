//! A forge for WebAuthn responses: a scriptable authenticator and client
//! whose every byte a test can set, so each bad input is a good one with
//! one thing changed.

// Test support: a failed set-up is a failed test.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::time::Duration;

use ciborium::Value;
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::Encode;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::elliptic_curve::Generate;
use sha2::{Digest, Sha256};
use signet_webauthn::wire::{
    AssertionResponse, AttestationResponse, AuthenticatorAssertion, RegistrationResponse,
};
use signet_webauthn::{RelyingParty, UserVerification};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

pub const RP_ID: &str = "signet.example.com";
pub const ORIGIN: &str = "https://signet.example.com";
pub const AAGUID: [u8; 16] = [0x5a; 16];
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const AT: u8 = 0x40;
pub const ED: u8 = 0x80;

pub fn rp(uv: UserVerification) -> RelyingParty {
    RelyingParty::new(RP_ID, "Signet", &[ORIGIN], uv).unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn challenge(n: u8) -> [u8; 32] {
    [n; 32]
}

pub fn p256_key() -> SigningKey {
    SigningKey::generate_from_rng(&mut rand::rng())
}

pub fn sign_p256(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let sig: DerSignature = key.sign(message);
    sig.to_bytes().to_vec()
}

/// clientDataJSON as browsers write it.
pub fn client_data(type_: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"{type_}","challenge":"{}","origin":"{origin}","crossOrigin":false}}"#,
        b64(challenge)
    )
    .into_bytes()
}

/// An ES256 COSE_Key.
pub fn cose_es256(key: &SigningKey) -> Vec<u8> {
    let point = key.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    cbor(&Value::Map(vec![
        (1.into(), 2.into()),
        (3.into(), (-7).into()),
        ((-1).into(), 1.into()),
        ((-2).into(), Value::Bytes(bytes[1..33].to_vec())),
        ((-3).into(), Value::Bytes(bytes[33..65].to_vec())),
    ]))
}

/// An EdDSA (Ed25519) COSE_Key.
pub fn cose_ed25519(key: &ed25519_dalek::SigningKey) -> Vec<u8> {
    cbor(&Value::Map(vec![
        (1.into(), 1.into()),
        (3.into(), (-8).into()),
        ((-1).into(), 6.into()),
        (
            (-2).into(),
            Value::Bytes(key.verifying_key().to_bytes().to_vec()),
        ),
    ]))
}

pub fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

/// Authenticator data: rpIdHash, flags, counter, then the rest verbatim.
pub fn auth_data(rp_id: &str, flags: u8, counter: u32, rest: &[u8]) -> Vec<u8> {
    let mut out = Sha256::digest(rp_id.as_bytes()).to_vec();
    out.push(flags);
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(rest);
    out
}

/// Attested credential data.
pub fn attested(aaguid: &[u8; 16], cred_id: &[u8], cose: &[u8]) -> Vec<u8> {
    let mut out = aaguid.to_vec();
    out.extend_from_slice(&u16::try_from(cred_id.len()).unwrap().to_be_bytes());
    out.extend_from_slice(cred_id);
    out.extend_from_slice(cose);
    out
}

pub fn attestation_object(fmt: &str, att_stmt: Value, auth_data: &[u8]) -> Vec<u8> {
    cbor(&Value::Map(vec![
        ("fmt".into(), fmt.into()),
        ("attStmt".into(), att_stmt),
        ("authData".into(), Value::Bytes(auth_data.to_vec())),
    ]))
}

pub fn registration(cred_id: &[u8], client_data: &[u8], object: &[u8]) -> RegistrationResponse {
    RegistrationResponse {
        id: b64(cred_id),
        raw_id: b64(cred_id),
        response: AttestationResponse {
            client_data_json: b64(client_data),
            attestation_object: b64(object),
            transports: Some(vec!["usb".into()]),
            authenticator_data: None,
            public_key: None,
            public_key_algorithm: None,
        },
        type_: "public-key".into(),
        authenticator_attachment: None,
        client_extension_results: Some(serde_json::json!({})),
        extensions: None,
    }
}

pub fn assertion(
    cred_id: &[u8],
    client_data: &[u8],
    auth_data: &[u8],
    signature: &[u8],
) -> AssertionResponse {
    AssertionResponse {
        id: b64(cred_id),
        raw_id: b64(cred_id),
        response: AuthenticatorAssertion {
            client_data_json: b64(client_data),
            authenticator_data: b64(auth_data),
            signature: b64(signature),
            user_handle: None,
        },
        type_: "public-key".into(),
        authenticator_attachment: Some("cross-platform".into()),
        client_extension_results: Some(serde_json::json!({})),
        extensions: None,
    }
}

// ---------------------------------------------------------- certificates

struct Profile {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

pub fn ext(oid: ObjectIdentifier, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).unwrap(),
    }
}

pub fn basic_constraints(ca: bool) -> Extension {
    let bc = x509_cert::ext::pkix::BasicConstraints {
        ca,
        path_len_constraint: None,
    };
    ext(
        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
        true,
        bc.to_der().unwrap(),
    )
}

pub fn aaguid_ext(aaguid: &[u8; 16]) -> Extension {
    ext(
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4"),
        false,
        OctetString::new(aaguid.to_vec()).unwrap().to_der().unwrap(),
    )
}

/// A certificate for `key`'s public half, signed by `signer`.
pub fn certificate(
    subject: &str,
    issuer: &str,
    key: &SigningKey,
    signer: &SigningKey,
    extensions: Vec<Extension>,
) -> Vec<u8> {
    let profile = Profile {
        issuer: Name::from_str(issuer).unwrap(),
        subject: Name::from_str(subject).unwrap(),
        extensions,
    };
    let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).unwrap();
    let validity = Validity::from_now(Duration::from_secs(86400)).unwrap();
    let builder = CertificateBuilder::new(
        profile,
        SerialNumber::generate(&mut rand::rng()),
        validity,
        spki,
    )
    .unwrap();
    builder
        .build::<_, DerSignature>(signer)
        .unwrap()
        .to_der()
        .unwrap()
}

pub const ROOT_NAME: &str = "CN=Forge Attestation Root,O=Signet Tests,C=US";
pub const LEAF_NAME: &str =
    "CN=Forge Key Attestation,OU=Authenticator Attestation,O=Signet Tests,C=US";
pub const CHROMIUM_NAME: &str = "C=US,O=Chromium,OU=Authenticator Attestation,CN=Batch Certificate";

/// An attestation root and a packed attestation key it certified.
pub struct Vendor {
    pub root_key: SigningKey,
    pub root_der: Vec<u8>,
    pub leaf_key: SigningKey,
    pub leaf_der: Vec<u8>,
}

impl Vendor {
    pub fn new() -> Self {
        Self::with_leaf(
            vec![basic_constraints(false), aaguid_ext(&AAGUID)],
            LEAF_NAME,
        )
    }

    pub fn with_leaf(extensions: Vec<Extension>, leaf_name: &str) -> Self {
        let root_key = p256_key();
        let root_der = certificate(
            ROOT_NAME,
            ROOT_NAME,
            &root_key,
            &root_key,
            vec![basic_constraints(true)],
        );
        let leaf_key = p256_key();
        let leaf_der = certificate(leaf_name, ROOT_NAME, &leaf_key, &root_key, extensions);
        Self {
            root_key,
            root_der,
            leaf_key,
            leaf_der,
        }
    }

    pub fn trust(&self) -> signet_webauthn::AttestationTrust {
        let mut trust = signet_webauthn::AttestationTrust::default();
        trust.add_root_der(&self.root_der).unwrap();
        trust
    }
}

// ------------------------------------------------------------ the forge

/// What a registration is made of; tests change one field.
pub struct Registration {
    pub cred_key: SigningKey,
    pub cred_id: Vec<u8>,
    pub cose: Vec<u8>,
    pub aaguid: [u8; 16],
    pub flags: u8,
    pub counter: u32,
    pub rp_id: String,
    pub client_data: Vec<u8>,
    /// Bytes after the attested credential data (extensions).
    pub trailer: Vec<u8>,
    pub fmt: String,
    /// The attestation key and the x5c; `None` = self attestation.
    pub attestation: Option<(SigningKey, Vec<Vec<u8>>)>,
    /// Replaces the statement's signature.
    pub bad_signature: bool,
}

impl Registration {
    /// A good packed registration attested by `vendor`'s leaf.
    pub fn packed(vendor: &Vendor, chal: &[u8; 32]) -> Self {
        let cred_key = p256_key();
        let cose = cose_es256(&cred_key);
        Self {
            cred_key,
            cred_id: vec![0xc1; 48],
            cose,
            aaguid: AAGUID,
            flags: UP | UV | AT,
            counter: 1,
            rp_id: RP_ID.into(),
            client_data: client_data("webauthn.create", chal, ORIGIN),
            trailer: Vec::new(),
            fmt: "packed".into(),
            attestation: Some((vendor.leaf_key.clone(), vec![vendor.leaf_der.clone()])),
            bad_signature: false,
        }
    }

    pub fn auth_data(&self) -> Vec<u8> {
        let mut rest = if self.flags & AT != 0 {
            attested(&self.aaguid, &self.cred_id, &self.cose)
        } else {
            Vec::new()
        };
        rest.extend_from_slice(&self.trailer);
        auth_data(&self.rp_id, self.flags, self.counter, &rest)
    }

    pub fn object(&self) -> Vec<u8> {
        let auth_data = self.auth_data();
        let cdh = Sha256::digest(&self.client_data);
        let stmt = match self.fmt.as_str() {
            "none" => Value::Map(vec![]),
            "fido-u2f" => {
                let (key, x5c) = self.attestation.as_ref().unwrap();
                let point = self.cred_key.verifying_key().to_sec1_point(false);
                let mut signed = vec![0u8];
                signed.extend_from_slice(&Sha256::digest(self.rp_id.as_bytes()));
                signed.extend_from_slice(&cdh);
                signed.extend_from_slice(&self.cred_id);
                signed.extend_from_slice(point.as_bytes());
                let sig = self.maybe_break(sign_p256(key, &signed));
                Value::Map(vec![
                    ("sig".into(), Value::Bytes(sig)),
                    (
                        "x5c".into(),
                        Value::Array(x5c.iter().map(|c| Value::Bytes(c.clone())).collect()),
                    ),
                ])
            }
            _ => {
                let mut signed = auth_data.clone();
                signed.extend_from_slice(&cdh);
                match &self.attestation {
                    Some((key, x5c)) => {
                        let sig = self.maybe_break(sign_p256(key, &signed));
                        Value::Map(vec![
                            ("alg".into(), (-7).into()),
                            ("sig".into(), Value::Bytes(sig)),
                            (
                                "x5c".into(),
                                Value::Array(x5c.iter().map(|c| Value::Bytes(c.clone())).collect()),
                            ),
                        ])
                    }
                    None => {
                        let sig = self.maybe_break(sign_p256(&self.cred_key, &signed));
                        Value::Map(vec![
                            ("alg".into(), (-7).into()),
                            ("sig".into(), Value::Bytes(sig)),
                        ])
                    }
                }
            }
        };
        attestation_object(&self.fmt, stmt, &auth_data)
    }

    fn maybe_break(&self, mut sig: Vec<u8>) -> Vec<u8> {
        if self.bad_signature {
            // Still DER, a different s: an honest-looking wrong signature.
            let last = sig.len() - 1;
            sig[last] ^= 1;
        }
        sig
    }

    pub fn response(&self) -> RegistrationResponse {
        registration(&self.cred_id, &self.client_data, &self.object())
    }
}

/// What an assertion is made of; tests change one field.
pub struct Assertion {
    pub cred_id: Vec<u8>,
    pub flags: u8,
    pub counter: u32,
    pub rp_id: String,
    pub client_data: Vec<u8>,
    pub trailer: Vec<u8>,
}

impl Assertion {
    pub fn new(cred_id: &[u8], chal: &[u8; 32], counter: u32) -> Self {
        Self {
            cred_id: cred_id.to_vec(),
            flags: UP | UV,
            counter,
            rp_id: RP_ID.into(),
            client_data: client_data("webauthn.get", chal, ORIGIN),
            trailer: Vec::new(),
        }
    }

    pub fn auth_data(&self) -> Vec<u8> {
        auth_data(&self.rp_id, self.flags, self.counter, &self.trailer)
    }

    /// Signed by `key` over exactly what is sent.
    pub fn signed_by(&self, key: &SigningKey) -> AssertionResponse {
        let auth_data = self.auth_data();
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&self.client_data));
        let sig = sign_p256(key, &signed);
        assertion(&self.cred_id, &self.client_data, &auth_data, &sig)
    }
}
