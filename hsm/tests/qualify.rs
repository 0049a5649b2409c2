#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `signet-hsm-qualify` against SoftHSM2: a throw-away token it makes
//! itself, and a token named by flags. With `SIGNET_PKCS11_MODULE`,
//! `SIGNET_PKCS11_TOKEN` and `SIGNET_PKCS11_PIN_FILE` set, it qualifies that
//! module instead (the program reads the same variables).

use std::process::{Command, Output};

use signet_testkit::SoftHsm;

const BIN: &str = env!("CARGO_BIN_EXE_signet-hsm-qualify");

fn real_module() -> bool {
    std::env::var_os("SIGNET_PKCS11_MODULE").is_some()
}

fn qualify(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(["--seconds", "0.2"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn text_report_against_a_throwaway_softhsm2_token() {
    if real_module() {
        eprintln!("skipped: SIGNET_PKCS11_MODULE names a module; see the JSON test");
        return;
    }
    let out = Command::new(BIN)
        .args(["--seconds", "0.2", "--sessions", "2"])
        .env_remove("SIGNET_PKCS11_TOKEN")
        .env_remove("SIGNET_PKCS11_PIN_FILE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "Signet HSM qualification report",
        "throw-away SoftHSM2 token",
        "SoftHSM",
        "Mechanisms listed by the token",
        "CKM_ECDSA",
        "CKM_EC_EDWARDS_KEY_PAIR_GEN",
        "Session recovery after a forced logout (ecdsa-p256): ok — 2 of 2",
        "Verdict: QUALIFIED for ecdsa-p256, ecdsa-p384, ed25519, rsa-3072, rsa-4096",
        "2 sessions",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    for alg in [
        "ecdsa-p256",
        "ecdsa-p384",
        "ed25519",
        "rsa-3072",
        "rsa-4096",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(alg) && l.contains("REFUSED") | l.contains(" ok"))
            .unwrap_or_else(|| panic!("no attribute line for {alg}:\n{text}"));
        assert!(line.trim_end().ends_with("ok"), "{line}");
        assert!(text.contains(&format!("  {alg:<11} supported")), "{text}");
    }
    // The throw-away token leaves nothing behind and lists no leftover keys.
    assert!(!text.contains("Keys generated on the token"), "{text}");
}

#[test]
fn json_report_for_a_token_named_by_flags() {
    // Either the module from the environment (the program reads the same
    // variables), or a SoftHSM2 token of this test's own passed as flags.
    let hsm;
    let mut args: Vec<String> = vec!["--json".into(), "--sessions".into(), "2".into()];
    if !real_module() {
        hsm = SoftHsm::create("qualify-flags");
        args.extend([
            "--module".into(),
            signet_testkit::softhsm_module().display().to_string(),
            "--token".into(),
            hsm.label().into(),
            "--pin-file".into(),
            hsm.pin_file().display().to_string(),
            "--key-types".into(),
            "ecdsa-p256,ed25519".into(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = qualify(&args);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["tool"], "signet-hsm-qualify");
    assert_eq!(report["sessions"], 2);
    assert!(!report["mechanisms"].as_array().unwrap().is_empty());
    let types = report["key_types"].as_array().unwrap();
    assert_eq!(types.len(), 5);
    for entry in types {
        let supported = entry["supported"].as_bool().unwrap();
        if !supported {
            // An unsupported type names the mechanism it lacks.
            assert!(
                entry["missing_mechanisms"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("CKM_"),
                "{entry}"
            );
            continue;
        }
        if entry["skipped"].as_bool().unwrap() {
            continue;
        }
        assert_eq!(entry["attributes"]["ok"], true, "{entry}");
        assert_eq!(entry["attributes"]["private_value_readable"], false);
        assert_eq!(entry["signature_verifies"], true, "{entry}");
        assert!(entry["signatures_per_second_1"].as_f64().unwrap() > 0.0);
        assert!(entry["signatures_per_second_n"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(report["session_recovery"]["recovered"], true, "{report}");
    assert_eq!(report["qualified"], true, "{report}");
    if !real_module() {
        let tested: Vec<_> = types
            .iter()
            .filter(|t| !t["skipped"].as_bool().unwrap())
            .map(|t| t["key_type"].as_str().unwrap())
            .collect();
        assert_eq!(tested, ["ecdsa-p256", "ed25519"]);
        assert_eq!(report["token"]["label"], "qualify-flags");
        assert_eq!(report["throwaway_token"], false);
        // Keys made on a named token stay there and are listed.
        assert_eq!(report["keys_left_on_token"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn the_pin_is_never_taken_from_the_command_line_and_errors_are_plain() {
    if real_module() {
        return;
    }
    let hsm = SoftHsm::create("qualify-bad");
    let module = signet_testkit::softhsm_module().display().to_string();
    // No --pin flag exists.
    let out = Command::new(BIN)
        .args(["--module", &module, "--token", hsm.label(), "--pin", "1234"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A wrong PIN fails once with a message, not a report.
    let wrong = hsm.dir().join("wrong");
    std::fs::write(&wrong, "00000000\n").unwrap();
    // PIN files must be readable by their owner only.
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = Command::new(BIN)
        .args(["--module", &module, "--token", hsm.label(), "--pin-file"])
        .arg(&wrong)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("refused the PIN") && !err.contains("00000000"),
        "{err}"
    );
    // --module without --token is refused.
    let out = Command::new(BIN)
        .env_remove("SIGNET_PKCS11_TOKEN")
        .args(["--module", &module])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
}
