//! Interop with the real tools a YubiKey user runs: yubico-piv-tool,
//! ykcs11 through pkcs11-tool, `ssh-keygen -D`, and an OpenSSH login with
//! `PKCS11Provider` into a throw-away loopback sshd. Against the virtual key
//! by default (tools reach the private pcscd via `PCSCLITE_CSOCK_NAME`), or
//! a real key with `SIGNET_YUBIKEY_SERIAL` + `SIGNET_YUBIKEY_DESTRUCTIVE=1`.

// Conformance checks: a failed assertion or unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::{verify_signed_by, Fixture, PIN};
use der::{Decode, DecodePem, EncodePem};
use signature::Verifier;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::Certificate;
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{PinPolicy, TouchPolicy};

/// ykcs11 as Debian installs it; `SIGNET_YKCS11_MODULE` overrides the path.
fn ykcs11() -> String {
    std::env::var("SIGNET_YKCS11_MODULE")
        .unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/libykcs11.so".to_string())
}

/// Generates a P-256 key in 9a (PIN once) with a self-signed certificate,
/// as ykcs11 and ssh expect; returns the public key.
fn provision_9a(dev: &Fixture) -> p256::ecdsa::VerifyingKey {
    let mut yk = dev.open_admin();
    let spki = piv::generate(
        &mut yk,
        SlotId::Authentication,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .unwrap();
    yk.verify_pin(PIN).unwrap();
    yubikey::Certificate::generate_self_signed::<_, p256::NistP256>(
        &mut yk,
        SlotId::Authentication,
        x509_cert::serial_number::SerialNumber::from(7u32),
        x509_cert::time::Validity::from_now(Duration::from_secs(86400)).unwrap(),
        x509_cert::name::Name::from_str("CN=Signet interop").unwrap(),
        spki.clone(),
        |_| Ok(()),
    )
    .unwrap();
    p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap()
}

fn run(dev: &Fixture, program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .envs(dev.envs())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The OpenSSH public key line body for a P-256 key.
fn openssh_p256(vk: &p256::ecdsa::VerifyingKey) -> String {
    let mut blob = Vec::new();
    for field in [
        b"ecdsa-sha2-nistp256".as_slice(),
        b"nistp256".as_slice(),
        &vk.to_sec1_point(false).to_bytes(),
    ] {
        blob.extend_from_slice(&(field.len() as u32).to_be_bytes());
        blob.extend_from_slice(field);
    }
    format!(
        "ecdsa-sha2-nistp256 {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

#[test]
fn yubico_piv_tool_status_and_attest() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let vk = provision_9a(&dev);
    let reader = dev.reader_filter();
    let status = run(&dev, "yubico-piv-tool", &["-r", reader, "-a", "status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(&format!("Serial Number:\t{}", dev.serial())),
        "{status}"
    );
    assert!(status.contains("Slot 9a:"), "{status}");
    assert!(status.contains("CN=Signet interop"), "{status}");
    assert!(status.contains("PIN tries left:"), "{status}");

    let attest = run(
        &dev,
        "yubico-piv-tool",
        &["-r", reader, "-a", "attest", "-s", "9a"],
    );
    let leaf = Certificate::from_pem(&attest.stdout).unwrap();
    let spki = leaf.tbs_certificate().subject_public_key_info();
    assert_eq!(
        spki.subject_public_key.raw_bytes(),
        vk.to_sec1_point(false).as_bytes()
    );
    let mut yk = dev.open();
    let f9 = yubikey::Certificate::read(&mut yk, SlotId::Attestation)
        .unwrap()
        .cert;
    verify_signed_by(&leaf, &f9);

    // OpenSSL accepts the chain: leaf <- f9 <- attestation root.
    let roots = dev.attestation_roots();
    if let Some(root) = roots
        .iter()
        .find(|r| r.tbs_certificate().subject() == f9.tbs_certificate().issuer())
    {
        let dir = tempfile::tempdir().unwrap();
        let pem = |name: &str, cert: &Certificate| {
            let path = dir.path().join(name);
            std::fs::write(&path, cert.to_pem(der::pem::LineEnding::LF).unwrap()).unwrap();
            path.to_str().unwrap().to_string()
        };
        let (root, f9, leaf) = (
            pem("root.pem", root),
            pem("f9.pem", &f9),
            pem("leaf.pem", &leaf),
        );
        let out = run(
            &dev,
            "openssl",
            &["verify", "-CAfile", &root, "-untrusted", &f9, &leaf],
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));
    }
}

#[test]
fn yubico_piv_tool_generates_sets_objects_and_manages_pin() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let reader = dev.reader_filter();
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public.pem");
    run(
        &dev,
        "yubico-piv-tool",
        &["-r", reader, "-a", "set-chuid", "-a", "set-ccc"],
    );
    run(
        &dev,
        "yubico-piv-tool",
        &[
            "-r",
            reader,
            "-a",
            "generate",
            "-s",
            "9c",
            "-A",
            "ECCP384",
            "--pin-policy=never",
            "--touch-policy=cached",
            "-o",
            public.to_str().unwrap(),
        ],
    );
    let pin = std::str::from_utf8(PIN).unwrap();
    run(
        &dev,
        "yubico-piv-tool",
        &["-r", reader, "-a", "verify-pin", "-P", pin],
    );
    run(
        &dev,
        "yubico-piv-tool",
        &[
            "-r",
            reader,
            "-a",
            "change-pin",
            "-P",
            pin,
            "-N",
            "24682468",
        ],
    );

    let mut yk = dev.open();
    yk.chuid().unwrap();
    yk.cccid().unwrap();
    let meta = piv::metadata(&mut yk, SlotId::Signature).unwrap();
    assert_eq!(
        meta.algorithm,
        piv::SlotAlgorithmId::Asymmetric(AlgorithmId::EccP384)
    );
    assert_eq!(meta.policy, Some((PinPolicy::Never, TouchPolicy::Cached)));
    let pem = std::fs::read_to_string(&public).unwrap();
    let from_tool =
        <spki::SubjectPublicKeyInfoOwned as DecodePem>::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(meta.public.as_ref(), Some(&from_tool));
    assert_eq!(
        yk.verify_pin(PIN),
        Err(yubikey::Error::WrongPin { tries: 2 })
    );
    yk.change_pin(b"24682468", PIN).unwrap();
    yk.verify_pin(PIN).unwrap();
}

#[test]
fn pkcs11_tool_signs_through_ykcs11() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let vk = provision_9a(&dev);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sig = dir.path().join("sig");
    std::fs::write(&data, b"signed by the virtual key through ykcs11").unwrap();
    let pin = std::str::from_utf8(PIN).unwrap();
    run(
        &dev,
        "pkcs11-tool",
        &[
            "--module",
            &ykcs11(),
            "--login",
            "--pin",
            pin,
            "--sign",
            "--mechanism",
            "ECDSA-SHA256",
            "--id",
            "01",
            "-i",
            data.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ],
    );
    // CKM_ECDSA output is r || s.
    let raw = std::fs::read(&sig).unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&raw).unwrap();
    vk.verify(&std::fs::read(&data).unwrap(), &signature)
        .unwrap();
}

#[test]
fn pkcs11_tool_signs_rsa2048_through_ykcs11() {
    use yubikey::certificate::yubikey_signer::{Rsa2048, YubiRsa};
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let public = {
        let mut yk = dev.open_admin();
        let spki = piv::generate(
            &mut yk,
            SlotId::Signature,
            AlgorithmId::Rsa2048,
            PinPolicy::Once,
            TouchPolicy::Never,
        )
        .unwrap();
        yk.verify_pin(PIN).unwrap();
        yubikey::Certificate::generate_self_signed::<_, YubiRsa<Rsa2048>>(
            &mut yk,
            SlotId::Signature,
            x509_cert::serial_number::SerialNumber::from(9u32),
            x509_cert::time::Validity::from_now(Duration::from_secs(86400)).unwrap(),
            x509_cert::name::Name::from_str("CN=Signet RSA interop").unwrap(),
            spki.clone(),
            |_| Ok(()),
        )
        .unwrap();
        let der = der::Encode::to_der(&spki).unwrap();
        <rsa::RsaPublicKey as spki::DecodePublicKey>::from_public_key_der(&der).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sig = dir.path().join("sig");
    std::fs::write(&data, b"RSA PKCS#1 v1.5 through ykcs11").unwrap();
    let pin = std::str::from_utf8(PIN).unwrap();
    run(
        &dev,
        "pkcs11-tool",
        &[
            "--module",
            &ykcs11(),
            "--login",
            "--pin",
            pin,
            "--sign",
            "--mechanism",
            "SHA256-RSA-PKCS",
            "--id",
            "02",
            "-i",
            data.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ],
    );
    let signature =
        rsa::pkcs1v15::Signature::try_from(std::fs::read(&sig).unwrap().as_slice()).unwrap();
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public)
        .verify(&std::fs::read(&data).unwrap(), &signature)
        .unwrap();
}

#[test]
fn ssh_keygen_lists_the_key() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let vk = provision_9a(&dev);
    let out = run(&dev, "ssh-keygen", &["-D", &ykcs11()]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(&openssh_p256(&vk)), "{listed}");
}

/// A loopback sshd that accepts only `authorized_key` (testkit's: a
/// foreground child that dies with the test).
struct Sshd {
    inner: signet_testkit::Sshd,
    port: u16,
    // Read by sshd at each login; lives as long as the daemon.
    _keys: tempfile::TempDir,
}

impl Sshd {
    fn start(authorized_key: &str) -> Self {
        let keys = tempfile::tempdir().unwrap();
        let authorized_keys = keys.path().join("authorized_keys");
        std::fs::write(&authorized_keys, format!("{authorized_key}\n")).unwrap();
        let inner = signet_testkit::Sshd::start(
            &format!(
                "AuthorizedKeysFile {}\nPermitRootLogin prohibit-password",
                authorized_keys.display()
            ),
            None,
        );
        let port = inner.port();
        Self {
            inner,
            port,
            _keys: keys,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.inner.dir().join(name)
    }

    fn known_hosts_line(&self) -> String {
        let public = std::fs::read_to_string(self.path("host_ed25519.pub")).unwrap();
        format!("[127.0.0.1]:{} {}", self.port, public.trim())
    }
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn ssh_logs_in_with_the_card_key_through_pkcs11_provider() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let vk = provision_9a(&dev);
    let sshd = Sshd::start(&openssh_p256(&vk));
    let known_hosts = sshd.path("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line())).unwrap();
    // authorized_keys holds only the card's key, so a login proves the card
    // signed. ssh asks for the card PIN through SSH_ASKPASS (no terminal in tests).
    let askpass = sshd.path("askpass");
    write_executable(
        &askpass,
        &format!("#!/bin/sh\necho {}\n", std::str::from_utf8(PIN).unwrap()),
    );
    let user = current_user();
    let out = Command::new("ssh")
        .args(["-F", "/dev/null", "-p", &sshd.port.to_string()])
        .arg("-o")
        .arg(format!("PKCS11Provider={}", ykcs11()))
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-o",
            "ConnectTimeout=20",
        ])
        .arg(format!("{user}@127.0.0.1"))
        .arg("echo signet-login-ok")
        .envs(dev.envs())
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = std::fs::read_to_string(sshd.path("sshd.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "ssh failed: {}\nsshd log:\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "signet-login-ok"
    );
    assert!(log.contains("Accepted publickey"), "{log}");
    assert!(log.contains("ECDSA"), "{log}");
}

#[test]
fn opensc_sees_the_reader() {
    let Some(dev) = Fixture::new(false) else {
        return;
    };
    let out = run(&dev, "opensc-tool", &["-l"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Yubico YubiKey"));
    // And the attestation root handed to verifiers parses.
    for root in dev.attestation_roots() {
        let der = der::Encode::to_der(&root).unwrap();
        assert!(Certificate::from_der(&der).is_ok());
    }
}
