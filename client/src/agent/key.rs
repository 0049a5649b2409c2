//! Who signs for the agent: the YubiKey in practice, a key in memory in tests.

use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PrivateKey, Signature};

/// How an RSA key signs (`SSH_AGENT_RSA_SHA2_*`); other key types have one
/// algorithm and ignore it. SHA-1 (`ssh-rsa`) is never offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaHash {
    /// `rsa-sha2-256`.
    Sha256,
    /// `rsa-sha2-512`.
    Sha512,
}

impl From<RsaHash> for HashAlg {
    fn from(hash: RsaHash) -> Self {
        match hash {
            RsaHash::Sha256 => HashAlg::Sha256,
            RsaHash::Sha512 => HashAlg::Sha512,
        }
    }
}

/// Why a key could not sign. The agent logs it and answers
/// `SSH_AGENT_FAILURE`; the client learns nothing more.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key this signer holds is not the certificate's key.
    #[error(
        "the certificate is for another key than the one this agent signs with; run `signet login`"
    )]
    WrongKey,
    /// No PIN could be had (no `SIGNET_PIN_FILE`, no terminal).
    #[error("no PIN available: {0}")]
    NoPin(String),
    /// The key type or hash is not one this signer can produce.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The device (or the key) failed to sign.
    #[error("signing failed: {0}")]
    Device(String),
}

/// A private key the agent signs with. The agent has already checked that
/// the request names the certificate's key and that the certificate is
/// valid; an implementation checks that `public` is the key it holds.
///
/// Signing may block (a card, a touch): the agent calls it off its I/O
/// thread, one signature at a time.
pub trait AgentKey: Send + Sync {
    /// Signs `data` as an SSH signature of `public`'s algorithm (ECDSA
    /// P-256 hashes with SHA-256; `rsa` says the hash for an RSA key).
    fn sign(
        &self,
        public: &KeyData,
        data: &[u8],
        rsa: Option<RsaHash>,
    ) -> Result<Signature, KeyError>;
}

/// An OpenSSH private key held in memory: for tests and benchmarks, where
/// the certificate is issued for a key made on the spot.
pub struct SoftKey {
    key: PrivateKey,
}

impl std::fmt::Debug for SoftKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftKey")
            .field("public", &self.key.public_key().algorithm())
            .finish_non_exhaustive()
    }
}

impl SoftKey {
    /// Holds `key` (unencrypted).
    pub fn new(key: PrivateKey) -> Self {
        Self { key }
    }
}

impl AgentKey for SoftKey {
    fn sign(
        &self,
        public: &KeyData,
        data: &[u8],
        rsa: Option<RsaHash>,
    ) -> Result<Signature, KeyError> {
        use signature::Signer as _;
        if self.key.public_key().key_data() != public {
            return Err(KeyError::WrongKey);
        }
        let signed = match (self.key.key_data(), rsa) {
            (ssh_key::private::KeypairData::Rsa(rsa_key), Some(hash)) => {
                (rsa_key, Some(HashAlg::from(hash))).try_sign(data)
            }
            (ssh_key::private::KeypairData::Rsa(_), None) => {
                return Err(KeyError::Unsupported("RSA without a SHA-2 hash".into()))
            }
            _ => self.key.try_sign(data),
        };
        signed.map_err(|e| KeyError::Device(e.to_string()))
    }
}
