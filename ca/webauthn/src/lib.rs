//! WebAuthn relying-party checks for security keys: registration with
//! attestation, and assertions over a challenge the CA chooses.
//!
//! # Why Signet verifies WebAuthn itself
//!
//! Signet's CA issues a certificate only after a WebAuthn assertion whose
//! challenge *commits to the certificate request*: the challenge is a
//! hash the CA computes from the request and a server nonce, and the
//! client can recompute it before the user touches the key, so a touch
//! approves exactly one request. webauthn-rs' safe API always draws its
//! own random challenge and cannot do this. This crate is written from
//! the W3C Web Authentication specification (Level 2, with Level 3's
//! additions where they matter): §7.1 "Registering a New Credential",
//! §7.2 "Verifying an Authentication Assertion", §8.2 "Packed Attestation
//! Statement Format" (with §8.2.1's certificate requirements), §8.6
//! "FIDO U2F Attestation Statement Format" and §8.7 "None Attestation
//! Statement Format". It does no I/O and keeps no state: the CA chooses
//! challenges, stores credentials and counters, and calls
//! [`verify_registration`] / [`verify_assertion`].
//!
//! # What is checked
//!
//! - Client data: `type` (`webauthn.create` / `webauthn.get`), the
//!   challenge (constant time), the origin against
//!   [`RelyingParty::origins`], `crossOrigin` not true; `tokenBinding` is
//!   ignored.
//! - Authenticator data: rpIdHash = SHA-256(rp_id), user present, user
//!   verified when required, attested credential data at registration
//!   (credential id ≤ 1023 bytes, a valid COSE key of an offered
//!   algorithm — ES256 or EdDSA), extension data a CBOR map, no trailing
//!   bytes.
//! - Attestation ([`AttestationTrust`]): `packed` with `x5c` (the
//!   statement signature by the leaf, §8.2.1's leaf requirements, and the
//!   chain to a configured root verified with ring, or the leaf's key
//!   pinned by SPKI hash), `fido-u2f` (the same trust rules), and —
//!   only with the explicit `allow_none` opt-in — `none` and packed self
//!   attestation. Certificate validity periods are not checked (see
//!   `x509.rs`).
//! - Assertion: the credential id is the stored one, the signature over
//!   authenticatorData ‖ SHA-256(clientDataJSON) verifies with the stored
//!   key, and the signature counter increases (unless the key keeps no
//!   counter: stored and received both 0); a regression is
//!   [`WebauthnError::CounterRegression`], a possibly cloned key.
//! - Sizes: clientDataJSON and authenticator data ≤ 4 KiB, the
//!   attestation object ≤ 16 KiB, signatures ≤ 1 KiB, credential ids ≤
//!   1023 bytes — checked on the base64 text before decoding. Malformed
//!   base64, JSON, CBOR, COSE or DER is an error, never a panic.
//!
//! # Wire format
//!
//! See [`wire`]. Options are WebAuthn's JSON encoding of
//! `CredentialCreationOptions` / `CredentialRequestOptions`
//! (`{"publicKey": {…}}`, binary values base64url without padding), which
//! webauthn-rs' `CreationChallengeResponse` / `RequestChallengeResponse`
//! also read. Responses are `PublicKeyCredential` in JSON — what
//! `PublicKeyCredential.toJSON()` produces, what a page that base64url-
//! encodes the response's `ArrayBuffer`s produces, and what webauthn-rs'
//! `RegisterPublicKeyCredential` / `PublicKeyCredential` serialise to:
//!
//! ```json
//! {"id": "…", "rawId": "…", "type": "public-key",
//!  "response": {"clientDataJSON": "…", "attestationObject": "…", "transports": ["usb"]},
//!  "clientExtensionResults": {}}
//! {"id": "…", "rawId": "…", "type": "public-key",
//!  "response": {"clientDataJSON": "…", "authenticatorData": "…", "signature": "…", "userHandle": null},
//!  "clientExtensionResults": {}}
//! ```
//!
//! Binary values in responses are read padded or not.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attestation;
mod auth_data;
mod b64;
mod cbor;
mod ceremony;
mod client_data;
mod cose;
mod credential;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod options;
mod rp;
mod trust;
pub mod wire;
mod x509;

pub use ceremony::{verify_assertion, verify_registration};
pub use cose::{EDDSA, ES256, ES384, RS256};
pub use credential::{aaguid_to_string, CredentialId, StoredCredential, VerifiedAssertion};
pub use error::{Result, WebauthnError};
pub use options::{creation_options, request_options, request_options_with_uv, TIMEOUT_MS};
pub use rp::{RelyingParty, UserVerification};
pub use trust::{spki_sha256_of_certificate, AttestationTrust};
pub use wire::UserEntity;
