//! How long the node check adds to a login.
//!
//! ```sh
//! cargo build --release -p signet-node && cargo run --release -p signet-node --example node_bench
//! ```
//!
//! Times, in one run and interleaved: `signet-node principals` as sshd runs
//! it (a new process per login: start, read the configuration, verify the
//! proof — the log signature, two cosignatures, the precertificate, the
//! entry, 20 inclusion hashes of a tree of a million entries — and print),
//! `ssh-keygen -L -f` on the same certificate (a process that parses the
//! certificate, about what sshd's own check of it costs), `/bin/true` (the
//! cost of any process), and the check in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may panic

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{alice_fields, node_config, ssh_ca, ssh_entry, TestLog};
use sha2::Digest as _;
use signet_log::certificate::CertificateProof;
use signet_log::merkle::{inclusion_proof_len, root_from_inclusion_proof, Hash};
use signet_node::NodeConfig;

const RUNS: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn time(command: &mut Command) -> Duration {
    let start = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let took = start.elapsed();
    assert!(status.success(), "{command:?} failed");
    took
}

fn node_binary() -> PathBuf {
    // target/release/examples/node_bench → target/release/signet-node
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("signet-node");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release -p signet-node first",
        bin.display()
    );
    bin
}

fn main() {
    // A certificate as a big deployment issues it: a tree of a million
    // entries, two cosignatures, a 2-of-2 policy. (The sibling hashes are
    // made up; the checkpoint signs the root they lead to.)
    let log = TestLog::new();
    let ca = ssh_ca(10);
    let fields = alice_fields(20, 1, &["root", "ubuntu"]);
    let entry = ssh_entry(&fields, &ca, &["root", "ubuntu"]);
    let (size, index) = (1_000_000u64, 123_456u64);
    let inclusion: Vec<Hash> = (0..inclusion_proof_len(index, size).unwrap())
        .map(|i| sha2::Sha256::digest(format!("sibling {i}")).into())
        .collect();
    let root =
        root_from_inclusion_proof(&entry.leaf_hash().unwrap(), index, size, &inclusion).unwrap();
    let note = log.note(size, root, &[0, 1]);
    let proof = CertificateProof::new(index, &entry, inclusion, &note).unwrap();
    let cert = fields.builder(Some(&proof)).unwrap().sign(&ca).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("node.toml");
    std::fs::write(&config_path, node_config(&log, 2)).unwrap();
    let cert_path = dir.path().join("alice-cert.pub");
    std::fs::write(&cert_path, cert.to_openssh().unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.to_bytes().unwrap());
    let key_type = cert.algorithm().to_certificate_type();

    let node = node_binary();
    let node_cmd = |config: &Path| {
        let mut c = Command::new(&node);
        c.arg("principals")
            .arg("--config")
            .arg(config)
            .args(["root", key_type.as_str(), &b64]);
        c
    };
    let out = node_cmd(&config_path).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "root\nubuntu\n",
        "{out:?}"
    );

    let mut node_times = Vec::with_capacity(RUNS);
    let mut keygen_times = Vec::with_capacity(RUNS);
    let mut true_times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        node_times.push(time(&mut node_cmd(&config_path)));
        keygen_times.push(time(
            Command::new("ssh-keygen")
                .arg("-L")
                .arg("-f")
                .arg(&cert_path),
        ));
        true_times.push(time(&mut Command::new("/bin/true")));
    }

    let config = NodeConfig::load(&config_path).unwrap();
    let mut in_process = Vec::with_capacity(RUNS * 10);
    for _ in 0..RUNS * 10 {
        let start = Instant::now();
        let names = signet_node::principals(&config, "root", &key_type, &b64).unwrap();
        in_process.push(start.elapsed());
        assert_eq!(names.len(), 2);
    }

    let mut config_load = Vec::with_capacity(RUNS * 10);
    for _ in 0..RUNS * 10 {
        let start = Instant::now();
        let loaded = NodeConfig::load(&config_path).unwrap();
        config_load.push(start.elapsed());
        assert_eq!(loaded.trust.witnesses.threshold(), 2);
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut rows = vec![
        ("signet-node principals (process)", node_times),
        ("ssh-keygen -L -f cert (process)", keygen_times),
        ("/bin/true (process)", true_times),
        ("signet_node::principals (in-process)", in_process),
        ("NodeConfig::load (in-process)", config_load),
    ];
    for (_, t) in &mut rows {
        t.sort();
    }
    let keygen_p50 = ms(percentile(&rows[1].1, 0.5));
    println!(
        "certificate {} bytes, proof {} bytes ({} inclusion hashes, 2 cosignatures), {RUNS} runs each",
        cert.to_bytes().unwrap().len(),
        proof.encode().len(),
        proof.inclusion.len()
    );
    println!("| measurement | p50 ms | p99 ms | p50 / ssh-keygen p50 |");
    println!("| --- | --- | --- | --- |");
    for (name, t) in &rows {
        let p50 = ms(percentile(t, 0.5));
        println!(
            "| {name} | {p50:.3} | {:.3} | {:.2} |",
            ms(percentile(t, 0.99)),
            p50 / keygen_p50
        );
    }
}
