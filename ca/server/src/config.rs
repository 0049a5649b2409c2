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
    /// Key type of each CA key (default: ECDSA P-256 CA keys, an Ed25519
    /// log key where the token has it, else P-256).
    #[serde(default)]
    pub keys: KeysSection,
    /// Limits on what may be issued (default: 8h user and X.509 client
    /// certificates, 30d host certificates).
    #[serde(default)]
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
    /// Where the log's high-water mark is kept: `"token"` (default), a
    /// private data object on the HSM token beside the log key, or the path
    /// of a file outside the data directory and its backups (for a token
    /// without data objects). See docs/operations.md.
    #[serde(default)]
    pub high_water: HighWaterSetting,
}

/// Where the high-water mark lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HighWaterSetting {
    /// A private data object on the token.
    #[default]
    Token,
    /// A file (absolute, or relative to the configuration file).
    File(PathBuf),
}

impl<'de> Deserialize<'de> for HighWaterSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "token" => Ok(Self::Token),
            "" => Err(serde::de::Error::custom(
                "expected \"token\" or the path of a file",
            )),
            path => Ok(Self::File(PathBuf::from(path))),
        }
    }
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
    #[serde(default = "default_ca_key")]
    pub ssh_user_ca: KeyAlgorithm,
    /// Signs OpenSSH host certificates.
    #[serde(default = "default_ca_key")]
    pub ssh_host_ca: KeyAlgorithm,
    /// Signs X.509 client and service certificates (and its own root).
    #[serde(default = "default_ca_key")]
    pub x509_ca: KeyAlgorithm,
    /// Signs log checkpoints; unset, Ed25519 where the token has it, else
    /// ECDSA P-256 (see [`crate::keys::KeyRole::algorithm`]).
    #[serde(default)]
    pub log_key: Option<KeyAlgorithm>,
}

impl Default for KeysSection {
    fn default() -> Self {
        Self {
            ssh_user_ca: default_ca_key(),
            ssh_host_ca: default_ca_key(),
            x509_ca: default_ca_key(),
            log_key: None,
        }
    }
}

fn default_ca_key() -> KeyAlgorithm {
    KeyAlgorithm::EcdsaP256
}

/// `[issuance]`: the longest validity each certificate kind may have.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuanceSection {
    /// Longest OpenSSH user certificate, e.g. `"8h"`.
    #[serde(default = "default_user_ttl", with = "humantime_serde_compat")]
    pub ssh_user_max_ttl: Duration,
    /// Longest OpenSSH host certificate, e.g. `"30d"`.
    #[serde(default = "default_host_ttl", with = "humantime_serde_compat")]
    pub ssh_host_max_ttl: Duration,
    /// Longest X.509 client certificate, e.g. `"8h"`.
    #[serde(default = "default_user_ttl", with = "humantime_serde_compat")]
    pub x509_client_max_ttl: Duration,
}

impl Default for IssuanceSection {
    fn default() -> Self {
        Self {
            ssh_user_max_ttl: default_user_ttl(),
            ssh_host_max_ttl: default_host_ttl(),
            x509_client_max_ttl: default_user_ttl(),
        }
    }
}

fn default_user_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}
fn default_host_ttl() -> Duration {
    Duration::from_secs(30 * 86400)
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

/// The longest duration the configuration accepts (100 years): anything
/// longer is a typo, and would overflow time arithmetic on some platforms.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86400);

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
        if duration > super::MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "duration {text:?} is out of range: at most 100 years"
            )));
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
        if let HighWaterSetting::File(file) = &mut config.log.high_water {
            anchor(file);
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
        if self
            .keys
            .log_key
            .is_some_and(|key| !matches!(key, KeyAlgorithm::Ed25519 | KeyAlgorithm::EcdsaP256))
        {
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
        assert_eq!(config.keys.log_key, Some(KeyAlgorithm::Ed25519));
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
    fn huge_durations_are_refused_with_the_field_named() {
        for (field, default) in [
            ("ssh_user_max_ttl", "\"8h\""),
            ("ssh_host_max_ttl", "\"30d\""),
            ("root_validity", "\"3650d\""),
        ] {
            let text = EXAMPLE.replacen(
                &format!("{field} = {default}"),
                &format!("{field} = \"500000000000y\""),
                1,
            );
            assert_ne!(text, EXAMPLE, "{field} not in the example");
            let err = Config::parse(&text, Path::new("x.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{field}: {err}");
            assert!(err.contains("out of range"), "{field}: {err}");
        }
    }

    #[test]
    fn a_minimal_configuration_has_documented_defaults() {
        let text = "data_dir = \"/var/lib/signet\"\n[hsm]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"ca\"\npin_file = \"/etc/signet/pin\"\n";
        let config = Config::parse(text, Path::new("/etc/signet/ca.toml")).unwrap();
        assert_eq!(config.keys.ssh_user_ca, KeyAlgorithm::EcdsaP256);
        assert_eq!(config.keys.x509_ca, KeyAlgorithm::EcdsaP256);
        assert_eq!(config.keys.log_key, None);
        assert_eq!(
            config.issuance.ssh_user_max_ttl,
            Duration::from_secs(8 * 3600)
        );
        assert_eq!(
            config.issuance.ssh_host_max_ttl,
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(config.log.high_water, HighWaterSetting::Token);
        assert_eq!(config.log_origin(), "signet.local/signet-log");
    }

    #[test]
    fn the_high_water_file_follows_the_config_file() {
        let text = EXAMPLE.replace("high_water = \"token\"", "high_water = \"mark/high-water\"");
        let config = Config::parse(&text, Path::new("/etc/signet/ca.toml")).unwrap();
        assert_eq!(
            config.log.high_water,
            HighWaterSetting::File(PathBuf::from("/etc/signet/mark/high-water"))
        );
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let config = Config::parse(EXAMPLE, Path::new("/etc/signet/signet-ca.toml")).unwrap();
        assert!(config.data_dir.is_absolute());
    }
}
