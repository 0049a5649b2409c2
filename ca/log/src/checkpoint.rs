//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): the tree head
//! the log signs.
//!
//! ```text
//! ca.example.com/signet-log
//! 20852163
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//! ```
//!
//! The body is the text of a [signed note](crate::note). Parsing is strict,
//! because two spellings of one tree head would let a log show different
//! texts to different people while claiming the same state: the size has no
//! sign and no leading zeros, the hash is canonical base64 of exactly 32
//! bytes, extension lines are non-empty, and nothing else may follow.
//!
//! Signet's origin is `<CA host name>/signet-log` (see `docs/log-format.md`);
//! [`open_checkpoint`] checks it, so a checkpoint of another log signed by the
//! same key is not mistaken for this one.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::error::{CheckpointError, Result};
use crate::merkle::{Hash, HASH_LEN};
use crate::note::{Note, NoteSigner, VerifiedNote, VerifierSet};

/// Longest checkpoint body accepted.
pub const MAX_CHECKPOINT_LEN: usize = 4096;

/// Most extension lines accepted.
pub const MAX_EXTENSIONS: usize = 16;

/// A checkpoint body: which log, how many entries, and the tree root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Self> {
        Self::with_extensions(origin, size, root, Vec::new())
    }

    /// A checkpoint with extension lines (which Signet does not use; they are
    /// supported so a verifier can read other logs' checkpoints).
    pub fn with_extensions(
        origin: &str,
        size: u64,
        root: Hash,
        extensions: Vec<String>,
    ) -> Result<Self> {
        if !valid_line(origin) {
            return Err(CheckpointError::BadOrigin.into());
        }
        if extensions.len() > MAX_EXTENSIONS {
            return Err(CheckpointError::TooManyExtensions.into());
        }
        if !extensions.iter().all(|e| valid_line(e)) {
            return Err(CheckpointError::BadExtension.into());
        }
        let c = Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        };
        if c.to_text().len() > MAX_CHECKPOINT_LEN {
            return Err(CheckpointError::TooLong.into());
        }
        Ok(c)
    }

    /// Parses a checkpoint body (the note text, ending in a newline).
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_CHECKPOINT_LEN {
            return Err(CheckpointError::TooLong.into());
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let mut lines = body.split('\n');
        let origin = lines.next().ok_or(CheckpointError::TooFewLines)?;
        let size = lines.next().ok_or(CheckpointError::TooFewLines)?;
        let root = lines.next().ok_or(CheckpointError::TooFewLines)?;
        if !valid_line(origin) {
            return Err(CheckpointError::BadOrigin.into());
        }
        let size = parse_size(size).ok_or(CheckpointError::BadSize)?;
        let root = parse_root(root).ok_or(CheckpointError::BadRootHash)?;
        let mut extensions = Vec::new();
        for line in lines {
            if extensions.len() == MAX_EXTENSIONS {
                return Err(CheckpointError::TooManyExtensions.into());
            }
            if !valid_line(line) {
                return Err(CheckpointError::BadExtension.into());
            }
            extensions.push(line.to_owned());
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The body as note text, ending in a newline.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Signs the checkpoint as a note. The log key's name should be the origin.
    pub fn sign(&self, signers: &[&dyn NoteSigner]) -> Result<Note> {
        Note::sign(&self.to_text(), signers)
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of entries in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Root hash of the tree.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// Extension lines, if any.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }
}

/// A checkpoint whose note carried a valid signature by a trusted key.
#[derive(Debug, Clone)]
pub struct VerifiedCheckpoint {
    /// The checkpoint body.
    pub checkpoint: Checkpoint,
    /// The verified note it came from, to see which keys signed.
    pub note: VerifiedNote,
}

/// Parses a signed checkpoint, checks its signatures against `verifiers` and
/// its origin against `origin`.
///
/// As the signed-note spec requires, signatures by unknown keys are ignored
/// and at least one known signature must verify. To insist on one particular
/// key (the log's own), call [`VerifiedNote::require`] on the result.
pub fn open_checkpoint(
    signed: &[u8],
    origin: &str,
    verifiers: &VerifierSet,
) -> Result<VerifiedCheckpoint> {
    let note = Note::parse(signed)?;
    let verified = note.verify(verifiers)?;
    let checkpoint = Checkpoint::parse(verified.text())?;
    if checkpoint.origin() != origin {
        return Err(CheckpointError::WrongOrigin {
            expected: origin.to_owned(),
            got: checkpoint.origin().to_owned(),
        }
        .into());
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        note: verified,
    })
}

/// A line is non-empty and free of control characters (the note layer
/// already forbids them; checked again so a `Checkpoint` built in code obeys
/// the same rules as one parsed).
fn valid_line(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_control)
}

fn parse_size(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

fn parse_root(s: &str) -> Option<Hash> {
    let bytes = STANDARD.decode(s).ok()?;
    let root: Hash = bytes.try_into().ok()?;
    // Reject other spellings of the same bytes (non-zero padding bits).
    if STANDARD.encode(root) != s {
        return None;
    }
    debug_assert_eq!(root.len(), HASH_LEN);
    Some(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn round_trip() {
        let c = Checkpoint::parse(EXAMPLE).unwrap();
        assert_eq!(c.origin(), "example.com/behind-the-sofa");
        assert_eq!(c.size(), 20852163);
        assert_eq!(c.to_text(), EXAMPLE);
        let e = format!("{EXAMPLE}ext one\next two\n");
        assert_eq!(Checkpoint::parse(&e).unwrap().extensions().len(), 2);
        assert_eq!(Checkpoint::parse(&e).unwrap().to_text(), e);
    }
}
