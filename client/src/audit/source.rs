//! Where the log's files come from: a directory laid out as the C2SP
//! tlog-tiles URL space, or an `http(s)://` prefix serving the same.
//!
//! A source only moves bytes. Nothing it returns is trusted: every byte is
//! parsed by `signet-log` and checked against the signed checkpoint. Sizes
//! are bounded before reading, so a hostile server cannot exhaust memory.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use signet_log::checkpoint::MAX_CHECKPOINT_LEN;
use signet_log::note::MAX_NOTE_LEN;

use super::error::{AuditError, Result};

/// The most bytes read for a log file: a full entry bundle of maximal entries.
pub const MAX_BUNDLE_LEN: u64 = 256 * (2 + 65535);

/// The most bytes read for a checkpoint (a signed note).
pub const MAX_SIGNED_CHECKPOINT_LEN: u64 = MAX_NOTE_LEN as u64;

// A checkpoint body is part of its note, so the note bound covers it.
const _: () = assert!(MAX_CHECKPOINT_LEN <= MAX_NOTE_LEN);

/// What fetching one file gave.
#[derive(Debug)]
pub enum Fetched {
    /// The file's bytes (at most the limit asked for).
    Found(Vec<u8>),
    /// The log has no such file (HTTP 404 or 410, or no such file in the directory).
    NotFound,
}

/// A log's files by their path relative to the log prefix
/// (`checkpoint`, `tile/0/000`, `tile/entries/x001/234.p/7`).
pub trait LogSource: Sync {
    /// Reads one file, refusing more than `limit` bytes.
    fn fetch(&self, path: &str, limit: u64) -> Result<Fetched>;

    /// How many fetches to run at once.
    fn parallelism(&self) -> usize;

    /// The log's location, for messages.
    fn describe(&self) -> String;
}

/// Opens `--log`: an `http://` or `https://` prefix, or else a directory.
/// `tls_roots` is PEM: the only CA certificates trusted for HTTPS, in place
/// of the built-in web roots (for a CA served under an internal PKI).
pub fn open(location: &str, tls_roots: Option<&[u8]>) -> Result<Box<dyn LogSource>> {
    if location.starts_with("http://") || location.starts_with("https://") {
        Ok(Box::new(HttpSource::with_roots(location, tls_roots)?))
    } else if tls_roots.is_some() {
        Err(AuditError::bad_input(
            "--tls-ca applies to https:// logs only",
        ))
    } else if location.contains("://") {
        Err(AuditError::bad_input(format!(
            "--log {location}: only http://, https:// and directories are supported"
        )))
    } else {
        Ok(Box::new(DirSource::new(location)?))
    }
}

/// A tile directory on disk (what `signet-ca log export` writes).
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// A directory that must exist.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(AuditError::bad_input(format!(
                "--log {}: not a directory (give a tile directory or an http(s):// URL)",
                root.display()
            )));
        }
        Ok(Self { root })
    }
}

/// Refuses paths that could leave the log prefix. The paths asked for are
/// built by `signet-log`, so this is a second line of defence.
fn check_relative(path: &str) -> Result<()> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AuditError::bad_input(format!("bad log path {path:?}")))
    }
}

impl LogSource for DirSource {
    fn fetch(&self, path: &str, limit: u64) -> Result<Fetched> {
        check_relative(path)?;
        let full = self.root.join(path);
        let fail = |e: std::io::Error| AuditError::Fetch {
            what: full.display().to_string(),
            reason: e.to_string(),
        };
        let file = match std::fs::File::open(&full) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Fetched::NotFound),
            Err(e) => return Err(fail(e)),
        };
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(fail)?;
        if bytes.len() as u64 > limit {
            return Err(too_large(path, limit));
        }
        Ok(Fetched::Found(bytes))
    }

    fn parallelism(&self) -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

fn too_large(path: &str, limit: u64) -> AuditError {
    super::error::VerifyFailure::BadTile {
        path: path.to_owned(),
        reason: format!("larger than the {limit} bytes such a file can hold"),
    }
    .into()
}

/// A log served over HTTP(S) under a URL prefix such as `https://ca.example.com/log/`.
#[derive(Debug, Clone)]
pub struct HttpSource {
    base: String,
    agent: ureq::Agent,
}

/// Time allowed to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one whole request, body included (a full bundle is at most 16 MiB).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed between two reads.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

impl HttpSource {
    /// A source for the log under `base` (a trailing `/` is added if missing),
    /// trusting the built-in web roots for HTTPS.
    pub fn new(base: &str) -> Result<Self> {
        Self::with_roots(base, None)
    }

    /// As [`HttpSource::new`], trusting only the CA certificates in
    /// `tls_roots` (PEM) for HTTPS when given.
    pub fn with_roots(base: &str, tls_roots: Option<&[u8]>) -> Result<Self> {
        let mut base = base.to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(pem) = tls_roots {
            let mut roots = Vec::new();
            for item in ureq::tls::parse_pem(pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => roots.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(AuditError::bad_input(format!("--tls-ca: {e}")));
                    }
                }
            }
            if roots.is_empty() {
                return Err(AuditError::bad_input("--tls-ca: no PEM certificate found"));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_call(Some(REQUEST_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(3)
            .user_agent(concat!("signet-audit/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            base,
            agent: config.into(),
        })
    }
}

impl LogSource for HttpSource {
    fn fetch(&self, path: &str, limit: u64) -> Result<Fetched> {
        check_relative(path)?;
        let url = format!("{}{path}", self.base);
        let fail = |reason: String| AuditError::Fetch {
            what: url.clone(),
            reason,
        };
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            404 | 410 => return Ok(Fetched::NotFound),
            other => return Err(fail(format!("HTTP status {other}"))),
        }
        let bytes = response
            .body_mut()
            .with_config()
            .limit(limit.saturating_add(1))
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => too_large(path, limit),
                other => fail(other.to_string()),
            })?;
        if bytes.len() as u64 > limit {
            return Err(too_large(path, limit));
        }
        Ok(Fetched::Found(bytes))
    }

    fn parallelism(&self) -> usize {
        8
    }

    fn describe(&self) -> String {
        self.base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_only() {
        assert!(check_relative("checkpoint").is_ok());
        assert!(check_relative("tile/entries/x001/234.p/7").is_ok());
        for bad in ["", "/etc/passwd", "tile/../x", "tile//0", "a b", "tile/./0"] {
            assert!(check_relative(bad).is_err(), "{bad}");
        }
    }
}
