//! The touch flow: enrollment of security keys, issuance after a WebAuthn
//! assertion over the request, and the admin actions that change who may
//! do what. Plain blocking code over the CA, the store and the
//! [`Directory`]; the daemon's HTTP and admin-socket layers call it.
//!
//! Every change is a log entry first: [`Service::record`] appends it, waits
//! until it is durable, and only then applies it to the directory.

mod admin;
mod ceremony;
mod enroll;
mod feed;
mod issue;
mod limits;
mod node_join;
mod nodes;
mod proxy_server;
mod refusal;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use signet_attest::DeviceRoots;
use signet_log::entry::Entry;
use signet_webauthn::{AttestationTrust, RelyingParty, UserVerification};

pub use admin::{CredentialView, InviteLink, UserView};
pub use ceremony::{Ceremonies, CEREMONY_TTL};
pub use node_join::{host_principals, NodeJoinToken};
pub use refusal::Refusal;

use crate::ca_keys::CaAuthority;
use crate::config::Config;
use crate::daemon_config::UserVerificationSetting;
use crate::directory::Directory;
use crate::store::{Appended, LogStore};
use crate::{Error, Result};
use limits::{Failures, Limiter, RateLimits};

/// What the metrics layer is told about; a no-op by default.
pub trait Observer: Send + Sync {
    /// A certificate of `kind` (`ssh-user`, `x509-client`) was issued.
    fn issued(&self, _kind: &'static str) {}
    /// A request was refused for `reason`.
    fn refused(&self, _route: &'static str, _reason: &'static str) {}
    /// Signing and logging one certificate took this long.
    fn sign_seconds(&self, _seconds: f64) {}
}

struct NoObserver;
impl Observer for NoObserver {}

/// The touch flow's state and dependencies.
pub struct Service {
    config: Config,
    authority: CaAuthority,
    store: Arc<dyn LogStore>,
    directory: RwLock<Directory>,
    ceremonies: Ceremonies,
    limits: RateLimits,
    failures: Failures,
    user_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Held by `roles apply` from its diff to its last entry, so two
    /// admins applying at once run one after the other.
    policy_writer: Mutex<()>,
    rp: RelyingParty,
    fido_trust: AttestationTrust,
    device_roots: DeviceRoots,
    observer: Box<dyn Observer>,
    /// Told the log size after each change the directory applies (the
    /// proxies' feed waits on it).
    changes: tokio::sync::watch::Sender<u64>,
    /// Why the directory could not follow the log, while it cannot.
    stalled: Mutex<Option<String>>,
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Service {
    /// Builds the service: replays the log into the directory and loads the
    /// relying party and both trust stores from the configuration.
    pub fn new(config: Config, authority: CaAuthority, store: Arc<dyn LogStore>) -> Result<Self> {
        let directory = Directory::replay(store.as_ref())?;
        let changes = feed::channel(directory.applied());
        let webauthn = config.webauthn.clone().ok_or_else(|| Error::Config {
            path: "webauthn".into(),
            reason: "the daemon needs a [webauthn] section (rp_id, origin, attestation trust)"
                .into(),
        })?;
        let config_err = |field: &str, e: &dyn std::fmt::Display| Error::Config {
            path: field.into(),
            reason: e.to_string(),
        };
        let mut origins = vec![webauthn.origin.as_str()];
        origins.extend(webauthn.extra_origins.iter().map(String::as_str));
        let rp = RelyingParty::new(
            &webauthn.rp_id,
            &webauthn.rp_name,
            &origins,
            match webauthn.user_verification {
                UserVerificationSetting::Required => UserVerification::Required,
                UserVerificationSetting::Preferred => UserVerification::Preferred,
                UserVerificationSetting::Discouraged => UserVerification::Discouraged,
            },
        )
        .map_err(|e| config_err("webauthn", &e))?;
        let mut fido_trust = AttestationTrust::default();
        for path in &webauthn.attestation_roots {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                config_err(
                    "webauthn.attestation_roots",
                    &format!("{}: {e}", path.display()),
                )
            })?;
            fido_trust.add_roots_pem(&pem).map_err(|e| {
                config_err(
                    "webauthn.attestation_roots",
                    &format!("{}: {e}", path.display()),
                )
            })?;
        }
        for pin in &webauthn.attestation_spki_sha256 {
            fido_trust
                .add_spki_pin_hex(pin)
                .map_err(|e| config_err("webauthn.attestation_spki_sha256", &e))?;
        }
        fido_trust.set_allow_none(webauthn.allow_unattested);
        let mut device_roots = if config.attestation.yubico {
            DeviceRoots::yubico().map_err(|e| config_err("attestation.yubico", &e))?
        } else {
            DeviceRoots::default()
        };
        for path in &config.attestation.roots {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                config_err("attestation.roots", &format!("{}: {e}", path.display()))
            })?;
            device_roots.extend(DeviceRoots::from_pem(&pem).map_err(|e| {
                config_err("attestation.roots", &format!("{}: {e}", path.display()))
            })?);
        }
        if device_roots.is_empty() {
            return Err(config_err(
                "attestation",
                &"no device attestation roots: set yubico = true or list roots",
            ));
        }
        let limits = RateLimits {
            per_user: Limiter::new(config.limits.per_user_per_minute),
            per_source: Limiter::new(config.limits.per_source_per_minute),
        };
        let ceremonies = Ceremonies::new(
            store
                .ceremonies()
                .unwrap_or_else(|| Arc::new(crate::store::MemoryCeremonies::default())),
        );
        Ok(Self {
            config,
            authority,
            store,
            directory: RwLock::new(directory),
            ceremonies,
            limits,
            failures: Failures::default(),
            user_locks: Mutex::new(HashMap::new()),
            policy_writer: Mutex::new(()),
            rp,
            fido_trust,
            device_roots,
            observer: Box::new(NoObserver),
            changes,
            stalled: Mutex::new(None),
        })
    }

    /// Reports issuances, refusals and signing times to `observer`.
    pub fn with_observer(mut self, observer: Box<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// The CA.
    pub fn authority(&self) -> &CaAuthority {
        &self.authority
    }

    /// How many ceremonies are pending.
    pub fn pending_ceremonies(&self) -> usize {
        self.ceremonies.len()
    }

    fn directory(&self) -> RwLockReadGuard<'_, Directory> {
        self.directory.read().unwrap_or_else(|p| p.into_inner())
    }

    fn directory_mut(&self) -> RwLockWriteGuard<'_, Directory> {
        self.directory.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Serializes everything that changes one user's state (finish,
    /// enrollment, key removal, lock, unlock), so a check and the change it
    /// allowed cannot interleave with another change for the same user.
    fn user_lock(&self, user: &str) -> Arc<Mutex<()>> {
        let mut locks = crate::store::lock(&self.user_locks);
        if locks.len() > 100_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(user.to_owned()).or_default().clone()
    }

    /// Appends an entry, waits until it is durable, then applies it.
    fn record(&self, entry: &Entry) -> Result<Appended> {
        if let Some(reason) = self.directory_failure() {
            return Err(Error::Store(reason));
        }
        let appended = self.store.append(entry, None)?;
        let mut directory = self.directory_mut();
        // Entries other replicas appended before this one come first.
        let applied = directory.apply_appended(self.store.as_ref(), appended.index, entry);
        let size = directory.applied();
        drop(directory);
        if let Err(err) = applied {
            return Err(self.directory_stalled(err));
        }
        self.changes.send_replace(size);
        Ok(appended)
    }

    /// Applies the entries other replicas appended, up to the verified log
    /// size, and signals the proxy feed; returns the size applied. Called
    /// each time the store reports such entries.
    ///
    /// An entry that cannot be applied (or cannot be read) stops issuance:
    /// until a later catch-up gets past it, every request is refused as
    /// unavailable and [`Service::directory_failure`] says why, rather
    /// than deciding on a directory known to be behind the log.
    pub fn catch_up(&self) -> Result<u64> {
        let size = self.store.latest_checkpoint().size;
        let mut directory = self.directory_mut();
        let before = directory.applied();
        let result = directory.catch_up(self.store.as_ref(), size);
        let applied = directory.applied();
        drop(directory);
        if applied > before {
            self.changes.send_replace(applied);
        }
        match result {
            Ok(()) => {
                if crate::store::lock(&self.stalled).take().is_some() {
                    tracing::info!(
                        event = "directory_caught_up",
                        applied,
                        "the directory caught up with the log: issuing again"
                    );
                }
                Ok(applied)
            }
            Err(err) => Err(self.directory_stalled(err)),
        }
    }

    /// Why the directory is behind the log (an entry another replica
    /// appended could not be applied), or `None`: while it is, nothing is
    /// issued or changed.
    pub fn directory_failure(&self) -> Option<String> {
        crate::store::lock(&self.stalled).clone()
    }

    /// Records that the directory could not follow the log, and returns
    /// the error for the caller.
    fn directory_stalled(&self, err: Error) -> Error {
        let reason = format!(
            "the CA's state is behind its log and it stops issuing until it catches up: {err}"
        );
        let mut stalled = crate::store::lock(&self.stalled);
        if stalled.is_none() {
            tracing::error!(event = "directory_behind", error = %err, "{reason}");
        }
        *stalled = Some(reason.clone());
        Error::Store(reason)
    }

    /// Brings the directory up to the log as the store holds it now, so a
    /// decision on this replica sees a lock, an invite or a role change
    /// committed on another before the request arrived (not only once the
    /// change has been announced); refuses while the store is out of reach
    /// or the directory cannot follow the log.
    fn fresh(&self) -> std::result::Result<(), Refusal> {
        self.store.refresh().map_err(Refusal::from)?;
        if self.directory().applied() < self.store.latest_checkpoint().size {
            self.catch_up().map_err(Refusal::from)?;
        }
        match self.directory_failure() {
            None => Ok(()),
            Some(reason) => Err(Refusal::unavailable(reason)),
        }
    }

    fn rate_limit(
        &self,
        route: &'static str,
        user: &str,
        source: Option<IpAddr>,
    ) -> std::result::Result<(), Refusal> {
        let user_ok = self.limits.per_user.allow(&user.to_owned());
        let source_ok = source.is_none_or(|ip| self.limits.per_source.allow(&ip));
        if user_ok && source_ok {
            return Ok(());
        }
        Err(self.refuse(
            route,
            user,
            Refusal::new(
                signet_api::ErrorCode::RateLimited,
                "rate_limited",
                "too many requests; wait a minute and try again",
            ),
        ))
    }

    /// Logs a refusal as a structured event and counts it.
    fn refuse(&self, route: &'static str, user: &str, refusal: Refusal) -> Refusal {
        tracing::warn!(
            event = "refused",
            route,
            user,
            reason = refusal.reason,
            code = refusal.code.as_str(),
            detail = %refusal.message,
            "request refused"
        );
        self.observer.refused(route, refusal.reason);
        refusal
    }
}
