//! The CA's configuration file (TOML). Unknown keys are refused with their
//! name, so a typo never silently falls back to a default.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use signet_hsm::piv::{PivPinPolicy, PivSlot, PivTouchPolicy};
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
    /// The YubiKey holding the CA keys, with `hsm.backend = "piv"`.
    #[serde(default)]
    pub piv: Option<PivSection>,
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
    /// The daemon: HTTPS listener, TLS names, admin socket, metrics.
    #[serde(default)]
    pub serve: ServeSection,
    /// The WebAuthn relying party and the trust for security keys'
    /// attestation (needed by `serve`).
    #[serde(default)]
    pub webauthn: Option<WebauthnSection>,
    /// Which roots a YubiKey's PIV attestation must chain to.
    #[serde(default)]
    pub attestation: AttestationSection,
    /// Rate limits and lockouts on the touch flow.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The witnesses that must cosign every checkpoint before it, or any
    /// certificate proven against it, leaves the CA (C2SP tlog-witness):
    /// `threshold` and `[[witnesses.witness]]` with `name`, `url`, `vkey`.
    /// Absent: checkpoints are released on the log key's signature alone.
    #[serde(default)]
    pub witnesses: Option<signet_log::witness::WitnessPolicy>,
    /// Where the log lives: the embedded store (default) or PostgreSQL
    /// shared by several replicas (`backend`, `url`, `password_file`).
    #[serde(default)]
    pub store: crate::store::configured::StoreSection,
}

pub use crate::daemon_config::{
    AttestationSection, LimitsSection, LogFormat, ServeSection, WebauthnSection,
};

/// `[log]`: the verifiable log.
#[derive(Debug, Clone, Deserialize)]
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
    /// How long to wait for one witness's answer (default `"3s"`). A
    /// witness that does not answer in time counts as down for that
    /// checkpoint.
    #[serde(default = "default_witness_timeout", with = "humantime_serde_compat")]
    pub witness_timeout: Duration,
}

fn default_witness_timeout() -> Duration {
    Duration::from_secs(3)
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            origin: None,
            high_water: HighWaterSetting::default(),
            witness_timeout: default_witness_timeout(),
        }
    }
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

/// Where the CA keys live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A PKCS#11 token (HSM, SoftHSM2): `[hsm]` names it.
    #[default]
    Pkcs11,
    /// A YubiKey's PIV applet: `[piv]` names the card and its slots.
    Piv,
}

/// `[hsm]`: which backend holds the CA keys; for PKCS#11, which module and
/// token, and where the PIN comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmSection {
    /// `"pkcs11"` (default) or `"piv"` (a YubiKey, configured in `[piv]`).
    #[serde(default)]
    pub backend: Backend,
    /// Path of the PKCS#11 module (required with the PKCS#11 backend).
    #[serde(default)]
    pub module: Option<PathBuf>,
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

/// `[piv]`: the YubiKey that holds the CA keys (`hsm.backend = "piv"`).
///
/// The defaults suit an unattended daemon: PIN policy "once" (the CA
/// verifies the PIN from `pin_file` before each operation, as the card is
/// released and reset after every one) and touch policy "never" (a touch
/// per certificate would stop issuance whenever nobody is at the key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivSection {
    /// The YubiKey's serial number (`ykman list`): the card is opened by
    /// serial, so another key plugged in is never used by mistake.
    pub serial: u32,
    /// File holding the PIV PIN (give this or `pin_env`); owner-only.
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the PIV PIN (give this or `pin_file`).
    #[serde(default)]
    pub pin_env: Option<String>,
    /// File holding the card's management key in hex (owner-only), needed
    /// by `init` to generate the keys. The factory-default key is refused.
    #[serde(default)]
    pub management_key_file: Option<PathBuf>,
    /// PEM file of the certificates a card's attestation must chain to
    /// (Yubico's PIV attestation roots and intermediates for a real key),
    /// needed by `init`.
    #[serde(default)]
    pub attestation_roots: Option<PathBuf>,
    /// When the card asks for the PIN: "never", "once" (default) or "always".
    #[serde(default = "default_pin_policy", deserialize_with = "pin_policy")]
    pub pin_policy: PivPinPolicy,
    /// When the card asks for a touch: "never" (default), "always" or "cached".
    #[serde(default = "default_touch_policy", deserialize_with = "touch_policy")]
    pub touch_policy: PivTouchPolicy,
    /// The slot of each CA key (default: retired slots 82–85, so 9a and 9c
    /// stay free for the card's usual uses).
    #[serde(default)]
    pub slots: PivSlots,
}

/// `[piv.slots]`: which PIV slot holds each CA key (`9a`, `9c`, `9d`, `9e`,
/// `82`–`95`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivSlots {
    /// The SSH user CA key (default 82).
    #[serde(default = "slot_82", deserialize_with = "slot")]
    pub ssh_user_ca: PivSlot,
    /// The SSH host CA key (default 83).
    #[serde(default = "slot_83", deserialize_with = "slot")]
    pub ssh_host_ca: PivSlot,
    /// The X.509 CA key (default 84).
    #[serde(default = "slot_84", deserialize_with = "slot")]
    pub x509_ca: PivSlot,
    /// The log key (default 85).
    #[serde(default = "slot_85", deserialize_with = "slot")]
    pub log_key: PivSlot,
}

impl Default for PivSlots {
    fn default() -> Self {
        Self {
            ssh_user_ca: slot_82(),
            ssh_host_ca: slot_83(),
            x509_ca: slot_84(),
            log_key: slot_85(),
        }
    }
}

fn slot_82() -> PivSlot {
    PivSlot::Retired(1)
}
fn slot_83() -> PivSlot {
    PivSlot::Retired(2)
}
fn slot_84() -> PivSlot {
    PivSlot::Retired(3)
}
fn slot_85() -> PivSlot {
    PivSlot::Retired(4)
}
fn default_pin_policy() -> PivPinPolicy {
    PivPinPolicy::Once
}
fn default_touch_policy() -> PivTouchPolicy {
    PivTouchPolicy::Never
}

fn slot<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<PivSlot, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

fn pin_policy<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<PivPinPolicy, D::Error> {
    match String::deserialize(d)?.as_str() {
        "never" => Ok(PivPinPolicy::Never),
        "once" => Ok(PivPinPolicy::Once),
        "always" => Ok(PivPinPolicy::Always),
        other => Err(serde::de::Error::custom(format!(
            "unknown PIN policy {other:?}; expected \"never\", \"once\" or \"always\""
        ))),
    }
}

fn touch_policy<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<PivTouchPolicy, D::Error> {
    match String::deserialize(d)?.as_str() {
        "never" => Ok(PivTouchPolicy::Never),
        "always" => Ok(PivTouchPolicy::Always),
        "cached" => Ok(PivTouchPolicy::Cached),
        other => Err(serde::de::Error::custom(format!(
            "unknown touch policy {other:?}; expected \"never\", \"always\" or \"cached\""
        ))),
    }
}

impl PivSlots {
    /// The slot of a CA key.
    pub fn of(&self, role: crate::keys::KeyRole) -> PivSlot {
        use crate::keys::KeyRole;
        match role {
            KeyRole::SshUserCa => self.ssh_user_ca,
            KeyRole::SshHostCa => self.ssh_host_ca,
            KeyRole::X509Ca => self.x509_ca,
            KeyRole::LogKey => self.log_key,
        }
    }
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
    /// Validity of the host certificates a node gets when it joins or
    /// renews (`signet-node join`/`renew`), at most `ssh_host_max_ttl`.
    #[serde(default = "default_node_host_ttl", with = "humantime_serde_compat")]
    pub node_host_ttl: Duration,
}

impl Default for IssuanceSection {
    fn default() -> Self {
        Self {
            ssh_user_max_ttl: default_user_ttl(),
            ssh_host_max_ttl: default_host_ttl(),
            x509_client_max_ttl: default_user_ttl(),
            node_host_ttl: default_node_host_ttl(),
        }
    }
}

fn default_user_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}
fn default_host_ttl() -> Duration {
    Duration::from_secs(30 * 86400)
}
fn default_node_host_ttl() -> Duration {
    Duration::from_secs(7 * 86400)
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
pub(crate) mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
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
        if let Some(module) = config.hsm.module.as_mut() {
            // A bare file name is left to the dynamic loader's search path.
            if module.is_relative() && module.components().count() > 1 {
                anchor(module);
            }
        }
        if let Some(pin_file) = config.hsm.pin_file.as_mut() {
            anchor(pin_file);
        }
        if let Some(piv) = config.piv.as_mut() {
            for file in [
                piv.pin_file.as_mut(),
                piv.management_key_file.as_mut(),
                piv.attestation_roots.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                anchor(file);
            }
        }
        if let HighWaterSetting::File(file) = &mut config.log.high_water {
            anchor(file);
        }
        if let Some(socket) = config.serve.admin_socket.as_mut() {
            anchor(socket);
        }
        if let Some(webauthn) = config.webauthn.as_mut() {
            webauthn.attestation_roots.iter_mut().for_each(&anchor);
        }
        config.attestation.roots.iter_mut().for_each(&anchor);
        config.store.anchor(base);
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
        self.serve.check().or_else(|reason| fail(&reason))?;
        if let Some(webauthn) = &self.webauthn {
            webauthn.check().or_else(|reason| fail(&reason))?;
        }
        self.limits.check().or_else(|reason| fail(&reason))?;
        self.store.check().or_else(|reason| fail(&reason))?;
        match self.hsm.backend {
            Backend::Pkcs11 => self.check_pkcs11().or_else(|reason| fail(&reason))?,
            Backend::Piv => self.check_piv().or_else(|reason| fail(&reason))?,
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

    fn check_pkcs11(&self) -> std::result::Result<(), String> {
        if self.hsm.module.is_none() {
            return Err("hsm.module: the PKCS#11 module is required (or set hsm.backend = \"piv\" for a YubiKey)".into());
        }
        match (&self.hsm.token_label, &self.hsm.token_uri) {
            (Some(_), Some(_)) => return Err("hsm: give token_label or token_uri, not both".into()),
            (None, None) => return Err("hsm: token_label or token_uri is required".into()),
            _ => {}
        }
        match (&self.hsm.pin_file, &self.hsm.pin_env) {
            (Some(_), Some(_)) => return Err("hsm: give pin_file or pin_env, not both".into()),
            (None, None) => return Err("hsm: pin_file or pin_env is required".into()),
            _ => {}
        }
        if self.piv.is_some() {
            return Err("piv: only used with hsm.backend = \"piv\"".into());
        }
        Ok(())
    }

    /// The PIV backend's rules: a card by serial, a PIN source, distinct
    /// slots, key types a YubiKey can make, and a high-water file.
    fn check_piv(&self) -> std::result::Result<(), String> {
        for (field, given) in [
            ("hsm.module", self.hsm.module.is_some()),
            ("hsm.token_label", self.hsm.token_label.is_some()),
            ("hsm.token_uri", self.hsm.token_uri.is_some()),
            ("hsm.pin_file", self.hsm.pin_file.is_some()),
            ("hsm.pin_env", self.hsm.pin_env.is_some()),
        ] {
            if given {
                return Err(format!(
                    "{field}: not used with hsm.backend = \"piv\" (the card, its PIN and slots are set in [piv])"
                ));
            }
        }
        let piv = self
            .piv
            .as_ref()
            .ok_or("piv: hsm.backend = \"piv\" needs a [piv] section (serial, pin_file)")?;
        match (&piv.pin_file, &piv.pin_env) {
            (Some(_), Some(_)) => return Err("piv: give pin_file or pin_env, not both".into()),
            (None, None) => return Err("piv: pin_file or pin_env is required".into()),
            _ => {}
        }
        let mut used = Vec::new();
        for role in crate::keys::KeyRole::ALL {
            let slot = piv.slots.of(role);
            if let Some((other, _)) = used.iter().find(|(_, s)| *s == slot) {
                return Err(format!(
                    "piv.slots.{}: slot {slot} already holds the {other} key; each CA key needs a slot of its own",
                    role.config_name()
                ));
            }
            used.push((role, slot));
        }
        for role in crate::keys::KeyRole::ALL {
            let algorithm = self.piv_algorithm(role);
            if crate::ca_keys::piv_algorithm(algorithm).is_none() {
                return Err(format!(
                    "keys.{}: a YubiKey's PIV applet cannot make {algorithm} keys for Signet; use ecdsa-p256 or ecdsa-p384{}",
                    role.config_name(),
                    match algorithm {
                        KeyAlgorithm::Ed25519 => " (Ed25519 needs firmware 5.7 or later, and the PIV backend does not sign with it yet)",
                        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => " (RSA-3072 and RSA-4096 need firmware 5.7 or later)",
                        _ => "",
                    }
                ));
            }
        }
        if self.log.high_water == HighWaterSetting::Token {
            return Err("log.high_water: a YubiKey has no data object for the log's high-water mark (that is a PKCS#11 token feature); set it to the path of a file kept outside data_dir and its backups (docs/operations.md)".into());
        }
        Ok(())
    }

    /// The key type of a CA key on the PIV backend: as configured, and an
    /// unset log key is ECDSA P-256 (the one note-signing type a YubiKey
    /// has before firmware 5.7).
    pub fn piv_algorithm(&self, role: crate::keys::KeyRole) -> KeyAlgorithm {
        use crate::keys::KeyRole;
        match role {
            KeyRole::SshUserCa => self.keys.ssh_user_ca,
            KeyRole::SshHostCa => self.keys.ssh_host_ca,
            KeyRole::X509Ca => self.keys.x509_ca,
            KeyRole::LogKey => self.keys.log_key.unwrap_or(KeyAlgorithm::EcdsaP256),
        }
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
        let module = self.hsm.module.clone().ok_or_else(|| {
            missing("hsm.module: the PKCS#11 module is required (the PIV backend has no token)")
        })?;
        Ok(TokenConfig {
            module,
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

    const PIV: &str = "data_dir = \"/var/lib/signet\"\n[hsm]\nbackend = \"piv\"\n[piv]\nserial = 13371337\npin_file = \"piv-pin\"\nmanagement_key_file = \"piv-mgm\"\nattestation_roots = \"roots.pem\"\n[log]\nhigh_water = \"/var/lib/signet-mark/high-water\"\n";

    fn piv_err(text: &str) -> String {
        Config::parse(text, Path::new("/etc/signet/ca.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_piv_configuration_has_documented_defaults() {
        let config = Config::parse(PIV, Path::new("/etc/signet/ca.toml")).unwrap();
        assert_eq!(config.hsm.backend, Backend::Piv);
        let piv = config.piv.as_ref().unwrap();
        assert_eq!(piv.serial, 13_371_337);
        assert_eq!(
            piv.pin_file.as_deref(),
            Some(Path::new("/etc/signet/piv-pin"))
        );
        assert_eq!(
            piv.management_key_file.as_deref(),
            Some(Path::new("/etc/signet/piv-mgm"))
        );
        assert_eq!(piv.pin_policy, PivPinPolicy::Once);
        assert_eq!(piv.touch_policy, PivTouchPolicy::Never);
        let slots: Vec<String> = crate::keys::KeyRole::ALL
            .iter()
            .map(|r| piv.slots.of(*r).to_string())
            .collect();
        assert_eq!(slots, ["82", "83", "84", "85"]);
        assert_eq!(
            config.piv_algorithm(crate::keys::KeyRole::LogKey),
            KeyAlgorithm::EcdsaP256
        );
        assert!(config.token_config().is_err());
    }

    #[test]
    fn the_examples_piv_lines_parse() {
        // The commented [piv] section of the example, switched on.
        let mut text = String::new();
        let mut in_piv = false;
        for line in EXAMPLE.lines() {
            if line == "# [piv]" {
                in_piv = true;
            }
            if line.starts_with('[') {
                in_piv = false;
            }
            let setting = line.strip_prefix("# ").filter(|rest| {
                let key = rest.split(" = ").next().unwrap_or_default();
                rest.starts_with("[piv")
                    || (rest.contains(" = ")
                        && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        && key != "pin_env")
            });
            let line = match (line, setting) {
                ("# backend = \"pkcs11\"", _) => "backend = \"piv\"".to_owned(),
                (l, _)
                    if l.starts_with("module =")
                        || l.starts_with("token_label =")
                        || l.starts_with("pin_file =") =>
                {
                    String::new()
                }
                (l, _) if l.starts_with("high_water =") => {
                    "high_water = \"/var/lib/signet-mark/high-water\"".to_owned()
                }
                (l, _) if l.starts_with("log_key =") => "log_key = \"ecdsa-p256\"".to_owned(),
                (_, Some(setting)) if in_piv => setting.to_owned(),
                (l, _) => l.to_owned(),
            };
            text.push_str(&line);
            text.push('\n');
        }
        let config = Config::parse(&text, Path::new("/etc/signet/ca.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let piv = config.piv.unwrap();
        assert_eq!(piv.serial, 12_345_678);
        assert_eq!(piv.slots, PivSlots::default());
        assert_eq!(
            piv.attestation_roots.as_deref(),
            Some(Path::new("/etc/signet/yubico-piv-roots.pem"))
        );
    }

    #[test]
    fn piv_needs_a_high_water_file() {
        let text = PIV.replace(
            "[log]\nhigh_water = \"/var/lib/signet-mark/high-water\"\n",
            "",
        );
        let err = piv_err(&text);
        assert!(err.contains("log.high_water"), "{err}");
        assert!(err.contains("file"), "{err}");
        let err = piv_err(&PIV.replace("/var/lib/signet-mark/high-water", "token"));
        assert!(err.contains("log.high_water"), "{err}");
    }

    #[test]
    fn piv_refuses_key_types_a_yubikey_cannot_make() {
        for (field, value, says) in [
            ("ssh_user_ca", "ed25519", "firmware 5.7"),
            ("x509_ca", "rsa-3072", "firmware 5.7"),
            ("log_key", "ed25519", "firmware 5.7"),
        ] {
            let text = format!("{PIV}[keys]\n{field} = \"{value}\"\n");
            let err = piv_err(&text);
            assert!(err.contains(&format!("keys.{field}")), "{err}");
            assert!(err.contains(value) && err.contains(says), "{err}");
        }
        // The log key signs notes: P-384 is refused on any backend.
        let err = piv_err(&format!("{PIV}[keys]\nlog_key = \"ecdsa-p384\"\n"));
        assert!(err.contains("keys.log_key"), "{err}");
        let config = Config::parse(
            &format!("{PIV}[keys]\nssh_user_ca = \"ecdsa-p384\"\n"),
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(config.keys.ssh_user_ca, KeyAlgorithm::EcdsaP384);
    }

    #[test]
    fn piv_settings_are_checked_with_the_field_named() {
        let cases = [
            (
                PIV.replace("[log]\n", "[piv.slots]\nx509_ca = \"82\"\n[log]\n"),
                "piv.slots.x509_ca: slot 82 already holds the ssh-user-ca key",
            ),
            (
                PIV.replace("backend = \"piv\"\n", "backend = \"piv\"\nmodule = \"/usr/lib/x.so\"\n"),
                "hsm.module",
            ),
            (PIV.replace("backend = \"piv\"", "backend = \"yubikey\""), "yubikey"),
            (PIV.replace("pin_file = \"piv-pin\"\n", ""), "pin_file or pin_env"),
            (
                PIV.replace("serial = 13371337\n", "serial = 13371337\npin_env = \"PIN\"\n"),
                "not both",
            ),
            (PIV.replace("serial = 13371337", "serial = \"abc\""), "serial"),
            (PIV.replace("serial = 13371337", "serial = -1"), "serial"),
            (
                PIV.replace("[log]\n", "[piv.slots]\nlog_key = \"f9\"\n[log]\n"),
                "\"f9\" is not a signing slot",
            ),
            (PIV.replace("[piv]\n", "[piv]\npin_policy = \"sometimes\"\n"), "sometimes"),
            (PIV.replace("[piv]\n", "[piv]\ntouch_policy = \"maybe\"\n"), "maybe"),
            (PIV.replace("[piv]\n", "[piv]\nslot = \"82\"\n"), "slot"),
            (
                PIV.replace("[piv]\nserial = 13371337\npin_file = \"piv-pin\"\nmanagement_key_file = \"piv-mgm\"\nattestation_roots = \"roots.pem\"\n", ""),
                "needs a [piv] section",
            ),
        ];
        for (text, named) in cases {
            let err = piv_err(&text);
            assert!(err.contains(named), "{named}: {err}\n{text}");
        }
    }

    #[test]
    fn pkcs11_settings_stay_required_and_piv_stays_out() {
        let text = EXAMPLE.replace("module = \"/usr/lib/softhsm/libsofthsm2.so\"\n", "");
        assert!(piv_err(&text).contains("hsm.module"));
        let text = format!("{EXAMPLE}\n[piv]\nserial = 1\npin_file = \"p\"\n");
        let err = piv_err(&text);
        assert!(err.contains("piv"), "{err}");
        let config = Config::parse(EXAMPLE, Path::new("x.toml")).unwrap();
        assert_eq!(config.hsm.backend, Backend::Pkcs11);
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let config = Config::parse(EXAMPLE, Path::new("/etc/signet/signet-ca.toml")).unwrap();
        assert!(config.data_dir.is_absolute());
    }
}
