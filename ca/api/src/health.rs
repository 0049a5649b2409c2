//! `GET /v1/health`: can this CA issue right now?

use serde::{Deserialize, Serialize};

/// The state of one part of the CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Whether it works.
    pub ok: bool,
    /// What is wrong, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The log as the CA serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogStatus {
    /// Entries in the latest signed checkpoint.
    pub size: u64,
    /// Its root hash, base64.
    pub root_hash: String,
    /// The log's origin line.
    pub origin: String,
}

/// The body of `GET /v1/health`: status 200 when `ok`, 503 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Whether the CA can issue.
    pub ok: bool,
    /// The HSM (or YubiKey) holding the CA keys.
    pub hsm: Component,
    /// The store.
    pub store: Component,
    /// The log.
    pub log: LogStatus,
    /// The witnesses that must cosign each checkpoint before it is
    /// released (absent when none are configured).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<WitnessStatus>,
}

/// One witness as the CA last heard from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessStatus {
    /// Its name in the CA's configuration.
    pub name: String,
    /// Whether its last answer was a valid cosignature.
    pub ok: bool,
    /// Why not, when it was not (unreachable, refused and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The log size it last cosigned, as far as the CA knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}
