//! Errors on the wire: a stable code for programs, a message for people.

use serde::{Deserialize, Serialize};

use crate::certs::KeyPolicyRequired;

/// Why a request failed. The string forms are a contract: scripts, the
/// proxy and the client match on them, so a code is never renamed or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not the JSON the route expects (syntax, a missing or
    /// unknown field, bad base64); the message names the field.
    MalformedRequest,
    /// A field parsed but its value is not acceptable (a bad public key, an
    /// empty principal, a TTL of zero); the message names the field.
    InvalidRequest,
    /// The body is larger than the route accepts.
    BodyTooLarge,
    /// No such route, or no such resource on it.
    NotFound,
    /// The ceremony is unknown, already used, or expired: start again.
    CeremonyExpired,
    /// The WebAuthn assertion or registration did not verify (signature,
    /// challenge, origin, rp id, flags, credential).
    WebauthnRefused,
    /// The security key's signature counter went back: the key may have been
    /// cloned. The credential's owner and the security team should look.
    CounterRegression,
    /// The PIV attestation of the key to certify did not verify, or does not
    /// attest the requested key.
    AttestationRefused,
    /// The roles would allow the request, but the key's attested PIN or
    /// touch policy is weaker than their `hardware_key` demands. The error
    /// carries [`ApiError::key_policy`], so a client can make a key that
    /// qualifies (with its owner's consent) and ask again.
    KeyPolicyTooWeak,
    /// The user's roles do not allow this request (principals, TTL,
    /// hardware key policy) — or there is no such user.
    NotAllowed,
    /// The user or device is locked; an admin can unlock it.
    Locked,
    /// The invite link is unknown, used or expired: ask for a new one.
    InviteInvalid,
    /// Too many requests from this user or address; retry later.
    RateLimited,
    /// The peer is not allowed to use this interface (admin socket).
    Forbidden,
    /// The CA cannot issue right now (HSM, store or log unusable); retry.
    Unavailable,
    /// Something failed inside the CA; the details are in its log.
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::MalformedRequest | Self::InvalidRequest => 400,
            Self::WebauthnRefused | Self::CounterRegression => 401,
            Self::NotAllowed
            | Self::AttestationRefused
            | Self::KeyPolicyTooWeak
            | Self::Locked
            | Self::Forbidden => 403,
            Self::NotFound | Self::InviteInvalid => 404,
            Self::CeremonyExpired => 410,
            Self::BodyTooLarge => 413,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed_request",
            Self::InvalidRequest => "invalid_request",
            Self::BodyTooLarge => "body_too_large",
            Self::NotFound => "not_found",
            Self::CeremonyExpired => "ceremony_expired",
            Self::WebauthnRefused => "webauthn_refused",
            Self::CounterRegression => "counter_regression",
            Self::AttestationRefused => "attestation_refused",
            Self::KeyPolicyTooWeak => "key_policy_too_weak",
            Self::NotAllowed => "not_allowed",
            Self::Locked => "locked",
            Self::InviteInvalid => "invite_invalid",
            Self::RateLimited => "rate_limited",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// What kind of failure, for programs.
    pub code: ErrorCode,
    /// What happened and what to do, for people.
    pub message: String,
    /// With [`ErrorCode::KeyPolicyTooWeak`] only: what the roles demand of
    /// the key, for a program to act on without parsing the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_policy: Option<KeyPolicyRequired>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            key_policy: None,
        }
    }

    /// A [`ErrorCode::KeyPolicyTooWeak`] error saying what would qualify.
    pub fn key_policy_too_weak(message: impl Into<String>, required: KeyPolicyRequired) -> Self {
        Self {
            code: ErrorCode::KeyPolicyTooWeak,
            message: message.into(),
            key_policy: Some(required),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_contract_names() {
        for code in [
            ErrorCode::MalformedRequest,
            ErrorCode::CeremonyExpired,
            ErrorCode::CounterRegression,
            ErrorCode::KeyPolicyTooWeak,
            ErrorCode::Unavailable,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn plain_errors_have_no_key_policy_field() {
        let json = serde_json::to_string(&ApiError::new(ErrorCode::NotAllowed, "no")).unwrap();
        assert_eq!(json, r#"{"code":"not_allowed","message":"no"}"#);
        let back: ApiError = serde_json::from_str(&json).unwrap();
        assert_eq!(back.key_policy, None);
    }

    #[test]
    fn a_key_policy_error_round_trips_with_what_qualifies() {
        use signet_log::entry::{PinPolicy, TouchPolicy};
        let err = ApiError::key_policy_too_weak(
            "weak",
            KeyPolicyRequired {
                hardware_key: "touch_and_pin".into(),
                pin_policies: vec![PinPolicy::Once, PinPolicy::Always],
                touch_policies: vec![TouchPolicy::Always, TouchPolicy::Cached],
                key_pin_policy: PinPolicy::Never,
                key_touch_policy: TouchPolicy::Always,
            },
        );
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["code"], "key_policy_too_weak");
        assert_eq!(
            json["key_policy"],
            serde_json::json!({"hardware_key":"touch_and_pin",
                "pin_policies":["once","always"],"touch_policies":["always","cached"],
                "key_pin_policy":"never","key_touch_policy":"always"})
        );
        assert_eq!(serde_json::from_value::<ApiError>(json).unwrap(), err);
        assert_eq!(ErrorCode::KeyPolicyTooWeak.http_status(), 403);
    }

    #[test]
    fn an_error_body_with_an_extra_field_is_refused() {
        let text = r#"{"code":"internal","message":"x","detail":"y"}"#;
        assert!(serde_json::from_str::<ApiError>(text).is_err());
    }
}
