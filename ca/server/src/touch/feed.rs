//! What the access proxies see: the view the CA streams to them
//! (`/v1/proxy/feed`), made from the directory, and the signal that it
//! changed, sent where the directory applies a change.

use signet_api::proxy::{DeviceLock, FeedNode, FeedUser, ProxyView, RoleAccess, UserLock};
use signet_api::B64;
use tokio::sync::watch;

use super::{now, Service};

/// The sending half of the change signal: holds the log size after the
/// last change applied to the directory.
pub(super) fn channel(applied: u64) -> watch::Sender<u64> {
    watch::Sender::new(applied)
}

impl Service {
    /// A receiver that wakes each time the directory applies a logged
    /// change (its value: the log size the change brought it to).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The view every proxy decides with, as of now: nodes, each user's
    /// access by role, the locks holding now, the X.509 root.
    pub fn proxy_view(&self) -> ProxyView {
        let now = now();
        let root = der::Encode::to_der(self.authority.root()).unwrap_or_default();
        let directory = self.directory();
        let policy = directory.policy();
        let nodes = directory
            .inventory()
            .nodes()
            .map(|n| FeedNode {
                name: n.name.clone(),
                address: n.address.clone(),
                labels: n.labels.clone(),
            })
            .collect();
        let users = policy
            .users()
            .map(|u| FeedUser {
                name: u.name.clone(),
                access: policy
                    .roles_of(&u.name)
                    .map(|r| RoleAccess {
                        role: r.name.clone(),
                        logins: r.allow.logins.clone(),
                        node_labels: r.allow.node_labels.clone(),
                    })
                    .collect(),
            })
            .collect();
        let user_locks = directory
            .user_locks()
            .filter(|(_, l)| l.holds(now))
            .map(|(user, l)| UserLock {
                user: user.to_owned(),
                reason: l.reason.clone(),
                until: l.until,
            })
            .collect();
        let device_locks = directory
            .device_locks()
            .iter()
            .filter(|(_, l)| l.holds(now))
            .map(|(serial, l)| DeviceLock {
                serial: *serial,
                reason: l.reason.clone(),
                until: l.until,
            })
            .collect();
        ProxyView {
            log_size: *self.changes.borrow(),
            time: now,
            x509_root: B64(root),
            nodes,
            users,
            user_locks,
            device_locks,
        }
    }
}
