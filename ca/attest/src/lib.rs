//! PIV attestation: proof that a key was generated on a genuine YubiKey with a given PIN and touch policy.
#![forbid(unsafe_code)]

mod error;

pub use error::AttestError;
pub use signet_log::entry::{PinPolicy, TouchPolicy};

use std::time::SystemTime;

/// Trust anchors for device attestation.
#[derive(Debug, Clone, Default)]
pub struct DeviceRoots {
    roots: Vec<Vec<u8>>,
}

impl DeviceRoots {
    /// The Yubico PIV attestation roots shipped with Signet.
    pub fn yubico() -> Result<Self, AttestError> {
        Err(AttestError::EmptyChain)
    }

    /// Roots from one or more PEM `CERTIFICATE` blocks.
    pub fn from_pem(_pem: &str) -> Result<Self, AttestError> {
        Err(AttestError::EmptyChain)
    }

    /// Adds the roots of `other`.
    pub fn extend(&mut self, other: DeviceRoots) {
        self.roots.extend(other.roots);
    }

    /// Whether no root is configured (every chain would be refused).
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

/// Form factor of the YubiKey, from the attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormFactor {
    /// Not reported by the device.
    Unspecified,
    /// A value this version does not know.
    Other(u8),
}

/// What a verified attestation proves about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedKey {
    /// Device serial number.
    pub serial: u32,
    /// PIN policy of the key.
    pub pin_policy: PinPolicy,
    /// Touch policy of the key.
    pub touch_policy: TouchPolicy,
    /// Firmware version (major, minor, patch).
    pub firmware: (u8, u8, u8),
    /// Form factor, when the certificate states it.
    pub form_factor: Option<FormFactor>,
    /// The attested key's SubjectPublicKeyInfo (DER).
    pub public_key_spki_der: Vec<u8>,
    /// Subject of the root the chain verified to.
    pub root_subject: String,
}

/// Verifies a PIV attestation chain.
pub fn verify_piv_attestation(
    _chain: &[Vec<u8>],
    _roots: &DeviceRoots,
    _now: SystemTime,
) -> Result<AttestedKey, AttestError> {
    Err(AttestError::EmptyChain)
}
