//! CTAP status codes (CTAP 2.1 §8.2) as the first byte of every response.

use std::fmt;

/// A CTAP status code; [`Status::Ok`] is `00`, everything else an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// `00` CTAP1_ERR_SUCCESS / CTAP2_OK.
    Ok,
    /// `01` CTAP1_ERR_INVALID_COMMAND: unknown command byte.
    InvalidCommand,
    /// `02` CTAP1_ERR_INVALID_PARAMETER.
    InvalidParameter,
    /// `03` CTAP1_ERR_INVALID_LENGTH: an empty or truncated message.
    InvalidLength,
    /// `11` CTAP2_ERR_CBOR_UNEXPECTED_TYPE: a parameter of the wrong CBOR type.
    CborUnexpectedType,
    /// `12` CTAP2_ERR_INVALID_CBOR: not well-formed CBOR.
    InvalidCbor,
    /// `14` CTAP2_ERR_MISSING_PARAMETER.
    MissingParameter,
    /// `15` CTAP2_ERR_LIMIT_EXCEEDED.
    LimitExceeded,
    /// `19` CTAP2_ERR_CREDENTIAL_EXCLUDED.
    CredentialExcluded,
    /// `26` CTAP2_ERR_UNSUPPORTED_ALGORITHM.
    UnsupportedAlgorithm,
    /// `27` CTAP2_ERR_OPERATION_DENIED: the user refused.
    OperationDenied,
    /// `28` CTAP2_ERR_KEY_STORE_FULL.
    KeyStoreFull,
    /// `2B` CTAP2_ERR_UNSUPPORTED_OPTION.
    UnsupportedOption,
    /// `2C` CTAP2_ERR_INVALID_OPTION.
    InvalidOption,
    /// `2D` CTAP2_ERR_KEEPALIVE_CANCEL: the client cancelled.
    KeepaliveCancel,
    /// `2E` CTAP2_ERR_NO_CREDENTIALS.
    NoCredentials,
    /// `2F` CTAP2_ERR_USER_ACTION_TIMEOUT: no touch in time.
    UserActionTimeout,
    /// `30` CTAP2_ERR_NOT_ALLOWED.
    NotAllowed,
    /// `31` CTAP2_ERR_PIN_INVALID.
    PinInvalid,
    /// `32` CTAP2_ERR_PIN_BLOCKED: all retries spent; only a reset helps.
    PinBlocked,
    /// `33` CTAP2_ERR_PIN_AUTH_INVALID.
    PinAuthInvalid,
    /// `34` CTAP2_ERR_PIN_AUTH_BLOCKED: three wrong PINs since power-up.
    PinAuthBlocked,
    /// `35` CTAP2_ERR_PIN_NOT_SET.
    PinNotSet,
    /// `36` CTAP2_ERR_PUAT_REQUIRED (CTAP 2.0: PIN_REQUIRED).
    PuatRequired,
    /// `37` CTAP2_ERR_PIN_POLICY_VIOLATION.
    PinPolicyViolation,
    /// `39` CTAP2_ERR_REQUEST_TOO_LARGE.
    RequestTooLarge,
    /// `3E` CTAP2_ERR_INVALID_SUBCOMMAND.
    InvalidSubcommand,
    /// `40` CTAP2_ERR_UNAUTHORIZED_PERMISSION.
    UnauthorizedPermission,
    /// `7F` CTAP1_ERR_OTHER.
    Other,
}

impl Status {
    /// The byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Ok => 0x00,
            Self::InvalidCommand => 0x01,
            Self::InvalidParameter => 0x02,
            Self::InvalidLength => 0x03,
            Self::CborUnexpectedType => 0x11,
            Self::InvalidCbor => 0x12,
            Self::MissingParameter => 0x14,
            Self::LimitExceeded => 0x15,
            Self::CredentialExcluded => 0x19,
            Self::UnsupportedAlgorithm => 0x26,
            Self::OperationDenied => 0x27,
            Self::KeyStoreFull => 0x28,
            Self::UnsupportedOption => 0x2B,
            Self::InvalidOption => 0x2C,
            Self::KeepaliveCancel => 0x2D,
            Self::NoCredentials => 0x2E,
            Self::UserActionTimeout => 0x2F,
            Self::NotAllowed => 0x30,
            Self::PinInvalid => 0x31,
            Self::PinBlocked => 0x32,
            Self::PinAuthInvalid => 0x33,
            Self::PinAuthBlocked => 0x34,
            Self::PinNotSet => 0x35,
            Self::PuatRequired => 0x36,
            Self::PinPolicyViolation => 0x37,
            Self::RequestTooLarge => 0x39,
            Self::InvalidSubcommand => 0x3E,
            Self::UnauthorizedPermission => 0x40,
            Self::Other => 0x7F,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CTAP status {:02X} ({self:?})", self.to_byte())
    }
}
