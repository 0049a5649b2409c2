//! `POST /v1/certs/begin` and `/v1/certs/finish`: a certificate for exactly
//! the requested, attested key, after a touch that signed over the request.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use signet_api::certs::{
    self, BeginRequest, BeginResponse, Device, FinishRequest, FinishResponse, KeyPolicyRequired,
    SshCertificate, X509Certificate,
};
use signet_api::log::LogProof;
use signet_api::{ErrorCode, B64};
use signet_hsm::PublicKey;
use signet_log::entry::{Actor, Base64Bytes, PinPolicy, PivDevice, TouchPolicy};
use signet_policy::{AccessRequest, HardwareKey};
use signet_webauthn::{CredentialId, UserVerification, WebauthnError};

use super::ceremony::{CertCeremony, Pending, CEREMONY_TTL};
use super::{now, Refusal, Service};
use crate::authority::{CertKind, Issued, IssuedCert, TouchRequest};
use crate::request::{checked_name, checked_principals, SubjectKey};

const BEGIN: &str = "certs_begin";
const FINISH: &str = "certs_finish";
/// The most certificates an attestation chain may hold.
const MAX_CHAIN: usize = 5;
/// The largest certificate or key accepted in a request.
const MAX_DER: usize = 8 * 1024;

fn invalid(field: &str, why: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        ErrorCode::InvalidRequest,
        "invalid_request",
        format!("{field}: {why}"),
    )
}

fn not_allowed(message: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::NotAllowed, "not_allowed", message)
}

/// What a begin request says, once parsed.
struct Parsed {
    user: String,
    key: PublicKey,
    subject_key: SubjectKey,
    chain: Vec<Vec<u8>>,
    principals: Vec<String>,
    ttl: Duration,
}

fn parse(request: &BeginRequest) -> Result<Parsed, Refusal> {
    let user = checked_name(&request.user, "user").map_err(|e| invalid("user", e))?;
    if request.public_key.0.len() > MAX_DER {
        return Err(invalid("public_key", "too large for a public key"));
    }
    let key = PublicKey::from_spki_der(&request.public_key.0).map_err(|e| {
        invalid(
            "public_key",
            format!("not a DER SubjectPublicKeyInfo ({e})"),
        )
    })?;
    let subject_key =
        SubjectKey::from_public_key(key.clone(), "public_key").map_err(Refusal::from)?;
    if request.attestation.len() < 2 || request.attestation.len() > MAX_CHAIN {
        return Err(invalid(
            "attestation",
            "give the slot's attestation certificate and the device's f9 certificate (and any intermediates), at most 5",
        ));
    }
    if request.attestation.iter().any(|c| c.0.len() > MAX_DER) {
        return Err(invalid("attestation", "a certificate is larger than 8 KiB"));
    }
    let principals =
        checked_principals(&request.principals, "principals").map_err(Refusal::from)?;
    if request.ttl_seconds == 0 || request.ttl_seconds > 100 * 365 * 24 * 3600 {
        return Err(invalid(
            "ttl_seconds",
            "must be at least 1 and at most 100 years",
        ));
    }
    Ok(Parsed {
        user,
        key,
        subject_key,
        chain: request.attestation.iter().map(|c| c.0.clone()).collect(),
        principals,
        ttl: Duration::from_secs(request.ttl_seconds),
    })
}

/// The policy's refusals as the client sees them. An unknown user, a user
/// without roles and a login no role allows read the same, so `begin` is
/// no oracle for which users exist. A key too weak for the roles says what
/// would qualify (`key` is the attested PIN and touch policy), so the
/// client can offer to make such a key.
fn policy_refusal(
    refusal: signet_policy::Refusal,
    principals: &[String],
    key: (PinPolicy, TouchPolicy),
) -> Refusal {
    use signet_policy::Refusal as R;
    match refusal {
        R::HardwareKeyTooWeak { required } => {
            let message = refusal.to_string();
            Refusal::key_policy_too_weak(message, key_policy_required(required, key))
        }
        R::NoSuchUser | R::NoRoles => not_allowed(format!(
            "none of your roles allows the login {:?}; ask for one your roles allow",
            principals.first().map(String::as_str).unwrap_or_default()
        )),
        R::PrincipalNotAllowed(p) => not_allowed(format!(
            "none of your roles allows the login {p:?}; ask for one your roles allow"
        )),
        other => Refusal::new(ErrorCode::NotAllowed, "not_allowed", other.to_string()),
    }
}

/// Every PIN and touch policy a key may have, weakest first (`always`
/// before `cached` for touch: the stricter of the two that satisfy).
const PIN_POLICIES: [PinPolicy; 3] = [PinPolicy::Never, PinPolicy::Once, PinPolicy::Always];
const TOUCH_POLICIES: [TouchPolicy; 3] =
    [TouchPolicy::Never, TouchPolicy::Always, TouchPolicy::Cached];

/// The policies that satisfy `required`, from the policy crate's own rule
/// ([`HardwareKey::satisfied_by`]), so the answer and the decision agree.
fn key_policy_required(required: HardwareKey, key: (PinPolicy, TouchPolicy)) -> KeyPolicyRequired {
    let pins = PIN_POLICIES
        .into_iter()
        .filter(|p| {
            TOUCH_POLICIES
                .iter()
                .any(|t| required.satisfied_by(Some((*p, *t))))
        })
        .collect();
    let touches = TOUCH_POLICIES
        .into_iter()
        .filter(|t| {
            PIN_POLICIES
                .iter()
                .any(|p| required.satisfied_by(Some((*p, *t))))
        })
        .collect();
    KeyPolicyRequired {
        hardware_key: required.as_str().to_owned(),
        pin_policies: pins,
        touch_policies: touches,
        key_pin_policy: key.0,
        key_touch_policy: key.1,
    }
}

fn webauthn_refusal(err: &WebauthnError) -> Refusal {
    match err {
        WebauthnError::CounterRegression { .. } => Refusal::new(
            ErrorCode::CounterRegression,
            "counter_regression",
            format!("{err}; this credential is refused — tell your security team"),
        ),
        other => Refusal::new(
            webauthn_code(other),
            webauthn_reason(other),
            format!("the security key's assertion was refused: {other}"),
        ),
    }
}

/// The wire code of a WebAuthn failure: an encoding that does not parse
/// (base64url, CBOR, client data, authenticator data) is a malformed
/// request, as anywhere else in the body; the rest did not verify.
pub(super) fn webauthn_code(err: &WebauthnError) -> ErrorCode {
    if webauthn_reason(err) == "malformed" {
        ErrorCode::MalformedRequest
    } else {
        ErrorCode::WebauthnRefused
    }
}

/// A short label per WebAuthn failure for logs and metrics.
pub(super) fn webauthn_reason(err: &WebauthnError) -> &'static str {
    use WebauthnError as W;
    match err {
        W::OriginNotAllowed(_) | W::CrossOrigin => "bad_origin",
        W::RpIdMismatch => "bad_rp_id",
        W::ChallengeMismatch => "bad_challenge",
        W::WrongCeremonyType { .. } => "wrong_ceremony_type",
        W::UserNotPresent => "no_user_presence",
        W::UserNotVerified => "no_user_verification",
        W::SignatureInvalid => "bad_signature",
        W::CredentialMismatch | W::CredentialIdMismatch => "other_credential",
        W::CounterRegression { .. } => "counter_regression",
        W::AttestationUntrusted
        | W::AttestationCertificateInvalid(_)
        | W::AttestationSignatureInvalid
        | W::AttestationNotProvided(_)
        | W::UnsupportedAttestationFormat(_) => "attestation_refused",
        W::InvalidBase64 { .. }
        | W::InvalidClientData
        | W::InvalidCbor { .. }
        | W::InvalidAuthenticatorData(_)
        | W::InvalidCoseKey
        | W::FieldTooLarge { .. } => "malformed",
        _ => "bad_assertion",
    }
}

impl Service {
    /// Checks a certificate request and answers with WebAuthn options whose
    /// challenge commits to it.
    pub fn begin_cert(
        &self,
        request: &BeginRequest,
        source: Option<IpAddr>,
    ) -> Result<BeginResponse, Refusal> {
        let user_hint = request.user.chars().take(64).collect::<String>();
        self.rate_limit(BEGIN, &user_hint, source)?;
        self.begin_checked(request)
            .map_err(|r| self.refuse(BEGIN, &user_hint, r))
    }

    fn begin_checked(&self, request: &BeginRequest) -> Result<BeginResponse, Refusal> {
        self.fresh()?;
        let parsed = parse(request)?;
        let attested = signet_attest::verify_piv_attestation(
            &parsed.chain,
            &self.device_roots,
            SystemTime::now(),
        )
        .map_err(|e| {
            Refusal::new(
                ErrorCode::AttestationRefused,
                "attestation_refused",
                format!("the key's PIV attestation was refused: {e}"),
            )
        })?;
        let attested_key =
            PublicKey::from_spki_der(&attested.public_key_spki_der).map_err(|e| {
                Refusal::new(
                    ErrorCode::AttestationRefused,
                    "attestation_refused",
                    format!("the attested key cannot be read: {e}"),
                )
            })?;
        if attested_key != parsed.key {
            return Err(Refusal::new(
                ErrorCode::AttestationRefused,
                "attestation_other_key",
                "the attestation is for another key than public_key",
            ));
        }
        let directory = self.directory();
        let grant = directory
            .policy()
            .authorize(
                &parsed.user,
                &AccessRequest {
                    principals: parsed.principals.clone(),
                    ttl: parsed.ttl,
                    key: Some((attested.pin_policy, attested.touch_policy)),
                },
            )
            .map_err(|r| {
                policy_refusal(
                    r,
                    &parsed.principals,
                    (attested.pin_policy, attested.touch_policy),
                )
            })?;
        if let Some(lock) = directory.lock_of(&parsed.user, now()) {
            return Err(Refusal::new(
                ErrorCode::Locked,
                "locked",
                format!(
                    "this user is locked ({}); an administrator can unlock it",
                    lock.reason
                ),
            ));
        }
        super::nodes::device_lock_refusal(&directory, attested.serial)?;
        let allow: Vec<CredentialId> = directory
            .account(&parsed.user)
            .map(|a| a.credentials.iter().map(|c| c.stored.id.clone()).collect())
            .unwrap_or_default();
        drop(directory);
        if allow.is_empty() {
            return Err(not_allowed(
                "no security key is enrolled for this user; ask an administrator for an invite",
            ));
        }
        let require_uv = self.rp.user_verification == UserVerification::Required
            || grant.required == HardwareKey::TouchAndPin;
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(Refusal::internal)?;
        let request_sha256 = request.sha256();
        let challenge = certs::challenge(&request_sha256, &nonce);
        let options = signet_webauthn::request_options_with_uv(
            &self.rp,
            &challenge,
            &allow,
            if require_uv {
                UserVerification::Required
            } else {
                self.rp.user_verification
            },
        );
        let ceremony = self
            .ceremonies
            .start(Pending::Cert(Box::new(CertCeremony {
                user: parsed.user,
                challenge,
                request_sha256,
                public_key: parsed.subject_key,
                public_key_spki: attested.public_key_spki_der.clone(),
                device: PivDevice {
                    serial: attested.serial,
                    pin_policy: attested.pin_policy,
                    touch_policy: attested.touch_policy,
                },
                principals: parsed.principals,
                ttl: parsed.ttl,
                require_uv,
            })))
            .map_err(|e| e.refusal("sign-ins"))?;
        Ok(BeginResponse {
            ceremony,
            nonce: B64(nonce.to_vec()),
            request_sha256: B64(request_sha256.to_vec()),
            expires_at: now() + CEREMONY_TTL.as_secs(),
            webauthn: options,
        })
    }

    /// Verifies the assertion and issues both certificates.
    pub fn finish_cert(
        &self,
        request: &FinishRequest,
        source: Option<IpAddr>,
    ) -> Result<FinishResponse, Refusal> {
        let expired = || {
            Refusal::new(
                ErrorCode::CeremonyExpired,
                "ceremony_expired",
                "this sign-in is unknown, was already used, or took longer than 60 s; start again",
            )
        };
        let Some(Pending::Cert(ceremony)) = self
            .ceremonies
            .take(&request.ceremony)
            .map_err(|e| self.refuse(FINISH, "", Refusal::from(e)))?
        else {
            return Err(self.refuse(FINISH, "", expired()));
        };
        let user = ceremony.user.clone();
        self.rate_limit(FINISH, &user, source)?;
        let guard = self.user_lock(&user);
        let _serialized = crate::store::lock(&guard);
        self.finish_checked(&ceremony, request)
            .map_err(|r| self.refuse(FINISH, &user, r))
    }

    fn finish_checked(
        &self,
        ceremony: &CertCeremony,
        request: &FinishRequest,
    ) -> Result<FinishResponse, Refusal> {
        self.fresh()?;
        let user = &ceremony.user;
        let directory = self.directory();
        if let Some(lock) = directory.lock_of(user, now()) {
            return Err(Refusal::new(
                ErrorCode::Locked,
                "locked",
                format!(
                    "this user is locked ({}); an administrator can unlock it",
                    lock.reason
                ),
            ));
        }
        super::nodes::device_lock_refusal(&directory, ceremony.device.serial)?;
        let credential_id = CredentialId(
            URL_SAFE_NO_PAD
                .decode(request.assertion.raw_id.trim_end_matches('='))
                .map_err(|_| {
                    Refusal::new(
                        ErrorCode::MalformedRequest,
                        "malformed",
                        "assertion.rawId: not base64url",
                    )
                })?,
        );
        let Some(credential) = directory
            .account(user)
            .and_then(|a| a.credentials.iter().find(|c| c.stored.id == credential_id))
            .cloned()
        else {
            // Not counted towards the lockout: anyone can send an assertion
            // from a key of their own, and must not be able to lock alice
            // out that way. Only her own keys' failed assertions count.
            drop(directory);
            return Err(Refusal::new(
                ErrorCode::WebauthnRefused,
                "unknown_credential",
                "the security key used is not enrolled for this user",
            ));
        };
        let verified = match signet_webauthn::verify_assertion(
            &self.rp,
            &ceremony.challenge,
            &credential.stored,
            &request.assertion,
            ceremony.require_uv,
        ) {
            Ok(verified) => verified,
            Err(err) => {
                drop(directory);
                if matches!(err, WebauthnError::CounterRegression { .. }) {
                    tracing::error!(
                        event = "counter_regression",
                        user = %user,
                        credential = %credential_id,
                        "a security key's signature counter went back: the key may have been cloned"
                    );
                }
                self.assertion_failed(user);
                return Err(webauthn_refusal(&err));
            }
        };
        // The roles may have changed since begin: decide again on the
        // state now.
        let grant = directory
            .policy()
            .authorize(
                user,
                &AccessRequest {
                    principals: ceremony.principals.clone(),
                    ttl: ceremony.ttl,
                    key: Some((ceremony.device.pin_policy, ceremony.device.touch_policy)),
                },
            )
            .map_err(|r| {
                policy_refusal(
                    r,
                    &ceremony.principals,
                    (ceremony.device.pin_policy, ceremony.device.touch_policy),
                )
            })?;
        drop(directory);
        self.failures.reset(user);

        let device = ceremony.device.clone();
        let actor = Actor::User {
            name: user.clone(),
            webauthn_credential_id: Some(Base64Bytes(credential_id.0.clone())),
            piv_device: Some(device.clone()),
            webauthn_sign_count: Some(u64::from(verified.sign_count)),
        };
        let touch = |kind| TouchRequest {
            kind,
            user: user.clone(),
            principals: ceremony.principals.clone(),
            ttl: ceremony.ttl,
            public_key: ceremony.public_key.clone(),
            roles: grant.roles.clone(),
            device: device.clone(),
            request_hash: ceremony.request_sha256,
        };
        let ssh_request = self.authority.approve_touch(touch(CertKind::SshUser))?;
        let x509_request = self.authority.approve_touch(touch(CertKind::X509Client))?;
        // Both certificates are signed, then logged in one append: their
        // entries share a commit, a checkpoint and a high-water mark update
        // (one each per sign-in, not per certificate).
        let started = Instant::now();
        let mut issued = self
            .authority
            .issue_all(vec![ssh_request, x509_request], actor)?
            .into_iter();
        let (Some(ssh), Some(x509), None) = (issued.next(), issued.next(), issued.next()) else {
            return Err(Refusal::internal("expected two certificates"));
        };
        self.observer.sign_seconds(started.elapsed().as_secs_f64());
        {
            let mut directory = self.directory_mut();
            directory.note_use(user, &credential_id, verified.sign_count, now());
        }
        self.observer.issued("ssh-user");
        self.observer.issued("x509-client");
        tracing::info!(
            event = "issued",
            user = %user,
            roles = ?grant.roles,
            principals = ?ceremony.principals,
            device = ceremony.device.serial,
            ssh_serial = %ssh.serial,
            x509_serial = %x509.serial,
            ssh_log_index = ssh.log_index,
            x509_log_index = x509.log_index,
            "certificates issued"
        );
        let (not_before, not_after) = validity_of(&ssh)?;
        Ok(FinishResponse {
            user: user.clone(),
            roles: grant.roles,
            principals: ceremony.principals.clone(),
            not_before,
            not_after,
            device: Device {
                serial: device.serial,
                pin_policy: device.pin_policy.as_str().into(),
                touch_policy: device.touch_policy.as_str().into(),
            },
            ssh: SshCertificate {
                certificate: ssh_line(&ssh)?,
                serial: ssh.serial.clone(),
                log: proof(&ssh),
            },
            x509: X509Certificate {
                certificate_pem: x509_pem(&x509)?,
                serial: x509.serial.clone(),
                log: proof(&x509),
            },
        })
    }

    /// Counts a failed assertion; at the configured number in a row the
    /// user is locked for the lockout period (a logged lock, so it holds
    /// across restarts and the auditor sees it).
    fn assertion_failed(&self, user: &str) {
        let count = self.failures.fail(user);
        if count < self.config.limits.failed_assertions {
            return;
        }
        self.failures.reset(user);
        let until = now() + self.config.limits.lockout.as_secs();
        let reason = format!("{count} failed security key assertions in a row");
        match self.lock_entry(
            user,
            &reason,
            Some(until),
            Actor::User {
                name: user.to_owned(),
                webauthn_credential_id: None,
                piv_device: None,
                webauthn_sign_count: None,
            },
        ) {
            Ok(index) => {
                tracing::warn!(event = "locked", user, reason = %reason, until, log_index = index, "user locked after failed assertions")
            }
            Err(e) => {
                tracing::error!(event = "lock_failed", user, error = %e, "could not record the lock after failed assertions")
            }
        }
    }
}

fn proof(issued: &Issued) -> LogProof {
    LogProof {
        index: issued.log_index,
        entry: B64(issued.entry.clone()),
        checkpoint: issued.checkpoint.note.clone(),
        inclusion_proof: issued
            .inclusion_proof
            .iter()
            .map(|h| B64(h.to_vec()))
            .collect(),
    }
}

fn ssh_line(issued: &Issued) -> Result<String, Refusal> {
    match &issued.certificate {
        IssuedCert::Ssh(cert) => cert.to_openssh().map_err(Refusal::internal),
        IssuedCert::X509(_) => Err(Refusal::internal("expected an SSH certificate")),
    }
}

fn x509_pem(issued: &Issued) -> Result<String, Refusal> {
    match &issued.certificate {
        IssuedCert::X509(der_bytes) => crate::x509::der_to_pem(der_bytes).map_err(Refusal::from),
        IssuedCert::Ssh(_) => Err(Refusal::internal("expected an X.509 certificate")),
    }
}

fn validity_of(issued: &Issued) -> Result<(u64, u64), Refusal> {
    match &issued.certificate {
        IssuedCert::Ssh(cert) => Ok((cert.valid_after(), cert.valid_before())),
        IssuedCert::X509(der_bytes) => {
            let cert = <x509_cert::Certificate as der::Decode>::from_der(der_bytes)
                .map_err(Refusal::internal)?;
            let v = cert.tbs_certificate().validity();
            Ok((
                v.not_before.to_unix_duration().as_secs(),
                v.not_after.to_unix_duration().as_secs(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_qualifies_follows_the_policy_rule() {
        let weak = (PinPolicy::Never, TouchPolicy::Never);
        let both = key_policy_required(HardwareKey::TouchAndPin, weak);
        assert_eq!(both.hardware_key, "touch_and_pin");
        assert_eq!(both.pin_policies, [PinPolicy::Once, PinPolicy::Always]);
        assert_eq!(
            both.touch_policies,
            [TouchPolicy::Always, TouchPolicy::Cached]
        );
        assert_eq!((both.key_pin_policy, both.key_touch_policy), weak);
        let touch = key_policy_required(HardwareKey::Touch, weak);
        assert_eq!(touch.pin_policies, PIN_POLICIES);
        assert_eq!(
            touch.touch_policies,
            [TouchPolicy::Always, TouchPolicy::Cached]
        );
        let attested = key_policy_required(HardwareKey::Attested, weak);
        assert_eq!(attested.pin_policies, PIN_POLICIES);
        assert_eq!(attested.touch_policies, TOUCH_POLICIES);
    }

    #[test]
    fn a_weak_key_refusal_carries_what_qualifies_on_the_wire() {
        let refusal = policy_refusal(
            signet_policy::Refusal::HardwareKeyTooWeak {
                required: HardwareKey::TouchAndPin,
            },
            &["root".into()],
            (PinPolicy::Never, TouchPolicy::Always),
        );
        let api = serde_json::to_value(refusal.to_api()).unwrap();
        assert_eq!(api["code"], "key_policy_too_weak");
        assert_eq!(
            api["key_policy"]["pin_policies"],
            serde_json::json!(["once", "always"])
        );
        assert_eq!(api["key_policy"]["key_pin_policy"], "never");
        assert!(
            api["message"]
                .as_str()
                .unwrap_or_default()
                .contains("hardware_key: touch_and_pin"),
            "{api}"
        );
        // Other refusals carry no key policy.
        let other = policy_refusal(
            signet_policy::Refusal::NoPrincipals,
            &[],
            (PinPolicy::Once, TouchPolicy::Always),
        );
        assert_eq!(other.code, ErrorCode::NotAllowed);
        assert_eq!(other.key_policy, None);
    }
}
