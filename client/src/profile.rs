//! The engineer's profile: where the CA is, who they are, which card, and
//! what they pinned at first login (the log key and the CA's TLS root).
//! Also where the certificates `signet login` obtains are kept.
//!
//! Files:
//! - `$XDG_CONFIG_HOME/signet/profile.toml` (default `~/.config/signet/`):
//!   the profile, mode 0600.
//! - `$XDG_CONFIG_HOME/signet/ca-root.pem`: the CA root pinned at first
//!   login (copied from `--ca-cert`).
//! - `$XDG_STATE_HOME/signet/` (default `~/.local/state/signet/`):
//!   `ssh-cert.pub`, the OpenSSH certificate as one line; `x509-cert.pem`,
//!   the X.509 certificate (also stored in slot 9a); `login.json`, what the
//!   last login returned (user, roles, principals, validity, log indexes).
//!   These are public data, but written 0600 like the rest.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What can go wrong with the profile files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Neither `XDG_CONFIG_HOME`/`XDG_STATE_HOME` nor `HOME` is set.
    #[error("cannot find the home directory: set HOME (or XDG_CONFIG_HOME and XDG_STATE_HOME)")]
    NoHome,
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The profile is not valid TOML of the expected shape.
    #[error("{path} is not a valid Signet profile: {detail}")]
    Malformed {
        /// The file.
        path: String,
        /// What the parser said.
        detail: String,
    },
}

/// The profile: written by `signet login`, read by every command after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The CA's API base URL, e.g. `https://ca.example.com:8443`.
    pub ca_url: String,
    /// The user name at the CA.
    pub user: String,
    /// The YubiKey's serial, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    /// The log's origin line, pinned at first login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_origin: Option<String>,
    /// The log's verifier key (a C2SP note vkey line), pinned at first login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
    /// The CA's X.509 root (PEM file) the TLS connection is checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_root: Option<PathBuf>,
    /// The SSH principals `signet login` asks for (empty: the user name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    /// SHA-256 (hex) of the public keys `signet login` generated in slot 9a,
    /// newest last: a key listed here was made by Signet, so Signet may
    /// replace it when the CA says it is weaker than the roles demand. A key
    /// made by anything else is replaced only with the owner's consent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signet_keys: Vec<String>,
    /// How to reach the security key for the touch: `auto` (USB HID when a
    /// FIDO HID key is plugged in, else PC/SC), `usb` or `pcsc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<crate::login::TransportSetting>,
    /// The Signet proxy's address for SSH tunnels, `HOST:PORT` (set by
    /// `signet login --proxy` and `signet config --proxy`); when absent,
    /// the host and port of `ca_url` (one port serves both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

/// How many generated keys the profile remembers (one per YubiKey in use
/// is enough; a few cover switching between keys).
const SIGNET_KEYS_KEPT: usize = 8;

impl Profile {
    /// Whether Signet generated the key with this SubjectPublicKeyInfo.
    pub fn made_by_signet(&self, spki_der: &[u8]) -> bool {
        self.signet_keys.contains(&key_id(spki_der))
    }

    /// Remembers that Signet generated the key with this SubjectPublicKeyInfo.
    pub fn remember_signet_key(&mut self, spki_der: &[u8]) {
        let id = key_id(spki_der);
        self.signet_keys.retain(|k| *k != id);
        self.signet_keys.push(id);
        let extra = self.signet_keys.len().saturating_sub(SIGNET_KEYS_KEPT);
        self.signet_keys.drain(..extra);
    }
}

fn key_id(spki_der: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(spki_der))
}

fn base_dir(xdg: &str, fallback: &str) -> Result<PathBuf, ProfileError> {
    if let Some(dir) = std::env::var_os(xdg).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        // The XDG spec: relative paths are invalid and ignored.
        if dir.is_absolute() {
            return Ok(dir.join("signet"));
        }
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(ProfileError::NoHome)?;
    Ok(PathBuf::from(home).join(fallback).join("signet"))
}

/// `$XDG_CONFIG_HOME/signet` (default `~/.config/signet`).
pub fn config_dir() -> Result<PathBuf, ProfileError> {
    base_dir("XDG_CONFIG_HOME", ".config")
}

/// `$XDG_STATE_HOME/signet` (default `~/.local/state/signet`).
pub fn state_dir() -> Result<PathBuf, ProfileError> {
    base_dir("XDG_STATE_HOME", ".local/state")
}

/// The profile file.
pub fn profile_path() -> Result<PathBuf, ProfileError> {
    Ok(config_dir()?.join("profile.toml"))
}

/// The pinned CA root (PEM), copied there at first login.
pub fn ca_root_path() -> Result<PathBuf, ProfileError> {
    Ok(config_dir()?.join("ca-root.pem"))
}

/// The OpenSSH user certificate, one line (`ecdsa-sha2-nistp256-cert-v01@openssh.com AAAA…`).
pub fn ssh_certificate_path() -> Result<PathBuf, ProfileError> {
    Ok(state_dir()?.join("ssh-cert.pub"))
}

/// The X.509 client certificate (PEM), the same one stored in slot 9a.
pub fn x509_certificate_path() -> Result<PathBuf, ProfileError> {
    Ok(state_dir()?.join("x509-cert.pem"))
}

/// What the last login returned, as JSON (for `signet status`).
pub fn login_record_path() -> Result<PathBuf, ProfileError> {
    Ok(state_dir()?.join("login.json"))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ProfileError + '_ {
    move |source| ProfileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `contents` to `path` atomically (a temporary file in the same
/// directory, fsynced, renamed over), mode 0600, creating the directory
/// (0700) if needed.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), ProfileError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    tmp.write_all(contents).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| ProfileError::Io {
        path: path.display().to_string(),
        source: e.error,
    })?;
    Ok(())
}

/// Removes `path`; a missing file is fine. Returns whether it existed.
pub fn remove_if_present(path: &Path) -> Result<bool, ProfileError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

impl Profile {
    /// Reads the profile; `Ok(None)` when there is none yet.
    pub fn load() -> Result<Option<Self>, ProfileError> {
        Self::load_from(&profile_path()?)
    }

    /// Reads a profile file; `Ok(None)` when it does not exist.
    pub fn load_from(path: &Path) -> Result<Option<Self>, ProfileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| ProfileError::Malformed {
                path: path.display().to_string(),
                detail: e.message().to_owned(),
            })
    }

    /// Writes the profile (atomically, mode 0600).
    pub fn save(&self) -> Result<(), ProfileError> {
        self.save_to(&profile_path()?)
    }

    /// Writes the profile to `path` (atomically, mode 0600).
    pub fn save_to(&self, path: &Path) -> Result<(), ProfileError> {
        let text = toml::to_string(self).map_err(|e| ProfileError::Malformed {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        write_private(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/profile.toml");
        assert_eq!(Profile::load_from(&path).unwrap(), None);
        let profile = Profile {
            ca_url: "https://ca.example.com:8443".into(),
            user: "alice".into(),
            serial: Some(12345678),
            log_origin: Some("ca.example.com/signet-log".into()),
            log_key: Some("ca.example.com/signet-log+01234567+AQID".into()),
            ca_root: Some(dir.path().join("root.pem")),
            principals: vec!["ubuntu".into()],
            signet_keys: vec!["00".repeat(32)],
            transport: Some(crate::login::TransportSetting::Pcsc),
            proxy: Some("proxy.example.com:443".into()),
        };
        profile.save_to(&path).unwrap();
        assert_eq!(Profile::load_from(&path).unwrap(), Some(profile));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "ca_url = 3\n").unwrap();
        let err = Profile::load_from(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid Signet profile"), "{err}");
        std::fs::write(&path, "ca_url = \"x\"\nuser = \"a\"\nsurprise = 1\n").unwrap();
        assert!(Profile::load_from(&path).is_err());
    }

    #[test]
    fn generated_keys_are_remembered_and_bounded() {
        let mut profile = Profile::default();
        assert!(!profile.made_by_signet(b"key 0"));
        for i in 0..20 {
            profile.remember_signet_key(format!("key {i}").as_bytes());
        }
        assert_eq!(profile.signet_keys.len(), SIGNET_KEYS_KEPT);
        assert!(profile.made_by_signet(b"key 19"));
        assert!(profile.made_by_signet(b"key 12"));
        assert!(!profile.made_by_signet(b"key 11"));
        // Remembering one again moves it to the end, without a duplicate.
        profile.remember_signet_key(b"key 12");
        assert_eq!(profile.signet_keys.len(), SIGNET_KEYS_KEPT);
        assert_eq!(profile.signet_keys.last(), Some(&key_id(b"key 12")));
    }
}
