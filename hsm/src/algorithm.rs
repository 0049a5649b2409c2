//! The key types a CA key can have, and what each needs from a token.

use std::fmt;

use cryptoki::mechanism::MechanismType;
use serde::{Deserialize, Serialize};

/// A CA key type. The names are the ones used in configuration files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    /// Ed25519 (pure EdDSA).
    #[serde(rename = "ed25519")]
    Ed25519,
    /// RSA with a 3072-bit modulus, PKCS#1 v1.5 signatures.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA with a 4096-bit modulus, PKCS#1 v1.5 signatures.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

/// The hash inside an RSA PKCS#1 v1.5 signature. OpenSSH wants SHA-512
/// (rsa-sha2-512); X.509 uses SHA-256 (sha256WithRSAEncryption).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaHash {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl KeyAlgorithm {
    /// Every key type, in the order reports list them.
    pub const ALL: [KeyAlgorithm; 5] = [
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Ed25519,
        Self::Rsa3072,
        Self::Rsa4096,
    ];

    /// The configuration name (`ecdsa-p256`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Ed25519 => "ed25519",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
        }
    }

    /// The mechanism that generates this key type inside the token.
    pub(crate) fn generation_mechanism(self) -> (MechanismType, &'static str) {
        match self {
            Self::EcdsaP256 | Self::EcdsaP384 => {
                (MechanismType::ECC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN")
            }
            Self::Ed25519 => (
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                "CKM_EC_EDWARDS_KEY_PAIR_GEN",
            ),
            Self::Rsa3072 | Self::Rsa4096 => (
                MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                "CKM_RSA_PKCS_KEY_PAIR_GEN",
            ),
        }
    }

    /// The signing mechanisms this key type needs (RSA needs both hashes:
    /// SHA-512 for SSH, SHA-256 for X.509).
    pub(crate) fn signing_mechanisms(self) -> &'static [(MechanismType, &'static str)] {
        match self {
            Self::EcdsaP256 | Self::EcdsaP384 => &[(MechanismType::ECDSA, "CKM_ECDSA")],
            Self::Ed25519 => &[(MechanismType::EDDSA, "CKM_EDDSA")],
            Self::Rsa3072 | Self::Rsa4096 => &[
                (MechanismType::SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS"),
                (MechanismType::SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS"),
            ],
        }
    }

    /// DER of the curve OID for `CKA_EC_PARAMS`, for EC key types.
    pub(crate) fn ec_params(self) -> Option<&'static [u8]> {
        match self {
            // 1.2.840.10045.3.1.7 (prime256v1)
            Self::EcdsaP256 => Some(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
            // 1.3.132.0.34 (secp384r1)
            Self::EcdsaP384 => Some(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
            // 1.3.101.112 (id-Ed25519)
            Self::Ed25519 => Some(&[0x06, 0x03, 0x2b, 0x65, 0x70]),
            Self::Rsa3072 | Self::Rsa4096 => None,
        }
    }

    /// Modulus size for RSA key types.
    pub(crate) fn rsa_bits(self) -> Option<u64> {
        match self {
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown key type {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}
