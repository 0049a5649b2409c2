//! The proxy's core: preambles and replies (good and hostile), and every
//! reason a tunnel is refused or cut, against a view as the CA sends it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use signet_api::proxy::{DeviceLock, FeedNode, FeedUser, ProxyView, RoleAccess, UserLock};
use signet_proxy::preamble::{PreambleReader, MAX_PREAMBLE, MAX_REPLY};
use signet_proxy::{decide, still_allowed, Identity, Preamble, PreambleError, RefusalCode, Reply};

fn preamble(node: &str, login: &str) -> Preamble {
    Preamble {
        node: node.into(),
        login: login.into(),
    }
}

#[test]
fn preambles_round_trip_and_hostile_ones_are_refused() {
    let p = preamble("web-1", "root");
    assert_eq!(p.to_line(), "signet-ssh/1 node=web-1 login=root\n");
    assert_eq!(Preamble::parse(p.to_line().as_bytes()).unwrap(), p);
    for (line, needle) in [
        (
            "signet-ssh/2 node=web-1 login=root\n",
            "unsupported preamble version",
        ),
        ("SSH-2.0-OpenSSH_9.2\r\n", "malformed"),
        ("signet-ssh/1 node=web-1 login=root\r\n", "printable"),
        ("signet-ssh/1  node=web-1 login=root\n", "node="),
        ("signet-ssh/1 login=root node=web-1\n", "node="),
        ("signet-ssh/1 node=web-1\n", "login="),
        ("signet-ssh/1 node=web-1 login=root extra\n", "after login"),
        ("signet-ssh/1 node=-x login=root\n", "node:"),
        ("signet-ssh/1 node=web-1 login=Root\n", "login:"),
        ("signet-ssh/1 node=web-1 login=ro\u{e9}t\n", "printable"),
        ("signet-ssh/1 node=web\u{0}1 login=root\n", "printable"),
        ("\n", "malformed"),
    ] {
        let err = Preamble::parse(line.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(needle), "{line:?}: {err}");
    }
    let long = format!("signet-ssh/1 node={} login=root\n", "a".repeat(300));
    assert_eq!(
        Preamble::parse(long.as_bytes()),
        Err(PreambleError::TooLong)
    );
}

#[test]
fn the_reader_takes_bytes_as_they_come_and_keeps_what_follows() {
    let mut reader = PreambleReader::new();
    assert_eq!(reader.push(b"signet-ssh/1 no").unwrap(), None);
    assert_eq!(reader.push(b"de=web-1 login=").unwrap(), None);
    let (p, rest) = reader.push(b"root\nSSH-2.0-x\r\n").unwrap().unwrap();
    assert_eq!(p, preamble("web-1", "root"));
    assert_eq!(rest, b"SSH-2.0-x\r\n");

    // No newline within the bound: refused without holding more.
    let mut reader = PreambleReader::new();
    for _ in 0..(MAX_PREAMBLE / 16) - 1 {
        assert_eq!(reader.push(&[b'a'; 16]).unwrap(), None);
    }
    assert_eq!(reader.push(&[b'a'; 16]), Err(PreambleError::TooLong));
    let mut reader = PreambleReader::new();
    assert_eq!(
        reader.push(&vec![b'a'; 1 << 20]),
        Err(PreambleError::TooLong)
    );
    assert_eq!(reader.finish(), PreambleError::Truncated);
}

#[test]
fn replies_round_trip_and_stay_one_bounded_line() {
    assert_eq!(Reply::Ok.to_line(), "signet-ssh/1 ok\n");
    assert_eq!(Reply::parse(b"signet-ssh/1 ok\n").unwrap(), Reply::Ok);
    let refused = Reply::Refused {
        code: "user_locked".into(),
        message: "user alice is locked: laptop\nstolen".into(),
    };
    let line = refused.to_line();
    assert_eq!(
        line,
        "signet-ssh/1 refused user_locked: user alice is locked: laptop stolen\n"
    );
    assert_eq!(
        Reply::parse(line.as_bytes()).unwrap(),
        Reply::Refused {
            code: "user_locked".into(),
            message: "user alice is locked: laptop stolen".into()
        }
    );
    let huge = Reply::Refused {
        code: "x".into(),
        message: "é".repeat(4000),
    }
    .to_line();
    assert!(
        huge.len() <= MAX_REPLY && huge.ends_with('\n'),
        "{}",
        huge.len()
    );
    assert_eq!(huge.matches('\n').count(), 1);
    // Control characters (a terminal escape, a second line) are refused
    // rather than shown (found by the fuzzer: they did not round-trip).
    for bad in [
        &b"signet-ssh/1 refused x: a\x1b[2Jb\n"[..],
        b"signet-ssh/1 refused x: a\nb\n",
        b"signet-ssh/1 refused x: a\0b",
    ] {
        assert!(Reply::parse(bad).is_err(), "{bad:?}");
    }
    for bad in [
        &b"SSH-2.0-OpenSSH\r\n"[..],
        b"signet-ssh/1 refused",
        b"signet-ssh/1 refused X: y",
    ] {
        assert!(Reply::parse(bad).is_err(), "{bad:?}");
    }
}

fn view() -> ProxyView {
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let access = |role: &str, logins: &[&str], env: &str| RoleAccess {
        role: role.into(),
        logins: logins.iter().map(|s| s.to_string()).collect(),
        node_labels: BTreeMap::from([("env".to_string(), vec![env.to_string()])]),
    };
    ProxyView {
        log_size: 10,
        time: 1_000,
        nodes: vec![
            FeedNode {
                name: "web-1".into(),
                address: "127.0.0.1:2222".into(),
                labels: labels(&[("env", "prod")]),
            },
            FeedNode {
                name: "dev-1".into(),
                address: "127.0.0.1:2223".into(),
                labels: labels(&[("env", "dev")]),
            },
        ],
        users: vec![
            FeedUser {
                name: "alice".into(),
                access: vec![
                    access("prod", &["root"], "prod"),
                    access("dev", &["ubuntu"], "dev"),
                ],
            },
            FeedUser {
                name: "carol".into(),
                access: vec![],
            },
        ],
        user_locks: vec![UserLock {
            user: "mallory".into(),
            reason: "left".into(),
            until: None,
        }],
        device_locks: vec![DeviceLock {
            serial: 99,
            reason: "lost".into(),
            until: Some(2_000),
        }],
        ..ProxyView::default()
    }
}

fn who(user: &str, device: Option<u32>) -> Identity {
    Identity {
        user: user.into(),
        device,
        not_before: 500,
        not_after: 5_000,
    }
}

#[track_caller]
fn refused(view: Option<&ProxyView>, id: &Identity, p: &Preamble, now: u64, code: RefusalCode) {
    let r = decide(view, id, p, now).unwrap_err();
    assert_eq!(r.code, code, "{r}");
    assert!(!r.message.is_empty());
}

#[test]
fn every_reason_a_tunnel_is_refused() {
    let v = view();
    let alice = who("alice", Some(7));
    assert_eq!(
        decide(Some(&v), &alice, &preamble("web-1", "root"), 1_000)
            .unwrap()
            .address,
        "127.0.0.1:2222"
    );
    assert_eq!(
        decide(Some(&v), &alice, &preamble("dev-1", "ubuntu"), 1_000)
            .unwrap()
            .name,
        "dev-1"
    );
    // Fail closed before the first view.
    refused(
        None,
        &alice,
        &preamble("web-1", "root"),
        1_000,
        RefusalCode::NotSynced,
    );
    // The certificate's validity.
    refused(
        Some(&v),
        &alice,
        &preamble("web-1", "root"),
        499,
        RefusalCode::CertificateNotYetValid,
    );
    refused(
        Some(&v),
        &alice,
        &preamble("web-1", "root"),
        5_000,
        RefusalCode::CertificateExpired,
    );
    // Locks: the user's, the YubiKey's (until it ends).
    refused(
        Some(&v),
        &who("mallory", None),
        &preamble("web-1", "root"),
        1_000,
        RefusalCode::UserLocked,
    );
    refused(
        Some(&v),
        &who("alice", Some(99)),
        &preamble("web-1", "root"),
        1_000,
        RefusalCode::DeviceLocked,
    );
    assert!(decide(
        Some(&v),
        &who("alice", Some(99)),
        &preamble("web-1", "root"),
        2_000
    )
    .is_ok());
    // Roles: an unknown user, a user without roles, a node outside the
    // roles, a login outside the roles (a login another role allows on
    // another node does not count).
    refused(
        Some(&v),
        &who("bob", None),
        &preamble("web-1", "root"),
        1_000,
        RefusalCode::UnknownUser,
    );
    refused(
        Some(&v),
        &who("carol", None),
        &preamble("web-1", "root"),
        1_000,
        RefusalCode::NodeNotAllowed,
    );
    refused(
        Some(&v),
        &alice,
        &preamble("db-1", "root"),
        1_000,
        RefusalCode::UnknownNode,
    );
    refused(
        Some(&v),
        &alice,
        &preamble("web-1", "ubuntu"),
        1_000,
        RefusalCode::LoginNotAllowed,
    );
    refused(
        Some(&v),
        &alice,
        &preamble("dev-1", "root"),
        1_000,
        RefusalCode::LoginNotAllowed,
    );

    let mut no_dev = v.clone();
    no_dev.users[0].access.retain(|a| a.role != "dev");
    refused(
        Some(&no_dev),
        &alice,
        &preamble("dev-1", "ubuntu"),
        1_000,
        RefusalCode::NodeNotAllowed,
    );
}

#[test]
fn open_tunnels_are_cut_by_a_new_lock_or_the_expiry() {
    let mut v = view();
    let alice = who("alice", Some(7));
    assert!(still_allowed(Some(&v), &alice, 1_000).is_ok());
    v.user_locks.push(UserLock {
        user: "alice".into(),
        reason: "laptop stolen".into(),
        until: None,
    });
    let r = still_allowed(Some(&v), &alice, 1_000).unwrap_err();
    assert_eq!(r.code, RefusalCode::UserLocked);
    assert!(r.message.contains("laptop stolen"), "{r}");
    v.user_locks.pop();
    v.device_locks.push(DeviceLock {
        serial: 7,
        reason: "lost".into(),
        until: None,
    });
    assert_eq!(
        still_allowed(Some(&v), &alice, 1_000).unwrap_err().code,
        RefusalCode::DeviceLocked
    );
    v.device_locks.pop();
    assert_eq!(
        still_allowed(Some(&v), &alice, 5_000).unwrap_err().code,
        RefusalCode::CertificateExpired
    );
}

#[test]
fn a_new_view_names_exactly_the_tunnels_to_cut() {
    let mut v = view();
    let alice = who("alice", Some(7));
    let alice_other_key = who("alice", Some(8));
    let carol = who("carol", Some(9));
    let tunnels = [(1u32, &alice), (2, &alice_other_key), (3, &carol)];
    assert!(signet_proxy::to_cut(Some(&v), tunnels, 1_000).is_empty());
    // A YubiKey lock cuts that key's tunnel only; a user lock all of hers.
    v.device_locks.push(DeviceLock {
        serial: 8,
        reason: "lost".into(),
        until: None,
    });
    let cut = signet_proxy::to_cut(Some(&v), tunnels, 1_000);
    assert_eq!(cut.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [2]);
    v.user_locks.push(UserLock {
        user: "alice".into(),
        reason: "offboarding".into(),
        until: Some(3_000),
    });
    let cut = signet_proxy::to_cut(Some(&v), tunnels, 1_000);
    assert_eq!(cut.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(cut[0].1.code, RefusalCode::UserLocked);
    // The lock ends by itself; the certificates' end cuts them all.
    assert_eq!(signet_proxy::to_cut(Some(&v), tunnels, 3_000).len(), 1);
    assert_eq!(signet_proxy::to_cut(Some(&v), tunnels, 5_000).len(), 3);
}
