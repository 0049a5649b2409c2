//! The certificate inside an entry must say what the entry says. Certificates
//! made by ssh-keygen and openssl (vectors/certs/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use sha2::{Digest, Sha256};
use signet_log::entry::{
    check_certificate_contents, Actor, Base64Bytes, Entry, EntryKind, IssuedCertificate, PinPolicy,
    PivDevice, Sha256Hex, TouchPolicy,
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
            form: signet_log::entry::CertificateForm::Full,
        }),
        change: None,
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

const NODE1_CERT: &str = include_str!("vectors/certs/identity/ssh-host-node1.pub");
const NODE1_FP: &str = "SHA256:inAGbulPbDuCcy4FVANXIe9WUA9+Gwu5bLy+Kzw/RKM";
const ALICE_PEM: &str = include_str!("vectors/certs/identity/x509-alice.pem");
const ALICE_FP: &str = "SHA256:qRGIp4N4J9R3K+LYOAYJXfNZkdRlgH27xNYtsoACsaE";
const ALICE_VALIDITY: (u64, u64) = (1_796_085_245, 1_796_171_645);

fn host_entry() -> Entry {
    entry(
        EntryKind::SshHostCert,
        Some("node1.example"),
        &["node1.example", "node1"],
        "7",
        NODE1_FP,
        DAY,
        openssh_blob(NODE1_CERT),
    )
}

/// Alice's client certificate as the CA issues it (CN, SAN URI, CA:FALSE).
fn alice_x509() -> Entry {
    entry(
        EntryKind::X509Cert,
        Some("alice"),
        &[],
        "1001",
        ALICE_FP,
        ALICE_VALIDITY,
        pem_der(ALICE_PEM),
    )
}

#[test]
fn matching_entries_pass() {
    check_certificate_contents(&user_entry()).unwrap();
    check_certificate_contents(&host_entry()).unwrap();
    check_certificate_contents(&alice_x509()).unwrap();
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
    let good = alice_x509();
    let mut wrong_serial = good.clone();
    wrong_serial.certificate.as_mut().unwrap().serial = "1002".into();
    let mut wrong_subject = good.clone();
    wrong_subject.subject = Some("mallory".into());
    let mut wrong_end = good.clone();
    wrong_end.certificate.as_mut().unwrap().not_after += 86_400;
    let mut ssh_bytes = good.clone();
    ssh_bytes.certificate.as_mut().unwrap().bytes = Base64Bytes(openssh_blob(USER_CERT));
    for (e, named) in [
        (wrong_serial, "serial"),
        (wrong_subject, "subject (certificate SAN URI)"),
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
    let mut e = alice_x509();
    e.certificate.as_mut().unwrap().public_key_fingerprint = USER_FP.into();
    let err = check_certificate_contents(&e).unwrap_err().to_string();
    assert!(err.contains("fingerprint"), "{err}");
    e.certificate.as_mut().unwrap().public_key_fingerprint = ALICE_FP.into();
    check_certificate_contents(&e).unwrap();
}

/// An entry for a certificate from `identity/`, its serial, validity and key
/// taken from the certificate (those fields have tests of their own above):
/// what is left to disagree is who it names.
fn x509_entry(file: &str, kind: EntryKind, subject: Option<&str>) -> Entry {
    use der::Decode;
    let path = format!(
        "{}/tests/vectors/certs/identity/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let der = pem_der(&std::fs::read_to_string(path).unwrap());
    let cert = x509_cert::Certificate::from_der(&der).unwrap();
    let tbs = cert.tbs_certificate();
    let serial: String = tbs
        .serial_number()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
    let fp = signet_log::entry::x509_key_fingerprint(&cert).unwrap();
    let mut e = entry(
        kind,
        subject,
        &[],
        serial.trim_start_matches('0'),
        &fp,
        (
            secs(&tbs.validity().not_before),
            secs(&tbs.validity().not_after),
        ),
        der,
    );
    e.actor = Actor::User {
        name: "alice".into(),
        webauthn_credential_id: None,
        piv_device: Some(PivDevice {
            serial: 12_345_678,
            pin_policy: PinPolicy::Once,
            touch_policy: TouchPolicy::Always,
        }),
        webauthn_sign_count: None,
    };
    e
}

fn caught(e: &Entry, named: &str) {
    let err = check_certificate_contents(e)
        .expect_err(&format!("a lie passed (expected {named:?})"))
        .to_string();
    assert!(err.contains(named), "expected {named:?} in {err:?}");
}

#[test]
fn ssh_key_id_must_name_the_subject() {
    let alice_key_id = openssh_blob(include_str!("vectors/certs/identity/ssh-user-alice.pub"));
    let mut e = user_entry();
    e.certificate.as_mut().unwrap().bytes = Base64Bytes(alice_key_id.clone());
    e.certificate.as_mut().unwrap().sha256 = Sha256Hex(Sha256::digest(&alice_key_id).into());
    e.certificate.as_mut().unwrap().public_key_fingerprint =
        "SHA256:ypz9mAvap6h9e+uO1JfG5aVEBkSKYjxns1FI4CpepJM".into();
    check_certificate_contents(&e).unwrap();

    // The entry's subject is missing, or is not who the key id names.
    let mut no_subject = e.clone();
    no_subject.subject = None;
    caught(&no_subject, "subject (missing");
    let mut other = e.clone();
    other.subject = Some("mallory".into());
    caught(&other, "subject (certificate key id)");
    // The certificate's key id names mallory; the entry says alice.
    let blob = openssh_blob(include_str!(
        "vectors/certs/identity/ssh-user-keyid-mallory.pub"
    ));
    let mut lie = e.clone();
    lie.certificate.as_mut().unwrap().sha256 = Sha256Hex(Sha256::digest(&blob).into());
    lie.certificate.as_mut().unwrap().bytes = Base64Bytes(blob);
    caught(&lie, "subject (certificate key id)");

    // Host certificates: `host=<subject> serial=<serial>`, every principal.
    let mut host = host_entry();
    host.subject = Some("node1".into());
    caught(&host, "subject (certificate key id)");
    let mut host = host_entry();
    host.principals.pop();
    caught(&host, "principals");
    let old_style = entry(
        EntryKind::SshHostCert,
        Some("node1.example"),
        &["node1.example"],
        "7",
        HOST_FP,
        DAY,
        openssh_blob(HOST_CERT),
    );
    caught(&old_style, "subject (certificate key id)");
}

#[test]
fn admin_sign_and_other_kinds_are_checked_too() {
    // An admin-signed OpenSSH certificate: same rules, either type.
    let mut e = user_entry();
    e.kind = EntryKind::AdminSign;
    check_certificate_contents(&e).unwrap();
    e.subject = Some("mallory".into());
    caught(&e, "subject (certificate key id)");
    e.subject = None;
    caught(&e, "subject (missing");
    let mut e = user_entry();
    e.kind = EntryKind::AdminSign;
    e.principals.reverse();
    caught(&e, "principals");
    let mut host = host_entry();
    host.kind = EntryKind::AdminSign;
    check_certificate_contents(&host).unwrap();

    // The root, as `signet-ca init` logs it: subject is its whole DN.
    let root_dn = "O=Example,CN=Signet Test Root"; // openssl x509 -subject -nameopt RFC2253
    let root = x509_entry("x509-root.pem", EntryKind::AdminSign, Some(root_dn));
    check_certificate_contents(&root).unwrap();
    for lie in ["CN=Signet Test Root", "O=Example,CN=Other Root", "alice"] {
        caught(
            &x509_entry("x509-root.pem", EntryKind::AdminSign, Some(lie)),
            "subject (certificate subject DN)",
        );
    }
    caught(
        &x509_entry("x509-root.pem", EntryKind::AdminSign, None),
        "subject (missing",
    );
    // Logged as a client certificate, the root is caught.
    caught(
        &x509_entry("x509-root.pem", EntryKind::X509Cert, Some(root_dn)),
        "is a CA",
    );
    // A certificate in a kind that does not issue one is checked the same way.
    check_certificate_contents(&x509_entry(
        "x509-root.pem",
        EntryKind::KeyRotation,
        Some(root_dn),
    ))
    .unwrap();
    caught(
        &x509_entry(
            "x509-root.pem",
            EntryKind::KeyRotation,
            Some("x509-ca ecdsa-p256 SHA256:…"),
        ),
        "subject (certificate subject DN)",
    );
    // An admin-signed user certificate follows the user rules.
    check_certificate_contents(&x509_entry(
        "x509-alice.pem",
        EntryKind::AdminSign,
        Some("alice"),
    ))
    .unwrap();
    caught(
        &x509_entry("x509-san-mallory.pem", EntryKind::AdminSign, Some("alice")),
        "subject (certificate SAN URI)",
    );
}

#[test]
fn x509_names_relying_parties_read_must_be_the_entrys() {
    let user = |file: &str| x509_entry(file, EntryKind::X509Cert, Some("alice"));
    check_certificate_contents(&user("x509-alice.pem")).unwrap();

    caught(
        &x509_entry("x509-alice.pem", EntryKind::X509Cert, None),
        "subject (missing",
    );
    caught(
        &x509_entry("x509-alice.pem", EntryKind::X509Cert, Some("mallory")),
        "subject (certificate SAN URI)",
    );
    for (file, named) in [
        ("x509-san-mallory.pem", "subject (certificate SAN URI)"),
        ("x509-two-users.pem", "subject (certificate SAN URI)"),
        ("x509-cn-mallory.pem", "subject (certificate CN)"),
        (
            "x509-cn-and-o.pem",
            "subject (certificate DN is not just a CN)",
        ),
        (
            "x509-extra-dns.pem",
            "subjectAltName (a name other than a signet:// URI)",
        ),
        (
            "x509-other-uri.pem",
            "subjectAltName (a URI other than signet://)",
        ),
        (
            "x509-upper-scheme.pem",
            "subjectAltName (a URI other than signet://)",
        ),
        ("x509-no-san.pem", "no subjectAltName URI naming the user"),
        (
            "x509-ca-alice.pem",
            "kind (an x509-cert entry's certificate is a CA)",
        ),
        // The old vector: a self-signed CA certificate for CN=alice.
        ("../x509.pem", "is a CA"),
    ] {
        caught(&user(file), named);
    }
    // The trust domains differ (the role URI is another domain's).
    let mut e = user("x509-two-domains.pem");
    e.roles = vec!["prod-sre".into()];
    caught(&e, "subjectAltName (two trust domains)");
    // A name a relying party would unescape into another one.
    caught(
        &x509_entry("x509-escaped.pem", EntryKind::X509Cert, Some("%61lice")),
        "subjectAltName (a URI other than signet://)",
    );
    // An X.509 certificate grants no SSH principals.
    let mut e = user("x509-alice.pem");
    e.principals = vec!["root".into()];
    caught(&e, "principals (an X.509 certificate grants none)");
}

#[test]
fn x509_role_and_device_uris_must_be_in_the_entry() {
    let mut e = x509_entry(
        "x509-alice-role-device.pem",
        EntryKind::X509Cert,
        Some("alice"),
    );
    e.roles = vec!["dev".into(), "prod-sre".into()];
    check_certificate_contents(&e).unwrap();

    let mut no_role = e.clone();
    no_role.roles = vec!["dev".into()];
    caught(&no_role, "roles (certificate SAN URI)");

    let mut other_device = e.clone();
    if let Actor::User { piv_device, .. } = &mut other_device.actor {
        piv_device.as_mut().unwrap().serial = 87_654_321;
    }
    caught(&other_device, "actor.piv_device (certificate SAN URI)");
    let mut admin = e.clone();
    admin.actor = Actor::LocalAdmin {
        unix_user: "secops".into(),
    };
    caught(&admin, "actor.piv_device (certificate SAN URI)");
}

/// A host certificate without principals (made by `ssh-keygen -h` without
/// `-n`): stock OpenSSH accepts it under any host name, so an entry may not
/// describe one, even with an empty principal list that "matches".
#[test]
fn a_certificate_without_principals_is_refused() {
    let e = entry(
        EntryKind::SshHostCert,
        Some("node1.example"),
        &[],
        "8",
        "SHA256:Aq9NkuByJ6GzIJudQz74PSK5MN0qv+KKzh+Q3oCUAhs",
        DAY,
        openssh_blob(include_str!(
            "vectors/certs/identity/ssh-host-no-principals.pub"
        )),
    );
    caught(&e, "principals (the certificate has none");
}
