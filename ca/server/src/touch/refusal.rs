//! A refused request: the code and message the client gets, and the reason
//! label logs and metrics count it under.

use signet_api::certs::KeyPolicyRequired;
use signet_api::{ApiError, ErrorCode};

/// Why the CA said no. The message is for the client (specific enough to
/// act on, nothing internal); `reason` is a short fixed label for the log
/// event and the refusal metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The wire code.
    pub code: ErrorCode,
    /// The message for the client.
    pub message: String,
    /// The label for logs and metrics (`counter_regression`, `bad_origin`, …).
    pub reason: &'static str,
    /// What would qualify, when the key's policy is what was refused.
    /// (Boxed: refusals travel in every `Err`, and this is rare and large.)
    pub key_policy: Option<Box<KeyPolicyRequired>>,
}

impl Refusal {
    /// A refusal.
    pub fn new(code: ErrorCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason,
            key_policy: None,
        }
    }

    /// The key's attested PIN or touch policy is weaker than the roles
    /// demand: [`ErrorCode::KeyPolicyTooWeak`], carrying what would qualify.
    pub fn key_policy_too_weak(message: impl Into<String>, required: KeyPolicyRequired) -> Self {
        Self {
            key_policy: Some(Box::new(required)),
            ..Self::new(ErrorCode::KeyPolicyTooWeak, "key_policy_too_weak", message)
        }
    }

    /// A failure inside the CA: the client learns nothing more, the
    /// daemon's log gets the detail.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal",
            "the CA failed to complete the request; the details are in its log",
        )
    }

    /// The CA cannot issue (HSM, store or log).
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "cannot issue");
        Self::new(
            ErrorCode::Unavailable,
            "unavailable",
            "the CA cannot issue right now; try again later",
        )
    }

    /// The wire form.
    pub fn to_api(&self) -> ApiError {
        let mut api = ApiError::new(self.code, self.message.clone());
        api.key_policy = self.key_policy.as_deref().cloned();
        api
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.reason)
    }
}

impl From<crate::Error> for Refusal {
    fn from(err: crate::Error) -> Self {
        use crate::Error;
        match err {
            Error::BadRequest { .. } => Self::new(
                ErrorCode::InvalidRequest,
                "invalid_request",
                err.to_string(),
            ),
            Error::Hsm(_) | Error::Store(_) | Error::StoreUnavailable(_) | Error::Log(_) => {
                Self::unavailable(err)
            }
            Error::Witness(_) => {
                tracing::error!(detail = %err, "cannot issue");
                Self::new(
                    ErrorCode::Unavailable,
                    "witnesses",
                    "the log's witnesses have not cosigned, so the CA holds issuance back; \
                     try again later",
                )
            }
            other => Self::internal(other),
        }
    }
}
