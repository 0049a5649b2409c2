//! The CA's users, security keys, roles, nodes, invites and locks (of users
//! and of PIV devices), rebuilt from the log.
//!
//! Every admin action is a log entry whose `change` records it in full, and
//! every touch issuance records the credential and its signature counter.
//! So this state is a function of the log: [`Directory::replay`] reads it
//! from the verified store at start, and the daemon applies each new entry
//! with the same [`Directory::apply`] only after the store said it is
//! durable. Nothing here is written anywhere else, so nothing can disagree
//! with what the auditor sees.

use std::collections::{BTreeMap, HashMap};

use signet_log::entry::{Actor, Change, Entry, EntryKind};
use signet_policy::{Inventory, NodeChange, Policy};
use signet_webauthn::{CredentialId, StoredCredential};

use crate::store::{LogRead, LogStore};
use crate::{Error, Result};

/// A registered security key.
#[derive(Debug, Clone)]
pub struct Credential {
    /// What verifies its assertions, with the last accepted counter.
    pub stored: StoredCredential,
    /// When it was enrolled, unix seconds.
    pub enrolled_at: u64,
    /// The enrollment's log index.
    pub enrolled_index: u64,
    /// When it last authorized an issuance, unix seconds.
    pub last_used: Option<u64>,
}

/// The subject of a lock entry on a PIV device rather than a user:
/// `device:` and the device's serial in decimal. User names cannot hold a
/// `:`, so the two never collide.
pub const DEVICE_SUBJECT_PREFIX: &str = "device:";

/// The subject a device lock or unlock entry names.
pub fn device_subject(serial: u32) -> String {
    format!("{DEVICE_SUBJECT_PREFIX}{serial}")
}

/// The device serial a lock subject names, if it names one (canonical
/// decimal only, so one device has one spelling in the log).
pub fn device_of_subject(subject: &str) -> Option<u32> {
    let digits = subject.strip_prefix(DEVICE_SUBJECT_PREFIX)?;
    let serial: u32 = digits.parse().ok()?;
    (serial.to_string() == digits).then_some(serial)
}

/// An admin lock on a user or a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Why.
    pub reason: String,
    /// Since when, unix seconds.
    pub since: u64,
    /// Until when (unix seconds), or until unlocked.
    pub until: Option<u64>,
}

impl Lock {
    /// Whether the lock holds at `now`.
    pub fn holds(&self, now: u64) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// What the CA knows about one user beyond the policy.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// Registered security keys, oldest first.
    pub credentials: Vec<Credential>,
    /// The current lock, if any.
    pub lock: Option<Lock>,
}

/// A pending or spent invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Whom it is for.
    pub user: String,
    /// When it expires, unix seconds.
    pub expires: u64,
    /// Whether an enrollment spent it.
    pub spent: bool,
}

/// The subject of an invite for an access proxy rather than a user:
/// `proxy:` and the proxy's name (a name by the roles' rules). User names
/// cannot hold a `:`, so an enrollment can never spend it.
pub const PROXY_SUBJECT_PREFIX: &str = "proxy:";

/// The subject a proxy invite names.
pub fn proxy_subject(name: &str) -> String {
    format!("{PROXY_SUBJECT_PREFIX}{name}")
}

/// The proxy a subject names, if it names a valid one.
pub fn proxy_of_subject(subject: &str) -> Option<&str> {
    subject
        .strip_prefix(PROXY_SUBJECT_PREFIX)
        .filter(|n| signet_policy::rules::check_name(n).is_ok())
}

/// A pending or spent invite for an access proxy to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInvite {
    /// The proxy's name.
    pub name: String,
    /// When it expires, unix seconds.
    pub expires: u64,
    /// Whether a join spent it.
    pub spent: bool,
}

/// The subject of an invite for a node to join (`signet-ca nodes
/// invite`): `node:` and the node's inventory name.
pub const NODE_SUBJECT_PREFIX: &str = "node:";

/// The subject a node invite names.
pub fn node_subject(name: &str) -> String {
    format!("{NODE_SUBJECT_PREFIX}{name}")
}

/// The node a subject names, if it names a valid one.
pub fn node_of_subject(subject: &str) -> Option<&str> {
    subject
        .strip_prefix(NODE_SUBJECT_PREFIX)
        .filter(|n| signet_policy::rules::check_name(n).is_ok())
}

/// A pending or spent invite for a node to join: its token buys the
/// node's first host certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInvite {
    /// The node's inventory name.
    pub name: String,
    /// When it expires, unix seconds.
    pub expires: u64,
    /// Whether a join spent it.
    pub spent: bool,
}

/// The common name (and user URI) of an access proxy's certificate:
/// `proxy.` and its name.
pub fn proxy_cert_subject(name: &str) -> String {
    format!("proxy.{name}")
}

/// What a proxy's renewal is bound to: the SHA-256 of
/// `signet-proxy-renewal:<serial>` of the certificate it renews. Recorded as
/// the new certificate's `request_hash`, so each certificate is renewed
/// once and the log chains every proxy certificate back to its invite.
pub fn proxy_renewal_hash(serial: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(format!("signet-proxy-renewal:{serial}").as_bytes()).into()
}

/// An access proxy's certificate, issued when it joined or renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyCert {
    /// The proxy's name.
    pub name: String,
    /// When it expires, unix seconds.
    pub not_after: u64,
}

/// The state, as of the last entry applied.
#[derive(Debug, Default)]
pub struct Directory {
    policy: Policy,
    inventory: Inventory,
    device_locks: BTreeMap<u32, Lock>,
    accounts: BTreeMap<String, Account>,
    invites: HashMap<[u8; 32], Invite>,
    proxy_invites: HashMap<[u8; 32], ProxyInvite>,
    node_invites: HashMap<[u8; 32], NodeInvite>,
    /// Proxy certificates by serial (lowercase hex, as the log writes it).
    proxy_certs: BTreeMap<String, ProxyCert>,
    /// Renewals not yet made, by [`proxy_renewal_hash`], with the serial
    /// of the certificate each would renew.
    proxy_renewals: HashMap<[u8; 32], String>,
    applied: u64,
}

fn inconsistent(index: u64, what: impl std::fmt::Display) -> Error {
    Error::Store(format!(
        "log entry {index} cannot be applied to the CA's state: {what}"
    ))
}

impl Directory {
    /// Reads the whole verified log and applies every entry in order.
    pub fn replay(store: &dyn LogStore) -> Result<Self> {
        let mut directory = Self::default();
        directory.catch_up(store, store.latest_checkpoint().size)?;
        Ok(directory)
    }

    /// Applies, in log order, every entry from the first not yet applied up
    /// to `size` (exclusive), read back from the verified log: how entries
    /// another replica appended reach this one. Entries already applied are
    /// never applied again.
    pub fn catch_up(&mut self, store: &dyn LogStore, size: u64) -> Result<()> {
        if self.applied >= size {
            return Ok(());
        }
        let reader = store.reader()?;
        self.catch_up_from(reader.as_ref(), size)
    }

    /// [`Directory::catch_up`] from one view of the log. An entry missing
    /// below `size` (a gap) or one that cannot be applied stops it there:
    /// the entries before it stay applied, nothing after it is.
    pub(crate) fn catch_up_from(&mut self, reader: &dyn LogRead, size: u64) -> Result<()> {
        for index in self.applied..size {
            let bytes = reader
                .entry(index)?
                .ok_or_else(|| inconsistent(index, "missing"))?;
            let entry = Entry::from_bytes(&bytes)
                .map_err(|e| inconsistent(index, format!("unreadable ({e})")))?;
            self.apply(index, &entry)?;
        }
        Ok(())
    }

    /// Applies an entry this CA just appended at `index`: first every entry
    /// before it not applied yet (other replicas', and this one's
    /// issuances), then it — unless the catching up applied it already.
    pub fn apply_appended(
        &mut self,
        store: &dyn LogStore,
        index: u64,
        entry: &Entry,
    ) -> Result<()> {
        self.catch_up(store, index)?;
        if self.applied == index {
            self.apply(index, entry)?;
        }
        Ok(())
    }

    /// How many entries have been applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies one durable entry. Fails, changing nothing, on an entry that
    /// contradicts the state (an enrollment with an unknown invite, a
    /// credential registered twice): the daemon then refuses to serve
    /// rather than act on a state the log does not explain.
    pub fn apply(&mut self, index: u64, entry: &Entry) -> Result<()> {
        // In log order, each entry once: applying one twice, or skipping
        // one, would leave a state the log does not explain.
        if index != self.applied {
            return Err(inconsistent(
                index,
                format!("out of order (the next entry to apply is {})", self.applied),
            ));
        }
        match (&entry.kind, &entry.change) {
            (
                EntryKind::Invite,
                Some(Change::Invite {
                    token_sha256,
                    expires,
                }),
            ) if subject(index, entry)?.starts_with(PROXY_SUBJECT_PREFIX) => {
                let name = proxy_of_subject(subject(index, entry)?).ok_or_else(|| {
                    inconsistent(index, "a proxy invite whose subject is not proxy:<name>")
                })?;
                if self.token_known(&token_sha256.0) {
                    return Err(inconsistent(index, "an invite token used twice"));
                }
                self.proxy_invites.insert(
                    token_sha256.0,
                    ProxyInvite {
                        name: name.to_owned(),
                        expires: *expires,
                        spent: false,
                    },
                );
            }
            (
                EntryKind::Invite,
                Some(Change::Invite {
                    token_sha256,
                    expires,
                }),
            ) if subject(index, entry)?.starts_with(NODE_SUBJECT_PREFIX) => {
                let name = node_of_subject(subject(index, entry)?).ok_or_else(|| {
                    inconsistent(index, "a node invite whose subject is not node:<name>")
                })?;
                if self.token_known(&token_sha256.0) {
                    return Err(inconsistent(index, "an invite token used twice"));
                }
                self.node_invites.insert(
                    token_sha256.0,
                    NodeInvite {
                        name: name.to_owned(),
                        expires: *expires,
                        spent: false,
                    },
                );
            }
            (EntryKind::SshHostCert, None)
                if entry
                    .request_hash
                    .as_ref()
                    .is_some_and(|h| self.node_invites.contains_key(&h.0)) =>
            {
                // A join: the node's first host certificates (one per host
                // key, all bound to the one token) spend its invite.
                let hash = entry.request_hash.as_ref().map(|h| h.0).unwrap_or_default();
                if let Some(invite) = self.node_invites.get_mut(&hash) {
                    if entry.principals.first() != Some(&invite.name) {
                        return Err(inconsistent(index, "a host certificate for another node"));
                    }
                    invite.spent = true;
                }
            }
            (
                EntryKind::Invite,
                Some(Change::Invite {
                    token_sha256,
                    expires,
                }),
            ) => {
                let user = subject(index, entry)?;
                if self.token_known(&token_sha256.0) {
                    return Err(inconsistent(index, "an invite token used twice"));
                }
                self.invites.insert(
                    token_sha256.0,
                    Invite {
                        user: user.to_owned(),
                        expires: *expires,
                        spent: false,
                    },
                );
            }
            (
                EntryKind::Enrollment,
                Some(Change::Credential {
                    id,
                    public_key_cose,
                    algorithm,
                    aaguid,
                    attestation_format,
                    sign_count,
                    invite_sha256,
                }),
            ) => {
                let user = subject(index, entry)?;
                if !self
                    .invites
                    .get(&invite_sha256.0)
                    .is_some_and(|i| !i.spent && i.user == user)
                {
                    return Err(inconsistent(index, "an enrollment without its invite"));
                }
                let id = CredentialId(id.0.clone());
                if self.owner_of(&id).is_some() {
                    return Err(inconsistent(index, "a credential registered twice"));
                }
                let aaguid: [u8; 16] = aaguid
                    .0
                    .as_slice()
                    .try_into()
                    .map_err(|_| inconsistent(index, "an AAGUID that is not 16 bytes"))?;
                let credential = Credential {
                    stored: StoredCredential {
                        id,
                        public_key_cose: public_key_cose.0.clone(),
                        algorithm: *algorithm,
                        sign_count: u32::try_from(*sign_count)
                            .map_err(|_| inconsistent(index, "a counter beyond 32 bits"))?,
                        aaguid,
                        attestation_format: attestation_format.clone(),
                        user_verified_at_registration: false,
                    },
                    enrolled_at: entry.time,
                    enrolled_index: index,
                    last_used: None,
                };
                if let Some(invite) = self.invites.get_mut(&invite_sha256.0) {
                    invite.spent = true;
                }
                self.accounts
                    .entry(user.to_owned())
                    .or_default()
                    .credentials
                    .push(credential);
            }
            (EntryKind::KeyRemoval, Some(Change::CredentialRemoved { id })) => {
                let user = subject(index, entry)?;
                let account = self
                    .accounts
                    .get_mut(user)
                    .ok_or_else(|| inconsistent(index, "a key removed from a user without keys"))?;
                let before = account.credentials.len();
                account.credentials.retain(|c| c.stored.id.0 != id.0);
                if account.credentials.len() == before {
                    return Err(inconsistent(index, "a key removed that was not enrolled"));
                }
            }
            (EntryKind::RoleChange, Some(Change::Policy { change })) if is_node_change(change) => {
                let change: NodeChange = serde_json::from_value(change.clone()).map_err(|e| {
                    inconsistent(index, format!("a node change that does not parse: {e}"))
                })?;
                self.inventory.apply(&change);
            }
            (EntryKind::RoleChange, Some(Change::Policy { change })) => {
                let change: signet_policy::Change = serde_json::from_value(change.clone())
                    .map_err(|e| {
                        inconsistent(index, format!("a policy change that does not parse: {e}"))
                    })?;
                self.policy.apply(&change);
            }
            (EntryKind::Lock, Some(Change::Lock { reason, until }))
                if subject(index, entry)?.starts_with(DEVICE_SUBJECT_PREFIX) =>
            {
                let serial = device_serial(index, entry)?;
                self.device_locks.insert(
                    serial,
                    Lock {
                        reason: reason.clone(),
                        since: entry.time,
                        until: *until,
                    },
                );
            }
            (EntryKind::Unlock, Some(Change::Unlock { .. }))
                if subject(index, entry)?.starts_with(DEVICE_SUBJECT_PREFIX) =>
            {
                let serial = device_serial(index, entry)?;
                self.device_locks.remove(&serial);
            }
            (EntryKind::Lock, Some(Change::Lock { reason, until })) => {
                let user = subject(index, entry)?;
                self.accounts.entry(user.to_owned()).or_default().lock = Some(Lock {
                    reason: reason.clone(),
                    since: entry.time,
                    until: *until,
                });
            }
            (EntryKind::Unlock, Some(Change::Unlock { .. })) => {
                let user = subject(index, entry)?;
                if let Some(account) = self.accounts.get_mut(user) {
                    account.lock = None;
                }
            }
            (
                EntryKind::Enrollment
                | EntryKind::KeyRemoval
                | EntryKind::RoleChange
                | EntryKind::Lock
                | EntryKind::Unlock,
                _,
            ) => {
                return Err(inconsistent(
                    index,
                    "an admin action that does not record what it changed",
                ))
            }
            (EntryKind::X509Cert, None)
                if entry
                    .request_hash
                    .as_ref()
                    .is_some_and(|h| self.proxy_invites.contains_key(&h.0)) =>
            {
                let hash = entry.request_hash.as_ref().map(|h| h.0).unwrap_or_default();
                let certificate = entry.certificate.as_ref().ok_or_else(|| {
                    inconsistent(index, "a proxy certificate entry without its certificate")
                })?;
                let Some(invite) = self.proxy_invites.get_mut(&hash) else {
                    return Err(inconsistent(
                        index,
                        "a proxy certificate without its invite",
                    ));
                };
                if invite.spent
                    || entry.subject.as_deref() != Some(proxy_cert_subject(&invite.name).as_str())
                {
                    return Err(inconsistent(
                        index,
                        "a proxy certificate for a spent invite or another proxy",
                    ));
                }
                invite.spent = true;
                let name = invite.name.clone();
                self.add_proxy_cert(&certificate.serial, name, certificate.not_after);
            }
            (EntryKind::X509Cert, None)
                if entry
                    .request_hash
                    .as_ref()
                    .is_some_and(|h| self.proxy_renewals.contains_key(&h.0)) =>
            {
                let hash = entry.request_hash.as_ref().map(|h| h.0).unwrap_or_default();
                let certificate = entry.certificate.as_ref().ok_or_else(|| {
                    inconsistent(index, "a proxy certificate entry without its certificate")
                })?;
                let old = self
                    .proxy_renewals
                    .get(&hash)
                    .and_then(|serial| self.proxy_certs.get(serial))
                    .ok_or_else(|| {
                        inconsistent(index, "a renewal of an unknown proxy certificate")
                    })?;
                if entry.subject.as_deref() != Some(proxy_cert_subject(&old.name).as_str()) {
                    return Err(inconsistent(index, "a renewal for another proxy"));
                }
                let name = old.name.clone();
                self.proxy_renewals.remove(&hash);
                self.add_proxy_cert(&certificate.serial, name, certificate.not_after);
            }
            (EntryKind::SshUserCert | EntryKind::X509Cert, None) => {
                if let Actor::User {
                    name,
                    webauthn_credential_id: Some(id),
                    webauthn_sign_count: Some(count),
                    ..
                } = &entry.actor
                {
                    let count = u32::try_from(*count)
                        .map_err(|_| inconsistent(index, "a counter beyond 32 bits"))?;
                    if !self.note_use(name, &CredentialId(id.0.clone()), count, entry.time) {
                        return Err(inconsistent(
                            index,
                            "an issuance by a credential that is not enrolled",
                        ));
                    }
                }
            }
            _ => {}
        }
        self.applied = index + 1;
        Ok(())
    }

    /// Records that a credential authorized an issuance with signature
    /// counter `count` (the counter never goes back here, whatever the
    /// order two issuances are applied in). False if it is not enrolled.
    pub fn note_use(&mut self, user: &str, id: &CredentialId, count: u32, time: u64) -> bool {
        let Some(credential) = self
            .accounts
            .get_mut(user)
            .and_then(|a| a.credentials.iter_mut().find(|c| c.stored.id == *id))
        else {
            return false;
        };
        credential.stored.sign_count = credential.stored.sign_count.max(count);
        credential.last_used = Some(credential.last_used.map_or(time, |t| t.max(time)));
        true
    }

    /// The roles and users in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A user's keys and lock (`None`: nothing beyond the policy).
    pub fn account(&self, user: &str) -> Option<&Account> {
        self.accounts.get(user)
    }

    /// Every user the CA knows: in the policy, or with keys or a lock.
    pub fn user_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.policy.users().map(|u| u.name.clone()).collect();
        names.extend(self.accounts.keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    /// The user a credential belongs to.
    pub fn owner_of(&self, id: &CredentialId) -> Option<&str> {
        self.accounts.iter().find_map(|(name, account)| {
            account
                .credentials
                .iter()
                .any(|c| c.stored.id == *id)
                .then_some(name.as_str())
        })
    }

    /// An invite by the SHA-256 of its token.
    pub fn invite(&self, token_sha256: &[u8; 32]) -> Option<&Invite> {
        self.invites.get(token_sha256)
    }

    /// The lock holding on `user` at `now`, if any.
    pub fn lock_of(&self, user: &str, now: u64) -> Option<&Lock> {
        self.accounts
            .get(user)
            .and_then(|a| a.lock.as_ref())
            .filter(|l| l.holds(now))
    }

    fn token_known(&self, token_sha256: &[u8; 32]) -> bool {
        self.invites.contains_key(token_sha256)
            || self.proxy_invites.contains_key(token_sha256)
            || self.node_invites.contains_key(token_sha256)
    }

    /// A node invite by the SHA-256 of its token.
    pub fn node_invite(&self, token_sha256: &[u8; 32]) -> Option<&NodeInvite> {
        self.node_invites.get(token_sha256)
    }

    /// A proxy invite by the SHA-256 of its token.
    pub fn proxy_invite(&self, token_sha256: &[u8; 32]) -> Option<&ProxyInvite> {
        self.proxy_invites.get(token_sha256)
    }

    fn add_proxy_cert(&mut self, serial: &str, name: String, not_after: u64) {
        self.proxy_renewals
            .insert(proxy_renewal_hash(serial), serial.to_owned());
        self.proxy_certs
            .insert(serial.to_owned(), ProxyCert { name, not_after });
    }

    /// Whether the proxy certificate with this serial may still be renewed
    /// (each is renewed once).
    pub fn proxy_renewable(&self, serial: &str) -> bool {
        self.proxy_renewals
            .contains_key(&proxy_renewal_hash(serial))
    }

    /// The proxy whose certificate has this serial (lowercase hex), if
    /// one was issued to a joining proxy.
    pub fn proxy_cert(&self, serial: &str) -> Option<&ProxyCert> {
        self.proxy_certs.get(serial)
    }

    /// The nodes in force.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The lock holding on the PIV device with this serial at `now`, if any.
    pub fn device_lock(&self, serial: u32, now: u64) -> Option<&Lock> {
        self.device_locks.get(&serial).filter(|l| l.holds(now))
    }

    /// Every device lock recorded (some may have ended: see [`Lock::holds`]).
    pub fn device_locks(&self) -> &BTreeMap<u32, Lock> {
        &self.device_locks
    }

    /// Every user lock recorded (some may have ended: see [`Lock::holds`]).
    pub fn user_locks(&self) -> impl Iterator<Item = (&str, &Lock)> {
        self.accounts
            .iter()
            .filter_map(|(name, a)| a.lock.as_ref().map(|l| (name.as_str(), l)))
    }
}

/// Whether a policy change record is about a node (`put_node`,
/// `remove_node`) rather than a role or user: nodes are recorded under the
/// same entry kind, as changes applied from git.
pub fn is_node_change(change: &serde_json::Value) -> bool {
    change
        .as_object()
        .is_some_and(|o| o.contains_key("put_node") || o.contains_key("remove_node"))
}

fn device_serial(index: u64, entry: &Entry) -> Result<u32> {
    device_of_subject(subject(index, entry)?)
        .ok_or_else(|| inconsistent(index, "a device lock whose subject is not device:<serial>"))
}

fn subject(index: u64, entry: &Entry) -> Result<&str> {
    entry
        .subject
        .as_deref()
        .ok_or_else(|| inconsistent(index, "an admin action without a subject"))
}

#[cfg(test)]
mod tests;
