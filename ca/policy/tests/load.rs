//! Loading roles from files and directories: the example directory, sorting,
//! hidden entries, and the paths that must be refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use signet_policy::{HardwareKey, Policy, PolicyError, MAX_FILE_BYTES};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/roles")
}

const ROLE_A: &str = "kind: role\nname: a\nallow: { logins: [root] }\noptions: { max_session_ttl: 1h, hardware_key: none, session_mfa: false }\n";
const ROLE_B: &str = "kind: role\nname: b\nallow: { logins: [ubuntu] }\noptions: { max_session_ttl: 2h, hardware_key: touch, session_mfa: true }\n";

#[test]
fn the_example_directory_loads() {
    let p = Policy::load(&[example_dir()]).unwrap();
    let roles: Vec<&str> = p.roles().map(|r| r.name.as_str()).collect();
    assert_eq!(roles, ["auditor", "developer", "prod-sre"]);
    let users: Vec<&str> = p.users().map(|u| u.name.as_str()).collect();
    assert_eq!(users, ["alice", "bob", "carol"]);

    let sre = p.role("prod-sre").unwrap();
    assert_eq!(sre.allow.logins, ["root", "ubuntu"]);
    assert_eq!(sre.allow.node_labels["env"], ["prod"]);
    assert_eq!(sre.allow.node_labels["team"], ["sre"]);
    assert_eq!(sre.options.max_session_ttl, Duration::from_secs(8 * 3600));
    assert_eq!(sre.options.hardware_key, HardwareKey::TouchAndPin);
    assert!(sre.options.session_mfa);
    // Lists are kept sorted, whatever the order in the file.
    assert_eq!(
        p.role("developer").unwrap().allow.logins,
        ["deploy", "ubuntu"]
    );
    assert_eq!(
        p.role("developer").unwrap().allow.node_labels["env"],
        ["dev", "staging"]
    );
    assert_eq!(p.user("alice").unwrap().roles, ["developer", "prod-sre"]);
    let alice: Vec<&str> = p.roles_of("alice").map(|r| r.name.as_str()).collect();
    assert_eq!(alice, ["developer", "prod-sre"]);

    // The JSON listing, by name.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json["roles"]["prod-sre"]["options"]["max_session_ttl"],
        28800
    );
    assert_eq!(
        json["users"]["carol"],
        serde_json::json!({"name": "carol", "roles": ["auditor"]})
    );

    // The same files named one by one give the same policy.
    let files = [
        example_dir().join("users.yaml"),
        example_dir().join("roles.yaml"),
    ];
    assert_eq!(Policy::load(&files).unwrap(), p);
}

#[test]
fn a_directory_of_several_files_loads_with_subdirectories_and_without_hidden_entries() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("10-a.yaml"), ROLE_A).unwrap();
    fs::create_dir(d.join("team")).unwrap();
    fs::write(d.join("team/b.yml"), ROLE_B).unwrap();
    fs::write(
        d.join("users.yaml"),
        "kind: user\nname: alice\nroles: [a, b]\n---\nkind: user\nname: bob\nroles: []\n",
    )
    .unwrap();
    // Neither hidden entries nor other extensions are read: each would fail.
    fs::create_dir(d.join(".git")).unwrap();
    fs::write(d.join(".git/bad.yaml"), "not: [valid").unwrap();
    fs::write(d.join(".swap.yaml"), "not: [valid").unwrap();
    fs::write(d.join("README.md"), "not: [valid").unwrap();
    fs::write(d.join("users.yaml~"), "not: [valid").unwrap();

    let p = Policy::load(&[d.to_owned()]).unwrap();
    assert_eq!(p.roles().count(), 2);
    assert_eq!(p.user("alice").unwrap().roles, ["a", "b"]);
    assert!(p.user("bob").unwrap().roles.is_empty());

    // Errors name the file as found under the directory named.
    fs::write(d.join("team/c.yaml"), "kind: role\nname: c\nfoo: 1\n").unwrap();
    let e = Policy::load(&[d.to_owned()]).unwrap_err();
    let c = d.join("team/c.yaml").display().to_string();
    assert!(
        e.to_string()
            .starts_with(&format!("{c}:3:1: foo: unknown field")),
        "{e}"
    );
}

#[test]
fn files_are_read_in_sorted_order() {
    // The first definition is the one the duplicate error points back to.
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.yaml", "a.yaml", "c.yaml"] {
        fs::write(dir.path().join(name), ROLE_A).unwrap();
    }
    let e = Policy::load(&[dir.path().to_owned()])
        .unwrap_err()
        .to_string();
    let a = dir.path().join("a.yaml").display().to_string();
    let b = dir.path().join("b.yaml").display().to_string();
    assert!(e.starts_with(&format!("{b}:2:7: name: ")), "{e}");
    assert!(e.ends_with(&format!("already defined at {a}:2:7")), "{e}");
}

#[test]
fn loading_nothing_is_refused() {
    assert!(matches!(Policy::load(&[]), Err(PolicyError::NothingNamed)));
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "x").unwrap();
    let e = Policy::load(&[dir.path().to_owned()]).unwrap_err();
    assert!(matches!(e, PolicyError::Unusable { .. }), "{e}");
    assert!(
        e.to_string().ends_with("holds no .yaml or .yml file"),
        "{e}"
    );
}

#[test]
fn an_empty_file_named_explicitly_is_an_empty_policy() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.yaml");
    fs::write(&f, "# nothing yet\n").unwrap();
    assert_eq!(Policy::load(&[f]).unwrap(), Policy::new());
}

#[test]
fn missing_paths_fifos_and_large_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let e = Policy::load(&[missing]).unwrap_err();
    assert!(matches!(e, PolicyError::Read { .. }), "{e}");

    // A FIFO, named or found in a directory, is refused without blocking on it.
    let fifo = dir.path().join("roles.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let e = Policy::load(std::slice::from_ref(&fifo)).unwrap_err();
    assert!(
        e.to_string().ends_with("not a regular file or a directory"),
        "{e}"
    );
    let e = Policy::load(&[dir.path().to_owned()]).unwrap_err();
    assert!(e.to_string().ends_with("not a regular file"), "{e}");
    fs::remove_file(&fifo).unwrap();

    let big = dir.path().join("big.yaml");
    let mut text = String::from(ROLE_A);
    while text.len() <= MAX_FILE_BYTES {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    fs::write(&big, &text).unwrap();
    let e = Policy::load(std::slice::from_ref(&big)).unwrap_err();
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
    // The same text given to parse is refused too.
    let e = Policy::parse("big.yaml", &text).unwrap_err();
    assert!(
        e.to_string().starts_with("big.yaml:1:1: larger than"),
        "{e}"
    );
    // One byte under the limit is fine.
    text.truncate(MAX_FILE_BYTES - 1);
    let cut = text.rfind('\n').unwrap();
    text.truncate(cut + 1);
    fs::write(&big, &text).unwrap();
    assert_eq!(Policy::load(&[big]).unwrap().roles().count(), 1);
}

#[test]
fn text_that_is_not_utf8_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("latin1.yaml");
    let mut bytes = b"kind: role\nname: caf".to_vec();
    bytes.push(0xe9);
    bytes.extend_from_slice(b"\n");
    fs::write(&f, bytes).unwrap();
    let e = Policy::load(std::slice::from_ref(&f)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:2:10: not UTF-8 text", f.display())
    );
}

#[test]
fn a_symlink_loop_ends() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), ROLE_A).unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
    let e = Policy::load(&[dir.path().to_owned()]).unwrap_err();
    assert!(e.to_string().contains("nested deeper than"), "{e}");
}
