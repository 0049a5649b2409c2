//! Admin actions: invites, key removal, locks, roles. Each is a log entry
//! with the admin as actor, durable before the change takes effect.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use signet_log::entry::{Actor, Base64Bytes, Change, Entry, EntryKind, Sha256Hex};
use signet_policy::{Policy, PolicyDiff};
use signet_webauthn::CredentialId;

use super::{now, Service};
use crate::directory::Lock;
use crate::{Error, Result};

/// The longest an invite may live.
pub(super) const MAX_INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest lock with an end (longer ones are locks until unlocked).
const MAX_LOCK_TTL: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// A new invite.
#[derive(Debug, Clone, Serialize)]
pub struct InviteLink {
    /// Whom it is for.
    pub user: String,
    /// The link to hand over (it holds the token: treat it as a secret).
    pub link: String,
    /// When it expires, unix seconds.
    pub expires_at: u64,
    /// The invite's log index.
    pub log_index: u64,
}

/// A registered security key as `users show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialView {
    /// Credential id, base64url.
    pub id: String,
    /// The authenticator model.
    pub aaguid: String,
    /// The attestation format accepted at enrollment.
    pub attestation_format: String,
    /// COSE algorithm.
    pub algorithm: i64,
    /// The last signature counter seen.
    pub sign_count: u32,
    /// When it was enrolled, unix seconds.
    pub enrolled_at: u64,
    /// The enrollment's log index.
    pub enrolled_log_index: u64,
    /// When it last authorized an issuance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<u64>,
}

/// A lock as `users show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct LockView {
    /// Why.
    pub reason: String,
    /// Since when.
    pub since: u64,
    /// Until when; absent: until unlocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

/// A user as `users list` and `users show` print it.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// The name.
    pub name: String,
    /// Roles from the policy (empty: not in the policy).
    pub roles: Vec<String>,
    /// Whether the user is in the applied policy.
    pub in_policy: bool,
    /// The lock holding now, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<LockView>,
    /// Registered security keys.
    pub credentials: Vec<CredentialView>,
}

fn lock_view(lock: &Lock) -> LockView {
    LockView {
        reason: lock.reason.clone(),
        since: lock.since,
        until: lock.until,
    }
}

impl Service {
    fn admin_entry(kind: EntryKind, actor: Actor, subject: &str, change: Change) -> Entry {
        Entry {
            kind,
            time: now(),
            actor,
            request_hash: None,
            subject: Some(subject.to_owned()),
            principals: Vec::new(),
            roles: Vec::new(),
            certificate: None,
            change: Some(change),
        }
    }

    /// Invites a user of the policy to enroll a security key.
    pub fn invite(&self, user: &str, ttl: Duration, actor: Actor) -> Result<InviteLink> {
        if ttl.is_zero() || ttl > MAX_INVITE_TTL {
            return Err(Error::bad("--ttl", "between 1 s and 7 days"));
        }
        if self.directory().policy().user(user).is_none() {
            return Err(Error::bad(
                "NAME",
                format!("{user:?} is not a user in the applied roles; add a `kind: user` document and run `signet-ca roles apply` first"),
            ));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| Error::Store(e.to_string()))?;
        let token = URL_SAFE_NO_PAD.encode(raw);
        let expires = now() + ttl.as_secs();
        let entry = Self::admin_entry(
            EntryKind::Invite,
            actor,
            user,
            Change::Invite {
                token_sha256: Sha256Hex(Sha256::digest(token.as_bytes()).into()),
                expires,
            },
        );
        let appended = self.record(&entry)?;
        tracing::info!(
            event = "invited",
            user,
            expires,
            log_index = appended.index,
            "invite created"
        );
        Ok(InviteLink {
            user: user.to_owned(),
            link: format!("{}/enroll/{token}", self.config.serve.public_base()),
            expires_at: expires,
            log_index: appended.index,
        })
    }

    /// Every user the CA knows.
    pub fn list_users(&self) -> Vec<UserView> {
        let names = self.directory().user_names();
        names.iter().filter_map(|n| self.show_user(n)).collect()
    }

    /// One user, or `None` if the CA knows nothing of them.
    pub fn show_user(&self, user: &str) -> Option<UserView> {
        let directory = self.directory();
        let policy_user = directory.policy().user(user);
        let account = directory.account(user);
        if policy_user.is_none() && account.is_none() {
            return None;
        }
        Some(UserView {
            name: user.to_owned(),
            roles: policy_user.map(|u| u.roles.clone()).unwrap_or_default(),
            in_policy: policy_user.is_some(),
            locked: directory.lock_of(user, now()).map(lock_view),
            credentials: account
                .map(|a| {
                    a.credentials
                        .iter()
                        .map(|c| CredentialView {
                            id: c.stored.id.to_base64url(),
                            aaguid: signet_webauthn::aaguid_to_string(&c.stored.aaguid),
                            attestation_format: c.stored.attestation_format.clone(),
                            algorithm: c.stored.algorithm,
                            sign_count: c.stored.sign_count,
                            enrolled_at: c.enrolled_at,
                            enrolled_log_index: c.enrolled_index,
                            last_used: c.last_used,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Removes a security key from a user.
    pub fn remove_key(&self, user: &str, credential: &str, actor: Actor) -> Result<u64> {
        let id = CredentialId::from_base64url(credential)
            .ok_or_else(|| Error::bad("CREDENTIAL_ID", "not base64url"))?;
        let guard = self.user_lock(user);
        let _serialized = crate::store::lock(&guard);
        let enrolled = self
            .directory()
            .account(user)
            .is_some_and(|a| a.credentials.iter().any(|c| c.stored.id == id));
        if !enrolled {
            return Err(Error::bad(
                "CREDENTIAL_ID",
                format!(
                    "{user:?} has no security key with this id (see `signet-ca users show {user}`)"
                ),
            ));
        }
        let entry = Self::admin_entry(
            EntryKind::KeyRemoval,
            actor,
            user,
            Change::CredentialRemoved {
                id: Base64Bytes(id.0.clone()),
            },
        );
        let appended = self.record(&entry)?;
        tracing::info!(
            event = "key_removed",
            user,
            credential,
            log_index = appended.index,
            "security key removed"
        );
        Ok(appended.index)
    }

    /// Locks a user: no issuance until it ends or an admin unlocks.
    pub fn lock_user(
        &self,
        user: &str,
        reason: &str,
        ttl: Option<Duration>,
        actor: Actor,
    ) -> Result<u64> {
        if reason.trim().is_empty() || reason.chars().any(char::is_control) || reason.len() > 512 {
            return Err(Error::bad("--reason", "1 to 512 printable characters"));
        }
        if ttl.is_some_and(|t| t.as_secs() == 0 || t > MAX_LOCK_TTL) {
            return Err(Error::bad(
                "--ttl",
                "between 1 s and 10 years (leave it out to lock until unlocked)",
            ));
        }
        self.known_user(user)?;
        let until = ttl.map(|t| now() + t.as_secs());
        let guard = self.user_lock(user);
        let _serialized = crate::store::lock(&guard);
        self.lock_entry(user, reason, until, actor)
    }

    /// Refuses a name the CA knows nothing of (not in the roles, never
    /// enrolled, never locked): a lock on a typo would leave the user
    /// meant unlocked while the admin believes otherwise.
    fn known_user(&self, user: &str) -> Result<()> {
        if self.show_user(user).is_none() {
            return Err(Error::bad(
                "NAME",
                format!("no user {user:?}: not in the applied roles and never enrolled (see `signet-ca users list`)"),
            ));
        }
        Ok(())
    }

    pub(super) fn lock_entry(
        &self,
        user: &str,
        reason: &str,
        until: Option<u64>,
        actor: Actor,
    ) -> Result<u64> {
        let entry = Self::admin_entry(
            EntryKind::Lock,
            actor,
            user,
            Change::Lock {
                reason: reason.to_owned(),
                until,
            },
        );
        Ok(self.record(&entry)?.index)
    }

    /// Ends a user's lock (an admin's, or one after failed assertions).
    pub fn unlock_user(&self, user: &str, reason: &str, actor: Actor) -> Result<u64> {
        if reason.trim().is_empty() || reason.chars().any(char::is_control) || reason.len() > 512 {
            return Err(Error::bad("--reason", "1 to 512 printable characters"));
        }
        self.known_user(user)?;
        let guard = self.user_lock(user);
        let _serialized = crate::store::lock(&guard);
        let entry = Self::admin_entry(
            EntryKind::Unlock,
            actor,
            user,
            Change::Unlock {
                reason: reason.to_owned(),
            },
        );
        let index = self.record(&entry)?.index;
        self.failures.reset(user);
        tracing::info!(event = "unlocked", user, log_index = index, "user unlocked");
        Ok(index)
    }

    /// What applying `new` would change.
    pub fn policy_diff(&self, new: &Policy) -> PolicyDiff {
        self.directory().policy().diff(new)
    }

    /// Applies `new`: one log entry per role or user changed, roles put
    /// before the users that name them and users removed before their
    /// roles, each durable before it takes effect. Returns the diff
    /// applied and the log index of each change.
    pub fn apply_policy(&self, new: &Policy, actor: Actor) -> Result<(PolicyDiff, Vec<u64>)> {
        // The diff is against the policy in force: another apply must not
        // change it until this one's last entry is applied.
        let _serialized = crate::store::lock(&self.policy_writer);
        let diff = self.policy_diff(new);
        // The diff lists its changes in a safe order already: roles put
        // before the users naming them, users removed before their roles.
        let changes = &diff.changes;
        let mut indices = Vec::with_capacity(changes.len());
        for change in changes {
            let value = serde_json::to_value(change).map_err(|e| Error::Store(e.to_string()))?;
            let mut entry = Self::admin_entry(
                EntryKind::RoleChange,
                actor.clone(),
                change.name(),
                Change::Policy { change: value },
            );
            if change.kind() == signet_policy::Kind::Role {
                entry.roles = vec![change.name().to_owned()];
            }
            let index = self.record(&entry)?.index;
            tracing::info!(
                event = "policy_changed",
                name = change.name(),
                log_index = index,
                "role or user changed"
            );
            indices.push(index);
        }
        Ok((diff, indices))
    }
}
