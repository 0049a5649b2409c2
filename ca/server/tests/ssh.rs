//! OpenSSH certificates from the HSM, checked by real `sshd`, `ssh` and `ssh-keygen`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{current_user, ssh_login, Ca};
use signet_testkit::Sshd;

fn trusted_ca_sshd(ca: &Ca) -> Sshd {
    let ca_file = ca.export_to_file("ssh-user-ca");
    Sshd::start(&format!("TrustedUserCAKeys {}", ca_file.display()), None)
}

#[test]
fn user_certificate_logs_into_sshd_and_others_are_refused() {
    let ca = Ca::initialised("ca-ssh-login");
    let me = current_user();
    let sshd = trusted_ca_sshd(&ca);

    // The right principal logs in and runs a command.
    let key = ca.client_key("alice", "ed25519");
    let cert = ca.sign_user(&key, &[&me, "ubuntu"], "10m");
    let (ok, stdout, stderr) = ssh_login(sshd.port(), &me, &key, &cert, None);
    assert!(ok, "login failed: {stderr}\n{}", sshd.log());
    assert_eq!(stdout.trim(), "signet-login-ok");
    assert!(
        sshd.log().contains("user=alice serial="),
        "key id in sshd log:\n{}",
        sshd.log()
    );

    // A certificate for another principal is refused.
    let other = ca.client_key("mallory", "ed25519");
    let other_cert = ca.sign_user(&other, &["somebody-else"], "10m");
    let (ok, _, _) = ssh_login(sshd.port(), &me, &other, &other_cert, None);
    assert!(!ok, "certificate for another principal was accepted");

    // An expired certificate is refused.
    let short = ca.client_key("short", "ed25519");
    let short_cert = ca.sign_user(&short, &[&me], "1s");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (ok, _, _) = ssh_login(sshd.port(), &me, &short, &short_cert, None);
    assert!(!ok, "expired certificate was accepted");

    // A certificate from another CA (a software one) is refused.
    let rogue_ca = ca.client_key("rogue-ca", "ed25519");
    let victim = ca.client_key("victim", "ed25519");
    let status = Command::new("ssh-keygen")
        .arg("-q")
        .arg("-s")
        .arg(&rogue_ca)
        .args(["-I", "rogue", "-n", &me, "-V", "-5m:+10m"])
        .arg(format!("{}.pub", victim.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let rogue_cert = std::path::PathBuf::from(format!("{}-cert.pub", victim.display()));
    let (ok, _, _) = ssh_login(sshd.port(), &me, &victim, &rogue_cert, None);
    assert!(!ok, "certificate from another CA was accepted");
}

#[test]
fn ssh_keygen_shows_the_fields_set() {
    let ca = Ca::initialised("ca-ssh-fields");
    let key = ca.client_key("bob", "ecdsa");
    let cert = ca.sign_user(&key, &["root", "deploy"], "2h");
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("user certificate"), "{text}");
    assert!(text.contains("Key ID: \"user=alice serial="), "{text}");
    for field in [
        "root",
        "deploy",
        "permit-pty",
        "permit-agent-forwarding",
        "permit-port-forwarding",
        "permit-X11-forwarding",
        "permit-user-rc",
    ] {
        assert!(text.contains(field), "{field} missing:\n{text}");
    }
    let ca_line = ca.ok(&["export", "ssh-user-ca"]);
    let ca_fp = Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(std::fs::File::open(ca.export_to_file("ssh-user-ca")).unwrap())
        .output()
        .unwrap();
    let fp = String::from_utf8(ca_fp.stdout).unwrap();
    let fp = fp.split_whitespace().nth(1).unwrap();
    assert!(
        text.contains(&format!("Signing CA: ECDSA {fp}")),
        "{text}\n{ca_line}"
    );
    // Validity: backdated a few minutes, 2 hours ahead.
    let serial: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Serial: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(serial, 0);
}

#[test]
fn host_certificate_is_accepted_by_ssh_with_cert_authority_line() {
    let ca = Ca::initialised("ca-ssh-host");
    let me = current_user();
    let host_key = ca.client_key("host-key", "ed25519");
    let host_cert = ca.path("host-key-cert.pub");
    let cert = ca.ok(&[
        "sign",
        "ssh-host",
        "--host",
        "node1.example",
        "--ttl",
        "1h",
        "--public-key",
        &format!("{}.pub", host_key.display()),
    ]);
    std::fs::write(&host_cert, cert).unwrap();
    let user_ca = ca.export_to_file("ssh-user-ca");
    let sshd = Sshd::start(
        &format!(
            "TrustedUserCAKeys {}\nHostCertificate {}",
            user_ca.display(),
            host_cert.display()
        ),
        Some(&host_key),
    );
    let host_ca = ca.ok(&["export", "ssh-host-ca"]);
    let known_hosts = ca.write(
        "known_hosts",
        &format!("@cert-authority node1.example {host_ca}"),
    );
    let key = ca.client_key("carol", "ed25519");
    let user_cert = ca.sign_user(&key, &[&me], "10m");
    let (ok, stdout, stderr) = ssh_login(
        sshd.port(),
        &me,
        &key,
        &user_cert,
        Some((&known_hosts, "node1.example")),
    );
    assert!(ok, "host not accepted: {stderr}");
    assert_eq!(stdout.trim(), "signet-login-ok");

    // The same host key under a name the certificate does not carry is refused.
    let (ok, _, stderr) = ssh_login(
        sshd.port(),
        &me,
        &key,
        &user_cert,
        Some((&known_hosts, "node2.example")),
    );
    assert!(
        !ok,
        "host accepted under a name outside its certificate: {stderr}"
    );
}
