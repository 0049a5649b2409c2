//! An independent reading of the format: `check_proof.py` (Python standard
//! library and `cryptography`, written from docs/log-format.md) parses the
//! certificate's SSH wire format itself, rebuilds the precertificate, the
//! leaf and the root, and verifies the log's note signature and the
//! witnesses' cosignatures. It must accept what the Rust side issues and
//! refuse what the Rust side refuses.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use std::path::Path;
use std::process::Command;

use common::{alice_fields, issue_ssh, ssh_ca, TestLog};
use signet_log::certificate::{CertificateProof, SSH_PROOF_EXTENSION};

fn python_check(
    dir: &Path,
    cert: &ssh_key::Certificate,
    log: &TestLog,
    threshold: usize,
) -> (bool, String) {
    let path = dir.join("cert.pub");
    std::fs::write(&path, cert.to_openssh().unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_proof.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&path)
        .arg(log.key.vkey.to_string())
        .arg(threshold.to_string())
        .args(log.witnesses.iter().map(|w| w.vkey().to_string()))
        .output()
        .expect("python3 with cryptography (Debian python3-cryptography)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Traceback"),
        "check_proof.py crashed:\n{stderr}"
    );
    (out.status.success(), stdout.trim().to_owned())
}

#[test]
fn python_agrees_with_the_rust_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = TestLog::new();
    log.append_filler(12);
    let ca = ssh_ca(10);
    let fields = alice_fields(20, 77, &["root", "deploy"]);
    let (good, _) = issue_ssh(&mut log, &ca, &fields, &[0, 1]);
    let verified = signet_log::certificate::verify_ssh_certificate(&good, &log.trust(2)).unwrap();
    let (ok, out) = python_check(dir.path(), &good, &log, 2);
    assert!(ok, "{out}");
    assert_eq!(
        out,
        format!(
            "ok index={} size={} cosigned-by=witness-a.example,witness-b.example",
            verified.index, verified.checkpoint_size
        )
    );

    // One cosignature where two are needed.
    let (one, _) = issue_ssh(&mut log, &ca, &alice_fields(21, 78, &["root"]), &[1]);
    let (ok, out) = python_check(dir.path(), &one, &log, 2);
    assert!(!ok);
    assert_eq!(out, "refused: cosigned by 1 of 2 witnesses needed");
    assert!(python_check(dir.path(), &one, &log, 1).0);

    // A cosignature that does not verify.
    let proof = CertificateProof::parse(good.extensions()[SSH_PROOF_EXTENSION].as_bytes()).unwrap();
    let mut bad = proof.clone();
    let at = bad.checkpoint_note.find("— witness-a.example ").unwrap() + 40;
    let mut note = bad.checkpoint_note.into_bytes();
    note[at] = if note[at] == b'A' { b'B' } else { b'A' };
    bad.checkpoint_note = String::from_utf8(note).unwrap();
    let bad = fields.builder(Some(&bad)).unwrap().sign(&ca).unwrap();
    let (ok, out) = python_check(dir.path(), &bad, &log, 2);
    assert!(!ok);
    assert_eq!(out, "refused: bad cosignature by witness-a.example");

    // The proof on another key's certificate.
    let other = alice_fields(22, 77, &["root", "deploy"])
        .builder(Some(&proof))
        .unwrap()
        .sign(&ca)
        .unwrap();
    let (ok, out) = python_check(dir.path(), &other, &log, 2);
    assert!(!ok);
    assert_eq!(out, "refused: the proof is for another entry");

    // The right entry at the wrong index.
    let mut moved = proof.clone();
    moved.index -= 1;
    let moved = fields.builder(Some(&moved)).unwrap().sign(&ca).unwrap();
    let (ok, out) = python_check(dir.path(), &moved, &log, 2);
    assert!(!ok);
    assert_eq!(out, "refused: inclusion does not verify");
}
