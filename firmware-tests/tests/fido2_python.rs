//! The FIDO2 applet driven by python-fido2 (an independent CTAP2 client and
//! WebAuthn relying party) through the real pcscd: getInfo, registration and
//! authentication with attestation and signatures verified by python-fido2,
//! clientPIN set/change/retries/blocking, reset, refused and missing
//! touches, malformed input. Against the virtual key by default, or a real
//! key with `SIGNET_FIDO_READER` (+ `SIGNET_FIDO_DESTRUCTIVE=1`).

// Conformance checks: a failed assertion or unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fido_common;

use fido_common::FidoFixture;
use signet_firmware_tests::touch::TouchMode;
use std::time::Duration;

#[test]
fn python_fido2_get_info_and_malformed_input() {
    let Some(dev) = FidoFixture::new(false) else {
        return;
    };
    let Some(out) = dev.python(&["info", "malformed"]) else {
        return;
    };
    assert!(out.contains("ok: getInfo after malformed input"), "{out}");
}

#[test]
fn python_fido2_registers_and_authenticates_with_pin() {
    let Some(dev) = FidoFixture::new(true) else {
        return;
    };
    let Some(out) = dev.python(&["ceremony"]) else {
        return;
    };
    assert!(
        out.contains("against the root") || !dev.is_virtual(),
        "{out}"
    );
    if let Some(fido) = dev.fido() {
        assert!(fido.pin_is_set());
        assert_eq!(
            fido.resident_count(),
            2,
            "one ES256 and one EdDSA credential"
        );
        assert_eq!(fido.pin_retries(), 8);
        assert!(fido.sign_count() >= 6);
    }
    if let Some(touch) = dev.touch() {
        assert!(
            touch.approved() >= 6,
            "every ceremony step asked for a touch"
        );
    }
}

#[test]
fn python_fido2_pin_change_retries_blocking_and_reset() {
    let Some(dev) = FidoFixture::new(true) else {
        return;
    };
    if dev.python(&["pin", "reset"]).is_none() {
        return;
    }
    if let Some(fido) = dev.fido() {
        assert!(!fido.pin_is_set());
        assert_eq!(fido.pin_retries(), 8);
        assert_eq!(fido.resident_count(), 0);
    }
}

#[test]
fn python_fido2_touch_refused_or_missing() {
    let Some(dev) = FidoFixture::virtual_only() else {
        return;
    };
    let touch = dev.touch().unwrap().clone();
    touch.set_mode(TouchMode::Deny);
    if dev.python(&["touch-denied"]).is_none() {
        return;
    }
    // The key gives up (a real one after ~15 s; here after 300 ms).
    touch.set_mode(TouchMode::Manual(Duration::from_millis(300)));
    dev.python(&["touch-timeout"]);
    // The client gives up first and cancels.
    touch.set_mode(TouchMode::Manual(Duration::from_secs(15)));
    dev.python(&["client-timeout"]);
    assert_eq!(touch.approved(), 0);
    assert_eq!(dev.fido().unwrap().sign_count(), 0, "nothing was signed");
}
