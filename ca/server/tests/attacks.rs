//! The log's promises under attack, through the real binary: a storage
//! admin who removes the checkpoint to make the CA sign over rewritten
//! entries, or restores an old copy of the store; the recovery that follows
//! (`log restore` from an export, a mirror over HTTP); and a key ceremony
//! interrupted before its keys were logged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::Ca;
use redb::{ReadableDatabase, ReadableTable};

const ENTRIES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("entries");
const NODES: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("nodes");
const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn issue(ca: &Ca, user: &str) -> serde_json::Value {
    let key = ca.path("k");
    if !key.exists() {
        ca.client_key("k", "ed25519");
    }
    let public = format!("{}.pub", key.display());
    ca.sign_json(&[
        "ssh-user",
        "--user",
        user,
        "--principal",
        "root",
        "--ttl",
        "1h",
        "--public-key",
        &public,
    ])
}

fn sign_args(ca: &Ca) -> Vec<String> {
    let key = ca.path("k.pub");
    [
        "sign",
        "ssh-user",
        "--user",
        "mallory",
        "--principal",
        "root",
        "--ttl",
        "1h",
        "--public-key",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([key.display().to_string()])
    .collect()
}

fn run(ca: &Ca, args: &[String]) -> Output {
    ca.command().args(args).output().unwrap()
}

fn stored_checkpoint(store: &Path) -> Option<Vec<u8>> {
    let db = redb::Database::create(store).unwrap();
    let read = db.begin_read().unwrap();
    let meta = read.open_table(META).unwrap();
    let note = meta.get("checkpoint").unwrap();
    note.map(|n| n.value().to_vec())
}

fn store_path(ca: &Ca) -> PathBuf {
    ca.path("data/log.redb")
}

/// The CA refuses `log check`, `sign` and `serve` with exit 5 and a message
/// containing `expected`; and it signed nothing over the store.
fn assert_refused(ca: &Ca, expected: &str) {
    let before = stored_checkpoint(&store_path(ca));
    for args in [
        vec!["log".to_string(), "check".into()],
        sign_args(ca),
        vec!["serve".into()],
    ] {
        let out = run(ca, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: expected {expected:?} in {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed something");
    }
    assert_eq!(
        stored_checkpoint(&store_path(ca)),
        before,
        "a checkpoint was signed over a store that failed verification"
    );
}

#[test]
fn removing_the_checkpoint_never_gets_the_tampered_tree_signed() {
    if common::embedded_store_only("editing the redb file") {
        return;
    }
    let ca = Ca::initialised("attack-no-checkpoint");
    for user in ["a", "b", "c"] {
        issue(&ca, user);
    }
    // The storage admin drops the last issuance (entry and tree hashes) and
    // deletes the checkpoint that would betray it, hoping the CA signs a
    // fresh one over what is left.
    {
        let db = redb::Database::create(store_path(&ca)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut entries = txn.open_table(ENTRIES).unwrap();
            let last = entries.last().unwrap().unwrap().0.value();
            entries.remove(last).unwrap();
            let mut nodes = txn.open_table(NODES).unwrap();
            nodes.remove(u128::from(last)).unwrap();
            txn.open_table(META).unwrap().remove("checkpoint").unwrap();
        }
        txn.commit().unwrap();
    }
    assert_refused(&ca, "no signed checkpoint");
}

#[test]
fn entries_beyond_the_signed_checkpoint_are_refused() {
    if common::embedded_store_only("editing the redb file") {
        return;
    }
    let ca = Ca::initialised("attack-extra-entry");
    issue(&ca, "a");
    // An entry slipped in after the last checkpoint: a copy of a real one.
    {
        let db = redb::Database::create(store_path(&ca)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut entries = txn.open_table(ENTRIES).unwrap();
            let (last, bytes) = {
                let (k, v) = entries.last().unwrap().unwrap();
                (k.value(), v.value().to_vec())
            };
            entries.insert(last + 1, bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    assert_refused(&ca, "covers only 6");
}

#[test]
fn a_restored_old_store_is_refused_and_log_restore_recovers_from_an_export() {
    if common::embedded_store_only("restoring a copy of the data directory") {
        return;
    }
    let ca = Ca::initialised("attack-rollback");
    issue(&ca, "a");
    let backup = ca.path("log.redb.backup");
    std::fs::copy(store_path(&ca), &backup).unwrap();
    let after_backup = [issue(&ca, "b"), issue(&ca, "c")];
    let export = ca.path("export");
    ca.ok(&["log", "export", export.to_str().unwrap()]);
    let old_export = ca.path("old-export");
    // An export of the old store, made by copying the directory as it was.
    {
        let text = std::fs::read_to_string(&ca.config).unwrap();
        let old_data = ca.path("old-data");
        std::fs::create_dir_all(&old_data).unwrap();
        std::fs::copy(&backup, old_data.join("log.redb")).unwrap();
        std::fs::copy(ca.path("data/x509-ca.pem"), old_data.join("x509-ca.pem")).unwrap();
        let config = ca.write(
            "old.toml",
            &text.replace(
                ca.path("data").to_str().unwrap(),
                old_data.to_str().unwrap(),
            ),
        );
        // Even a read-only command on the old copy refuses it.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet-ca"))
            .env("SOFTHSM2_CONF", ca.hsm.conf())
            .args(["--config", config.to_str().unwrap()])
            .args(["log", "export", old_export.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    }

    // The storage admin restores last week's backup.
    std::fs::copy(&backup, store_path(&ca)).unwrap();
    assert_refused(&ca, "behind the high-water mark");

    // Recovery: a copy that is itself behind the mark is refused too…
    let stale = ca.path("stale-export");
    std::fs::create_dir_all(stale.join("tile")).unwrap();
    {
        // Build a stale export by truncating the good one to its first
        // entries is not possible (bundles are signed by the checkpoint),
        // so use the checkpoint of the backup with the good tiles.
        let db = redb::Database::create(&backup).unwrap();
        let read = db.begin_read().unwrap();
        let note = read
            .open_table(META)
            .unwrap()
            .get("checkpoint")
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        std::fs::write(stale.join("checkpoint"), note).unwrap();
        copy_dir(&export.join("tile"), &stale.join("tile"));
    }
    let out = ca.run(&["log", "restore", "--from", stale.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("roll the log back"), "{err}");

    // …a copy whose entries were edited is refused…
    let forged = ca.path("forged-export");
    copy_dir(&export, &forged);
    let bundle = std::fs::read_dir(forged.join("tile/entries"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bundle = if bundle.is_dir() {
        std::fs::read_dir(&bundle)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    } else {
        bundle
    };
    let mut bytes = std::fs::read(&bundle).unwrap();
    let pos = bytes.iter().rposition(|&b| b == b'c').unwrap();
    bytes[pos] = b'd';
    std::fs::write(&bundle, bytes).unwrap();
    let out = ca.run(&["log", "restore", "--from", forged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));

    // …and the good export rebuilds the store: every certificate handed out
    // is back, the serials stay used, and issuance resumes after them.
    let out = ca.run(&["log", "restore", "--from", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Restored 8 entries"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr(&out).contains("previous store was moved to"),
        "{}",
        stderr(&out)
    );
    let check = ca.ok(&["log", "check"]);
    assert!(check.starts_with("OK: 8 entries"), "{check}");
    assert!(check.contains("high-water mark (8)"), "{check}");
    let next = issue(&ca, "d");
    assert_eq!(next["log_index"], 8);
    for issued in &after_backup {
        assert_ne!(issued["serial"], next["serial"]);
    }
    let exported = ca.path("export-after");
    ca.ok(&["log", "export", exported.to_str().unwrap()]);
}

#[test]
fn log_restore_over_http_from_a_mirror() {
    if common::embedded_store_only("rebuilding the data directory") {
        return;
    }
    let ca = Ca::initialised("restore-http");
    issue(&ca, "a");
    let backup = ca.path("log.redb.backup");
    std::fs::copy(store_path(&ca), &backup).unwrap();
    issue(&ca, "b");
    // A mirror: the published tiles of the current log, on a plain web
    // server.
    let export = ca.path("mirror-export");
    ca.ok(&["log", "export", export.to_str().unwrap()]);
    let daemon = common::static_mirror(&export);

    std::fs::copy(&backup, store_path(&ca)).unwrap();
    assert_refused(&ca, "behind the high-water mark");
    let url = format!("http://127.0.0.1:{}/", daemon.port);
    let out = ca.run(&["log", "restore", "--from", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ca.ok(&["log", "check"]).starts_with("OK: 7 entries"));
    drop(daemon);
}

#[test]
fn an_interrupted_ceremony_is_completed_and_logged_by_the_next_init() {
    let ca = Ca::new(
        "ceremony-resume",
        ["ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ed25519"],
    );
    // What a crash between key generation and the log append leaves: the
    // keys on the token, nothing in the log.
    {
        let token = signet_hsm::Token::open(&ca.hsm.token_config(1)).unwrap();
        for (label, algorithm) in [
            ("signet-ssh-user-ca", signet_hsm::KeyAlgorithm::EcdsaP256),
            ("signet-x509-ca", signet_hsm::KeyAlgorithm::EcdsaP256),
        ] {
            token.generate_key(label, algorithm).unwrap();
        }
    }
    let out = ca.ok(&["init"]);
    let lines: Vec<&str> = out.lines().collect();
    let line_of = |role: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(role))
            .unwrap_or_else(|| panic!("{role} not in {out}"))
            .to_string()
    };
    assert!(line_of("ssh-user-ca").contains("logged now"), "{out}");
    assert!(line_of("x509-ca").contains("logged now"), "{out}");
    assert!(
        line_of("ssh-host-ca").contains("generated and logged"),
        "{out}"
    );
    assert!(out.contains("created and logged"), "{out}");

    // Every key and the root are in the log, once.
    let json: serde_json::Value = serde_json::from_str(&ca.ok(&["init", "--json"])).unwrap();
    for key in json["keys"].as_array().unwrap() {
        assert_eq!(key["generated"], false, "{key}");
        assert_eq!(key["logged_now"], false, "{key}");
    }
    assert_eq!(json["root_logged_now"], false);
    let check = ca.ok(&["log", "check"]);
    assert!(check.starts_with("OK: 5 entries"), "{check}");
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_deleted_mark_is_not_a_new_log_and_adopt_mark_is_explicit() {
    if common::embedded_store_only("copying the data directory") {
        return;
    }
    let ca = Ca::new(
        "attack-no-mark",
        ["ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ed25519"],
    );
    // The mark in a file, as for a token without data objects.
    let mark = ca.path("mark/high-water");
    let text = std::fs::read_to_string(&ca.config).unwrap().replace(
        "high_water = \"token\"",
        &format!("high_water = \"{}\"", mark.display()),
    );
    std::fs::write(&ca.config, text).unwrap();
    ca.ok(&["init"]);
    issue(&ca, "a");
    let backup = ca.path("log.redb.backup");
    std::fs::copy(store_path(&ca), &backup).unwrap();
    issue(&ca, "b");
    // The old store back, and the mark that would betray it deleted.
    std::fs::copy(&backup, store_path(&ca)).unwrap();
    std::fs::remove_file(&mark).unwrap();
    assert_refused(&ca, "no high-water mark");

    // The operator decides explicitly; the CA then carries on from there.
    let out = ca.run(&["log", "adopt-mark"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 entries"));
    assert!(mark.exists());
    assert_eq!(issue(&ca, "c")["log_index"], 6);
}

#[test]
fn a_public_data_object_planted_under_the_marks_label_is_ignored() {
    let ca = Ca::initialised("attack-planted-mark");
    issue(&ca, "a");
    // Anyone with a session on the token — no PIN — can write a public data
    // object; one under the mark's label must neither stop the CA nor count.
    let junk = ca.write("junk", "ca.example.com/signet-log\n0\nAAAA\n");
    let out = std::process::Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", ca.hsm.conf())
        .arg("--module")
        .arg(signet_testkit::softhsm_module())
        .args(["--token-label", ca.hsm.label()])
        .args(["--write-object", junk.to_str().unwrap(), "--type", "data"])
        .args(["--label", "signet-log-high-water ca.example.com/signet-log"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let check = ca.ok(&["log", "check"]);
    assert!(check.contains("high-water mark (6)"), "{check}");
    assert_eq!(issue(&ca, "b")["log_index"], 6);
}
