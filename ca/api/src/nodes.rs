//! Nodes joining: host certificates for SSH nodes, by a one-time join token
//! (`signet-ca nodes invite`) and renewed by the node itself, on the CA's
//! public listener (the node has no certificate of the CA's yet).
//!
//! - `POST /v1/nodes/join`: the token and the node's host public keys buy
//!   one OpenSSH host certificate per key, for the node's inventory name
//!   and address.
//! - `POST /v1/nodes/renew`: for each host key, its current certificate
//!   (still valid) and an SSH signature by the host key over
//!   [`renewal_message`], made within [`RENEWAL_WINDOW_SECS`] of the CA's
//!   clock. Only a node still in the inventory is renewed.
//!
//! Both answer a [`NodeCertificates`].

use serde::{Deserialize, Serialize};

/// Where a node trades its join token for host certificates.
pub const NODE_JOIN_PATH: &str = "/v1/nodes/join";

/// Where a node renews its host certificates.
pub const NODE_RENEW_PATH: &str = "/v1/nodes/renew";

/// The most host keys one node may have certified (one per key type).
pub const MAX_HOST_KEYS: usize = 4;

/// The SSH signature namespace of a renewal (`ssh-keygen -Y sign -n`).
pub const RENEWAL_NAMESPACE: &str = "renew@signet";

/// How far a renewal's `time` may be from the CA's clock, in seconds.
pub const RENEWAL_WINDOW_SECS: u64 = 300;

/// A join: the one-time token and the node's host public keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeJoinRequest {
    /// The join token (a secret: never logged, never in `Debug`).
    pub token: String,
    /// The host public keys, as OpenSSH public key lines
    /// (`ssh-ed25519 AAAA… comment`), 1 to [`MAX_HOST_KEYS`].
    pub host_keys: Vec<String>,
}

impl std::fmt::Debug for NodeJoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeJoinRequest")
            .field("token", &"<redacted>")
            .field("host_keys", &self.host_keys)
            .finish()
    }
}

/// A renewal: one [`HostRenewal`] per host certificate, all signed at `time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRenewRequest {
    /// When the node signed, unix seconds.
    pub time: u64,
    /// The certificates to renew, 1 to [`MAX_HOST_KEYS`].
    pub renewals: Vec<HostRenewal>,
}

/// One host certificate to renew, and the proof that the node holds its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRenewal {
    /// The current host certificate, as an OpenSSH certificate line.
    pub certificate: String,
    /// An SSH signature (the armored `-----BEGIN SSH SIGNATURE-----` form,
    /// namespace [`RENEWAL_NAMESPACE`]) by the certified host key over
    /// [`renewal_message`].
    pub signature: String,
}

/// What a renewal's signature covers: the time and the SHA-256 of the
/// certificate's binary encoding, so a signature renews one certificate
/// within a few minutes of `time`, and nothing else.
pub fn renewal_message(time: u64, certificate_sha256: &[u8; 32]) -> Vec<u8> {
    let mut hex = String::with_capacity(64);
    for b in certificate_sha256 {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("signet-node-renewal/1\ntime {time}\ncertificate-sha256 {hex}\n").into_bytes()
}

/// The node's host certificates and what its sshd and clients need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCertificates {
    /// The node's inventory name.
    pub node: String,
    /// The principals every certificate names: the name, then the host of
    /// its address.
    pub principals: Vec<String>,
    /// One certificate per host key, in the order of the request.
    pub certificates: Vec<HostCertificate>,
    /// The SSH user CA, an OpenSSH public key line (sshd's `TrustedUserCAKeys`).
    pub user_ca: String,
    /// The SSH host CA, an OpenSSH public key line (clients'
    /// `@cert-authority` line in known_hosts).
    pub host_ca: String,
}

/// One host certificate, logged before it was returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCertificate {
    /// The certificate, as an OpenSSH certificate line (sshd's `HostCertificate` file).
    pub certificate: String,
    /// Its serial, decimal.
    pub serial: String,
    /// When it expires, unix seconds.
    pub not_after: u64,
    /// Its log index.
    pub log_index: u64,
}
