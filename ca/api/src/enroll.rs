//! Enrollment: registering a security key with a single-use invite.
//!
//! `signet-ca users invite NAME` prints a link `…/enroll/<token>`; the page
//! there (or `signet enroll LINK`) calls `POST /v1/enroll/begin` with the
//! token, runs `navigator.credentials.create` with the options, and posts
//! the result to `POST /v1/enroll/finish`. The token is spent by a
//! successful finish, and only then.

use serde::{Deserialize, Serialize};

use crate::webauthn::{CreationOptions, RegistrationResponse};

/// `POST /v1/enroll/begin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBeginRequest {
    /// The token from the invite link.
    pub token: String,
}

/// The answer to enrollment `begin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBeginResponse {
    /// Names this ceremony in `finish`; single use.
    pub ceremony: String,
    /// The user the invite is for.
    pub user: String,
    /// When the ceremony expires, unix seconds.
    pub expires_at: u64,
    /// What to pass to `navigator.credentials.create` / the CTAP2 client.
    pub webauthn: CreationOptions,
}

/// `POST /v1/enroll/finish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollFinishRequest {
    /// The ceremony from [`EnrollBeginResponse::ceremony`].
    pub ceremony: String,
    /// The token again: the invite is spent only with the ceremony it began.
    pub token: String,
    /// The new credential, as the authenticator returned it.
    pub credential: RegistrationResponse,
}

/// The answer to enrollment `finish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollFinishResponse {
    /// The enrolled user.
    pub user: String,
    /// The new credential's id, base64url as WebAuthn writes it.
    pub credential_id: String,
    /// Index of the enrollment's log entry.
    pub log_index: u64,
}
