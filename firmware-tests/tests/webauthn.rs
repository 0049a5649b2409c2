//! The full WebAuthn ceremony against the FIDO2 applet through the real
//! pcscd: webauthn-authenticator-rs's `nfc` transport (CTAP2 over PC/SC) is
//! the client, webauthn-rs the relying party, which trusts exactly the
//! emulator's attestation root and requires user verification (by PIN).

// Conformance checks: a failed assertion or unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fido_common;

use fido_common::FidoFixture;
use webauthn_authenticator_rs::ctap2::CtapAuthenticator;
use webauthn_authenticator_rs::nfc::NFCTransport;
use webauthn_authenticator_rs::transport::Transport;
use webauthn_authenticator_rs::types::{CableRequestType, CableState, EnrollSampleStatus};
use webauthn_authenticator_rs::ui::UiCallback;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::*;

const PIN: &str = "246810";

/// The user at the keyboard: types this PIN, touches when asked (the
/// virtual key's touch sensor approves).
#[derive(Debug)]
struct User(&'static str);

impl UiCallback for User {
    fn request_pin(&self) -> Option<String> {
        Some(self.0.to_string())
    }
    fn request_touch(&self) {}
    fn processing(&self) {}
    fn fingerprint_enrollment_feedback(&self, _: u32, _: Option<EnrollSampleStatus>) {}
    fn cable_qr_code(&self, _: CableRequestType, _: String) {}
    fn dismiss_qr_code(&self) {}
    fn cable_status_update(&self, _: CableState) {}
}

#[test]
fn webauthn_rs_ceremony_over_nfc_transport_with_attestation_and_pin() {
    let Some(dev) = FidoFixture::virtual_only() else {
        return;
    };
    let fido = dev.fido().unwrap();
    fido.set_pin(PIN).unwrap();
    let root_der = dev.virtual_key().unwrap().root().cert_der().to_vec();

    let origin = rp_origin_url();
    let rp = WebauthnBuilder::new("localhost", &origin)
        .unwrap()
        .rp_name("Signet")
        .build()
        .unwrap();
    let mut cas = AttestationCaListBuilder::new();
    cas.insert_device_der(
        &root_der,
        Uuid::from_bytes(signet_firmware_tests::fido::state::AAGUID),
        "Signet virtual YubiKey".to_string(),
        Default::default(),
    )
    .unwrap();
    let cas = cas.build();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ui = User(PIN);
    let mut client = connect(&rt, &ui);

    let user_id = Uuid::new_v4();
    let (ccr, reg_state) = rp
        .start_attested_passkey_registration(user_id, "alice", "Alice", None, cas, None)
        .unwrap();
    let log = || dev.virtual_key().unwrap().pcscd().log_tail();
    let reg = client
        .do_registration(origin.clone(), ccr)
        .unwrap_or_else(|e| panic!("registration: {e:?}\npcscd log:\n{}", log()));
    let passkey = rp
        .finish_attested_passkey_registration(&reg, &reg_state)
        .unwrap();
    assert_eq!(fido.sign_count(), 1);

    let (rcr, auth_state) = rp
        .start_attested_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let assertion = client
        .do_authentication(origin, rcr)
        .unwrap_or_else(|e| panic!("authentication: {e:?}\npcscd log:\n{}", log()));
    let result = rp
        .finish_attested_passkey_authentication(&assertion, &auth_state)
        .unwrap();
    assert!(result.user_verified());
    assert!(result.counter() >= 2);
    assert_eq!(fido.pin_retries(), 8);

    // A relying party that trusts another root refuses this key.
    let other = signet_firmware_tests::attest::AttestationRoot::create().unwrap();
    let mut cas = AttestationCaListBuilder::new();
    cas.insert_device_der(
        other.cert_der(),
        Uuid::from_bytes(signet_firmware_tests::fido::state::AAGUID),
        "another emulator".to_string(),
        Default::default(),
    )
    .unwrap();
    let (ccr, reg_state) = rp
        .start_attested_passkey_registration(Uuid::new_v4(), "bob", "Bob", None, cas.build(), None)
        .unwrap();
    let reg = client.do_registration(rp_origin_url(), ccr).unwrap();
    assert!(matches!(
        rp.finish_attested_passkey_registration(&reg, &reg_state),
        Err(WebauthnError::AttestationChainNotTrusted(_))
    ));

    // A wrong PIN fails the ceremony and costs a retry.
    drop(client);
    let wrong = User("000000");
    let mut client = connect(&rt, &wrong);
    let (rcr, _) = rp
        .start_attested_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    assert!(client.do_authentication(rp_origin_url(), rcr).is_err());
    assert!(
        fido.pin_retries() < 8,
        "{} retries left",
        fido.pin_retries()
    );
}

fn rp_origin_url() -> Url {
    Url::parse("https://localhost:8443").unwrap()
}

/// The one card in the harness's reader, through the `nfc` transport.
fn connect<'a>(
    rt: &tokio::runtime::Runtime,
    ui: &'a User,
) -> CtapAuthenticator<'a, webauthn_authenticator_rs::nfc::NFCCard, User> {
    let transport = NFCTransport::new(pcsc::Scope::User).unwrap();
    let mut tokens = rt.block_on(transport.tokens()).unwrap();
    assert_eq!(tokens.len(), 1, "one card in the harness's reader");
    let token = tokens.pop().unwrap();
    rt.block_on(CtapAuthenticator::new(token, ui))
        .expect("a CTAP2 authenticator")
}
