//! Local administration through the real binary: roles applied from a
//! directory of YAML files (the diff, dry runs, one log entry per change,
//! errors with file, line and field), users invited, shown, locked,
//! unlocked and stripped of a key — against a running daemon over its
//! admin socket and, with no daemon, on the store directly — and the
//! socket itself: its mode, its removal on SIGTERM, a stale one, a second
//! daemon, and peers that are and are not allowed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod touchkit;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Ca;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use signet_log::entry::{Actor, Change, Entry, EntryKind};
use touchkit::{TouchCa, PIN_ONCE, TOUCH_ALWAYS};

// ---------------------------------------------------------------------------
// Helpers

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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
    (stdout(&out), stderr(&out))
}

fn json_of(ca: &Ca, args: &[&str]) -> Value {
    let text = ca.ok(args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// The unix user admin entries name for this process, as the CA writes it.
fn me() -> String {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    format!("{} (uid {})", common::current_user(), uid.trim())
}

fn is_root() -> bool {
    String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
        .unwrap()
        .trim()
        == "0"
}

/// Where the log is read from: the store itself (`log export`, only with
/// no daemon holding it) or the daemon's /log/ tiles over HTTPS.
enum Log<'a> {
    Direct,
    Daemon { root_pem: &'a str, port: u16 },
}

/// Every entry of the log, in order.
fn entries(ca: &Ca, at: &Log) -> Vec<Entry> {
    match at {
        Log::Direct => {
            let dir = ca.path("export");
            let _ = std::fs::remove_dir_all(&dir);
            ca.ok(&["log", "export", dir.to_str().unwrap()]);
            read_log(|path| std::fs::read(dir.join(path)).unwrap())
        }
        Log::Daemon { root_pem, port } => read_log(|path| {
            let (status, body) = https_get(root_pem, *port, &format!("/log/{path}"));
            assert_eq!(status, 200, "/log/{path}");
            body
        }),
    }
}

fn read_log(fetch: impl Fn(&str) -> Vec<u8>) -> Vec<Entry> {
    let note = fetch("checkpoint");
    let note = signet_log::note::Note::parse(&note).unwrap();
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

/// A GET over HTTPS trusting only the CA's own X.509 root.
fn https_get(root_pem: &str, port: u16, path: &str) -> (u16, Vec<u8>) {
    let (_, der_bytes) = der::pem::decode_vec(root_pem.as_bytes()).unwrap();
    let root = ureq::tls::Certificate::from_der(&der_bytes).to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
            root,
        ])))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent
        .get(&format!("https://localhost:{port}{path}"))
        .call()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_vec().unwrap())
}

/// Runs a command that must end by itself (a refusal), killing it if it
/// is still running after 60 s.
fn run_with_deadline(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after 60 s: {}", stderr(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Checks an admin action's entry: its kind, subject and admin actor.
#[track_caller]
fn assert_admin_entry(entry: &Entry, kind: EntryKind, subject: &str, actor: &str) {
    assert_eq!(entry.kind, kind, "{entry:?}");
    assert_eq!(entry.subject.as_deref(), Some(subject), "{entry:?}");
    assert_eq!(
        entry.actor,
        Actor::LocalAdmin {
            unix_user: actor.to_owned()
        },
        "{entry:?}"
    );
    assert!(entry.certificate.is_none(), "{entry:?}");
}

/// The config's `listen` line back to the example's, so `Ca::serve` picks
/// a fresh port again (it rewrites only that line).
fn reset_listen(config: &Path) {
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

/// Sets `[serve]` keys the example leaves commented out.
fn set_serve(config: &Path, key: &str, value: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let commented = format!("# {key} = ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&commented))
        .unwrap_or_else(|| panic!("no {commented} in the example config"))
        .to_owned();
    std::fs::write(config, text.replace(&line, &format!("{key} = {value:?}"))).unwrap();
}

// ---------------------------------------------------------------------------
// Roles from YAML

const ROLES: &str = "\
kind: role
name: dev
allow:
  logins: [ubuntu, deploy]
  node_labels: { env: [staging, dev] }
options:
  max_session_ttl: 8h
  hardware_key: touch
  session_mfa: false
---
kind: role
name: prod
allow:
  logins: [root]
  node_labels: { env: [prod] }
options:
  max_session_ttl: 1h
  hardware_key: touch_and_pin
  session_mfa: true
";

const OPS: &str = "\
kind: role
name: ops
allow:
  logins: [ops]
options:
  max_session_ttl: 30m
  hardware_key: attested
  session_mfa: false
---
kind: user
name: dave
roles: [ops]
";

const TEAM: &str = "\
kind: user
name: alice
roles: [prod, dev]
---
kind: user
name: bob
roles: [dev]
";

const FIRST_DIFF: &str = "\
+ role dev
    allow.logins: [deploy, ubuntu]
    allow.node_labels.env: [dev, staging]
    options.max_session_ttl: 8h
    options.hardware_key: touch
    options.session_mfa: false
+ role ops
    allow.logins: [ops]
    options.max_session_ttl: 30m
    options.hardware_key: attested
    options.session_mfa: false
+ role prod
    allow.logins: [root]
    allow.node_labels.env: [prod]
    options.max_session_ttl: 1h
    options.hardware_key: touch_and_pin
    options.session_mfa: true
+ user alice
    roles: [dev, prod]
+ user bob
    roles: [dev]
+ user dave
    roles: [ops]
";

/// A roles directory: files at the top and in a subdirectory, plus files
/// the loader must skip (not YAML, hidden).
fn roles_dir(ca: &Ca) -> PathBuf {
    let dir = ca.path("roles");
    std::fs::create_dir_all(dir.join("people")).unwrap();
    std::fs::write(dir.join("10-roles.yaml"), ROLES).unwrap();
    std::fs::write(dir.join("20-ops.yml"), OPS).unwrap();
    std::fs::write(dir.join("people/team.yaml"), TEAM).unwrap();
    std::fs::write(dir.join("README.md"), "kind: nonsense\n").unwrap();
    std::fs::write(dir.join(".draft.yaml"), "kind: role\nname: draft\n").unwrap();
    dir
}

fn users_list(ca: &Ca) -> Value {
    json_of(ca, &["users", "list", "--json"])
}

/// The whole roles story, against whichever side `at` names.
fn roles_story(ca: &Ca, at: &Log) {
    let me = me();
    let dir = roles_dir(ca);
    let dir_arg = dir.to_str().unwrap();
    let before = entries(ca, at);
    let users_before = users_list(ca);
    assert_eq!(users_before, json!([]));

    // Dry run: the diff, field by field; nothing applied, nothing logged.
    let (diff, note) = ok2(ca, &["roles", "apply", "--dry-run", dir_arg]);
    assert_eq!(diff, FIRST_DIFF);
    assert!(note.contains("Dry run: 6 change(s) not applied."), "{note}");
    let planned = json_of(ca, &["roles", "apply", "--dry-run", "--json", dir_arg]);
    assert_eq!(planned["applied"], false, "{planned}");
    assert_eq!(planned["log_index"], json!([]), "{planned}");
    let changes = planned["changes"].as_array().unwrap();
    let names: Vec<(&str, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("added", "role", "dev"),
            ("added", "role", "ops"),
            ("added", "role", "prod"),
            ("added", "user", "alice"),
            ("added", "user", "bob"),
            ("added", "user", "dave"),
        ]
    );
    assert_eq!(
        changes[0]["fields"][0],
        json!({"field": "allow.logins", "old": null, "new": "[deploy, ubuntu]"})
    );
    assert_eq!(entries(ca, at).len(), before.len(), "a dry run logged");
    assert_eq!(users_list(ca), users_before, "a dry run changed the users");

    // Apply: the same diff, one role-change entry per change, in order,
    // each recording the change the dry run showed, by this admin.
    let (applied, note) = ok2(ca, &["roles", "apply", dir_arg]);
    assert_eq!(applied, FIRST_DIFF);
    let after = entries(ca, at);
    assert_eq!(after.len(), before.len() + 6, "{note}");
    let indices: Vec<String> = (before.len()..after.len()).map(|i| i.to_string()).collect();
    assert!(
        note.contains(&format!(
            "Applied 6 change(s), each a log entry ({}).",
            indices.join(", ")
        )),
        "{note}"
    );
    for (entry, planned) in after[before.len()..].iter().zip(changes) {
        let name = planned["name"].as_str().unwrap();
        assert_admin_entry(entry, EntryKind::RoleChange, name, &me);
        assert_eq!(
            entry.change,
            Some(Change::Policy {
                change: planned["change"].clone()
            })
        );
        let roles: Vec<String> = if planned["kind"] == "role" {
            vec![name.to_owned()]
        } else {
            Vec::new()
        };
        assert_eq!(entry.roles, roles);
    }
    // The change records are the policy crate's own, and rebuild the policy.
    let mut replayed = signet_policy::Policy::new();
    for entry in &after[before.len()..] {
        let Some(Change::Policy { change }) = &entry.change else {
            unreachable!()
        };
        replayed.apply(&serde_json::from_value(change.clone()).unwrap());
    }
    assert!(replayed
        .diff(&signet_policy::Policy::load(std::slice::from_ref(&dir)).unwrap())
        .is_empty());
    let listed = users_list(ca);
    let summary: Vec<(String, Value, Value)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_owned(),
                u["roles"].clone(),
                u["in_policy"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("alice".to_owned(), json!(["dev", "prod"]), json!(true)),
            ("bob".to_owned(), json!(["dev"]), json!(true)),
            ("dave".to_owned(), json!(["ops"]), json!(true)),
        ]
    );

    // The same files again: no changes, nothing logged.
    let (same, note) = ok2(ca, &["roles", "apply", dir_arg]);
    assert_eq!(same, "no changes\n");
    assert!(note.contains("already match"), "{note}");
    assert_eq!(entries(ca, at).len(), after.len());

    // One role edited: only that role changes, one entry.
    std::fs::write(
        dir.join("10-roles.yaml"),
        ROLES
            .replace("logins: [root]", "logins: [root, admin]")
            .replace("max_session_ttl: 1h", "max_session_ttl: 2h"),
    )
    .unwrap();
    let (edited, _) = ok2(ca, &["roles", "apply", dir_arg]);
    assert_eq!(
        edited,
        "~ role prod\n    allow.logins: [root] -> [admin, root]\n    options.max_session_ttl: 1h -> 2h\n"
    );
    let now = entries(ca, at);
    assert_eq!(now.len(), after.len() + 1);
    let last = now.last().unwrap();
    assert_admin_entry(last, EntryKind::RoleChange, "prod", &me);
    let Some(Change::Policy { change }) = &last.change else {
        panic!("{last:?}")
    };
    assert_eq!(change["put_role"]["name"], "prod", "{change}");
    assert_eq!(
        change["put_role"]["allow"]["logins"],
        json!(["admin", "root"]),
        "{change}"
    );
    assert_eq!(
        change["put_role"]["options"]["max_session_ttl"], 7200,
        "{change}"
    );

    // A user changed, a user and a role removed: users removed before the
    // roles they named, each its own entry.
    std::fs::remove_file(dir.join("20-ops.yml")).unwrap();
    std::fs::write(
        dir.join("people/team.yaml"),
        TEAM.replace("[prod, dev]", "[dev]"),
    )
    .unwrap();
    let (removed, note) = ok2(ca, &["roles", "apply", dir_arg]);
    assert_eq!(
        removed, "~ user alice\n    roles: [dev, prod] -> [dev]\n- user dave\n- role ops\n",
        "{note}"
    );
    let last3 = entries(ca, at);
    assert_eq!(last3.len(), now.len() + 3);
    let tail = &last3[now.len()..];
    for (entry, (subject, record)) in tail.iter().zip([
        (
            "alice",
            json!({"put_user": {"name": "alice", "roles": ["dev"]}}),
        ),
        ("dave", json!({"remove_user": "dave"})),
        ("ops", json!({"remove_role": "ops"})),
    ]) {
        assert_admin_entry(entry, EntryKind::RoleChange, subject, &me);
        assert_eq!(entry.change, Some(Change::Policy { change: record }));
    }
    let names: Vec<Value> = users_list(ca)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("alice"), json!("bob")]);

    bad_role_files(ca, at, &dir);
}

/// A role with one line replaced (1-based), for the error cases.
fn with_line(text: &str, line: usize, with: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = with;
    lines.join("\n") + "\n"
}

/// Bad files: exit 2, `file:line:col: field` on stderr, nothing applied,
/// nothing logged — with a dry run and without.
fn bad_role_files(ca: &Ca, at: &Log, good: &Path) {
    let bad = ca.path("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let cases = [
        (
            "unknown-field.yaml",
            with_line(ROLES, 4, "  logins: [ubuntu, deploy]\n  colour: blue"),
            5,
            3,
            "allow.colour",
            "unknown field \"colour\"",
        ),
        (
            "bad-value.yaml",
            with_line(ROLES, 18, "  hardware_key: toch"),
            18,
            17,
            "options.hardware_key",
            "unknown value \"toch\", expected one of none, attested, touch, touch_and_pin",
        ),
        (
            "unknown-role.yaml",
            "kind: user\nname: erin\nroles: [dev, nope]\n".to_owned(),
            3,
            14,
            "roles[1]",
            "no role \"nope\" is defined",
        ),
    ];
    let log_before = entries(ca, at).len();
    let users_before = users_list(ca);
    for (name, text, line, column, field, message) in cases {
        let file = bad.join(name);
        std::fs::write(&file, &text).unwrap();
        // A user file goes with the good roles it names beside it, so the
        // bad line is the only reason.
        let good_roles = good.join("10-roles.yaml");
        for dry in [true, false] {
            let mut args = vec!["roles", "apply"];
            if dry {
                args.push("--dry-run");
            }
            if text.starts_with("kind: user") {
                args.push(good_roles.to_str().unwrap());
            }
            args.push(file.to_str().unwrap());
            let out = ca.run(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{name}: {err}");
            let want = format!("{}:{line}:{column}: {field}: ", file.display());
            assert!(err.contains(&want), "{name}: wanted {want:?} in {err}");
            assert!(err.contains(message), "{name}: wanted {message:?} in {err}");
            assert!(stdout(&out).is_empty(), "{name}: {}", stdout(&out));
        }
        std::fs::remove_file(&file).unwrap();
    }
    assert_eq!(entries(ca, at).len(), log_before, "a bad file logged");
    assert_eq!(users_list(ca), users_before, "a bad file changed the users");
}

#[test]
fn roles_apply_without_a_daemon() {
    let ca = Ca::initialised("admin-roles-direct");
    roles_story(&ca, &Log::Direct);
    assert!(!ca.path("data/admin.sock").exists());
}

#[test]
fn roles_apply_through_the_daemon() {
    let ca = Ca::initialised("admin-roles-daemon");
    let root_pem = ca.ok(&["export", "x509-ca"]);
    let daemon = ca.serve();
    let at = Log::Daemon {
        root_pem: &root_pem,
        port: daemon.port,
    };
    roles_story(&ca, &at);

    // The commands went through the daemon, never to the store: without
    // the HSM (a token configuration that does not exist) a command that
    // opened the store itself would fail, and the daemon holds the store.
    let before = entries(&ca, &at).len();
    let roles = ca.path("roles");
    std::fs::write(
        roles.join("30-qa.yaml"),
        "kind: user\nname: quinn\nroles: [dev]\n",
    )
    .unwrap();
    let out = ca
        .command()
        .env("SOFTHSM2_CONF", ca.path("no-such-softhsm2.conf"))
        .args(["roles", "apply", roles.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "+ user quinn\n    roles: [dev]\n");
    let after = entries(&ca, &at);
    assert_eq!(
        after.len(),
        before + 1,
        "the entry is not in the daemon's log"
    );
    assert_admin_entry(after.last().unwrap(), EntryKind::RoleChange, "quinn", &me());
    // And the embedded store is the daemon's alone: opening it here is
    // refused. (On PostgreSQL several processes share the store by design:
    // replicas and admin commands.)
    if !common::on_postgres() {
        let out = ca.run(&["log", "check"]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("in use by another signet-ca process"),
            "{}",
            stderr(&out)
        );
    }

    concurrent_applies(&ca);

    // With its socket file gone the daemon cannot be reached, and a
    // command falls back to the store: the daemon's lock on it refuses
    // that, so the two never both write.
    // (The embedded store's rule: on PostgreSQL several processes write
    // the shared store by design, serialized by the database.)
    if !common::on_postgres() {
        let size = entries(&ca, &at).len();
        std::fs::remove_file(ca.path("data/admin.sock")).unwrap();
        let out = ca.run(&["users", "lock", "alice", "--reason", "no socket"]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("in use by another signet-ca process"),
            "{}",
            stderr(&out)
        );
        assert_eq!(entries(&ca, &at).len(), size);
    }
    drop(daemon);
}

/// Two admins apply different roles directories at the same time: the
/// result is one of them, whole (as if one ran after the other), never a
/// mix of both diffs computed from the same starting point.
fn concurrent_applies(ca: &Ca) {
    let team = |name: &str| {
        let dir = ca.path(&format!("team-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = format!(
            "kind: role\nname: {name}\nallow:\n  logins: [{name}]\noptions:\n  \
             max_session_ttl: 1h\n  hardware_key: touch\n  session_mfa: false\n"
        );
        for i in 0..40 {
            text.push_str(&format!(
                "---\nkind: user\nname: {name}-{i:02}\nroles: [{name}]\n"
            ));
        }
        std::fs::write(dir.join("team.yaml"), text).unwrap();
        dir
    };
    let dirs = [team("red"), team("blue")];
    let children: Vec<std::process::Child> = dirs
        .iter()
        .map(|dir| {
            ca.command()
                .args(["roles", "apply", dir.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let matches: Vec<bool> = dirs
        .iter()
        .map(|dir| {
            let (diff, _) = ok2(ca, &["roles", "apply", "--dry-run", dir.to_str().unwrap()]);
            diff == "no changes\n"
        })
        .collect();
    assert!(
        matches == [true, false] || matches == [false, true],
        "the roles in force are neither directory: {:?}",
        json_of(ca, &["users", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// Users

/// The token in an invite link, after checking the link's shape.
#[track_caller]
fn token_of(link: &str) -> String {
    assert!(link.starts_with("https://"), "{link}");
    let (_, token) = link.rsplit_once("/enroll/").unwrap();
    assert_eq!(token.len(), 43, "{link}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{link}"
    );
    token.to_owned()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn daemon_log(t: &TouchCa) -> Vec<Entry> {
    entries(
        &t.ca,
        &Log::Daemon {
            root_pem: &t.root_pem,
            port: t.port(),
        },
    )
}

/// Begin only; returns (status, body).
fn begin(t: &TouchCa, user: &str, slot: &touchkit::SlotKey) -> (u16, Value) {
    t.post(
        "/v1/certs/begin",
        &TouchCa::request(user, slot, &["ubuntu"], 3600),
    )
}

#[test]
fn users_through_the_daemon_survive_a_restart_and_work_without_it() {
    let me = me();
    let mut t = TouchCa::new("admin-users");
    t.serve();
    let slot = t.device(7_000_001).slot_key(PIN_ONCE, TOUCH_ALWAYS);

    // invite: only the link on stdout, the expiry on stderr, one entry
    // holding the token's hash (never the token).
    let (link, note) = ok2(&t.ca, &["users", "invite", "bob", "--ttl", "2h"]);
    assert_eq!(link.lines().count(), 1, "{link}");
    let token = token_of(link.trim_end());
    assert!(
        note.contains("Invite for bob until") && note.contains("hand it to them only"),
        "{note}"
    );
    let log = daemon_log(&t);
    let entry = log.last().unwrap();
    assert_admin_entry(entry, EntryKind::Invite, "bob", &me);
    let Some(Change::Invite {
        token_sha256,
        expires,
    }) = &entry.change
    else {
        panic!("{entry:?}")
    };
    assert_eq!(
        token_sha256.0,
        <[u8; 32]>::from(Sha256::digest(token.as_bytes()))
    );
    assert!(expires.abs_diff(unix_now() + 7200) < 300, "{expires}");
    let raw = serde_json::to_string(&log).unwrap_or_default() + &format!("{log:?}");
    assert!(!raw.contains(&token), "the token itself is in the log");

    let invite = json_of(&t.ca, &["users", "invite", "bob", "--json"]);
    token_of(invite["link"].as_str().unwrap());
    assert_eq!(invite["user"], "bob");
    assert_eq!(
        invite["log_index"],
        daemon_log(&t).len() as u64 - 1,
        "{invite}"
    );
    assert!(
        invite["expires_at"]
            .as_u64()
            .unwrap()
            .abs_diff(unix_now() + 3600)
            < 300
    );

    // Invites only for users of the applied roles; nothing logged.
    let size = daemon_log(&t).len();
    for (user, ttl) in [("mallory", "1h"), ("bob", "8d"), ("bob", "0s")] {
        let out = t.ca.run(&["users", "invite", user, "--ttl", ttl]);
        assert_eq!(out.status.code(), Some(2), "{user} {ttl}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
    assert!(stderr(&t.ca.run(&["users", "invite", "mallory"]))
        .contains("not a user in the applied roles"));
    assert_eq!(daemon_log(&t).len(), size);

    // Enrolled through the API, shown by the admin commands.
    let enrolled = t.enroll("alice");
    let first_key = enrolled["credential_id"].as_str().unwrap().to_owned();
    let shown = json_of(&t.ca, &["users", "show", "alice", "--json"]);
    assert_eq!(shown["name"], "alice");
    assert_eq!(shown["roles"], json!(["dev", "prod"]));
    assert_eq!(shown["in_policy"], true);
    assert!(shown.get("locked").is_none(), "{shown}");
    let keys = shown["credentials"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{shown}");
    assert_eq!(keys[0]["id"], first_key.as_str());
    for field in ["aaguid", "attestation_format"] {
        assert!(keys[0][field].is_string(), "{field}: {shown}");
    }
    for field in [
        "algorithm",
        "sign_count",
        "enrolled_at",
        "enrolled_log_index",
    ] {
        assert!(keys[0][field].is_number(), "{field}: {shown}");
    }
    let text = t.ca.ok(&["users", "show", "alice"]);
    assert!(
        text.contains(&first_key) && text.contains("roles:  dev, prod"),
        "{text}"
    );
    let listed = json_of(&t.ca, &["users", "list", "--json"]);
    let rows: Vec<(Value, usize)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].clone(),
                u["credentials"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![(json!("alice"), 1), (json!("bob"), 0), (json!("carol"), 0)]
    );
    let out = t.ca.run(&["users", "show", "mallory", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Lock and unlock refuse what cannot be meant: a name the CA does not
    // know (a typo would leave the real user unlocked), a lock past the
    // end of time, a reason that is empty or spans lines. Nothing logged.
    let size = daemon_log(&t).len();
    for args in [
        &["users", "lock", "alcie", "--reason", "laptop stolen"][..],
        &["users", "unlock", "alcie"],
        &[
            "users",
            "lock",
            "alice",
            "--reason",
            "x",
            "--ttl",
            "18446744073709551615s",
        ],
        &["users", "lock", "alice", "--reason", "x", "--ttl", "0s"],
        &["users", "lock", "alice", "--reason", " "],
        &["users", "lock", "alice", "--reason", "two\nlines"],
    ] {
        let out = t.ca.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    assert!(
        stderr(&t.ca.run(&["users", "lock", "alcie", "--reason", "r"]))
            .contains("no user \"alcie\"")
    );
    assert_eq!(daemon_log(&t).len(), size, "a refused lock was logged");
    assert_eq!(json_of(&t.ca, &["users", "list", "--json"]), listed);

    // Lock (until unlocked): begin is refused as locked; one entry.
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");
    let size = daemon_log(&t).len();
    ok2(
        &t.ca,
        &["users", "lock", "alice", "--reason", "laptop stolen"],
    );
    let log = daemon_log(&t);
    assert_eq!(log.len(), size + 1);
    assert_admin_entry(log.last().unwrap(), EntryKind::Lock, "alice", &me);
    assert_eq!(
        log.last().unwrap().change,
        Some(Change::Lock {
            reason: "laptop stolen".into(),
            until: None
        })
    );
    let (status, body) = begin(&t, "alice", &slot);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("locked")),
        "{body}"
    );
    let shown = json_of(&t.ca, &["users", "show", "alice", "--json"]);
    assert_eq!(shown["locked"]["reason"], "laptop stolen", "{shown}");
    assert!(shown["locked"].get("until").is_none(), "{shown}");

    // Unlock restores issuance; one entry.
    ok2(
        &t.ca,
        &["users", "unlock", "alice", "--reason", "laptop found"],
    );
    let log = daemon_log(&t);
    assert_admin_entry(log.last().unwrap(), EntryKind::Unlock, "alice", &me);
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");

    // Lock for a while: refused, with the end shown.
    ok2(
        &t.ca,
        &[
            "users", "lock", "alice", "--reason", "travel", "--ttl", "1h",
        ],
    );
    let log = daemon_log(&t);
    let entry = log.last().unwrap();
    assert_admin_entry(entry, EntryKind::Lock, "alice", &me);
    let Some(Change::Lock {
        until: Some(until), ..
    }) = entry.change
    else {
        panic!("{entry:?}")
    };
    // The entry's time and the lock's end are each read from the clock.
    assert!(until.abs_diff(entry.time + 3600) <= 2, "{entry:?}");
    let (status, body) = begin(&t, "alice", &slot);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("locked")),
        "{body}"
    );
    let shown = json_of(&t.ca, &["users", "show", "alice", "--json"]);
    assert_eq!(shown["locked"]["until"], until, "{shown}");
    ok2(&t.ca, &["users", "unlock", "alice"]);
    assert_admin_entry(
        daemon_log(&t).last().unwrap(),
        EntryKind::Unlock,
        "alice",
        &me,
    );

    // remove-key while a sign-in is under way: the sign-in fails, then
    // alice has no key and a login is refused.
    let (status, begun) = begin(&t, "alice", &slot);
    assert_eq!(status, 200, "{begun}");
    let out = t.ca.run(&["users", "remove-key", "alice", "AAAA"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown key id: {}",
        stderr(&out)
    );
    let size = daemon_log(&t).len();
    let (removed, _) = ok2(&t.ca, &["users", "remove-key", "alice", &first_key]);
    let log = daemon_log(&t);
    assert_eq!(log.len(), size + 1);
    assert!(
        removed.contains(&format!("(log entry {size})")),
        "{removed}"
    );
    let entry = log.last().unwrap();
    assert_admin_entry(entry, EntryKind::KeyRemoval, "alice", &me);
    let Some(Change::CredentialRemoved { id }) = &entry.change else {
        panic!("{entry:?}")
    };
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&id.0),
        first_key
    );
    let assertion = t.assert(&begun["webauthn"]);
    let (status, body) = t.post(
        "/v1/certs/finish",
        &json!({ "ceremony": begun["ceremony"], "assertion": assertion }),
    );
    assert_ne!(
        status, 200,
        "a removed key still authorized an issuance: {body}"
    );
    let shown = json_of(&t.ca, &["users", "show", "alice", "--json"]);
    assert_eq!(shown["credentials"], json!([]), "{shown}");
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_allowed")),
        "{body}"
    );
    let out = t.ca.run(&["users", "remove-key", "alice", &first_key]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "removed twice: {}",
        stderr(&out)
    );

    // A lock for a second ends by itself: show drops it, and bob's
    // begin gets past the lock (to the missing key).
    ok2(
        &t.ca,
        &["users", "lock", "bob", "--reason", "brief", "--ttl", "1s"],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while json_of(&t.ca, &["users", "show", "bob", "--json"])
        .get("locked")
        .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "a one-second lock still holds"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, body) = begin(&t, "bob", &slot);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_allowed")),
        "{body}"
    );

    // A new key for alice, bob locked for two hours: the state to survive.
    let second_key = t.enroll("alice")["credential_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second_key, first_key);
    let spare_key = t.enroll("alice")["credential_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok2(
        &t.ca,
        &[
            "users", "lock", "bob", "--reason", "on leave", "--ttl", "2h",
        ],
    );
    let state = |t: &TouchCa| {
        (
            json_of(&t.ca, &["users", "list", "--json"]),
            json_of(&t.ca, &["users", "show", "alice", "--json"]),
            json_of(&t.ca, &["users", "show", "bob", "--json"]),
        )
    };
    let kept = state(&t);
    let ids = |shown: &Value| -> Vec<String> {
        shown["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&kept.1), [second_key.clone(), spare_key.clone()]);
    assert_eq!(kept.2["locked"]["reason"], "on leave");

    // SIGTERM: a clean exit, the socket removed.
    let socket = t.path("data/admin.sock");
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    let status = t.daemon.as_mut().unwrap().terminate();
    assert!(status.success(), "serve ended with {status:?}");
    t.daemon = None;
    assert!(!socket.exists(), "the socket outlived the daemon");

    // No daemon: the commands open the store themselves and see the same.
    assert_eq!(state(&t), kept);
    let size = entries(&t.ca, &Log::Direct).len();
    ok2(&t.ca, &["users", "lock", "carol", "--reason", "audit"]);
    ok2(
        &t.ca,
        &["users", "unlock", "carol", "--reason", "audit done"],
    );
    let (link, _) = ok2(&t.ca, &["users", "invite", "carol", "--ttl", "30m"]);
    token_of(link.trim_end());
    let (removed, _) = ok2(&t.ca, &["users", "remove-key", "alice", &spare_key]);
    assert!(
        removed.contains(&format!("(log entry {})", size + 3)),
        "{removed}"
    );
    let log = entries(&t.ca, &Log::Direct);
    assert_eq!(log.len(), size + 4);
    for (entry, kind) in
        log[size..size + 3]
            .iter()
            .zip([EntryKind::Lock, EntryKind::Unlock, EntryKind::Invite])
    {
        assert_admin_entry(entry, kind, "carol", &me);
    }
    assert_admin_entry(&log[size + 3], EntryKind::KeyRemoval, "alice", &me);
    let changed = state(&t);
    assert_eq!(ids(&changed.1), [second_key.as_str()]);
    assert_eq!(changed.2, kept.2);
    assert!(
        !socket.exists(),
        "a command without the daemon made a socket"
    );

    // Started again, the daemon replays the log into the same state, and
    // acts on it: bob still locked, alice's new key signs.
    reset_listen(&t.ca.config);
    t.serve();
    assert_eq!(state(&t), changed);
    let (status, body) = begin(&t, "bob", &slot);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("locked")),
        "{body}"
    );
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");
    // The direct-mode entries are in the log the daemon serves.
    let served = daemon_log(&t);
    assert_eq!(&served[..log.len()], &log[..]);
}

// ---------------------------------------------------------------------------
// The socket

/// Runs the signet-ca binary as another user: `uid`, primary group `gid`,
/// and one supplementary group or none.
fn as_user(config: &Path, uid: u32, gid: u32, groups: Option<u32>, args: &[&str]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.args([format!("--reuid={uid}"), format!("--regid={gid}")]);
    match groups {
        Some(group) => cmd.arg(format!("--groups={group}")),
        None => cmd.arg("--clear-groups"),
    };
    cmd.arg("--")
        .arg(env!("CARGO_BIN_EXE_signet-ca"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// A uid with no account (65533), and `nobody` (65534, whose primary
/// group in /etc/passwd is `nogroup`, 65534).
const STRANGER: u32 = 65533;
const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

#[test]
fn the_admin_socket_its_peers_and_its_lifecycle() {
    let ca = Ca::initialised("admin-socket");
    let roles = ca.write("roles.yaml", touchkit::ROLES);
    ca.ok(&["roles", "apply", roles.to_str().unwrap()]);
    // The socket in a directory everyone may enter, so what a peer meets
    // is the socket's own mode and the daemon's peer check.
    let run_dir = tempfile::Builder::new()
        .prefix("signet-admin-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = run_dir.path().join("admin.sock");
    set_serve(&ca.config, "admin_socket", socket.to_str().unwrap());
    // Giving the socket a group needs root (the tests run as root in CI).
    let root = is_root();
    if root {
        set_serve(&ca.config, "admin_group", "nogroup");
    }
    let root_pem = ca.ok(&["export", "x509-ca"]);

    let mut daemon = ca.serve();
    let at = Log::Daemon {
        root_pem: &root_pem,
        port: daemon.port,
    };
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    if root {
        assert_eq!(
            meta.gid(),
            NOGROUP,
            "the socket's group is serve.admin_group"
        );
    }
    assert!(!ca.path("data/admin.sock").exists());

    // A second daemon on the same data directory is refused, and the
    // first keeps its socket and answers.
    let second = run_with_deadline(ca.command().arg("serve"));
    assert!(!second.status.success());
    // On PostgreSQL the store is shared by design; the second daemon is
    // still refused (its ports and admin socket are taken).
    if !common::on_postgres() {
        assert!(
            stderr(&second).contains("in use by another signet-ca process"),
            "{}",
            stderr(&second)
        );
    }
    assert!(socket.exists());
    ok2(&ca, &["users", "list"]);

    if root {
        // A copy of the config other users can read.
        let public = tempfile::Builder::new()
            .prefix("signet-cfg-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(public.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = public.path().join("ca.toml");
        std::fs::copy(&ca.config, &config).unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            Command::new("getent")
                .args(["passwd", &STRANGER.to_string()])
                .output()
                .unwrap()
                .stdout
                .is_empty(),
            "uid {STRANGER} has an account here; the test needs one without"
        );
        let size = entries(&ca, &at).len();
        let lock = ["users", "lock", "bob", "--reason", "by a stranger"];

        // Not in the group: the socket's mode keeps the stranger out...
        let out = as_user(&config, STRANGER, STRANGER, None, &lock);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("permission denied"),
            "{}",
            stderr(&out)
        );
        // ...and were the socket open to all, the daemon's peer check.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let out = as_user(&config, STRANGER, STRANGER, None, &lock);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("not allowed"), "{}", stderr(&out));
        let out = as_user(
            &config,
            STRANGER,
            STRANGER,
            None,
            &["users", "list", "--json"],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "reading is refused too: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty());
        // A request larger than the socket's buffers (a big roles
        // directory) meets the same refusal, not a broken pipe.
        let big = public.path().join("big-roles");
        std::fs::create_dir(&big).unwrap();
        std::fs::write(big.join("roles.yaml"), touchkit::ROLES).unwrap();
        for file in 0..4 {
            let users: String = (0..5000)
                .map(|i| format!("---\nkind: user\nname: u{file}-{i:05}\nroles: [dev]\n"))
                .collect();
            std::fs::write(big.join(format!("users-{file}.yaml")), users).unwrap();
        }
        for path in std::fs::read_dir(&big).unwrap() {
            std::fs::set_permissions(path.unwrap().path(), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = as_user(
            &config,
            STRANGER,
            STRANGER,
            None,
            &["roles", "apply", big.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("not allowed"), "{}", stderr(&out));
        assert_eq!(
            entries(&ca, &at).len(),
            size,
            "a refused peer's request was logged"
        );
        // nobody's process runs without nogroup, but the group database
        // makes it nobody's primary group: a member.
        let out = as_user(&config, NOBODY, STRANGER, None, &lock);
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660)).unwrap();

        // In serve.admin_group as the process's group or a supplementary
        // one: accepted, and the entry names that uid.
        let unlock = ["users", "unlock", "bob", "--reason", "by a stranger"];
        let out = as_user(&config, STRANGER, NOGROUP, None, &unlock);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = as_user(&config, STRANGER, STRANGER, Some(NOGROUP), &lock);
        assert!(out.status.success(), "{}", stderr(&out));
        let log = entries(&ca, &at);
        assert_eq!(log.len(), size + 3);
        assert_admin_entry(&log[size], EntryKind::Lock, "bob", "nobody (uid 65534)");
        assert_admin_entry(&log[size + 1], EntryKind::Unlock, "bob", "uid 65533");
        assert_admin_entry(&log[size + 2], EntryKind::Lock, "bob", "uid 65533");
    } else {
        eprintln!(
            "SKIPPED: the peer checks need root (setpriv to uids 65533 and 65534); run the tests as root, as CI does"
        );
    }

    // Killed without a chance to clean up: the socket file stays behind.
    daemon = {
        drop(daemon);
        assert!(socket.exists(), "SIGKILL cannot remove the socket");
        // Nobody answers on it: the commands work on the store directly.
        ok2(&ca, &["users", "lock", "carol", "--reason", "stale socket"]);
        let log = entries(&ca, &Log::Direct);
        assert_admin_entry(log.last().unwrap(), EntryKind::Lock, "carol", &me());
        // And the next start replaces it.
        reset_listen(&ca.config);
        ca.serve()
    };
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    let carol = json_of(&ca, &["users", "show", "carol", "--json"]);
    assert_eq!(carol["locked"]["reason"], "stale socket", "{carol}");

    // SIGTERM: exit 0, the socket gone.
    let status = daemon.terminate();
    assert!(status.success(), "serve ended with {status:?}");
    assert!(!socket.exists(), "the socket outlived the daemon");
}
