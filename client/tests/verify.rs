//! `signet audit checkpoint` and `signet audit verify` on honest logs: tile
//! directories and HTTP, every key form, growth, and `--since`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::http::{serve, Mode};
use common::*;

#[test]
fn checkpoint_prints_origin_size_root() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let log = TestLog::new(mixed_entries(300));
    log.write(&s.log_dir(), &key);
    let vkey = s.vkey(&key);
    let dir = s.log_dir();
    let args = [
        "audit",
        "checkpoint",
        "--log",
        dir.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
    ];
    let r = s.signet(&args).ok();
    assert!(r.stdout.contains(&format!("origin: {ORIGIN}")), "{r:?}");
    assert!(r.stdout.contains("size: 300"), "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("root_hash: {}", STANDARD.encode(log.root(300)))),
        "{r:?}"
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let r = s.signet(&json_args).ok();
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["origin"], ORIGIN);
    assert_eq!(v["size"], 300);
    assert_eq!(v["root_hash"], STANDARD.encode(log.root(300)));
}

#[test]
fn verify_directory_then_remember_then_grow() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let dir = s.log_dir();
    let vkey = s.vkey(&key);
    let all = mixed_entries(1000);
    let first = TestLog::new(all[..600].to_vec());
    first.write(&dir, &key);
    let args = [
        "audit",
        "verify",
        "--log",
        dir.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
    ];
    let r = s.signet(&args).ok();
    assert!(
        r.stdout
            .contains("verified ca.example.com/signet-log: 600 entries"),
        "{r:?}"
    );
    assert!(r.stdout.contains("first verification"), "{r:?}");
    let files = s.state_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let remembered = &files[0];
    let name = remembered.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("ca.example.com_signet-log-"), "{name}");
    assert_eq!(
        std::fs::read_to_string(remembered).unwrap(),
        first.checkpoint(600, &[&key])
    );

    // The log grows (keeping the partial tiles of size 600, as the CA does).
    let grown = TestLog::new(all);
    grown.write_sizes(&dir, &key, &[600]);
    let r = s.signet(&args).ok();
    assert!(r.stdout.contains("1000 entries"), "{r:?}");
    assert!(
        r.stdout
            .contains("extends the remembered checkpoint (size 600)"),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(remembered).unwrap(),
        grown.checkpoint(1000, &[&key])
    );

    // `checkpoint` checks consistency with the remembered one from tiles alone.
    let r = s
        .signet(&[
            "audit",
            "checkpoint",
            "--log",
            dir.to_str().unwrap(),
            "--key",
            vkey.to_str().unwrap(),
        ])
        .ok();
    assert!(
        r.stdout
            .contains("consistent with the remembered checkpoint (size 1000)"),
        "{r:?}"
    );
}

#[test]
fn verify_since_a_saved_checkpoint() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let dir = s.log_dir();
    let vkey = s.vkey(&key);
    let log = TestLog::new(mixed_entries(777));
    log.write(&dir, &key);
    let since = s.write("old.checkpoint", log.checkpoint(513, &[&key]));
    let r = s
        .signet(&[
            "audit",
            "verify",
            "--log",
            dir.to_str().unwrap(),
            "--key",
            vkey.to_str().unwrap(),
            "--since",
            since.to_str().unwrap(),
            "--json",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["size"], 777);
    assert_eq!(v["consistent_with"][0]["which"], "--since");
    assert_eq!(v["consistent_with"][0]["size"], 513);
    assert_eq!(v["kinds"]["ssh-user-cert"], 467);
}

#[test]
fn verify_over_http() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let dir = s.log_dir();
    let vkey = s.vkey(&key);
    TestLog::new(mixed_entries(2000)).write(&dir, &key);
    let url = serve(&dir, Mode::Honest);
    let r = s
        .signet(&[
            "audit",
            "verify",
            "--log",
            &url,
            "--key",
            vkey.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stdout.contains("2000 entries"), "{r:?}");
    // Without the trailing slash too.
    let r = s
        .signet(&[
            "audit",
            "checkpoint",
            "--log",
            url.trim_end_matches('/'),
            "--key",
            vkey.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stdout.contains("size: 2000"), "{r:?}");
}

#[test]
fn partial_tiles_gone_are_read_from_full_tiles() {
    // A mirror that keeps only full tiles once they exist: the verifier reads
    // the partial tile of an older checkpoint as a prefix of the full one.
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let dir = s.log_dir();
    let vkey = s.vkey(&key);
    let log = TestLog::new(mixed_entries(600));
    log.write_sizes(&dir, &key, &[300]);
    // Serve the older checkpoint (size 300), whose level-0 partial tile and
    // partial bundle are gone now that the full ones exist.
    std::fs::write(dir.join("checkpoint"), log.checkpoint(300, &[&key])).unwrap();
    std::fs::remove_file(dir.join("tile/entries/001.p/44")).unwrap();
    std::fs::remove_file(dir.join("tile/0/001.p/44")).unwrap();
    let r = s
        .signet(&[
            "audit",
            "verify",
            "--log",
            dir.to_str().unwrap(),
            "--key",
            vkey.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stdout.contains("300 entries"), "{r:?}");
}

#[test]
fn pem_keys_ed25519_and_p256() {
    let s = Scratch::new();
    let dir = s.log_dir();
    let ed = TestKey::new(ORIGIN, 1);
    TestLog::new(mixed_entries(40)).write(&dir, &ed);
    let pem = s.write("ed.pem", ed.pem());
    let d = dir.to_str().unwrap();
    s.signet(&[
        "audit",
        "verify",
        "--log",
        d,
        "--key",
        pem.to_str().unwrap(),
        "--origin",
        ORIGIN,
    ])
    .ok();
    // Without --origin, the checkpoint's origin names the key.
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        d,
        "--key",
        pem.to_str().unwrap(),
    ])
    .ok();
    // Pinned to another origin: refused.
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        d,
        "--key",
        pem.to_str().unwrap(),
        "--origin",
        "other.example/signet-log",
    ])
    .fails(1, "not signed by the pinned key other.example/signet-log+");
    let vkey = s.vkey(&ed);
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        d,
        "--key",
        vkey.to_str().unwrap(),
        "--origin",
        "other.example/signet-log",
    ])
    .fails(1, "checkpoint is for origin");

    let s = Scratch::new();
    let dir = s.log_dir();
    let p = TestP256Key::new(ORIGIN, 9);
    TestLog::new(mixed_entries(40)).write(&dir, &p);
    let pem = s.write("p256.pem", p.pem());
    let d = dir.to_str().unwrap();
    let r = s
        .signet(&[
            "audit",
            "verify",
            "--log",
            d,
            "--key",
            pem.to_str().unwrap(),
            "--origin",
            ORIGIN,
        ])
        .ok();
    assert!(r.stdout.contains("40 entries"), "{r:?}");
    let vkey = s.write("p256.vkey", p.vkey.to_string());
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        d,
        "--key",
        vkey.to_str().unwrap(),
    ])
    .ok();
}

#[test]
fn empty_and_tiny_logs() {
    for n in [0u64, 1, 255, 256, 257] {
        let s = Scratch::new();
        let key = TestKey::new(ORIGIN, 1);
        let dir = s.log_dir();
        let vkey = s.vkey(&key);
        TestLog::new(mixed_entries(n)).write(&dir, &key);
        let r = s
            .signet(&[
                "audit",
                "verify",
                "--log",
                dir.to_str().unwrap(),
                "--key",
                vkey.to_str().unwrap(),
            ])
            .ok();
        assert!(r.stdout.contains(&format!(": {n} entries")), "{r:?}");
    }
}

#[test]
fn help_teaches() {
    let s = Scratch::new();
    let r = s.signet(&["audit", "--help"]).ok();
    for needle in [
        "Exit status",
        "--origin",
        "checkpoint",
        "XDG_STATE_HOME",
        "signet-ca export log-key",
    ] {
        assert!(r.stdout.contains(needle), "{needle}: {r:?}");
    }
    let r = s.signet(&["audit", "verify", "--help"]).ok();
    assert!(r.stdout.contains("--since"), "{r:?}");
    s.signet(&["audit", "verify"]).fails(2, "--log");
}

#[test]
fn unwritable_state_is_a_warning_not_a_failure() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let dir = s.log_dir();
    let vkey = s.vkey(&key);
    TestLog::new(mixed_entries(30)).write(&dir, &key);
    // The state directory's place is taken by a file.
    std::fs::write(s.state(), "not a directory").unwrap();
    let r = s
        .signet(&[
            "audit",
            "verify",
            "--log",
            dir.to_str().unwrap(),
            "--key",
            vkey.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stdout.contains("30 entries"), "{r:?}");
    assert!(r.stderr.contains("warning: could not write"), "{r:?}");
}

#[test]
fn unpinned_pem_origin_is_pointed_out() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let dir = s.log_dir();
    TestLog::new(mixed_entries(3)).write(&dir, &key);
    let pem = s.write("k.pem", key.pem());
    let r = s
        .signet(&[
            "audit",
            "checkpoint",
            "--log",
            dir.to_str().unwrap(),
            "--key",
            pem.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stderr.contains("pin it with --origin"), "{r:?}");
}
