//! Cross-check with webauthn-rs as an independent relying party: a
//! ceremony webauthn-rs starts (its own random challenge) and accepts is
//! accepted by this crate too, given the same challenge, origin and trust.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::Encode;
use signet_webauthn::wire::{AssertionResponse, RegistrationResponse};
use signet_webauthn::{
    verify_assertion, verify_registration, AttestationTrust, RelyingParty, UserVerification,
};
use webauthn_authenticator_rs::softtoken::{SoftToken, AAGUID};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::*;

const ORIGIN: &str = "https://localhost:8443";

/// The challenge inside options webauthn-rs made.
fn challenge_of(options: &impl serde::Serialize) -> [u8; 32] {
    let json = serde_json::to_value(options).unwrap();
    let text = json["publicKey"]["challenge"].as_str().unwrap();
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
        .try_into()
        .expect("a 32-byte challenge")
}

#[test]
fn ceremonies_webauthn_rs_accepts_are_accepted() {
    let origin = Url::parse(ORIGIN).unwrap();
    let webauthn = WebauthnBuilder::new("localhost", &origin)
        .unwrap()
        .rp_name("Signet")
        .build()
        .unwrap();
    let (mut token, ca) = SoftToken::new(true).unwrap();
    let ca_der = ca.to_der().unwrap();
    let mut cas = AttestationCaListBuilder::new();
    cas.insert_device_der(&ca_der, AAGUID, "soft token".into(), Default::default())
        .unwrap();

    let ours =
        RelyingParty::new("localhost", "Signet", &[ORIGIN], UserVerification::Required).unwrap();
    let mut trust = AttestationTrust::default();
    trust.add_root_der(&ca_der).unwrap();

    let (ccr, state) = webauthn
        .start_attested_passkey_registration(
            Uuid::new_v4(),
            "alice",
            "Alice",
            None,
            cas.build(),
            None,
        )
        .unwrap();
    let challenge = challenge_of(&ccr);
    let reg = token.do_registration(origin.clone(), ccr).unwrap();
    let passkey = webauthn
        .finish_attested_passkey_registration(&reg, &state)
        .unwrap();
    let reg: RegistrationResponse =
        serde_json::from_value(serde_json::to_value(&reg).unwrap()).unwrap();
    let mut cred = verify_registration(&ours, &trust, &challenge, &reg).unwrap();
    assert_eq!(cred.aaguid, *AAGUID.as_bytes());

    for _ in 0..2 {
        let (rcr, state) = webauthn
            .start_attested_passkey_authentication(std::slice::from_ref(&passkey))
            .unwrap();
        let challenge = challenge_of(&rcr);
        let assertion = token.do_authentication(origin.clone(), rcr).unwrap();
        let result = webauthn
            .finish_attested_passkey_authentication(&assertion, &state)
            .unwrap();
        let assertion: AssertionResponse =
            serde_json::from_value(serde_json::to_value(&assertion).unwrap()).unwrap();
        let verified = verify_assertion(&ours, &challenge, &cred, &assertion, true).unwrap();
        assert_eq!(verified.sign_count, result.counter());
        assert_eq!(verified.user_verified, result.user_verified());
        cred.sign_count = verified.sign_count;
    }
}
