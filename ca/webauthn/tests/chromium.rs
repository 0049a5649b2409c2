//! A registration and an assertion recorded from a real headless
//! Chromium's virtual authenticator (`tests/vectors/chromium/record.py`):
//! the browser parsed our option JSON with its own
//! `parse{Creation,Request}OptionsFromJSON` and answered with
//! `PublicKeyCredential.toJSON()`. Chromium attests with a self-signed
//! "Batch Certificate" over one fixed key, so it is trusted only through
//! that key's SPKI pin — test configuration, never a default.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use ciborium::Value;
use signet_webauthn::wire::{AssertionResponse, RegistrationResponse};
use signet_webauthn::{
    aaguid_to_string, creation_options, request_options, spki_sha256_of_certificate,
    verify_assertion, verify_registration, AttestationTrust, RelyingParty, UserEntity,
    UserVerification, WebauthnError,
};

const REGISTRATION_CHALLENGE: [u8; 32] = [0x11; 32];
const ASSERTION_CHALLENGE: [u8; 32] = [0x22; 32];

/// SHA-256 of the SubjectPublicKeyInfo of Chromium's virtual
/// authenticator's attestation key: what a test configuration pins to
/// trust Chromium's virtual authenticator. The key is the example
/// attestation key of the FIDO U2F specification, whose private half is
/// published ([`U2F_EXAMPLE_PRIVATE_KEY`]): anyone can make attestations
/// this pin accepts, so it belongs in test configuration only.
const CHROMIUM_BATCH_SPKI_SHA256: &str =
    "c98993ec4f77b4997a081a5e5990c7cf6b0ceeb7b27bc7312a3cc351921531a9";

/// The published private scalar of the FIDO U2F specification's example
/// attestation key ("FIDO U2F Raw Message Formats", registration example).
const U2F_EXAMPLE_PRIVATE_KEY: &str =
    "f3fccc0d00d8031954f90864d43c247f4bf5f0665c6b50cc17749a27d1cf7664";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/chromium")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap()
}

fn user() -> UserEntity {
    UserEntity {
        id: b"user-alice".to_vec(),
        name: "alice".into(),
        display_name: "Alice".into(),
    }
}

fn options_rp() -> RelyingParty {
    RelyingParty::new(
        "localhost",
        "Signet",
        &["http://localhost"],
        UserVerification::Preferred,
    )
    .unwrap()
}

#[test]
fn the_recorded_options_are_ours() {
    let creation = serde_json::to_value(creation_options(
        &options_rp(),
        &user(),
        &REGISTRATION_CHALLENGE,
        &[],
    ))
    .unwrap();
    let request =
        serde_json::to_value(request_options(&options_rp(), &ASSERTION_CHALLENGE, &[])).unwrap();
    if std::env::var("SIGNET_WRITE_VECTORS").as_deref() == Ok("1") {
        for (name, value) in [
            ("creation-options.json", &creation),
            ("request-options.json", &request),
        ] {
            let text = serde_json::to_string_pretty(value).unwrap() + "\n";
            std::fs::write(dir().join(name), text).unwrap();
        }
    }
    let recorded: serde_json::Value = serde_json::from_str(&read("creation-options.json")).unwrap();
    assert_eq!(
        recorded, creation,
        "creation options changed: re-record the vectors"
    );
    let recorded: serde_json::Value = serde_json::from_str(&read("request-options.json")).unwrap();
    assert_eq!(
        recorded, request,
        "request options changed: re-record the vectors"
    );
}

/// The leaf certificate of a registration's packed x5c.
fn attestation_certificate(reg: &RegistrationResponse) -> Vec<u8> {
    use base64::Engine;
    let object = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&reg.response.attestation_object)
        .unwrap();
    let value: Value = ciborium::de::from_reader(object.as_slice()).unwrap();
    let stmt = value
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some("attStmt"))
        .unwrap()
        .1
        .clone();
    let x5c = stmt
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some("x5c"))
        .unwrap()
        .1
        .clone();
    x5c.as_array().unwrap()[0].as_bytes().unwrap().clone()
}

#[test]
fn chromium_virtual_authenticator_is_trusted_only_by_pin() {
    let origin = read("origin.txt").trim().to_string();
    let rp = RelyingParty::new(
        "localhost",
        "Signet",
        &[origin.as_str()],
        UserVerification::Preferred,
    )
    .unwrap();
    let reg: RegistrationResponse = serde_json::from_str(&read("registration.json"))
        .expect("our types read Chromium's toJSON() registration");
    let assertion: AssertionResponse = serde_json::from_str(&read("assertion.json"))
        .expect("our types read Chromium's toJSON() assertion");

    // Nothing trusts it by default, not even with unattested keys allowed.
    let mut allow_none = AttestationTrust::default();
    allow_none.set_allow_none(true);
    for trust in [AttestationTrust::default(), allow_none] {
        assert_eq!(
            verify_registration(&rp, &trust, &REGISTRATION_CHALLENGE, &reg),
            Err(WebauthnError::AttestationUntrusted)
        );
    }

    let leaf = attestation_certificate(&reg);
    let pin = hex::encode(spki_sha256_of_certificate(&leaf).unwrap());
    assert_eq!(pin, CHROMIUM_BATCH_SPKI_SHA256);
    let trust = AttestationTrust::from_config(&[], &[CHROMIUM_BATCH_SPKI_SHA256], false).unwrap();
    let cred = verify_registration(&rp, &trust, &REGISTRATION_CHALLENGE, &reg).unwrap();
    assert_eq!(cred.attestation_format, "packed");
    assert_eq!(
        aaguid_to_string(&cred.aaguid),
        "01020304-0506-0708-0102-030405060708"
    );
    assert!(cred.user_verified_at_registration);

    let verified = verify_assertion(&rp, &ASSERTION_CHALLENGE, &cred, &assertion, true).unwrap();
    assert!(verified.user_verified);
    assert!(verified.sign_count > cred.sign_count);

    // The same responses at another origin or challenge are refused.
    let elsewhere = RelyingParty::new(
        "localhost",
        "Signet",
        &["https://localhost"],
        UserVerification::Preferred,
    )
    .unwrap();
    assert!(matches!(
        verify_assertion(&elsewhere, &ASSERTION_CHALLENGE, &cred, &assertion, false),
        Err(WebauthnError::OriginNotAllowed(_))
    ));
    assert_eq!(
        verify_assertion(&rp, &REGISTRATION_CHALLENGE, &cred, &assertion, false),
        Err(WebauthnError::ChallengeMismatch)
    );
}

#[test]
fn the_chromium_pin_accepts_anyone_who_read_the_u2f_spec() {
    // The attack the "test configuration only" rule defends against: with
    // the published key, a forged "security key" (here, software) passes
    // as Chromium's virtual authenticator under the pin.
    let published =
        p256::ecdsa::SigningKey::from_slice(&hex::decode(U2F_EXAMPLE_PRIVATE_KEY).unwrap())
            .unwrap();
    let forged_cert = common::certificate(
        common::CHROMIUM_NAME,
        common::CHROMIUM_NAME,
        &published,
        &published,
        vec![common::basic_constraints(false)],
    );
    assert_eq!(
        hex::encode(spki_sha256_of_certificate(&forged_cert).unwrap()),
        CHROMIUM_BATCH_SPKI_SHA256,
        "Chromium's batch key is the U2F example key"
    );
    let vendor = common::Vendor::new();
    let mut reg = common::Registration::packed(&vendor, &REGISTRATION_CHALLENGE);
    reg.aaguid = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];
    reg.attestation = Some((published, vec![forged_cert]));
    let rp = common::rp(UserVerification::Preferred);
    let pinned = AttestationTrust::from_config(&[], &[CHROMIUM_BATCH_SPKI_SHA256], false).unwrap();
    verify_registration(&rp, &pinned, &REGISTRATION_CHALLENGE, &reg.response())
        .expect("the pin accepts a forgery: never configure it outside tests");
    assert_eq!(
        verify_registration(
            &rp,
            &AttestationTrust::default(),
            &REGISTRATION_CHALLENGE,
            &reg.response()
        ),
        Err(WebauthnError::AttestationUntrusted)
    );
}
