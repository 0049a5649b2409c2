//! Bad input of every kind: malformed checkpoints, unknown key ids, absurd
//! sizes, truncated or garbage tiles over HTTP, unusable key and state
//! files. Always a clear error and the documented exit status, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::http::{serve, Mode};
use common::*;
use signet_log::note::Note;

fn setup(n: u64) -> (Scratch, TestKey, TestLog) {
    let s = Scratch::new();
    let key = TestKey::new(ORIGIN, 1);
    let log = TestLog::new(mixed_entries(n));
    log.write(&s.log_dir(), &key);
    s.vkey(&key);
    (s, key, log)
}

fn run(s: &Scratch, cmd: &str, log: &str) -> Run {
    let vkey = s.path("log.vkey");
    s.signet(&["audit", cmd, "--log", log, "--key", vkey.to_str().unwrap()])
}

fn dir(s: &Scratch) -> String {
    s.log_dir().to_str().unwrap().to_owned()
}

#[test]
fn malformed_checkpoints() {
    let (s, key, log) = setup(10);
    let root = STANDARD.encode(log.root(10));
    let signed = |text: &str| Note::sign(text, &[&key]).unwrap().to_text();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "malformed note"),
        (b"\xff\xfe\x00".to_vec(), "malformed note"),
        (
            format!("{ORIGIN}\n10\n{root}\n").into_bytes(),
            "malformed note",
        ),
        (
            format!("{ORIGIN}\n10\n{root}\n\n\u{2014} {ORIGIN} AAAA\n").into_bytes(),
            "malformed signature line",
        ),
        (
            signed(&format!("{ORIGIN}\n010\n{root}\n")).into_bytes(),
            "bad tree size line",
        ),
        (
            signed(&format!("{ORIGIN}\n-1\n{root}\n")).into_bytes(),
            "bad tree size line",
        ),
        (
            signed(&format!("{ORIGIN}\n18446744073709551616\n{root}\n")).into_bytes(),
            "bad tree size line",
        ),
        (
            signed(&format!("{ORIGIN}\n10\nnot-base64\n")).into_bytes(),
            "bad root hash line",
        ),
        (
            signed(&format!("{ORIGIN}\n10\n")).into_bytes(),
            "fewer than three lines",
        ),
        (
            signed(&format!("other.example/signet-log\n10\n{root}\n")).into_bytes(),
            "checkpoint is for origin \"other.example/signet-log\"",
        ),
        (vec![b'a'; 300 * 1024], "larger than"),
    ];
    for (bytes, needle) in cases {
        std::fs::write(s.log_dir().join("checkpoint"), &bytes).unwrap();
        for cmd in ["checkpoint", "verify"] {
            let r = run(&s, cmd, &dir(&s)).fails(1, needle);
            assert!(r.stderr.contains("checkpoint"), "{r:?}");
        }
    }
    std::fs::remove_file(s.log_dir().join("checkpoint")).unwrap();
    run(&s, "verify", &dir(&s)).fails(3, "checkpoint: not found");
}

#[test]
fn unknown_key_ids() {
    let (s, key, log) = setup(10);
    // The right name, a key id nobody has.
    let text = log.checkpoint(10, &[&key]);
    let (body, sig) = text.rsplit_once("\u{2014} ").unwrap();
    let (name, b64) = sig.trim_end().split_once(' ').unwrap();
    let mut raw = STANDARD.decode(b64).unwrap();
    raw[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let forged = format!("{body}\u{2014} {name} {}\n", STANDARD.encode(raw));
    std::fs::write(s.log_dir().join("checkpoint"), forged).unwrap();
    run(&s, "verify", &dir(&s)).fails(1, "signatures by: ca.example.com/signet-log+deadbeef");

    // A vkey whose id does not match its key is refused before anything is fetched.
    let line = key.vkey_line();
    let mut parts: Vec<&str> = line.splitn(3, '+').collect();
    parts[1] = "00000000";
    let bad = s.write("bad.vkey", parts.join("+"));
    s.signet(&[
        "audit",
        "verify",
        "--log",
        &dir(&s),
        "--key",
        bad.to_str().unwrap(),
    ])
    .fails(2, "verifier key id does not match");
}

#[test]
fn absurd_sizes() {
    let (s, key, log) = setup(10);
    for size in [u64::MAX, 1 << 40, 11] {
        let text = signet_log::checkpoint::Checkpoint::new(ORIGIN, size, log.root(10))
            .unwrap()
            .sign(&[&key])
            .unwrap()
            .to_text();
        std::fs::write(s.log_dir().join("checkpoint"), text).unwrap();
        let r = run(&s, "checkpoint", &dir(&s)).ok();
        assert!(r.stdout.contains(&format!("size: {size}")), "{r:?}");
        let r = run(&s, "verify", &dir(&s)).fails(1, "missing, but the checkpoint");
        assert!(r.stderr.contains(&size.to_string()), "{r:?}");
    }
}

#[test]
fn absurd_size_against_a_remembered_checkpoint() {
    let (s, key, log) = setup(10);
    run(&s, "verify", &dir(&s)).ok();
    let text = signet_log::checkpoint::Checkpoint::new(ORIGIN, u64::MAX, [9; 32])
        .unwrap()
        .sign(&[&key])
        .unwrap()
        .to_text();
    std::fs::write(s.log_dir().join("checkpoint"), text).unwrap();
    run(&s, "checkpoint", &dir(&s)).fails(1, "missing, but the checkpoint");
    let _ = log;
}

#[test]
fn http_garbage_truncated_and_broken_servers() {
    let (s, _, _) = setup(600);
    let d = s.log_dir();
    let url = serve(&d, Mode::Garbage);
    run(&s, "verify", &url).fails(1, "entry bundle");

    let url = serve(&d, Mode::Truncated);
    run(&s, "verify", &url).fails(1, "tile/");

    let url = serve(&d, Mode::CutOff);
    run(&s, "verify", &url).fails(3, "could not fetch http://127.0.0.1:");

    let url = serve(&d, Mode::ServerError);
    run(&s, "verify", &url).fails(3, "HTTP status 500");

    let url = serve(&d, Mode::Huge);
    run(&s, "verify", &url).fails(1, "larger than the");

    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}/log/")
    };
    run(&s, "checkpoint", &closed).fails(3, "could not fetch");
}

#[test]
fn garbage_checkpoint_over_http_and_unsupported_locations() {
    let (s, _, _) = setup(10);
    std::fs::write(s.log_dir().join("checkpoint"), b"<html>not a log</html>").unwrap();
    let url = serve(&s.log_dir(), Mode::Honest);
    run(&s, "checkpoint", &url).fails(1, "malformed note");
    run(&s, "checkpoint", "ftp://example.invalid/log").fails(2, "only http://");
    run(&s, "checkpoint", "/nonexistent/signet-log").fails(2, "not a directory");
}

#[test]
fn bad_key_files() {
    let (s, _, _) = setup(10);
    let d = dir(&s);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("binary", vec![0xff, 0x00, 0x13], "not text"),
        ("junk", b"hello world".to_vec(), "not a verifier key"),
        (
            "type7",
            format!("{ORIGIN}+01020304+{}", STANDARD.encode([7u8; 33])).into_bytes(),
            "unsupported signature type",
        ),
        (
            "private",
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
            "expected \"PUBLIC KEY\"",
        ),
        (
            "badpem",
            b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n".to_vec(),
            "malformed PEM",
        ),
        (
            "x25519",
            b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n-----END PUBLIC KEY-----\n".to_vec(),
            "unsupported public key",
        ),
    ];
    for (name, contents, needle) in cases {
        let k = s.write(name, contents);
        s.signet(&["audit", "verify", "--log", &d, "--key", k.to_str().unwrap()])
            .fails(2, needle);
    }
    s.signet(&["audit", "verify", "--log", &d, "--key", "/nonexistent/key"])
        .fails(2, "--key /nonexistent/key");
    let vkey = s.path("log.vkey");
    s.signet(&[
        "audit",
        "verify",
        "--log",
        &d,
        "--key",
        vkey.to_str().unwrap(),
        "--origin",
        "has space",
    ])
    .fails(2, "--origin");
}

#[test]
fn bad_since_and_state_files() {
    let (s, _, log) = setup(10);
    let d = dir(&s);
    let vkey = s.path("log.vkey");
    let since = s.write("since", "garbage");
    s.signet(&[
        "audit",
        "verify",
        "--log",
        &d,
        "--key",
        vkey.to_str().unwrap(),
        "--since",
        since.to_str().unwrap(),
    ])
    .fails(2, "--since");
    let other = TestKey::new(ORIGIN, 5);
    let since = s.write("since", log.checkpoint(5, &[&other]));
    s.signet(&[
        "audit",
        "verify",
        "--log",
        &d,
        "--key",
        vkey.to_str().unwrap(),
        "--since",
        since.to_str().unwrap(),
    ])
    .fails(2, "not signed by the pinned key");

    // A remembered checkpoint someone edited is refused, not trusted.
    run(&s, "verify", &d).ok();
    let state = s.state_files().pop().unwrap();
    let text = std::fs::read_to_string(&state)
        .unwrap()
        .replace("\n10\n", "\n9\n");
    std::fs::write(&state, text).unwrap();
    run(&s, "verify", &d).fails(2, "the remembered checkpoint");
    run(&s, "checkpoint", &d).fails(2, "the remembered checkpoint");
}

/// `--since` names a file, but what is there could be anything: a file far
/// larger than any checkpoint is refused unread, and a FIFO (which nobody
/// writes to) is refused at once instead of hanging the run; so are the
/// other files named on the command line, and a state file.
#[test]
fn since_and_other_named_files_are_bounded_and_never_fifos() {
    let (s, key, log) = setup(10);
    let d = dir(&s);
    let vkey = s.path("log.vkey");
    let verify_since = |since: &std::path::Path| {
        s.signet(&[
            "audit",
            "verify",
            "--log",
            &d,
            "--key",
            vkey.to_str().unwrap(),
            "--since",
            since.to_str().unwrap(),
        ])
    };

    // A valid checkpoint padded past the bound: refused for its size, with
    // the flag and the file named (not read, then rejected as a bad note).
    let mut big = log.checkpoint(5, &[&key]).into_bytes();
    big.resize(16 * 1024 + 1, b'\n');
    let since = s.write("big.checkpoint", &big);
    let r = verify_since(&since).fails(2, "larger than 16384 bytes");
    assert!(
        r.stderr.contains(&format!("--since {}", since.display())),
        "{r:?}"
    );
    // A sparse file of a terabyte: refused as fast, nothing read.
    let huge = s.path("huge.checkpoint");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    verify_since(&huge).fails(2, "larger than 16384 bytes");
    // At the bound's edge a real checkpoint still works.
    let since = s.write("5.checkpoint", log.checkpoint(5, &[&key]));
    let r = verify_since(&since).ok();
    assert!(
        r.stdout.contains("extends the --since checkpoint (size 5)"),
        "{r:?}"
    );

    // A FIFO, a directory, a device.
    let fifo = s.path("fifo");
    mkfifo(&fifo);
    let r = without_hanging(
        &fifo,
        s.spawn(&[
            "audit",
            "verify",
            "--log",
            &d,
            "--key",
            vkey.to_str().unwrap(),
            "--since",
            fifo.to_str().unwrap(),
        ]),
    );
    let r = r.fails(2, "not a regular file");
    assert!(
        r.stderr.contains(&format!("--since {}", fifo.display())),
        "{r:?}"
    );
    verify_since(s.tmp.path()).fails(2, "not a regular file");
    verify_since(std::path::Path::new("/dev/zero")).fails(2, "not a regular file");

    // The key and certificate files, and the remembered state, alike.
    let r = without_hanging(
        &fifo,
        s.spawn(&[
            "audit",
            "verify",
            "--log",
            &d,
            "--key",
            fifo.to_str().unwrap(),
        ]),
    );
    r.fails(2, "--key");
    let r = without_hanging(
        &fifo,
        s.spawn(&[
            "audit",
            "prove",
            "--log",
            &d,
            "--key",
            vkey.to_str().unwrap(),
            "--cert",
            fifo.to_str().unwrap(),
        ]),
    );
    r.fails(2, "--cert");
    let state =
        signet::audit::state::StateDir::new(s.state().join("signet/audit")).path_for(ORIGIN);
    // (the run above remembered a checkpoint; a FIFO takes its place)
    std::fs::remove_file(&state).unwrap();
    mkfifo(&state);
    let r = without_hanging(
        &state,
        s.spawn(&[
            "audit",
            "checkpoint",
            "--log",
            &d,
            "--key",
            vkey.to_str().unwrap(),
        ]),
    );
    r.fails(3, "not a regular file");
}

/// Makes a FIFO with mkfifo(1).
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Collects `run`. Should it still be running after a generous while (stuck
/// opening `fifo`), this opens the FIFO's other end, which frees it, and
/// fails: the test never hangs.
fn without_hanging(fifo: &std::path::Path, run: Running) -> Run {
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || tx.send(run.wait()).unwrap());
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(r) => {
            waiter.join().unwrap();
            r
        }
        Err(_) => {
            drop(std::fs::File::options().write(true).open(fifo).unwrap());
            let r = rx.recv().unwrap();
            panic!("signet waited on the FIFO {}: {r:?}", fifo.display());
        }
    }
}
