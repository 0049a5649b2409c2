//! `POST /v1/enroll/begin` and `/v1/enroll/finish`: registering a security
//! key with a single-use invite, from the enrollment page or `signet enroll`.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use signet_api::enroll::{
    EnrollBeginRequest, EnrollBeginResponse, EnrollFinishRequest, EnrollFinishResponse,
};
use signet_api::ErrorCode;
use signet_log::entry::{Actor, Base64Bytes, Change, Entry, EntryKind, Sha256Hex};
use signet_webauthn::wire::UserEntity;
use signet_webauthn::CredentialId;

use super::ceremony::{EnrollCeremony, Pending, CEREMONY_TTL};
use super::issue::{webauthn_code, webauthn_reason};
use super::{now, Refusal, Service};

const BEGIN: &str = "enroll_begin";
const FINISH: &str = "enroll_finish";

/// One message for every bad invite: unknown, spent and expired read the
/// same, so the endpoint tells nobody which tokens once existed.
fn invite_invalid() -> Refusal {
    Refusal::new(
        ErrorCode::InviteInvalid,
        "invite_invalid",
        "this invite link is unknown, already used or expired; ask an administrator for a new one",
    )
}

/// The SHA-256 of a well-formed token (43 characters of base64url, 32 bytes).
pub(super) fn token_sha256(token: &str) -> Option<[u8; 32]> {
    if token.len() != 43 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    (bytes.len() == 32).then(|| Sha256::digest(token.as_bytes()).into())
}

/// The WebAuthn user handle of a user: stable, opaque, not the name.
fn user_handle(user: &str) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(b"signet user handle\0");
    hash.update(user.as_bytes());
    hash.finalize()[..16].to_vec()
}

impl Service {
    /// Starts registering a security key for the invite's user.
    pub fn enroll_begin(
        &self,
        request: &EnrollBeginRequest,
        source: Option<IpAddr>,
    ) -> Result<EnrollBeginResponse, Refusal> {
        if let Some(ip) = source {
            if !self.limits.per_source.allow(&ip) {
                return Err(self.refuse(
                    BEGIN,
                    "",
                    Refusal::new(
                        ErrorCode::RateLimited,
                        "rate_limited",
                        "too many requests; wait a minute and try again",
                    ),
                ));
            }
        }
        let token_sha256 =
            token_sha256(&request.token).ok_or_else(|| self.refuse(BEGIN, "", invite_invalid()))?;
        self.fresh().map_err(|r| self.refuse(BEGIN, "", r))?;
        let directory = self.directory();
        let invite = directory
            .invite(&token_sha256)
            .filter(|i| !i.spent && now() < i.expires)
            .cloned()
            .ok_or_else(|| self.refuse(BEGIN, "", invite_invalid()))?;
        let exclude: Vec<CredentialId> = directory
            .account(&invite.user)
            .map(|a| a.credentials.iter().map(|c| c.stored.id.clone()).collect())
            .unwrap_or_default();
        drop(directory);
        let mut challenge = [0u8; 32];
        getrandom::fill(&mut challenge).map_err(Refusal::internal)?;
        let options = signet_webauthn::creation_options(
            &self.rp,
            &UserEntity {
                id: user_handle(&invite.user),
                name: invite.user.clone(),
                display_name: invite.user.clone(),
            },
            &challenge,
            &exclude,
        );
        let ceremony = self
            .ceremonies
            .start(Pending::Enroll(EnrollCeremony {
                user: invite.user.clone(),
                token_sha256,
                challenge,
            }))
            .map_err(|e| e.refusal("enrollments"))?;
        Ok(EnrollBeginResponse {
            ceremony,
            user: invite.user,
            expires_at: now() + CEREMONY_TTL.as_secs(),
            webauthn: options,
        })
    }

    /// Verifies the new credential and its attestation, logs the
    /// enrollment (which spends the invite), and only then registers it.
    pub fn enroll_finish(
        &self,
        request: &EnrollFinishRequest,
        source: Option<IpAddr>,
    ) -> Result<EnrollFinishResponse, Refusal> {
        let Some(Pending::Enroll(ceremony)) = self
            .ceremonies
            .take(&request.ceremony)
            .map_err(|e| self.refuse(FINISH, "", Refusal::from(e)))?
        else {
            return Err(self.refuse(
                FINISH,
                "",
                Refusal::new(
                    ErrorCode::CeremonyExpired,
                    "ceremony_expired",
                    "this enrollment is unknown, was already used, or took longer than 60 s; open the link again",
                ),
            ));
        };
        let user = ceremony.user.clone();
        self.rate_limit(FINISH, &user, source)?;
        if token_sha256(&request.token) != Some(ceremony.token_sha256) {
            return Err(self.refuse(FINISH, &user, invite_invalid()));
        }
        let guard = self.user_lock(&user);
        let _serialized = crate::store::lock(&guard);
        self.enroll_checked(&ceremony, request)
            .map_err(|r| self.refuse(FINISH, &user, r))
    }

    fn enroll_checked(
        &self,
        ceremony: &EnrollCeremony,
        request: &EnrollFinishRequest,
    ) -> Result<EnrollFinishResponse, Refusal> {
        self.fresh()?;
        let directory = self.directory();
        if directory
            .invite(&ceremony.token_sha256)
            .is_none_or(|i| i.spent || now() >= i.expires)
        {
            return Err(invite_invalid());
        }
        drop(directory);
        let stored = signet_webauthn::verify_registration(
            &self.rp,
            &self.fido_trust,
            &ceremony.challenge,
            &request.credential,
        )
        .map_err(|e| {
            Refusal::new(
                webauthn_code(&e),
                webauthn_reason(&e),
                format!("the security key's registration was refused: {e}"),
            )
        })?;
        if self.directory().owner_of(&stored.id).is_some() {
            return Err(Refusal::new(
                ErrorCode::WebauthnRefused,
                "credential_exists",
                "this security key credential is already enrolled",
            ));
        }
        let entry = Entry {
            kind: EntryKind::Enrollment,
            time: now(),
            actor: Actor::User {
                name: ceremony.user.clone(),
                webauthn_credential_id: Some(Base64Bytes(stored.id.0.clone())),
                piv_device: None,
                webauthn_sign_count: None,
            },
            request_hash: None,
            subject: Some(ceremony.user.clone()),
            principals: Vec::new(),
            roles: Vec::new(),
            certificate: None,
            change: Some(Change::Credential {
                id: Base64Bytes(stored.id.0.clone()),
                public_key_cose: Base64Bytes(stored.public_key_cose.clone()),
                algorithm: stored.algorithm,
                aaguid: Base64Bytes(stored.aaguid.to_vec()),
                attestation_format: stored.attestation_format.clone(),
                sign_count: u64::from(stored.sign_count),
                invite_sha256: Sha256Hex(ceremony.token_sha256),
            }),
        };
        let appended = self.record(&entry).map_err(Refusal::from)?;
        tracing::info!(
            event = "enrolled",
            user = %ceremony.user,
            credential = %stored.id,
            aaguid = %signet_webauthn::aaguid_to_string(&stored.aaguid),
            attestation = %stored.attestation_format,
            log_index = appended.index,
            "security key enrolled"
        );
        Ok(EnrollFinishResponse {
            user: ceremony.user.clone(),
            credential_id: stored.id.to_base64url(),
            log_index: appended.index,
        })
    }
}
