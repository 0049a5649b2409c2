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
    command_on(&ca.hsm.conf(), config)
}

/// `signet-ca --config CONFIG` on the token(s) of this SoftHSM2 configuration.
fn command_on(softhsm_conf: &std::path::Path, config: &PathBuf) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_signet-ca"));
    cmd.env("SOFTHSM2_CONF", softhsm_conf)
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
    issue_on(ca, &ca.hsm.conf(), config, user)
}

fn issue_on(
    ca: &Ca,
    softhsm_conf: &std::path::Path,
    config: &PathBuf,
    user: &str,
) -> serde_json::Value {
    let out = command_on(softhsm_conf, config)
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

    // The operator's backup of the database, taken now.
    let backup = pg.dump(&db, true);
    // Issuance continues on the database, after the copied entries.
    let issued = issue(&ca, &config, "dave");
    let copied: u64 = pg
        .psql(&db, "SELECT count(*) FROM log_entries")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(issued["log_index"].as_u64(), Some(copied - 1), "{issued}");

    // The old backup restored over the database: behind the high-water
    // mark on the token, refused; the newest state put back, accepted.
    let newest = pg.dump(&db, true);
    let restore = |dump: &str| {
        pg.psql(
            &db,
            "TRUNCATE log_entries, log_nodes, log_serials, log_checkpoints, log_head, signet_schema",
        );
        pg.psql_script(&db, dump);
    };
    restore(&backup);
    let out = run(&ca, &config, &["log", "check"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("behind the high-water mark"), "{stderr}");
    restore(&newest);
    assert!(run(&ca, &config, &["log", "check"]).status.success());

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

/// A CA on its token with its log in a fresh database of `pg` (made by
/// `init`, as a new multi-replica CA is).
fn ca_on_postgres(label: &str, pg: &mut Postgres) -> (Ca, PathBuf, String) {
    let ca = Ca::new(label, ["ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ed25519"]);
    let db = pg.create_database();
    let text = std::fs::read_to_string(&ca.config).unwrap();
    let config = ca.write(
        "signet-ca-postgres.toml",
        &format!(
            "{text}\n[store]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\n",
            pg.url(&db),
            pg.password_file().display()
        ),
    );
    let out = run(&ca, &config, &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (ca, config, db)
}

#[test]
fn postgres_replicas_issuing_at_once_and_one_killed_leave_one_gap_free_log() {
    let mut pg = Postgres::start();
    let (ca, config, db) = ca_on_postgres("pg-replicas", &mut pg);
    let before: u64 = pg
        .psql(&db, "SELECT count(*) FROM log_entries")
        .trim()
        .parse()
        .unwrap();
    // The client key, made once.
    sign_args(&ca, "warm-up");
    // Two streams of `signet-ca sign` processes, each stream a replica host
    // with its own copy of the token (same keys, its own high-water mark)
    // on the same database, and a third whose processes are killed
    // (SIGKILL) at arbitrary points.
    let tokens: Vec<PathBuf> = (0..3)
        .map(|r| ca.token_copy(&format!("replica-{r}")))
        .collect();
    let issued: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let streams: Vec<_> = (0..2)
            .map(|stream| {
                let (ca, config, token) = (&ca, &config, &tokens[stream]);
                scope.spawn(move || {
                    (0..6)
                        .map(|i| issue_on(ca, token, config, &format!("user{stream}-{i}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let killer = scope.spawn(|| {
            let mut received = Vec::new();
            for i in 0..6u64 {
                let mut child = command_on(&tokens[2], &config)
                    .args(sign_args(&ca, &format!("killed-{i}")))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                std::thread::sleep(std::time::Duration::from_millis(40 * i));
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                // A process that finished before the kill handed its
                // certificate out: it must be in the log like the others.
                if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                    received.push(doc);
                }
            }
            received
        });
        let mut all: Vec<serde_json::Value> = streams
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect();
        all.extend(killer.join().unwrap());
        all
    });
    // Every certificate a client received is in the log at its index, with
    // its serial; no index or serial twice.
    let mut indices: Vec<u64> = issued
        .iter()
        .map(|doc| doc["log_index"].as_u64().unwrap())
        .collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), issued.len(), "an index handed out twice");
    for doc in &issued {
        let serial = doc["serial"].as_str().unwrap();
        let index = doc["log_index"].as_u64().unwrap();
        let found = pg.psql(
            &db,
            &format!("SELECT idx FROM log_serials WHERE key = 'ssh:{serial}'"),
        );
        assert_eq!(found.trim(), index.to_string(), "serial {serial}");
    }
    let (count, max, serials, distinct): (u64, u64, u64, u64) = {
        let row = pg.psql(
            &db,
            "SELECT count(*), max(idx) + 1, (SELECT count(*) FROM log_serials), \
             (SELECT count(DISTINCT key) FROM log_serials) FROM log_entries",
        );
        let v: Vec<u64> = row.trim().split('|').map(|x| x.parse().unwrap()).collect();
        (v[0], v[1], v[2], v[3])
    };
    assert_eq!(count, max, "a gap in the log");
    assert_eq!(serials, distinct);
    assert!(count >= before + 12);
    // The whole log verifies from scratch, checkpoints and mark included,
    // and the surviving replicas keep issuing after the kills.
    let check = String::from_utf8(run(&ca, &config, &["log", "check"]).stdout).unwrap();
    assert!(check.starts_with("OK:"), "{check}");
    let after = issue(&ca, &config, "after");
    assert!(after["log_index"].as_u64().unwrap() >= count);
    // Both kinds of replica signed: one checkpoint per size.
    let sizes = pg.psql(
        &db,
        "SELECT count(*) = count(DISTINCT size) FROM log_checkpoints",
    );
    assert_eq!(sizes.trim(), "t");
}
