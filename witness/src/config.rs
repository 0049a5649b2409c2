//! The witness's configuration file (TOML).
//!
//! ```toml
//! name = "witness.example.net/w1"     # the key name in the vkey and every cosignature
//! listen = "127.0.0.1:7380"           # default
//! state_dir = "/var/lib/signet-witness"
//! # request_timeout = "10s"           # default
//! # max_body_bytes = 65536            # default
//! # log_format = "text"               # or "json"
//!
//! [key]                               # a key file ...
//! file = "/var/lib/signet-witness/witness.key"
//! # ... or a key in a PKCS#11 token:
//! # pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"
//! # token_label = "witness"           # or token_uri = "pkcs11:token=witness"
//! # key_label = "signet-witness"      # default
//! # pin_file = "/etc/signet-witness/pin"   # or pin_env = "SIGNET_WITNESS_PIN"
//!
//! [[log]]
//! origin = "ca.example.com/signet-log"
//! vkey = "ca.example.com/signet-log+1a2b3c4d+AQ..."
//! ```
//!
//! Relative paths are relative to the configuration file's directory.
//! Unknown fields are refused, so a misspelt option is not silently ignored.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use signet_hsm::{PinSource, Pkcs11Uri, TokenConfig, TokenSelector};
use signet_log::note::{SignatureType, VerifierKey, VerifierSet};

use crate::error::{Error, Result};

/// The default listen address: loopback, so a fresh witness is not exposed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7380";
/// The default bound on a request body: far above any checkpoint with a
/// 63-line proof, far below what would cost memory.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
/// The default label of the witness key in a token.
pub const DEFAULT_KEY_LABEL: &str = "signet-witness";

/// How the daemon writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for a SIEM.
    Json,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: String,
    #[serde(default)]
    listen: Option<String>,
    state_dir: PathBuf,
    #[serde(default)]
    request_timeout: Option<String>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    log_format: LogFormat,
    key: RawKey,
    #[serde(default)]
    log: Vec<RawLog>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    pkcs11_module: Option<PathBuf>,
    #[serde(default)]
    token_label: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    key_label: Option<String>,
    #[serde(default)]
    pin_file: Option<PathBuf>,
    #[serde(default)]
    pin_env: Option<String>,
    #[serde(default)]
    sessions: Option<NonZeroUsize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    origin: String,
    vkey: String,
}

/// Where the witness key lives.
#[derive(Debug, Clone)]
pub enum KeyConfig {
    /// A PKCS#8 PEM file (mode 0600, owned by the witness's user).
    File(PathBuf),
    /// A non-extractable Ed25519 key in a PKCS#11 token.
    Pkcs11 {
        /// How to reach the token (module, token, PIN source).
        token: Box<TokenConfig>,
        /// The key pair's `CKA_LABEL`.
        key_label: String,
    },
}

/// A log the witness cosigns for.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The checkpoint origin line.
    pub origin: String,
    /// The log's note verifier key.
    pub key: VerifierKey,
}

impl LogConfig {
    /// The verifier set of this log (its one key).
    pub fn verifiers(&self) -> VerifierSet {
        VerifierSet::new(vec![self.key.clone()]).unwrap_or_default()
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The witness's key name.
    pub name: String,
    /// The HTTP listen address.
    pub listen: SocketAddr,
    /// Where the latest checkpoint of every log is kept.
    pub state_dir: PathBuf,
    /// The longest a request may take, body included.
    pub request_timeout: Duration,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// The witness key.
    pub key: KeyConfig,
    /// The logs witnessed.
    pub logs: Vec<LogConfig>,
}

impl Config {
    /// Reads and validates the configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.display().to_string(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` resolves relative
    /// paths and names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.display().to_string(),
            reason,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        // A note key name (signed-note): non-empty, no whitespace, no '+'.
        if raw.name.is_empty()
            || raw
                .name
                .chars()
                .any(|c| c.is_whitespace() || c == '+' || c.is_control())
        {
            return Err(bad(format!(
                "name: {:?} is not a valid key name (non-empty, no spaces, no '+'); \
                 a URL without scheme is usual, e.g. witness.example.net/w1",
                raw.name
            )));
        }
        let listen = raw
            .listen
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN)
            .parse()
            .map_err(|e| {
                bad(format!(
                    "listen: {e} (write host:port, e.g. {DEFAULT_LISTEN})"
                ))
            })?;
        let request_timeout = match &raw.request_timeout {
            None => Duration::from_secs(10),
            Some(t) => humantime::parse_duration(t)
                .map_err(|e| bad(format!("request_timeout: {e} (e.g. \"10s\")")))?,
        };
        if request_timeout.is_zero() {
            return Err(bad("request_timeout: must be more than zero".into()));
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
        if max_body_bytes < 1024 {
            return Err(bad("max_body_bytes: at least 1024".into()));
        }
        let key = key_config(raw.key, &resolve).map_err(bad)?;
        let mut logs: Vec<LogConfig> = Vec::with_capacity(raw.log.len());
        for (i, l) in raw.log.into_iter().enumerate() {
            let key = VerifierKey::parse(l.vkey.trim())
                .map_err(|e| bad(format!("log[{i}].vkey: {e}")))?;
            if key.signature_type() == SignatureType::CosignatureV1 {
                return Err(bad(format!(
                    "log[{i}].vkey: a cosignature/v1 key is a witness's, not a log's"
                )));
            }
            if l.origin.is_empty() || l.origin.chars().any(char::is_control) {
                return Err(bad(format!("log[{i}].origin: must be a non-empty line")));
            }
            if logs.iter().any(|o| o.origin == l.origin) {
                return Err(bad(format!(
                    "log[{i}].origin: {:?} is listed twice",
                    l.origin
                )));
            }
            logs.push(LogConfig {
                origin: l.origin,
                key,
            });
        }
        Ok(Self {
            name: raw.name,
            listen,
            state_dir: resolve(&raw.state_dir),
            request_timeout,
            max_body_bytes,
            log_format: raw.log_format,
            key,
            logs,
        })
    }
}

fn key_config(
    raw: RawKey,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> std::result::Result<KeyConfig, String> {
    match (raw.file, raw.pkcs11_module) {
        (Some(_), Some(_)) => Err("key: give either file or pkcs11_module, not both".into()),
        (None, None) => {
            Err("key: give file (a key file) or pkcs11_module (a PKCS#11 token)".into())
        }
        (Some(file), None) => {
            if raw.token_label.is_some()
                || raw.token_uri.is_some()
                || raw.key_label.is_some()
                || raw.pin_file.is_some()
                || raw.pin_env.is_some()
                || raw.sessions.is_some()
            {
                return Err("key: token_label, token_uri, key_label, pin_file, pin_env and sessions go with pkcs11_module, not with file".into());
            }
            Ok(KeyConfig::File(resolve(&file)))
        }
        (None, Some(module)) => {
            let token = match (raw.token_label, raw.token_uri) {
                (Some(label), None) => TokenSelector::Label(label),
                (None, Some(uri)) => TokenSelector::Uri(
                    Pkcs11Uri::parse(&uri).map_err(|e| format!("key.token_uri: {e}"))?,
                ),
                _ => return Err("key: give exactly one of token_label and token_uri".into()),
            };
            let pin = match (raw.pin_file, raw.pin_env) {
                (Some(file), None) => PinSource::File(resolve(&file)),
                (None, Some(var)) => PinSource::Env(var),
                _ => {
                    return Err(
                        "key: give exactly one of pin_file and pin_env (the PIN is never in the configuration or on the command line)"
                            .into(),
                    )
                }
            };
            let key_label = raw
                .key_label
                .unwrap_or_else(|| DEFAULT_KEY_LABEL.to_owned());
            if key_label.is_empty() {
                return Err("key.key_label: must not be empty".into());
            }
            Ok(KeyConfig::Pkcs11 {
                token: Box::new(TokenConfig {
                    module: resolve(&module),
                    token,
                    pin,
                    sessions: raw.sessions.unwrap_or(NonZeroUsize::MIN.saturating_add(1)),
                }),
                key_label,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LOG_VKEY: &str =
        "example.com/behind-the-sofa+ab9122a2+AeO/3v6Id+BWM0fLZuLY1xmpFp7MNwaU/1x8cSJYwvrq";

    fn example() -> String {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/witness.example.toml"
        ))
        .unwrap();
        let line = text.lines().find(|l| l.starts_with("vkey = ")).unwrap();
        text.replace(line, &format!("vkey = \"{LOG_VKEY}\""))
    }

    #[test]
    fn the_deploy_example_parses() {
        let c = Config::parse(&example(), Path::new("/etc/signet-witness/witness.toml")).unwrap();
        assert_eq!(c.name, "witness.example.net/w1");
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/signet-witness"));
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY);
        assert!(
            matches!(&c.key, KeyConfig::File(p) if p == Path::new("/var/lib/signet-witness/witness.key"))
        );
        assert_eq!(c.logs.len(), 1);
        assert_eq!(c.logs[0].key.to_string(), LOG_VKEY);
    }

    #[test]
    fn the_commented_token_key_parses() {
        // The example's commented [key] for a token, swapped in.
        let text = example();
        let token: String = text
            .lines()
            .skip_while(|l| !l.starts_with("# [key]"))
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        let file_key = "[key]\nfile = \"/var/lib/signet-witness/witness.key\"\n";
        assert!(text.contains(file_key));
        let text = text.replace(file_key, &token);
        let c = Config::parse(&text, Path::new("/etc/signet-witness/witness.toml")).unwrap();
        match &c.key {
            KeyConfig::Pkcs11 { token, key_label } => {
                assert_eq!(key_label, DEFAULT_KEY_LABEL);
                assert_eq!(token.token, TokenSelector::Label("YubiHSM".into()));
                assert_eq!(
                    token.pin,
                    PinSource::File(PathBuf::from("/etc/signet-witness/pin"))
                );
            }
            other => panic!("{other:?}"),
        }
        // Relative paths follow the configuration file.
        let rel = text.replace("/etc/signet-witness/pin", "pin");
        let c = Config::parse(&rel, Path::new("/srv/w/witness.toml")).unwrap();
        let KeyConfig::Pkcs11 { token, .. } = &c.key else {
            panic!()
        };
        assert_eq!(token.pin, PinSource::File(PathBuf::from("/srv/w/pin")));
    }
}
