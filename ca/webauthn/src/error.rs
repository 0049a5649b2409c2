//! Why a registration or an assertion was refused.
//!
//! Each refusal is its own variant so the CA can count and log refusals by
//! reason; the messages say what to fix without echoing secrets or internal
//! state. Cryptographic failures carry no detail at all.

/// The result of this crate's checks.
pub type Result<T> = std::result::Result<T, WebauthnError>;

/// A refused WebAuthn registration or assertion, or a bad relying-party
/// or trust configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebauthnError {
    // --- configuration -------------------------------------------------
    /// The relying party's configuration is unusable.
    #[error("WebAuthn relying party configuration: {0}")]
    InvalidRelyingParty(String),
    /// The attestation trust configuration is unusable.
    #[error("WebAuthn attestation trust configuration: {0}")]
    InvalidTrustConfig(String),

    // --- encodings -----------------------------------------------------
    /// A field exceeds its size limit.
    #[error("{field} is larger than {max} bytes")]
    FieldTooLarge {
        /// The field.
        field: &'static str,
        /// Its limit in bytes.
        max: usize,
    },
    /// A binary field is not valid base64url.
    #[error("{field} is not valid base64url")]
    InvalidBase64 {
        /// The field.
        field: &'static str,
    },
    /// `clientDataJSON` is not the JSON object WebAuthn clients send.
    #[error("clientDataJSON is not a valid WebAuthn client data object")]
    InvalidClientData,
    /// A CBOR structure is malformed or not what WebAuthn prescribes.
    #[error("{what} is malformed CBOR or not shaped as WebAuthn prescribes")]
    InvalidCbor {
        /// The structure.
        what: &'static str,
    },
    /// The authenticator data is truncated, has trailing bytes, or
    /// contradicts its flags.
    #[error("authenticator data is malformed: {0}")]
    InvalidAuthenticatorData(&'static str),
    /// The credential public key is not a valid COSE key of a supported type.
    #[error("the credential public key is not a valid COSE key of a supported type")]
    InvalidCoseKey,
    /// The credential uses an algorithm the relying party did not offer.
    #[error("the security key chose COSE algorithm {0}, which was not offered (ES256 or EdDSA)")]
    AlgorithmNotAllowed(i64),

    // --- the credential object ------------------------------------------
    /// `type` is not `public-key`.
    #[error("credential type is not \"public-key\"")]
    WrongCredentialType,
    /// `id` and `rawId` name different credentials.
    #[error("credential id and rawId differ")]
    CredentialIdMismatch,
    /// The credential id is longer than WebAuthn allows (1023 bytes).
    #[error("credential id is longer than 1023 bytes")]
    CredentialIdTooLong,

    // --- client data ---------------------------------------------------
    /// The client data is for another ceremony (`webauthn.create` where
    /// `webauthn.get` was expected, or the reverse).
    #[error(
        "client data type is not {expected:?}: the response belongs to another kind of ceremony"
    )]
    WrongCeremonyType {
        /// What this ceremony expects.
        expected: &'static str,
    },
    /// The response answers another challenge (another request, or a
    /// replay of an earlier one).
    #[error("the response answers a different challenge: start the ceremony again")]
    ChallengeMismatch,
    /// The browser or client ran the ceremony for an origin this relying
    /// party does not serve.
    #[error("origin {0} is not one of this relying party's origins")]
    OriginNotAllowed(String),
    /// The ceremony ran in a cross-origin iframe.
    #[error("the ceremony ran in a cross-origin frame, which is refused")]
    CrossOrigin,

    // --- authenticator data ---------------------------------------------
    /// The authenticator signed for another relying party id.
    #[error("the security key answered for another relying party id")]
    RpIdMismatch,
    /// The user-present flag is not set: nobody touched the key.
    #[error("the security key did not report user presence (touch the key)")]
    UserNotPresent,
    /// User verification was required and not performed.
    #[error("user verification is required: the security key must check its PIN or biometric")]
    UserNotVerified,
    /// A registration without attested credential data.
    #[error("the registration carries no attested credential data")]
    AttestedCredentialDataMissing,

    // --- attestation -----------------------------------------------------
    /// The attestation statement format is not supported.
    #[error(
        "attestation format {0:?} is not supported (packed, fido-u2f and, where allowed, none)"
    )]
    UnsupportedAttestationFormat(String),
    /// Attestation "none" (or packed self attestation) without the opt-in.
    #[error("the security key gave no verifiable attestation ({0}), and this relying party requires one")]
    AttestationNotProvided(&'static str),
    /// The attestation statement's signature does not verify.
    #[error("the attestation signature does not verify")]
    AttestationSignatureInvalid,
    /// The attestation certificate breaks the format's requirements.
    #[error("the attestation certificate is not acceptable: {0}")]
    AttestationCertificateInvalid(&'static str),
    /// The attestation chains to no configured root and its key is not pinned.
    #[error("the security key's attestation is not trusted: it chains to no configured root and its key is not pinned")]
    AttestationUntrusted,

    // --- assertion -----------------------------------------------------------
    /// The assertion was made with another credential than the stored one.
    #[error("the assertion was made with a credential that is not the expected one")]
    CredentialMismatch,
    /// The assertion signature does not verify.
    #[error("the assertion signature does not verify")]
    SignatureInvalid,
    /// The signature counter did not increase: the key may have been cloned.
    #[error("the security key's signature counter went from {stored} to {received}: the key may have been cloned")]
    CounterRegression {
        /// The counter stored after the last good assertion.
        stored: u32,
        /// The counter in this assertion.
        received: u32,
    },
}
