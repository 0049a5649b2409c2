//! The CA → access proxy feed: `GET /v1/proxy/feed` on the CA's mTLS-only
//! proxy listener, answered with JSON lines that never end.
//!
//! The first line is a [`FeedMessage::Snapshot`] of everything a proxy
//! decides with ([`ProxyView`]: nodes, each user's access by role, locks,
//! the CA's X.509 root). Each time the CA applies a log entry that changes
//! the view, another snapshot follows at once (the view is small, and a
//! whole view cannot be half applied); between them a
//! [`FeedMessage::Heartbeat`] says the CA is alive. A proxy that misses
//! heartbeats reconnects and starts over from a snapshot. Every line
//! carries the format version `v`; a proxy refuses versions it does not
//! know rather than guess.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::B64;

/// The feed's route.
pub const FEED_PATH: &str = "/v1/proxy/feed";

/// The format version this crate reads and writes.
pub const FEED_VERSION: u32 = 1;

/// The longest line a proxy accepts (a view of many thousand users fits).
pub const MAX_FEED_LINE: usize = 16 << 20;

/// Where a new access proxy trades its join token for a certificate
/// (`POST`, on the CA's public listener: the proxy has no certificate yet).
pub const JOIN_PATH: &str = "/v1/proxy/join";

/// A join: the one-time token `signet-ca proxies invite` printed, and the
/// public key the proxy made for itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The join token (a secret: never logged, never in `Debug`).
    pub token: String,
    /// The proxy's public key, DER SubjectPublicKeyInfo.
    pub public_key: B64,
    /// The DNS names and IP addresses engineers reach the proxy by: the CA
    /// also issues a TLS server certificate for them (same key), if its
    /// `serve.proxy_names` allows every one. Empty: no server certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_names: Vec<String>,
}

impl std::fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinRequest")
            .field("token", &"<redacted>")
            .field("public_key", &self.public_key)
            .field("public_names", &self.public_names)
            .finish()
    }
}

/// The proxy's certificate: a client certificate under the CA's X.509 root,
/// logged, whose serial the CA's proxy listener knows as this proxy's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinResponse {
    /// The proxy's name, from its invite.
    pub name: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// When it expires, unix seconds.
    pub not_after: u64,
    /// Its log index.
    pub log_index: u64,
    /// The TLS server certificate for the same key, naming the proxy's
    /// public names (PEM), when they were asked for; logged too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_certificate_pem: Option<String>,
}

/// Where a proxy renews its certificate before it expires (`POST`, on the
/// CA's proxy listener, with the certificate being renewed as the TLS
/// client certificate). The answer is a [`JoinResponse`].
pub const RENEW_PATH: &str = "/v1/proxy/renew";

/// A renewal: the proxy's new public key (a new key each time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// DER SubjectPublicKeyInfo.
    pub public_key: B64,
    /// The proxy's public names, as in [`JoinRequest::public_names`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_names: Vec<String>,
}

/// One line of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeedMessage {
    /// The whole view, as of `view.log_size` entries.
    Snapshot {
        /// Format version: [`FEED_VERSION`].
        v: u32,
        /// The view.
        view: ProxyView,
    },
    /// The CA is alive and its view unchanged.
    Heartbeat {
        /// Format version: [`FEED_VERSION`].
        v: u32,
        /// The entries the last snapshot reflects.
        log_size: u64,
        /// The CA's clock, unix seconds.
        time: u64,
    },
}

/// What is wrong with a feed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedLineError {
    /// Longer than [`MAX_FEED_LINE`].
    TooLong(usize),
    /// Not a feed message (the JSON error's words).
    Malformed(String),
    /// A version this crate does not know.
    Version(u32),
}

impl std::fmt::Display for FeedLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong(n) => write!(f, "a feed line of {n} bytes is longer than {MAX_FEED_LINE}"),
            Self::Malformed(e) => write!(f, "not a feed message: {e}"),
            Self::Version(v) => write!(
                f,
                "feed version {v} is not known here (this proxy reads version {FEED_VERSION}); upgrade it"
            ),
        }
    }
}

impl std::error::Error for FeedLineError {}

impl FeedMessage {
    /// A snapshot of `view` in the current version.
    pub fn snapshot(view: ProxyView) -> Self {
        Self::Snapshot {
            v: FEED_VERSION,
            view,
        }
    }

    /// A heartbeat in the current version.
    pub fn heartbeat(log_size: u64, time: u64) -> Self {
        Self::Heartbeat {
            v: FEED_VERSION,
            log_size,
            time,
        }
    }

    /// The line as sent: compact JSON and a newline.
    pub fn to_line(&self) -> String {
        // Serializing these types cannot fail: no maps with non-string
        // keys, no floats; `null` would be refused by every reader.
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| "null".into());
        line.push('\n');
        line
    }

    /// Parses one line (without or with its newline), refusing unknown
    /// fields and versions.
    pub fn parse_line(line: &[u8]) -> Result<Self, FeedLineError> {
        if line.len() > MAX_FEED_LINE {
            return Err(FeedLineError::TooLong(line.len()));
        }
        let message: Self =
            serde_json::from_slice(line).map_err(|e| FeedLineError::Malformed(e.to_string()))?;
        match &message {
            Self::Snapshot { v, .. } | Self::Heartbeat { v, .. } if *v != FEED_VERSION => {
                Err(FeedLineError::Version(*v))
            }
            _ => Ok(message),
        }
    }
}

/// Everything a proxy decides a connection with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyView {
    /// The log entries this view reflects.
    pub log_size: u64,
    /// The CA's clock when it was made, unix seconds.
    pub time: u64,
    /// The CA's X.509 root (DER): client certificates must chain to it, and
    /// the proxy checks the CA's own TLS certificate with it.
    pub x509_root: B64,
    /// Every node, by name.
    pub nodes: Vec<FeedNode>,
    /// Every user of the policy, with what each role allows.
    pub users: Vec<FeedUser>,
    /// Users locked now (locks that ended are left out).
    pub user_locks: Vec<UserLock>,
    /// YubiKeys locked now (locks that ended are left out).
    pub device_locks: Vec<DeviceLock>,
}

/// A node a proxy may connect to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedNode {
    /// Its name (what users ask for).
    pub name: String,
    /// Where to dial it: `host:port`.
    pub address: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// A user and what each of its roles allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedUser {
    /// The user's name (the CN and user URI of its certificates).
    pub name: String,
    /// One entry per role the user holds.
    pub access: Vec<RoleAccess>,
}

/// What one role allows through the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleAccess {
    /// The role.
    pub role: String,
    /// The logins it allows.
    pub logins: Vec<String>,
    /// The node labels it allows (a node matches when, for every key, its
    /// label has one of the values; `*` any value; `{"*":["*"]}` every node).
    pub node_labels: BTreeMap<String, Vec<String>>,
}

/// A user lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLock {
    /// The user.
    pub user: String,
    /// Why (told to the user whose tunnel is closed).
    pub reason: String,
    /// When it ends, unix seconds; absent: until unlocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

/// A YubiKey lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceLock {
    /// The YubiKey's serial.
    pub serial: u32,
    /// Why.
    pub reason: String,
    /// When it ends, unix seconds; absent: until unlocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn view() -> ProxyView {
        ProxyView {
            log_size: 12,
            time: 1_700_000_000,
            x509_root: B64(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
            nodes: vec![FeedNode {
                name: "web-1".into(),
                address: "web-1:22".into(),
                labels: BTreeMap::from([("env".into(), "prod".into())]),
            }],
            users: vec![FeedUser {
                name: "alice".into(),
                access: vec![RoleAccess {
                    role: "sre".into(),
                    logins: vec!["root".into()],
                    node_labels: BTreeMap::from([("env".into(), vec!["prod".into()])]),
                }],
            }],
            user_locks: vec![UserLock {
                user: "bob".into(),
                reason: "left".into(),
                until: None,
            }],
            device_locks: vec![DeviceLock {
                serial: 7,
                reason: "lost".into(),
                until: Some(1_700_003_600),
            }],
        }
    }

    #[test]
    fn lines_round_trip() {
        for message in [
            FeedMessage::snapshot(view()),
            FeedMessage::heartbeat(12, 1_700_000_001),
        ] {
            let line = message.to_line();
            assert!(line.ends_with('\n'));
            assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
            assert_eq!(FeedMessage::parse_line(line.as_bytes()).unwrap(), message);
        }
        assert_eq!(
            FeedMessage::heartbeat(3, 4).to_line(),
            "{\"type\":\"heartbeat\",\"v\":1,\"log_size\":3,\"time\":4}\n"
        );
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        let good = FeedMessage::snapshot(view()).to_line();
        let cases: Vec<(String, &str)> = vec![
            (good.replace("\"v\":1", "\"v\":2"), "version 2"),
            (
                good.replace("\"type\":\"snapshot\"", "\"type\":\"delta\""),
                "unknown variant",
            ),
            (
                good.replace("\"log_size\":12", "\"log_size\":12,\"x\":1"),
                "unknown field",
            ),
            (
                good.replace("\"serial\":7", "\"serial\":-7"),
                "invalid value",
            ),
            (
                good.replace("\"x509_root\":\"MAMCAQE=\"", "\"x509_root\":\"!\""),
                "base64",
            ),
            ("{}".into(), "missing field"),
            ("".into(), "EOF"),
            ("[1,2]".into(), "invalid type"),
            (
                "{\"type\":\"heartbeat\",\"v\":1,\"log_size\":1}".into(),
                "missing field `time`",
            ),
        ];
        for (line, needle) in cases {
            let err = FeedMessage::parse_line(line.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(needle), "{line}: {err}");
        }
        let long = vec![b' '; MAX_FEED_LINE + 1];
        assert_eq!(
            FeedMessage::parse_line(&long),
            Err(FeedLineError::TooLong(MAX_FEED_LINE + 1))
        );
    }
}
