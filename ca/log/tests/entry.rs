//! The entry format: canonical encoding, strict decoding, field rules.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use sha2::{Digest, Sha256};
use signet_log::entry::{
    Actor, Base64Bytes, CertificateForm, Change, Entry, EntryKind, IssuedCertificate, PinPolicy,
    PivDevice, Sha256Hex, TouchPolicy,
};
use signet_log::{EntryError, Error};

fn cert(serial: &str) -> IssuedCertificate {
    let bytes = b"ssh-ed25519-cert-v01@openssh.com certificate bytes".to_vec();
    IssuedCertificate {
        serial: serial.into(),
        public_key_fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".into(),
        not_before: 1_763_856_000,
        not_after: 1_763_884_800,
        sha256: Sha256Hex(Sha256::digest(&bytes).into()),
        bytes: Base64Bytes(bytes),
        form: signet_log::entry::CertificateForm::Full,
    }
}

fn ssh_user_entry() -> Entry {
    Entry {
        kind: EntryKind::SshUserCert,
        time: 1_763_856_000,
        actor: Actor::User {
            name: "alice".into(),
            webauthn_credential_id: Some(Base64Bytes(vec![1, 2, 3, 4, 250])),
            piv_device: Some(PivDevice {
                serial: 12_345_678,
                pin_policy: PinPolicy::Once,
                touch_policy: TouchPolicy::Always,
            }),
            webauthn_sign_count: None,
        },
        request_hash: Some(Sha256Hex([0x11; 32])),
        subject: None,
        principals: vec!["root".into(), "ubuntu".into()],
        roles: vec!["prod-sre".into()],
        certificate: Some(cert("9876543210")),
        change: None,
    }
}

fn lock_entry() -> Entry {
    Entry {
        kind: EntryKind::Lock,
        time: 1_763_856_100,
        actor: Actor::LocalAdmin {
            unix_user: "secops".into(),
        },
        request_hash: None,
        subject: Some("alice".into()),
        principals: vec![],
        roles: vec![],
        certificate: None,
        change: None,
    }
}

fn entry_err(r: signet_log::Result<Entry>) -> EntryError {
    match r {
        Err(Error::Entry(e)) => e,
        other => panic!("expected an entry error, got {other:?}"),
    }
}

/// The canonical encodings are committed as vectors: a change to the format
/// shows up as a changed file, never silently.
#[test]
fn golden_encodings() {
    for (name, e) in [("ssh-user-cert", ssh_user_entry()), ("lock", lock_entry())] {
        let bytes = e.to_canonical_bytes().unwrap();
        let path = common::vector_path(&format!("entry/{name}.json"));
        if std::env::var_os("SIGNET_REGENERATE_VECTORS").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let golden = std::fs::read(&path).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            String::from_utf8(golden.clone()).unwrap()
        );
        assert_eq!(Entry::from_bytes(&golden).unwrap(), e);
        assert_eq!(
            e.leaf_hash().unwrap(),
            signet_log::merkle::leaf_hash(&golden)
        );
    }
}

#[test]
fn encoding_is_sorted_and_compact() {
    let s = String::from_utf8(lock_entry().to_canonical_bytes().unwrap()).unwrap();
    assert_eq!(
        s,
        r#"{"actor":{"type":"local-admin","unix_user":"secops"},"kind":"lock","subject":"alice","time":1763856100,"version":1}"#
    );
}

#[test]
fn rejects_non_canonical_and_unknown() {
    let good = String::from_utf8(lock_entry().to_canonical_bytes().unwrap()).unwrap();
    type Case = (String, fn(&EntryError) -> bool);
    let cases: Vec<Case> = vec![
        // whitespace, key order, escapes
        (good.replace(",", ", "), |e| *e == EntryError::NonCanonical),
        (format!("{good}\n"), |e| *e == EntryError::NonCanonical),
        (format!(" {good}"), |e| *e == EntryError::NonCanonical),
        (
            r#"{"kind":"lock","actor":{"type":"local-admin","unix_user":"secops"},"subject":"alice","time":1763856100,"version":1}"#.into(),
            |e| *e == EntryError::NonCanonical,
        ),
        (good.replace("alice", "\\u0061lice"), |e| *e == EntryError::NonCanonical),
        // duplicate keys
        (good.replace("\"time\"", "\"time\":1,\"time\""), |e| matches!(e, EntryError::Invalid(_) | EntryError::NonCanonical)),
        (good.replace("\"kind\":\"lock\"", "\"kind\":\"lock\",\"kind\":\"lock\""), |e| matches!(e, EntryError::Invalid(_) | EntryError::NonCanonical)),
        (good.replace("\"subject\"", "\"principals\":[],\"subject\""), |e| *e == EntryError::NonCanonical),
        (good.replace("\"subject\"", "\"request_hash\":null,\"subject\""), |e| *e == EntryError::NonCanonical),
        // unknown fields, top level and nested
        (good.replace("\"subject\"", "\"extra\":1,\"subject\""), |e| matches!(e, EntryError::Invalid(_))),
        (good.replace("\"unix_user\"", "\"uid\":0,\"unix_user\""), |e| matches!(e, EntryError::Invalid(_) | EntryError::NonCanonical)),
        (good.replace("local-admin", "robot"), |e| matches!(e, EntryError::Invalid(_))),
        (good.replace("\"lock\"", "\"lockdown\""), |e| matches!(e, EntryError::Invalid(_))),
        // versions
        (good.replace("\"version\":1", "\"version\":2"), |e| *e == EntryError::UnsupportedVersion),
        (good.replace("\"version\":1", "\"version\":\"1\""), |e| *e == EntryError::UnsupportedVersion),
        (good.replace("\"version\":1", "\"version\":1.0"), |e| *e == EntryError::UnsupportedVersion),
        (good.replace(",\"version\":1", ""), |e| *e == EntryError::UnsupportedVersion),
        // numbers
        (good.replace("1763856100", "1763856100.0"), |e| matches!(e, EntryError::Invalid(_))),
        (good.replace("1763856100", "1.7638561e9"), |e| matches!(e, EntryError::Invalid(_))),
        (good.replace("1763856100", "-1"), |e| matches!(e, EntryError::Invalid(_))),
        (good.replace("1763856100", "18446744073709551616"), |e| matches!(e, EntryError::Invalid(_))),
        // not an object, not JSON
        ("[]".into(), |e| matches!(e, EntryError::Invalid(_))),
        ("".into(), |e| matches!(e, EntryError::Invalid(_))),
        ("{".into(), |e| matches!(e, EntryError::Invalid(_))),
        ("null".into(), |e| matches!(e, EntryError::Invalid(_))),
        ("[".repeat(100_000), |e| matches!(e, EntryError::Invalid(_) | EntryError::TooLarge(_))),
    ];
    for (text, ok) in cases {
        let e = entry_err(Entry::from_bytes(text.as_bytes()));
        assert!(ok(&e), "{text:.200}: {e:?}");
    }
    assert!(Entry::from_bytes(b"\xff\xfe").is_err());
}

#[test]
fn field_rules() {
    let check = |e: Entry| match e.to_canonical_bytes() {
        Err(Error::Entry(EntryError::BadField(f))) => f,
        other => panic!("expected a field error, got {other:?}"),
    };
    let mut e = ssh_user_entry();
    e.certificate = None;
    assert_eq!(check(e), "certificate");

    for serial in ["", "01", "-1", "18446744073709551616", "abc"] {
        let mut e = ssh_user_entry();
        e.certificate = Some(cert(serial));
        assert_eq!(check(e), "certificate.serial", "{serial}");
    }
    let mut e = ssh_user_entry();
    e.kind = EntryKind::X509Cert;
    e.certificate = Some(cert("7f3a0012"));
    e.to_canonical_bytes().unwrap();
    for serial in ["0a", "7F", "", &"a".repeat(41)] {
        let mut e = e.clone();
        e.certificate = Some(cert(serial));
        assert_eq!(check(e), "certificate.serial", "{serial}");
    }

    let mut e = ssh_user_entry();
    if let Some(c) = e.certificate.as_mut() {
        c.bytes.0.push(0);
    }
    assert_eq!(check(e), "certificate.sha256");

    for fp in [
        "",
        "SHA256:",
        "MD5:aa",
        "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    ] {
        let mut e = ssh_user_entry();
        if let Some(c) = e.certificate.as_mut() {
            c.public_key_fingerprint = fp.into();
        }
        assert_eq!(check(e), "certificate.public_key_fingerprint", "{fp}");
    }

    let mut e = ssh_user_entry();
    if let Some(c) = e.certificate.as_mut() {
        c.not_after = c.not_before;
    }
    assert_eq!(check(e), "certificate.not_after");

    let mut e = ssh_user_entry();
    e.principals.push(String::new());
    assert_eq!(check(e), "principals");

    let mut e = lock_entry();
    e.subject = Some("a\nb".into());
    assert_eq!(check(e), "subject");

    let mut e = ssh_user_entry();
    e.actor = Actor::User {
        name: String::new(),
        webauthn_credential_id: None,
        piv_device: None,
        webauthn_sign_count: None,
    };
    assert_eq!(check(e), "actor.name");

    // Too big for an entry bundle.
    let mut e = ssh_user_entry();
    let bytes = vec![0u8; 60_000];
    if let Some(c) = e.certificate.as_mut() {
        c.sha256 = Sha256Hex(Sha256::digest(&bytes).into());
        c.bytes = Base64Bytes(bytes);
    }
    assert!(matches!(
        e.to_canonical_bytes(),
        Err(Error::Entry(EntryError::TooLarge(_)))
    ));
}

#[test]
fn every_kind_round_trips() {
    for kind in [
        EntryKind::SshUserCert,
        EntryKind::SshHostCert,
        EntryKind::X509Cert,
        EntryKind::AdminSign,
        EntryKind::Enrollment,
        EntryKind::KeyRemoval,
        EntryKind::RoleChange,
        EntryKind::Lock,
        EntryKind::Unlock,
        EntryKind::KeyRotation,
    ] {
        let mut e = if kind.issues_certificate() {
            ssh_user_entry()
        } else {
            lock_entry()
        };
        e.kind = kind;
        if kind == EntryKind::X509Cert {
            e.certificate = Some(cert("1f"));
        }
        let bytes = e.to_canonical_bytes().unwrap();
        assert_eq!(Entry::from_bytes(&bytes).unwrap(), e, "{kind:?}");
    }
}

#[test]
fn strings_with_escapes_round_trip() {
    let mut e = lock_entry();
    e.subject = Some("quote\" backslash\\ é ✓ \u{2028}".into());
    let bytes = e.to_canonical_bytes().unwrap();
    assert_eq!(Entry::from_bytes(&bytes).unwrap(), e);
}

#[test]
fn replay_a_small_log() {
    use signet_log::checkpoint::Checkpoint;
    use signet_log::merkle::root_from_leaf_hashes;
    use signet_log::replay::Replay;

    let entries: Vec<Vec<u8>> = (0..5u64)
        .map(|i| {
            let mut e = lock_entry();
            e.time += i;
            e.to_canonical_bytes().unwrap()
        })
        .collect();
    let leaves: Vec<_> = entries
        .iter()
        .map(|e| signet_log::merkle::leaf_hash(e))
        .collect();
    let cp = Checkpoint::new(
        "ca.example.com/signet-log",
        5,
        root_from_leaf_hashes(&leaves),
    )
    .unwrap();

    let mut r = Replay::new();
    for e in &entries {
        r.push(e).unwrap();
    }
    r.finish(&cp).unwrap();

    // One entry short, one entry altered, one entry not canonical.
    let mut short = Replay::new();
    for e in &entries[..4] {
        short.push(e).unwrap();
    }
    assert!(short.finish(&cp).is_err());
    let mut altered = Replay::new();
    for (i, e) in entries.iter().enumerate() {
        if i == 2 {
            let mut x = Entry::from_bytes(e).unwrap();
            x.subject = Some("mallory".into());
            altered.push(&x.to_canonical_bytes().unwrap()).unwrap();
        } else {
            altered.push(e).unwrap();
        }
    }
    assert!(altered.finish(&cp).is_err());
    let mut bad = Replay::new();
    let mut spaced = entries[0].clone();
    spaced.push(b' ');
    assert!(bad.push(&spaced).is_err());
    assert_eq!(bad.size(), 0);
}

/// Admin actions carry their content, and it must belong to the kind: the
/// CA rebuilds its state from these, so a lock recorded as an enrollment
/// must not parse.
#[test]
fn admin_changes_round_trip_and_belong_to_their_kind() {
    let changes = [
        Change::Invite {
            token_sha256: Sha256Hex([7; 32]),
            expires: 1_763_859_700,
        },
        Change::Credential {
            id: Base64Bytes(vec![1, 2, 3]),
            public_key_cose: Base64Bytes(vec![0xa5, 1, 2]),
            algorithm: -7,
            aaguid: Base64Bytes(vec![0; 16]),
            attestation_format: "packed".into(),
            sign_count: 1,
            invite_sha256: Sha256Hex([7; 32]),
        },
        Change::CredentialRemoved {
            id: Base64Bytes(vec![1, 2, 3]),
        },
        Change::Policy {
            change: serde_json::json!({"put-user": {"name": "alice", "roles": ["sre"]}}),
        },
        Change::Lock {
            reason: "laptop stolen".into(),
            until: Some(1_763_900_000),
        },
        Change::Unlock {
            reason: "laptop found".into(),
        },
    ];
    for change in changes {
        let mut e = lock_entry();
        e.kind = change.kind();
        e.change = Some(change.clone());
        let bytes = e.to_canonical_bytes().unwrap();
        assert_eq!(Entry::from_bytes(&bytes).unwrap(), e);
        // The same change under another kind is refused.
        let mut wrong = e.clone();
        wrong.kind = if change.kind() == EntryKind::Lock {
            EntryKind::Unlock
        } else {
            EntryKind::Lock
        };
        assert!(matches!(
            wrong.to_canonical_bytes(),
            Err(Error::Entry(EntryError::BadField(f))) if f.starts_with("change")
        ));
    }
    // An invite without its token hash says nothing an auditor can check.
    let mut invite = lock_entry();
    invite.kind = EntryKind::Invite;
    assert!(invite.to_canonical_bytes().is_err());
    // A credential with a short AAGUID, a policy change that is not an object.
    let mut bad = lock_entry();
    bad.kind = EntryKind::Enrollment;
    bad.change = Some(Change::Credential {
        id: Base64Bytes(vec![1]),
        public_key_cose: Base64Bytes(vec![1]),
        algorithm: -7,
        aaguid: Base64Bytes(vec![0; 15]),
        attestation_format: "packed".into(),
        sign_count: 0,
        invite_sha256: Sha256Hex([0; 32]),
    });
    assert!(bad.to_canonical_bytes().is_err());
    bad.kind = EntryKind::RoleChange;
    bad.change = Some(Change::Policy {
        change: serde_json::json!(["not", "an", "object"]),
    });
    assert!(bad.to_canonical_bytes().is_err());
}

/// Entries logged before precertificates existed have no `form` field; they
/// must decode as full certificates and re-encode to the very same bytes
/// (same leaf hash), or every existing log would stop verifying.
#[test]
fn existing_entries_keep_their_bytes() {
    let golden = std::fs::read(common::vector_path("entry/ssh-user-cert.json")).unwrap();
    assert!(!String::from_utf8_lossy(&golden).contains("\"form\""));
    let e = Entry::from_bytes(&golden).unwrap();
    let c = e.certificate.as_ref().unwrap();
    assert_eq!(c.form, CertificateForm::Full);
    assert_eq!(e.to_canonical_bytes().unwrap(), golden);
}

/// A precertificate entry says so (`"form":"precertificate"`); the full
/// form is only ever implied, so writing it out is another spelling and
/// refused; unknown forms are refused.
#[test]
fn precertificate_form_is_written_and_read() {
    let mut e = ssh_user_entry();
    e.certificate.as_mut().unwrap().form = CertificateForm::Precertificate;
    let bytes = e.to_canonical_bytes().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.contains(r#""form":"precertificate","not_after""#),
        "{text}"
    );
    assert_eq!(Entry::from_bytes(&bytes).unwrap(), e);
    assert_ne!(
        e.leaf_hash().unwrap(),
        ssh_user_entry().leaf_hash().unwrap()
    );
    let full = text.replace("\"precertificate\"", "\"full\"");
    assert_eq!(
        entry_err(Entry::from_bytes(full.as_bytes())),
        EntryError::NonCanonical
    );
    let other = text.replace("\"precertificate\"", "\"pre-certificate\"");
    assert!(matches!(
        entry_err(Entry::from_bytes(other.as_bytes())),
        EntryError::Invalid(_)
    ));
}
