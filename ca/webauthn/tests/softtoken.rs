//! Registration and assertion with webauthn-authenticator-rs' in-process
//! software token as the client and authenticator, verified by this
//! crate: the options go out as our JSON (read by webauthn-rs' client
//! types), the responses come back as the JSON webauthn-rs serialises.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::Encode;
use signet_webauthn::wire::{AssertionResponse, RegistrationResponse};
use signet_webauthn::{
    creation_options, request_options, verify_assertion, verify_registration, AttestationTrust,
    RelyingParty, UserEntity, UserVerification, WebauthnError,
};
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const ORIGIN: &str = "https://localhost:8443";

fn rp(uv: UserVerification) -> RelyingParty {
    RelyingParty::new("localhost", "Signet", &[ORIGIN], uv).unwrap()
}

fn user() -> UserEntity {
    UserEntity {
        id: b"user-alice".to_vec(),
        name: "alice".into(),
        display_name: "Alice".into(),
    }
}

fn challenge(n: u8) -> [u8; 32] {
    [n; 32]
}

/// A soft token and a trust store that trusts its attestation CA.
fn token(uv: bool) -> (SoftToken, AttestationTrust) {
    let (token, ca) = SoftToken::new(uv).unwrap();
    let mut trust = AttestationTrust::default();
    trust.add_root_der(&ca.to_der().unwrap()).unwrap();
    (token, trust)
}

fn register(
    token: &mut SoftToken,
    rp: &RelyingParty,
    chal: &[u8; 32],
) -> (RegistrationResponse, serde_json::Value) {
    let options = creation_options(rp, &user(), chal, &[]);
    let ccr: CreationChallengeResponse =
        serde_json::from_value(serde_json::to_value(&options).unwrap())
            .expect("webauthn-rs reads our creation options");
    let reg = token
        .do_registration(Url::parse(ORIGIN).unwrap(), ccr)
        .unwrap();
    let json = serde_json::to_value(&reg).unwrap();
    let parsed: RegistrationResponse = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("our types read webauthn-rs' registration JSON: {e}\n{json:#}"));
    (parsed, json)
}

fn authenticate(
    token: &mut SoftToken,
    rp: &RelyingParty,
    chal: &[u8; 32],
    allow: &[signet_webauthn::CredentialId],
) -> (AssertionResponse, serde_json::Value) {
    let options = request_options(rp, chal, allow);
    let rcr: RequestChallengeResponse =
        serde_json::from_value(serde_json::to_value(&options).unwrap())
            .expect("webauthn-rs reads our request options");
    let assertion = token
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    let json = serde_json::to_value(&assertion).unwrap();
    let parsed: AssertionResponse = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("our types read webauthn-rs' assertion JSON: {e}\n{json:#}"));
    (parsed, json)
}

#[test]
fn register_then_authenticate() {
    let rp = rp(UserVerification::Preferred);
    let (mut token, trust) = token(true);
    let (reg, json) = register(&mut token, &rp, &challenge(1));
    eprintln!("registration JSON: {json:#}");
    let mut cred = verify_registration(&rp, &trust, &challenge(1), &reg).unwrap();
    assert_eq!(cred.attestation_format, "packed");
    assert_eq!(cred.algorithm, signet_webauthn::ES256);

    for round in 2..5u8 {
        let (assertion, json) = authenticate(
            &mut token,
            &rp,
            &challenge(round),
            std::slice::from_ref(&cred.id),
        );
        if round == 2 {
            eprintln!("assertion JSON: {json:#}");
        }
        let verified = verify_assertion(&rp, &challenge(round), &cred, &assertion, false).unwrap();
        assert!(verified.sign_count > cred.sign_count);
        cred.sign_count = verified.sign_count;

        // The same assertion again is a replay: its challenge is spent
        // (the CA issues a fresh one) and its counter is not new.
        assert_eq!(
            verify_assertion(&rp, &challenge(round + 100), &cred, &assertion, false),
            Err(WebauthnError::ChallengeMismatch)
        );
        assert!(matches!(
            verify_assertion(&rp, &challenge(round), &cred, &assertion, false),
            Err(WebauthnError::CounterRegression { .. })
        ));
    }
}

#[test]
fn user_verification_required() {
    let rp = rp(UserVerification::Required);
    let (mut token, trust) = token(true);
    let (reg, _) = register(&mut token, &rp, &challenge(1));
    let cred = verify_registration(&rp, &trust, &challenge(1), &reg).unwrap();
    assert!(cred.user_verified_at_registration);
    let (assertion, _) = authenticate(
        &mut token,
        &rp,
        &challenge(2),
        std::slice::from_ref(&cred.id),
    );
    let verified = verify_assertion(&rp, &challenge(2), &cred, &assertion, true).unwrap();
    assert!(verified.user_verified);
}

#[test]
fn a_token_without_user_verification_is_refused_when_it_is_required() {
    let preferred = rp(UserVerification::Preferred);
    let (mut token, trust) = token(false);
    let (reg, _) = register(&mut token, &preferred, &challenge(1));
    let cred = verify_registration(&preferred, &trust, &challenge(1), &reg).unwrap();
    assert!(!cred.user_verified_at_registration);
    // The relying party that requires UV refuses the same registration.
    assert_eq!(
        verify_registration(&rp(UserVerification::Required), &trust, &challenge(1), &reg),
        Err(WebauthnError::UserNotVerified)
    );
    let (assertion, _) = authenticate(
        &mut token,
        &preferred,
        &challenge(2),
        std::slice::from_ref(&cred.id),
    );
    assert_eq!(
        verify_assertion(&preferred, &challenge(2), &cred, &assertion, true),
        Err(WebauthnError::UserNotVerified)
    );
    let verified = verify_assertion(&preferred, &challenge(2), &cred, &assertion, false).unwrap();
    assert!(!verified.user_verified);
}

#[test]
fn softtoken_attestation_to_another_root_is_untrusted() {
    let rp = rp(UserVerification::Preferred);
    let (mut token, _) = token(true);
    let (_, other_trust) = self::token(true);
    let (reg, _) = register(&mut token, &rp, &challenge(1));
    assert_eq!(
        verify_registration(&rp, &other_trust, &challenge(1), &reg),
        Err(WebauthnError::AttestationUntrusted)
    );
    assert_eq!(
        verify_registration(&rp, &AttestationTrust::default(), &challenge(1), &reg),
        Err(WebauthnError::AttestationUntrusted)
    );
}
