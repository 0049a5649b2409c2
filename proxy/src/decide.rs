//! The per-connection decision: may this identity reach this node as this
//! login, by the CA's view as the proxy last received it? And, for a
//! tunnel already open, may it stay open?
//!
//! Pure functions of the view, the identity and the time. The order of
//! the checks is the order of the reasons a user is told: no view yet, the
//! certificate's validity, locks, the node, the login.

use std::fmt;

use signet_api::proxy::{FeedNode, FeedUser, ProxyView};
use signet_policy::Allow;

use crate::identity::Identity;
use crate::preamble::Preamble;

/// A stable word for each reason, for metrics and scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RefusalCode {
    /// The proxy has never received the CA's view: it refuses everything.
    NotSynced,
    /// The proxy has not heard from the CA for longer than `stale_after`:
    /// its view may miss a lock, so it refuses new tunnels.
    ViewStale,
    /// The certificate is not valid yet.
    CertificateNotYetValid,
    /// The certificate has expired.
    CertificateExpired,
    /// The user is locked.
    UserLocked,
    /// The YubiKey is locked.
    DeviceLocked,
    /// The user is not in the CA's roles.
    UnknownUser,
    /// No node of that name.
    UnknownNode,
    /// None of the user's roles allows the node.
    NodeNotAllowed,
    /// None of the user's roles that allow the node allows the login.
    LoginNotAllowed,
}

impl RefusalCode {
    /// Every code (for metrics with a zero for each).
    pub const ALL: [RefusalCode; 10] = [
        Self::NotSynced,
        Self::ViewStale,
        Self::CertificateNotYetValid,
        Self::CertificateExpired,
        Self::UserLocked,
        Self::DeviceLocked,
        Self::UnknownUser,
        Self::UnknownNode,
        Self::NodeNotAllowed,
        Self::LoginNotAllowed,
    ];

    /// The word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotSynced => "not_synced",
            Self::ViewStale => "view_stale",
            Self::CertificateNotYetValid => "certificate_not_yet_valid",
            Self::CertificateExpired => "certificate_expired",
            Self::UserLocked => "user_locked",
            Self::DeviceLocked => "device_locked",
            Self::UnknownUser => "unknown_user",
            Self::UnknownNode => "unknown_node",
            Self::NodeNotAllowed => "node_not_allowed",
            Self::LoginNotAllowed => "login_not_allowed",
        }
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: its code and what to tell the engineer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why, as a word.
    pub code: RefusalCode,
    /// Why, in words the engineer can act on.
    pub message: String,
}

impl Refusal {
    /// The refusal of a new tunnel while the view is older than the
    /// staleness limit (`silent` is how long the CA has been silent).
    pub fn stale(silent: std::time::Duration) -> Self {
        Self::new(
            RefusalCode::ViewStale,
            format!(
                "the proxy has not heard from the CA for {} s, so it cannot know of recent \
                 locks; new connections are refused until the CA is reachable again",
                silent.as_secs()
            ),
        )
    }

    fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

fn allow_of(access: &signet_api::proxy::RoleAccess) -> Allow {
    Allow {
        logins: access.logins.clone(),
        node_labels: access.node_labels.clone(),
    }
}

fn user_of<'v>(view: &'v ProxyView, user: &str) -> Option<&'v FeedUser> {
    view.users.iter().find(|u| u.name == user)
}

/// Whether a tunnel of `who` may be open at `now`: a view was received,
/// the certificate is valid, neither the user nor the YubiKey is locked.
/// Asked when a tunnel opens and each time a new view arrives.
pub fn still_allowed(view: Option<&ProxyView>, who: &Identity, now: u64) -> Result<(), Refusal> {
    let Some(view) = view else {
        return Err(Refusal::new(
            RefusalCode::NotSynced,
            "the proxy has not received the CA's view yet; try again shortly",
        ));
    };
    if now < who.not_before {
        return Err(Refusal::new(
            RefusalCode::CertificateNotYetValid,
            "your certificate is not valid yet (check your clock)",
        ));
    }
    if now >= who.not_after {
        return Err(Refusal::new(
            RefusalCode::CertificateExpired,
            "your certificate has expired; run `signet login`",
        ));
    }
    let holds = |until: Option<u64>| until.is_none_or(|u| now < u);
    if let Some(lock) = view
        .user_locks
        .iter()
        .find(|l| l.user == who.user && holds(l.until))
    {
        return Err(Refusal::new(
            RefusalCode::UserLocked,
            format!("user {} is locked: {}", who.user, lock.reason),
        ));
    }
    if let Some(serial) = who.device {
        if let Some(lock) = view
            .device_locks
            .iter()
            .find(|l| l.serial == serial && holds(l.until))
        {
            return Err(Refusal::new(
                RefusalCode::DeviceLocked,
                format!(
                    "the YubiKey with serial {serial} is locked: {}",
                    lock.reason
                ),
            ));
        }
    }
    Ok(())
}

/// Decides a new tunnel: [`still_allowed`], then the node exists and one
/// of the user's roles allows both its labels and the login. Returns the
/// node to dial.
pub fn decide<'v>(
    view: Option<&'v ProxyView>,
    who: &Identity,
    request: &Preamble,
    now: u64,
) -> Result<&'v FeedNode, Refusal> {
    still_allowed(view, who, now)?;
    let Some(view) = view else {
        // still_allowed refused a missing view already.
        return Err(Refusal::new(RefusalCode::NotSynced, "not synced"));
    };
    let Some(user) = user_of(view, &who.user) else {
        return Err(Refusal::new(
            RefusalCode::UnknownUser,
            format!("user {} has no roles at this CA", who.user),
        ));
    };
    let Some(node) = view.nodes.iter().find(|n| n.name == request.node) else {
        return Err(Refusal::new(
            RefusalCode::UnknownNode,
            format!("no node named {:?}", request.node),
        ));
    };
    let reaching: Vec<Allow> = user
        .access
        .iter()
        .map(allow_of)
        .filter(|a| a.allows_node(&node.labels))
        .collect();
    if reaching.is_empty() {
        return Err(Refusal::new(
            RefusalCode::NodeNotAllowed,
            format!("none of your roles allows the node {}", node.name),
        ));
    }
    if !reaching.iter().any(|a| a.allows_login(&request.login)) {
        return Err(Refusal::new(
            RefusalCode::LoginNotAllowed,
            format!(
                "none of your roles allows the login {:?} on {}",
                request.login, node.name
            ),
        ));
    }
    Ok(node)
}

/// Which open tunnels a new view (or the clock) ends, and why: each
/// tunnel's identity is checked again with [`still_allowed`]. Run when a
/// snapshot arrives and when a certificate's end comes.
pub fn to_cut<'t, K>(
    view: Option<&ProxyView>,
    tunnels: impl IntoIterator<Item = (K, &'t Identity)>,
    now: u64,
) -> Vec<(K, Refusal)> {
    tunnels
        .into_iter()
        .filter_map(|(key, who)| still_allowed(view, who, now).err().map(|r| (key, r)))
        .collect()
}
