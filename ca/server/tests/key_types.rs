//! Every key type SoftHSM2 supports as CA key: OpenSSH user certificates
//! log into a real sshd, X.509 certificates pass `openssl verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{current_user, ssh_login, Ca};
use signet_testkit::Sshd;

fn check_ca_key_type(key_type: &str) {
    // Checkpoints are signed notes: only Ed25519 and P-256 can sign them
    // (the configuration refuses others for log_key, tested in cli.rs).
    let log_key = if matches!(key_type, "ed25519" | "ecdsa-p256") {
        key_type
    } else {
        "ed25519"
    };
    let ca = Ca::new(
        &format!("ca-type-{key_type}"),
        [key_type, key_type, key_type, log_key],
    );
    let init = ca.ok(&["init"]);
    let typed = init
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(key_type) && l.contains("generated"))
        .count();
    assert_eq!(typed, if log_key == key_type { 4 } else { 3 }, "{init}");

    let me = current_user();
    let ca_file = ca.export_to_file("ssh-user-ca");
    let sshd = Sshd::start(&format!("TrustedUserCAKeys {}", ca_file.display()), None);
    let key = ca.client_key("user", "ed25519");
    let cert = ca.sign_user(&key, &[&me], "5m");
    let (ok, stdout, stderr) = ssh_login(sshd.port(), &me, &key, &cert, None);
    assert!(ok, "{key_type}: {stderr}\n{}", sshd.log());
    assert_eq!(stdout.trim(), "signet-login-ok");

    let pem = ca.ok(&[
        "sign",
        "x509-client",
        "--user",
        "u1",
        "--ttl",
        "1h",
        "--public-key",
        &format!("{}.pub", key.display()),
    ]);
    let cert = ca.write("u1.pem", &pem);
    let out = Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(ca.path("data/x509-ca.pem"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{key_type}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let log_key = ca.ok(&["export", "log-key"]);
    assert!(
        log_key.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{log_key}"
    );
}

#[test]
fn ecdsa_p256() {
    check_ca_key_type("ecdsa-p256");
}

#[test]
fn ecdsa_p384() {
    check_ca_key_type("ecdsa-p384");
}

#[test]
fn ed25519() {
    check_ca_key_type("ed25519");
}

#[test]
fn rsa_3072() {
    check_ca_key_type("rsa-3072");
}

#[test]
fn rsa_4096() {
    check_ca_key_type("rsa-4096");
}
