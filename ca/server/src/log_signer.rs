//! The HSM log key as a signed-note signer, so checkpoints are signed inside
//! the token like certificates.
//!
//! Ed25519 keys sign as signed-note type 0x01 (the 64-byte signature of the
//! note text); ECDSA P-256 keys as type 0x02 (a DER signature of SHA-256 of
//! the text). Other key types cannot sign notes; the configuration refuses
//! them for `log_key`.

use signet_hsm::piv::PivKey;
use signet_hsm::{KeyRef, PublicKey, RsaHash, Token};
use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey};

use crate::{Error, Result};

/// Signs checkpoints with the log key on the token or the YubiKey.
pub struct LogSigner {
    key: LogKey,
    public_key: PublicKey,
    verifier: VerifierKey,
}

/// Where the log key lives.
enum LogKey {
    Pkcs11 { token: Token, key: Box<KeyRef> },
    Piv(PivKey),
}

impl LogSigner {
    /// Wraps the token's log key; `origin` is the note key name.
    pub fn new(token: Token, key: KeyRef, origin: &str) -> Result<Self> {
        let public_key = key.public_key().clone();
        Ok(Self {
            verifier: verifier_for(&public_key, origin)?,
            public_key,
            key: LogKey::Pkcs11 {
                token,
                key: Box::new(key),
            },
        })
    }

    /// Wraps a log key in a YubiKey PIV slot (ECDSA P-256).
    pub fn piv(key: PivKey, origin: &str) -> Result<Self> {
        let public_key = key.public_key().clone();
        Ok(Self {
            verifier: verifier_for(&public_key, origin)?,
            public_key,
            key: LogKey::Piv(key),
        })
    }

    /// The matching verifier key (what auditors pin).
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }
}

/// A one-session pool of its own for the log key, so a batch's checkpoint
/// signature never queues behind certificate signatures (and the other way
/// round). The token's login is shared by the whole process.
pub fn dedicated_token(config: &crate::config::Config) -> Result<Token> {
    let mut token_config = config.token_config()?;
    token_config.sessions = std::num::NonZeroUsize::MIN;
    Ok(Token::open(&token_config)?)
}

/// The signed-note verifier key for a log public key.
pub fn verifier_for(public: &PublicKey, origin: &str) -> Result<VerifierKey> {
    match public {
        PublicKey::Ed25519(key) => Ok(VerifierKey::ed25519(origin, key.as_bytes())?),
        PublicKey::EcdsaP256(_) => Ok(VerifierKey::ecdsa_p256(origin, &public.to_spki_der()?)?),
        other => Err(Error::Config {
            path: "keys.log_key".into(),
            reason: format!(
                "{} cannot sign checkpoints; use ed25519 or ecdsa-p256",
                other.describe()
            ),
        }),
    }
}

impl NoteSigner for LogSigner {
    fn name(&self) -> &str {
        self.verifier.name()
    }

    fn key_id(&self) -> KeyId {
        self.verifier.key_id()
    }

    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignerError> {
        // Both backends return the raw form (r‖s for ECDSA), verified
        // against the public key before it comes back.
        let raw = match &self.key {
            LogKey::Pkcs11 { token, key } => token.sign(key, msg, RsaHash::Sha256).wait()?,
            LogKey::Piv(key) => key.sign(msg, RsaHash::Sha256).wait()?,
        };
        match &self.public_key {
            PublicKey::Ed25519(_) => Ok(raw),
            PublicKey::EcdsaP256(_) => {
                let sig = p256::ecdsa::Signature::from_slice(&raw)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            other => Err(format!("{} cannot sign checkpoints", other.describe()).into()),
        }
    }
}
