//! Properties: diff and apply agree, change records survive JSON, YAML the
//! policy would be written as parses back to it, and no text panics the parser.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use signet_policy::rules::MAX_TTL;
use signet_policy::{Allow, Change, HardwareKey, Policy, Role, RoleOptions, User};

const ROLE_NAMES: &[&str] = &["dev", "ops", "prod-sre", "audit", "r.1"];
const USER_NAMES: &[&str] = &["alice", "bob", "carol", "dan@example.com"];
const LOGINS: &[&str] = &["root", "ubuntu", "deploy", "_svc", "a.b-c"];
const KEYS: &[&str] = &["env", "team", "k8s.io/zone"];
const VALUES: &[&str] = &["prod", "dev", "*", "eu west", "yes", "null"];

fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(pool, 0..=pool.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn nonempty(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(pool, 1..=pool.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn labels() -> impl Strategy<Value = BTreeMap<String, Vec<String>>> {
    prop_oneof![
        1 => Just([("*".to_string(), vec!["*".to_string()])].into()),
        4 => proptest::collection::btree_map(
            proptest::sample::select(KEYS).prop_map(str::to_owned),
            nonempty(VALUES),
            0..=KEYS.len(),
        ),
    ]
}

fn role(name: &'static str) -> impl Strategy<Value = Role> {
    (
        subset(LOGINS),
        labels(),
        1..=MAX_TTL.as_secs(),
        proptest::sample::select(&HardwareKey::ALL[..]),
        any::<bool>(),
    )
        .prop_map(
            move |(logins, node_labels, ttl, hardware_key, session_mfa)| {
                Role {
                    name: name.to_owned(),
                    allow: Allow {
                        logins,
                        node_labels,
                    },
                    options: RoleOptions {
                        max_session_ttl: Duration::from_secs(ttl),
                        hardware_key,
                        session_mfa,
                    },
                }
                .canonical()
                .unwrap()
            },
        )
}

/// A consistent policy: every user's roles exist.
fn policy() -> impl Strategy<Value = Policy> {
    let roles = ROLE_NAMES
        .iter()
        .map(|n| proptest::option::of(role(n)))
        .collect::<Vec<_>>();
    let users = USER_NAMES
        .iter()
        .map(|n| proptest::option::of(subset(ROLE_NAMES).prop_map(move |r| (n.to_string(), r))))
        .collect::<Vec<_>>();
    (roles, users).prop_map(|(roles, users)| {
        let mut p = Policy::new();
        for role in roles.into_iter().flatten() {
            p.apply(&Change::PutRole(role));
        }
        for (name, wanted) in users.into_iter().flatten() {
            let roles = wanted.into_iter().filter(|r| p.role(r).is_some()).collect();
            let user = User { name, roles }.canonical().unwrap();
            p.apply(&Change::PutUser(user));
        }
        p
    })
}

/// Lines as YAML counts them: `\r\n`, `\r` and `\n` each end one.
fn yaml_lines(text: &str) -> usize {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .lines()
        .count()
}

fn consistent(p: &Policy) -> bool {
    p.users()
        .all(|u| u.roles.iter().all(|r| p.role(r).is_some()))
}

/// How to write a list in YAML.
#[derive(Debug, Clone, Copy)]
enum Style {
    Flow,
    Block,
    Quoted,
}

fn list(items: &[String], style: Style, indent: usize, reverse: bool) -> String {
    let mut items: Vec<&String> = items.iter().collect();
    if reverse {
        items.reverse();
    }
    let quote = |s: &str| format!("\"{s}\"");
    // `*` and some texts must be quoted; the others may be.
    let needs = |s: &str| s == "*" || s == "null" || s.contains(' ');
    match style {
        Style::Block if !items.is_empty() => items
            .iter()
            .map(|s| {
                let s = if needs(s) { quote(s) } else { s.to_string() };
                format!("\n{}- {s}", " ".repeat(indent))
            })
            .collect(),
        Style::Quoted => format!(
            " [{}]",
            items
                .iter()
                .map(|s| quote(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!(
            " [{}]",
            items
                .iter()
                .map(|s| if needs(s) { quote(s) } else { s.to_string() })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn to_yaml(p: &Policy, style: Style, reverse: bool) -> String {
    let mut out = String::from("# generated\n");
    for r in p.roles() {
        out.push_str(&format!("---\nkind: role\nname: {}\nallow:\n", r.name));
        out.push_str(&format!(
            "  logins:{}\n",
            list(&r.allow.logins, style, 4, reverse)
        ));
        if !r.allow.node_labels.is_empty() {
            out.push_str("  node_labels:\n");
            for (k, v) in &r.allow.node_labels {
                out.push_str(&format!("    \"{k}\":{}\n", list(v, style, 6, reverse)));
            }
        }
        out.push_str(&format!(
            "options:\n  max_session_ttl: {}\n  hardware_key: {}\n  session_mfa: {}\n",
            humantime::format_duration(r.options.max_session_ttl),
            r.options.hardware_key,
            r.options.session_mfa
        ));
    }
    for u in p.users() {
        out.push_str(&format!(
            "---\nkind: user\nname: \"{}\"\nroles:{}\n",
            u.name,
            list(&u.roles, style, 2, reverse)
        ));
    }
    out
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![Just(Style::Flow), Just(Style::Block), Just(Style::Quoted)]
}

proptest! {
    #[test]
    fn applying_a_diff_gives_the_target_through_consistent_states(a in policy(), b in policy()) {
        let diff = a.diff(&b);
        prop_assert_eq!(diff.is_empty(), a == b);
        prop_assert_eq!(diff.changes.len(), diff.details.len());
        let mut state = a.clone();
        for change in &diff.changes {
            state.apply(change);
            prop_assert!(consistent(&state), "inconsistent after {:?}", change);
        }
        prop_assert_eq!(&state, &b);
        prop_assert!(b.diff(&state).is_empty());
        // Each name is changed at most once.
        let mut seen = std::collections::BTreeSet::new();
        for c in &diff.changes {
            let key = (c.kind().to_string(), c.name().to_owned());
            prop_assert!(seen.insert(key), "changed twice");
        }
    }

    #[test]
    fn change_records_survive_json(a in policy(), b in policy()) {
        for change in &a.diff(&b).changes {
            let json = serde_json::to_string(change).unwrap();
            let back: Change = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, change);
            prop_assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
    }

    #[test]
    fn yaml_parses_back_to_the_policy(p in policy(), style in style(), reverse in any::<bool>()) {
        let text = to_yaml(&p, style, reverse);
        let parsed = Policy::parse("generated.yaml", &text);
        prop_assert!(parsed.is_ok(), "{}\n{}", parsed.unwrap_err(), text);
        prop_assert_eq!(parsed.unwrap(), p);
    }

    #[test]
    fn any_text_gets_an_answer_with_a_location_inside_it(text in "(?s).{0,300}") {
        if let Err(e) = Policy::parse("any.yaml", &text) {
            let e = e.invalid().expect("parse errors are content errors");
            prop_assert!(e.location.line >= 1 && e.location.column >= 1);
            prop_assert!(e.location.line <= yaml_lines(&text) + 1, "{}", e);
        }
    }

    #[test]
    fn damaged_role_files_get_an_answer(p in policy(), cut in any::<prop::sample::Index>(), junk in "[\\[\\]{}:,&*!#'\"|>\\- \n\ta-z0-9]{0,8}") {
        let text = to_yaml(&p, Style::Block, false);
        let at = cut.index(text.len() + 1);
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let damaged = format!("{}{}{}", &text[..at], junk, &text[at..]);
        if let Err(e) = Policy::parse("damaged.yaml", &damaged) {
            let e = e.invalid().expect("parse errors are content errors");
            prop_assert!(e.location.line >= 1 && e.location.line <= yaml_lines(&damaged) + 1, "{}", e);
        }
    }
}
