//! Measures how long parsing a few large inputs takes (not a test).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use signet_policy::{Policy, MAX_FILE_BYTES};
use std::time::Instant;

fn time(label: &str, text: &str) {
    let start = Instant::now();
    let r = Policy::parse("x.yaml", text);
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let outcome = match &r {
        Ok(p) => format!("ok roles={} users={}", p.roles().count(), p.users().count()),
        Err(e) => {
            let s = e.to_string();
            s.chars().take(90).collect()
        }
    };
    println!(
        "input={label} bytes={} parse_ms={ms:.1} outcome={outcome}",
        text.len()
    );
}

fn main() {
    // Many distinct keys in one map.
    let mut keys = String::from("kind: role\n");
    let mut i = 0;
    while keys.len() < MAX_FILE_BYTES - 20 {
        keys.push_str(&format!("k{i}: 1\n"));
        i += 1;
    }
    time("distinct_keys", &keys);
    // Many valid roles and users.
    let mut roles = String::new();
    let mut n = 0;
    while roles.len() < MAX_FILE_BYTES - 400 {
        roles.push_str(&format!("---\nkind: role\nname: r{n}\nallow:\n  logins: [root, ubuntu]\n  node_labels: {{ env: [prod], team: [sre] }}\noptions: {{ max_session_ttl: 8h, hardware_key: touch, session_mfa: true }}\n---\nkind: user\nname: u{n}\nroles: [r{n}]\n"));
        n += 1;
    }
    time("valid_roles_users", &roles);
    // One long plain scalar, one long quoted scalar with escapes.
    time(
        "long_plain",
        &format!(
            "kind: role\nname: {}\n",
            "a ".repeat(MAX_FILE_BYTES / 2 - 20)
        ),
    );
    time(
        "long_quoted",
        &format!(
            "kind: role\nname: \"{}\"\n",
            "\\t".repeat(MAX_FILE_BYTES / 2 - 20)
        ),
    );
    // Many comments and blank lines.
    time("comments", &"# c\n\n".repeat(MAX_FILE_BYTES / 5));
    // A wide flow map.
    let mut flow = String::from("kind: role\nallow: {");
    let mut j = 0;
    while flow.len() < MAX_FILE_BYTES - 20 {
        flow.push_str(&format!("k{j}: 1, "));
        j += 1;
    }
    flow.push_str("}\n");
    time("wide_flow_map", &flow);
}
