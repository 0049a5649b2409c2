//! `signet-proxy`'s configuration (TOML, unknown keys refused):
//! deploy/proxy.example.toml shows every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The one TLS port engineers reach (`signet-proxy serve`).
    pub listen: SocketAddr,
    /// The DNS names and IP addresses engineers reach the proxy by: its TLS
    /// server certificate (from the CA, at join and renewal) names them,
    /// and clients check them. The CA must allow each (`serve.proxy_names`).
    #[serde(default)]
    pub public_names: Vec<String>,
    /// Prometheus `/metrics` and `/healthz`, plain HTTP. Off when absent;
    /// keep it on a loopback or management address (it is not authenticated).
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// How long the proxy may go without hearing from the CA (a snapshot
    /// or a heartbeat, every 5 s) before it refuses new tunnels
    /// (`view_stale`) and `/healthz` fails. Default 30 s, at least 10 s.
    #[serde(default = "default_stale_after", with = "duration_text")]
    pub stale_after: Duration,
    /// Time allowed for a connection's TLS handshake. A tunnel's handshake
    /// includes the engineer's touch (the card waits 15 s for it), so the
    /// default is 30 s; per-source connection limits bound what slow
    /// handshakes can hold. Between 5 s and 120 s.
    #[serde(default = "default_handshake_timeout", with = "duration_text")]
    pub handshake_timeout: Duration,
    /// The CA.
    pub ca: CaSection,
    /// The proxy's own key and certificate (written by `signet-proxy join`).
    pub identity: IdentitySection,
    /// Where `signet-proxy join` finds its one-time token.
    #[serde(default)]
    pub join: JoinSection,
    /// The CA's API forwarded on the same port (ALPN `http/1.1`).
    #[serde(default)]
    pub http: HttpSection,
}

fn default_stale_after() -> Duration {
    Duration::from_secs(30)
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Durations as text (`"30s"`, `"2m"`).
mod duration_text {
    use serde::{Deserialize as _, Deserializer};
    use std::time::Duration;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// `[http]`: limits on the API calls the proxy forwards to the CA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// The largest request body forwarded, in bytes (larger: 413).
    /// Default 65536, as the CA's own limit.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// The longest a forwarded call may wait for the CA's answer
    /// (a login's finish call signs in the HSM and waits for the log).
    /// Default 60 s.
    #[serde(default = "default_request_timeout", with = "duration_text")]
    pub request_timeout: Duration,
}

fn default_max_body() -> usize {
    64 * 1024
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body(),
            request_timeout: default_request_timeout(),
        }
    }
}

/// `[ca]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// The CA's public listener (`serve.listen`), for joining and for the
    /// API calls the proxy forwards: `https://host:port`.
    pub url: String,
    /// The CA's proxy listener (`serve.proxy_listen`), mutual TLS: `https://host:port`.
    pub feed_url: String,
    /// The CA's X.509 root (PEM): the only trust anchor for the CA's TLS
    /// and for clients' certificates.
    pub root: PathBuf,
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// The proxy's private key (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
    /// Its certificate from the CA (PEM): the client certificate the
    /// proxy shows the CA.
    pub certificate: PathBuf,
    /// Its TLS server certificate from the CA (PEM), for the same key,
    /// naming `public_names`. Default: beside `certificate`, its file name
    /// with `-server` before the extension (`proxy.pem` → `proxy-server.pem`).
    #[serde(default)]
    pub server_certificate: Option<PathBuf>,
}

impl IdentitySection {
    /// Where the server certificate is kept.
    pub fn server_certificate_path(&self) -> PathBuf {
        if let Some(path) = &self.server_certificate {
            return path.clone();
        }
        let stem = self
            .certificate
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "proxy".into());
        let name = match self.certificate.extension() {
            Some(ext) => format!("{stem}-server.{}", ext.to_string_lossy()),
            None => format!("{stem}-server"),
        };
        self.certificate.with_file_name(name)
    }
}

/// `[join]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinSection {
    /// A file holding the join token; else the environment variable
    /// `SIGNET_PROXY_JOIN_TOKEN`. Never the command line.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// What is wrong with a configuration file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// It cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a valid configuration (the message names the key).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why, with the key.
        message: String,
    },
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses configuration text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let config: Config = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        for (key, url) in [
            ("ca.url", &config.ca.url),
            ("ca.feed_url", &config.ca.feed_url),
        ] {
            if !url.starts_with("https://") || url.len() <= "https://".len() {
                return Err(invalid(format!(
                    "{key}: must be an https:// URL, not {url:?}"
                )));
            }
        }
        for name in &config.public_names {
            let ip = name.parse::<std::net::IpAddr>().is_ok();
            let dns = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !(ip || dns) {
                return Err(invalid(format!(
                    "public_names: {name:?} is neither a DNS name nor an IP address"
                )));
            }
        }
        if config.stale_after < Duration::from_secs(10) {
            return Err(invalid(
                "stale_after: at least 10s (the CA sends a heartbeat every 5 s)".into(),
            ));
        }
        if !(Duration::from_secs(5)..=Duration::from_secs(120)).contains(&config.handshake_timeout)
        {
            return Err(invalid(
                "handshake_timeout: between 5s and 120s (a touch takes up to 15 s)".into(),
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&config.http.max_body_bytes) {
            return Err(invalid(
                "http.max_body_bytes: between 1024 and 16777216".into(),
            ));
        }
        if config.http.request_timeout.is_zero() {
            return Err(invalid("http.request_timeout: more than 0s".into()));
        }
        Ok(config)
    }
}
