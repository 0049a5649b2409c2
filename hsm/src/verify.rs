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
//! Verification uses ring (the library rustls verifies TLS with), which
//! implements the same schemes the relying parties check — OpenSSH, X.509
//! verifiers, signed-note verifiers — and verifies ECDSA several times faster
//! than the RustCrypto crates; every certificate pays for one verification.

use ring::signature::{self as ring_sig, UnparsedPublicKey, VerificationAlgorithm};

use crate::{PublicKey, RsaHash};

impl PublicKey {
    /// Whether `raw` is a valid signature of `message` under this key, in the
    /// raw form every [`SigningBackend`](crate::SigningBackend) returns: r‖s
    /// for ECDSA (over SHA-256 for P-256, SHA-384 for P-384), the 64-byte
    /// Ed25519 signature, PKCS#1 v1.5 over `rsa_hash` for RSA.
    pub fn verifies(&self, message: &[u8], raw: &[u8], rsa_hash: RsaHash) -> bool {
        let (algorithm, public): (&'static dyn VerificationAlgorithm, Vec<u8>) = match self {
            Self::EcdsaP256(key) => (
                &ring_sig::ECDSA_P256_SHA256_FIXED,
                key.to_sec1_point(false).as_bytes().to_vec(),
            ),
            Self::EcdsaP384(key) => (
                &ring_sig::ECDSA_P384_SHA384_FIXED,
                key.to_sec1_point(false).as_bytes().to_vec(),
            ),
            Self::Ed25519(key) => (&ring_sig::ED25519, key.as_bytes().to_vec()),
            Self::Rsa(key) => {
                use rsa::pkcs1::EncodeRsaPublicKey;
                let Ok(der) = key.to_pkcs1_der() else {
                    return false;
                };
                let algorithm: &'static dyn VerificationAlgorithm = match rsa_hash {
                    RsaHash::Sha256 => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
                    RsaHash::Sha512 => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
                };
                (algorithm, der.as_bytes().to_vec())
            }
        };
        UnparsedPublicKey::new(algorithm, public)
            .verify(message, raw)
            .is_ok()
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
