//! Diffs between two role directories, replaying them, and the JSON the CA
//! writes into its log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use std::fs;
use std::path::Path;

use signet_policy::{Change, Policy};

const OLD_ROLES: &str = "\
kind: role
name: prod-sre
allow:
  logins: [root, ubuntu]
  node_labels: { env: [prod], team: [sre] }
options: { max_session_ttl: 8h, hardware_key: touch, session_mfa: true }
---
kind: role
name: dev
allow:
  logins: [ubuntu]
  node_labels: { env: [dev], team: [web] }
options: { max_session_ttl: 12h, hardware_key: attested, session_mfa: false }
---
kind: role
name: legacy
allow:
  logins: [admin]
  node_labels: { \"*\": [\"*\"] }
options: { max_session_ttl: 1h, hardware_key: none, session_mfa: false }
";

const OLD_USERS: &str = "\
kind: user
name: alice
roles: [prod-sre]
---
kind: user
name: bob
roles: [legacy, dev]
---
kind: user
name: dave
roles: [legacy]
";

const NEW_ROLES: &str = "\
kind: role
name: prod-sre
allow:
  logins: [ubuntu, root]
  node_labels: { team: [sre], env: [prod] }
options: { max_session_ttl: 8h, hardware_key: touch, session_mfa: true }
---
kind: role
name: dev
allow:
  logins: [ubuntu, deploy]
  node_labels: { env: [staging, dev] }
options: { max_session_ttl: 4h, hardware_key: touch, session_mfa: false }
---
kind: role
name: ops
allow:
  logins: [ops]
  node_labels: { team: [ops] }
options: { max_session_ttl: 2h, hardware_key: touch_and_pin, session_mfa: true }
";

const NEW_USERS: &str = "\
kind: user
name: alice
roles: [prod-sre]
---
kind: user
name: bob
roles: [ops, dev]
---
kind: user
name: erin
roles: [ops]
";

fn dir(roles: &str, users: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("roles.yaml"), roles).unwrap();
    fs::write(d.path().join("users.yaml"), users).unwrap();
    d
}

fn load(d: &Path) -> Policy {
    Policy::load(&[d.to_owned()]).unwrap()
}

#[test]
fn the_diff_between_two_directories_is_field_by_field() {
    let (a, b) = (dir(OLD_ROLES, OLD_USERS), dir(NEW_ROLES, NEW_USERS));
    let (old, new) = (load(a.path()), load(b.path()));
    let diff = old.diff(&new);
    assert_eq!(
        diff.to_string(),
        "\
~ role dev
    allow.logins: [ubuntu] -> [deploy, ubuntu]
    allow.node_labels.env: [dev] -> [dev, staging]
    allow.node_labels.team: [web] -> (none)
    options.max_session_ttl: 12h -> 4h
    options.hardware_key: attested -> touch
+ role ops
    allow.logins: [ops]
    allow.node_labels.team: [ops]
    options.max_session_ttl: 2h
    options.hardware_key: touch_and_pin
    options.session_mfa: true
~ user bob
    roles: [dev, legacy] -> [dev, ops]
+ user erin
    roles: [ops]
- user dave
- role legacy
"
    );
    // prod-sre and alice differ only in the order of lists and keys: no change.
    let names: Vec<(&str, &str)> = diff
        .changes
        .iter()
        .map(|c| {
            let op = match c {
                Change::PutRole(_) => "put_role",
                Change::RemoveRole(_) => "remove_role",
                Change::PutUser(_) => "put_user",
                Change::RemoveUser(_) => "remove_user",
            };
            (op, c.name())
        })
        .collect();
    assert_eq!(
        names,
        [
            ("put_role", "dev"),
            ("put_role", "ops"),
            ("put_user", "bob"),
            ("put_user", "erin"),
            ("remove_user", "dave"),
            ("remove_role", "legacy"),
        ]
    );

    // Nothing to do the other way once applied, nor between equal directories.
    assert!(new.diff(&new).is_empty());
    assert_eq!(new.diff(&new).to_string(), "no changes\n");
    assert!(!new.diff(&old).is_empty());
}

#[test]
fn applying_the_diff_gives_the_new_policy_through_consistent_states() {
    let (a, b) = (dir(OLD_ROLES, OLD_USERS), dir(NEW_ROLES, NEW_USERS));
    let (old, new) = (load(a.path()), load(b.path()));
    for (from, to) in [
        (&old, &new),
        (&new, &old),
        (&Policy::new(), &new),
        (&new, &Policy::new()),
    ] {
        let mut state = from.clone();
        for change in &from.diff(to).changes {
            state.apply(change);
            // No user ever holds a role that does not exist.
            for user in state.users() {
                for role in &user.roles {
                    assert!(
                        state.role(role).is_some(),
                        "{} holds missing {role}",
                        user.name
                    );
                }
            }
        }
        assert_eq!(&state, to);
    }
}

#[test]
fn the_log_can_be_replayed_from_json() {
    let (a, b) = (dir(OLD_ROLES, OLD_USERS), dir(NEW_ROLES, NEW_USERS));
    let (old, new) = (load(a.path()), load(b.path()));
    // The CA's log: every change from nothing to `old`, then to `new`, as JSON.
    let mut log: Vec<String> = Vec::new();
    for change in Policy::new()
        .diff(&old)
        .changes
        .iter()
        .chain(&old.diff(&new).changes)
    {
        log.push(serde_json::to_string(change).unwrap());
    }
    let mut state = Policy::new();
    for line in &log {
        let change: Change = serde_json::from_str(line).unwrap();
        // Re-encoding gives the same bytes: one spelling per change.
        assert_eq!(&serde_json::to_string(&change).unwrap(), line);
        state.apply(&change);
    }
    assert_eq!(state, new);
}

#[test]
fn change_json_is_small_and_canonical() {
    let b = dir(NEW_ROLES, NEW_USERS);
    let new = load(b.path());
    let dev = Change::PutRole(new.role("dev").unwrap().clone());
    assert_eq!(
        serde_json::to_string(&dev).unwrap(),
        r#"{"put_role":{"name":"dev","allow":{"logins":["deploy","ubuntu"],"node_labels":{"env":["dev","staging"]}},"options":{"max_session_ttl":14400,"hardware_key":"touch","session_mfa":false}}}"#
    );
    let bob = Change::PutUser(new.user("bob").unwrap().clone());
    assert_eq!(
        serde_json::to_string(&bob).unwrap(),
        r#"{"put_user":{"name":"bob","roles":["dev","ops"]}}"#
    );
    assert_eq!(
        serde_json::to_string(&Change::RemoveRole("legacy".into())).unwrap(),
        r#"{"remove_role":"legacy"}"#
    );
    assert_eq!(
        serde_json::to_string(&Change::RemoveUser("dave".into())).unwrap(),
        r#"{"remove_user":"dave"}"#
    );
    // The log keeps a change as a JSON value (keys sorted): it decodes the same.
    let value = serde_json::to_value(&dev).unwrap();
    assert_eq!(serde_json::from_value::<Change>(value).unwrap(), dev);
    // Lists out of order in a record are put in order.
    let shuffled: Change =
        serde_json::from_str(r#"{"put_user":{"name":"bob","roles":["ops","dev"]}}"#).unwrap();
    assert_eq!(shuffled, bob);
}

#[test]
fn change_records_are_checked_like_yaml() {
    let role = |allow: &str, options: &str| {
        format!(r#"{{"put_role":{{"name":"r","allow":{allow},"options":{options}}}}}"#)
    };
    let allow = r#"{"logins":["root"],"node_labels":{}}"#;
    let options = r#"{"max_session_ttl":3600,"hardware_key":"touch","session_mfa":false}"#;
    serde_json::from_str::<Change>(&role(allow, options)).unwrap();
    let bad = [
        role(r#"{"logins":["Root"],"node_labels":{}}"#, options),
        role(r#"{"logins":["root","root"],"node_labels":{}}"#, options),
        role(r#"{"logins":["root"],"node_labels":{"env":[]}}"#, options),
        role(
            r#"{"logins":["root"],"node_labels":{"a b":["x"]}}"#,
            options,
        ),
        role(r#"{"logins":["root"],"node_labels":{"*":["x"]}}"#, options),
        role(r#"{"logins":["root"]}"#, options),
        role(r#"{"logins":["root"],"node_labels":{},"extra":1}"#, options),
        role(
            allow,
            r#"{"max_session_ttl":0,"hardware_key":"touch","session_mfa":false}"#,
        ),
        role(
            allow,
            r#"{"max_session_ttl":2592001,"hardware_key":"touch","session_mfa":false}"#,
        ),
        role(
            allow,
            r#"{"max_session_ttl":3600.0,"hardware_key":"touch","session_mfa":false}"#,
        ),
        role(
            allow,
            r#"{"max_session_ttl":"1h","hardware_key":"touch","session_mfa":false}"#,
        ),
        role(
            allow,
            r#"{"max_session_ttl":3600,"hardware_key":"toch","session_mfa":false}"#,
        ),
        role(allow, r#"{"max_session_ttl":3600,"hardware_key":"touch"}"#),
        r#"{"put_user":{"name":"","roles":[]}}"#.into(),
        r#"{"put_user":{"name":"bob","roles":["a","a"]}}"#.into(),
        r#"{"put_user":{"name":"bob","roles":[],"admin":true}}"#.into(),
        r#"{"remove_role":"a b"}"#.into(),
        r#"{"remove_user":""}"#.into(),
        r#"{"drop_all":"x"}"#.into(),
        r#"{"remove_user":"a","remove_role":"b"}"#.into(),
    ];
    for text in bad {
        assert!(
            serde_json::from_str::<Change>(&text).is_err(),
            "accepted {text}"
        );
    }
}

#[test]
fn the_json_diff_for_people_zips_details_and_changes() {
    let (a, b) = (dir(OLD_ROLES, OLD_USERS), dir(NEW_ROLES, NEW_USERS));
    let diff = load(a.path()).diff(&load(b.path()));
    let json = serde_json::to_value(&diff).unwrap();
    let changes = json["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 6);
    assert_eq!(
        changes[0],
        serde_json::json!({
            "action": "changed", "kind": "role", "name": "dev",
            "fields": [
                {"field": "allow.logins", "old": "[ubuntu]", "new": "[deploy, ubuntu]"},
                {"field": "allow.node_labels.env", "old": "[dev]", "new": "[dev, staging]"},
                {"field": "allow.node_labels.team", "old": "[web]", "new": null},
                {"field": "options.max_session_ttl", "old": "12h", "new": "4h"},
                {"field": "options.hardware_key", "old": "attested", "new": "touch"},
            ],
            "change": serde_json::to_value(&diff.changes[0]).unwrap(),
        })
    );
    assert_eq!(
        changes[5],
        serde_json::json!({
            "action": "removed", "kind": "role", "name": "legacy", "fields": [],
            "change": {"remove_role": "legacy"},
        })
    );
}
