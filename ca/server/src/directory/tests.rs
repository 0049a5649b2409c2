//! The directory is a function of the log: entries applied in order give
//! the state, and entries the state cannot explain are refused.

use signet_log::entry::{Actor, Base64Bytes, Change, Entry, EntryKind, Sha256Hex};

use super::Directory;

fn admin(kind: EntryKind, subject: &str, change: Change) -> Entry {
    Entry {
        kind,
        time: 1_000,
        actor: Actor::LocalAdmin {
            unix_user: "root (uid 0)".into(),
        },
        request_hash: None,
        subject: Some(subject.into()),
        principals: Vec::new(),
        roles: Vec::new(),
        certificate: None,
        change: Some(change),
    }
}

fn invite(user: &str, token: u8) -> Entry {
    admin(
        EntryKind::Invite,
        user,
        Change::Invite {
            token_sha256: Sha256Hex([token; 32]),
            expires: 2_000,
        },
    )
}

fn enrollment(user: &str, token: u8, id: u8) -> Entry {
    admin(
        EntryKind::Enrollment,
        user,
        Change::Credential {
            id: Base64Bytes(vec![id; 16]),
            public_key_cose: Base64Bytes(vec![0xa5]),
            algorithm: -7,
            aaguid: Base64Bytes(vec![0; 16]),
            attestation_format: "packed".into(),
            sign_count: 3,
            invite_sha256: Sha256Hex([token; 32]),
        },
    )
}

#[test]
fn an_invite_is_spent_by_its_enrollment_once() {
    let mut d = Directory::default();
    d.apply(0, &invite("alice", 1)).unwrap();
    assert!(!d.invite(&[1; 32]).unwrap().spent);
    d.apply(1, &enrollment("alice", 1, 7)).unwrap();
    assert!(d.invite(&[1; 32]).unwrap().spent);
    assert_eq!(d.account("alice").unwrap().credentials.len(), 1);
    // The same invite again, another user's invite, no invite: refused,
    // and the state stays as it was.
    assert!(d.apply(2, &enrollment("alice", 1, 8)).is_err());
    d.apply(2, &invite("bob", 2)).unwrap();
    assert!(d.apply(3, &enrollment("alice", 2, 8)).is_err());
    assert!(d.apply(3, &enrollment("alice", 9, 8)).is_err());
    assert_eq!(d.account("alice").unwrap().credentials.len(), 1);
    // A credential registered twice is refused.
    assert!(d.apply(3, &enrollment("bob", 2, 7)).is_err());
}

#[test]
fn counters_only_move_forward_and_keys_can_be_removed() {
    let mut d = Directory::default();
    d.apply(0, &invite("alice", 1)).unwrap();
    d.apply(1, &enrollment("alice", 1, 7)).unwrap();
    let id = signet_webauthn::CredentialId(vec![7; 16]);
    assert!(d.note_use("alice", &id, 10, 1_100));
    assert!(d.note_use("alice", &id, 5, 1_050));
    let credential = &d.account("alice").unwrap().credentials[0];
    assert_eq!(credential.stored.sign_count, 10);
    assert_eq!(credential.last_used, Some(1_100));
    assert!(!d.note_use("bob", &id, 11, 1_200), "not bob's key");
    d.apply(
        2,
        &admin(
            EntryKind::KeyRemoval,
            "alice",
            Change::CredentialRemoved {
                id: Base64Bytes(vec![7; 16]),
            },
        ),
    )
    .unwrap();
    assert!(d.account("alice").unwrap().credentials.is_empty());
    assert!(d
        .apply(
            3,
            &admin(
                EntryKind::KeyRemoval,
                "alice",
                Change::CredentialRemoved {
                    id: Base64Bytes(vec![7; 16]),
                },
            ),
        )
        .is_err());
}

#[test]
fn locks_hold_until_they_end_or_an_unlock() {
    let mut d = Directory::default();
    d.apply(
        0,
        &admin(
            EntryKind::Lock,
            "alice",
            Change::Lock {
                reason: "laptop stolen".into(),
                until: Some(1_500),
            },
        ),
    )
    .unwrap();
    assert!(d.lock_of("alice", 1_499).is_some());
    assert!(d.lock_of("alice", 1_500).is_none());
    d.apply(
        1,
        &admin(
            EntryKind::Lock,
            "alice",
            Change::Lock {
                reason: "left the company".into(),
                until: None,
            },
        ),
    )
    .unwrap();
    assert!(d.lock_of("alice", 9_999_999).is_some());
    d.apply(
        2,
        &admin(
            EntryKind::Unlock,
            "alice",
            Change::Unlock {
                reason: "back".into(),
            },
        ),
    )
    .unwrap();
    assert!(d.lock_of("alice", 1_000).is_none());
}

#[test]
fn admin_actions_must_record_their_change() {
    let mut d = Directory::default();
    let mut bare = invite("alice", 1);
    bare.kind = EntryKind::Lock;
    bare.change = None;
    assert!(d.apply(0, &bare).is_err());
    let policy = admin(
        EntryKind::RoleChange,
        "alice",
        Change::Policy {
            change: serde_json::json!({"put_user": {"name": "alice", "roles": ["dev"]}}),
        },
    );
    d.apply(0, &policy).unwrap();
    assert!(d.policy().user("alice").is_some());
    let garbage = admin(
        EntryKind::RoleChange,
        "alice",
        Change::Policy {
            change: serde_json::json!({"make_admin": "alice"}),
        },
    );
    assert!(d.apply(1, &garbage).is_err());
}

fn lock(subject: &str, until: Option<u64>) -> Entry {
    admin(
        EntryKind::Lock,
        subject,
        Change::Lock {
            reason: "lost".into(),
            until,
        },
    )
}

fn unlock(subject: &str) -> Entry {
    admin(
        EntryKind::Unlock,
        subject,
        Change::Unlock {
            reason: "found".into(),
        },
    )
}

#[test]
fn device_locks_are_apart_from_user_locks_and_end() {
    use super::{device_of_subject, device_subject};
    assert_eq!(device_subject(12345), "device:12345");
    assert_eq!(device_of_subject("device:12345"), Some(12345));
    for bad in [
        "device:",
        "device:012",
        "device:-1",
        "device:4294967296",
        "alice",
        "device:1 ",
    ] {
        assert_eq!(device_of_subject(bad), None, "{bad:?}");
    }

    let mut d = Directory::default();
    d.apply(0, &lock(&device_subject(7), Some(1_500))).unwrap();
    assert!(d.device_lock(7, 1_499).is_some());
    assert!(d.device_lock(7, 1_500).is_none(), "a lock with a TTL ends");
    assert!(d.device_lock(8, 1_000).is_none());
    // A device lock is no user lock, not even of a user named like it.
    assert!(d.lock_of("device:7", 1_000).is_none());
    assert_eq!(d.user_locks().count(), 0);

    d.apply(1, &lock(&device_subject(8), None)).unwrap();
    assert!(d.device_lock(8, u64::MAX).is_some());
    d.apply(2, &unlock(&device_subject(8))).unwrap();
    assert!(d.device_lock(8, 1_000).is_none());

    // A subject that is not a canonical serial is refused, state unchanged.
    let err = d.apply(3, &lock("device:08", None)).unwrap_err();
    assert!(err.to_string().contains("device:<serial>"), "{err}");
    assert!(d.apply(3, &unlock("device:x")).is_err());
    assert_eq!(d.applied(), 3);
    assert_eq!(d.device_locks().len(), 1);
}

#[test]
fn node_changes_build_the_inventory_apart_from_the_roles() {
    let put = serde_json::json!({"put_node": {"name": "web-1", "address": "web-1:22", "labels": {"env": "prod"}}});
    d_apply_policy_value(put.clone(), |d| {
        assert_eq!(d.inventory().len(), 1);
        assert_eq!(d.inventory().node("web-1").unwrap().labels["env"], "prod");
        assert_eq!(d.policy().roles().count(), 0);
    });
    // A node change that breaks the rules does not apply: the CA would
    // rather not serve than act on a state the log does not explain.
    let mut d = Directory::default();
    let bad = serde_json::json!({"put_node": {"name": "web-1", "address": "web-1", "labels": {}}});
    let err = d
        .apply(
            0,
            &admin(
                EntryKind::RoleChange,
                "web-1",
                Change::Policy { change: bad },
            ),
        )
        .unwrap_err();
    assert!(err.to_string().contains("node change"), "{err}");
    assert!(d.inventory().is_empty());
    d.apply(
        0,
        &admin(
            EntryKind::RoleChange,
            "web-1",
            Change::Policy { change: put },
        ),
    )
    .unwrap();
    let remove = serde_json::json!({"remove_node": "web-1"});
    d.apply(
        1,
        &admin(
            EntryKind::RoleChange,
            "web-1",
            Change::Policy { change: remove },
        ),
    )
    .unwrap();
    assert!(d.inventory().is_empty());
}

fn d_apply_policy_value(change: serde_json::Value, check: impl FnOnce(&Directory)) {
    let mut d = Directory::default();
    d.apply(
        0,
        &admin(EntryKind::RoleChange, "x", Change::Policy { change }),
    )
    .unwrap();
    check(&d);
}

#[test]
fn proxy_invites_are_kept_apart_from_user_invites() {
    use super::{proxy_of_subject, proxy_subject};
    assert_eq!(proxy_subject("edge-1"), "proxy:edge-1");
    assert_eq!(proxy_of_subject("proxy:edge-1"), Some("edge-1"));
    assert_eq!(proxy_of_subject("proxy:"), None);
    assert_eq!(proxy_of_subject("proxy:a b"), None);
    assert_eq!(proxy_of_subject("edge-1"), None);

    let mut d = Directory::default();
    d.apply(0, &invite("proxy:edge-1", 5)).unwrap();
    let pending = d.proxy_invite(&[5; 32]).unwrap();
    assert_eq!((pending.name.as_str(), pending.spent), ("edge-1", false));
    // Not a user invite: an enrollment cannot spend it.
    assert!(d.invite(&[5; 32]).is_none());
    assert!(d.apply(1, &enrollment("proxy:edge-1", 5, 9)).is_err());
    // One token, one invite, whichever kind came first.
    assert!(d.apply(1, &invite("alice", 5)).is_err());
    d.apply(1, &invite("alice", 6)).unwrap();
    assert!(d.apply(2, &invite("proxy:edge-2", 6)).is_err());
    // A subject that names no valid proxy is refused.
    let err = d.apply(2, &invite("proxy:a b", 7)).unwrap_err();
    assert!(err.to_string().contains("proxy:<name>"), "{err}");
    assert_eq!(d.applied(), 2);
}

fn proxy_cert(subject: &str, token: u8, serial: &str) -> Entry {
    Entry {
        kind: EntryKind::X509Cert,
        time: 1_000,
        actor: Actor::LocalAdmin {
            unix_user: "proxy join (edge-1)".into(),
        },
        request_hash: Some(Sha256Hex([token; 32])),
        subject: Some(subject.into()),
        principals: Vec::new(),
        roles: Vec::new(),
        certificate: Some(signet_log::entry::IssuedCertificate {
            serial: serial.into(),
            public_key_fingerprint: format!("SHA256:{}", "A".repeat(43)),
            not_before: 900,
            not_after: 2_000,
            sha256: Sha256Hex([0; 32]),
            bytes: Base64Bytes(vec![1]),
            form: signet_log::entry::CertificateForm::Precertificate,
        }),
        change: None,
    }
}

#[test]
fn a_proxy_certificate_spends_its_invite_once() {
    let mut d = Directory::default();
    d.apply(0, &invite("proxy:edge-1", 5)).unwrap();
    // Another proxy's name on the certificate: refused, nothing spent.
    assert!(d.apply(1, &proxy_cert("proxy.edge-2", 5, "1a")).is_err());
    assert!(!d.proxy_invite(&[5; 32]).unwrap().spent);
    assert!(d.proxy_cert("1a").is_none());

    d.apply(1, &proxy_cert("proxy.edge-1", 5, "1a")).unwrap();
    assert!(d.proxy_invite(&[5; 32]).unwrap().spent);
    let cert = d.proxy_cert("1a").unwrap();
    assert_eq!((cert.name.as_str(), cert.not_after), ("edge-1", 2_000));
    // The same invite again: refused.
    let err = d
        .apply(2, &proxy_cert("proxy.edge-1", 5, "1b"))
        .unwrap_err();
    assert!(err.to_string().contains("spent invite"), "{err}");
    assert!(d.proxy_cert("1b").is_none());
    // A certificate whose request hash is no proxy invite is no proxy's.
    d.apply(2, &proxy_cert("proxy.edge-1", 6, "1c")).unwrap();
    assert!(d.proxy_cert("1c").is_none());

    // A renewal is bound to the serial it renews, once; for the same proxy.
    let renewal = |subject: &str, serial: &str| {
        let mut e = proxy_cert(subject, 0, serial);
        e.request_hash = Some(Sha256Hex(super::proxy_renewal_hash("1a")));
        e
    };
    assert!(d.proxy_renewable("1a"));
    assert!(d.apply(3, &renewal("proxy.edge-9", "2a")).is_err());
    d.apply(3, &renewal("proxy.edge-1", "2a")).unwrap();
    assert_eq!(d.proxy_cert("2a").unwrap().name, "edge-1");
    assert!(!d.proxy_renewable("1a"));
    assert!(d.proxy_renewable("2a"));
    d.apply(4, &renewal("proxy.edge-1", "2b")).unwrap();
    assert!(
        d.proxy_cert("2b").is_none(),
        "a second renewal of one certificate"
    );
}

/// A view of a log held in memory, with holes where `None`.
struct Log(Vec<Option<Vec<u8>>>);

impl crate::store::LogRead for Log {
    fn entry(&self, index: u64) -> crate::Result<Option<Vec<u8>>> {
        Ok(self.0.get(index as usize).cloned().flatten())
    }
    fn node(&self, _: u32, _: u64) -> crate::Result<Option<signet_log::merkle::Hash>> {
        Ok(None)
    }
    fn serial_index(&self, _: crate::store::SerialKind, _: &str) -> crate::Result<Option<u64>> {
        Ok(None)
    }
    fn end(&self) -> crate::Result<u64> {
        Ok(self.0.len() as u64)
    }
    fn entry_count(&self) -> crate::Result<u64> {
        Ok(self.0.iter().flatten().count() as u64)
    }
}

fn bytes(entry: &Entry) -> Option<Vec<u8>> {
    Some(entry.to_canonical_bytes().unwrap())
}

#[test]
fn catching_up_applies_in_order_never_twice_and_stops_at_a_gap() {
    let mut log = Log(vec![
        bytes(&invite("alice", 1)),
        bytes(&enrollment("alice", 1, 7)),
        bytes(&invite("bob", 2)),
        None,
        bytes(&enrollment("bob", 2, 8)),
    ]);
    let mut d = Directory::default();
    d.catch_up_from(&log, 2).unwrap();
    assert_eq!(d.applied(), 2);
    assert!(d.invite(&[1; 32]).unwrap().spent);
    assert!(
        d.invite(&[2; 32]).is_none(),
        "applied past the size asked for"
    );
    // Asked again, or for less: nothing is applied twice (a second
    // application of the invite would be refused as a token used twice).
    d.catch_up_from(&log, 2).unwrap();
    d.catch_up_from(&log, 1).unwrap();
    assert_eq!(d.applied(), 2);
    // Nor can an entry be applied out of order, before or after.
    assert!(d.apply(0, &invite("carol", 3)).is_err());
    assert!(d.apply(3, &invite("carol", 3)).is_err());
    assert!(d.invite(&[3; 32]).is_none());

    // A gap: everything before it applied, nothing after it, and an error
    // that names the missing entry.
    let err = d.catch_up_from(&log, 5).unwrap_err().to_string();
    assert!(
        err.contains("log entry 3") && err.contains("missing"),
        "{err}"
    );
    assert_eq!(d.applied(), 3);
    assert!(d.invite(&[2; 32]).is_some());
    assert!(d.account("bob").is_none());

    // An entry that does not parse stops it the same way.
    log.0[3] = Some(b"{\"kind\":".to_vec());
    let err = d.catch_up_from(&log, 5).unwrap_err().to_string();
    assert!(err.contains("log entry 3"), "{err}");
    assert_eq!(d.applied(), 3);

    // One the state cannot explain (an enrollment spending a spent invite)
    // too, and it changes nothing.
    log.0[3] = bytes(&enrollment("alice", 1, 9));
    assert!(d.catch_up_from(&log, 5).is_err());
    assert_eq!(d.applied(), 3);
    assert_eq!(d.account("alice").unwrap().credentials.len(), 1);

    // Filled in: it goes on from where it stopped, in order.
    log.0[3] = bytes(&invite("carol", 3));
    d.catch_up_from(&log, 5).unwrap();
    assert_eq!(d.applied(), 5);
    assert!(d.invite(&[3; 32]).is_some());
    assert_eq!(d.account("bob").unwrap().credentials.len(), 1);
}

#[test]
fn a_node_invite_is_spent_by_the_host_certificates_of_its_join() {
    let mut d = Directory::default();
    d.apply(0, &invite("node:web-1", 4)).unwrap();
    let pending = d.node_invite(&[4; 32]).unwrap();
    assert_eq!((pending.name.as_str(), pending.spent), ("web-1", false));
    // A node token is no user invite, and no token is invited twice.
    assert!(d.invite(&[4; 32]).is_none());
    assert!(d.apply(1, &invite("alice", 4)).is_err());
    assert!(d.apply(1, &invite("node:bad name", 5)).is_err());
    let host_cert = |node: &str, token: u8| Entry {
        kind: EntryKind::SshHostCert,
        time: 1_100,
        actor: Actor::LocalAdmin {
            unix_user: format!("node join ({node})"),
        },
        request_hash: Some(Sha256Hex([token; 32])),
        subject: Some(node.into()),
        principals: vec![node.into(), "10.0.0.5".into()],
        roles: Vec::new(),
        certificate: None,
        change: None,
    };
    // A host certificate for another node cannot spend web-1's token.
    assert!(d.apply(1, &host_cert("db-1", 4)).is_err());
    assert!(!d.node_invite(&[4; 32]).unwrap().spent);
    d.apply(1, &host_cert("web-1", 4)).unwrap();
    // The join's second key is bound to the same token.
    d.apply(2, &host_cert("web-1", 4)).unwrap();
    assert!(d.node_invite(&[4; 32]).unwrap().spent);
}
