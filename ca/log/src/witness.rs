//! Witness policies: which witnesses must have cosigned a checkpoint (k of n)
//! before anyone relies on it.
//!
//! A witness (C2SP tlog-witness) cosigns a log's checkpoint only when it is
//! consistent with the last checkpoint it cosigned for that log, so a
//! checkpoint cosigned by enough independent witnesses cannot be a fork or a
//! rollback shown to one victim. The CA asks its witnesses for cosignatures
//! and releases a checkpoint only once the policy is met; `signet audit` and
//! the node-side check verify the same policy.
//!
//! The CA's configuration, the node program's configuration and `signet
//! audit`'s all embed it as a `[witnesses]` table:
//!
//! ```toml
//! [witnesses]
//! threshold = 1
//! [[witnesses.witness]]
//! name = "witness-a"
//! url = "http://127.0.0.1:7380"      # optional; only the CA uses it
//! vkey = "witness-a+1a2b3c4d+BASE64"
//! ```
//!
//! - `threshold` (required): how many distinct configured witnesses must have
//!   cosigned. At most the number of witnesses; `0` only with no witness at
//!   all, which means "no witnesses": checkpoints are trusted on the log's
//!   signature alone.
//! - `witness` (a list): `name` is a display name for messages and health
//!   signals (it need not be the key's name); `vkey` the witness's
//!   `cosignature/v1` verifier key (signature type `0x04`, as
//!   `signet-witness init` prints it); `url` the witness's submission prefix
//!   (`<url>/add-checkpoint`), used only by the CA.
//!
//! No two witnesses may share a name, a key name or a public key (the Ed25519
//! cosignature does not commit to the witness's name, so one key under two
//! names would count twice). Unknown fields are refused.
//!
//! ```
//! use signet_log::witness::WitnessPolicy;
//! let policy: WitnessPolicy = toml::from_str(r#"
//!     threshold = 1
//!     [[witness]]
//!     name = "remora"
//!     vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
//! "#)?;
//! assert_eq!(policy.threshold(), 1);
//! # Ok::<(), toml::de::Error>(())
//! ```

use std::fmt;

use serde::Deserialize;

use crate::checkpoint::Checkpoint;
use crate::error::{NoteError, Result, WitnessError};
use crate::merkle::Hash;
use crate::note::cosignature::verify_cosignature;
use crate::note::{Note, Signature, SignatureType, VerifierKey, MAX_SIGNATURES};

/// Most witnesses a policy may list (far beyond any real deployment; bounds
/// the work a note costs to check).
pub const MAX_WITNESSES: usize = 32;

/// One witness of a policy.
#[derive(Debug, Clone)]
pub struct Witness {
    name: String,
    url: Option<String>,
    key: VerifierKey,
}

impl Witness {
    /// A witness; `key` must be a `cosignature/v1` key, `url` (if any) an
    /// `http://` or `https://` URL. Checked again by [`WitnessPolicy::new`].
    pub fn new(name: &str, url: Option<&str>, key: VerifierKey) -> Self {
        Self {
            name: name.to_owned(),
            url: url.map(str::to_owned),
            key,
        }
    }

    /// The display name from the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The submission prefix, if configured (the CA posts to
    /// `<url>/add-checkpoint`).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The witness's `cosignature/v1` verifier key.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }
}

/// A k-of-n witness policy. Build it with [`WitnessPolicy::new`] or
/// deserialize it (see the module documentation); both validate it.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawPolicy")]
pub struct WitnessPolicy {
    threshold: usize,
    witnesses: Vec<Witness>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    threshold: usize,
    #[serde(default)]
    witness: Vec<RawWitness>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWitness {
    name: String,
    #[serde(default)]
    url: Option<String>,
    vkey: String,
}

impl TryFrom<RawPolicy> for WitnessPolicy {
    type Error = WitnessError;

    fn try_from(raw: RawPolicy) -> std::result::Result<Self, WitnessError> {
        let mut witnesses = Vec::with_capacity(raw.witness.len());
        for (i, w) in raw.witness.iter().enumerate() {
            let key = VerifierKey::parse(w.vkey.trim()).map_err(|e| WitnessError::BadPolicy {
                field: format!("witnesses.witness[{i}].vkey"),
                reason: e.to_string(),
            })?;
            witnesses.push(Witness::new(&w.name, w.url.as_deref(), key));
        }
        Self::new(raw.threshold, witnesses)
    }
}

fn bad(field: String, reason: impl Into<String>) -> WitnessError {
    WitnessError::BadPolicy {
        field,
        reason: reason.into(),
    }
}

impl WitnessPolicy {
    /// A policy: `threshold` distinct witnesses of `witnesses` must cosign.
    ///
    /// Fails (naming the offending field as in the TOML form) if the
    /// threshold exceeds the number of witnesses, is zero while witnesses are
    /// listed, or if two witnesses share a name, a key name or a public key,
    /// or a key is not a `cosignature/v1` key, or a URL is not http(s).
    pub fn new(
        threshold: usize,
        witnesses: Vec<Witness>,
    ) -> std::result::Result<Self, WitnessError> {
        if witnesses.len() > MAX_WITNESSES {
            return Err(bad(
                "witnesses.witness".into(),
                format!(
                    "{} witnesses listed, at most {MAX_WITNESSES}",
                    witnesses.len()
                ),
            ));
        }
        if threshold > witnesses.len() {
            return Err(bad(
                "witnesses.threshold".into(),
                format!(
                    "threshold {threshold} is more than the {} witnesses listed",
                    witnesses.len()
                ),
            ));
        }
        if threshold == 0 && !witnesses.is_empty() {
            return Err(bad(
                "witnesses.threshold".into(),
                "threshold 0 with witnesses listed would trust checkpoints no witness cosigned; \
                 use at least 1, or list no witness to run without witnesses",
            ));
        }
        for (i, w) in witnesses.iter().enumerate() {
            let field = |f: &str| format!("witnesses.witness[{i}].{f}");
            if w.name.is_empty() || w.name.chars().any(char::is_control) {
                return Err(bad(
                    field("name"),
                    "must be non-empty, without control characters",
                ));
            }
            if w.key.signature_type() != SignatureType::CosignatureV1 {
                return Err(bad(
                    field("vkey"),
                    format!(
                        "must be a cosignature/v1 key (type 0x04), not type {:#04x}",
                        w.key.signature_type().id()
                    ),
                ));
            }
            if let Some(url) = &w.url {
                let rest = url
                    .strip_prefix("http://")
                    .or_else(|| url.strip_prefix("https://"));
                if rest.is_none_or(|r| r.is_empty() || r.starts_with('/'))
                    || url.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(bad(
                        field("url"),
                        "must be an http:// or https:// URL with a host",
                    ));
                }
            }
            for (j, o) in witnesses[..i].iter().enumerate() {
                if o.name == w.name {
                    return Err(bad(
                        field("name"),
                        format!("{:?} is also witness[{j}]'s name", w.name),
                    ));
                }
                if o.key.name() == w.key.name() {
                    return Err(bad(
                        field("vkey"),
                        format!("key name {:?} is also witness[{j}]'s", w.key.name()),
                    ));
                }
                if o.key.key_material() == w.key.key_material() {
                    return Err(bad(
                        field("vkey"),
                        format!("same public key as witness[{j}]"),
                    ));
                }
            }
        }
        Ok(Self {
            threshold,
            witnesses,
        })
    }

    /// The policy with no witnesses (threshold 0): checkpoints are trusted on
    /// the log's signature alone.
    pub fn none() -> Self {
        Self {
            threshold: 0,
            witnesses: Vec::new(),
        }
    }

    /// Whether this is the policy with no witnesses.
    pub fn is_none(&self) -> bool {
        self.witnesses.is_empty()
    }

    /// How many distinct witnesses must cosign.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The configured witnesses, in configuration order.
    pub fn witnesses(&self) -> &[Witness] {
        &self.witnesses
    }

    /// The witness whose key signed `sig` (same key name and key id).
    pub fn witness_for(&self, sig: &Signature) -> Option<&Witness> {
        self.witnesses
            .iter()
            .find(|w| w.key.name() == sig.name && w.key.key_id() == sig.key_id)
    }

    /// Checks a signed checkpoint against the log's key and this policy.
    ///
    /// The note must carry a valid signature by `log_key` (an Ed25519 or
    /// ECDSA note key whose name is the checkpoint's origin), and valid
    /// cosignatures by at least [`Self::threshold`] distinct configured
    /// witnesses. Signature lines by other keys are ignored, as the specs
    /// ask; a line by a configured key (log or witness) that does not verify
    /// rejects the note, since it shows someone tampering.
    pub fn verify_checkpoint(
        &self,
        note: &[u8],
        log_key: &VerifierKey,
    ) -> Result<CosignedCheckpoint> {
        if log_key.signature_type() == SignatureType::CosignatureV1 {
            return Err(WitnessError::LogKeyIsCosignatureKey(log_key.name().to_owned()).into());
        }
        let parsed = Note::parse(note)?;
        let body = parsed.text();
        let mut log_signed = false;
        let mut cosigned: Vec<Cosignature> = Vec::new();
        for sig in parsed.signatures() {
            if sig.name == log_key.name() && sig.key_id == log_key.key_id() {
                if !log_key.verify(body.as_bytes(), &sig.signature) {
                    return Err(NoteError::BadSignature(sig.name.clone()).into());
                }
                log_signed = true;
            } else if let Some(w) = self.witness_for(sig) {
                let timestamp = verify_cosignature(&w.key, body, sig).map_err(|e| {
                    WitnessError::BadCosignature {
                        witness: w.name.clone(),
                        reason: e.to_string(),
                    }
                })?;
                if !cosigned.iter().any(|c| c.witness == w.name) {
                    cosigned.push(Cosignature {
                        witness: w.name.clone(),
                        timestamp,
                    });
                }
            }
        }
        if !log_signed {
            return Err(NoteError::MissingSignature(log_key.name().to_owned()).into());
        }
        let checkpoint = Checkpoint::parse(body)?;
        if checkpoint.origin() != log_key.name() {
            return Err(crate::CheckpointError::WrongOrigin {
                expected: log_key.name().to_owned(),
                got: checkpoint.origin().to_owned(),
            }
            .into());
        }
        if cosigned.len() < self.threshold {
            let missing = self
                .witnesses
                .iter()
                .filter(|w| !cosigned.iter().any(|c| c.witness == w.name))
                .map(|w| w.name.clone())
                .collect();
            return Err(WitnessError::ThresholdNotMet {
                threshold: self.threshold,
                cosigned: cosigned.into_iter().map(|c| c.witness).collect(),
                missing,
            }
            .into());
        }
        Ok(CosignedCheckpoint {
            checkpoint,
            cosignatures: cosigned,
            note: parsed.to_text(),
        })
    }
}

/// One witness's valid cosignature on a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness's display name from the policy.
    pub witness: String,
    /// When the witness says it cosigned (POSIX seconds). The caller decides
    /// whether to reject timestamps in the future.
    pub timestamp: u64,
}

/// A checkpoint signed by its log and cosigned as the policy demands.
#[derive(Debug, Clone)]
pub struct CosignedCheckpoint {
    checkpoint: Checkpoint,
    cosignatures: Vec<Cosignature>,
    note: String,
}

impl CosignedCheckpoint {
    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.checkpoint.origin()
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.checkpoint.size()
    }

    /// The tree root.
    pub fn root(&self) -> &Hash {
        self.checkpoint.root()
    }

    /// The checkpoint body.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The configured witnesses that validly cosigned, in note order.
    pub fn cosignatures(&self) -> &[Cosignature] {
        &self.cosignatures
    }

    /// The whole signed note, as verified (log signature, cosignatures and
    /// any other lines).
    pub fn note(&self) -> &str {
        &self.note
    }
}

impl fmt::Display for CosignedCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .cosignatures
            .iter()
            .map(|c| c.witness.as_str())
            .collect();
        write!(
            f,
            "{} size {} cosigned by {}",
            self.origin(),
            self.size(),
            if names.is_empty() {
                "no witness".to_owned()
            } else {
                names.join(", ")
            }
        )
    }
}

/// Appends cosignature lines (as a witness returned them: `— <name>
/// <base64>`, with or without the final newline) to a signed note, and
/// returns the new note text.
///
/// Only the syntax is checked here; a line already in the note is not added
/// twice. Verify the result with [`WitnessPolicy::verify_checkpoint`] before
/// relying on it.
pub fn append_cosignatures<S: AsRef<str>>(signed_note: &str, lines: &[S]) -> Result<String> {
    let note = Note::parse(signed_note.as_bytes())?;
    let mut out = note.to_text();
    let mut all: Vec<Signature> = note.signatures().to_vec();
    for line in lines {
        let line = line.as_ref();
        let line = line.strip_suffix('\n').unwrap_or(line);
        let sig = Signature::parse_line(line)?;
        if all.contains(&sig) {
            continue;
        }
        if all.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures.into());
        }
        out.push_str(&sig.to_line());
        all.push(sig);
    }
    if out.len() > crate::note::MAX_NOTE_LEN {
        return Err(NoteError::TooLong.into());
    }
    Ok(out)
}
