//! The log's high-water mark: the latest checkpoint the CA ever signed and
//! acted on, kept somewhere the store's file does not hold.
//!
//! Why: the store file can be replaced by anyone with write access to the
//! data directory — a backup operator restoring last week's `log.redb`, a
//! compromised storage admin. Such a store is internally consistent and
//! signed by the log key, so nothing inside it can reveal that it is old.
//! The mark can: the store must be at least as large as the mark, and
//! contain the marked tree as its prefix. The mark moves after the store
//! commits and before any certificate of that batch leaves the CA, so every
//! certificate a client ever received lies below it.
//!
//! Where: by default a private data object on the HSM token
//! ([`TokenMark`]), readable and writable only with the token's PIN, which
//! the storage admin does not have. [`FileMark`] keeps it in a file instead
//! (for a token without data objects, or to keep a second copy on other
//! storage); that file must live outside the data directory and its backups,
//! or it rolls back with them.
//!
//! The mark holds the signed checkpoint note itself, so it is verified with
//! the log key like any checkpoint: a forged mark is refused, not trusted.

use std::io::Write;
use std::path::PathBuf;

use signet_hsm::Token;

use crate::{Error, Result};

/// Where the high-water mark is kept.
pub trait HighWaterMark: Send + Sync {
    /// Names the place, for messages ("token data object …", "file …").
    fn describe(&self) -> String;
    /// The stored checkpoint notes: none if no mark was ever written, one,
    /// or two when an update was interrupted (the store keeps the larger).
    fn load(&self) -> Result<Vec<Vec<u8>>>;
    /// Replaces the stored note; durable when it returns.
    fn store(&self, note: &[u8]) -> Result<()>;
}

/// The mark as a private data object on the token that holds the log key.
pub struct TokenMark {
    token: Token,
    label: String,
}

impl TokenMark {
    /// The mark for the log with this origin (one object per origin, so one
    /// token can serve several CAs).
    pub fn new(token: Token, origin: &str) -> Self {
        Self {
            token,
            label: format!("signet-log-high-water {origin}"),
        }
    }
}

impl TokenMark {
    /// The data object's label.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl HighWaterMark for TokenMark {
    fn describe(&self) -> String {
        format!("the token's data object {:?}", self.label)
    }

    fn load(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self.token.read_data_objects(&self.label)?)
    }

    fn store(&self, note: &[u8]) -> Result<()> {
        Ok(self.token.replace_data_object(&self.label, note)?)
    }
}

/// The mark as a file, replaced atomically (write, fsync, rename, fsync of
/// the directory).
pub struct FileMark {
    path: PathBuf,
}

impl FileMark {
    /// A mark kept at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

/// A mark larger than this is not one of ours.
const MAX_MARK_LEN: u64 = 16 * 1024;

impl HighWaterMark for FileMark {
    fn describe(&self) -> String {
        format!("the file {}", self.path.display())
    }

    fn load(&self) -> Result<Vec<Vec<u8>>> {
        let Some(file) = super::open_regular_file(&self.path)? else {
            return Ok(Vec::new());
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_MARK_LEN + 1), &mut bytes)
            .map_err(|e| self.file_err(e))?;
        if bytes.len() as u64 > MAX_MARK_LEN {
            return Err(Error::Integrity {
                index: None,
                problem: format!("{} is too large to be a high-water mark", self.describe()),
            });
        }
        Ok(vec![bytes])
    }

    fn store(&self, note: &[u8]) -> Result<()> {
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.file_err(e))?;
        let tmp = self.path.with_extension("tmp-signet");
        let mut file = std::fs::File::create(&tmp).map_err(|e| self.file_err(e))?;
        file.write_all(note).map_err(|e| self.file_err(e))?;
        file.sync_all().map_err(|e| self.file_err(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.file_err(e))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.file_err(e))
    }
}

impl FileMark {
    fn file_err(&self, e: std::io::Error) -> Error {
        Error::File {
            path: self.path.clone(),
            reason: format!("high-water mark: {e}"),
        }
    }
}

/// The mark: the largest of the stored notes, each verified with the log
/// key (a note that does not verify is an integrity failure, not ignored).
pub(crate) fn load_mark(
    mark: &dyn HighWaterMark,
    verifier: &signet_log::note::VerifierKey,
) -> Result<Option<super::SignedCheckpoint>> {
    let mut best: Option<super::SignedCheckpoint> = None;
    for note in mark.load()? {
        let checkpoint = super::SignedCheckpoint::verify(&note, verifier).map_err(|e| {
            super::verify::broken(
                None,
                format!(
                    "the high-water mark in {} does not verify with the log key: {e}",
                    mark.describe()
                ),
            )
        })?;
        if best.as_ref().is_none_or(|b| checkpoint.size > b.size) {
            best = Some(checkpoint);
        }
    }
    Ok(best)
}
