//! The CA on PostgreSQL through the real binary: `store migrate`, `store
//! copy` of a populated single-host CA (same root, verified from scratch),
//! issuance on the database afterwards, and the database edited behind the
//! CA's back refused at `log check` and `sign` (exit 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::Ca;
use signet_testkit::Postgres;

/// `signet-ca --config CONFIG` on the CA's token.
fn command(ca: &Ca, config: &PathBuf) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_signet-ca"));
    cmd.env("SOFTHSM2_CONF", ca.hsm.conf())
        .arg("--config")
        .arg(config);
    cmd
}

fn sign_args(ca: &Ca, user: &str) -> Vec<String> {
    let key = ca.path("k");
    if !key.exists() {
        ca.client_key("k", "ed25519");
    }
    let public = format!("{}.pub", key.display());
    [
        "sign",
        "--json",
        "ssh-user",
        "--user",
        user,
        "--principal",
        "root",
        "--ttl",
        "1h",
        "--public-key",
        &public,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn issue(ca: &Ca, config: &PathBuf, user: &str) -> serde_json::Value {
    let out = command(ca, config)
        .args(sign_args(ca, user))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run(ca: &Ca, config: &PathBuf, args: &[&str]) -> std::process::Output {
    command(ca, config).args(args).output().unwrap()
}

#[test]
fn postgres_store_copy_then_issuance_and_tampering_through_the_binary() {
    let ca = Ca::initialised("pg-copy");
    let embedded = ca.config.clone();
    for user in ["alice", "bob", "carol"] {
        issue(&ca, &embedded, user);
    }
    let check = ca.ok(&["log", "check"]);
    let mut pg = Postgres::start();
    let db = pg.create_database();
    let url = pg.url(&db);
    let text = std::fs::read_to_string(&embedded).unwrap();
    let config = ca.write(
        "signet-ca-postgres.toml",
        &format!(
            "{text}\n[store]\nbackend = \"postgres\"\nurl = \"{url}\"\npassword_file = \"{}\"\n",
            pg.password_file().display()
        ),
    );
    let out = run(&ca, &config, &["store", "migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Applied migrations 1"));
    let out = run(&ca, &config, &["store", "migrate"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));

    // The CA's log is not in the database yet, and the high-water mark on
    // the token says there was one: the CA refuses, and says so.
    let out = run(&ca, &config, &["log", "check"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("holds no log, but the log had"), "{stderr}");

    let data_dir = ca.hsm.dir().join("data");
    let out = run(
        &ca,
        &config,
        &[
            "store",
            "copy",
            "--from",
            data_dir.to_str().unwrap(),
            "--to",
            &format!("postgres:{url}"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("the same as the source's"), "{stdout}");
    // The database's log checks as the file's did: same entries, same mark.
    let pg_check = String::from_utf8(run(&ca, &config, &["log", "check"]).stdout).unwrap();
    assert_eq!(pg_check, check);
    // The password never reaches a message or the command line.
    let password = std::fs::read_to_string(pg.password_file()).unwrap();
    assert!(!stdout.contains(password.trim()));

    // Issuance continues on the database, after the copied entries.
    let issued = issue(&ca, &config, "dave");
    let copied: u64 = pg
        .psql(&db, "SELECT count(*) FROM log_entries")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(issued["log_index"].as_u64(), Some(copied - 1), "{issued}");

    // Someone with the database's credentials rewrites an issuance.
    pg.psql(
        &db,
        "UPDATE log_entries SET body = convert_to(replace(convert_from(body, 'UTF8'), 'alice', 'mallo'), 'UTF8') \
         WHERE convert_from(body, 'UTF8') LIKE '%alice%'",
    );
    let sign = sign_args(&ca, "eve");
    let sign: Vec<&str> = sign.iter().map(String::as_str).collect();
    for args in [&["log", "check"][..], &sign[..]] {
        let out = run(&ca, &config, args);
        assert_eq!(
            out.status.code(),
            Some(5),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("integrity"));
    }
}
