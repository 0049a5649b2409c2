//! The access proxy's world through the real binary: nodes applied from
//! YAML (diff field by field, dry runs, one log entry per change, errors
//! with file, line and field, rebuilt from the log), and the top-level
//! `lock` / `unlock` of users and YubiKeys (device locks refuse issuance
//! like user locks, end by themselves with --ttl, and are log entries).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod touchkit;

use std::process::Output;

use common::Ca;
use serde_json::Value;
use signet_log::entry::{Actor, Change, Entry, EntryKind};
use touchkit::{TouchCa, PIN_ONCE, TOUCH_ALWAYS};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs and insists on success; returns (stdout, stderr).
fn ok2(ca: &Ca, args: &[&str]) -> (String, String) {
    let out = ca.run(args);
    assert!(
        out.status.success(),
        "signet-ca {args:?} failed ({:?}): {}",
        out.status.code(),
        stderr(&out)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr(&out),
    )
}

/// Every entry of the log, read from the store with `log export` (no
/// daemon running).
fn entries(ca: &Ca) -> Vec<Entry> {
    let dir = ca.path("export");
    let _ = std::fs::remove_dir_all(&dir);
    ca.ok(&["log", "export", dir.to_str().unwrap()]);
    let fetch = |path: &str| std::fs::read(dir.join(path)).unwrap();
    let note = signet_log::note::Note::parse(&fetch("checkpoint")).unwrap();
    let size = signet_log::checkpoint::Checkpoint::parse(note.text())
        .unwrap()
        .size();
    let mut out = Vec::new();
    for path in signet_log::tiles::tile_paths(size) {
        if path.kind() != signet_log::tiles::TileKind::Entries {
            continue;
        }
        let bundle =
            signet_log::tiles::EntryBundle::parse(&fetch(&path.to_string()), path.width()).unwrap();
        for bytes in bundle.entries() {
            out.push(Entry::from_bytes(bytes).unwrap());
        }
    }
    assert_eq!(out.len() as u64, size);
    out
}

const NODES: &str = "\
kind: node
name: web-1
address: web-1.internal:22
labels: { env: prod, team: sre }
---
kind: node
name: dev-1
address: 10.0.0.7:2222
labels: { env: dev }
";

const FIRST_DIFF: &str = "\
+ node dev-1
    address: 10.0.0.7:2222
    labels.env: dev
+ node web-1
    address: web-1.internal:22
    labels.env: prod
    labels.team: sre
";

#[test]
fn nodes_apply_diff_log_and_replay() {
    let ca = Ca::initialised("nodes-apply");
    let dir = ca.path("nodes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("nodes.yaml"), NODES).unwrap();
    let dir_arg = dir.to_str().unwrap();
    let before = entries(&ca).len();

    // Dry run: the diff, nothing logged.
    let (diff, note) = ok2(&ca, &["nodes", "apply", "--dry-run", dir_arg]);
    assert_eq!(diff, FIRST_DIFF);
    assert!(note.contains("Dry run: 2 change(s) not applied"), "{note}");
    assert_eq!(entries(&ca).len(), before);

    // Apply: one entry per node, recording the node in full.
    let (diff, note) = ok2(&ca, &["nodes", "apply", dir_arg]);
    assert_eq!(diff, FIRST_DIFF);
    assert!(note.contains("Applied 2 change(s)"), "{note}");
    let log = entries(&ca);
    assert_eq!(log.len(), before + 2);
    let last = log.last().unwrap();
    assert_eq!(last.kind, EntryKind::RoleChange);
    assert_eq!(last.subject.as_deref(), Some("web-1"));
    assert!(matches!(last.actor, Actor::LocalAdmin { .. }));
    let Some(Change::Policy { change }) = &last.change else {
        panic!("{last:?}")
    };
    assert_eq!(
        change,
        &serde_json::json!({"put_node": {"name": "web-1", "address": "web-1.internal:22",
            "labels": {"env": "prod", "team": "sre"}}})
    );

    // Each command starts from the log: the nodes are there again, and a
    // second apply of the same files changes nothing.
    let listed: Value = serde_json::from_str(&ca.ok(&["nodes", "list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[1]["name"], "web-1");
    assert!(ca.ok(&["nodes", "list"]).contains("web-1.internal:22"));
    let (diff, note) = ok2(&ca, &["nodes", "apply", dir_arg]);
    assert_eq!(diff, "no changes\n");
    assert!(note.contains("already match"), "{note}");
    assert_eq!(entries(&ca).len(), before + 2);

    // A change field by field, and a removal; the roles are untouched.
    std::fs::write(
        dir.join("nodes.yaml"),
        "kind: node\nname: web-1\naddress: web-1.internal:2222\nlabels: { env: prod }\n",
    )
    .unwrap();
    let (diff, _) = ok2(&ca, &["nodes", "apply", "--json", dir_arg]);
    let diff: Value = serde_json::from_str(&diff).unwrap();
    assert_eq!(diff["applied"], true);
    let changes = diff["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{diff}");
    assert_eq!(changes[0]["action"], "changed");
    assert_eq!(
        changes[0]["fields"],
        serde_json::json!([
            {"field": "address", "old": "web-1.internal:22", "new": "web-1.internal:2222"},
            {"field": "labels.team", "old": "sre", "new": null},
        ])
    );
    assert_eq!(
        changes[1]["change"],
        serde_json::json!({"remove_node": "dev-1"})
    );
    assert_eq!(entries(&ca).len(), before + 4);

    // A bad file: file, line, column and field; nothing logged.
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "kind: node\nname: db-1\naddress: db-1\n").unwrap();
    let out = ca.run(&["nodes", "apply", dir_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{}:3:10: address:", bad.display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(entries(&ca).len(), before + 4);

    // Through the daemon: it rebuilt the nodes from the log at start.
    std::fs::remove_file(&bad).unwrap();
    reset_listen(&ca.config);
    let daemon = ca.serve();
    let listed: Value = serde_json::from_str(&ca.ok(&["nodes", "list", "--json"])).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{"name": "web-1", "address": "web-1.internal:2222", "labels": {"env": "prod"}}])
    );
    let (diff, _) = ok2(&ca, &["nodes", "apply", dir_arg]);
    assert_eq!(diff, "no changes\n");
    drop(daemon);
}

/// The config's `listen` line back to the example's, so `Ca::serve` picks
/// a fresh port again (it rewrites only that line).
fn reset_listen(config: &std::path::Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("listen = \"127.0.0.1:") {
                "listen = \"127.0.0.1:8441\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(config, text.join("\n") + "\n").unwrap();
}

/// Begin only; returns (status, body).
fn begin(t: &TouchCa, user: &str, slot: &touchkit::SlotKey) -> (u16, Value) {
    t.post(
        "/v1/certs/begin",
        &TouchCa::request(user, slot, &["ubuntu"], 3600),
    )
}

#[test]
fn lock_and_unlock_users_and_devices_at_the_top_level() {
    let mut t = TouchCa::new("nodes-lock");
    t.serve();
    t.enroll("alice");
    let slot = t.device(7_100_001).slot_key(PIN_ONCE, TOUCH_ALWAYS);
    let other = t.device(7_100_002).slot_key(PIN_ONCE, TOUCH_ALWAYS);
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");

    // Refusals: neither or both targets, no reason, a serial that is no
    // number, unlocking a device that is not locked.
    for args in [
        &["lock", "--reason", "x"][..],
        &[
            "lock", "--user", "alice", "--device", "7100001", "--reason", "x",
        ],
        &["lock", "--device", "7100001"],
        &["lock", "--device", "x7", "--reason", "x"],
        &["lock", "--device", "7100001", "--reason", " "],
        &[
            "lock", "--device", "7100001", "--reason", "x", "--ttl", "0s",
        ],
        &["unlock", "--device", "7100001"],
    ] {
        let out = t.ca.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }

    // A device lock: that YubiKey's keys get nothing; another works.
    ok2(
        &t.ca,
        &["lock", "--device", "7100001", "--reason", "reported lost"],
    );
    let (status, body) = begin(&t, "alice", &slot);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("locked")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("reported lost"),
        "{body}"
    );
    let (status, body) = t.login("alice", &other, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");

    // Unlock: issuance again.
    ok2(&t.ca, &["unlock", "--device", "7100001"]);
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");

    // A user lock at the top level, then its unlock.
    ok2(
        &t.ca,
        &[
            "lock",
            "--user",
            "alice",
            "--reason",
            "offboarding",
            "--ttl",
            "1h",
        ],
    );
    let (status, body) = begin(&t, "alice", &other);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("locked")),
        "{body}"
    );
    ok2(&t.ca, &["unlock", "--user", "alice"]);
    let (status, body) = begin(&t, "alice", &other);
    assert_eq!(status, 200, "{body}");

    // A device lock with a TTL, and it survives a restart (from the log).
    ok2(
        &t.ca,
        &[
            "lock", "--device", "7100002", "--reason", "audit", "--ttl", "1h",
        ],
    );
    t.daemon.take();
    let log = entries(&t.ca);
    let locks: Vec<&Entry> = log
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Lock | EntryKind::Unlock))
        .collect();
    let subjects: Vec<&str> = locks.iter().filter_map(|e| e.subject.as_deref()).collect();
    assert_eq!(
        subjects,
        [
            "device:7100001",
            "device:7100001",
            "alice",
            "alice",
            "device:7100002"
        ]
    );
    let Some(Change::Lock {
        until: Some(until),
        reason,
    }) = &locks[4].change
    else {
        panic!("{:?}", locks[4])
    };
    assert_eq!(reason, "audit");
    assert!(
        *until > locks[4].time && *until <= locks[4].time + 3600,
        "{until}"
    );
    reset_listen(&t.ca.config);
    t.serve();
    let (status, body) = begin(&t, "alice", &other);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("locked")),
        "{body}"
    );
    let (status, body) = begin(&t, "alice", &slot);
    assert_eq!(status, 200, "{body}");
}
