//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

pub mod prooflog;

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey};

pub fn vector_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(rel)
}

pub fn read_vector(rel: &str) -> String {
    std::fs::read_to_string(vector_path(rel)).unwrap()
}

/// A software Ed25519 note signer, standing in for the HSM in tests.
pub struct TestEd25519Signer {
    pub name: String,
    pub key: ed25519_dalek::SigningKey,
    pub vkey: VerifierKey,
}

impl TestEd25519Signer {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let vkey = VerifierKey::ed25519(name, key.verifying_key().as_bytes()).unwrap();
        Self {
            name: name.to_owned(),
            key,
            vkey,
        }
    }

    /// From a Go `PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>` line.
    pub fn from_go_skey(skey: &str) -> Self {
        let parts: Vec<&str> = skey.trim().splitn(5, '+').collect();
        assert_eq!(&parts[..2], ["PRIVATE", "KEY"]);
        let raw = STANDARD.decode(parts[4]).unwrap();
        assert_eq!(raw[0], 1);
        let signer = Self::from_seed(parts[2], raw[1..].try_into().unwrap());
        assert_eq!(signer.vkey.key_id().to_string(), parts[3]);
        signer
    }
}

impl NoteSigner for TestEd25519Signer {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> KeyId {
        self.vkey.key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// A software ECDSA P-256 note signer producing DER signatures.
pub struct TestP256Signer {
    pub name: String,
    pub key: p256::ecdsa::SigningKey,
    pub vkey: VerifierKey,
}

impl TestP256Signer {
    pub fn from_scalar(name: &str, scalar: [u8; 32]) -> Self {
        use p256::pkcs8::EncodePublicKey as _;
        let key = p256::ecdsa::SigningKey::from_slice(&scalar).unwrap();
        let der = key.verifying_key().to_public_key_der().unwrap();
        let vkey = VerifierKey::ecdsa_p256(name, der.as_bytes()).unwrap();
        Self {
            name: name.to_owned(),
            key,
            vkey,
        }
    }
}

impl NoteSigner for TestP256Signer {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> KeyId {
        self.vkey.key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.key.sign(msg);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// A signer whose device is gone.
pub struct FailingSigner(pub VerifierKey);

impl NoteSigner for FailingSigner {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn key_id(&self) -> KeyId {
        self.0.key_id()
    }
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        Err("token removed".into())
    }
}
