//! What the auditor trusts: the log's public key and origin, and opening
//! checkpoints with them.
//!
//! `--key` is either a C2SP verifier key line (`<name>+<hex id>+<base64>`) or
//! a PEM SubjectPublicKeyInfo, as `signet-ca export log-key` prints it:
//! Ed25519 (signed-note type `0x01`) or ECDSA P-256 (type `0x02`). A PEM key
//! carries no name, so its note key name is the origin: the one pinned with
//! `--origin`, or else the origin the checkpoint itself claims. Pinning is
//! better: a key that signs several logs would otherwise let a checkpoint of
//! one pass for another.

use std::path::Path;

use signet_log::checkpoint::{open_checkpoint, Checkpoint};
use signet_log::note::{Note, VerifierKey, VerifierSet};
use signet_log::NoteError;

use super::error::{detail, AuditError, Result, VerifyFailure};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Largest key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

#[derive(Debug, Clone)]
enum KeyMaterial {
    /// A verifier key line: name, id and key fixed.
    Vkey(VerifierKey),
    /// An Ed25519 public key from PEM; the name comes from the origin.
    Ed25519([u8; 32]),
    /// An ECDSA P-256 SubjectPublicKeyInfo (DER) from PEM.
    P256(Vec<u8>),
}

/// The pinned log key and origin.
#[derive(Debug, Clone)]
pub struct Trust {
    key: KeyMaterial,
    origin: Option<String>,
}

/// A checkpoint whose signature by the pinned key verified.
#[derive(Debug, Clone)]
pub struct TrustedCheckpoint {
    /// The checkpoint body.
    pub checkpoint: Checkpoint,
    /// The signed note as fetched, to remember.
    pub signed: Vec<u8>,
    /// The key that verified it, in vkey form.
    pub key: String,
}

impl Trust {
    /// Reads `--key FILE`, with `--origin` if given.
    pub fn load(key_file: &Path, origin: Option<&str>) -> Result<Self> {
        let name = key_file.display();
        let bytes = super::localfile::read_regular(key_file, MAX_KEY_FILE)
            .map_err(|e| AuditError::bad_input(format!("--key {name}: {e}")))?;
        Self::from_bytes(&bytes, origin).map_err(|e| match e {
            AuditError::BadInput(m) => AuditError::BadInput(format!("--key {name}: {m}")),
            other => other,
        })
    }

    /// Parses key file contents.
    pub fn from_bytes(bytes: &[u8], origin: Option<&str>) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            AuditError::bad_input("not text: expected a vkey line or a PEM public key")
        })?;
        if let Some(o) = origin {
            if o.is_empty()
                || o.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '+')
            {
                return Err(AuditError::bad_input(format!(
                    "--origin {o:?} is not a valid origin"
                )));
            }
        }
        let key = if text.contains("-----BEGIN") {
            parse_pem_key(text)?
        } else {
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .ok_or_else(|| {
                    AuditError::bad_input("empty: expected a vkey line or a PEM public key")
                })?;
            let vkey = VerifierKey::parse(line)
                .map_err(|e| AuditError::bad_input(format!("not a verifier key: {e}")))?;
            KeyMaterial::Vkey(vkey)
        };
        Ok(Self {
            key,
            origin: origin.map(str::to_owned),
        })
    }

    /// The pinned origin, if known before seeing a checkpoint.
    pub fn pinned_origin(&self) -> Option<&str> {
        match (&self.origin, &self.key) {
            (Some(o), _) => Some(o),
            (None, KeyMaterial::Vkey(k)) => Some(k.name()),
            (None, _) => None,
        }
    }

    /// The verifier key for key name `name`.
    fn verifier(&self, name: &str) -> std::result::Result<VerifierKey, signet_log::Error> {
        match &self.key {
            KeyMaterial::Vkey(k) => Ok(k.clone()),
            KeyMaterial::Ed25519(pk) => VerifierKey::ed25519(name, pk),
            KeyMaterial::P256(spki) => VerifierKey::ecdsa_p256(name, spki),
        }
    }

    /// Verifies a signed checkpoint: syntax, a valid signature by the pinned
    /// key, and the origin. `source_name` names it in errors.
    pub fn open(&self, signed: &[u8], source_name: &str) -> Result<TrustedCheckpoint> {
        let fail = |reason: String| -> AuditError {
            VerifyFailure::Checkpoint {
                source_name: source_name.to_owned(),
                reason,
            }
            .into()
        };
        let note = Note::parse(signed).map_err(|e| fail(detail(&e)))?;
        let origin = match self.pinned_origin() {
            Some(o) => o.to_owned(),
            None => Checkpoint::parse(note.text())
                .map_err(|e| fail(detail(&e)))?
                .origin()
                .to_owned(),
        };
        let key = self.verifier(&origin).map_err(|e| {
            fail(format!(
                "cannot use the key with origin {origin:?}: {}",
                detail(&e)
            ))
        })?;
        let set = VerifierSet::new(vec![key.clone()]).map_err(|e| fail(detail(&e)))?;
        let opened = open_checkpoint(signed, &origin, &set).map_err(|e| match e {
            signet_log::Error::Note(NoteError::NoKnownSignature) => {
                let found: Vec<String> = note
                    .signatures()
                    .iter()
                    .map(|s| format!("{}+{}", s.name, s.key_id))
                    .collect();
                fail(format!(
                    "not signed by the pinned key {}+{} (signatures by: {})",
                    key.name(),
                    key.key_id(),
                    found.join(", ")
                ))
            }
            other => fail(detail(&other)),
        })?;
        opened.note.require(&key).map_err(|e| fail(detail(&e)))?;
        Ok(TrustedCheckpoint {
            checkpoint: opened.checkpoint,
            signed: signed.to_vec(),
            key: key.to_string(),
        })
    }
}

fn parse_pem_key(text: &str) -> Result<KeyMaterial> {
    let (label, der) = super::pem::first_block(text)?;
    if label != "PUBLIC KEY" {
        return Err(AuditError::bad_input(format!(
            "PEM label is {label:?}, expected \"PUBLIC KEY\" (a SubjectPublicKeyInfo)"
        )));
    }
    if let Some(pk) = der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        let pk: [u8; 32] = pk
            .try_into()
            .map_err(|_| AuditError::bad_input("malformed Ed25519 public key"))?;
        // Check the point now, so a bad key is a key error, not a signature error.
        VerifierKey::ed25519("key", &pk)
            .map_err(|_| AuditError::bad_input("not a valid Ed25519 public key"))?;
        return Ok(KeyMaterial::Ed25519(pk));
    }
    VerifierKey::ecdsa_p256("key", &der).map_err(|_| {
        AuditError::bad_input("unsupported public key: Signet log keys are Ed25519 or ECDSA P-256")
    })?;
    Ok(KeyMaterial::P256(der))
}
