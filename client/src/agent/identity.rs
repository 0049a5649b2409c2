//! The one identity the agent offers: the Signet SSH certificate.
//!
//! The certificate file is read again on every request, so a `signet login`
//! that renews it takes effect without restarting the agent.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ssh_key::encoding::Encode as _;
use ssh_key::public::KeyData;
use ssh_key::Certificate;

/// The certificate as the agent found it just now.
#[derive(Debug)]
pub enum Identity {
    /// Valid now: offered and used.
    Valid(Box<Valid>),
    /// No certificate file.
    Missing(PathBuf),
    /// A file that is not one OpenSSH user certificate.
    Unreadable(PathBuf, String),
    /// Past its `valid_before`.
    Expired(SystemTime),
    /// Before its `valid_after` (a clock behind the CA's, or a future certificate).
    NotYetValid(SystemTime),
}

/// A certificate that is valid now.
#[derive(Debug)]
pub struct Valid {
    /// The parsed certificate.
    pub certificate: Certificate,
    /// Its wire encoding: the key blob offered to clients.
    pub blob: Vec<u8>,
    /// The encoding of the plain public key it certifies.
    pub key_blob: Vec<u8>,
}

impl Valid {
    /// The key the certificate is for.
    pub fn public(&self) -> &KeyData {
        self.certificate.public_key()
    }

    /// Whether a client's key blob names this identity (the certificate, or
    /// the bare key inside it).
    pub fn matches(&self, blob: &[u8]) -> bool {
        blob == self.blob.as_slice() || blob == self.key_blob.as_slice()
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl Identity {
    /// Reads the certificate at `path` and judges it at `now`.
    pub fn load(path: &Path, now: SystemTime) -> Self {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Self::Missing(path.to_path_buf())
            }
            Err(e) => return Self::Unreadable(path.to_path_buf(), e.to_string()),
        };
        let certificate = match Certificate::from_openssh(text.trim()) {
            Ok(c) => c,
            Err(e) => return Self::Unreadable(path.to_path_buf(), e.to_string()),
        };
        if certificate.cert_type() != ssh_key::certificate::CertType::User {
            return Self::Unreadable(path.to_path_buf(), "not a user certificate".into());
        }
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let at = |s: u64| UNIX_EPOCH + std::time::Duration::from_secs(s);
        if secs >= certificate.valid_before() {
            return Self::Expired(at(certificate.valid_before()));
        }
        if secs < certificate.valid_after() {
            return Self::NotYetValid(at(certificate.valid_after()));
        }
        let blob = match certificate.to_bytes() {
            Ok(b) => b,
            Err(e) => return Self::Unreadable(path.to_path_buf(), e.to_string()),
        };
        let key_blob = match certificate.public_key().encode_vec() {
            Ok(b) => b,
            Err(e) => return Self::Unreadable(path.to_path_buf(), e.to_string()),
        };
        Self::Valid(Box::new(Valid {
            certificate,
            blob,
            key_blob,
        }))
    }

    /// What is wrong, in words for the person at the terminal; `None` when valid.
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::Valid(_) => None,
            Self::Missing(path) => Some(format!(
                "no Signet certificate at {}; run `signet login`",
                path.display()
            )),
            Self::Unreadable(path, why) => Some(format!(
                "the Signet certificate at {} is unreadable ({why}); run `signet login`",
                path.display()
            )),
            Self::Expired(at) => Some(format!(
                "your Signet certificate expired at {}; run `signet login`",
                rfc3339(*at)
            )),
            Self::NotYetValid(at) => Some(format!(
                "your Signet certificate is valid only from {} (is this clock behind?); run `signet login` if it persists",
                rfc3339(*at)
            )),
        }
    }
}
