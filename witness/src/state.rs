//! The witness's durable state: for every log, the latest checkpoint it
//! cosigned, as the signed note the log sent (so the file proves itself).
//!
//! One file per log in the state directory, `<hex SHA-256 of the origin>.checkpoint`
//! (origins may hold any character but a newline; the file's first line
//! names the log). A new checkpoint is written to a temporary file, synced,
//! renamed over the old one and the directory synced, all before the
//! cosignature leaves: after a crash the file holds either the old or the new
//! checkpoint, never a mix, and never an older one than was cosigned.
//!
//! Back it up like any small directory; restoring an old copy would let the
//! witness cosign a fork of what it cosigned since, so restore only the
//! newest copy (or none: a witness with no state simply trusts the next
//! checkpoint it sees, as on its first day).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use signet_log::checkpoint::Checkpoint;
use signet_log::merkle::Hash;
use signet_log::note::Note;

use crate::config::LogConfig;
use crate::error::{Error, Result};

/// The latest checkpoint cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The signed note as the log sent it.
    pub note: String,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// Makes a directory's entries durable (after a create or a rename in it).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl StateDir {
    /// Opens the state directory, creating it (mode 0700) if missing.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::State(format!("cannot create {}: {e}", dir.display())))?;
        }
        if !dir.is_dir() {
            return Err(Error::State(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The file holding `origin`'s latest checkpoint.
    pub fn path_for(&self, origin: &str) -> PathBuf {
        self.dir.join(format!(
            "{}.checkpoint",
            hex::encode(Sha256::digest(origin.as_bytes()))
        ))
    }

    /// Reads `log`'s latest checkpoint, if any, and checks it: the log's key
    /// must have signed it and its origin must be the log's. A file that
    /// fails is an error, never ignored: the witness would otherwise forget
    /// what it cosigned.
    pub fn load(&self, log: &LogConfig) -> Result<Option<Latest>> {
        let path = self.path_for(&log.origin);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::State(format!("cannot read {}: {e}", path.display()))),
        };
        let fail = |why: String| {
            Error::State(format!(
                "{} (latest checkpoint of {:?}) {why}; restore it from a backup, or move it aside to trust the log's next checkpoint anew",
                path.display(),
                log.origin
            ))
        };
        let note = Note::parse(&bytes).map_err(|e| fail(format!("is not a signed note: {e}")))?;
        note.verify(&log.verifiers())
            .map_err(|e| fail(format!("does not verify with the configured log key: {e}")))?;
        let checkpoint = Checkpoint::parse(note.text())
            .map_err(|e| fail(format!("is not a checkpoint: {e}")))?;
        if checkpoint.origin() != log.origin {
            return Err(fail(format!("is for origin {:?}", checkpoint.origin())));
        }
        Ok(Some(Latest {
            size: checkpoint.size(),
            root: *checkpoint.root(),
            note: note.to_text(),
        }))
    }

    /// Durably replaces `origin`'s latest checkpoint with `note`.
    pub fn store(&self, origin: &str, note: &str) -> std::io::Result<()> {
        let path = self.path_for(origin);
        let tmp = path.with_extension("checkpoint.tmp");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        file.write_all(note.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)
    }
}
