//! The two ceremonies' relying-party steps: registration (WebAuthn §7.1)
//! and authentication (§7.2).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::attestation;
use crate::auth_data::{self, AuthData, MAX_AUTH_DATA, MAX_CREDENTIAL_ID};
use crate::client_data::{self, MAX_CLIENT_DATA};
use crate::cose::{self, CoseKey};
use crate::credential::{StoredCredential, VerifiedAssertion};
use crate::error::{Result, WebauthnError};
use crate::rp::{RelyingParty, UserVerification};
use crate::trust::AttestationTrust;
use crate::wire::{AssertionResponse, RegistrationResponse, PUBLIC_KEY};

/// Largest assertion signature (an RSA-8192 signature is 1024 bytes).
const MAX_SIGNATURE: usize = 1024;
/// Largest user handle (WebAuthn: 64 bytes).
const MAX_USER_HANDLE: usize = 64;

/// Decodes the base64url `text` of `field`, refusing more than `max`
/// decoded bytes before decoding anything.
fn decode(text: &str, field: &'static str, max: usize) -> Result<Vec<u8>> {
    let too_large = WebauthnError::FieldTooLarge { field, max };
    if text.len() > max.div_ceil(3) * 4 {
        return Err(too_large);
    }
    let bytes = crate::b64::decode(text).ok_or(WebauthnError::InvalidBase64 { field })?;
    if bytes.len() > max {
        return Err(too_large);
    }
    Ok(bytes)
}

/// The credential id of a response: `rawId`, which `id` must repeat.
fn credential_id(id: &str, raw_id: &str, type_: &str) -> Result<Vec<u8>> {
    if type_ != PUBLIC_KEY {
        return Err(WebauthnError::WrongCredentialType);
    }
    let raw = match decode(raw_id, "rawId", MAX_CREDENTIAL_ID) {
        Err(WebauthnError::FieldTooLarge { .. }) => return Err(WebauthnError::CredentialIdTooLong),
        other => other?,
    };
    let named = match decode(id, "id", MAX_CREDENTIAL_ID) {
        Err(WebauthnError::FieldTooLarge { .. }) => return Err(WebauthnError::CredentialIdTooLong),
        other => other?,
    };
    if raw != named {
        return Err(WebauthnError::CredentialIdMismatch);
    }
    if raw.is_empty() {
        return Err(WebauthnError::InvalidAuthenticatorData(
            "the credential id is empty",
        ));
    }
    Ok(raw)
}

/// The checks both ceremonies make on the authenticator data.
fn check_auth_data(rp: &RelyingParty, data: &AuthData<'_>, require_uv: bool) -> Result<()> {
    let expected: [u8; 32] = Sha256::digest(rp.rp_id.as_bytes()).into();
    if !bool::from(data.rp_id_hash.ct_eq(&expected)) {
        return Err(WebauthnError::RpIdMismatch);
    }
    if !data.user_present() {
        return Err(WebauthnError::UserNotPresent);
    }
    if require_uv && !data.user_verified() {
        return Err(WebauthnError::UserNotVerified);
    }
    Ok(())
}

/// Checks a registration (WebAuthn §7.1) against the challenge the CA
/// issued and the attestation trust store, and returns what to store.
///
/// The credential id is the one in the signed authenticator data; `id`
/// and `rawId` must repeat it. One client quirk is tolerated because the
/// signed data makes it harmless: webauthn-authenticator-rs' CTAP2
/// clients (and Firefox's CTAP2 path in 2023) send `id` and `rawId`
/// empty, and the former writes the attestation format into `type`.
pub fn verify_registration(
    rp: &RelyingParty,
    trust: &AttestationTrust,
    challenge: &[u8; 32],
    response: &RegistrationResponse,
) -> Result<StoredCredential> {
    let ids_omitted = response.id.is_empty() && response.raw_id.is_empty();
    let id = if ids_omitted {
        None
    } else {
        Some(credential_id(
            &response.id,
            &response.raw_id,
            &response.type_,
        )?)
    };
    let client_data_json = decode(
        &response.response.client_data_json,
        "clientDataJSON",
        MAX_CLIENT_DATA,
    )?;
    let object_bytes = decode(
        &response.response.attestation_object,
        "attestationObject",
        attestation::MAX_ATTESTATION_OBJECT,
    )?;
    client_data::check(&client_data_json, "webauthn.create", challenge, rp)?;
    let client_data_hash: [u8; 32] = Sha256::digest(&client_data_json).into();

    let object = attestation::parse_object(&object_bytes)?;
    let data = auth_data::parse(&object.auth_data)?;
    check_auth_data(
        rp,
        &data,
        rp.user_verification == UserVerification::Required,
    )?;
    let credential = data
        .attested
        .as_ref()
        .ok_or(WebauthnError::AttestedCredentialDataMissing)?;
    match &id {
        Some(id) if credential.credential_id != id.as_slice() => {
            return Err(WebauthnError::CredentialIdMismatch);
        }
        Some(_) => {}
        None if response.type_ != PUBLIC_KEY && response.type_ != object.fmt => {
            return Err(WebauthnError::WrongCredentialType);
        }
        None => {}
    }
    if !cose::OFFERED.contains(&credential.public_key.alg) {
        return Err(WebauthnError::AlgorithmNotAllowed(
            credential.public_key.alg,
        ));
    }
    attestation::verify(
        &object,
        data.rp_id_hash,
        credential,
        &client_data_hash,
        trust,
    )?;

    Ok(StoredCredential {
        id: crate::CredentialId(credential.credential_id.to_vec()),
        public_key_cose: credential.public_key_cose.to_vec(),
        algorithm: credential.public_key.alg,
        sign_count: data.sign_count,
        aaguid: credential.aaguid,
        attestation_format: object.fmt.clone(),
        user_verified_at_registration: data.user_verified(),
    })
}

/// Checks an assertion (WebAuthn §7.2) by `credential` over the challenge
/// the CA issued. User verification is required when `require_uv` (the
/// role demands it) or when the relying party requires it everywhere.
///
/// On success, store [`VerifiedAssertion::sign_count`] as the credential's
/// new counter. A [`WebauthnError::CounterRegression`] means two devices
/// may hold the same key: report it as a possible clone.
pub fn verify_assertion(
    rp: &RelyingParty,
    challenge: &[u8; 32],
    credential: &StoredCredential,
    response: &AssertionResponse,
    require_uv: bool,
) -> Result<VerifiedAssertion> {
    let id = credential_id(&response.id, &response.raw_id, &response.type_)?;
    if id != credential.id.0 {
        return Err(WebauthnError::CredentialMismatch);
    }
    let r = &response.response;
    let client_data_json = decode(&r.client_data_json, "clientDataJSON", MAX_CLIENT_DATA)?;
    let auth_data_bytes = decode(&r.authenticator_data, "authenticatorData", MAX_AUTH_DATA)?;
    let signature = decode(&r.signature, "signature", MAX_SIGNATURE)?;
    if let Some(handle) = &r.user_handle {
        decode(handle, "userHandle", MAX_USER_HANDLE)?;
    }
    client_data::check(&client_data_json, "webauthn.get", challenge, rp)?;

    let data = auth_data::parse(&auth_data_bytes)?;
    if data.attested.is_some() {
        return Err(WebauthnError::InvalidAuthenticatorData(
            "an assertion carries attested credential data",
        ));
    }
    check_auth_data(
        rp,
        &data,
        require_uv || rp.user_verification == UserVerification::Required,
    )?;

    let key = CoseKey::from_bytes(&credential.public_key_cose)?;
    if key.alg != credential.algorithm {
        return Err(WebauthnError::InvalidCoseKey);
    }
    let mut signed = Vec::with_capacity(auth_data_bytes.len() + 32);
    signed.extend_from_slice(&auth_data_bytes);
    signed.extend_from_slice(&Sha256::digest(&client_data_json));
    if !key.verify(&signed, &signature) {
        return Err(WebauthnError::SignatureInvalid);
    }

    // Only a signed counter says anything: checked after the signature.
    let (stored, received) = (credential.sign_count, data.sign_count);
    if (stored != 0 || received != 0) && received <= stored {
        return Err(WebauthnError::CounterRegression { stored, received });
    }
    Ok(VerifiedAssertion {
        sign_count: received,
        user_verified: data.user_verified(),
    })
}
