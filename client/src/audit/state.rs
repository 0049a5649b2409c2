//! The last checkpoint this auditor verified in full, per log origin, so the
//! next run can check the log only grew.
//!
//! Stored as the signed note itself in
//! `$XDG_STATE_HOME/signet/audit/<origin>.checkpoint` (default
//! `~/.local/state/signet/audit/`), with every character of the origin other
//! than `A-Z a-z 0-9 . - _` replaced by `_`. It is re-verified with the pinned
//! key on every read, so a file edited by someone else is refused, not trusted.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::error::{AuditError, Result};

/// Largest state file read.
const MAX_STATE_FILE: u64 = super::source::MAX_SIGNED_CHECKPOINT_LEN;

/// Where remembered checkpoints live.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
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
        self.dir.join(format!("{}.checkpoint", sanitise(origin)))
    }

    /// The remembered signed checkpoint for `origin`, if any.
    pub fn load(&self, origin: &str) -> Result<Option<Vec<u8>>> {
        use std::io::Read as _;
        let path = self.path_for(origin);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(AuditError::Fetch {
                    what: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        let mut bytes = Vec::new();
        file.take(MAX_STATE_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| AuditError::Fetch {
                what: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Some(bytes))
    }

    /// Remembers `signed` for `origin`, atomically (write, sync, rename).
    pub fn save(&self, origin: &str, signed: &[u8]) -> Result<PathBuf> {
        let path = self.path_for(origin);
        let fail = |e: std::io::Error| AuditError::Write {
            what: path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(fail)?;
        tmp.write_all(signed).map_err(fail)?;
        tmp.as_file().sync_all().map_err(fail)?;
        tmp.persist(&path).map_err(|e| fail(e.error))?;
        Ok(path)
    }
}

/// The origin as a file name.
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
    fn round_trip() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path().join("a/b"));
        assert!(s.load("o/x").unwrap().is_none());
        s.save("o/x", b"one").unwrap();
        s.save("o/x", b"two").unwrap();
        assert_eq!(s.load("o/x").unwrap().unwrap(), b"two");
    }
}
