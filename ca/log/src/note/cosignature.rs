//! C2SP tlog-cosignature (<https://c2sp.org/tlog-cosignature>), the Ed25519
//! `cosignature/v1` type: a witness's statement that, at a given time, the
//! checkpoint is the largest consistent one it has seen for that log.
//!
//! A cosignature is an ordinary note signature line whose key has signature
//! type `0x04`. Its bytes (after the 4-byte key id) are a timestamped
//! signature:
//!
//! ```text
//! u64 timestamp (big-endian POSIX seconds, at most 2^63 - 1) ‖ 64-byte Ed25519 signature
//! ```
//!
//! and the Ed25519 signature is over
//!
//! ```text
//! cosignature/v1
//! time <timestamp, decimal, no leading zeros>
//! <the whole checkpoint body, extension lines included, with its final newline>
//! ```
//!
//! Verifying keys are [`VerifierKey`]s of type
//! [`SignatureType::CosignatureV1`] (vkey `<name>+<key id>+base64(0x04 ‖ key)`),
//! so [`super::Note::verify`] checks cosignatures like any other signature.
//! [`verify_cosignature`] checks one line and returns its timestamp;
//! [`CosignatureSigner`] makes one with any Ed25519 signing function (a key in
//! a file or in an HSM).
//!
//! This type does not commit to the witness's name, so one public key must
//! never serve two witnesses (the spec says so; [`crate::witness`] refuses
//! such a policy).

use std::fmt;

use super::key::{KeyId, SignatureType, VerifierKey};
use super::signer::SignerError;
use super::Signature;
use crate::error::{NoteError, Result};

/// The first line of every cosigned message (domain separation).
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1\n";

/// Largest timestamp a cosignature may carry (`2^63 - 1`, as the spec caps it).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Length of a `cosignature/v1` timestamped signature: 8 + 64 bytes.
pub const TIMESTAMPED_SIGNATURE_LEN: usize = 72;

/// The message a witness signs for `body` (a checkpoint note text, ending in
/// a newline) at `timestamp`.
pub fn cosigned_message(body: &str, timestamp: u64) -> Vec<u8> {
    let mut msg = Vec::with_capacity(body.len() + 48);
    msg.extend_from_slice(COSIGNATURE_V1_HEADER.as_bytes());
    msg.extend_from_slice(format!("time {timestamp}\n").as_bytes());
    msg.extend_from_slice(body.as_bytes());
    msg
}

/// Splits a timestamped signature; `None` unless it is exactly 72 bytes with a
/// timestamp of at most [`MAX_TIMESTAMP`].
fn split(signature: &[u8]) -> Option<(u64, [u8; 64])> {
    if signature.len() != TIMESTAMPED_SIGNATURE_LEN {
        return None;
    }
    let (ts, sig) = signature.split_at(8);
    let timestamp = u64::from_be_bytes(ts.try_into().ok()?);
    if timestamp > MAX_TIMESTAMP {
        return None;
    }
    Some((timestamp, sig.try_into().ok()?))
}

/// Verifies a timestamped signature over `body`; returns its timestamp.
pub(crate) fn verify_v1(
    key: &ed25519_dalek::VerifyingKey,
    body: &[u8],
    signature: &[u8],
) -> Option<u64> {
    let (timestamp, sig) = split(signature)?;
    let body = std::str::from_utf8(body).ok()?;
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    key.verify_strict(&cosigned_message(body, timestamp), &sig)
        .ok()?;
    Some(timestamp)
}

/// The timestamp a cosignature line claims, without verifying it.
///
/// Fails unless the signature is a well-formed `cosignature/v1` timestamped
/// signature (72 bytes, timestamp at most [`MAX_TIMESTAMP`]).
pub fn cosignature_timestamp(sig: &Signature) -> Result<u64> {
    split(&sig.signature)
        .map(|(t, _)| t)
        .ok_or_else(|| NoteError::MalformedCosignature(sig.name.clone()).into())
}

/// Checks that `sig` is `key`'s valid cosignature of the checkpoint body
/// `body` (the note text, with its final newline) and returns the time it
/// claims to have been made at.
///
/// `key` must be a [`SignatureType::CosignatureV1`] key, and the line's name
/// and key id must be the key's. Whether the timestamp is plausible (not in
/// the future, recent enough) is the caller's decision: this crate reads no
/// clock.
pub fn verify_cosignature(key: &VerifierKey, body: &str, sig: &Signature) -> Result<u64> {
    if key.signature_type() != SignatureType::CosignatureV1 {
        return Err(NoteError::NotACosignatureKey(key.name().to_owned()).into());
    }
    if sig.name != key.name() || sig.key_id != key.key_id() {
        return Err(NoteError::MissingSignature(key.name().to_owned()).into());
    }
    let timestamp = cosignature_timestamp(sig)?;
    if !key.verify(body.as_bytes(), &sig.signature) {
        return Err(NoteError::BadSignature(sig.name.clone()).into());
    }
    Ok(timestamp)
}

/// A boxed Ed25519 signing function, for a [`CosignatureSigner`] whose key
/// source is chosen at run time (`CosignatureSigner<Box<SignFn>>`).
pub type SignFn = dyn Fn(&[u8]) -> std::result::Result<Vec<u8>, SignerError> + Send + Sync;

/// Signs `cosignature/v1` lines with a witness key held anywhere: `sign` is
/// handed the message and must return the 64-byte RFC 8032 Ed25519
/// signature (from a key file, or from an HSM through PKCS#11 `CKM_EDDSA`).
///
/// Every signature is checked against the public key before it is used, so
/// a token holding another key than the configured one, or a faulty
/// signature, never leaves as a cosignature.
pub struct CosignatureSigner<F> {
    key: VerifierKey,
    sign: F,
}

impl<F> fmt::Debug for CosignatureSigner<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignatureSigner")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<F> CosignatureSigner<F>
where
    F: Fn(&[u8]) -> std::result::Result<Vec<u8>, SignerError>,
{
    /// A signer for the witness named `name` whose Ed25519 public key is
    /// `public_key`.
    pub fn new(name: &str, public_key: &[u8; 32], sign: F) -> Result<Self> {
        Ok(Self {
            key: VerifierKey::cosignature_v1(name, public_key)?,
            sign,
        })
    }

    /// The witness's verifier key (its vkey is `to_string()` of this).
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.key
    }

    /// The key name.
    pub fn name(&self) -> &str {
        self.key.name()
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    /// Cosigns the checkpoint body `body` (note text, ending in a newline) as
    /// of `timestamp` (POSIX seconds).
    pub fn cosign(&self, body: &str, timestamp: u64) -> Result<Signature> {
        if timestamp > MAX_TIMESTAMP {
            return Err(NoteError::BadTimestamp.into());
        }
        if body.is_empty() || !body.ends_with('\n') || body.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::BadText.into());
        }
        let raw = (self.sign)(&cosigned_message(body, timestamp))
            .map_err(|e| NoteError::Signer(e.to_string()))?;
        if raw.len() != 64 {
            return Err(NoteError::Signer(format!(
                "Ed25519 signature of {} bytes, 64 expected",
                raw.len()
            ))
            .into());
        }
        let mut signature = Vec::with_capacity(TIMESTAMPED_SIGNATURE_LEN);
        signature.extend_from_slice(&timestamp.to_be_bytes());
        signature.extend_from_slice(&raw);
        if !self.key.verify(body.as_bytes(), &signature) {
            return Err(NoteError::Signer(
                "the signature does not verify under the witness public key".to_owned(),
            )
            .into());
        }
        Ok(Signature {
            name: self.key.name().to_owned(),
            key_id: self.key.key_id(),
            signature,
        })
    }

    /// [`Self::cosign`], as a signature line with its final newline
    /// (`— <name> <base64>\n`), the form tlog-witness responses carry.
    pub fn cosign_line(&self, body: &str, timestamp: u64) -> Result<String> {
        Ok(self.cosign(body, timestamp)?.to_line())
    }
}
