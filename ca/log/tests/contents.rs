//! The certificate inside an entry must say what the entry says. Certificates
//! made by ssh-keygen and openssl (vectors/certs/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use sha2::{Digest, Sha256};
use signet_log::entry::{
    check_certificate_contents, Actor, Base64Bytes, Entry, EntryKind, IssuedCertificate, Sha256Hex,
};

const USER_CERT: &str = include_str!("vectors/certs/ssh-user-cert.pub");
const HOST_CERT: &str = include_str!("vectors/certs/ssh-host-cert.pub");
const X509_PEM: &str = include_str!("vectors/certs/x509.pem");
const X509_FP: &str = "SHA256:o4hvNjA8n8gPYI81S5xp78vgvrtS9swxKG/taXPS+io";

fn openssh_blob(line: &str) -> Vec<u8> {
    let b64 = line.split_whitespace().nth(1).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn entry(
    kind: EntryKind,
    subject: Option<&str>,
    principals: &[&str],
    serial: &str,
    fp: &str,
    validity: (u64, u64),
    bytes: Vec<u8>,
) -> Entry {
    Entry {
        kind,
        time: validity.0,
        actor: Actor::LocalAdmin {
            unix_user: "root (uid 0)".into(),
        },
        request_hash: None,
        subject: subject.map(str::to_owned),
        principals: principals.iter().map(|p| p.to_string()).collect(),
        roles: Vec::new(),
        certificate: Some(IssuedCertificate {
            serial: serial.into(),
            public_key_fingerprint: fp.into(),
            not_before: validity.0,
            not_after: validity.1,
            sha256: Sha256Hex(Sha256::digest(&bytes).into()),
            bytes: Base64Bytes(bytes),
        }),
    }
}

const DAY: (u64, u64) = (1_767_225_600, 1_767_312_000);
const USER_FP: &str = "SHA256:aa1Aqa42qh9ZP39aKy2oEnFVZjICDX05G5HgHM1YVzg";
const HOST_FP: &str = "SHA256:lRxgCkMxm68TtxWkygh2asGZOIuQ4NzzKY2CAErMERk";

fn user_entry() -> Entry {
    entry(
        EntryKind::SshUserCert,
        Some("alice"),
        &["root", "deploy"],
        "42",
        USER_FP,
        DAY,
        openssh_blob(USER_CERT),
    )
}

#[test]
fn matching_entries_pass() {
    check_certificate_contents(&user_entry()).unwrap();
    let host = entry(
        EntryKind::SshHostCert,
        Some("node1.example"),
        &["node1.example"],
        "7",
        HOST_FP,
        DAY,
        openssh_blob(HOST_CERT),
    );
    check_certificate_contents(&host).unwrap();
    let x509 = entry(
        EntryKind::X509Cert,
        Some("alice"),
        &[],
        "4a3b2c1d0e0f",
        X509_FP,
        (1_795_418_034, 1_795_504_434),
        pem_der(X509_PEM),
    );
    check_certificate_contents(&x509).unwrap();
}

#[test]
fn every_field_that_disagrees_is_named() {
    type Change = Box<dyn Fn(&mut Entry)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|e| e.certificate.as_mut().unwrap().serial = "43".into()),
            "serial",
        ),
        (
            Box::new(|e| e.certificate.as_mut().unwrap().not_before -= 1),
            "not_before",
        ),
        (
            Box::new(|e| e.certificate.as_mut().unwrap().not_after += 3600),
            "not_after",
        ),
        (
            Box::new(|e| e.principals = vec!["root".into()]),
            "principals",
        ),
        (
            Box::new(|e| e.principals = vec!["deploy".into(), "root".into()]),
            "principals",
        ),
        (
            Box::new(|e| e.principals.push("admin".into())),
            "principals",
        ),
        (
            Box::new(|e| e.certificate.as_mut().unwrap().public_key_fingerprint = HOST_FP.into()),
            "fingerprint",
        ),
        (
            Box::new(|e| e.kind = EntryKind::SshHostCert),
            "certificate type",
        ),
        (
            Box::new(|e| {
                e.certificate.as_mut().unwrap().bytes = Base64Bytes(b"not a certificate".to_vec())
            }),
            "not an OpenSSH certificate",
        ),
    ];
    for (change, named) in cases {
        let mut e = user_entry();
        change(&mut e);
        let err = check_certificate_contents(&e).unwrap_err().to_string();
        assert!(err.contains(named), "expected {named:?} in {err}");
    }
}

#[test]
fn x509_fields_that_disagree_are_named() {
    let good = entry(
        EntryKind::X509Cert,
        Some("alice"),
        &[],
        "4a3b2c1d0e0f",
        X509_FP,
        (1_795_418_034, 1_795_504_434),
        pem_der(X509_PEM),
    );
    let mut wrong_serial = good.clone();
    wrong_serial.certificate.as_mut().unwrap().serial = "4a3b2c1d0e10".into();
    let mut wrong_subject = good.clone();
    wrong_subject.subject = Some("mallory".into());
    let mut wrong_end = good.clone();
    wrong_end.certificate.as_mut().unwrap().not_after += 86_400;
    let mut ssh_bytes = good.clone();
    ssh_bytes.certificate.as_mut().unwrap().bytes = Base64Bytes(openssh_blob(USER_CERT));
    for (e, named) in [
        (wrong_serial, "serial"),
        (wrong_subject, "CN"),
        (wrong_end, "not_after"),
        (ssh_bytes, "not a DER"),
    ] {
        let err = check_certificate_contents(&e).unwrap_err().to_string();
        assert!(err.contains(named), "expected {named:?} in {err}");
    }
}

#[test]
fn entries_without_certificates_pass() {
    let mut e = user_entry();
    e.kind = EntryKind::KeyRotation;
    e.certificate = None;
    check_certificate_contents(&e).unwrap();
}

#[test]
fn x509_key_fingerprints_match_ssh_keygen() {
    use der::Decode;
    for (pem, expected) in [
        (X509_PEM, X509_FP),
        (
            include_str!("vectors/certs/x509-rsa.pem"),
            "SHA256:7hTILUc+l7lSoHXztUGzW11ssbSEtNQy09h5dj38cUU",
        ),
        (
            include_str!("vectors/certs/x509-ed25519.pem"),
            "SHA256:NzqOuRw7S6rJAtJmN0MpR6+V2uTWD6t3hgMcAkHPPvw",
        ),
    ] {
        let cert = x509_cert::Certificate::from_der(&pem_der(pem)).unwrap();
        assert_eq!(
            signet_log::entry::x509_key_fingerprint(&cert).unwrap(),
            expected
        );
    }
}

#[test]
fn x509_entry_naming_another_key_is_caught() {
    let mut e = entry(
        EntryKind::X509Cert,
        Some("alice"),
        &[],
        "4a3b2c1d0e0f",
        USER_FP,
        (1_795_418_034, 1_795_504_434),
        pem_der(X509_PEM),
    );
    let err = check_certificate_contents(&e).unwrap_err().to_string();
    assert!(err.contains("fingerprint"), "{err}");
    e.certificate.as_mut().unwrap().public_key_fingerprint = X509_FP.into();
    check_certificate_contents(&e).unwrap();
}
