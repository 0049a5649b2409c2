//! C2SP signed notes (<https://c2sp.org/signed-note>): text followed by a blank
//! line and one or more signature lines.
//!
//! ```text
//! <text, ending in a newline>
//!
//! — <key name> <base64(4-byte key id ‖ signature)>
//! ```
//!
//! Signet signs its checkpoints as notes. Signing goes through the
//! [`NoteSigner`] trait, so the log key stays in the HSM and this crate never
//! sees a private key.
//!
//! Verification follows the spec: a signature is attributed to a key only if
//! both the key name and the key id match a trusted [`VerifierKey`];
//! signatures from other keys are kept aside as unverified (they may be
//! witnesses' cosignatures, or a rotated key); any signature from a trusted key
//! that fails to verify rejects the whole note; and a note with no verified
//! signature is rejected. A caller that needs one particular key's signature
//! asks for it with [`VerifiedNote::require`].
//!
//! # Signature types
//!
//! - `0x01` Ed25519 (RFC 8032) over the note text. This is what the log key
//!   uses when the HSM supports EdDSA. Key id:
//!   `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]`.
//! - `0x02` ECDSA, as the signed-note spec assigns it (the format of
//!   transparency-dev/witness and Sigstore Rekor), for tokens without EdDSA:
//!   the signature is ASN.1 DER ECDSA over SHA-256 of the note text, the
//!   vkey's key material is the DER SubjectPublicKeyInfo, and the key id is
//!   `SHA-256(SPKI DER)[:4]` (without the name, unlike Ed25519). The spec
//!   allows P-256, P-384 and P-521; Signet supports P-256 only. An HSM that
//!   returns raw `r ‖ s` must be wrapped by a signer that converts to DER.
//! - `0x04` `cosignature/v1` (C2SP tlog-cosignature): a witness's Ed25519
//!   signature over a timestamp and the note text; see [`cosignature`].

pub mod cosignature;
mod key;
mod signer;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

pub use key::{KeyId, SignatureType, VerifierKey, VerifierSet};
pub use signer::{NoteSigner, SignerError};

use crate::error::{NoteError, Result};

/// Largest note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 256 * 1024;

/// Most signature lines accepted in one note (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// The signature line prefix: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// One signature line, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key name.
    pub name: String,
    /// The key id, the first four bytes of the decoded signature.
    pub key_id: KeyId,
    /// The signature proper (without the key id).
    pub signature: Vec<u8>,
}

impl Signature {
    /// The signature line, `— <name> <base64(key id ‖ signature)>`, with its
    /// final newline.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }

    /// Parses one signature line, without its final newline.
    pub fn parse_line(line: &str) -> Result<Self> {
        let bad = NoteError::BadSignatureLine;
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(bad.clone())?;
        let (name, b64) = rest.split_once(' ').ok_or(bad.clone())?;
        key::check_name(name)?;
        let raw = STANDARD.decode(b64).map_err(|_| bad.clone())?;
        if raw.len() < 5 {
            return Err(bad.into());
        }
        let (id, sig) = raw.split_at(4);
        let mut key_id = [0u8; 4];
        key_id.copy_from_slice(id);
        Ok(Self {
            name: name.to_owned(),
            key_id: KeyId(key_id),
            signature: sig.to_vec(),
        })
    }
}

/// A parsed note: its text and its signatures, none of them checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<Signature>,
}

impl Note {
    /// Parses a signed note. Only the syntax is checked; call [`Note::verify`].
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_NOTE_LEN {
            return Err(NoteError::TooLong.into());
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed)?;
        if s.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::Malformed.into());
        }
        // The text ends at the last blank line; it keeps its final newline.
        let split = s.rfind("\n\n").ok_or(NoteError::Malformed)?;
        let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(NoteError::Malformed.into());
        };
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures.into());
            }
            signatures.push(Signature::parse_line(line)?);
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note's text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The note in its wire form.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out
    }

    /// Signs `text` with each signer, in order.
    ///
    /// `text` must be non-empty, end in a newline and hold no control
    /// characters other than newlines.
    pub fn sign(text: &str, signers: &[&dyn NoteSigner]) -> Result<Self> {
        if text.is_empty() || !text.ends_with('\n') || text.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::BadText.into());
        }
        if signers.is_empty() {
            return Err(NoteError::NoSigner.into());
        }
        if signers.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures.into());
        }
        let mut signatures = Vec::with_capacity(signers.len());
        for s in signers {
            key::check_name(s.name())?;
            let signature = s
                .sign(text.as_bytes())
                .map_err(|e| NoteError::Signer(e.to_string()))?;
            signatures.push(Signature {
                name: s.name().to_owned(),
                key_id: s.key_id(),
                signature,
            });
        }
        let note = Self {
            text: text.to_owned(),
            signatures,
        };
        if note.to_text().len() > MAX_NOTE_LEN {
            return Err(NoteError::TooLong.into());
        }
        Ok(note)
    }

    /// Checks the signatures against the trusted keys in `verifiers`.
    pub fn verify(&self, verifiers: &VerifierSet) -> Result<VerifiedNote> {
        let mut verified: Vec<(String, KeyId)> = Vec::new();
        let mut unverified = Vec::new();
        for sig in &self.signatures {
            let Some(key) = verifiers.get(&sig.name, sig.key_id) else {
                unverified.push(sig.clone());
                continue;
            };
            if !key.verify(self.text.as_bytes(), &sig.signature) {
                return Err(NoteError::BadSignature(sig.name.clone()).into());
            }
            if !verified
                .iter()
                .any(|(n, id)| n == &sig.name && *id == sig.key_id)
            {
                verified.push((sig.name.clone(), sig.key_id));
            }
        }
        if verified.is_empty() {
            return Err(NoteError::NoKnownSignature.into());
        }
        Ok(VerifiedNote {
            text: self.text.clone(),
            verified,
            unverified,
        })
    }
}

/// A note with at least one valid signature by a trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    text: String,
    verified: Vec<(String, KeyId)>,
    unverified: Vec<Signature>,
}

impl VerifiedNote {
    /// The note text, now authenticated.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Name and key id of every trusted key whose signature verified.
    pub fn verified_by(&self) -> &[(String, KeyId)] {
        &self.verified
    }

    /// Signatures by keys the verifier set does not know (ignored, as the spec asks).
    pub fn unverified(&self) -> &[Signature] {
        &self.unverified
    }

    /// Fails unless `key` is among the keys whose signature verified.
    pub fn require(&self, key: &VerifierKey) -> Result<()> {
        if self
            .verified
            .iter()
            .any(|(n, id)| n == key.name() && *id == key.key_id())
        {
            Ok(())
        } else {
            Err(NoteError::MissingSignature(key.name().to_owned()).into())
        }
    }
}
