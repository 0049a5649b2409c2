//! Checking a device's signature against the key's public half.
//!
//! A device can return a wrong signature: a fault in the chip, a firmware
//! bug, a glitch on purpose. Published, a faulty RSA-CRT signature reveals
//! the private key (one bad signature and the public key factor the
//! modulus), and a wrong ECDSA or Ed25519 signature is a certificate nobody
//! can verify. So every signature this crate hands out has been verified
//! here first, by whoever waits for the reply (checks run on the callers'
//! threads in parallel, not on the session's worker), before it is handed
//! over; one that does not verify is discarded and reported as
//! [`Error::FaultySignature`](crate::Error::FaultySignature).
//!
//! Verification uses the RustCrypto implementations of the same schemes the
//! relying parties use (OpenSSH, X.509 verifiers, signed-note verifiers).

use sha2::Digest;
use signature::hazmat::PrehashVerifier;
use signature::Verifier;

use crate::{PublicKey, RsaHash};

impl PublicKey {
    /// Whether `raw` is a valid signature of `message` under this key, in the
    /// raw form every [`SigningBackend`](crate::SigningBackend) returns: r‖s
    /// for ECDSA (over SHA-256 for P-256, SHA-384 for P-384), the 64-byte
    /// Ed25519 signature, PKCS#1 v1.5 over `rsa_hash` for RSA.
    ///
    /// The backends already check every signature they return; this is for
    /// callers that get signatures from elsewhere, and for measuring the cost.
    pub fn verifies(&self, message: &[u8], raw: &[u8], rsa_hash: RsaHash) -> bool {
        match self {
            Self::EcdsaP256(_) => {
                self.verifies_prepared(&sha2::Sha256::digest(message), raw, rsa_hash)
            }
            Self::EcdsaP384(_) => {
                self.verifies_prepared(&sha2::Sha384::digest(message), raw, rsa_hash)
            }
            Self::Ed25519(_) | Self::Rsa(_) => self.verifies_prepared(message, raw, rsa_hash),
        }
    }

    /// As [`PublicKey::verifies`], over the input exactly as the PKCS#11
    /// mechanism got it: the digest for ECDSA (CKM_ECDSA signs a digest),
    /// the message for Ed25519 and RSA (the token hashes).
    pub(crate) fn verifies_prepared(&self, input: &[u8], raw: &[u8], rsa_hash: RsaHash) -> bool {
        match self {
            Self::EcdsaP256(key) => p256::ecdsa::Signature::from_slice(raw)
                .is_ok_and(|sig| key.verify_prehash(input, &sig).is_ok()),
            Self::EcdsaP384(key) => p384::ecdsa::Signature::from_slice(raw)
                .is_ok_and(|sig| key.verify_prehash(input, &sig).is_ok()),
            Self::Ed25519(key) => ed25519_dalek::Signature::from_slice(raw)
                .is_ok_and(|sig| key.verify(input, &sig).is_ok()),
            Self::Rsa(key) => {
                use rsa::pkcs1v15::Pkcs1v15Sign;
                let verified = match rsa_hash {
                    RsaHash::Sha256 => key.verify(
                        Pkcs1v15Sign::new::<sha2::Sha256>(),
                        &sha2::Sha256::digest(input),
                        raw,
                    ),
                    RsaHash::Sha512 => key.verify(
                        Pkcs1v15Sign::new::<sha2::Sha512>(),
                        &sha2::Sha512::digest(input),
                        raw,
                    ),
                };
                verified.is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signature::Signer;

    const MESSAGE: &[u8] = b"signet verification test";

    /// Every single-bit flip of a good signature must be refused.
    fn every_bit_flip_is_refused(public: &PublicKey, raw: &[u8], hash: RsaHash) {
        assert!(
            public.verifies(MESSAGE, raw, hash),
            "the good signature must verify"
        );
        assert!(!public.verifies(b"another message", raw, hash));
        for bit in 0..raw.len() * 8 {
            let mut bad = raw.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !public.verifies(MESSAGE, &bad, hash),
                "bit {bit} flipped verified"
            );
        }
        assert!(
            !public.verifies(MESSAGE, &raw[1..], hash),
            "a truncated signature verified"
        );
        assert!(!public.verifies(MESSAGE, &[], hash));
    }

    #[test]
    fn ecdsa_p256_signatures_are_checked() {
        let key = p256::ecdsa::SigningKey::from_slice(&[0x17; 32]).unwrap();
        let sig: p256::ecdsa::Signature = key.sign(MESSAGE);
        let public = PublicKey::EcdsaP256(*key.verifying_key());
        every_bit_flip_is_refused(&public, &sig.to_bytes(), RsaHash::Sha256);
    }

    #[test]
    fn ecdsa_p384_signatures_are_checked() {
        let key = p384::ecdsa::SigningKey::from_slice(&[0x29; 48]).unwrap();
        let sig: p384::ecdsa::Signature = key.sign(MESSAGE);
        let public = PublicKey::EcdsaP384(*key.verifying_key());
        every_bit_flip_is_refused(&public, &sig.to_bytes(), RsaHash::Sha256);
    }

    #[test]
    fn ed25519_signatures_are_checked() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
        let sig = key.sign(MESSAGE);
        let public = PublicKey::Ed25519(key.verifying_key());
        every_bit_flip_is_refused(&public, &sig.to_bytes(), RsaHash::Sha512);
    }
}
