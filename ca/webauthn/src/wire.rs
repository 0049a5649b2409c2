//! The JSON the relying party sends and receives: WebAuthn's JSON
//! encoding, which browsers (`PublicKeyCredential.toJSON()`, or a page
//! that base64url-encodes the `ArrayBuffer`s itself) and webauthn-rs'
//! client types both speak.
//!
//! - Options ([`CreationOptions`], [`RequestOptions`]) are the
//!   `CredentialCreationOptions` / `CredentialRequestOptions` dictionaries:
//!   `{"publicKey": {…}}`, binary values base64url without padding. A
//!   page base64url-decodes `challenge`, `user.id` and the credential ids
//!   before calling `navigator.credentials.create` / `.get`.
//! - Responses ([`RegistrationResponse`], [`AssertionResponse`]) are a
//!   `PublicKeyCredential` in JSON. Binary values stay base64url text here
//!   (padded or not) and are decoded, bounded, by the checks, so a bad
//!   value is reported by field name. Unknown fields are refused; the
//!   optional fields browsers and webauthn-rs add are accepted and
//!   ignored (client extension results, authenticator attachment,
//!   transports, the registration's convenience copies of the public key).
//! - webauthn-authenticator-rs' CTAP2 clients (the `signet` CLI's path to
//!   a USB or NFC key) send a registration with `id` and `rawId` empty and
//!   the attestation format in `type`, and leave the authenticator's
//!   unsigned `eppAtt` / `largeBlobKey` members in the attestation object.
//!   [`crate::verify_registration`] accepts exactly that (the credential id
//!   is read from the signed authenticator data), so their JSON is sent
//!   as is.

use serde::{Deserialize, Serialize};

use crate::UserVerification;

/// The only credential type WebAuthn defines.
pub const PUBLIC_KEY: &str = "public-key";

// ---------------------------------------------------------------- options

/// Options for `navigator.credentials.create` (the
/// `CredentialCreationOptions` dictionary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreationOptions {
    /// The WebAuthn part.
    #[serde(rename = "publicKey")]
    pub public_key: PublicKeyCredentialCreationOptions,
}

/// `PublicKeyCredentialCreationOptions` in WebAuthn's JSON encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublicKeyCredentialCreationOptions {
    /// The relying party.
    pub rp: RpEntity,
    /// The user the credential is for.
    pub user: UserEntity,
    /// The challenge, base64url.
    #[serde(with = "crate::b64::serde_bytes")]
    pub challenge: Vec<u8>,
    /// Acceptable key types, most preferred first.
    pub pub_key_cred_params: Vec<PubKeyCredParam>,
    /// Milliseconds the client waits for the user.
    pub timeout: u32,
    /// Credentials already registered (the authenticator refuses to
    /// register a second credential for the same user).
    #[serde(default)]
    pub exclude_credentials: Vec<CredentialDescriptor>,
    /// What kind of authenticator is wanted.
    pub authenticator_selection: AuthenticatorSelection,
    /// The attestation conveyance preference (`direct`).
    pub attestation: String,
    /// What kind of authenticator the relying party expects
    /// (`security-key`), so browsers offer a security key first
    /// (WebAuthn Level 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// `PublicKeyCredentialRpEntity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpEntity {
    /// The relying party id (a domain).
    pub id: String,
    /// Its human-readable name.
    pub name: String,
}

/// `PublicKeyCredentialUserEntity`: who a credential is registered for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserEntity {
    /// The user handle: opaque bytes (at most 64), never personal data.
    #[serde(with = "crate::b64::serde_bytes")]
    pub id: Vec<u8>,
    /// The account name shown by the authenticator and browser.
    pub name: String,
    /// The person's name as shown to them.
    pub display_name: String,
}

/// `PublicKeyCredentialParameters`: one acceptable key type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PubKeyCredParam {
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A COSE algorithm number.
    pub alg: i64,
}

/// `PublicKeyCredentialDescriptor`: names an existing credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialDescriptor {
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The credential id, base64url.
    #[serde(with = "crate::b64::serde_bytes")]
    pub id: Vec<u8>,
    /// How the client may reach the authenticator, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transports: Option<Vec<String>>,
}

/// `AuthenticatorSelectionCriteria`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthenticatorSelection {
    /// `cross-platform` for security keys; absent lets the client choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    /// `discouraged`: the CA names the credential itself (server-side).
    pub resident_key: String,
    /// Level 1's spelling of the same wish.
    pub require_resident_key: bool,
    /// Whether the authenticator must verify the user (PIN, biometric).
    pub user_verification: UserVerification,
}

/// Options for `navigator.credentials.get` (the `CredentialRequestOptions`
/// dictionary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestOptions {
    /// The WebAuthn part.
    #[serde(rename = "publicKey")]
    pub public_key: PublicKeyCredentialRequestOptions,
}

/// `PublicKeyCredentialRequestOptions` in WebAuthn's JSON encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublicKeyCredentialRequestOptions {
    /// The challenge, base64url.
    #[serde(with = "crate::b64::serde_bytes")]
    pub challenge: Vec<u8>,
    /// Milliseconds the client waits for the user.
    pub timeout: u32,
    /// The relying party id.
    pub rp_id: String,
    /// The credentials that may answer.
    pub allow_credentials: Vec<CredentialDescriptor>,
    /// Whether the authenticator must verify the user.
    pub user_verification: UserVerification,
    /// What kind of authenticator the relying party expects
    /// (`security-key`; WebAuthn Level 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

// -------------------------------------------------------------- responses

/// A new credential: `PublicKeyCredential` with an
/// `AuthenticatorAttestationResponse`, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistrationResponse {
    /// The credential id, base64url (the same bytes as `rawId`).
    pub id: String,
    /// The credential id, base64url.
    pub raw_id: String,
    /// The authenticator's answer.
    pub response: AttestationResponse,
    /// `public-key`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `platform` or `cross-platform` (browsers; ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    /// Client extension outputs (browsers' `toJSON()`; ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_extension_results: Option<serde_json::Value>,
    /// Client extension outputs (webauthn-rs' name; ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
}

/// `AuthenticatorAttestationResponse` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AttestationResponse {
    /// The client data the authenticator signed over, base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// The CBOR attestation object, base64url.
    pub attestation_object: String,
    /// How the client reached the authenticator (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transports: Option<Vec<String>>,
    /// Browsers' convenience copy of the authenticator data (ignored: the
    /// attestation object holds the signed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_data: Option<String>,
    /// Browsers' convenience copy of the public key, SPKI (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Browsers' convenience copy of the key's algorithm (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_algorithm: Option<i64>,
}

/// An assertion: `PublicKeyCredential` with an
/// `AuthenticatorAssertionResponse`, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssertionResponse {
    /// The credential id, base64url (the same bytes as `rawId`).
    pub id: String,
    /// The credential id, base64url.
    pub raw_id: String,
    /// The authenticator's answer.
    pub response: AuthenticatorAssertion,
    /// `public-key`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `platform` or `cross-platform` (browsers; ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    /// Client extension outputs (browsers' `toJSON()`; ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_extension_results: Option<serde_json::Value>,
    /// Client extension outputs (webauthn-rs' name; ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
}

/// `AuthenticatorAssertionResponse` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthenticatorAssertion {
    /// The client data the authenticator signed over, base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// The authenticator data, base64url.
    pub authenticator_data: String,
    /// The signature over authenticator data ‖ SHA-256(clientDataJSON),
    /// base64url.
    pub signature: String,
    /// The user handle of a discoverable credential (ignored: Signet's
    /// credentials are named by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<String>,
}
