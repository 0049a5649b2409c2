//! Tampering with a log in every way the issue names, through the real
//! `signet` binary: each must fail with exit status 1, naming the entry
//! index or the tile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::http::{serve, Mode};
use common::*;
use signet_log::entry::{Entry, EntryKind};
use signet_log::tiles::EntryBundle;

const N: u64 = 1000; // three full bundles and a partial one of 232

fn setup() -> (Scratch, TestKey, TestLog) {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let log = TestLog::new(mixed_entries(N));
    log.write(&s.log_dir(), &key);
    s.vkey(&key);
    (s, key, log)
}

fn verify(s: &Scratch) -> Run {
    let dir = s.log_dir();
    let vkey = s.path("log.vkey");
    s.signet(&[
        "audit",
        "verify",
        "--log",
        dir.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
    ])
}

fn bundle_path(dir: &Path, rel: &str) -> std::path::PathBuf {
    dir.join(rel)
}

/// Reads, edits and rewrites an entry bundle file.
fn edit_bundle(dir: &Path, rel: &str, width: u16, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let p = bundle_path(dir, rel);
    let bytes = std::fs::read(&p).unwrap();
    let mut entries = EntryBundle::parse(&bytes, width)
        .unwrap()
        .entries()
        .to_vec();
    edit(&mut entries);
    std::fs::write(&p, EntryBundle::new(entries).unwrap().to_bytes()).unwrap();
}

#[test]
fn changed_byte_in_an_entry() {
    let (s, _, _) = setup();
    // Entry 300 is entry 44 of bundle 1: change one digit of its time.
    edit_bundle(&s.log_dir(), "tile/entries/001", 256, |e| {
        let text = String::from_utf8(e[44].clone()).unwrap();
        let at = text.find("\"time\":").unwrap() + 8;
        let mut b = e[44].clone();
        b[at] = if b[at] == b'9' { b'8' } else { b[at] + 1 };
        e[44] = b;
    });
    verify(&s).fails(1, "entry 300: its hash differs from tile/0/001");
}

#[test]
fn changed_byte_that_breaks_the_json() {
    let (s, _, _) = setup();
    edit_bundle(&s.log_dir(), "tile/entries/000", 256, |e| {
        e[7][0] = b'[';
    });
    verify(&s).fails(1, "entry 7:");
}

#[test]
fn deleted_entry() {
    let (s, _, log) = setup();
    let dir = s.log_dir();
    // Removed from its bundle: the bundle is one short.
    edit_bundle(&dir, "tile/entries/000", 256, |e| {
        e.remove(100);
    });
    verify(&s).fails(
        1,
        "tile/entries/000: entry bundle has 255 entries, 256 expected",
    );

    // Removed and the rest shifted down, bundles rewritten: entry 100 differs.
    let mut shifted = log.entries.clone();
    shifted.remove(100);
    shifted.push(log.entries[0].clone());
    for (i, chunk) in shifted.chunks(256).enumerate() {
        let rel = if chunk.len() == 256 {
            format!("tile/entries/{i:03}")
        } else {
            format!("tile/entries/{i:03}.p/{}", chunk.len())
        };
        std::fs::write(
            dir.join(rel),
            EntryBundle::new(chunk.to_vec()).unwrap().to_bytes(),
        )
        .unwrap();
    }
    verify(&s).fails(1, "entry 100: its hash differs from tile/0/000");
}

#[test]
fn swapped_entries() {
    let (s, _, _) = setup();
    edit_bundle(&s.log_dir(), "tile/entries/002", 256, |e| e.swap(10, 20));
    verify(&s).fails(1, "entry 522: its hash differs from tile/0/002");
}

#[test]
fn swapped_bundles() {
    let (s, _, _) = setup();
    let dir = s.log_dir();
    let a = std::fs::read(dir.join("tile/entries/000")).unwrap();
    let b = std::fs::read(dir.join("tile/entries/001")).unwrap();
    std::fs::write(dir.join("tile/entries/000"), b).unwrap();
    std::fs::write(dir.join("tile/entries/001"), a).unwrap();
    verify(&s).fails(1, "entry 0: its hash differs from tile/0/000");
}

#[test]
fn truncated_log_missing_files() {
    let (s, _, _) = setup();
    std::fs::remove_file(s.log_dir().join("tile/entries/003.p/232")).unwrap();
    verify(&s).fails(
        1,
        "tile/entries/003.p/232: missing, but the checkpoint (size 1000) commits to it",
    );
}

#[test]
fn truncated_bundle_file() {
    let (s, _, _) = setup();
    let p = s.log_dir().join("tile/entries/002");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
    verify(&s).fails(1, "tile/entries/002: entry bundle is truncated");
}

#[test]
fn truncated_hash_tile() {
    let (s, _, _) = setup();
    let p = s.log_dir().join("tile/0/001");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
    verify(&s).fails(1, "tile/0/001: hash tile is 8191 bytes, 8192 expected");
}

#[test]
fn truncated_and_resigned_is_a_rollback() {
    // The operator, holding the real key, truncates the log and signs a
    // smaller checkpoint. The auditor remembers the larger one.
    let (s, key, log) = setup();
    verify(&s).ok();
    let short = TestLog::new(log.entries[..900].to_vec());
    let dir = s.log_dir();
    std::fs::remove_dir_all(&dir).unwrap();
    short.write(&s.log_dir(), &key);
    verify(&s).fails(1, "older than the remembered checkpoint (size 1000)");
    // `checkpoint` sees it too.
    let vkey = s.path("log.vkey");
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        dir.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
    ])
    .fails(1, "rolled back");
}

/// A log with the same first `N` entries except entry 500, validly signed.
fn forked(log: &TestLog, size: u64) -> TestLog {
    let mut entries = log.entries.clone();
    entries.extend(mixed_entries(size)[N as usize..].iter().cloned());
    entries[500] = admin_entry(T0 + 5, EntryKind::Lock, "mallory")
        .to_canonical_bytes()
        .unwrap();
    entries.truncate(size as usize);
    TestLog::new(entries)
}

#[test]
fn forked_log_same_size() {
    let (s, key, log) = setup();
    verify(&s).ok();
    let dir = s.log_dir();
    std::fs::remove_dir_all(&dir).unwrap();
    forked(&log, N).write(&s.log_dir(), &key);
    verify(&s).fails(
        1,
        "not consistent with the remembered checkpoint: its first 1000 entries have another root",
    );
    let vkey = s.path("log.vkey");
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        dir.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
    ])
    .fails(1, "not consistent with the remembered checkpoint");
}

#[test]
fn forked_log_grown_served_over_http() {
    let (s, key, log) = setup();
    verify(&s).ok();
    let fork_dir = s.path("fork/x").parent().unwrap().to_path_buf();
    forked(&log, 1300).write(&fork_dir, &key);
    let url = serve(&fork_dir, Mode::Honest);
    let vkey = s.path("log.vkey");
    s.signet(&[
        "audit",
        "verify",
        "--log",
        &url,
        "--key",
        vkey.to_str().unwrap(),
    ])
    .fails(
        1,
        "not consistent with the remembered checkpoint: its first 1000 entries",
    );
    s.signet(&[
        "audit",
        "checkpoint",
        "--log",
        &url,
        "--key",
        vkey.to_str().unwrap(),
    ])
    .fails(1, "not consistent with the remembered checkpoint");
    // An honest extension of the remembered log still verifies.
    let mut grown = log.entries.clone();
    grown.extend(mixed_entries(1300)[N as usize..].iter().cloned());
    let good_dir = s.path("good/x").parent().unwrap().to_path_buf();
    TestLog::new(grown).write(&good_dir, &key);
    s.signet(&[
        "audit",
        "verify",
        "--log",
        good_dir.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
    ])
    .ok();
}

#[test]
fn entries_and_tiles_rewritten_together() {
    // Entry and every tile recomputed, the old checkpoint kept: only the root
    // can tell, and it does.
    let (s, key, log) = setup();
    let dir = s.log_dir();
    let cp = std::fs::read(dir.join("checkpoint")).unwrap();
    forked(&log, N).write(&dir, &key);
    std::fs::write(dir.join("checkpoint"), cp).unwrap();
    verify(&s).fails(
        1,
        "the tree of the 1000 entries does not have the checkpoint's root hash",
    );
}

#[test]
fn upper_hash_tile_changed() {
    let (s, _, _) = setup();
    let p = s.log_dir().join("tile/1/000.p/3");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    verify(&s).fails(
        1,
        "tile/1/000.p/3: differs from the tree recomputed from the entries",
    );
}

#[test]
fn wrong_key() {
    let (s, _, _) = setup();
    let other = TestKey::new(ORIGIN, 2);
    let vkey = s.write("other.vkey", other.vkey_line());
    let dir = s.log_dir();
    s.signet(&[
        "audit",
        "verify",
        "--log",
        dir.to_str().unwrap(),
        "--key",
        vkey.to_str().unwrap(),
    ])
    .fails(1, "not signed by the pinned key");
    let pem = s.write("other.pem", other.pem());
    s.signet(&[
        "audit",
        "verify",
        "--log",
        dir.to_str().unwrap(),
        "--key",
        pem.to_str().unwrap(),
        "--origin",
        ORIGIN,
    ])
    .fails(1, "not signed by the pinned key");
}

#[test]
fn checkpoint_signed_by_another_key() {
    let (s, _, log) = setup();
    let attacker = TestKey::new(ORIGIN, 66);
    std::fs::write(
        s.log_dir().join("checkpoint"),
        log.checkpoint(N, &[&attacker]),
    )
    .unwrap();
    verify(&s).fails(1, "not signed by the pinned key");
}

#[test]
fn checkpoint_body_changed_after_signing() {
    let (s, key, log) = setup();
    let text = log.checkpoint(N, &[&key]).replace("\n1000\n", "\n999\n");
    std::fs::write(s.log_dir().join("checkpoint"), text).unwrap();
    verify(&s).fails(1, "invalid signature");
}

#[test]
fn repeated_serials() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let mut entries = mixed_entries(20);
    // Entry 20 reuses the serial of entry 2 (1002), with another certificate.
    entries.push(
        ssh_entry(T0, "user9", &["root"], 1002, fake_ssh_cert(99))
            .to_canonical_bytes()
            .unwrap(),
    );
    TestLog::new(entries.clone()).write(&s.log_dir(), &key);
    s.vkey(&key);
    verify(&s).fails(
        1,
        "entry 20: OpenSSH serial 1002 was already used by entry 2",
    );

    // The same number as an X.509 serial is a different space: fine.
    let s = Scratch::new();
    let mut entries = mixed_entries(20);
    entries.push(
        x509_entry(T0, "user1", "1002", vec![0x30, 1, 2, 3])
            .to_canonical_bytes()
            .unwrap(),
    );
    TestLog::new(entries).write(&s.log_dir(), &key);
    s.vkey(&key);
    verify(&s).ok();
}

#[test]
fn non_canonical_and_unknown_version_entries() {
    let key = TestKey::new(ORIGIN, 1);
    let good = admin_entry(T0, EntryKind::Lock, "alice")
        .to_canonical_bytes()
        .unwrap();
    let text = String::from_utf8(good).unwrap();
    for (bad, needle) in [
        (
            text.replace("{\"actor\"", "{ \"actor\""),
            "entry 5 (in tile/entries/000.p/10): entry is not canonically encoded",
        ),
        (
            text.replace("\"version\":1", "\"version\":2"),
            "entry 5 (in tile/entries/000.p/10): unsupported entry version",
        ),
        (
            text.replace("}", ",\"extra\":1}"),
            "entry 5 (in tile/entries/000.p/10): invalid entry",
        ),
    ] {
        let s = Scratch::new();
        let mut entries = mixed_entries(10);
        entries[5] = bad.into_bytes();
        TestLog::new(entries).write(&s.log_dir(), &key);
        s.vkey(&key);
        verify(&s).fails(1, needle);
    }
}

#[test]
fn certificate_hash_mismatch_in_entry() {
    let key = TestKey::new(ORIGIN, 1);
    let s = Scratch::new();
    let mut entries = mixed_entries(10);
    // Re-encode entry 0 with certificate bytes that do not match its sha256.
    let text = String::from_utf8(entries[0].clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bytes = v["certificate"]["bytes"].as_str().unwrap().to_owned();
    let other = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(fake_ssh_cert(12345))
    };
    entries[0] = text.replace(&bytes, &other).into_bytes();
    TestLog::new(entries).write(&s.log_dir(), &key);
    s.vkey(&key);
    verify(&s).fails(
        1,
        "entry 0 (in tile/entries/000.p/10): bad field certificate.sha256",
    );
}

#[test]
fn any_flipped_bit_in_any_file_fails() {
    // Every file of a small log is used by verification, so a flipped bit
    // anywhere must fail it — with status 1, never 0 or a panic.
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let log = TestLog::new(mixed_entries(600));
    let dir = s.log_dir();
    log.write(&dir, &key);
    s.vkey(&key);
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 8, "{files:?}");
    let mut state = 0x5eed_u64;
    for file in &files {
        let original = std::fs::read(file).unwrap();
        for _ in 0..6 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (state >> 33) as usize % original.len();
            let bit = (state >> 29) as u8 % 8;
            let mut bytes = original.clone();
            bytes[at] ^= 1 << bit;
            std::fs::write(file, &bytes).unwrap();
            let r = verify(&s);
            assert_eq!(r.code, 1, "{} byte {at} bit {bit}: {r:?}", file.display());
            assert!(!r.stderr.contains("panicked"), "{r:?}");
        }
        std::fs::write(file, &original).unwrap();
    }
    verify(&s).ok();
}

#[test]
fn a_validly_signed_entry_that_lies_about_its_certificate() {
    // A CA that logs "principals: deploy" but issued a certificate for root
    // is caught, although the log itself is consistent and signed.
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let mut entries = mixed_entries(10);
    let mut lying = ssh_entry(T0, "mallory", &["root"], 7777, fake_ssh_cert(7));
    lying.principals = vec!["deploy".into()];
    entries.push(lying.to_canonical_bytes().unwrap());
    TestLog::new(entries).write(&s.log_dir(), &key);
    s.vkey(&key);
    verify(&s).fails(1, "the certificate does not match the entry: principals");
}

#[test]
fn a_validly_signed_entry_that_lies_about_who_its_certificate_is_for() {
    // `signet audit search --user alice` must find every certificate that
    // names alice: an entry that files mallory's certificate under alice
    // (or a certificate naming nobody under anyone) is caught.
    let key = TestKey::new(ORIGIN, 1);
    let mallorys_ssh = make_ssh_cert("mallory", 7777, &["root"], 1);
    let mallorys_x509 = make_x509_cert("77aa", "mallory");
    let cases: Vec<(Entry, &str)> = vec![
        (
            ssh_entry(T0, "alice", &["root"], 7777, mallorys_ssh.clone()),
            "the certificate does not match the entry: subject (certificate key id)",
        ),
        (
            x509_entry(T0, "alice", "77aa", mallorys_x509.clone()),
            "the certificate does not match the entry: subject (certificate SAN URI)",
        ),
        (
            {
                let mut e = ssh_entry(T0, "mallory", &["root"], 7777, mallorys_ssh);
                e.subject = None;
                e
            },
            "the certificate does not match the entry: subject (missing",
        ),
        (
            {
                let mut e = x509_entry(T0, "mallory", "77aa", mallorys_x509);
                e.kind = EntryKind::AdminSign;
                e.subject = Some("CN=mallory".into());
                e
            },
            "the certificate does not match the entry: subject (certificate SAN URI)",
        ),
    ];
    for (lying, message) in cases {
        let s = Scratch::new();
        let mut entries = mixed_entries(10);
        entries.push(lying.to_canonical_bytes().unwrap());
        TestLog::new(entries).write(&s.log_dir(), &key);
        s.vkey(&key);
        verify(&s).fails(1, message);
    }
}
