//! PIV attestation: proof that a key was generated on a genuine YubiKey
//! with a given PIN and touch policy.
//!
//! A YubiKey signs, with the attestation key in its slot `f9`, a certificate
//! for a key it generated in another slot (the *slot attestation
//! certificate*); Yubico signed the `f9` certificate at the factory. The CA
//! accepts a key only with such a chain. [`verify_piv_attestation`] checks
//! it, pure and without I/O, and returns what it proves ([`AttestedKey`]).
//!
//! # The accepted profile
//!
//! The chain is `chain[0]` the slot certificate, `chain[1]` the device's
//! `f9` certificate, `chain[2..]` optional certificates above it (at most
//! [`MAX_CHAIN_LEN`] in all, each at most 8 KiB of DER). It must lead to a
//! configured root ([`DeviceRoots`]): the last certificate sent may be the
//! root itself (it is matched by subject and public key), or be signed by
//! one, or by a configured intermediate that leads to one (Yubico does not
//! store its newer intermediates on the device, so [`DeviceRoots::yubico`]
//! carries them). Then:
//!
//! - every issuer name equals the issuer's subject, and every signature
//!   verifies: RSA PKCS#1 v1.5 with SHA-256/384/512 (2048 bits or more) or
//!   ECDSA P-256/P-384 with SHA-256/384; the algorithm inside the signed part
//!   must equal the outer one;
//! - every certificate, the root included, is valid at `now`;
//! - no certificate has a critical extension other than basicConstraints,
//!   keyUsage (and, on the slot certificate, Yubico's own), nor an
//!   extension twice;
//! - the slot certificate is not a CA;
//! - the `f9` certificate is accepted as the signer of the slot certificate
//!   whatever its basicConstraints say: YubiKey 5 `f9` certificates are
//!   marked CA (pathlen 0) but some older devices' are not, and Yubico's own
//!   verification accepts both;
//! - every certificate above `f9`, the root included, is a CA
//!   (basicConstraints CA true; keyUsage, when present, allows keyCertSign),
//!   and its pathLenConstraint allows the intermediates below it (`f9`
//!   counts as one);
//! - the slot certificate carries Yubico's firmware (`…41482.3.3`), serial
//!   (`.3.7`) and PIN/touch policy (`.3.8`) extensions, well formed, and the
//!   form factor (`.3.9`) when present; the biometric PIN policies
//!   (match once / match always) are refused.
//!
//! Not checked: revocation (Yubico publishes no CRL for attestation), name
//! constraints and certificate policies (Yubico's certificates carry none),
//! and the public key's algorithm (the caller compares the attested key with
//! the requested one, [`AttestedKey::public_key_spki_der`]).
//!
//! Error messages ([`AttestError`]) say which certificate is wrong by its
//! position (0 the slot certificate, 1 `f9`, then upwards; positions past the
//! certificates sent are configured intermediates and the root).
#![forbid(unsafe_code)]

mod cert;
mod chain;
mod error;
mod roots;
mod signature;
mod yubico;

pub use chain::MAX_CHAIN_LEN;
pub use error::AttestError;
pub use roots::DeviceRoots;
pub use signet_log::entry::{PinPolicy, TouchPolicy};
pub use yubico::{
    FormFactor, FormFactorKind, OID_FIRMWARE, OID_FORM_FACTOR, OID_POLICY, OID_SERIAL,
};

use std::time::SystemTime;

/// What a verified attestation proves about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedKey {
    /// Device serial number.
    pub serial: u32,
    /// PIN policy of the key, fixed when it was generated.
    pub pin_policy: PinPolicy,
    /// Touch policy of the key, fixed when it was generated.
    pub touch_policy: TouchPolicy,
    /// Firmware version (major, minor, patch).
    pub firmware: (u8, u8, u8),
    /// Form factor, when the certificate states it (firmware 5 and later).
    pub form_factor: Option<FormFactor>,
    /// The attested key's SubjectPublicKeyInfo (DER): compare it with the
    /// key the certificate is requested for.
    pub public_key_spki_der: Vec<u8>,
    /// Subject of the root the chain verified to (RFC 4514 string), for logs.
    pub root_subject: String,
}

/// Verifies a PIV attestation chain against `roots` at time `now`.
///
/// `chain[0]` is the slot attestation certificate (DER), `chain[1]` the
/// device's f9 attestation certificate, `chain[2..]` optional intermediates.
/// See the crate documentation for what is accepted.
pub fn verify_piv_attestation(
    chain: &[Vec<u8>],
    roots: &DeviceRoots,
    now: SystemTime,
) -> Result<AttestedKey, AttestError> {
    chain::verify(chain, roots, now)
}
