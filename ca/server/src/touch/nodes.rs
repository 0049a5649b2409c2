//! Admin actions for the access proxy's world: the node inventory applied
//! from git, and locks on PIV devices. Each is a log entry with the admin
//! as actor, durable before it takes effect, like every other admin action.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use signet_api::ErrorCode;
use signet_log::entry::{Actor, Change, Entry, EntryKind, Sha256Hex};
use signet_policy::{Inventory, InventoryDiff, Node};

use super::{now, Refusal, Service};
use crate::directory::{device_subject, proxy_cert_subject, proxy_subject, Directory};
use crate::{Error, Result};

/// The longest lock with an end (longer ones are locks until unlocked).
const MAX_LOCK_TTL: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// Refuses issuance for a key on a locked PIV device, as a user lock does.
// The touch flow's refusals are all `Refusal`, whatever its size; this one
// returns the same type as the checks around it.
#[allow(clippy::result_large_err)]
pub(super) fn device_lock_refusal(
    directory: &Directory,
    serial: u32,
) -> std::result::Result<(), Refusal> {
    match directory.device_lock(serial, now()) {
        Some(lock) => Err(Refusal::new(
            ErrorCode::Locked,
            "device_locked",
            format!(
                "the YubiKey with serial {serial} is locked ({}); an administrator can unlock it",
                lock.reason
            ),
        )),
        None => Ok(()),
    }
}

fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() || reason.chars().any(char::is_control) || reason.len() > 512 {
        return Err(Error::bad("--reason", "1 to 512 printable characters"));
    }
    Ok(())
}

fn entry(kind: EntryKind, actor: Actor, subject: String, change: Change) -> Entry {
    Entry {
        kind,
        time: now(),
        actor,
        request_hash: None,
        subject: Some(subject),
        principals: Vec::new(),
        roles: Vec::new(),
        certificate: None,
        change: Some(change),
    }
}

/// A new join token for an access proxy.
#[derive(Clone, Serialize)]
pub struct ProxyJoinToken {
    /// The proxy's name.
    pub name: String,
    /// The one-time token (a secret: only its hash is logged).
    pub token: String,
    /// When it expires, unix seconds.
    pub expires_at: u64,
    /// The invite's log index.
    pub log_index: u64,
}

impl std::fmt::Debug for ProxyJoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyJoinToken")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("log_index", &self.log_index)
            .finish()
    }
}

impl Service {
    /// Invites an access proxy to join: a one-time token for `signet-proxy
    /// join`, logged by its hash with subject `proxy:<name>`.
    pub fn invite_proxy(&self, name: &str, ttl: Duration, actor: Actor) -> Result<ProxyJoinToken> {
        signet_policy::rules::check_name(name).map_err(|m| Error::bad("--name", m))?;
        if ttl.is_zero() || ttl > super::admin::MAX_INVITE_TTL {
            return Err(Error::bad("--ttl", "between 1 s and 7 days"));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| Error::Store(e.to_string()))?;
        let token = URL_SAFE_NO_PAD.encode(raw);
        let expires = now() + ttl.as_secs();
        let index = self
            .record(&entry(
                EntryKind::Invite,
                actor,
                proxy_subject(name),
                Change::Invite {
                    token_sha256: Sha256Hex(Sha256::digest(token.as_bytes()).into()),
                    expires,
                },
            ))?
            .index;
        tracing::info!(
            event = "proxy_invited",
            proxy = name,
            expires,
            log_index = index,
            "proxy join token created"
        );
        Ok(ProxyJoinToken {
            name: name.to_owned(),
            token,
            expires_at: expires,
            log_index: index,
        })
    }

    /// A proxy joins: its unspent, unexpired token buys one client
    /// certificate for its key (CN and user URI `proxy.<name>`), logged with
    /// the token's hash as `request_hash`, which spends the invite. The
    /// proxy listener then knows the certificate's serial as this proxy's.
    // `Refusal` is the touch flow's one answer type, whatever its size.
    #[allow(clippy::result_large_err)]
    pub fn join_proxy(
        &self,
        request: &signet_api::proxy::JoinRequest,
    ) -> std::result::Result<signet_api::proxy::JoinResponse, Refusal> {
        let refused = || {
            Refusal::new(
                ErrorCode::InviteInvalid,
                "join_token_invalid",
                "this join token is unknown, spent or expired; ask for a new one (signet-ca proxies invite)",
            )
        };
        // An invite made on another replica a moment ago is in the
        // database before its announcement reaches this one.
        self.fresh()?;
        let hash: [u8; 32] = Sha256::digest(request.token.as_bytes()).into();
        let name = match self.directory().proxy_invite(&hash) {
            Some(invite) if !invite.spent && now() < invite.expires => invite.name.clone(),
            _ => return Err(refused()),
        };
        // One join per token: the check above and the spend below cannot
        // interleave with another join of the same proxy.
        let guard = self.user_lock(&proxy_subject(&name));
        let _serialized = crate::store::lock(&guard);
        if self.directory().proxy_invite(&hash).is_none_or(|i| i.spent) {
            return Err(refused());
        }
        let names = self.proxy_public_names(&request.public_names)?;
        let actor = Actor::LocalAdmin {
            unix_user: format!("proxy join ({name})"),
        };
        let joined = self.issue_proxy_cert(&name, &request.public_key.0, &names, hash, actor)?;
        tracing::info!(
            event = "proxy_joined",
            proxy = %name,
            log_index = joined.log_index,
            "access proxy joined"
        );
        Ok(joined)
    }

    /// A proxy renews: the certificate it connected with (still valid, a
    /// proxy's, not renewed before) buys one for its new key, logged bound to
    /// the old one's serial.
    // `Refusal` is the touch flow's one answer type, whatever its size.
    #[allow(clippy::result_large_err)]
    pub fn renew_proxy(
        &self,
        serial: &str,
        request: &signet_api::proxy::RenewRequest,
    ) -> std::result::Result<signet_api::proxy::JoinResponse, Refusal> {
        let refused = || {
            Refusal::new(
                ErrorCode::NotAllowed,
                "renewal_refused",
                "this certificate is not a current proxy certificate, or was renewed already; join again",
            )
        };
        self.fresh()?;
        let Some(name) = self.proxy_of_serial(serial) else {
            return Err(refused());
        };
        let guard = self.user_lock(&proxy_subject(&name));
        let _serialized = crate::store::lock(&guard);
        if !self.directory().proxy_renewable(serial) {
            return Err(refused());
        }
        let names = self.proxy_public_names(&request.public_names)?;
        let hash = crate::directory::proxy_renewal_hash(serial);
        let actor = Actor::LocalAdmin {
            unix_user: format!("proxy renewal ({name})"),
        };
        let renewed = self.issue_proxy_cert(&name, &request.public_key.0, &names, hash, actor)?;
        tracing::info!(
            event = "proxy_renewed",
            proxy = %name,
            old_serial = serial,
            log_index = renewed.log_index,
            "access proxy certificate renewed"
        );
        Ok(renewed)
    }

    // `Refusal` is the touch flow's one answer type, whatever its size.
    #[allow(clippy::result_large_err)]
    fn issue_proxy_cert(
        &self,
        name: &str,
        public_key: &[u8],
        server_names: &[crate::x509::ServerName],
        hash: [u8; 32],
        actor: Actor,
    ) -> std::result::Result<signet_api::proxy::JoinResponse, Refusal> {
        let pem = der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, public_key)
            .map_err(|_| {
                Refusal::new(
                    ErrorCode::MalformedRequest,
                    "malformed",
                    "public_key: not encodable",
                )
            })?;
        let ttl = self.config.issuance.x509_client_max_ttl;
        let approved = self
            .authority
            .approve(crate::authority::RawRequest {
                kind: crate::authority::CertKind::X509Client,
                user: Some(proxy_cert_subject(name)),
                principals: Vec::new(),
                ttl: format!("{}s", ttl.as_secs()),
                public_key: pem.into_bytes(),
            })
            .map_err(|e| {
                Refusal::new(
                    ErrorCode::MalformedRequest,
                    "malformed",
                    format!("public_key: {e}"),
                )
            })?
            .bound_to(hash);
        // The server certificate first: if it fails, the invite (or the
        // renewal) is not spent and the proxy may try again.
        let server_certificate_pem = if server_names.is_empty() {
            None
        } else {
            Some(self.issue_proxy_server_cert(name, server_names, public_key, actor.clone())?)
        };
        let issued = self.authority.issue(approved, actor)?;
        let entry = Entry::from_bytes(&issued.entry).map_err(Refusal::internal)?;
        self.directory_mut()
            .apply_appended(self.store.as_ref(), issued.log_index, &entry)
            .map_err(Refusal::internal)?;
        let crate::authority::IssuedCert::X509(der_bytes) = &issued.certificate else {
            return Err(Refusal::internal("expected an X.509 certificate"));
        };
        let certificate_pem = crate::x509::der_to_pem(der_bytes)?;
        let not_after = entry.certificate.as_ref().map_or(0, |c| c.not_after);
        Ok(signet_api::proxy::JoinResponse {
            name: name.to_owned(),
            certificate_pem,
            not_after,
            log_index: issued.log_index,
            server_certificate_pem,
        })
    }

    /// The proxy a client certificate's serial (lowercase hex) belongs to.
    pub fn proxy_of_serial(&self, serial: &str) -> Option<String> {
        self.directory()
            .proxy_cert(serial)
            .filter(|c| now() < c.not_after)
            .map(|c| c.name.clone())
    }

    /// Every node in force, by name.
    pub fn list_nodes(&self) -> Vec<Node> {
        self.directory().inventory().nodes().cloned().collect()
    }

    /// What applying `new` would change.
    pub fn nodes_diff(&self, new: &Inventory) -> InventoryDiff {
        self.directory().inventory().diff(new)
    }

    /// Applies `new`: one log entry per node added, changed or removed,
    /// each durable before it takes effect. Returns the diff applied and
    /// the log index of each change.
    pub fn apply_nodes(&self, new: &Inventory, actor: Actor) -> Result<(InventoryDiff, Vec<u64>)> {
        // Serialized with `roles apply`: the diff is against the state in
        // force until this apply's last entry is applied.
        let _serialized = crate::store::lock(&self.policy_writer);
        let diff = self.nodes_diff(new);
        let mut indices = Vec::with_capacity(diff.changes.len());
        for change in &diff.changes {
            let value = serde_json::to_value(change).map_err(|e| Error::Store(e.to_string()))?;
            let entry = entry(
                EntryKind::RoleChange,
                actor.clone(),
                change.name().to_owned(),
                Change::Policy { change: value },
            );
            let index = self.record(&entry)?.index;
            tracing::info!(
                event = "node_changed",
                node = change.name(),
                log_index = index,
                "node changed"
            );
            indices.push(index);
        }
        Ok((diff, indices))
    }

    /// Locks a PIV device: no issuance for keys it holds, and every proxy
    /// closes its tunnels, until the lock ends or an admin unlocks.
    pub fn lock_device(
        &self,
        serial: u32,
        reason: &str,
        ttl: Option<Duration>,
        actor: Actor,
    ) -> Result<u64> {
        check_reason(reason)?;
        if ttl.is_some_and(|t| t.as_secs() == 0 || t > MAX_LOCK_TTL) {
            return Err(Error::bad(
                "--ttl",
                "between 1 s and 10 years (leave it out to lock until unlocked)",
            ));
        }
        let until = ttl.map(|t| now() + t.as_secs());
        let subject = device_subject(serial);
        let guard = self.user_lock(&subject);
        let _serialized = crate::store::lock(&guard);
        let index = self
            .record(&entry(
                EntryKind::Lock,
                actor,
                subject,
                Change::Lock {
                    reason: reason.to_owned(),
                    until,
                },
            ))?
            .index;
        tracing::info!(
            event = "device_locked",
            serial,
            until,
            log_index = index,
            "device locked"
        );
        Ok(index)
    }

    /// Ends a PIV device's lock. Refuses a device that is not locked: an
    /// unlock of a mistyped serial would otherwise pass unnoticed.
    pub fn unlock_device(&self, serial: u32, reason: &str, actor: Actor) -> Result<u64> {
        check_reason(reason)?;
        let subject = device_subject(serial);
        let guard = self.user_lock(&subject);
        let _serialized = crate::store::lock(&guard);
        if !self.directory().device_locks().contains_key(&serial) {
            return Err(Error::bad(
                "--device",
                format!("the device with serial {serial} is not locked"),
            ));
        }
        let index = self
            .record(&entry(
                EntryKind::Unlock,
                actor,
                subject,
                Change::Unlock {
                    reason: reason.to_owned(),
                },
            ))?
            .index;
        tracing::info!(
            event = "device_unlocked",
            serial,
            log_index = index,
            "device unlocked"
        );
        Ok(index)
    }
}
