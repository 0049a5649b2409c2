//! Deciding a certificate request against a user's roles.
//!
//! The rules, in the order they are checked:
//!
//! 1. the user must exist ([`Refusal::NoSuchUser`]) and hold at least one
//!    role that exists ([`Refusal::NoRoles`]; a role the log no longer holds
//!    grants nothing);
//! 2. at least one principal must be asked for ([`Refusal::NoPrincipals`]);
//! 3. every principal must be allowed by at least one of the user's roles
//!    ([`Refusal::PrincipalNotAllowed`], naming the first one that is not);
//! 4. the roles that allow at least one of the requested principals — the
//!    *contributing* roles — set the limits together: the TTL may be at most
//!    the smallest `max_session_ttl` among them ([`Refusal::TtlTooLong`]),
//!    and the key must satisfy the strongest `hardware_key` among them
//!    ([`Refusal::HardwareKeyTooWeak`]).
//!
//! Rule 4 is deliberately strict: a role that allows a principal imposes its
//! limits whenever that principal is asked for, even if another role allows
//! it more loosely. Roles the request does not use impose nothing.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use signet_log::entry::{PinPolicy, TouchPolicy};

use crate::model::HardwareKey;

/// What a certificate request asks for, as the CA has verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// The principals (unix logins) asked for.
    pub principals: Vec<String>,
    /// The certificate's validity asked for.
    pub ttl: Duration,
    /// The PIN and touch policy from the key's verified PIV attestation;
    /// `None` when the key has no (valid) attestation.
    pub key: Option<(PinPolicy, TouchPolicy)>,
}

/// Why a request is allowed, and within which limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The contributing roles (those allowing a requested principal), sorted.
    pub roles: Vec<String>,
    /// The longest TTL these roles allow together.
    #[serde(serialize_with = "seconds")]
    pub max_ttl: Duration,
    /// The key strength these roles demand together.
    pub required: HardwareKey,
    /// Whether any of these roles wants a fresh touch for every connection.
    pub session_mfa: bool,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The user is not in the policy.
    #[error("no such user in the roles configuration; ask an administrator to add you")]
    NoSuchUser,
    /// The user holds no role (or only roles that no longer exist).
    #[error("you hold no roles; ask an administrator to give you one")]
    NoRoles,
    /// A principal none of the user's roles allows.
    #[error("none of your roles allows the login {0:?}; ask for one your roles allow")]
    PrincipalNotAllowed(String),
    /// The TTL asked for is longer than the roles allow.
    #[error("the certificate lifetime asked for is too long: your roles allow at most {}", humantime::format_duration(*.max))]
    TtlTooLong {
        /// The most allowed.
        max: Duration,
    },
    /// The key does not meet the roles' `hardware_key`.
    #[error("{}", weak_key_message(*.required))]
    HardwareKeyTooWeak {
        /// What the roles demand.
        required: HardwareKey,
    },
    /// The request names no principal.
    #[error("no login asked for; name at least one")]
    NoPrincipals,
}

impl Refusal {
    /// A stable, machine-readable name for the refusal, for API error codes
    /// and metrics labels.
    ///
    /// `no_such_user` and `no_roles` tell who is enrolled: a service that
    /// answers people who have not authenticated should not tell them apart.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSuchUser => "no_such_user",
            Self::NoRoles => "no_roles",
            Self::PrincipalNotAllowed(_) => "principal_not_allowed",
            Self::TtlTooLong { .. } => "ttl_too_long",
            Self::HardwareKeyTooWeak { .. } => "hardware_key_too_weak",
            Self::NoPrincipals => "no_principals",
        }
    }
}

fn weak_key_message(required: HardwareKey) -> String {
    let what = match required {
        HardwareKey::None => "any key",
        HardwareKey::Attested => "a key generated on a hardware key, with its attestation",
        HardwareKey::Touch => {
            "a key generated on a hardware key with touch policy always or cached"
        }
        HardwareKey::TouchAndPin => {
            "a key generated on a hardware key with touch policy always or cached and PIN policy once or always"
        }
    };
    format!("this key is not strong enough: your roles require {what} (hardware_key: {required})")
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "roles {} (max ttl {}, hardware key {}{})",
            self.roles.join(", "),
            humantime::format_duration(self.max_ttl),
            self.required,
            if self.session_mfa {
                ", session mfa"
            } else {
                ""
            }
        )
    }
}
