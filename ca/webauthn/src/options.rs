//! The options the CA hands the browser or client to start a ceremony.

use crate::cose::{EDDSA, ES256};
use crate::credential::CredentialId;
use crate::rp::{RelyingParty, UserVerification};
use crate::wire::{
    AuthenticatorSelection, CreationOptions, CredentialDescriptor, PubKeyCredParam,
    PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions, RequestOptions,
    RpEntity, UserEntity, PUBLIC_KEY,
};

/// How long clients wait for the user (milliseconds); the CA's own
/// challenge expiry is what counts.
pub const TIMEOUT_MS: u32 = 60_000;

/// The WebAuthn Level 3 hint for a roaming hardware authenticator.
const SECURITY_KEY: &str = "security-key";

fn descriptors(ids: &[CredentialId]) -> Vec<CredentialDescriptor> {
    ids.iter()
        .map(|id| CredentialDescriptor {
            type_: PUBLIC_KEY.into(),
            id: id.0.clone(),
            transports: None,
        })
        .collect()
}

/// Registration options for `user` over `challenge`: a security key
/// (cross-platform, hint `security-key`, no resident key), direct
/// attestation, ES256 or EdDSA, user verification as the relying party
/// asks, 60 s; `exclude` lists the user's existing credentials so the
/// same key is not registered twice.
pub fn creation_options(
    rp: &RelyingParty,
    user: &UserEntity,
    challenge: &[u8; 32],
    exclude: &[CredentialId],
) -> CreationOptions {
    CreationOptions {
        public_key: PublicKeyCredentialCreationOptions {
            rp: RpEntity {
                id: rp.rp_id.clone(),
                name: rp.rp_name.clone(),
            },
            user: user.clone(),
            challenge: challenge.to_vec(),
            pub_key_cred_params: [ES256, EDDSA]
                .into_iter()
                .map(|alg| PubKeyCredParam {
                    type_: PUBLIC_KEY.into(),
                    alg,
                })
                .collect(),
            timeout: TIMEOUT_MS,
            exclude_credentials: descriptors(exclude),
            authenticator_selection: AuthenticatorSelection {
                authenticator_attachment: Some("cross-platform".into()),
                resident_key: "discouraged".into(),
                require_resident_key: false,
                user_verification: rp.user_verification,
            },
            attestation: "direct".into(),
            hints: vec![SECURITY_KEY.into()],
        },
    }
}

/// Assertion options over `challenge` for the credentials in `allow`,
/// with the relying party's user verification.
pub fn request_options(
    rp: &RelyingParty,
    challenge: &[u8; 32],
    allow: &[CredentialId],
) -> RequestOptions {
    request_options_with_uv(rp, challenge, allow, rp.user_verification)
}

/// As [`request_options`], asking for `user_verification` (e.g.
/// `Required` when the user's role demands a PIN for this issuance).
pub fn request_options_with_uv(
    rp: &RelyingParty,
    challenge: &[u8; 32],
    allow: &[CredentialId],
    user_verification: UserVerification,
) -> RequestOptions {
    RequestOptions {
        public_key: PublicKeyCredentialRequestOptions {
            challenge: challenge.to_vec(),
            timeout: TIMEOUT_MS,
            rp_id: rp.rp_id.clone(),
            allow_credentials: descriptors(allow),
            user_verification,
            hints: vec![SECURITY_KEY.into()],
        },
    }
}
