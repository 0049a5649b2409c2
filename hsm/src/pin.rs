//! The token PIN as a secret type.
//!
//! A PIN unlocks every CA key, so it must never reach a command line, a log
//! line, an error message or `Debug` output. It is read from a file or an
//! environment variable, kept in memory that is zeroized on drop, and handed
//! to the PKCS#11 layer only at login.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::secret_file::read_secret_file;
use crate::{Error, Result};

/// Where the PIN comes from. Never the command line.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSource {
    /// A file whose first line is the PIN (a trailing newline is ignored).
    File(PathBuf),
    /// An environment variable holding the PIN.
    Env(String),
}

impl fmt::Debug for PinSource {
    // Names where the PIN lives, never the PIN itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "PinSource::File({})", path.display()),
            Self::Env(name) => write!(f, "PinSource::Env({name})"),
        }
    }
}

impl PinSource {
    /// Reads the PIN. Fails with a message that names the source, never the value.
    pub fn load(&self) -> Result<Pin> {
        match self {
            Self::File(path) => Pin::from_file(path),
            Self::Env(name) => {
                let value = std::env::var(name).map_err(|_| Error::PinSource {
                    source_name: format!("environment variable {name}"),
                    reason: "is not set or not valid UTF-8",
                })?;
                Pin::new(
                    Zeroizing::new(value),
                    &format!("environment variable {name}"),
                )
            }
        }
    }
}

/// A user PIN for a token. Redacted in `Debug`, zeroized on drop, not `Clone`,
/// not `Serialize`.
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// The longest PIN accepted; PKCS#11 tokens allow far less, this only bounds memory.
    pub const MAX_LEN: usize = 256;

    fn new(value: Zeroizing<String>, source_name: &str) -> Result<Self> {
        let trimmed = value.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            return Err(Error::PinSource {
                source_name: source_name.to_owned(),
                reason: "is empty",
            });
        }
        if trimmed.len() > Self::MAX_LEN || trimmed.contains(['\r', '\n', '\0']) {
            return Err(Error::PinSource {
                source_name: source_name.to_owned(),
                reason: "does not hold a single-line PIN",
            });
        }
        Ok(Self(Zeroizing::new(trimmed.to_owned())))
    }

    /// Reads a PIN from a file: the whole file, one line, trailing newline
    /// ignored. The file is opened once and checked on the open handle (see
    /// `secret_file`): no symbolic link, no FIFO or other special file, no
    /// group or other access (like ssh with private keys), at most 256 bytes.
    pub fn from_file(path: &Path) -> Result<Self> {
        let source_name = format!("PIN file {}", path.display());
        let bytes = read_secret_file(path).map_err(|problem| Error::PinSource {
            source_name: source_name.clone(),
            reason: problem.reason(),
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::PinSource {
            source_name: source_name.clone(),
            reason: "is not UTF-8",
        })?;
        Self::new(Zeroizing::new(text.to_owned()), &source_name)
    }

    /// Builds a PIN from a value already held in memory (tests, provisioning tools).
    pub fn from_secret(value: Zeroizing<String>) -> Result<Self> {
        Self::new(value, "PIN")
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn debug_never_shows_the_pin() {
        let pin = Pin::from_secret(Zeroizing::new("123456".into())).unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
    }

    #[test]
    fn file_pin_drops_trailing_newline() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "98765").unwrap();
        let pin = Pin::from_file(file.path()).unwrap();
        assert_eq!(pin.expose(), "98765");
    }

    #[test]
    fn empty_pin_file_is_refused_without_echoing_content() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = Pin::from_file(file.path()).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn multi_line_pin_file_is_refused() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "1234\n5678\n").unwrap();
        let err = Pin::from_file(file.path()).unwrap_err().to_string();
        assert!(err.contains("single-line"), "{err}");
        assert!(!err.contains("1234"), "{err}");
    }

    #[test]
    fn pin_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "98765").unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Pin::from_file(file.path()).unwrap_err().to_string();
        assert!(err.contains("chmod 600") && !err.contains("98765"), "{err}");
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(Pin::from_file(file.path()).is_ok());
    }

    #[test]
    fn pin_file_attacks_are_refused_by_name() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("pin");
        std::fs::write(&good, "98765\n").unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Pin::from_file(&good).unwrap().expose(), "98765");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'7'; 300]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        let open = dir.path().join("open");
        std::fs::write(&open, "98765\n").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o604)).unwrap();

        for (path, expected) in [
            (&link, "is a symbolic link"),
            (&fifo, "is not a regular file"),
            (&big, "is larger than 256 bytes"),
            (&open, "chmod 600"),
        ] {
            let err = Pin::from_file(path).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("PIN file {}", path.display())),
                "{err}"
            );
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("98765") && !err.contains("777"), "{err}");
        }
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = PinSource::Env("SIGNET_TEST_NO_SUCH_VAR_4711".into())
            .load()
            .unwrap_err()
            .to_string();
        assert!(err.contains("SIGNET_TEST_NO_SUCH_VAR_4711"), "{err}");
    }
}
