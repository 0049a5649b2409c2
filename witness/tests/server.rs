//! `signet-witness serve` as a real process on loopback: the tlog-witness v1
//! statuses, forks and rollbacks refused, durability across SIGKILL, and an
//! independent check of a cosignature in Python.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use std::time::Duration;

use common::{post_raw, TestLog, WitnessProcess};
use signet_log::note::VerifierKey;
use signet_log::witness::{append_cosignatures, Witness, WitnessPolicy};
use signet_witness::client::{ClientError, WitnessClient};
use signet_witness::protocol::format_request;

const ORIGIN: &str = "test.example/signet-log";
const T: Duration = Duration::from_secs(10);

fn policy(threshold: usize, vkeys: &[&str]) -> WitnessPolicy {
    WitnessPolicy::new(
        threshold,
        vkeys
            .iter()
            .enumerate()
            .map(|(i, v)| Witness::new(&format!("w{i}"), None, VerifierKey::parse(v).unwrap()))
            .collect(),
    )
    .unwrap()
}

fn submit(
    client: &WitnessClient,
    w: &WitnessProcess,
    log: &TestLog,
    old: u64,
    size: u64,
) -> Result<Vec<String>, ClientError> {
    client.add_checkpoint(
        &w.url(),
        old,
        &log.proof(old, size),
        &log.checkpoint(size),
        T,
    )
}

fn refused_status(r: Result<Vec<String>, ClientError>) -> u16 {
    match r {
        Err(ClientError::Refused { status, .. }) => status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn two_witnesses_cosign_a_first_and_a_consistent_checkpoint() {
    let mut log = TestLog::new(ORIGIN, 1, "main");
    log.grow_to(5);
    let (a, va) = WitnessProcess::start("witness-a.example/w", &[&log]);
    let (b, vb) = WitnessProcess::start("witness-b.example/w", &[&log]);
    assert_ne!(a.port, b.port);
    let client = WitnessClient::new();
    let both = policy(2, &[&va, &vb]);

    // First checkpoint: old 0, no proof.
    let mut note = log.checkpoint(5);
    for w in [&a, &b] {
        let lines = submit(&client, w, &log, 0, 5).unwrap();
        assert_eq!(lines.len(), 1);
        note = append_cosignatures(&note, &lines).unwrap();
    }
    let c = both.verify_checkpoint(note.as_bytes(), &log.vkey).unwrap();
    assert_eq!((c.size(), c.cosignatures().len()), (5, 2));

    // The next one, with a proof from 5 (non-power-of-two) to 13.
    log.grow_to(13);
    let mut note = log.checkpoint(13);
    for w in [&a, &b] {
        let lines = submit(&client, w, &log, 5, 13).unwrap();
        note = append_cosignatures(&note, &lines).unwrap();
    }
    let c = both.verify_checkpoint(note.as_bytes(), &log.vkey).unwrap();
    assert_eq!(c.size(), 13);
    // A cosignature of 5 does not count for 13.
    let stale = append_cosignatures(
        &log.checkpoint(13),
        &submit(&client, &a, &log, 13, 13).unwrap(),
    )
    .unwrap();
    assert!(both.verify_checkpoint(stale.as_bytes(), &log.vkey).is_err());
    // The same size again (same root) is cosigned again.
    assert!(submit(&client, &b, &log, 13, 13).is_ok());

    // From a power of two (16) too.
    log.grow_to(20);
    assert!(submit(&client, &a, &log, 13, 16).is_ok());
    assert!(submit(&client, &a, &log, 16, 20).is_ok());
    assert!(a.log().contains("cosigned"));
    let h = common::healthz(a.port).unwrap();
    assert!(
        h.starts_with("ok\n") && h.contains(&format!("{ORIGIN} 20")),
        "{h}"
    );
}

#[test]
fn stale_old_size_gets_409_with_the_latest_size() {
    let mut log = TestLog::new(ORIGIN, 1, "main");
    log.grow_to(8);
    let (w, _) = WitnessProcess::start("w.example/w", &[&log]);
    let client = WitnessClient::new();
    // Nothing cosigned yet: any old size but 0 conflicts, with size 0.
    assert_eq!(
        submit(&client, &w, &log, 3, 8),
        Err(ClientError::Conflict { witness_size: 0 })
    );
    submit(&client, &w, &log, 0, 6).unwrap();
    for old in [0, 3, 7] {
        assert_eq!(
            submit(&client, &w, &log, old, 8),
            Err(ClientError::Conflict { witness_size: 6 }),
            "old {old}"
        );
    }
    // The wire form: text/x.tlog.size, "6\n".
    let body = format_request(0, &[], &log.checkpoint(8));
    let (status, ct, text) = post_raw(&w.url(), body.as_bytes());
    assert_eq!(
        (status, ct.as_str(), text.as_str()),
        (409, "text/x.tlog.size", "6\n")
    );
    assert!(w.log().contains("add-checkpoint refused") && w.log().contains("status=409"));
}

#[test]
fn forks_are_refused() {
    let mut log = TestLog::new(ORIGIN, 1, "main");
    log.grow_to(6);
    // The same log key signing another history.
    let mut fork = TestLog::new(ORIGIN, 1, "fork");
    fork.grow_to(10);
    let (w, _) = WitnessProcess::start("w.example/w", &[&log]);
    let client = WitnessClient::new();
    submit(&client, &w, &log, 0, 6).unwrap();

    // Same size, another root: 409.
    assert_eq!(
        submit(&client, &w, &fork, 6, 6),
        Err(ClientError::Conflict { witness_size: 6 })
    );
    // A larger fork with its own (valid for the fork) proof: 422.
    assert_eq!(refused_status(submit(&client, &w, &fork, 6, 10)), 422);
    // The right checkpoint with a proof for other sizes, or garbage: 422.
    log.grow_to(10);
    let wrong = log.proof(5, 10);
    let r = client.add_checkpoint(&w.url(), 6, &wrong, &log.checkpoint(10), T);
    assert_eq!(refused_status(r), 422);
    let r = client.add_checkpoint(&w.url(), 6, &[[0u8; 32]; 3], &log.checkpoint(10), T);
    assert_eq!(refused_status(r), 422);
    // Nothing of that moved the witness: the honest next checkpoint is cosigned.
    submit(&client, &w, &log, 6, 10).unwrap();
    assert!(w.log().contains("status=422"));
    // The fork's signed checkpoints are logged as evidence.
    let log_text = w.log();
    assert!(log_text.contains("evidence of a fork"), "{log_text}");
    let fork_root_line = fork.checkpoint(10).lines().nth(2).unwrap().to_owned();
    assert!(log_text.contains(&fork_root_line), "{log_text}");
}

#[test]
fn rollbacks_are_refused() {
    let mut log = TestLog::new(ORIGIN, 1, "main");
    log.grow_to(9);
    let (w, _) = WitnessProcess::start("w.example/w", &[&log]);
    let client = WitnessClient::new();
    submit(&client, &w, &log, 0, 9).unwrap();
    // An older checkpoint claiming to follow the latest: old > size, 400.
    let r = client.add_checkpoint(&w.url(), 9, &[], &log.checkpoint(4), T);
    assert_eq!(refused_status(r), 400);
    // An older checkpoint from its own predecessor: 409, the witness is at 9.
    assert_eq!(
        submit(&client, &w, &log, 0, 4),
        Err(ClientError::Conflict { witness_size: 9 })
    );
}

#[test]
fn other_keys_and_unknown_origins_are_refused() {
    let mut log = TestLog::new(ORIGIN, 1, "main");
    log.grow_to(3);
    let (w, _) = WitnessProcess::start("w.example/w", &[&log]);
    let client = WitnessClient::new();
    // The right origin, another key: 403.
    let mut impostor = TestLog::new(ORIGIN, 2, "main");
    impostor.grow_to(3);
    assert_eq!(refused_status(submit(&client, &w, &impostor, 0, 3)), 403);
    // The log's signature over another text (a forged size line): 403.
    let forged = log.checkpoint(3).replacen("\n3\n", "\n4\n", 1);
    let r = client.add_checkpoint(&w.url(), 0, &[], &forged, T);
    assert_eq!(refused_status(r), 403);
    // Another origin: 404.
    let mut other = TestLog::new("other.example/log", 1, "main");
    other.grow_to(3);
    match submit(&client, &w, &other, 0, 3) {
        Err(ClientError::Refused {
            status: 404,
            reason,
        }) => {
            assert!(reason.contains("other.example/log"), "{reason}")
        }
        r => panic!("{r:?}"),
    }
    // None of it was stored: the real log starts from 0.
    submit(&client, &w, &log, 0, 3).unwrap();
}

#[test]
fn the_latest_checkpoint_survives_sigkill() {
    let mut log = TestLog::new(ORIGIN, 1, "main");
    log.grow_to(7);
    let mut fork = TestLog::new(ORIGIN, 1, "fork");
    fork.grow_to(7);
    let (mut w, vkey) = WitnessProcess::start("w.example/w", &[&log]);
    let client = WitnessClient::new();
    let lines = submit(&client, &w, &log, 0, 7).unwrap();
    // Kill -9 right after the cosignature came back, then restart.
    w.kill_9();
    w.restart();
    // A rollback is still refused, and so is the fork of the same size.
    assert_eq!(
        submit(&client, &w, &log, 0, 3),
        Err(ClientError::Conflict { witness_size: 7 })
    );
    assert_eq!(
        submit(&client, &w, &fork, 7, 7),
        Err(ClientError::Conflict { witness_size: 7 })
    );
    // The cosignature given before the kill is good; the state file holds
    // exactly the checkpoint it cosigned.
    let note = append_cosignatures(&log.checkpoint(7), &lines).unwrap();
    policy(1, &[&vkey])
        .verify_checkpoint(note.as_bytes(), &log.vkey)
        .unwrap();
    let stored: Vec<_> = std::fs::read_dir(w.dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        std::fs::read_to_string(&stored[0]).unwrap(),
        log.checkpoint(7)
    );

    // A tampered state file is not trusted: the witness refuses to start.
    let mut forged = log.checkpoint(7).into_bytes();
    let at = forged.len() - 10;
    forged[at] ^= 1;
    std::fs::write(&stored[0], forged).unwrap();
    w.kill_9();
    let out = common::run(&["serve", "--config", w.config.to_str().unwrap()], &[]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));
}

#[test]
fn concurrent_requests_cannot_both_advance() {
    let mut log = TestLog::new(ORIGIN, 1, "main");
    log.grow_to(40);
    let (w, _) = WitnessProcess::start("w.example/w", &[&log]);
    let client = WitnessClient::new();
    submit(&client, &w, &log, 0, 4).unwrap();
    // Many requests from the same old size 4, to different new sizes, at
    // once: only one may be cosigned, all others must get 409.
    let url = w.url();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (5..=20u64)
            .map(|size| {
                let (client, url, log) = (&client, &url, &log);
                s.spawn(move || {
                    client.add_checkpoint(url, 4, &log.proof(4, size), &log.checkpoint(size), T)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(ClientError::Conflict { .. }))));
}

#[test]
fn malformed_bodies_get_400_with_a_reason() {
    let mut log = TestLog::new(ORIGIN, 1, "main");
    log.grow_to(3);
    let (w, _) = WitnessProcess::start("w.example/w", &[&log]);
    let cp = log.checkpoint(3);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "old size line"),
        (vec![0xff, 0x00], "UTF-8"),
        (format!("new 0\n\n{cp}").into_bytes(), "old <size>"),
        (format!("old 00\n\n{cp}").into_bytes(), "leading zeros"),
        (format!("old 0\nxyz\n\n{cp}").into_bytes(), "proof line 1"),
        (format!("old 0\n{cp}").into_bytes(), "proof line 1"),
        (b"old 0\n\n".to_vec(), "missing"),
        (b"old 0\n\nnot a note\n".to_vec(), "not a signed note"),
        (
            format!("old 0\n\n{}", cp.replace("\n3\n", "\n03\n")).into_bytes(),
            "not a checkpoint",
        ),
        (
            format!(
                "old 0\n{}\n\n{cp}",
                log.proof(1, 3)
                    .iter()
                    .map(|_| "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=")
                    .collect::<Vec<_>>()
                    .join("\n")
            )
            .into_bytes(),
            "from size 0 must be empty",
        ),
    ];
    for (body, why) in cases {
        let (status, _, text) = post_raw(&w.url(), &body);
        assert_eq!(status, 400, "{:?} → {text}", String::from_utf8_lossy(&body));
        assert!(
            text.contains(why),
            "{:?} → {text} (expected {why})",
            String::from_utf8_lossy(&body)
        );
    }
    // Too large: 413, and the connection still serves the next request.
    let (status, _, _) = post_raw(&w.url(), &vec![b'a'; 70 * 1024]);
    assert_eq!(status, 413);
    let (status, _, _) = post_raw(&w.url(), format!("old 0\n\n{cp}").as_bytes());
    assert_eq!(status, 200);
    assert!(w.log().contains("status=400") && w.log().contains("status=413"));
}

#[test]
fn python_verifies_a_cosignature_the_witness_made() {
    let mut log = TestLog::new(ORIGIN, 1, "main");
    log.grow_to(11);
    let (w, vkey) = WitnessProcess::start("witness.example.org/w1", &[&log]);
    let lines = WitnessClient::new()
        .add_checkpoint(&w.url(), 0, &[], &log.checkpoint(11), T)
        .unwrap();
    let note = append_cosignatures(&log.checkpoint(11), &lines).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_cosignature.py");
    let check = |note: &str| {
        let path = w.dir.path().join("cosigned.note");
        std::fs::write(&path, note).unwrap();
        std::process::Command::new("python3")
            .args([script, &vkey, path.to_str().unwrap()])
            .output()
            .expect("python3 (with python3-cryptography) is needed for this test")
    };
    let out = check(&note);
    assert!(
        out.status.success(),
        "python rejected the cosignature: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("ok witness.example.org/w1 time "),
        "{stdout}"
    );
    // And it does say no to a cosignature over another checkpoint.
    let tampered = note.replacen("\n11\n", "\n12\n", 1);
    let out = check(&tampered);
    assert!(!out.status.success(), "python accepted a tampered note");
}
