//! The test vector of docs/log-format.md ("Certificates that carry their
//! proof"): an OpenSSH certificate with its proof, the log's key, the
//! witness policy and the logged entry, in `tests/vectors/cert-proof/`.
//!
//! Made by this test from fixed seeds (Ed25519 signatures are
//! deterministic); `SIGNET_REGENERATE_VECTORS=1` writes them anew. The
//! check reads only the files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use common::prooflog::{alice_fields, issue_ssh, ssh_ca, TestLog};
use signet_log::certificate::{
    ssh_precertificate, verify_ssh_certificate, CertificateProof, LogTrust, SSH_PROOF_EXTENSION,
};
use signet_log::entry::Entry;
use signet_log::merkle::leaf_hash;
use signet_log::note::VerifierKey;
use signet_log::witness::WitnessPolicy;

fn path(name: &str) -> std::path::PathBuf {
    common::vector_path(&format!("cert-proof/{name}"))
}

/// The files as this crate makes them.
fn make() -> Vec<(&'static str, String)> {
    let mut log = TestLog::new();
    log.append_filler(5);
    let ca = ssh_ca(10);
    let fields = alice_fields(20, 4242, &["root", "ubuntu"]);
    let (cert, entry) = issue_ssh(&mut log, &ca, &fields, &[0, 1]);
    let mut policy = String::from("threshold = 2\n");
    for w in &log.witnesses {
        policy.push_str(&format!(
            "\n[[witness]]\nname = \"{}\"\nvkey = \"{}\"\n",
            w.name,
            w.vkey()
        ));
    }
    vec![
        (
            "ssh-user-cert.pub",
            format!("{}\n", cert.to_openssh().unwrap()),
        ),
        (
            "ca.pub",
            format!("{}\n", ca.public_key().to_openssh().unwrap()),
        ),
        ("log.vkey", format!("{}\n", log.key.vkey)),
        ("witnesses.toml", policy),
        (
            "entry.json",
            String::from_utf8(entry.to_canonical_bytes().unwrap()).unwrap(),
        ),
        ("proof.txt", cert.extensions()[SSH_PROOF_EXTENSION].clone()),
    ]
}

#[test]
fn vector_files_are_what_the_crate_makes() {
    for (name, content) in make() {
        if std::env::var_os("SIGNET_REGENERATE_VECTORS").is_some() {
            std::fs::create_dir_all(path("")).unwrap();
            std::fs::write(path(name), &content).unwrap();
        }
        let committed = std::fs::read_to_string(path(name)).unwrap();
        assert_eq!(
            committed, content,
            "{name} differs from what the crate makes"
        );
    }
}

#[test]
fn vector_verifies_from_the_files() {
    let read = |name: &str| std::fs::read_to_string(path(name)).unwrap();
    let cert = ssh_key::Certificate::from_openssh(read("ssh-user-cert.pub").trim()).unwrap();
    let ca = ssh_key::PublicKey::from_openssh(read("ca.pub").trim()).unwrap();
    cert.validate_at(cert.valid_after(), &[ca.fingerprint(Default::default())])
        .unwrap();
    let trust = LogTrust {
        log_key: VerifierKey::parse(read("log.vkey").trim()).unwrap(),
        witnesses: toml::from_str::<WitnessPolicy>(&read("witnesses.toml")).unwrap(),
    };
    let verified = verify_ssh_certificate(&cert, &trust).unwrap();
    assert_eq!(verified.index, 5);
    assert_eq!(verified.checkpoint_size, 9);

    // The entry file is the logged entry: the precertificate in it, its
    // leaf hash the one the proof includes.
    let entry_bytes = read("entry.json").into_bytes();
    let entry = Entry::from_bytes(&entry_bytes).unwrap();
    assert_eq!(entry, verified.entry);
    assert_eq!(
        entry.certificate.as_ref().unwrap().bytes.0,
        ssh_precertificate(&cert).unwrap()
    );
    assert_eq!(entry.leaf_hash().unwrap(), leaf_hash(&entry_bytes));
    let proof = CertificateProof::parse(read("proof.txt").as_bytes()).unwrap();
    assert_eq!(proof.index, 5);
    assert_eq!(
        proof.entry_without_bytes.as_bytes(),
        entry.to_detached_bytes().unwrap()
    );
}
