//! The signing side of notes, as a trait so the private key can live anywhere.

use super::key::KeyId;

/// What a signer may fail with; its text is passed on in
/// [`crate::NoteError::Signer`] for the operator.
pub type SignerError = Box<dyn std::error::Error + Send + Sync>;

/// A key that signs notes, typically held in an HSM.
///
/// The implementation decides the signature type; it must produce what the
/// matching [`super::VerifierKey`] checks: for Ed25519 the 64-byte RFC 8032
/// signature of `msg`, for ECDSA P-256 the ASN.1 DER signature of
/// `SHA-256(msg)`.
pub trait NoteSigner {
    /// The key name written in the signature line; for the log key, the
    /// checkpoint origin.
    fn name(&self) -> &str;

    /// The key id, as [`super::VerifierKey::key_id`] computes it for the public key.
    fn key_id(&self) -> KeyId;

    /// Signs the note text.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError>;
}
