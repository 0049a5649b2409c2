//! The PIV PIN as a secret: read from the file `SIGNET_PIN_FILE` names (for
//! automation) or prompted on the terminal without echo. Never taken from
//! argv, never printed: `Debug` is redacted and the bytes are zeroized when
//! dropped.

use std::io::Read as _;
use std::path::Path;

use zeroize::Zeroizing;

use super::CardError;

/// The environment variable naming a file that holds the PIN (one line).
pub const PIN_FILE_ENV: &str = "SIGNET_PIN_FILE";

/// A PIV PIN (6 to 8 bytes). Zeroized on drop; its `Debug` shows no digit.
pub struct Pin(Zeroizing<String>);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

impl Pin {
    /// A PIN from a string, checked for the PIV length (6–8 bytes).
    pub fn new(value: Zeroizing<String>) -> Result<Self, CardError> {
        let len = value.len();
        if !(6..=8).contains(&len) {
            return Err(CardError::PinFormat(
                "a PIV PIN is 6 to 8 characters long".into(),
            ));
        }
        Ok(Self(value))
    }

    /// The PIN's bytes, for the VERIFY command only.
    pub(crate) fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The PIN from `SIGNET_PIN_FILE` when it is set, else from the terminal
    /// (`prompt` is shown; nothing is echoed). Fails when neither is
    /// possible (no file, no terminal).
    pub fn from_env_or_prompt(prompt: &str) -> Result<Self, CardError> {
        match std::env::var_os(PIN_FILE_ENV) {
            Some(path) if !path.is_empty() => Self::from_file(Path::new(&path)),
            _ => Self::prompt(prompt),
        }
    }

    /// Prompts on the terminal without echo.
    pub fn prompt(prompt: &str) -> Result<Self, CardError> {
        let value = rpassword::prompt_password(prompt).map_err(|e| {
            CardError::PinFormat(format!(
                "could not read the PIN from the terminal ({e}); set {PIN_FILE_ENV} to a file holding it"
            ))
        })?;
        Self::new(Zeroizing::new(value))
    }

    /// Reads the PIN from a file: the first line, which must be the whole
    /// content but for a trailing newline. The file must be a regular file
    /// readable by its owner only (not a link, a FIFO, or group/world
    /// readable), at most 64 bytes. Its content never appears in an error.
    pub fn from_file(path: &Path) -> Result<Self, CardError> {
        use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
        let bad = |reason: String| CardError::PinFile {
            path: path.display().to_string(),
            reason,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| bad(format!("cannot open it: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| bad(format!("cannot read its metadata: {e}")))?;
        if !meta.file_type().is_file() {
            return Err(bad("it is not a regular file".into()));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(bad(format!(
                "its mode {:o} lets others read it; chmod 600 it",
                meta.mode() & 0o777
            )));
        }
        let mut buf = Zeroizing::new(Vec::new());
        file.take(65)
            .read_to_end(&mut buf)
            .map_err(|e| bad(format!("cannot read it: {e}")))?;
        if buf.len() > 64 {
            return Err(bad("it is longer than a PIN".into()));
        }
        let text = std::str::from_utf8(&buf).map_err(|_| bad("it is not UTF-8 text".into()))?;
        let line = text.strip_suffix('\n').unwrap_or(text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.contains('\n') {
            return Err(bad("it holds more than one line".into()));
        }
        Self::new(Zeroizing::new(line.to_owned()))
            .map_err(|_| bad("its first line is not a PIV PIN (6 to 8 characters)".into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn pin_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let ok = write(dir.path(), "ok", "123456\n", 0o600);
        assert_eq!(Pin::from_file(&ok).unwrap().expose(), b"123456");
        let crlf = write(dir.path(), "crlf", "1234567\r\n", 0o600);
        assert_eq!(Pin::from_file(&crlf).unwrap().expose(), b"1234567");
        let open = write(dir.path(), "open", "123456\n", 0o644);
        let err = Pin::from_file(&open).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("123456"));
        let short = write(dir.path(), "short", "12345\n", 0o600);
        let err = Pin::from_file(&short).unwrap_err().to_string();
        assert!(!err.contains("12345\n") && err.contains("6 to 8"), "{err}");
        let two = write(dir.path(), "two", "123456\n654321\n", 0o600);
        assert!(Pin::from_file(&two).is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        assert!(Pin::from_file(&link).is_err());
        assert!(Pin::from_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let pin = Pin::new(Zeroizing::new("987654".into())).unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
    }
}
