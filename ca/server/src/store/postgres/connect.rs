//! Connections to the database: the URL (libpq's `postgres://` form, with
//! `sslmode`, `connect_timeout` and the other options tokio-postgres reads),
//! the password from a file, and TLS through rustls with the ring provider.
//!
//! The password never travels in the URL: a URL that carries one is
//! refused, so it cannot end up in a command line, a config file that is
//! shown around, or a log line. Messages name the host and database, never
//! the password.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Where the log's database is and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// `postgres://USER@HOST:PORT/DATABASE?sslmode=…` (no password).
    pub url: String,
    /// A file holding the password (one line); none for trust or
    /// certificate authentication.
    pub password_file: Option<PathBuf>,
    /// PEM certificates of the authorities the server's certificate must
    /// chain to; the system's roots when unset.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &self.url)
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The system's trust anchors, used when no `ca_file` is configured.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The longest a connection attempt waits unless the URL says otherwise:
/// a lost database must fail appends promptly (fail closed), not hang them.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A password file larger than this is not one.
const MAX_PASSWORD_LEN: u64 = 4096;

/// A parsed configuration ready to open connections.
#[derive(Clone)]
pub(crate) struct Connector {
    config: Config,
    tls: MakeRustlsConnect,
    /// `host:port/database`, for messages.
    place: String,
}

impl Connector {
    /// Parses the URL, reads the password file and the trust anchors.
    pub(crate) fn new(pg: &PgConfig) -> Result<Self> {
        let bad = |reason: String| Error::Store(format!("store.url: {reason}"));
        let mut config =
            Config::from_str(&pg.url).map_err(|e| bad(format!("not a PostgreSQL URL ({e})")))?;
        if config.get_password().is_some() {
            return Err(bad(
                "the URL carries a password; put it in store.password_file instead".into(),
            ));
        }
        if config.get_hosts().is_empty() {
            return Err(bad("the URL names no host".into()));
        }
        let Some(dbname) = config.get_dbname().map(str::to_owned) else {
            return Err(bad("the URL names no database".into()));
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives(true);
        config.application_name("signet-ca");
        if let Some(file) = &pg.password_file {
            config.password(read_password(file)?.as_bytes());
        }
        let roots = trust_anchors(pg.ca_file.as_deref(), config.get_ssl_mode())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Store(format!("TLS to the database: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(host)) => host.clone(),
            Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => String::new(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        Ok(Self {
            config,
            tls: MakeRustlsConnect::new(tls_config),
            place: format!("{host}:{port}/{dbname}"),
        })
    }

    /// Opens a connection; the error says where and why, never with the
    /// password.
    pub(crate) fn connect(&self) -> Result<Client> {
        self.config
            .connect(self.tls.clone())
            .map_err(|e| unavailable(&self.place, &e))
    }

    /// `host:port/database`.
    pub(crate) fn place(&self) -> &str {
        &self.place
    }
}

/// The database is out of reach (down, refusing, or the connection broke).
pub(crate) fn unavailable(place: &str, e: &postgres::Error) -> Error {
    Error::StoreUnavailable(format!("the database {place}: {}", describe(e)))
}

/// A driver error as text: its database message when the server sent one.
pub(crate) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                source = inner.source();
            }
            text
        }
    }
}

fn read_password(file: &Path) -> Result<Zeroizing<String>> {
    use std::io::Read;
    let bad = |reason: String| Error::File {
        path: file.to_path_buf(),
        reason: format!("store.password_file: {reason}"),
    };
    let handle =
        crate::store::open_regular_file(file)?.ok_or_else(|| bad("no such file".into()))?;
    let mut text = Zeroizing::new(String::new());
    handle
        .take(MAX_PASSWORD_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("unreadable ({e})")))?;
    if text.len() as u64 > MAX_PASSWORD_LEN {
        return Err(bad("too large to be a password".into()));
    }
    let password = Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned());
    if password.is_empty() || password.contains('\n') {
        return Err(bad("must hold the password on one line".into()));
    }
    Ok(password)
}

fn trust_anchors(ca_file: Option<&Path>, mode: SslMode) -> Result<rustls::RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let (file, required) = match ca_file {
        Some(file) => (file, true),
        None => (Path::new(SYSTEM_ROOTS), false),
    };
    if !required && (mode == SslMode::Disable || !file.exists()) {
        return Ok(roots);
    }
    let bad = |reason: String| Error::File {
        path: file.to_path_buf(),
        reason: format!("store.ca_file: {reason}"),
    };
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if required && roots.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> PgConfig {
        PgConfig {
            url: url.into(),
            password_file: None,
            ca_file: None,
        }
    }

    #[test]
    fn postgres_urls_with_a_password_or_without_a_database_are_refused() {
        let err = Connector::new(&config("postgres://ca:hunter2@db.example/signet"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("password_file"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = Connector::new(&config("postgres://ca@db.example"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no database"), "{err}");
        let err = Connector::new(&config("postgres://ca@db.example/x?sslmode=sometimes"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a PostgreSQL URL"), "{err}");
        let ok = Connector::new(&config(
            "postgres://ca@db.example:6432/signet?sslmode=disable",
        ))
        .unwrap();
        assert_eq!(ok.place(), "db.example:6432/signet");
    }

    #[test]
    fn postgres_password_files_must_hold_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        for (content, ok) in [
            ("secret\n", true),
            ("secret", true),
            ("", false),
            ("\n", false),
            ("a\nb\n", false),
        ] {
            std::fs::write(&file, content).unwrap();
            assert_eq!(read_password(&file).is_ok(), ok, "{content:?}");
        }
        std::fs::write(&file, "x".repeat(5000)).unwrap();
        assert!(read_password(&file).is_err());
        assert!(read_password(&dir.path().join("missing")).is_err());
        let err = read_password(dir.path()).err().unwrap().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
