//! The admin socket's protocol: one JSON object per line each way, one
//! request per connection. The daemon and the admin commands are the same
//! binary, so this is Signet's own business and not part of signet-api.

use serde::{Deserialize, Serialize};
use signet_policy::{Change, NodeChange};

/// The largest request line accepted (a large roles directory fits).
pub const MAX_REQUEST: usize = 8 * 1024 * 1024;

/// What an admin asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AdminRequest {
    /// `users invite NAME --ttl D`.
    Invite {
        /// The user.
        user: String,
        /// How long the link is valid.
        ttl_seconds: u64,
    },
    /// `users list`.
    ListUsers,
    /// `users show NAME`.
    ShowUser {
        /// The user.
        user: String,
    },
    /// `users remove-key NAME CREDENTIAL_ID`.
    RemoveKey {
        /// The user.
        user: String,
        /// The credential, base64url.
        credential_id: String,
    },
    /// `users lock NAME --reason R [--ttl D]`.
    Lock {
        /// The user.
        user: String,
        /// Why.
        reason: String,
        /// How long; absent: until unlocked.
        #[serde(default)]
        ttl_seconds: Option<u64>,
    },
    /// `users unlock NAME`.
    Unlock {
        /// The user.
        user: String,
        /// Why.
        reason: String,
    },
    /// `roles apply [--dry-run] PATH...`: the whole desired policy, as the
    /// changes that build it from nothing (the command parsed and checked
    /// the files, with file and line in its errors).
    ApplyPolicy {
        /// Puts of every role and user wanted.
        changes: Vec<Change>,
        /// Only compute the diff.
        dry_run: bool,
    },
    /// `nodes apply [--dry-run] PATH...`: the whole desired inventory, as
    /// the puts that build it from nothing.
    ApplyNodes {
        /// Puts of every node wanted.
        changes: Vec<NodeChange>,
        /// Only compute the diff.
        dry_run: bool,
    },
    /// `nodes list`.
    ListNodes,
    /// `lock --device SERIAL --reason R [--ttl D]`.
    LockDevice {
        /// The PIV device's serial.
        serial: u32,
        /// Why.
        reason: String,
        /// How long; absent: until unlocked.
        #[serde(default)]
        ttl_seconds: Option<u64>,
    },
    /// `proxies view`: what the proxies' feed sends now.
    ProxyView,
    /// `proxies invite --name NAME --ttl D`.
    InviteProxy {
        /// The proxy's name.
        name: String,
        /// How long the token is valid.
        ttl_seconds: u64,
    },
    /// `nodes invite NAME --ttl D`.
    InviteNode {
        /// The node's inventory name.
        name: String,
        /// How long the token is valid.
        ttl_seconds: u64,
    },
    /// `unlock --device SERIAL`.
    UnlockDevice {
        /// The PIV device's serial.
        serial: u32,
        /// Why.
        reason: String,
    },
}

impl AdminRequest {
    /// The operation's name, for the daemon's log.
    pub fn op(&self) -> &'static str {
        match self {
            Self::Invite { .. } => "invite",
            Self::ListUsers => "list-users",
            Self::ShowUser { .. } => "show-user",
            Self::RemoveKey { .. } => "remove-key",
            Self::Lock { .. } => "lock",
            Self::Unlock { .. } => "unlock",
            Self::ApplyPolicy { .. } => "apply-policy",
            Self::ApplyNodes { .. } => "apply-nodes",
            Self::ListNodes => "list-nodes",
            Self::ProxyView => "proxy-view",
            Self::InviteProxy { .. } => "invite-proxy",
            Self::InviteNode { .. } => "invite-node",
            Self::LockDevice { .. } => "lock-device",
            Self::UnlockDevice { .. } => "unlock-device",
        }
    }
}

/// What the daemon answers: already rendered, so the command only prints
/// (`text` on stdout, or `json` with `--json`; `note` on stderr).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminResponse {
    /// The exit code the command ends with (0: done).
    pub exit: u8,
    /// The result for people (stdout), or the error message (stderr).
    pub text: String,
    /// Context for people, on stderr.
    #[serde(default)]
    pub note: String,
    /// The result for scripts.
    #[serde(default)]
    pub json: serde_json::Value,
}

impl AdminResponse {
    /// A success.
    pub fn ok(text: String, note: String, json: serde_json::Value) -> Self {
        Self {
            exit: 0,
            text,
            note,
            json,
        }
    }

    /// A refusal or failure.
    pub fn error(exit: u8, message: String) -> Self {
        Self {
            exit: exit.max(1),
            json: serde_json::json!({ "error": message }),
            text: message,
            note: String::new(),
        }
    }
}
