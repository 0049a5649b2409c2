//! The real peer: the repository's virtual YubiKey's FIDO2 applet behind
//! a private pcscd (vpcd), reached through webauthn-authenticator-rs'
//! `nfc` transport (CTAP2 over PC/SC, the client's real code path), its
//! registrations and assertions verified by this crate, which trusts the
//! attestation root the test creates for the key.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};
use signet_webauthn::wire::{AssertionResponse, RegistrationResponse};
use signet_webauthn::{
    creation_options, request_options, request_options_with_uv, verify_assertion,
    verify_registration, AttestationTrust, RelyingParty, StoredCredential, UserEntity,
    UserVerification, WebauthnError,
};
use webauthn_authenticator_rs::ctap2::CtapAuthenticator;
use webauthn_authenticator_rs::nfc::{NFCCard, NFCTransport};
use webauthn_authenticator_rs::transport::Transport;
use webauthn_authenticator_rs::types::{CableRequestType, CableState, EnrollSampleStatus};
use webauthn_authenticator_rs::ui::UiCallback;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const PIN: &str = "482916";
const ORIGIN: &str = "https://localhost:8443";

/// The user at the keyboard: types the PIN; the virtual key's touch
/// sensor approves touches.
#[derive(Debug)]
struct User;

impl UiCallback for User {
    fn request_pin(&self) -> Option<String> {
        Some(PIN.to_string())
    }
    fn request_touch(&self) {}
    fn processing(&self) {}
    fn fingerprint_enrollment_feedback(&self, _: u32, _: Option<EnrollSampleStatus>) {}
    fn cable_qr_code(&self, _: CableRequestType, _: String) {}
    fn dismiss_qr_code(&self) {}
    fn cable_status_update(&self, _: CableState) {}
}

fn connect<'a>(rt: &tokio::runtime::Runtime, ui: &'a User) -> CtapAuthenticator<'a, NFCCard, User> {
    let transport = NFCTransport::new(pcsc::Scope::User).unwrap();
    let mut tokens = rt.block_on(transport.tokens()).unwrap();
    assert_eq!(tokens.len(), 1, "one card in the harness's reader");
    rt.block_on(CtapAuthenticator::new(tokens.pop().unwrap(), ui))
        .expect("a CTAP2 authenticator")
}

fn register(
    client: &mut CtapAuthenticator<'_, NFCCard, User>,
    rp: &RelyingParty,
    challenge: &[u8; 32],
    user: &str,
) -> RegistrationResponse {
    let user = UserEntity {
        id: user.as_bytes().to_vec(),
        name: user.into(),
        display_name: user.into(),
    };
    let options = creation_options(rp, &user, challenge, &[]);
    let ccr: CreationChallengeResponse =
        serde_json::from_value(serde_json::to_value(&options).unwrap()).unwrap();
    let reg = client
        .do_registration(Url::parse(ORIGIN).unwrap(), ccr)
        .unwrap();
    serde_json::from_value(serde_json::to_value(&reg).unwrap()).unwrap()
}

fn authenticate(
    client: &mut CtapAuthenticator<'_, NFCCard, User>,
    rp: &RelyingParty,
    challenge: &[u8; 32],
    cred: &StoredCredential,
    uv: UserVerification,
) -> AssertionResponse {
    let options = request_options_with_uv(rp, challenge, std::slice::from_ref(&cred.id), uv);
    let rcr: RequestChallengeResponse =
        serde_json::from_value(serde_json::to_value(&options).unwrap()).unwrap();
    let assertion = client
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    serde_json::from_value(serde_json::to_value(&assertion).unwrap()).unwrap()
}

#[test]
fn virtual_yubikey_over_pcsc_registers_and_asserts() {
    let key = VirtualYubiKey::start(VirtualKeyOptions::default()).expect("virtual YubiKey");
    key.fido().set_pin(PIN).unwrap();
    let mut trust = AttestationTrust::default();
    trust
        .add_roots_pem(&key.root().cert_pem().unwrap())
        .unwrap();
    let rp =
        RelyingParty::new("localhost", "Signet", &[ORIGIN], UserVerification::Required).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ui = User;
    let mut client = connect(&rt, &ui);

    let reg = register(&mut client, &rp, &[1; 32], "alice");
    let mut cred = verify_registration(&rp, &trust, &[1; 32], &reg)
        .unwrap_or_else(|e| panic!("{e}\npcscd log:\n{}", key.pcscd().log_tail()));
    assert_eq!(cred.attestation_format, "packed");
    assert_eq!(cred.aaguid, signet_firmware_tests::fido::state::AAGUID);
    assert!(cred.user_verified_at_registration);
    assert_eq!(cred.sign_count, key.fido().sign_count());

    for round in 2..4u8 {
        let challenge = [round; 32];
        let assertion = authenticate(
            &mut client,
            &rp,
            &challenge,
            &cred,
            UserVerification::Required,
        );
        let verified = verify_assertion(&rp, &challenge, &cred, &assertion, true).unwrap();
        assert!(verified.user_verified);
        assert!(verified.sign_count > cred.sign_count);
        assert_eq!(verified.sign_count, key.fido().sign_count());
        // Replayed: the counter has moved on.
        cred.sign_count = verified.sign_count;
        assert!(matches!(
            verify_assertion(&rp, &challenge, &cred, &assertion, true),
            Err(WebauthnError::CounterRegression { .. })
        ));
    }

    // The same key is refused by a relying party trusting another root,
    // and by one trusting nothing.
    let other = signet_firmware_tests::attest::AttestationRoot::create().unwrap();
    let mut other_trust = AttestationTrust::default();
    other_trust.add_root_der(other.cert_der()).unwrap();
    let reg = register(&mut client, &rp, &[9; 32], "bob");
    assert_eq!(
        verify_registration(&rp, &other_trust, &[9; 32], &reg),
        Err(WebauthnError::AttestationUntrusted)
    );
    assert_eq!(
        verify_registration(&rp, &AttestationTrust::default(), &[9; 32], &reg),
        Err(WebauthnError::AttestationUntrusted)
    );
    // … and by this one, for the wrong challenge.
    assert_eq!(
        verify_registration(&rp, &trust, &[8; 32], &reg),
        Err(WebauthnError::ChallengeMismatch)
    );

    // A touch-only assertion (no PIN asked) counts where UV is not required.
    let touch_rp = RelyingParty::new(
        "localhost",
        "Signet",
        &[ORIGIN],
        UserVerification::Discouraged,
    )
    .unwrap();
    let options = request_options(&touch_rp, &[5; 32], std::slice::from_ref(&cred.id));
    assert_eq!(
        serde_json::to_value(&options).unwrap()["publicKey"]["userVerification"],
        "discouraged"
    );
    let assertion = authenticate(
        &mut client,
        &touch_rp,
        &[5; 32],
        &cred,
        UserVerification::Discouraged,
    );
    let verified = verify_assertion(&touch_rp, &[5; 32], &cred, &assertion, false).unwrap();
    assert!(verified.sign_count > cred.sign_count);
}
