//! `signet enroll` and `signet login` with a real YubiKey 5 plugged into
//! USB: the touch over USB HID (CTAP2 through fido-hid-rs), the PIV key
//! through the system's pcscd, against a real `signet-ca serve` on SoftHSM2
//! trusting Yubico's PIV and FIDO attestation roots.
//!
//! There is no `/dev/uhid` on the build machines, so no virtual HID key can
//! stand in: this test runs only when `SIGNET_HARDWARE_YUBIKEY=1`, and then
//! needs a person to touch the key (three times: enroll, login, and the
//! `auto` login). It GENERATES A NEW KEY IN SLOT 9a (the key there is
//! destroyed): use a YubiKey kept for testing. See client/README.md
//! ("Testing with a real YubiKey") for how to run it.
//!
//! - `SIGNET_PIN_FILE`: a file (mode 0600) with the YubiKey's PIV PIN; the
//!   FIDO2 PIN comes from `SIGNET_FIDO_PIN_FILE` when it differs.
//! - `SIGNET_HARDWARE_YUBIKEY_SERIAL`: which YubiKey, when several are
//!   plugged in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

#[path = "support/ca.rs"]
mod support;
use support::{current_user, Ca, Trust};

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_signet")).parent().unwrap()
}

#[test]
fn usb_hid_enroll_and_login_with_a_real_yubikey() {
    if std::env::var("SIGNET_HARDWARE_YUBIKEY").as_deref() != Ok("1") {
        eprintln!(
            "skipped: set SIGNET_HARDWARE_YUBIKEY=1 and SIGNET_PIN_FILE with a YubiKey 5 on USB (client/README.md)"
        );
        return;
    }
    let pin_file = std::env::var_os("SIGNET_PIN_FILE")
        .expect("SIGNET_PIN_FILE must name a file holding the YubiKey's PIV PIN");
    let serial = std::env::var("SIGNET_HARDWARE_YUBIKEY_SERIAL").ok();
    let home = tempfile::tempdir().unwrap();
    let signet = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_signet"));
        command
            .args(args)
            .env("HOME", home.path().join("home"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("SIGNET_PIN_FILE", &pin_file)
            .stdin(Stdio::null())
            // The prompts ("Touch your security key…") reach the person.
            .stderr(Stdio::inherit());
        if let (Some(serial), Some(&("login" | "enroll"))) = (&serial, args.first()) {
            command.args(["--serial", serial]);
        }
        let out = command.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    let mut ca = Ca::new(bin_dir(), Trust::Yubico, "https://localhost:1");
    let root = ca.path("ca-root.pem");
    std::fs::write(&root, ca.ok(&["export", "x509-ca"])).unwrap();
    ca.serve();
    let root = root.to_str().unwrap();
    let proxy = format!("localhost:{}", ca.port);
    let user = current_user();

    // Enroll over USB HID: the key's FIDO attestation must chain to Yubico.
    eprintln!("Enrolling: touch the YubiKey when it blinks.");
    let link = ca.ok(&["users", "invite", "alice", "--ttl", "10m"]);
    let (code, out) = signet(&[
        "enroll",
        link.trim(),
        "--ca-cert",
        root,
        "--transport",
        "usb",
        "--json",
    ]);
    assert_eq!(code, 0, "enroll over USB HID failed: {out}");

    // Log in over USB HID with a new key in slot 9a (PIV attestation to
    // Yubico's roots), then check what was stored.
    eprintln!("Logging in: touch the YubiKey when it blinks.");
    let (code, out) = signet(&[
        "login",
        "--proxy",
        &proxy,
        "--user",
        "alice",
        "--ca-cert",
        root,
        "--principal",
        &user,
        "--new-key",
        "--transport",
        "usb",
        "--json",
    ]);
    assert_eq!(code, 0, "login over USB HID failed: {out}");
    let record: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(record["user"], "alice");
    assert_eq!(record["touch_policy"], "always");
    let (code, out) = signet(&["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["logged_in"], true);

    // auto (remembered as usb by the login above; asked for again here)
    // finds the key on USB by itself.
    eprintln!("Logging in with --transport auto: touch the YubiKey again.");
    let (code, out) = signet(&["login", "--transport", "auto", "--json"]);
    assert_eq!(code, 0, "login with auto failed: {out}");

    // Over PC/SC a YubiKey on USB offers no FIDO2 (its CCID interface is
    // PIV/OpenPGP only): the touch cannot be asked there.
    let (code, _) = signet(&["login", "--transport", "pcsc"]);
    assert_eq!(code, 4, "a USB YubiKey answered FIDO2 over PC/SC");
}
