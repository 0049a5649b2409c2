//! The daemon's sections of the configuration: `[serve]`, `[webauthn]`,
//! `[attestation]` and `[limits]`. Unknown keys are refused like everywhere
//! else in the file.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::humantime_serde_compat;
use crate::x509::ServerName;

/// How the daemon writes its log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per event, for a SIEM.
    Json,
}

/// `[serve]`: the HTTPS listener and what goes with it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// Address and port of the HTTPS listener; loopback by default (the
    /// access proxy fronts it).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Names in the daemon's TLS certificate (DNS names or IP addresses),
    /// the first one also its CN. Default: `localhost` and `127.0.0.1`.
    #[serde(default = "default_names")]
    pub names: Vec<String>,
    /// The URL engineers reach the CA at (through the proxy), used in
    /// invite links. Default: `https://<first name>:<listen port>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Lifetime of the TLS certificate; the daemon issues a new one when
    /// half of it has passed. Default 7 days.
    #[serde(default = "default_tls_lifetime", with = "humantime_serde_compat")]
    pub tls_lifetime: Duration,
    /// Prometheus `/metrics` on a separate plain-HTTP listener, which must
    /// be a loopback address. Off when absent.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The access proxies' listener: mutual TLS only (a client certificate
    /// from this CA naming a proxy), serving the proxies' feed
    /// (`/v1/proxy/feed`). Off when absent.
    #[serde(default)]
    pub proxy_listen: Option<SocketAddr>,
    /// The DNS names and IP addresses access proxies may have in their TLS
    /// server certificates (issued when they join or renew, for the names
    /// each asks for, every one of which must be listed here). Empty: no
    /// proxy gets a server certificate.
    #[serde(default)]
    pub proxy_names: Vec<String>,
    /// Addresses of access proxies in front of this listener: for a
    /// request from one of them, the engineer's address (what per-source
    /// rate limits count) is the last `X-Forwarded-For` value. Nobody
    /// else's header is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    /// The unix socket admin commands reach the running daemon on.
    /// Default: `<data_dir>/admin.sock`.
    #[serde(default)]
    pub admin_socket: Option<PathBuf>,
    /// A unix group whose members may use the admin socket besides root
    /// (and the daemon's own user).
    #[serde(default)]
    pub admin_group: Option<String>,
    /// `text` (default) or `json` log lines.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Longest time any request may take. Default 10 s.
    #[serde(default = "default_request_timeout", with = "humantime_serde_compat")]
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes. Default 64 KiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

impl Default for ServeSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            names: default_names(),
            public_url: None,
            tls_lifetime: default_tls_lifetime(),
            metrics_listen: None,
            proxy_listen: None,
            proxy_names: Vec::new(),
            trusted_proxies: Vec::new(),
            admin_socket: None,
            admin_group: None,
            log_format: LogFormat::Text,
            request_timeout: default_request_timeout(),
            max_body_bytes: default_max_body(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8441))
}

fn default_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}

fn default_tls_lifetime() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_body() -> usize {
    64 * 1024
}

impl ServeSection {
    /// The TLS names, parsed.
    pub fn server_names(&self) -> Result<Vec<ServerName>, String> {
        parse_server_names("serve.names", &self.names)
    }

    /// The names proxies may have in their server certificates, parsed.
    pub fn proxy_server_names(&self) -> Result<Vec<ServerName>, String> {
        parse_server_names("serve.proxy_names", &self.proxy_names)
    }

    /// The base URL of invite links.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let host = self
                    .names
                    .first()
                    .map(String::as_str)
                    .unwrap_or("localhost");
                let host = match host.parse::<IpAddr>() {
                    Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
                    _ => host.to_owned(),
                };
                format!("https://{host}:{}", self.listen.port())
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.names.is_empty() {
            return Err("serve.names: at least one name for the TLS certificate".into());
        }
        self.server_names()?;
        self.proxy_server_names()?;
        if let Some(url) = &self.public_url {
            if !url.starts_with("https://") || url.contains(char::is_whitespace) {
                return Err("serve.public_url: an https:// URL".into());
            }
        }
        if let Some(metrics) = self.metrics_listen {
            if !metrics.ip().is_loopback() {
                return Err("serve.metrics_listen: must be a loopback address (metrics are not authenticated)".into());
            }
        }
        if self.tls_lifetime < Duration::from_secs(3600) {
            return Err("serve.tls_lifetime: at least 1h".into());
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err("serve.max_body_bytes: between 1024 and 16777216".into());
        }
        if let Some(group) = &self.admin_group {
            if group.is_empty() || group.contains(|c: char| c == ':' || c.is_whitespace()) {
                return Err("serve.admin_group: a unix group name".into());
            }
        }
        Ok(())
    }
}

/// TLS server names (DNS names, lowercased, or IP addresses); `key` names
/// the setting in errors.
pub fn parse_server_names(key: &str, names: &[String]) -> Result<Vec<ServerName>, String> {
    names
        .iter()
        .map(|name| {
            if let Ok(ip) = name.parse::<IpAddr>() {
                return Ok(ServerName::Ip(ip));
            }
            let dns_ok = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if dns_ok {
                Ok(ServerName::Dns(name.to_ascii_lowercase()))
            } else {
                Err(format!(
                    "{key}: {name:?} is neither a DNS name nor an IP address"
                ))
            }
        })
        .collect()
}

/// Whether a security key must verify its user (PIN or biometric).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserVerificationSetting {
    /// Always: every assertion must carry the UV flag.
    Required,
    /// Ask for it; demand it only where a role does (`touch_and_pin`).
    #[default]
    Preferred,
    /// Do not ask (touch only), except where a role demands it.
    Discouraged,
}

/// `[webauthn]`: the relying party engineers' security keys sign for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebauthnSection {
    /// The relying party id: the CA's (or proxy's) host name, or a parent
    /// domain of it. Credentials are bound to it for good.
    pub rp_id: String,
    /// The origin browsers and the client use, `https://host[:port]`.
    pub origin: String,
    /// More origins accepted (e.g. the proxy's and the CA's own).
    #[serde(default)]
    pub extra_origins: Vec<String>,
    /// The name shown by the browser. Default `Signet`.
    #[serde(default = "default_rp_name")]
    pub rp_name: String,
    /// `required`, `preferred` (default) or `discouraged`.
    #[serde(default)]
    pub user_verification: UserVerificationSetting,
    /// PEM files of authenticator attestation roots a security key's
    /// attestation must chain to (e.g. Yubico's FIDO root).
    #[serde(default)]
    pub attestation_roots: Vec<PathBuf>,
    /// SHA-256 (hex) of attestation certificates' SubjectPublicKeyInfo to
    /// trust directly — for test authenticators only.
    #[serde(default)]
    pub attestation_spki_sha256: Vec<String>,
    /// Accept security keys without attestation (`none` or self
    /// attestation). Off by default: the model of the key is then unknown.
    #[serde(default)]
    pub allow_unattested: bool,
}

fn default_rp_name() -> String {
    "Signet".into()
}

impl WebauthnSection {
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.rp_id.is_empty() || self.rp_id.contains(['/', ':']) {
            return Err("webauthn.rp_id: a host name such as ca.example.com".into());
        }
        for origin in std::iter::once(&self.origin).chain(&self.extra_origins) {
            if !(origin.starts_with("https://") || origin.starts_with("http://localhost")) {
                return Err(format!(
                    "webauthn.origin: {origin:?} must be https:// (or http://localhost)"
                ));
            }
        }
        if self.attestation_roots.is_empty()
            && self.attestation_spki_sha256.is_empty()
            && !self.allow_unattested
        {
            return Err("webauthn.attestation_roots: no attestation trust configured, so no security key could enroll; list root PEM files (or set allow_unattested = true knowingly)".into());
        }
        Ok(())
    }
}

/// `[attestation]`: where YubiKey PIV attestation must lead.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationSection {
    /// Trust Yubico's PIV attestation roots shipped with Signet. Default true.
    #[serde(default = "yes")]
    pub yubico: bool,
    /// More PEM files of device roots (a test's virtual YubiKey root, a
    /// private PKI).
    #[serde(default)]
    pub roots: Vec<PathBuf>,
}

fn yes() -> bool {
    true
}

impl Default for AttestationSection {
    fn default() -> Self {
        Self {
            yubico: true,
            roots: Vec::new(),
        }
    }
}

/// `[limits]`: how much the touch flow accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Begin and finish calls per user per minute. Default 20.
    #[serde(default = "default_per_user")]
    pub per_user_per_minute: u32,
    /// Begin and finish calls per source address per minute. Default 120.
    #[serde(default = "default_per_source")]
    pub per_source_per_minute: u32,
    /// Failed assertions in a row that lock the user. Default 5.
    #[serde(default = "default_failures")]
    pub failed_assertions: u32,
    /// How long that lock lasts (`signet-ca users unlock` ends it sooner).
    /// Default 15 minutes.
    #[serde(default = "default_lockout", with = "humantime_serde_compat")]
    pub lockout: Duration,
}

fn default_per_user() -> u32 {
    20
}

fn default_per_source() -> u32 {
    120
}

fn default_failures() -> u32 {
    5
}

fn default_lockout() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            per_user_per_minute: default_per_user(),
            per_source_per_minute: default_per_source(),
            failed_assertions: default_failures(),
            lockout: default_lockout(),
        }
    }
}

impl LimitsSection {
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.per_user_per_minute == 0 || self.per_source_per_minute == 0 {
            return Err("limits: rates must be at least 1 per minute".into());
        }
        if self.failed_assertions == 0 {
            return Err("limits.failed_assertions: at least 1".into());
        }
        Ok(())
    }
}
