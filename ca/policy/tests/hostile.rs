//! Hostile role files: each is refused by a bound, before it can cost much.
//! (No timing assertions: each test would take minutes or gigabytes if the
//! bound it checks were missing, and each asserts which bound refused it.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use signet_policy::{Invalid, Policy, PolicyError, MAX_FILE_BYTES, MAX_NODES};

fn invalid(text: &str) -> Invalid {
    match Policy::parse("hostile.yaml", text) {
        Err(PolicyError::Invalid(e)) => *e,
        other => panic!("expected a content error, got {other:?}"),
    }
}

#[test]
fn an_alias_bomb_is_refused_at_its_first_anchor() {
    // "Billion laughs": nine levels of ten aliases each expand to 10^9 strings.
    let mut text = String::from("kind: role\nname: lol\na: &a [\"lol\"]\n");
    let mut previous = 'a';
    for level in 'b'..='j' {
        let refs = vec![format!("*{previous}"); 10].join(", ");
        text.push_str(&format!("{level}: &{level} [{refs}]\n"));
        previous = level;
    }
    let e = invalid(&text);
    assert_eq!((e.location.line, e.location.column), (3, 4), "{e}");
    assert_eq!(e.field, "a");
    assert!(e.message.contains("anchors (&name) are not allowed"), "{e}");
}

#[test]
fn deep_nesting_is_refused_at_the_bound() {
    let text = format!("kind: role\nname: x\nallow: {}", "[".repeat(500_000));
    let e = invalid(&text);
    assert!(
        e.message.contains("nested deeper than 8 levels")
            || e.message.contains("recursion limit exceeded"),
        "{e}"
    );
    assert_eq!(e.location.line, 3);
    // Nested flow maps trip the parser's own recursion limit first.
    let text = format!("kind: role\nname: x\nallow: {}", "{a: ".repeat(200_000));
    let e = invalid(&text);
    assert!(
        e.message.contains("nested deeper than 8 levels")
            || e.message.contains("recursion limit exceeded"),
        "{e}"
    );
    assert_eq!(e.location.line, 3);
    // Block style.
    let mut text = String::from("kind: role\nname: x\n");
    for depth in 0..1000 {
        text.push_str(&format!("{}a:\n", " ".repeat(depth)));
    }
    let e = invalid(&text);
    assert!(e.message.contains("nested deeper than 8 levels"), "{e}");
    assert_eq!((e.location.line, e.location.column), (11, 9), "{e}");
    assert_eq!(e.field, "a.a.a.a.a.a.a.a");
}

#[test]
fn too_many_nodes_are_refused() {
    let mut text = String::from("kind: role\nname: x\nallow:\n  logins: [");
    while text.len() < MAX_FILE_BYTES - 10 {
        text.push_str("a,");
    }
    text.push_str("a]\n");
    let e = invalid(&text);
    assert!(
        e.message
            .contains(&format!("more than {MAX_NODES} YAML nodes")),
        "{e}"
    );
    assert!(e.field.starts_with("allow.logins["), "{e}");
}

#[test]
fn a_huge_file_is_refused_by_its_size() {
    let text = format!("kind: role\nname: \"{}\"\n", "x".repeat(2 * MAX_FILE_BYTES));
    let e = invalid(&text);
    assert_eq!(e.to_string(), "hostile.yaml:1:1: larger than 1048576 bytes");
}

#[test]
fn long_values_are_not_echoed_in_full() {
    let long = "A".repeat(500_000);
    let e = invalid(&format!("kind: role\nname: \"{long}\"\n"));
    assert!(e.message.contains("longer than 64"), "{e}");
    assert!(e.to_string().len() < 200, "{e}");
    // YAML limits a plain key to 1024 characters; past that it is a syntax error.
    let e = invalid(&format!("kind: role\n{long}: 1\n"));
    assert!(e.message.starts_with("YAML syntax"), "{e}");
    assert!(e.to_string().len() < 200, "{e}");
    let e = invalid(&format!("kind: role\n{}: 1\n", &long[..1000]));
    assert!(e.message.starts_with("unknown field \"AAAA"), "{e}");
    assert!(e.to_string().len() < 200, "{e}");
    let e = invalid(&format!("kind: \"{long}\"\n"));
    assert!(e.to_string().len() < 200, "{e}");
}

#[test]
fn empty_documents_are_skipped_but_counted() {
    let text = "---\n".repeat(1000);
    assert_eq!(Policy::parse("hostile.yaml", &text).unwrap(), Policy::new());
    let text = "---\n".repeat(MAX_FILE_BYTES / 4 - 1);
    let e = invalid(&text);
    assert!(
        e.message
            .contains(&format!("more than {MAX_NODES} YAML nodes")),
        "{e}"
    );
}

#[test]
fn long_lists_are_refused() {
    let logins: Vec<String> = (0..300).map(|i| format!("u{i}")).collect();
    let e = invalid(&format!(
        "kind: role\nname: x\nallow:\n  logins: [{}]\n",
        logins.join(", ")
    ));
    assert_eq!(e.field, "allow.logins");
    assert!(e.message.contains("at most 256 entries"), "{e}");
}

#[test]
fn control_characters_and_odd_bytes_never_panic() {
    for text in [
        "\u{0}",
        "kind: role\u{0}\n",
        "\u{feff}kind: user\nname: a\nroles: []\n",
        "kind: user\nname: \"\\u0000\"\nroles: []\n",
        "kind: user\nname: a\nroles: [\"\\udc00\"]\n",
        "%YAML 1.2\n---\nkind: user\nname: a\nroles: []\n",
        "%TAG ! tag:x:\n---\n!a {}\n",
        "? kind\n: user\n",
        "kind: user\nname: a\nroles: [a\n---\n",
        "'",
        "\"\\",
        "{",
        "]",
        "- - - -",
        "kind: user\r\nname: a\r\nroles: []\r\n",
    ] {
        let _ = Policy::parse("hostile.yaml", text);
    }
    // The byte order mark and CRLF line ends are ordinary.
    Policy::parse("bom.yaml", "\u{feff}kind: user\nname: a\nroles: []\n").unwrap();
    Policy::parse("crlf.yaml", "kind: user\r\nname: a\r\nroles: []\r\n").unwrap();
}

#[test]
fn a_map_with_many_keys_is_read_through_once() {
    // 100 000 distinct keys: duplicate detection must not compare each key
    // with every earlier one (that took 17 s in a release build). The
    // document is refused only after every key is read, so the unknown
    // field reported is the first.
    let mut text = String::from("kind: role\n");
    let mut i = 0;
    while text.len() < MAX_FILE_BYTES - 20 {
        text.push_str(&format!("k{i}: 1\n"));
        i += 1;
    }
    assert!(i > 90_000);
    let e = invalid(&text);
    assert_eq!(
        e.to_string(),
        "hostile.yaml:2:1: k0: unknown field \"k0\", expected one of kind, name, allow, options"
    );
    // A duplicate at the very end is still found.
    text.push_str("k7: 2\n");
    let e = invalid(&text);
    assert_eq!(e.field, "");
    assert!(
        e.message.contains("duplicate key \"k7\" (first at line 9)"),
        "{e}"
    );
}

#[test]
fn a_full_size_honest_file_loads() {
    let mut text = String::new();
    let mut n = 0;
    while text.len() < MAX_FILE_BYTES - 400 {
        text.push_str(&format!(
            "---\nkind: role\nname: r{n}\nallow:\n  logins: [root, ubuntu]\n  node_labels: {{ env: [prod], team: [sre] }}\noptions: {{ max_session_ttl: 8h, hardware_key: touch, session_mfa: true }}\n---\nkind: user\nname: u{n}\nroles: [r{n}]\n"
        ));
        n += 1;
    }
    let p = Policy::parse("big.yaml", &text).unwrap();
    assert_eq!(p.roles().count(), n);
    assert_eq!(p.users().count(), n);
    assert!(n > 4000);
}
