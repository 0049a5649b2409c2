//! The remembered checkpoint cannot be got around, through the real
//! `signet` binary: a served log smaller than it fails with or without
//! `--since`; runs at once never move it backwards; and origins that used
//! to share a state file no longer overwrite each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::http::{serve_held, serve_held_missing, Missing};
use common::*;
use signet_log::entry::EntryKind;

const N: u64 = 1000;

fn verify_args<'a>(log: &'a str, vkey: &'a Path) -> Vec<&'a str> {
    vec![
        "audit",
        "verify",
        "--log",
        log,
        "--key",
        vkey.to_str().unwrap(),
    ]
}

/// The rollback message, and nothing that tells the auditor to get around it.
#[track_caller]
fn is_rollback(r: Run, old: u64) {
    let r = r.fails(
        1,
        &format!("older than the remembered checkpoint (size {old})"),
    );
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    assert!(!r.stderr.contains("--since"), "{r:?}");
}

#[test]
fn a_rolled_back_log_fails_with_or_without_since() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let vkey = s.vkey(&key);
    let dir = s.log_dir();
    let d = dir.to_str().unwrap();
    let log = TestLog::new(mixed_entries(N));
    log.write(&dir, &key);
    s.signet(&verify_args(d, &vkey)).ok();
    let remembered = s.remembered();
    assert_eq!(remembered, log.checkpoint(N, &[&key]));

    // The operator, holding the real key, truncates the log to 900 and signs.
    std::fs::remove_dir_all(&dir).unwrap();
    TestLog::new(log.entries[..900].to_vec()).write(&s.log_dir(), &key);
    is_rollback(s.signet(&verify_args(d, &vkey)), N);

    // --since an older checkpoint (which the short log does extend) does
    // not make the remembered one go away.
    let since_500 = s.write("500.checkpoint", log.checkpoint(500, &[&key]));
    let since_900 = s.write("900.checkpoint", log.checkpoint(900, &[&key]));
    for since in [&since_500, &since_900] {
        let mut args = verify_args(d, &vkey);
        args.extend(["--since", since.to_str().unwrap()]);
        is_rollback(s.signet(&args), N);
        args.push("--json");
        is_rollback(s.signet(&args), N);
    }
    // Nor do the commands that verify before they answer.
    for cmd in ["search", "export"] {
        let mut args = verify_args(d, &vkey);
        args[1] = cmd;
        is_rollback(s.signet(&args), N);
    }
    // The remembered checkpoint is still the larger one.
    assert_eq!(s.remembered(), remembered);

    // The log back at full size verifies again, and --since still works.
    std::fs::remove_dir_all(&dir).unwrap();
    log.write(&s.log_dir(), &key);
    let mut args = verify_args(d, &vkey);
    args.extend(["--since", since_500.to_str().unwrap()]);
    let r = s.signet(&args).ok();
    assert!(
        r.stdout
            .contains("extends the --since checkpoint (size 500)"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("extends the remembered checkpoint (size 1000)"),
        "{r:?}"
    );
}

/// Two runs at once: one verifying an old copy of the log (size 600), held
/// after it read the remembered state, and one verifying the live log
/// (size 1000) that finishes in between. The old copy's run must not put
/// its smaller checkpoint over the larger one.
#[test]
fn a_slower_run_on_an_older_copy_does_not_move_it_back() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let vkey = s.vkey(&key);
    let log = TestLog::new(mixed_entries(N));
    let live = s.path("live/x").parent().unwrap().to_path_buf();
    log.write(&live, &key);
    let old = s.path("old/x").parent().unwrap().to_path_buf();
    TestLog::new(log.entries[..600].to_vec()).write(&old, &key);

    let (url, hold) = serve_held(&old);
    let slow = s.spawn(&verify_args(&url, &vkey));
    // The slow run has read the (empty) state and is fetching tiles.
    hold.wait_for_tile_request();
    s.signet(&verify_args(live.to_str().unwrap(), &vkey)).ok();
    assert_eq!(s.remembered(), log.checkpoint(N, &[&key]));
    hold.release();
    is_rollback(slow.wait(), N);
    assert_eq!(s.remembered(), log.checkpoint(N, &[&key]));
}

/// As above, but the old copy's server fails instead of answering 404 for
/// the tiles of the larger tree: a network or server error is not evidence
/// of a rollback. The run fails as a fetch failure (exit 3, the URL and the
/// reason named), never as a rollback, and the remembered checkpoint stays.
/// With 404 (the tiles are not there) it is a rollback, as above.
#[test]
fn a_fetch_failure_against_a_newer_remembered_checkpoint_is_not_a_rollback() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let vkey = s.vkey(&key);
    let log = TestLog::new(mixed_entries(N));
    let live = s.path("live/x").parent().unwrap().to_path_buf();
    log.write(&live, &key);
    let old = s.path("old/x").parent().unwrap().to_path_buf();
    TestLog::new(log.entries[..600].to_vec()).write(&old, &key);

    for (missing, reason) in [
        (Missing::ServerError, "HTTP status 500"),
        (Missing::Drop, ""),
        (Missing::NotFound, "rolled back"),
    ] {
        let s = Scratch::new();
        let (url, hold) = serve_held_missing(&old, missing);
        let slow = s.spawn(&verify_args(&url, &vkey));
        hold.wait_for_tile_request();
        s.signet(&verify_args(live.to_str().unwrap(), &vkey)).ok();
        hold.release();
        let r = slow.wait();
        if missing == Missing::NotFound {
            is_rollback(r, N);
        } else {
            let r = r.fails(3, "could not fetch");
            // The tile named is one of the larger tree, which the old copy
            // lacks: the failure came from proving against the remembered
            // checkpoint, not from verifying the copy itself.
            let at = r.stderr.find(&url).expect("the URL is named");
            let tile = r.stderr[at + url.len()..].split(':').next().unwrap();
            assert!(tile.starts_with("tile/"), "{r:?}");
            assert!(!old.join(tile).exists(), "{tile}: {r:?}");
            assert!(r.stderr.contains(reason), "{r:?}");
            assert!(!r.stderr.contains("rolled back"), "{r:?}");
            assert!(!r.stderr.contains("older than"), "{r:?}");
        }
        assert_eq!(s.remembered(), log.checkpoint(N, &[&key]), "{missing:?}");
    }
}

/// The other order: the held run verifies the live log, and an older copy
/// is remembered in between. The live run proves (from its tiles) that it
/// extends what was remembered meanwhile, and moves it forward.
#[test]
fn a_slower_run_on_the_live_log_moves_it_forward() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let vkey = s.vkey(&key);
    let log = TestLog::new(mixed_entries(N));
    let live = s.path("live/x").parent().unwrap().to_path_buf();
    log.write_sizes(&live, &key, &[600]);
    let old = s.path("old/x").parent().unwrap().to_path_buf();
    TestLog::new(log.entries[..600].to_vec()).write(&old, &key);

    let (url, hold) = serve_held(&live);
    let slow = s.spawn(&verify_args(&url, &vkey));
    hold.wait_for_tile_request();
    s.signet(&verify_args(old.to_str().unwrap(), &vkey)).ok();
    assert_eq!(s.remembered(), log.checkpoint(600, &[&key]));
    hold.release();
    let r = slow.wait().ok();
    assert!(r.stdout.contains("1000 entries"), "{r:?}");
    assert_eq!(s.remembered(), log.checkpoint(N, &[&key]));
}

/// A run on a log that grew past what it verified keeps the larger
/// checkpoint another run remembered meanwhile, once its tiles prove the
/// two consistent; a fork remembered meanwhile fails the run.
#[test]
fn a_newer_checkpoint_remembered_meanwhile_is_kept_and_a_fork_is_caught() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let vkey = s.vkey(&key);
    let log = TestLog::new(mixed_entries(N));
    let live = s.path("live/x").parent().unwrap().to_path_buf();
    log.write(&live, &key);
    // The same log, seen when it had 600 entries: its checkpoint then, and
    // the tiles it serves now (which include size 600's partial tiles).
    let then = s.path("then/x").parent().unwrap().to_path_buf();
    log.write_sizes(&then, &key, &[600]);
    std::fs::write(then.join("checkpoint"), log.checkpoint(600, &[&key])).unwrap();

    let (url, hold) = serve_held(&then);
    let slow = s.spawn(&verify_args(&url, &vkey));
    hold.wait_for_tile_request();
    s.signet(&verify_args(live.to_str().unwrap(), &vkey)).ok();
    hold.release();
    let r = slow.wait().ok();
    assert!(
        r.stderr
            .contains("another run meanwhile remembered a newer checkpoint (size 1000)"),
        "{r:?}"
    );
    assert_eq!(s.remembered(), log.checkpoint(N, &[&key]));

    // A fork: a validly signed log of 600 entries that differs at entry 5
    // is remembered while a run on the real log is held.
    let s = Scratch::new();
    let vkey = s.vkey(&key);
    let mut forked = log.entries[..600].to_vec();
    forked[5] = admin_entry(T0 + 5, EntryKind::Lock, "mallory")
        .to_canonical_bytes()
        .unwrap();
    let fork = s.path("fork/x").parent().unwrap().to_path_buf();
    TestLog::new(forked).write(&fork, &key);
    let (url, hold) = serve_held(&live);
    let slow = s.spawn(&verify_args(&url, &vkey));
    hold.wait_for_tile_request();
    s.signet(&verify_args(fork.to_str().unwrap(), &vkey)).ok();
    hold.release();
    slow.wait()
        .fails(1, "not consistent with the remembered checkpoint");
}

/// Many runs of the same log at once: all succeed, and the state is one
/// whole checkpoint with nothing left behind.
#[test]
fn runs_at_once_leave_one_whole_checkpoint() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let vkey = s.vkey(&key);
    let dir = s.log_dir();
    let log = TestLog::new(mixed_entries(300));
    log.write(&dir, &key);
    let runs: Vec<Running> = (0..6)
        .map(|_| s.spawn(&verify_args(dir.to_str().unwrap(), &vkey)))
        .collect();
    for r in runs {
        r.wait().ok();
    }
    assert_eq!(s.remembered(), log.checkpoint(300, &[&key]));
    let mut names: Vec<String> = std::fs::read_dir(s.state().join("signet/audit"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].ends_with(".checkpoint"), "{names:?}");
    assert!(names[1].ends_with(".checkpoint.lock"), "{names:?}");
}

/// `a.example/log` and `a.example_log` were both remembered in
/// `a.example_log.checkpoint`: verifying one overwrote the other's memory,
/// so the other's rollback went unnoticed.
#[test]
fn origins_that_shared_a_state_file_do_not_any_more() {
    let s = Scratch::new();
    let (origin_a, origin_b) = ("a.example/log", "a.example_log");
    let key_a = TestKey::new(origin_a, 1);
    let key_b = TestKey::new(origin_b, 2);
    let vkey_a = s.write("a.vkey", format!("{}\n", key_a.vkey_line()));
    let vkey_b = s.write("b.vkey", format!("{}\n", key_b.vkey_line()));
    let dir_a = s.path("a/x").parent().unwrap().to_path_buf();
    let dir_b = s.path("b/x").parent().unwrap().to_path_buf();
    let mut log_a = TestLog::new(mixed_entries(N));
    log_a.origin = origin_a.into();
    let mut log_b = TestLog::new(mixed_entries(500));
    log_b.origin = origin_b.into();
    log_a.write(&dir_a, &key_a);
    log_b.write(&dir_b, &key_b);
    let (a, b) = (dir_a.to_str().unwrap(), dir_b.to_str().unwrap());

    s.signet(&verify_args(a, &vkey_a)).ok();
    s.signet(&verify_args(b, &vkey_b)).ok();
    assert_eq!(s.state_files().len(), 2);

    // A is rolled back: caught, because B's run did not overwrite A's memory.
    std::fs::remove_dir_all(&dir_a).unwrap();
    let mut short = TestLog::new(log_a.entries[..900].to_vec());
    short.origin = origin_a.into();
    short.write(&dir_a, &key_a);
    is_rollback(s.signet(&verify_args(a, &vkey_a)), N);
    // B still extends its own.
    let r = s.signet(&verify_args(b, &vkey_b)).ok();
    assert!(
        r.stdout
            .contains("extends the remembered checkpoint (size 500)"),
        "{r:?}"
    );
}

/// A checkpoint remembered under the old shared name still counts for its
/// own origin (so upgrading forgets nothing), and not for the other one.
#[test]
fn old_state_files_are_read_for_their_own_origin_only() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let vkey = s.vkey(&key);
    let dir = s.log_dir();
    let d = dir.to_str().unwrap();
    let log = TestLog::new(mixed_entries(N));
    TestLog::new(log.entries[..900].to_vec()).write(&dir, &key);
    let old_name = s.path("state/signet/audit/ca.example.com_signet-log.checkpoint");
    std::fs::write(&old_name, log.checkpoint(N, &[&key])).unwrap();
    is_rollback(s.signet(&verify_args(d, &vkey)), N);

    // The other origin with the same old name does not see it.
    let other = "ca.example.com_signet-log";
    let other_key = TestKey::new(other, 3);
    let other_vkey = s.write("other.vkey", format!("{}\n", other_key.vkey_line()));
    let mut other_log = TestLog::new(mixed_entries(10));
    other_log.origin = other.into();
    let other_dir = s.path("other/x").parent().unwrap().to_path_buf();
    other_log.write(&other_dir, &other_key);
    let r = s
        .signet(&verify_args(other_dir.to_str().unwrap(), &other_vkey))
        .ok();
    assert!(r.stdout.contains("first verification"), "{r:?}");

    // Once the log verifies again it is remembered under the new name,
    // and the old file is gone.
    log.write(&dir, &key);
    s.signet(&verify_args(d, &vkey)).ok();
    assert!(!old_name.exists());
}

/// A state file replaced while a run is held (by someone, with a
/// checkpoint of another key) fails the run when it comes to remember.
#[test]
fn a_state_file_swapped_during_a_run_fails_it() {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let vkey = s.vkey(&key);
    let log = TestLog::new(mixed_entries(300));
    let dir = s.log_dir();
    log.write(&dir, &key);
    let (url, hold) = serve_held(&dir);
    let slow = s.spawn(&verify_args(&url, &vkey));
    hold.wait_for_tile_request();
    let path = signet::audit::state::StateDir::new(s.state().join("signet/audit")).path_for(ORIGIN);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let other = TestKey::new(ORIGIN, 9);
    std::fs::write(&path, log.checkpoint(300, &[&other])).unwrap();
    hold.release();
    slow.wait().fails(2, "the remembered checkpoint");
    assert_eq!(s.remembered(), log.checkpoint(300, &[&other]));
}
