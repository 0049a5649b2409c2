#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The fixture's two modes: a SoftHSM2 token of the test's own, or an
//! existing token of a real module that is never initialised. Each test sets
//! variables of its own process (cargo-nextest runs one test per process).

use signet_hsm::{Error, KeyAlgorithm, Pin, Token, TokenSelector};
use signet_testkit::{softhsm_module, SoftHsm, MODULE_ENV, PIN_FILE_ENV, TOKEN_ENV};
use zeroize::Zeroizing;

/// A PKCS#11 module that is not SoftHSM2 (Debian package opensc-pkcs11).
const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

#[test]
fn the_real_token_mode_uses_the_named_token_and_initialises_nothing() {
    // The "real" token: made here in SoftHSM2, then named by the variables.
    let existing = SoftHsm::create("existing-token");
    assert!(!existing.is_external());
    assert_eq!(existing.unique("k"), "k");
    std::env::set_var(MODULE_ENV, softhsm_module());
    std::env::set_var(TOKEN_ENV, "existing-token");
    std::env::set_var(PIN_FILE_ENV, existing.pin_file());

    let first = SoftHsm::create("would-be-new");
    let second = SoftHsm::create("would-be-new-too");
    assert!(first.is_external());
    assert_eq!(first.label(), "existing-token");
    assert_eq!(first.pin_file(), existing.pin_file());
    assert_eq!(first.user_pin(), existing.user_pin());
    // Keys are never deleted: every run labels its keys apart.
    assert!(first.unique("k").starts_with("k-"), "{}", first.unique("k"));
    assert_ne!(first.unique("k"), second.unique("k"));

    let token = Token::open(&first.token_config(1)).unwrap();
    let key = token
        .generate_key(&first.unique("k"), KeyAlgorithm::EcdsaP256)
        .unwrap();
    assert_eq!(key.label(), first.unique("k"));

    // No token was initialised for the labels the tests asked for.
    for label in ["would-be-new", "would-be-new-too"] {
        let mut config = first.token_config(1);
        config.token = TokenSelector::Label(label.into());
        let err = Token::open(&config).unwrap_err();
        match err {
            Error::TokenNotFound { present, .. } => assert_eq!(present, "\"existing-token\""),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_real_token_mode_needs_its_token_and_pin_named() {
    std::env::set_var(MODULE_ENV, OPENSC);
    std::env::remove_var(TOKEN_ENV);
    let panic = std::panic::catch_unwind(|| SoftHsm::create("never-initialised").is_external())
        .unwrap_err();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.contains(TOKEN_ENV) && text.contains("never initialise"),
        "{text}"
    );
    std::env::set_var(TOKEN_ENV, "some-token");
    let panic = std::panic::catch_unwind(|| SoftHsm::create("never-initialised").is_external())
        .unwrap_err();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains(PIN_FILE_ENV), "{text}");
}

#[test]
fn tokens_are_only_ever_initialised_in_softhsm2() {
    assert!(
        std::path::Path::new(OPENSC).exists(),
        "{OPENSC} missing: install the Debian package opensc-pkcs11"
    );
    let info = signet_hsm::module_info(OPENSC.as_ref()).unwrap();
    assert!(!info.is_softhsm(), "{info:?}");
    let pin = || Pin::from_secret(Zeroizing::new("12345678".into())).unwrap();
    let err =
        signet_hsm::initialize_softhsm_token(OPENSC.as_ref(), "must-not-exist", &pin(), &pin())
            .unwrap_err();
    assert!(
        matches!(&err, Error::NotSoftHsm { manufacturer, .. } if manufacturer == "OpenSC Project"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("refusing to initialise") && text.contains("OpenSC Project"),
        "{text}"
    );
    assert!(signet_hsm::module_info(&softhsm_module())
        .unwrap()
        .is_softhsm());
}
