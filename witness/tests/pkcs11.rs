//! The witness key in a PKCS#11 token (SoftHSM2, or the real module named
//! by SIGNET_PKCS11_MODULE): generated inside, non-extractable, PIN from a
//! file or an environment variable, and cosigning through the token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use std::ffi::OsStr;
use std::time::Duration;

use common::{init, run, TestLog, WitnessProcess};
use signet_hsm::{KeyAlgorithm, Token};
use signet_log::note::{SignatureType, VerifierKey};
use signet_log::witness::{append_cosignatures, Witness, WitnessPolicy};
use signet_testkit::{softhsm_module, SoftHsm};
use signet_witness::client::WitnessClient;

#[test]
fn token_key_is_generated_inside_and_cosigns() {
    let hsm = SoftHsm::create("witness");
    let label = hsm.unique("signet-witness");
    let mut log = TestLog::new("test.example/signet-log", 1, "main");
    log.grow_to(6);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("witness.toml");
    let key_section = |pin: &str| {
        format!(
            "name = \"hsm-witness.example/w\"\nstate_dir = \"state\"\n[key]\npkcs11_module = \"{}\"\ntoken_label = \"{}\"\nkey_label = \"{label}\"\n{pin}\n[[log]]\norigin = \"{}\"\nvkey = \"{}\"\n",
            softhsm_module().display(),
            hsm.label(),
            log.origin,
            log.vkey
        )
    };
    std::fs::write(
        &config,
        key_section(&format!("pin_file = \"{}\"", hsm.pin_file().display())),
    )
    .unwrap();
    let vkey = init(&config);
    let key = VerifierKey::parse(&vkey).unwrap();
    assert_eq!(key.signature_type(), SignatureType::CosignatureV1);

    // In the token: sensitive, never extractable, generated there.
    let token = Token::open(&hsm.token_config(1)).unwrap();
    let found = token
        .find_key(&label, KeyAlgorithm::Ed25519)
        .unwrap()
        .unwrap();
    let protection = token.key_protection(&found).unwrap();
    assert!(protection.sensitive && !protection.extractable);
    assert!(protection.never_extractable && protection.local);
    assert!(!token.private_value_is_readable(&found).unwrap());
    drop(token);

    // init again: refused, the key stays.
    let out = run(&["init", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds"));

    // The PIN from an environment variable; a wrong PIN is a key error (3).
    std::fs::write(&config, key_section("pin_env = \"WITNESS_TEST_PIN\"")).unwrap();
    let pin = hsm.user_pin();
    let out = run(
        &["vkey", "--config", config.to_str().unwrap()],
        &[("WITNESS_TEST_PIN", OsStr::new(&pin))],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), vkey);
    let wrong = if pin == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let out = run(
        &["vkey", "--config", config.to_str().unwrap()],
        &[("WITNESS_TEST_PIN", OsStr::new(wrong))],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(wrong));

    // Serve with the token key and cosign.
    std::fs::write(
        &config,
        key_section(&format!("pin_file = \"{}\"", hsm.pin_file().display())),
    )
    .unwrap();
    let w = WitnessProcess::start_with(dir, config);
    let lines = WitnessClient::new()
        .add_checkpoint(
            &w.url(),
            0,
            &[],
            &log.checkpoint(6),
            Duration::from_secs(10),
        )
        .unwrap();
    let note = append_cosignatures(&log.checkpoint(6), &lines).unwrap();
    let policy = WitnessPolicy::new(1, vec![Witness::new("hsm", None, key)]).unwrap();
    let c = policy
        .verify_checkpoint(note.as_bytes(), &log.vkey)
        .unwrap();
    assert_eq!(c.cosignatures()[0].witness, "hsm");
}
