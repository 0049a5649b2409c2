//! `signet-proxy`'s configuration (TOML, unknown keys refused):
//! deploy/proxy.example.toml shows every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The one TLS port engineers reach (`signet-proxy serve`).
    pub listen: SocketAddr,
    /// The CA.
    pub ca: CaSection,
    /// The proxy's own key and certificate (written by `signet-proxy join`).
    pub identity: IdentitySection,
    /// Where `signet-proxy join` finds its one-time token.
    #[serde(default)]
    pub join: JoinSection,
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
    /// Its certificate from the CA (PEM).
    pub certificate: PathBuf,
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
        Ok(config)
    }
}
