//! Nodes join and renew their host certificates.
//!
//! `signet-ca nodes invite NAME` logs an invite (subject `node:<name>`, the
//! token's SHA-256) and records the hash in the store; the token itself is
//! printed once and never logged. `POST /v1/nodes/join` spends it (once, in
//! the store, atomically across replicas) for one OpenSSH host certificate
//! per host key, signed by the HSM host CA after its entry is durable.
//! `POST /v1/nodes/renew` renews certificates this CA issued, still valid,
//! for a node still in the inventory, when the node signs the request with
//! each certified host key.

use std::net::IpAddr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use signet_api::nodes::{
    renewal_message, HostCertificate, NodeCertificates, NodeJoinRequest, NodeRenewRequest,
    MAX_HOST_KEYS, RENEWAL_NAMESPACE, RENEWAL_WINDOW_SECS,
};
use signet_api::ErrorCode;
use signet_log::entry::{Actor, Change, Entry, EntryKind, Sha256Hex};
use signet_policy::Node;

use super::{now, Refusal, Service};
use crate::authority::{ApprovedRequest, CertKind, IssuedCert, RawRequest};
use crate::directory::node_subject;
use crate::{Error, Result};

/// The longest-lived node join token.
const MAX_NODE_INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A new join token for a node.
#[derive(Clone, Serialize)]
pub struct NodeJoinToken {
    /// The node's inventory name.
    pub node: String,
    /// The one-time token (a secret: only its hash is logged and stored).
    pub token: String,
    /// When it expires, unix seconds.
    pub expires_at: u64,
    /// The invite's log index.
    pub log_index: u64,
}

impl std::fmt::Debug for NodeJoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeJoinToken")
            .field("node", &self.node)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("log_index", &self.log_index)
            .finish()
    }
}

fn refused(code: ErrorCode, reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::new(code, reason, message)
}

fn token_refused() -> Refusal {
    refused(
        ErrorCode::InviteInvalid,
        "join_token_invalid",
        "this join token is unknown, spent or expired; ask for a new one (signet-ca nodes invite)",
    )
}

fn node_unknown(name: &str) -> Refusal {
    refused(
        ErrorCode::NotAllowed,
        "node_unknown",
        format!("the node {name:?} is not in the CA's inventory (removed?); ask an administrator"),
    )
}

/// The principals of a node's host certificates: its name, then the host
/// of its address when that is a name sshd and clients can match (an IPv6
/// literal is not).
pub fn host_principals(node: &Node) -> Vec<String> {
    let mut principals = vec![node.name.clone()];
    if let Some((host, _)) = node.host_port() {
        if host != node.name && crate::request::checked_name(host, "address").is_ok() {
            principals.push(host.to_owned());
        }
    }
    principals
}

impl Service {
    /// Invites a node in the inventory to join: a one-time token for
    /// `signet-node join`, logged by its hash with subject `node:<name>`
    /// and recorded in the store, where a join spends it.
    pub fn invite_node(&self, name: &str, ttl: Duration, actor: Actor) -> Result<NodeJoinToken> {
        signet_policy::rules::check_name(name).map_err(|m| Error::bad("NAME", m))?;
        if ttl.is_zero() || ttl > MAX_NODE_INVITE_TTL {
            return Err(Error::bad("--ttl", "between 1 s and 7 days"));
        }
        if self.directory().inventory().node(name).is_none() {
            return Err(Error::bad(
                "NAME",
                format!("no node {name:?} in the inventory (signet-ca nodes list; add it with nodes apply)"),
            ));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| Error::Store(e.to_string()))?;
        let token = URL_SAFE_NO_PAD.encode(raw);
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let expires = now() + ttl.as_secs();
        let subject = node_subject(name);
        let index = self
            .record(&Entry {
                kind: EntryKind::Invite,
                time: now(),
                actor,
                request_hash: None,
                subject: Some(subject.clone()),
                principals: Vec::new(),
                roles: Vec::new(),
                certificate: None,
                change: Some(Change::Invite {
                    token_sha256: Sha256Hex(hash),
                    expires,
                }),
            })?
            .index;
        // Logged first: a token the store cannot record is never printed,
        // and its invite in the log can never be spent.
        self.store.put_join_token(&hash, &subject, expires)?;
        tracing::info!(
            event = "node_invited",
            node = name,
            expires,
            log_index = index,
            "node join token created"
        );
        Ok(NodeJoinToken {
            node: name.to_owned(),
            token,
            expires_at: expires,
            log_index: index,
        })
    }

    /// A node joins: its unspent, unexpired token (logged for a node still
    /// in the inventory) buys one host certificate per host key, each
    /// logged with the token's hash as `request_hash` before it is signed.
    // `Refusal` is the touch flow's one answer type, whatever its size.
    #[allow(clippy::result_large_err)]
    pub fn join_node(
        &self,
        request: &NodeJoinRequest,
        source: Option<IpAddr>,
    ) -> std::result::Result<NodeCertificates, Refusal> {
        let hash: [u8; 32] = Sha256::digest(request.token.as_bytes()).into();
        let limit_key = format!("node-join:{}", hex::encode(&hash[..8]));
        self.rate_limit("node_join", &limit_key, source)?;
        self.join_node_checked(request, hash)
            .map_err(|r| self.refuse("node_join", "node-join", r))
    }

    #[allow(clippy::result_large_err)]
    fn join_node_checked(
        &self,
        request: &NodeJoinRequest,
        hash: [u8; 32],
    ) -> std::result::Result<NodeCertificates, Refusal> {
        check_count(request.host_keys.len(), "host_keys")?;
        // An invite made on another replica a moment ago is in the
        // database before its announcement reaches this one.
        self.fresh()?;
        let name = match self.directory().node_invite(&hash) {
            Some(invite) if !invite.spent && now() < invite.expires => invite.name.clone(),
            _ => return Err(token_refused()),
        };
        let guard = self.user_lock(&node_subject(&name));
        let _serialized = crate::store::lock(&guard);
        let node = self
            .directory()
            .inventory()
            .node(&name)
            .cloned()
            .ok_or_else(|| node_unknown(&name))?;
        // Every key is checked before the token is spent: a typo in a key
        // file does not burn the invite.
        let approved = self.approve_host_keys(&node, &request.host_keys, |_| hash)?;
        if !self
            .store
            .spend_join_token(&hash, &node_subject(&name), now())
            .map_err(Refusal::from)?
        {
            return Err(token_refused());
        }
        let actor = Actor::LocalAdmin {
            unix_user: format!("node join ({name})"),
        };
        let answer = self.issue_host_certs(&node, approved, actor)?;
        tracing::info!(
            event = "node_joined",
            node = %name,
            certificates = answer.certificates.len(),
            log_index = answer.certificates.first().map(|c| c.log_index),
            "node joined"
        );
        Ok(answer)
    }

    /// A node renews: each certificate this CA issued it, still valid,
    /// comes with a signature by its host key over the renewal message
    /// within a few minutes of the CA's clock; the node must still be in
    /// the inventory. The new certificates certify the same keys, with the
    /// node's current principals.
    // `Refusal` is the touch flow's one answer type, whatever its size.
    #[allow(clippy::result_large_err)]
    pub fn renew_node(
        &self,
        request: &NodeRenewRequest,
        source: Option<IpAddr>,
    ) -> std::result::Result<NodeCertificates, Refusal> {
        // Limited per certificate presented (a fleet renewing at once is
        // many keys) and per source address.
        let first = request
            .renewals
            .first()
            .map(|r| Sha256::digest(r.certificate.as_bytes()))
            .unwrap_or_default();
        let limit_key = format!("node-renew:{}", hex::encode(&first[..8]));
        self.rate_limit("node_renew", &limit_key, source)?;
        self.renew_node_checked(request)
            .map_err(|r| self.refuse("node_renew", "node-renew", r))
    }

    #[allow(clippy::result_large_err)]
    fn renew_node_checked(
        &self,
        request: &NodeRenewRequest,
    ) -> std::result::Result<NodeCertificates, Refusal> {
        check_count(request.renewals.len(), "renewals")?;
        // A node removed from the inventory on another replica a moment
        // ago renews no more.
        self.fresh()?;
        let clock = now();
        if request.time.abs_diff(clock) > RENEWAL_WINDOW_SECS {
            return Err(refused(
                ErrorCode::InvalidRequest,
                "renewal_stale",
                format!(
                    "time: the renewal was signed at {}, the CA's clock says {clock}; \
                     check the node's clock (at most {RENEWAL_WINDOW_SECS} s apart)",
                    request.time
                ),
            ));
        }
        let host_ca = self
            .authority
            .ssh_host_ca_line()
            .and_then(|line| {
                ssh_key::PublicKey::from_openssh(&line)
                    .map_err(|e| Error::Certificate(e.to_string()))
            })
            .map_err(Refusal::internal)?
            .fingerprint(ssh_key::HashAlg::Sha256);
        let mut name: Option<String> = None;
        let mut keys = Vec::with_capacity(request.renewals.len());
        let mut hashes = Vec::with_capacity(request.renewals.len());
        for (i, renewal) in request.renewals.iter().enumerate() {
            let cert =
                ssh_key::Certificate::from_openssh(renewal.certificate.trim()).map_err(|_| {
                    refused(
                        ErrorCode::MalformedRequest,
                        "malformed",
                        format!("renewals[{i}].certificate: not an OpenSSH certificate line"),
                    )
                })?;
            let current = cert.cert_type() == ssh_key::certificate::CertType::Host
                && cert.validate_at(clock, [&host_ca]).is_ok();
            if !current {
                return Err(refused(
                    ErrorCode::NotAllowed,
                    "certificate_invalid",
                    format!(
                        "renewals[{i}].certificate: not a valid host certificate of this CA \
                         (expired, another CA's, or a user certificate); join again with a new token"
                    ),
                ));
            }
            let this = cert.valid_principals().first().cloned().unwrap_or_default();
            if name.as_ref().is_some_and(|n| *n != this) {
                return Err(refused(
                    ErrorCode::InvalidRequest,
                    "invalid_request",
                    "renewals: the certificates name different nodes",
                ));
            }
            let blob = cert.to_bytes().map_err(Refusal::internal)?;
            let message = renewal_message(request.time, &Sha256::digest(&blob).into());
            let signature = ssh_key::SshSig::from_pem(renewal.signature.trim()).map_err(|_| {
                refused(
                    ErrorCode::MalformedRequest,
                    "malformed",
                    format!("renewals[{i}].signature: not an armored SSH signature"),
                )
            })?;
            let key = ssh_key::PublicKey::new(cert.public_key().clone(), "");
            if key.verify(RENEWAL_NAMESPACE, &message, &signature).is_err() {
                return Err(refused(
                    ErrorCode::NotAllowed,
                    "possession_not_proved",
                    format!(
                        "renewals[{i}].signature: not a signature by the certified host key over this renewal"
                    ),
                ));
            }
            if keys.contains(&key) {
                return Err(refused(
                    ErrorCode::InvalidRequest,
                    "invalid_request",
                    "renewals: one host key given twice",
                ));
            }
            name = Some(this);
            keys.push(key);
            hashes.push(Sha256::digest(&message).into());
        }
        let name = name.unwrap_or_default();
        let guard = self.user_lock(&node_subject(&name));
        let _serialized = crate::store::lock(&guard);
        let node = self
            .directory()
            .inventory()
            .node(&name)
            .cloned()
            .ok_or_else(|| node_unknown(&name))?;
        let lines: Vec<String> = keys
            .iter()
            .map(|k| k.to_openssh().map_err(Refusal::internal))
            .collect::<std::result::Result<_, _>>()?;
        let approved = self.approve_host_keys(&node, &lines, |i| hashes[i])?;
        let actor = Actor::LocalAdmin {
            unix_user: format!("node renewal ({name})"),
        };
        let answer = self.issue_host_certs(&node, approved, actor)?;
        tracing::info!(
            event = "node_renewed",
            node = %name,
            certificates = answer.certificates.len(),
            log_index = answer.certificates.first().map(|c| c.log_index),
            "node host certificates renewed"
        );
        Ok(answer)
    }

    /// One approved host certificate request per key, for the node's
    /// principals and the configured validity, bound to `bind(i)`.
    #[allow(clippy::result_large_err)]
    fn approve_host_keys(
        &self,
        node: &Node,
        keys: &[String],
        bind: impl Fn(usize) -> [u8; 32],
    ) -> std::result::Result<Vec<ApprovedRequest>, Refusal> {
        let issuance = &self.config.issuance;
        let ttl = issuance.node_host_ttl.min(issuance.ssh_host_max_ttl);
        let principals = host_principals(node);
        let mut seen = Vec::with_capacity(keys.len());
        let mut approved = Vec::with_capacity(keys.len());
        for (i, line) in keys.iter().enumerate() {
            let bad = |why: String| {
                refused(
                    ErrorCode::InvalidRequest,
                    "host_key_invalid",
                    format!("host_keys[{i}]: {why}"),
                )
            };
            let key = ssh_key::PublicKey::from_openssh(line.trim())
                .map_err(|_| bad("not an OpenSSH public key line".into()))?;
            if matches!(
                key.algorithm(),
                ssh_key::Algorithm::SkEcdsaSha2NistP256 | ssh_key::Algorithm::SkEd25519
            ) {
                return Err(bad("a security-key (sk-) key cannot be a host key".into()));
            }
            if seen.contains(key.key_data()) {
                return Err(bad("given twice".into()));
            }
            seen.push(key.key_data().clone());
            let request = self
                .authority
                .approve(RawRequest {
                    kind: CertKind::SshHost,
                    user: None,
                    principals: principals.clone(),
                    ttl: format!("{}s", ttl.as_secs()),
                    public_key: line.trim().as_bytes().to_vec(),
                })
                .map_err(|e| bad(e.to_string()))?
                .bound_to(bind(i));
            approved.push(request);
        }
        Ok(approved)
    }

    /// Issues the approved host certificates (logged first, in one commit)
    /// and applies their entries to the directory in log order.
    #[allow(clippy::result_large_err)]
    fn issue_host_certs(
        &self,
        node: &Node,
        approved: Vec<ApprovedRequest>,
        actor: Actor,
    ) -> std::result::Result<NodeCertificates, Refusal> {
        let issued = self.authority.issue_all(approved, actor)?;
        let last = issued.iter().map(|i| i.log_index).max().unwrap_or(0);
        {
            let mut directory = self.directory_mut();
            directory
                .catch_up(self.store.as_ref(), last + 1)
                .map_err(Refusal::internal)?;
            self.changes.send_replace(directory.applied());
        }
        let mut certificates = Vec::with_capacity(issued.len());
        for cert in &issued {
            let IssuedCert::Ssh(ssh) = &cert.certificate else {
                return Err(Refusal::internal("expected an OpenSSH certificate"));
            };
            self.observer.issued("ssh-host");
            certificates.push(HostCertificate {
                certificate: ssh.to_openssh().map_err(Refusal::internal)?,
                serial: cert.serial.clone(),
                not_after: ssh.valid_before(),
                log_index: cert.log_index,
            });
        }
        Ok(NodeCertificates {
            node: node.name.clone(),
            principals: host_principals(node),
            certificates,
            user_ca: self.authority.ssh_user_ca_line()?,
            host_ca: self.authority.ssh_host_ca_line()?,
        })
    }
}

#[allow(clippy::result_large_err)]
fn check_count(n: usize, field: &str) -> std::result::Result<(), Refusal> {
    if n == 0 || n > MAX_HOST_KEYS {
        return Err(refused(
            ErrorCode::InvalidRequest,
            "invalid_request",
            format!("{field}: 1 to {MAX_HOST_KEYS} entries"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, address: &str) -> Node {
        Node {
            name: name.into(),
            address: address.into(),
            labels: Default::default(),
        }
    }

    #[test]
    fn principals_are_the_name_and_the_address_host() {
        assert_eq!(
            host_principals(&node("web-1", "web-1.internal:22")),
            ["web-1", "web-1.internal"]
        );
        assert_eq!(
            host_principals(&node("web-1", "127.0.0.1:2222")),
            ["web-1", "127.0.0.1"]
        );
        assert_eq!(host_principals(&node("web-1", "web-1:22")), ["web-1"]);
        // An IPv6 literal cannot be a principal name: the name alone.
        assert_eq!(host_principals(&node("web-1", "[::1]:22")), ["web-1"]);
    }
}
