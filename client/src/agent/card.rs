//! The YubiKey as the agent's key: PIV slot 9a, opened for each signature
//! and released after it, so gpg, ykman and `signet login` can use the card
//! between signatures.

use std::path::Path;

use ssh_key::public::{EcdsaPublicKey, KeyData};
use ssh_key::Signature;

use super::key::{AgentKey, KeyError, RsaHash};
use super::server::Log;
use crate::card::{Card, CardError, KeyTouchPolicy, Pin, PIN_FILE_ENV};

/// Signs with slot 9a of the YubiKey with `serial` (or the only one present).
pub struct CardKey {
    serial: Option<u32>,
    log: Log,
}

impl std::fmt::Debug for CardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardKey")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl CardKey {
    /// The card with `serial` (from the profile), or any single card;
    /// prompts ("Touch your YubiKey…") and reasons go to `log`.
    pub fn new(serial: Option<u32>, log: Log) -> Self {
        Self { serial, log }
    }
}

fn device(e: CardError) -> KeyError {
    KeyError::Device(e.to_string())
}

/// The slot's key (DER SubjectPublicKeyInfo) as SSH key data.
fn ssh_key_of(spki_der: &[u8]) -> Result<KeyData, KeyError> {
    use p256::pkcs8::DecodePublicKey as _;
    if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der) {
        return Ok(KeyData::Ecdsa(EcdsaPublicKey::from(&key)));
    }
    if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der) {
        return Ok(KeyData::Ecdsa(EcdsaPublicKey::from(&key)));
    }
    Err(KeyError::Unsupported(
        "slot 9a holds a key type other than ECDSA P-256/P-384".into(),
    ))
}

/// The card's DER ECDSA signature as an SSH signature for `public`'s curve.
fn ssh_signature(public: &KeyData, der: &[u8]) -> Result<Signature, KeyError> {
    let bad = |e: &dyn std::fmt::Display| KeyError::Device(format!("the card's signature: {e}"));
    match public {
        KeyData::Ecdsa(EcdsaPublicKey::NistP256(_)) => {
            let sig = p256::ecdsa::Signature::from_der(der).map_err(|e| bad(&e))?;
            Signature::try_from(sig).map_err(|e| bad(&e))
        }
        KeyData::Ecdsa(EcdsaPublicKey::NistP384(_)) => {
            let sig = p384::ecdsa::Signature::from_der(der).map_err(|e| bad(&e))?;
            Signature::try_from(sig).map_err(|e| bad(&e))
        }
        _ => Err(KeyError::Unsupported("not an ECDSA P-256/P-384 key".into())),
    }
}

/// The PIN, read from `SIGNET_PIN_FILE` for this signature only (the agent
/// keeps no PIN in memory).
fn pin_from_env() -> Result<Pin, KeyError> {
    match std::env::var_os(PIN_FILE_ENV) {
        Some(path) if !path.is_empty() => Pin::from_file(Path::new(&path)).map_err(device),
        _ => Err(KeyError::NoPin(format!(
            "the key in slot 9a needs the PIN; start the agent with {PIN_FILE_ENV} naming a file that holds it"
        ))),
    }
}

impl AgentKey for CardKey {
    fn sign(
        &self,
        public: &KeyData,
        data: &[u8],
        _rsa: Option<RsaHash>,
    ) -> Result<Signature, KeyError> {
        let card = Card::open(self.serial).map_err(device)?;
        let slot = card
            .slot_9a()
            .map_err(device)?
            .ok_or_else(|| KeyError::Device("slot 9a is empty; run `signet login`".into()))?;
        if &ssh_key_of(&slot.spki_der)? != public {
            return Err(KeyError::WrongKey);
        }
        let pin = match slot.pin_policy {
            crate::card::KeyPinPolicy::Never => None,
            _ => Some(pin_from_env()?),
        };
        if slot.touch_policy != KeyTouchPolicy::Never {
            // Bold yellow when the log is a terminal (a foreground agent);
            // plain in a daemon's log file.
            (self.log)(&crate::ui::Painter::stderr().attention(&format!(
                "Touch your YubiKey (serial {}) to sign in…",
                card.serial()
            )));
        }
        let der = card.sign_slot_9a(pin.as_ref(), data).map_err(device)?;
        ssh_signature(public, &der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_signatures_become_ssh_signatures_of_the_right_curve() {
        use p256::ecdsa::signature::Signer as _;
        use p256::pkcs8::EncodePublicKey as _;
        let secret = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let spki = secret
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .into_vec();
        let public = ssh_key_of(&spki).unwrap();
        let sig: p256::ecdsa::Signature = secret.sign(b"data");
        let ssh = ssh_signature(&public, sig.to_der().as_bytes()).unwrap();
        use signature::Verifier as _;
        public.verify(b"data", &ssh).unwrap();
        assert!(ssh_signature(&public, b"not der").is_err());
        assert!(ssh_key_of(b"not spki").is_err());
    }
}
