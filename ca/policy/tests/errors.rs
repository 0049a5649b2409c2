//! The catalogue of bad role files: each error names the file, the line,
//! the column and the field, as `signet-ca roles apply` shows them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use std::fs;

use signet_policy::{Invalid, Policy, PolicyError};

/// A valid role; cases below change one line of it.
const ROLE: &str = "\
kind: role
name: prod
allow:
  logins: [root, ubuntu]
  node_labels: { env: [prod] }
options:
  max_session_ttl: 8h
  hardware_key: touch
  session_mfa: true
";

fn replace_line(text: &str, line: usize, with: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[line - 1] = with.to_owned();
    lines.join("\n") + "\n"
}

fn invalid(text: &str) -> Invalid {
    match Policy::parse("roles/bad.yaml", text) {
        Err(PolicyError::Invalid(e)) => *e,
        other => panic!("expected a content error for\n{text}\ngot {other:?}"),
    }
}

#[track_caller]
fn check(text: &str, line: usize, column: usize, field: &str, message: &str) {
    let e = invalid(text);
    assert_eq!(e.location.file, "roles/bad.yaml", "{e}");
    assert_eq!(
        (e.location.line, e.location.column, e.field.as_str()),
        (line, column, field),
        "{e}"
    );
    assert!(e.message.contains(message), "{e}\nwanted: {message}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("roles/bad.yaml:{line}:{column}: ")),
        "{shown}"
    );
}

#[test]
fn the_base_role_is_valid() {
    let p = Policy::parse("roles/ok.yaml", ROLE).unwrap();
    assert_eq!(p.roles().count(), 1);
}

#[test]
fn the_example_from_the_design_is_shown_as_documented() {
    let text = replace_line(ROLE, 8, "  hardware_key: toch");
    let e = invalid(&text);
    assert_eq!(
        e.to_string(),
        "roles/bad.yaml:8:17: options.hardware_key: unknown value \"toch\", expected one of none, attested, touch, touch_and_pin"
    );
}

#[test]
fn unknown_fields() {
    check(
        &format!("{ROLE}colour: red\n"),
        10,
        1,
        "colour",
        "unknown field \"colour\", expected one of kind, name, allow, options",
    );
    check(
        &replace_line(ROLE, 4, "  login: [root]"),
        4,
        3,
        "allow.login",
        "unknown field \"login\", expected one of logins, node_labels",
    );
    check(
        &replace_line(ROLE, 7, "  max_ttl: 8h"),
        7,
        3,
        "options.max_ttl",
        "unknown field \"max_ttl\"",
    );
    check(
        "kind: user\nname: alice\nroles: []\nrole: [prod]\n",
        4,
        1,
        "role",
        "unknown field \"role\", expected one of kind, name, roles",
    );
}

#[test]
fn kinds() {
    check(
        &replace_line(ROLE, 1, "kind: rol"),
        1,
        7,
        "kind",
        "unknown kind \"rol\", expected one of role, user",
    );
    check(
        "name: alice\nroles: []\n",
        1,
        1,
        "kind",
        "missing field \"kind\"",
    );
    check("- kind: role\n", 1, 1, "", "expected a document with kind");
    check("just text\n", 1, 1, "", "expected a document with kind");
    check(
        "kind: [role]\nname: x\n",
        1,
        7,
        "kind",
        "expected text, found a list",
    );
}

#[test]
fn missing_fields() {
    let without = |line: usize| {
        let mut lines: Vec<&str> = ROLE.lines().collect();
        lines.remove(line - 1);
        lines.join("\n") + "\n"
    };
    check(&without(2), 1, 1, "name", "missing field \"name\"");
    // A missing field is reported where its map starts (here: node_labels, now line 4).
    check(
        &without(4),
        4,
        3,
        "allow.logins",
        "missing field \"logins\"",
    );
    check(
        &without(9),
        7,
        3,
        "options.session_mfa",
        "missing field \"session_mfa\"",
    );
    check(
        &without(7),
        7,
        3,
        "options.max_session_ttl",
        "missing field",
    );
    let no_options: String = ROLE.lines().take(5).map(|l| format!("{l}\n")).collect();
    check(&no_options, 1, 1, "options", "missing field \"options\"");
    check(
        "kind: user\nname: alice\n",
        1,
        1,
        "roles",
        "missing field \"roles\"",
    );
}

#[test]
fn durations() {
    let ttl = |v: &str| replace_line(ROLE, 7, &format!("  max_session_ttl: {v}"));
    check(
        &ttl("eight"),
        7,
        20,
        "options.max_session_ttl",
        "\"eight\" is not a duration",
    );
    check(
        &ttl("3600"),
        7,
        20,
        "options.max_session_ttl",
        "is not a duration",
    );
    check(
        &ttl("31days"),
        7,
        20,
        "options.max_session_ttl",
        "longer than the most allowed, 30days",
    );
    check(
        &ttl("0s"),
        7,
        20,
        "options.max_session_ttl",
        "more than zero",
    );
    check(
        &ttl("1500ms"),
        7,
        20,
        "options.max_session_ttl",
        "whole number of seconds",
    );
    // An empty value is marked at the colon after its key.
    check(
        &ttl(""),
        7,
        18,
        "options.max_session_ttl",
        "expected a duration like 8h, found nothing",
    );
    check(
        &ttl("[8h]"),
        7,
        20,
        "options.max_session_ttl",
        "found a list",
    );
    check(
        &ttl("99999999999999999999h"),
        7,
        20,
        "options.max_session_ttl",
        "is not a duration",
    );
    // Accepted spellings.
    for ok in ["8h", "\"8h\"", "1h 30m", "30days", "90s"] {
        Policy::parse("roles/ok.yaml", &ttl(ok)).unwrap();
    }
}

#[test]
fn logins() {
    let logins = |v: &str| replace_line(ROLE, 4, &format!("  logins: {v}"));
    check(
        &logins("[root, Ubuntu]"),
        4,
        18,
        "allow.logins[1]",
        "\"Ubuntu\" is not a unix login",
    );
    check(
        &logins("[root, root]"),
        4,
        18,
        "allow.logins[1]",
        "\"root\" is listed twice",
    );
    check(
        &logins("[root, 123]"),
        4,
        18,
        "allow.logins[1]",
        "expected text, found a number",
    );
    check(
        &logins("[root, \"ro\\tot\"]"),
        4,
        18,
        "allow.logins[1]",
        "is not a unix login",
    );
    check(
        &logins("[root, \"\"]"),
        4,
        18,
        "allow.logins[1]",
        "must not be empty",
    );
    check(
        &logins("[root, null]"),
        4,
        18,
        "allow.logins[1]",
        "found nothing (null)",
    );
    check(
        &logins("root"),
        4,
        11,
        "allow.logins",
        "expected a list, found \"root\"",
    );
    check(
        &logins(""),
        4,
        9,
        "allow.logins",
        "expected a list, found nothing (write [] for none)",
    );
    check(
        &logins(&format!("[{}]", "a".repeat(33))),
        4,
        12,
        "allow.logins[0]",
        "is not a unix login",
    );
    // Block style: the item's own line.
    let block = replace_line(ROLE, 4, "  logins:\n    - root\n    - \"x y\"");
    check(
        &block,
        6,
        7,
        "allow.logins[1]",
        "\"x y\" is not a unix login",
    );
}

#[test]
fn names() {
    let name = |v: &str| replace_line(ROLE, 2, &format!("name: {v}"));
    check(&name("\"\""), 2, 7, "name", "must not be empty");
    check(&name("\"a\\u0007b\""), 2, 7, "name", "is not allowed");
    check(&name("-prod"), 2, 7, "name", "is not allowed");
    check(
        &name("2024"),
        2,
        7,
        "name",
        "expected text, found a number; quote it",
    );
    check(
        &name("true"),
        2,
        7,
        "name",
        "expected text, found a boolean",
    );
    check(&name(""), 2, 5, "name", "expected text, found nothing");
    check(&name(&"x".repeat(65)), 2, 7, "name", "longer than 64");
    check(
        "kind: user\nname: alice\nroles: [prod, \"b c\"]\n",
        3,
        15,
        "roles[1]",
        "\"b c\" is not allowed",
    );
    check(
        "kind: user\nname: alice\nroles: [a, a]\n",
        3,
        12,
        "roles[1]",
        "listed twice",
    );
}

#[test]
fn labels() {
    let labels = |v: &str| replace_line(ROLE, 5, &format!("  node_labels: {v}"));
    check(
        &labels("{ env: [] }"),
        5,
        23,
        "allow.node_labels.env",
        "at least one value",
    );
    check(
        &labels("{ \"e v\": [prod] }"),
        5,
        18,
        "allow.node_labels.e v",
        "label key \"e v\" is not allowed",
    );
    check(
        &labels("{ \"\": [prod] }"),
        5,
        18,
        "allow.node_labels.",
        "must not be empty",
    );
    check(
        &labels("{ env: [\"a\\u0001\"] }"),
        5,
        24,
        "allow.node_labels.env[0]",
        "control character",
    );
    check(
        &labels("{ env: [\"\"] }"),
        5,
        24,
        "allow.node_labels.env[0]",
        "must not be empty",
    );
    check(
        &labels("{ env: [prod, prod] }"),
        5,
        30,
        "allow.node_labels.env[1]",
        "listed twice",
    );
    check(
        &labels("{ env: prod }"),
        5,
        23,
        "allow.node_labels.env",
        "expected a list",
    );
    check(
        &labels("[env]"),
        5,
        16,
        "allow.node_labels",
        "expected a map",
    );
    check(
        &labels("{ \"*\": [\"*\"], env: [prod] }"),
        5,
        16,
        "allow.node_labels",
        "must be the only key",
    );
    check(
        &labels("{ \"*\": [prod] }"),
        5,
        16,
        "allow.node_labels",
        "single value",
    );
}

#[test]
fn booleans_and_enums() {
    let mfa = |v: &str| replace_line(ROLE, 9, &format!("  session_mfa: {v}"));
    check(
        &mfa("yes"),
        9,
        16,
        "options.session_mfa",
        "expected true or false, found \"yes\"",
    );
    check(
        &mfa("\"true\""),
        9,
        16,
        "options.session_mfa",
        "expected true or false",
    );
    check(
        &mfa("1"),
        9,
        16,
        "options.session_mfa",
        "expected true or false",
    );
    let key = |v: &str| replace_line(ROLE, 8, &format!("  hardware_key: {v}"));
    check(
        &key("Touch"),
        8,
        17,
        "options.hardware_key",
        "unknown value \"Touch\"",
    );
    check(
        &key("true"),
        8,
        17,
        "options.hardware_key",
        "expected text, found a boolean",
    );
    check(
        &key("{}"),
        8,
        17,
        "options.hardware_key",
        "expected text, found a map",
    );
}

#[test]
fn structure() {
    let flat: String = ROLE
        .lines()
        .filter(|l| !l.starts_with("  logins") && !l.starts_with("  node_labels"))
        .map(|l| {
            if l == "allow:" {
                "allow: [root]\n".to_owned()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    check(&flat, 3, 8, "allow", "expected a map, found a list");
    check(
        &format!("{ROLE}name: other\n"),
        10,
        1,
        "",
        "duplicate key \"name\" (first at line 2)",
    );
    check(
        &replace_line(ROLE, 7, "  max_session_ttl: 8h\n  max_session_ttl: 9h"),
        8,
        3,
        "options",
        "duplicate key \"max_session_ttl\" (first at line 7)",
    );
}

#[test]
fn yaml_syntax() {
    // An unclosed flow list: the parser reports where it gave up.
    let e = invalid("kind: role\nname: prod\nallow:\n  logins: [root, ubuntu\noptions: {}\n");
    assert_eq!(e.location.file, "roles/bad.yaml");
    assert!(e.message.starts_with("YAML syntax:"), "{e}");
    assert!((4..=6).contains(&e.location.line), "{e}");
    // A tab used for indentation.
    let e = invalid("kind: role\nallow:\n\tlogins: [root]\n");
    assert!(e.message.starts_with("YAML syntax:"), "{e}");
    assert_eq!(e.location.line, 3, "{e}");
    // Inside a known field, the path says where.
    let e = invalid("kind: role\nname: prod\nallow:\n  logins: [root, \"ub\n");
    assert!(e.field.starts_with("allow.logins"), "{e}");
}

#[test]
fn errors_in_later_documents_count_lines_from_the_top_of_the_file() {
    let text = format!("{ROLE}---\nkind: user\nname: alice\nroles: [prod, nope]\n");
    check(&text, 13, 15, "roles[1]", "no role \"nope\" is defined");
    let text = format!(
        "{ROLE}---\n{}",
        replace_line(ROLE, 4, "  logins: [root, Ubuntu]")
    );
    check(&text, 14, 18, "allow.logins[1]", "not a unix login");
}

#[test]
fn anchors_aliases_tags_and_merge_keys_are_refused() {
    check(
        &replace_line(ROLE, 4, "  logins: &l [root]"),
        4,
        11,
        "allow.logins",
        "anchors (&name) are not allowed",
    );
    // An alias needs an anchor, refused before it; one to an anchor never
    // defined is a syntax error at the alias.
    check(
        "kind: role\nname: a\nallow:\n  logins: *l\n",
        4,
        11,
        "allow.logins",
        "YAML syntax: while parsing node, found unknown anchor",
    );
    check(
        &replace_line(ROLE, 2, "name: !!str prod"),
        2,
        7,
        "name",
        "tags (!name) are not allowed",
    );
    check(
        &replace_line(ROLE, 6, "options:\n  <<: {}"),
        7,
        3,
        "options",
        "merge keys (<<) are not allowed",
    );
}

#[test]
fn names_defined_twice_name_both_places() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), ROLE).unwrap();
    fs::write(
        dir.path().join("b.yaml"),
        format!("# another\n{}", replace_line(ROLE, 4, "  logins: [ubuntu]")),
    )
    .unwrap();
    let e = Policy::load(&[dir.path().to_owned()]).unwrap_err();
    let a = dir.path().join("a.yaml").display().to_string();
    let b = dir.path().join("b.yaml").display().to_string();
    assert_eq!(
        e.to_string(),
        format!("{b}:3:7: name: role \"prod\" is already defined at {a}:2:7")
    );

    let user = "kind: user\nname: alice\nroles: [prod]\n";
    let e = Policy::parse("roles/bad.yaml", &format!("{ROLE}---\n{user}---\n{user}")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "roles/bad.yaml:16:7: name: user \"alice\" is already defined at roles/bad.yaml:12:7"
    );
}

#[test]
fn a_user_naming_a_missing_role_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("roles.yaml"), ROLE).unwrap();
    fs::write(
        dir.path().join("users.yaml"),
        "kind: user\nname: alice\nroles:\n  - prod\n  - prodd\n",
    )
    .unwrap();
    let e = Policy::load(&[dir.path().to_owned()]).unwrap_err();
    let users = dir.path().join("users.yaml").display().to_string();
    assert_eq!(
        e.to_string(),
        format!("{users}:5:5: roles[1]: no role \"prodd\" is defined")
    );
}

#[test]
fn unicode_columns_count_characters() {
    // "é" is two bytes, one column.
    let e = invalid(&replace_line(ROLE, 4, "  logins: [\"é\", Ubuntu]"));
    assert_eq!((e.location.line, e.location.column), (4, 12), "{e}");
    let e = invalid(&replace_line(
        ROLE,
        5,
        "  node_labels: { zone: [\"é\", \"\"] }",
    ));
    assert_eq!((e.location.line, e.location.column), (5, 30), "{e}");
}
