//! Nodes as YAML: the format, its errors (file, line, column, field), the
//! diff `signet-ca nodes apply` prints, and the change records the CA logs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use std::collections::BTreeMap;

use signet_policy::{Invalid, Inventory, Node, NodeChange, Policy, PolicyError};

const NODES: &str = "\
kind: node
name: web-1
address: web-1.internal:22
labels: { env: prod, team: sre }
---
kind: node
name: db-1
address: '[2001:db8::7]:2222'
labels:
  env: prod
  team: dba
---
kind: node
name: bare
address: 10.0.0.9:22
";

fn invalid(text: &str) -> Invalid {
    match Inventory::parse("nodes/bad.yaml", text) {
        Err(PolicyError::Invalid(e)) => *e,
        other => panic!("expected a content error for\n{text}\ngot {other:?}"),
    }
}

#[track_caller]
fn check(text: &str, line: usize, column: usize, field: &str, message: &str) {
    let e = invalid(text);
    assert_eq!(
        (e.location.line, e.location.column, e.field.as_str()),
        (line, column, field),
        "{e}"
    );
    assert!(e.message.contains(message), "{e}\nwanted: {message}");
    assert!(
        e.to_string()
            .starts_with(&format!("nodes/bad.yaml:{line}:{column}: ")),
        "{e}"
    );
}

#[test]
fn nodes_parse() {
    let inv = Inventory::parse("nodes/ok.yaml", NODES).unwrap();
    assert_eq!(inv.len(), 3);
    let web = inv.node("web-1").unwrap();
    assert_eq!(web.address, "web-1.internal:22");
    assert_eq!(web.host_port(), Some(("web-1.internal", 22)));
    assert_eq!(web.labels.get("team").map(String::as_str), Some("sre"));
    let db = inv.node("db-1").unwrap();
    assert_eq!(db.host_port(), Some(("2001:db8::7", 2222)));
    assert!(inv.node("bare").unwrap().labels.is_empty());
}

#[test]
fn nodes_errors_name_file_line_column_and_field() {
    let base = "kind: node\nname: web-1\naddress: web-1:22\nlabels: { env: prod }\n";
    assert!(Inventory::parse("nodes/bad.yaml", base).is_ok());
    check(
        &base.replace("address: web-1:22", "address: web-1"),
        3,
        10,
        "address",
        "has no port",
    );
    check(
        &base.replace("address: web-1:22", "address: web-1:99999"),
        3,
        10,
        "address",
        "port",
    );
    check(
        &base.replace("address: web-1:22\n", ""),
        1,
        1,
        "address",
        "missing field",
    );
    check(
        &base.replace("labels: { env: prod }", "labels: { env: '*' }"),
        4,
        16,
        "labels.env",
        "wildcard",
    );
    check(
        &base.replace("labels: { env: prod }", "labels: { 'e v': prod }"),
        4,
        11,
        "labels.e v",
        "label key",
    );
    check(
        &base.replace("labels: { env: prod }", "labels: { env: [prod] }"),
        4,
        16,
        "labels.env",
        "expected text",
    );
    check(
        &base.replace("labels: { env: prod }", "lables: { env: prod }"),
        4,
        1,
        "lables",
        "unknown field",
    );
    check(
        &base.replace("name: web-1", "name: -web"),
        2,
        7,
        "name",
        "not allowed",
    );
    check(
        &base.replace("kind: node", "kind: role"),
        1,
        7,
        "kind",
        "roles apply",
    );
    check(
        &base.replace("kind: node", "kind: host"),
        1,
        7,
        "kind",
        "unknown kind",
    );
    check(
        &format!("{base}---\n{base}"),
        7,
        7,
        "name",
        "already defined at nodes/bad.yaml:2:7",
    );
    check(
        "kind: node\nname: &a web-1\naddress: web-1:22\n",
        2,
        7,
        "name",
        "anchors",
    );
    check(
        &base.replace("address: web-1:22", "address: 22"),
        3,
        10,
        "address",
        "expected text, found a number",
    );
}

#[test]
fn nodes_in_role_files_are_refused_with_the_command_to_use() {
    let text = "kind: node\nname: web-1\naddress: web-1:22\n";
    let e = Policy::parse("roles/x.yaml", text).unwrap_err();
    let e = e.invalid().unwrap();
    assert_eq!((e.location.line, e.field.as_str()), (1, "kind"));
    assert!(e.message.contains("nodes apply"), "{e}");
}

#[test]
fn nodes_diff_field_by_field_and_in_order() {
    let old = Inventory::parse("a.yaml", NODES).unwrap();
    let new = Inventory::parse(
        "b.yaml",
        "\
kind: node
name: web-1
address: web-1.internal:2222
labels: { env: prod, zone: eu }
---
kind: node
name: db-1
address: '[2001:db8::7]:2222'
labels: { env: prod, team: dba }
---
kind: node
name: app-1
address: app-1:22
",
    )
    .unwrap();
    let diff = old.diff(&new);
    assert_eq!(
        diff.to_string(),
        "\
+ node app-1
    address: app-1:22
~ node web-1
    address: web-1.internal:22 -> web-1.internal:2222
    labels.team: sre -> (none)
    labels.zone: (none) -> eu
- node bare
"
    );
    let json = serde_json::to_value(&diff).unwrap();
    assert_eq!(json["changes"][0]["kind"], "node");
    assert_eq!(json["changes"][0]["action"], "added");
    assert_eq!(
        json["changes"][2]["change"],
        serde_json::json!({"remove_node": "bare"})
    );

    // Replaying the changes gives the new inventory.
    let mut replayed = old.clone();
    for change in &diff.changes {
        replayed.apply(change);
    }
    assert_eq!(replayed, new);
    assert!(new.diff(&replayed).is_empty());
    assert_eq!(new.diff(&replayed).to_string(), "no changes\n");
}

#[test]
fn nodes_change_records_round_trip_and_are_checked() {
    let node = Node {
        name: "web-1".into(),
        address: "web-1:22".into(),
        labels: BTreeMap::from([("env".into(), "prod".into())]),
    };
    let change = NodeChange::PutNode(node);
    let json = serde_json::to_string(&change).unwrap();
    assert_eq!(
        json,
        r#"{"put_node":{"name":"web-1","address":"web-1:22","labels":{"env":"prod"}}}"#
    );
    assert_eq!(serde_json::from_str::<NodeChange>(&json).unwrap(), change);
    for bad in [
        r#"{"put_node":{"name":"web-1","address":"web-1","labels":{}}}"#,
        r#"{"put_node":{"name":"-x","address":"web-1:22","labels":{}}}"#,
        r#"{"put_node":{"name":"web-1","address":"web-1:22","labels":{"env":"*"}}}"#,
        r#"{"put_node":{"name":"web-1","address":"web-1:22","labels":{},"extra":1}}"#,
        r#"{"put_node":{"name":"web-1","address":"web-1:22"}}"#,
        r#"{"remove_node":"a b"}"#,
        r#"{"put_role":{}}"#,
    ] {
        assert!(serde_json::from_str::<NodeChange>(bad).is_err(), "{bad}");
    }
}

#[test]
fn nodes_load_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("eu")).unwrap();
    std::fs::write(dir.path().join("eu/web.yaml"), NODES).unwrap();
    std::fs::write(dir.path().join(".draft.yaml"), "kind: nonsense\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "kind: nonsense\n").unwrap();
    let inv = Inventory::load(&[dir.path().to_owned()]).unwrap();
    assert_eq!(inv.len(), 3);
    assert!(matches!(
        Inventory::load(&[]),
        Err(PolicyError::NothingNamed)
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Inventory::load(&[empty.path().to_owned()]),
        Err(PolicyError::Unusable { .. })
    ));
}

#[test]
fn roles_reach_nodes_by_label() {
    let policy = Policy::parse(
        "roles.yaml",
        "\
kind: role
name: sre
allow:
  logins: [root]
  node_labels: { env: [prod], team: [sre] }
options: { max_session_ttl: 8h, hardware_key: touch, session_mfa: false }
",
    )
    .unwrap();
    let inv = Inventory::parse("a.yaml", NODES).unwrap();
    let role = policy.role("sre").unwrap();
    let reached: Vec<&str> = inv
        .nodes()
        .filter(|n| role.allows_node(&n.labels))
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(reached, ["web-1"]);
}
