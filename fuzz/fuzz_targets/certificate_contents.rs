//! Fuzz `check_certificate_contents` with the certificates a hostile log
//! mirror could put in an entry.
//!
//! The first byte picks the entry kind (low bits) and the form (high bit:
//! a precertificate — OpenSSH signed fields without a signature, or an
//! X.509 DER TBSCertificate); the rest is the certificate (an OpenSSH
//! certificate blob or X.509 DER). The entry's other fields are
//! taken from the certificate itself where it parses (serial, validity, key,
//! principals, and the subject its key id, CN or DN gives), so the checks
//! run past the first comparison into the names.
//!
//! Beyond "no panic": the answer is the same twice; and a certificate
//! accepted for one subject and principal list is refused for any other
//! subject, and with one principal more (each certificate names exactly
//! what its entry records).
#![no_main]

use der::Decode as _;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest as _, Sha256};
use signet_log::entry::{
    check_certificate_contents, spki_fingerprint, Actor, Base64Bytes, CertificateForm, Entry,
    EntryKind, IssuedCertificate, PinPolicy, PivDevice, Sha256Hex, TouchPolicy,
};

const KINDS: [EntryKind; 5] = [
    EntryKind::SshUserCert,
    EntryKind::SshHostCert,
    EntryKind::X509Cert,
    EntryKind::AdminSign,
    EntryKind::KeyRotation,
];

/// What the certificate says, as far as it parses.
#[derive(Default)]
struct Claimed {
    serial: String,
    fingerprint: String,
    validity: (u64, u64),
    principals: Vec<String>,
    subject: Option<String>,
}

fn from_ssh(bytes: &[u8], form: CertificateForm) -> Option<Claimed> {
    let cert = if form == CertificateForm::Precertificate {
        // The signed fields, completed with a placeholder signature.
        use ssh_key::encoding::Encode as _;
        let mut blob = bytes.to_vec();
        ssh_key::Signature::new(ssh_key::Algorithm::Ed25519, [0u8; 64])
            .ok()?
            .encode_prefixed(&mut blob)
            .ok()?;
        ssh_key::Certificate::from_bytes(&blob).ok()?
    } else {
        ssh_key::Certificate::from_bytes(bytes).ok()?
    };
    // "user=NAME serial=N" names NAME; anything else is tried whole.
    let key_id = cert.key_id();
    let subject = key_id
        .split_once('=')
        .and_then(|(_, rest)| rest.rsplit_once(" serial="))
        .map_or(key_id, |(name, _)| name);
    Some(Claimed {
        serial: cert.serial().to_string(),
        fingerprint: cert
            .public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string(),
        validity: (cert.valid_after(), cert.valid_before()),
        principals: cert.valid_principals().to_vec(),
        subject: Some(subject.to_owned()),
    })
}

fn from_x509(bytes: &[u8], form: CertificateForm) -> Option<Claimed> {
    let cert;
    let pre;
    let tbs = if form == CertificateForm::Precertificate {
        pre = x509_cert::TbsCertificate::from_der(bytes).ok()?;
        &pre
    } else {
        cert = x509_cert::Certificate::from_der(bytes).ok()?;
        cert.tbs_certificate()
    };
    let serial = tbs.serial_number().as_bytes();
    let first = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    let serial: String = serial[first..].iter().map(|b| format!("{b:02x}")).collect();
    let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
    let cn = tbs
        .subject()
        .common_name()
        .ok()
        .flatten()
        .map(|cn| cn.value().into_owned());
    Some(Claimed {
        serial: serial.trim_start_matches('0').to_owned(),
        fingerprint: spki_fingerprint(tbs.subject_public_key_info()).unwrap_or_default(),
        validity: (
            secs(&tbs.validity().not_before),
            secs(&tbs.validity().not_after),
        ),
        principals: Vec::new(),
        subject: cn.or_else(|| Some(tbs.subject().to_string())),
    })
}

fn entry(kind: EntryKind, form: CertificateForm, bytes: &[u8], claimed: &Claimed) -> Entry {
    Entry {
        kind,
        time: claimed.validity.0,
        actor: Actor::User {
            name: "alice".into(),
            webauthn_credential_id: None,
            piv_device: Some(PivDevice {
                serial: 12_345_678,
                pin_policy: PinPolicy::Once,
                touch_policy: TouchPolicy::Always,
            }),
            webauthn_sign_count: None,
        },
        request_hash: None,
        subject: claimed.subject.clone(),
        principals: claimed.principals.clone(),
        roles: vec!["prod-sre".into()],
        certificate: Some(IssuedCertificate {
            serial: claimed.serial.clone(),
            public_key_fingerprint: claimed.fingerprint.clone(),
            not_before: claimed.validity.0,
            not_after: claimed.validity.1,
            sha256: Sha256Hex(Sha256::digest(bytes).into()),
            bytes: Base64Bytes(bytes.to_vec()),
            form,
        }),
        change: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, bytes)) = data.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(k & 0x7f) % KINDS.len()];
    let form = if k & 0x80 == 0 {
        CertificateForm::Full
    } else {
        CertificateForm::Precertificate
    };
    let claimed = from_ssh(bytes, form)
        .or_else(|| from_x509(bytes, form))
        .unwrap_or_default();
    let honest = entry(kind, form, bytes, &claimed);
    let verdict = check_certificate_contents(&honest).map_err(|e| e.to_string());
    assert_eq!(
        verdict,
        check_certificate_contents(&honest).map_err(|e| e.to_string()),
        "the same entry, another answer"
    );
    if verdict.is_err() {
        return;
    }
    // Accepted: the certificate names this subject and these principals only.
    for other in ["", "x", "alice", "mallory"]
        .iter()
        .map(|s| honest.subject.clone().unwrap_or_default() + s)
        .filter(|s| Some(s) != honest.subject.as_ref())
        .map(Some)
        .chain([None])
    {
        let mut lie = honest.clone();
        lie.subject = other;
        assert!(
            check_certificate_contents(&lie).is_err(),
            "accepted for subject {:?} and for {:?}",
            honest.subject,
            lie.subject
        );
    }
    let mut lie = honest.clone();
    lie.principals.push("root".into());
    assert!(
        check_certificate_contents(&lie).is_err(),
        "accepted with principals {:?} and {:?}",
        honest.principals,
        lie.principals
    );
});
