//! The CA's configuration file (TOML). Unknown keys are refused with their
//! name, so a typo never silently falls back to a default.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use signet_hsm::{KeyAlgorithm, PinSource, TokenConfig, TokenSelector};

use crate::{Error, Result};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the CA keeps its state: the issuance log and the root certificate.
    /// Relative paths are relative to the configuration file.
    pub data_dir: PathBuf,
    /// The token holding the CA keys.
    pub hsm: HsmSection,
    /// Key type of each CA key.
    pub keys: KeysSection,
    /// Limits on what may be issued.
    pub issuance: IssuanceSection,
    /// The X.509 CA's identity.
    #[serde(default)]
    pub x509: X509Section,
    /// The signing log.
    #[serde(default)]
    pub log: LogSection,
    /// The daemon's listener.
    #[serde(default)]
    pub serve: ServeSection,
}

/// `[log]`: the verifiable log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// Checkpoint origin and note key name, `<CA host>/signet-log`
    /// (default: `<x509.trust_domain>/signet-log`). Auditors pin it.
    #[serde(default)]
    pub origin: Option<String>,
}

/// `[serve]`: where `signet-ca serve` listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// Address and port; loopback by default (the proxy fronts it).
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
}

impl Default for ServeSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8441))
}

/// `[hsm]`: which PKCS#11 module and token, and where the PIN comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmSection {
    /// Path of the PKCS#11 module.
    pub module: PathBuf,
    /// Label of the token (give this or `token_uri`).
    #[serde(default)]
    pub token_label: Option<String>,
    /// RFC 7512 PKCS#11 URI of the token (give this or `token_label`).
    #[serde(default)]
    pub token_uri: Option<String>,
    /// File holding the user PIN (give this or `pin_env`).
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN (give this or `pin_file`).
    #[serde(default)]
    pub pin_env: Option<String>,
    /// Sessions (and signing threads) in the pool.
    #[serde(default = "default_sessions")]
    pub sessions: NonZeroUsize,
}

fn default_sessions() -> NonZeroUsize {
    NonZeroUsize::MIN.saturating_add(1)
}

/// `[keys]`: the type of each CA key.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// Signs OpenSSH user certificates.
    pub ssh_user_ca: KeyAlgorithm,
    /// Signs OpenSSH host certificates.
    pub ssh_host_ca: KeyAlgorithm,
    /// Signs X.509 client and service certificates (and its own root).
    pub x509_ca: KeyAlgorithm,
    /// Signs log checkpoints.
    pub log_key: KeyAlgorithm,
}

/// `[issuance]`: the longest validity each certificate kind may have.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuanceSection {
    /// Longest OpenSSH user certificate, e.g. `"8h"`.
    #[serde(with = "humantime_serde_compat")]
    pub ssh_user_max_ttl: Duration,
    /// Longest OpenSSH host certificate, e.g. `"30d"`.
    #[serde(with = "humantime_serde_compat")]
    pub ssh_host_max_ttl: Duration,
    /// Longest X.509 client certificate, e.g. `"8h"`.
    #[serde(with = "humantime_serde_compat")]
    pub x509_client_max_ttl: Duration,
}

/// `[x509]`: names that go into X.509 certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct X509Section {
    /// Common name of the root certificate.
    #[serde(default = "default_root_cn")]
    pub root_common_name: String,
    /// Organization of the root certificate.
    #[serde(default = "default_org")]
    pub organization: String,
    /// Validity of the root certificate, e.g. `"3650d"`.
    #[serde(default = "default_root_validity", with = "humantime_serde_compat")]
    pub root_validity: Duration,
    /// The authority of the `signet://` SAN URIs (docs/x509-profile.md).
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
}

impl Default for X509Section {
    fn default() -> Self {
        Self {
            root_common_name: default_root_cn(),
            organization: default_org(),
            root_validity: default_root_validity(),
            trust_domain: default_trust_domain(),
        }
    }
}

fn default_root_cn() -> String {
    "Signet Root CA".into()
}
fn default_org() -> String {
    "Signet".into()
}
fn default_root_validity() -> Duration {
    Duration::from_secs(3650 * 86400)
}
fn default_trust_domain() -> String {
    "signet.local".into()
}

/// Durations as humantime strings ("8h", "30d", "90m").
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        let duration = humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))?;
        if duration.is_zero() {
            return Err(serde::de::Error::custom(
                "duration must be greater than zero",
            ));
        }
        Ok(duration)
    }
}

impl Config {
    /// Reads and checks a configuration file. Relative paths inside it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut config: Config = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string().trim().replace('\n', " "),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        anchor(&mut config.data_dir);
        if config.hsm.module.is_relative() && config.hsm.module.components().count() > 1 {
            anchor(&mut config.hsm.module);
        }
        if let Some(pin_file) = config.hsm.pin_file.as_mut() {
            anchor(pin_file);
        }
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<()> {
        let fail = |reason: &str| {
            Err(Error::Config {
                path: path.to_path_buf(),
                reason: reason.to_owned(),
            })
        };
        match (&self.hsm.token_label, &self.hsm.token_uri) {
            (Some(_), Some(_)) => return fail("hsm: give token_label or token_uri, not both"),
            (None, None) => return fail("hsm: token_label or token_uri is required"),
            _ => {}
        }
        match (&self.hsm.pin_file, &self.hsm.pin_env) {
            (Some(_), Some(_)) => return fail("hsm: give pin_file or pin_env, not both"),
            (None, None) => return fail("hsm: pin_file or pin_env is required"),
            _ => {}
        }
        if !matches!(
            self.keys.log_key,
            KeyAlgorithm::Ed25519 | KeyAlgorithm::EcdsaP256
        ) {
            return fail("keys.log_key: checkpoints are signed notes; use ed25519 or ecdsa-p256");
        }
        let origin = self.log_origin();
        if origin.is_empty()
            || origin.len() > 255
            || origin.contains(char::is_whitespace)
            || origin.contains('+')
        {
            return fail("log.origin: a non-empty name without spaces or '+', e.g. ca.example.com/signet-log");
        }
        if self.hsm.sessions.get() > 64 {
            return fail("hsm.sessions: at most 64");
        }
        let domain = &self.x509.trust_domain;
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return fail("x509.trust_domain: must be a DNS name (letters, digits, '.', '-')");
        }
        let special = |c: char| ",+\"\\<>;=#".contains(c);
        for (field, value) in [
            ("x509.root_common_name", &self.x509.root_common_name),
            ("x509.organization", &self.x509.organization),
        ] {
            if value.chars().any(special) {
                return fail(&format!("{field}: must not contain , + \" \\ < > ; = #"));
            }
        }
        for (field, value) in [
            ("x509.root_common_name", &self.x509.root_common_name),
            ("x509.organization", &self.x509.organization),
        ] {
            if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
                return fail(&format!("{field}: 1 to 64 printable characters"));
            }
        }
        Ok(())
    }

    /// The token settings for the HSM layer.
    pub fn token_config(&self) -> Result<TokenConfig> {
        let token = match (&self.hsm.token_label, &self.hsm.token_uri) {
            (Some(label), _) => TokenSelector::Label(label.clone()),
            (None, Some(uri)) => TokenSelector::Uri(signet_hsm::Pkcs11Uri::parse(uri)?),
            (None, None) => return Err(missing("hsm: token_label or token_uri is required")),
        };
        let pin = match (&self.hsm.pin_file, &self.hsm.pin_env) {
            (Some(file), _) => PinSource::File(file.clone()),
            (None, Some(var)) => PinSource::Env(var.clone()),
            (None, None) => return Err(missing("hsm: pin_file or pin_env is required")),
        };
        Ok(TokenConfig {
            module: self.hsm.module.clone(),
            token,
            pin,
            sessions: self.hsm.sessions,
        })
    }

    /// The checkpoint origin (and log key name).
    pub fn log_origin(&self) -> String {
        self.log
            .origin
            .clone()
            .unwrap_or_else(|| format!("{}/signet-log", self.x509.trust_domain))
    }

    /// Where the X.509 root certificate is kept.
    pub fn root_cert_path(&self) -> PathBuf {
        self.data_dir.join("x509-ca.pem")
    }

    /// The log store file.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("log.redb")
    }
}

fn missing(reason: &str) -> Error {
    Error::Config {
        path: PathBuf::from("(configuration)"),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../deploy/signet-ca.example.toml");

    #[test]
    fn the_shipped_example_parses() {
        let config = Config::parse(EXAMPLE, Path::new("/etc/signet/signet-ca.toml")).unwrap();
        assert_eq!(config.keys.log_key, KeyAlgorithm::Ed25519);
        assert!(config.issuance.ssh_user_max_ttl >= Duration::from_secs(3600));
    }

    #[test]
    fn unknown_keys_are_named() {
        let text = EXAMPLE.replace("sessions =", "sesions =");
        let err = Config::parse(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sesions"), "{err}");
    }

    #[test]
    fn zero_and_negative_durations_are_refused() {
        for bad in ["\"0s\"", "\"-1h\"", "\"soon\""] {
            let text = EXAMPLE.replacen(
                "ssh_user_max_ttl = \"8h\"",
                &format!("ssh_user_max_ttl = {bad}"),
                1,
            );
            let err = Config::parse(&text, Path::new("x.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("ssh_user_max_ttl") || err.contains("duration"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn unknown_key_type_is_refused() {
        let text = EXAMPLE.replace("log_key = \"ed25519\"", "log_key = \"dsa\"");
        let err = Config::parse(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dsa"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let config = Config::parse(EXAMPLE, Path::new("/etc/signet/signet-ca.toml")).unwrap();
        assert!(config.data_dir.is_absolute());
    }
}
