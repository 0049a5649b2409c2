//! `signet-witness init` and `vkey` with a key file, and configuration
//! errors, through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{file_config, init, run, TestLog};
use signet_log::note::{SignatureType, VerifierKey};

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let mut log = TestLog::new("test.example/signet-log", 1, "main");
    log.grow_to(1);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("witness.toml");
    std::fs::write(&config, file_config("witness.example/w1", &[&log])).unwrap();
    (dir, config)
}

#[test]
fn init_creates_the_key_once_and_prints_only_the_vkey() {
    let (dir, config) = setup();
    let vkey = init(&config);
    let key = VerifierKey::parse(&vkey).unwrap();
    assert_eq!(key.signature_type(), SignatureType::CosignatureV1);
    assert_eq!(key.name(), "witness.example/w1");

    let key_file = dir.path().join("witness.key");
    let meta = std::fs::metadata(&key_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read_to_string(&key_file).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
    // The state directory is not needed for init; `vkey` prints the same key.
    let out = run(&["vkey", "--config", config.to_str().unwrap()], &[]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), vkey);

    // A second init never replaces the key.
    let out = run(&["init", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("never replaced"));
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), pem);
    // Nothing printed holds the key's base64 body.
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!vkey.contains(&body) && !String::from_utf8_lossy(&out.stderr).contains(&body));
}

#[test]
fn exposed_or_linked_key_files_are_refused() {
    let (dir, config) = setup();
    init(&config);
    let key_file = dir.path().join("witness.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run(&["vkey", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    let out = run(&["serve", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(3));

    // A symbolic link to a good key file is not followed.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&key_file, dir.path().join("real.key")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real.key"), &key_file).unwrap();
    let out = run(&["vkey", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    // Nor is init's target: it would write through the link.
    std::fs::remove_file(dir.path().join("real.key")).unwrap();
    let out = run(&["init", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!dir.path().join("real.key").exists());

    // Not a key.
    std::fs::remove_file(&key_file).unwrap();
    std::fs::write(&key_file, "not a key\n").unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&["vkey", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a PKCS#8"));
}

#[test]
fn bad_configurations_name_the_field() {
    let (dir, config) = setup();
    let good = std::fs::read_to_string(&config).unwrap();
    let log_vkey = good
        .lines()
        .find_map(|l| l.strip_prefix("vkey = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let witness_vkey = {
        let (_d, c) = setup();
        init(&c)
    };
    let cases: Vec<(String, &str)> = vec![
        (good.replace("name = ", "nmae = "), "nmae"),
        (good.replace("witness.example/w1", "has space"), "name"),
        (good.replace("witness.example/w1", "a+b"), "name"),
        (format!("listen = \"nowhere\"\n{good}"), "listen"),
        (
            good.replace("request_timeout = \"5s\"", "request_timeout = \"soon\""),
            "request_timeout",
        ),
        (good.replace("file = \"witness.key\"", ""), "key: give file"),
        (
            good.replace(
                "file = \"witness.key\"",
                "file = \"k\"\npkcs11_module = \"/x.so\"",
            ),
            "not both",
        ),
        (
            good.replace("file = \"witness.key\"", "file = \"k\"\npin_file = \"p\""),
            "go with pkcs11_module",
        ),
        (
            good.replace(
                "file = \"witness.key\"",
                "pkcs11_module = \"/x.so\"\ntoken_label = \"t\"",
            ),
            "pin_file and pin_env",
        ),
        (good.replace(&log_vkey, "garbage"), "log[0].vkey"),
        (good.replace(&log_vkey, &witness_vkey), "log[0].vkey"),
        (
            format!("{good}[[log]]\norigin = \"test.example/signet-log\"\nvkey = \"{log_vkey}\"\n"),
            "listed twice",
        ),
    ];
    for (text, field) in cases {
        std::fs::write(&config, &text).unwrap();
        let out = run(&["init", "--config", config.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{text}\n→ {err}\n(expected {field})");
    }
    assert!(!dir.path().join("witness.key").exists());
    let out = run(
        &[
            "init",
            "--config",
            dir.path().join("missing.toml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}
