//! The last checkpoint this auditor verified in full, per log origin, so the
//! next run can check the log only grew.
//!
//! Stored as the signed note itself (usable as a `--since` file) in
//! `$XDG_STATE_HOME/signet/audit/<prefix>-<hash>.checkpoint` (default
//! `~/.local/state/signet/audit/`): `<prefix>` is the origin with every
//! character other than `A-Z a-z 0-9 . - _` replaced by `_` (cut to 64
//! characters), for people to read; `<hash>` is 32 hex digits of the SHA-256
//! of the exact origin, so two origins never share a file. The note's first
//! line is its origin, checked on every read along with the signature by the
//! pinned key, so a file edited, swapped or written for another log is
//! refused, not trusted.
//!
//! Updates happen under an exclusive lock on `<file>.lock` (a file that is
//! never replaced, unlike the checkpoint file, so every process locks the
//! same one), re-read under the lock, and written atomically (temporary
//! file, fsync, rename, fsync of the directory). The caller decides under
//! the lock whether the new checkpoint may replace the one found there, so
//! two runs at once cannot move the remembered checkpoint backwards.
//!
//! Files written by earlier versions (named by the prefix alone, which two
//! origins could share) are still read when they hold this origin's
//! checkpoint, and removed once it is remembered under the new name.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::error::{AuditError, Result};
use super::localfile::read_regular;

/// Largest state file read.
const MAX_STATE_FILE: u64 = super::source::MAX_SIGNED_CHECKPOINT_LEN;

/// Longest readable prefix of a state file name.
const MAX_PREFIX: usize = 64;

/// Where remembered checkpoints live.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// A remembered signed checkpoint, as read (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its bytes: a signed note.
    pub bytes: Vec<u8>,
}

impl StateDir {
    /// `$XDG_STATE_HOME/signet/audit`, else `$HOME/.local/state/signet/audit`;
    /// `None` if neither variable is set.
    pub fn from_env() -> Option<Self> {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty() && Path::new(v).is_absolute())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".local/state"))
            })?;
        Some(Self::new(base.join("signet/audit")))
    }

    /// State kept in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file for `origin`.
    pub fn path_for(&self, origin: &str) -> PathBuf {
        self.dir.join(file_name(origin))
    }

    /// The file an earlier version used for `origin`.
    fn legacy_path_for(&self, origin: &str) -> PathBuf {
        self.dir.join(format!("{}.checkpoint", sanitise(origin)))
    }

    /// The remembered signed checkpoint for `origin`, if any. The caller
    /// verifies it (signature and origin) before trusting it.
    ///
    /// Read without the lock: the file is only ever replaced whole, by rename.
    pub fn load(&self, origin: &str) -> Result<Option<Stored>> {
        let path = self.path_for(origin);
        if let Some(bytes) = read_bounded(&path)? {
            return Ok(Some(Stored { path, bytes }));
        }
        let legacy = self.legacy_path_for(origin);
        match read_bounded(&legacy)? {
            // Another origin's file under the shared old name is not ours.
            Some(bytes) if note_origin(&bytes) == Some(origin) => Ok(Some(Stored {
                path: legacy,
                bytes,
            })),
            _ => Ok(None),
        }
    }

    /// Takes the exclusive lock on `origin`'s state, waiting for another
    /// run that holds it. Released when the guard is dropped.
    pub fn lock(&self, origin: &str) -> Result<StateLock<'_>> {
        let path = self.path_for(origin);
        let lock_path = path.with_extension("checkpoint.lock");
        let fail = |e: std::io::Error| AuditError::Write {
            what: lock_path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(fail)?;
        file.lock().map_err(fail)?;
        Ok(StateLock {
            state: self,
            origin: origin.to_owned(),
            _lock: file,
        })
    }
}

/// Exclusive access to one origin's remembered checkpoint; see
/// [`StateDir::lock`].
#[derive(Debug)]
pub struct StateLock<'a> {
    state: &'a StateDir,
    origin: String,
    /// Holds the lock; closing the file releases it.
    _lock: File,
}

impl StateLock<'_> {
    /// What is remembered now (another run may have written it since this
    /// run last looked).
    pub fn load(&self) -> Result<Option<Stored>> {
        self.state.load(&self.origin)
    }

    /// Remembers `signed` (already verified, and judged by the caller not
    /// to go backwards from [`StateLock::load`]), atomically.
    pub fn store(&self, signed: &[u8]) -> Result<PathBuf> {
        let dir = &self.state.dir;
        let path = self.state.path_for(&self.origin);
        let fail = |e: std::io::Error| AuditError::Write {
            what: path.display().to_string(),
            reason: e.to_string(),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
        tmp.write_all(signed).map_err(fail)?;
        tmp.as_file().sync_all().map_err(fail)?;
        tmp.persist(&path).map_err(|e| fail(e.error))?;
        // The rename is durable only once the directory is.
        File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
        // An earlier version's file for this origin is now superseded.
        let legacy = self.state.legacy_path_for(&self.origin);
        if let Ok(Some(bytes)) = read_bounded(&legacy) {
            if note_origin(&bytes) == Some(self.origin.as_str()) {
                let _ = std::fs::remove_file(&legacy);
            }
        }
        Ok(path)
    }
}

/// Reads the state file, at most [`MAX_STATE_FILE`] bytes, never from a
/// FIFO; `None` if there is no file.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>> {
    match read_regular(path, MAX_STATE_FILE) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(AuditError::Fetch {
            what: path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

/// The first line of a note (a checkpoint's origin), unverified.
fn note_origin(bytes: &[u8]) -> Option<&str> {
    let line = bytes.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(line).ok()
}

/// The state file name of `origin`: a readable prefix and a hash of the
/// exact origin.
pub fn file_name(origin: &str) -> String {
    let mut prefix = sanitise(origin);
    // `sanitise` leaves ASCII only, so any byte index is a char boundary.
    prefix.truncate(MAX_PREFIX);
    let digest = Sha256::digest(origin.as_bytes());
    format!("{prefix}-{}.checkpoint", hex::encode(&digest[..16]))
}

/// The origin with every character but `A-Z a-z 0-9 . - _` replaced by `_`
/// and leading dots removed (no hidden files, no `..`).
pub fn sanitise(origin: &str) -> String {
    origin
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises() {
        assert_eq!(
            sanitise("ca.example.com/signet-log"),
            "ca.example.com_signet-log"
        );
        assert_eq!(sanitise("../x y"), "_x_y");
        assert_eq!(sanitise("é"), "_");
    }

    #[test]
    fn origins_that_sanitise_alike_get_their_own_files() {
        let a = file_name("ca.example.com/signet-log");
        let b = file_name("ca.example.com_signet-log");
        let c = file_name("ca.example.com signet-log");
        assert!(a.starts_with("ca.example.com_signet-log-"), "{a}");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
        let long = file_name(&"x".repeat(1000));
        assert_eq!(long.len(), MAX_PREFIX + 1 + 32 + ".checkpoint".len());
        assert_ne!(long, file_name(&"x".repeat(999)));
        assert!(!file_name("..").starts_with('.'));
    }

    #[test]
    fn round_trip_under_the_lock() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path().join("a/b"));
        assert!(s.load("o/x").unwrap().is_none());
        let lock = s.lock("o/x").unwrap();
        assert!(lock.load().unwrap().is_none());
        lock.store(b"o/x\none").unwrap();
        lock.store(b"o/x\ntwo").unwrap();
        assert_eq!(lock.load().unwrap().unwrap().bytes, b"o/x\ntwo");
        drop(lock);
        assert_eq!(s.load("o/x").unwrap().unwrap().bytes, b"o/x\ntwo");
        assert!(s.load("o_x").unwrap().is_none());
    }

    #[test]
    fn old_file_names_are_read_only_for_their_own_origin() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path());
        std::fs::write(d.path().join("o_x.checkpoint"), b"o/x\n5\n").unwrap();
        let stored = s.load("o/x").unwrap().unwrap();
        assert_eq!(stored.bytes, b"o/x\n5\n");
        // The other origin that shared the old name does not see it.
        assert!(s.load("o_x").unwrap().is_none());
        // Once remembered under the new name, the old file goes.
        s.lock("o/x").unwrap().store(b"o/x\n6\n").unwrap();
        assert!(!d.path().join("o_x.checkpoint").exists());
        assert_eq!(s.load("o/x").unwrap().unwrap().bytes, b"o/x\n6\n");
    }

    /// Whether another open file description of `origin`'s lock file can
    /// take the lock now, shared or exclusive (`flock` locks of two
    /// descriptions conflict, also in one process). Never waits.
    fn lock_is_free(s: &StateDir, origin: &str) -> (bool, bool) {
        let path = s.path_for(origin).with_extension("checkpoint.lock");
        let probe = File::options().write(true).open(path).unwrap();
        let free = |r: std::result::Result<(), std::fs::TryLockError>| match r {
            Ok(()) => {
                probe.unlock().unwrap();
                true
            }
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => panic!("try_lock: {e}"),
        };
        let shared = free(probe.try_lock_shared());
        let exclusive = free(probe.try_lock());
        (shared, exclusive)
    }

    #[test]
    fn a_second_lock_waits_for_the_first() {
        use std::sync::mpsc;
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path());
        let first = s.lock("o").unwrap();
        // Held: nobody else gets it, not even to share.
        assert_eq!(lock_is_free(&s, "o"), (false, false));
        // Another origin's lock is its own.
        let other = s.lock("p").unwrap();
        assert_eq!(lock_is_free(&s, "o"), (false, false));
        drop(other);

        let (held_tx, held_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let s = &s;
            let waiter = scope.spawn(move || {
                let second = s.lock("o").unwrap();
                held_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                drop(second);
            });
            // The first is still held, so the waiter cannot have it.
            assert_eq!(lock_is_free(s, "o"), (false, false));
            assert!(held_rx.try_recv().is_err(), "second lock taken while held");
            drop(first);
            // The waiter gets it once the first is gone, and holds it alone.
            held_rx.recv().unwrap();
            assert_eq!(lock_is_free(s, "o"), (false, false));
            go_tx.send(()).unwrap();
            waiter.join().unwrap();
        });
        // Released with the guard.
        assert_eq!(lock_is_free(&s, "o"), (true, true));
    }
}
