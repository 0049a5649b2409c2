//! The CA with real witnesses: `signet-ca` on a SoftHSM2 token and two
//! `signet-witness` processes on loopback. A checkpoint (and every
//! certificate proven against it) leaves the CA only once the witness
//! policy is met: one witness down with a 1-of-2 policy changes nothing
//! but the health check; both down, or a witness that refuses, stop
//! issuance (exit code 6, each witness named with its reason); and a CA
//! whose data directory and token were both restored from an old backup
//! — which the HSM's high-water mark cannot see — is stopped by the
//! witnesses, which remember the larger log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;
mod witnesskit;

use std::path::Path;
use std::process::Command;

use common::{Ca, Daemon};
use signet_log::certificate::{ssh_proof_text, verify_ssh_certificate, CertificateProof, LogTrust};
use signet_log::note::VerifierKey;
use signet_log::witness::{Witness, WitnessPolicy};
use witnesskit::{
    health, log_vkey, policy_toml, set_ca_witnesses, witness_health, WitnessProcess, ORIGIN,
};

/// The exit code `signet-ca` ends with when the witnesses did not cosign.
const EXIT_WITNESSES: i32 = 6;

struct Bed {
    ca: Ca,
    key: std::path::PathBuf,
    log_vkey: String,
    a: WitnessProcess,
    b: WitnessProcess,
}

impl Bed {
    /// An initialised CA and two witnesses of its log, policy `threshold`.
    fn new(label: &str, threshold: usize) -> Self {
        let ca = Ca::initialised(label);
        let log_vkey = log_vkey(&ca);
        let a = WitnessProcess::start("witness-a.example", ORIGIN, &log_vkey);
        let b = WitnessProcess::start("witness-b.example", ORIGIN, &log_vkey);
        set_ca_witnesses(&ca, &policy_toml(threshold, &[&a, &b]));
        let key = ca.client_key("k", "ed25519");
        Self {
            ca,
            key,
            log_vkey,
            a,
            b,
        }
    }

    fn trust(&self, threshold: usize) -> LogTrust {
        let witnesses = [&self.a, &self.b]
            .iter()
            .map(|w| Witness::new(&w.name, None, VerifierKey::parse(&w.vkey).unwrap()))
            .collect();
        LogTrust {
            log_key: VerifierKey::parse(&self.log_vkey).unwrap(),
            witnesses: WitnessPolicy::new(threshold, witnesses).unwrap(),
        }
    }

    fn sign_args(&self) -> Vec<String> {
        [
            "sign",
            "ssh-user",
            "--user",
            "alice",
            "--principal",
            "root",
            "--ttl",
            "1h",
            "--public-key",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("{}.pub", self.key.display())])
        .collect()
    }

    /// `signet-ca sign ssh-user` (direct mode): the certificate on success.
    fn sign(&self) -> Result<ssh_key::Certificate, (Option<i32>, String)> {
        let args = self.sign_args();
        let out = self
            .ca
            .run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        if out.status.success() {
            Ok(
                ssh_key::Certificate::from_openssh(&String::from_utf8(out.stdout).unwrap())
                    .unwrap(),
            )
        } else {
            Err((
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ))
        }
    }

    fn refused(&self) -> String {
        match self.sign() {
            Ok(_) => panic!("the CA issued a certificate"),
            Err((code, stderr)) => {
                assert_eq!(code, Some(EXIT_WITNESSES), "{stderr}");
                stderr
            }
        }
    }

    /// `signet-ca serve` that must end with exit code 6; its stderr.
    fn serve_refused(&self) -> String {
        let log = self.ca.path("serve-refused.log");
        let mut child = signet_testkit::child::spawn_tied(
            env!("CARGO_BIN_EXE_signet-ca"),
            &[
                "--config".as_ref(),
                self.ca.config.as_os_str(),
                "serve".as_ref(),
            ],
            |command| {
                command
                    .env("SOFTHSM2_CONF", self.ca.hsm.conf())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::fs::File::create(&log).unwrap());
            },
        )
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve kept running without its witnesses: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let stderr = std::fs::read_to_string(&log).unwrap();
        assert_eq!(status.code(), Some(EXIT_WITNESSES), "{stderr}");
        stderr
    }

    /// `signet-ca serve` (on the configuration's own listen line reset,
    /// so it can be started more than once).
    fn serve(&self) -> Daemon {
        let text = std::fs::read_to_string(&self.ca.config).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("listen = \"127.0.0.1:") {
                    "listen = \"127.0.0.1:8441\"\n".to_owned()
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&self.ca.config, text).unwrap();
        self.ca.serve()
    }
}

/// The cosigner names a certificate's proof carries, after checking it
/// against `trust`.
fn cosigners(cert: &ssh_key::Certificate, trust: &LogTrust) -> Vec<String> {
    let verified = verify_ssh_certificate(cert, trust).unwrap();
    let mut names = verified.cosigners;
    names.sort();
    names
}

#[test]
fn one_of_two_goes_on_with_a_witness_down_and_stops_with_both() {
    let mut bed = Bed::new("witnesses-1of2", 1);

    // Both up: the certificate's proof carries a cosigned checkpoint.
    let cert = bed.sign().unwrap();
    let names = cosigners(&cert, &bed.trust(1));
    assert!(!names.is_empty());
    // The proof is against a checkpoint the log key signed and at least
    // one witness cosigned; a policy of two then may or may not be met,
    // but a policy naming no witness of the log is not.
    let proof = CertificateProof::parse(ssh_proof_text(&cert).unwrap().as_bytes()).unwrap();
    assert!(proof.checkpoint_note.contains("\u{2014} witness-"));
    let strangers = LogTrust {
        log_key: VerifierKey::parse(&bed.log_vkey).unwrap(),
        witnesses: WitnessPolicy::new(
            1,
            vec![Witness::new(
                "witness-c.example",
                None,
                VerifierKey::parse(
                    &WitnessProcess::start("witness-c.example", ORIGIN, &bed.log_vkey).vkey,
                )
                .unwrap(),
            )],
        )
        .unwrap(),
    };
    assert!(verify_ssh_certificate(&cert, &strangers).is_err());

    // One down: issuance goes on, proven with the other's cosignature.
    bed.b.kill();
    let cert = bed.sign().unwrap();
    assert_eq!(cosigners(&cert, &bed.trust(1)), vec!["witness-a.example"]);
    // The daemon's health names the dead witness and why; the CA is fine.
    // Then the other goes down while it runs: the next log entry (a lock,
    // through the admin socket) is not released, and health says 503.
    {
        let daemon = bed.serve();
        let (status, h) = health(&bed.ca, daemon.port);
        assert_eq!(status, 200, "{h}");
        assert_eq!(h["ok"], true, "{h}");
        assert_eq!(witness_health(&h, "witness-a.example")["ok"], true, "{h}");
        let b = witness_health(&h, "witness-b.example");
        assert_eq!(b["ok"], false, "{h}");
        assert!(b["reason"].as_str().unwrap().contains("unreachable"), "{h}");
        // The served checkpoint is the cosigned one.
        let (status, note) = witnesskit::https_get(&bed.ca, daemon.port, "/log/checkpoint");
        assert_eq!(status, 200);
        assert!(note.contains("\u{2014} witness-a.example "), "{note}");

        bed.a.kill();
        let out = bed
            .ca
            .run(&["lock", "--device", "7100001", "--reason", "witness test"]);
        assert!(
            !out.status.success(),
            "the lock was released without witnesses"
        );
        let (status, h) = health(&bed.ca, daemon.port);
        assert_eq!(status, 503, "{h}");
        assert_eq!(h["ok"], false, "{h}");
        for name in ["witness-a.example", "witness-b.example"] {
            let w = witness_health(&h, name);
            assert_eq!(w["ok"], false, "{h}");
            assert!(w["reason"].as_str().unwrap().contains("unreachable"), "{h}");
        }
        // The checkpoint served is still the last one released.
        let (status, served) = witnesskit::https_get(&bed.ca, daemon.port, "/log/checkpoint");
        assert_eq!(status, 200);
        assert_eq!(served, note);
    }

    // Both down: refused, each witness named with the reason; the daemon
    // does not start either (its TLS certificate is logged like any other).
    let stderr = bed.refused();
    assert!(stderr.contains("witness-a.example"), "{stderr}");
    assert!(stderr.contains("witness-b.example"), "{stderr}");
    assert!(
        stderr.contains("1 of 2 witnesses must cosign, 0 did"),
        "{stderr}"
    );
    let stderr = bed.serve_refused();
    assert!(stderr.contains("witness-a.example"), "{stderr}");
    assert!(stderr.contains("witness-b.example"), "{stderr}");

    // One back (with the state it kept): issuance resumes, and the
    // witness accepts the log that grew while it was down.
    bed.a.restart();
    let cert = bed.sign().unwrap();
    assert_eq!(cosigners(&cert, &bed.trust(1)), vec!["witness-a.example"]);
    bed.b.restart();
    let cert = bed.sign().unwrap();
    // Both cosign once both are up (the CA waits only for the first; a
    // 2-of-2 policy waits for both).
    assert!(!cosigners(&cert, &bed.trust(1)).is_empty());
    set_ca_witnesses(&bed.ca, &policy_toml(2, &[&bed.a, &bed.b]));
    let cert = bed.sign().unwrap();
    assert_eq!(
        cosigners(&cert, &bed.trust(2)),
        vec!["witness-a.example", "witness-b.example"]
    );
    bed.b.kill();
    let stderr = bed.refused();
    // (How many cosigned before the round gave up depends on who answered
    // first: the dead witness's refusal ends it.)
    assert!(stderr.contains("2 of 2 witnesses must cosign"), "{stderr}");
    assert!(stderr.contains("witness-b.example"), "{stderr}");
}

#[test]
fn a_witness_that_refuses_counts_as_down() {
    let bed = Bed::new("witnesses-refusing", 2);
    // A third witness set up for another log key of the same origin: it
    // refuses every checkpoint this CA signs.
    let other = Ca::initialised("witnesses-other-log");
    let wrong = WitnessProcess::start("witness-c.example", ORIGIN, &log_vkey(&other));
    set_ca_witnesses(&bed.ca, &policy_toml(2, &[&bed.a, &wrong]));
    let stderr = bed.refused();
    assert!(stderr.contains("2 of 2 witnesses must cosign"), "{stderr}");
    assert!(stderr.contains("witness-c.example"), "{stderr}");
    assert!(stderr.contains("403"), "{stderr}");
    assert!(!stderr.contains("witness-a.example:"), "{stderr}");

    // 1 of 2: issued on the good witness alone; the health check names
    // the refusing one with the reason it gave.
    set_ca_witnesses(&bed.ca, &policy_toml(1, &[&bed.a, &wrong]));
    let cert = bed.sign().unwrap();
    let names = verify_ssh_certificate(&cert, &bed.trust(1))
        .unwrap()
        .cosigners;
    assert_eq!(names, vec!["witness-a.example"]);
    let daemon = bed.serve();
    let (status, h) = health(&bed.ca, daemon.port);
    assert_eq!(status, 200, "{h}");
    let c = witness_health(&h, "witness-c.example");
    assert_eq!(c["ok"], false, "{h}");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        !reason.is_empty() && !reason.contains("not asked yet"),
        "{h}"
    );
}

/// Copies a directory tree as it is (`cp -a`).
fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Whether a witness's refusal says the log went back or forked: its
/// size is below what the witness cosigned, the same size has another
/// root, or no consistency proof leads from the witness's tree to it.
fn forked(reason: &str) -> bool {
    reason.contains("rolled back")
        || reason.contains("fork")
        || reason.contains("consistency proof from size")
}

#[test]
fn a_ca_restored_from_an_old_backup_is_stopped_by_the_witnesses() {
    if common::embedded_store_only("restoring a copy of the data directory") {
        return;
    }
    let bed = Bed::new("witnesses-backup", 1);
    bed.sign().unwrap();

    // The backup: the data directory and the token's files, as a storage
    // administrator would copy both (nothing runs: direct mode).
    let data = bed.ca.path("data");
    let tokens = bed.ca.path("tokens");
    let backup = bed.ca.path("backup");
    std::fs::create_dir(&backup).unwrap();
    copy_tree(&data, &backup.join("data"));
    copy_tree(&tokens, &backup.join("tokens"));

    // Life goes on: more certificates, cosigned.
    bed.sign().unwrap();
    bed.sign().unwrap();

    // Both restored: the high-water mark on the token went back with the
    // store, so the CA itself sees nothing wrong.
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_dir_all(&tokens).unwrap();
    copy_tree(&backup.join("data"), &data);
    copy_tree(&backup.join("tokens"), &tokens);
    bed.ca.ok(&["log", "check"]);

    // The witnesses remember the larger log: the CA issues nothing, and
    // says why. Each refused issuance still grows the restored log (its
    // entries stay, nothing leaves), through the old size and past it:
    // the witnesses refuse the fork at every size.
    for _ in 0..4 {
        let stderr = bed.refused();
        assert!(stderr.contains("witness-a.example"), "{stderr}");
        assert!(stderr.contains("witness-b.example"), "{stderr}");
        assert!(forked(&stderr), "{stderr}");
    }
    // The daemon does not start on it, and says why.
    let stderr = bed.serve_refused();
    assert!(stderr.contains("witness-a.example"), "{stderr}");
    assert!(stderr.contains("witness-b.example"), "{stderr}");
    assert!(forked(&stderr), "{stderr}");
}

#[test]
fn the_examples_commented_witnesses_parse() {
    // deploy/signet-ca.example.toml's commented [witnesses] table and
    // witness_timeout, swapped in, make a configuration the CA accepts.
    let example = include_str!("../../../deploy/signet-ca.example.toml");
    let block: String = example
        .lines()
        .skip_while(|l| *l != "# [witnesses]")
        .map(|l| format!("{}\n", l.trim_start_matches("# ")))
        .collect();
    assert!(block.starts_with("[witnesses]\nthreshold = 1\n"), "{block}");
    let text = format!(
        "{}\n{block}",
        example.replace("# witness_timeout = \"3s\"", "witness_timeout = \"3s\"")
    );
    let config =
        signet_ca::config::Config::parse(&text, Path::new("/etc/signet/signet-ca.toml")).unwrap();
    let policy = config.witnesses.unwrap();
    assert_eq!(policy.threshold(), 1);
    let names: Vec<&str> = policy.witnesses().iter().map(|w| w.name()).collect();
    assert_eq!(names, ["witness-a.example", "witness-b.example"]);
    assert_eq!(
        policy.witnesses()[0].url(),
        Some("https://witness-a.example:7380")
    );
    assert_eq!(
        config.log.witness_timeout,
        std::time::Duration::from_secs(3)
    );
    // A witness without a url is refused when the CA builds its client.
    let no_url = text.replace("url = \"https://witness-a.example:7380\"\n", "");
    let config =
        signet_ca::config::Config::parse(&no_url, Path::new("/etc/signet/signet-ca.toml")).unwrap();
    let vkey = VerifierKey::parse(
        "ca.example.com/signet-log+5432e20d+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c",
    )
    .unwrap();
    let err = signet_ca::store::witnessing::from_config(&config, &vkey).unwrap_err();
    assert!(err.to_string().contains("has no url"), "{err}");
}
