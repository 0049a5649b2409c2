//! End to end with both real binaries: the CA issues, exports and serves its
//! log; the auditor's `signet audit` verifies it, proves a certificate's
//! inclusion, and catches a rewritten log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod witnesskit;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::Ca;

/// The `signet` binary, built next to `signet-ca` by `cargo nextest run --workspace`.
fn signet_binary() -> PathBuf {
    witnesskit::sibling_binary("signet")
}

fn audit(ca: &Ca, args: &[&str]) -> Output {
    audit_with_state(ca, "auditor-state", args)
}

fn audit_with_state(ca: &Ca, state: &str, args: &[&str]) -> Output {
    Command::new(signet_binary())
        .env("XDG_STATE_HOME", ca.path(state))
        .arg("audit")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_auditor_verifies_the_cas_log_from_a_directory_and_over_http() {
    let ca = Ca::initialised("audit-e2e");
    let key = ca.client_key("k", "ed25519");
    let public = format!("{}.pub", key.display());
    ca.issue_users(&["alice", "bob", "carol"], &key.with_extension("pub"));
    let x509 = ca.ok(&[
        "sign",
        "x509-client",
        "--user",
        "dave",
        "--ttl",
        "1h",
        "--public-key",
        &public,
    ]);
    let x509_file = ca.write("dave.pem", &x509);
    let ssh_cert = ca.sign_user(&key, &["deploy"], "30m");

    let dir = ca.path("export");
    let vkey = ca.ok(&["log", "export", dir.to_str().unwrap()]);
    let vkey_file = ca.write("log.vkey", &vkey);
    let pem_file = ca.export_to_file("log-key");

    // Offline, from the exported tiles, with the vkey the CA printed.
    let out = audit(
        &ca,
        &[
            "verify",
            "--log",
            dir.to_str().unwrap(),
            "--key",
            vkey_file.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for cert in [&x509_file, &ssh_cert] {
        let out = audit(
            &ca,
            &[
                "prove",
                "--log",
                dir.to_str().unwrap(),
                "--key",
                vkey_file.to_str().unwrap(),
                "--cert",
                cert.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}: {}",
            cert.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Online, from a mirror of the published tiles, with the PEM key from
    // `export log-key` and a pinned origin.
    let export = ca.path("mirror-export");
    ca.ok(&["log", "export", export.to_str().unwrap()]);
    let daemon = common::static_mirror(&export);
    let port = daemon.port;
    let url = format!("http://127.0.0.1:{port}/");
    let out = audit(
        &ca,
        &[
            "verify",
            "--log",
            &url,
            "--key",
            pem_file.to_str().unwrap(),
            "--origin",
            "ca.example.com/signet-log",
            "--quiet",
            "--json",
        ],
    );
    drop(daemon);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    // Four key-generation entries and the root certificate from `init`,
    // then five certificates.
    assert_eq!(summary["size"], 10, "{summary}");
    assert_eq!(summary["certificates"], 6, "{summary}");
    assert_eq!(summary["kinds"]["admin-sign"], 1, "{summary}");

    // A rewritten entry in the export is caught and named.
    let bundle_path = dir.join("tile/entries/000.p/10");
    let mut bundle = std::fs::read(&bundle_path).unwrap();
    let pos = bundle.iter().rposition(|&b| b == b'b').unwrap();
    bundle[pos] = b'c';
    std::fs::write(&bundle_path, bundle).unwrap();
    let out = audit(
        &ca,
        &[
            "verify",
            "--log",
            dir.to_str().unwrap(),
            "--key",
            vkey_file.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(!out.status.success(), "a rewritten log verified");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entr") || err.contains("tile"), "{err}");

    // Online from the CA itself, over HTTPS trusting only its own root: the
    // daemon logged its TLS certificate at start, so the auditor sees one
    // more admin-sign entry, checked like every other.
    let root = ca.write("x509-root.pem", &ca.ok(&["export", "x509-ca"]));
    let daemon = ca.serve();
    // (A state of its own: the auditor above remembered the tampered copy.)
    let out = audit_with_state(
        &ca,
        "auditor-online",
        &[
            "verify",
            "--log",
            &format!("https://localhost:{}/log/", daemon.port),
            "--tls-ca",
            root.to_str().unwrap(),
            "--key",
            pem_file.to_str().unwrap(),
            "--origin",
            "ca.example.com/signet-log",
            "--quiet",
            "--json",
        ],
    );
    drop(daemon);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["size"], 11, "{summary}");
    assert_eq!(summary["kinds"]["admin-sign"], 2, "{summary}");
}

/// Runs `signet audit` and returns (exit code, stdout, stderr).
fn audit_out(ca: &Ca, state: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = audit_with_state(ca, state, args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_auditor_holds_the_log_to_the_witness_policy_and_checks_the_certificates_proofs() {
    use witnesskit::{log_vkey, policy_toml, set_ca_witnesses, WitnessProcess, ORIGIN};
    let ca = Ca::initialised("audit-witnesses");
    let vkey = log_vkey(&ca);
    let a = WitnessProcess::start("witness-a.example", ORIGIN, &vkey);
    let b = WitnessProcess::start("witness-b.example", ORIGIN, &vkey);
    // A witness of the same log that never cosigns for this CA.
    let c = WitnessProcess::start("witness-c.example", ORIGIN, &vkey);
    set_ca_witnesses(&ca, &policy_toml(2, &[&a, &b]));
    let key = ca.client_key("k", "ed25519");
    let public = format!("{}.pub", key.display());
    let ssh_cert = ca.sign_user(&key, &["deploy"], "30m");
    let x509 = ca.ok(&[
        "sign",
        "x509-client",
        "--user",
        "dave",
        "--ttl",
        "1h",
        "--public-key",
        &public,
    ]);
    let x509_file = ca.write("dave.pem", &x509);
    let dir = ca.path("export");
    ca.ok(&["log", "export", dir.to_str().unwrap()]);
    let dir = dir.to_str().unwrap();
    let vkey_file = ca.write("log.vkey", &vkey);
    let vkey_file = vkey_file.to_str().unwrap();

    // The CA's [witnesses] table as it is (with urls), and a node's
    // configuration file (log key and policy).
    let ca_policy = ca.write("ca-policy.toml", &policy_toml(2, &[&a, &b]));
    let node_policy = ca.write(
        "node.toml",
        &format!("log_key = \"{vkey}\"\n{}", policy_toml(1, &[&a, &b])),
    );
    for (i, policy) in [&ca_policy, &node_policy].iter().enumerate() {
        let (code, stdout, stderr) = audit_out(
            &ca,
            &format!("state-{i}"),
            &[
                "verify",
                "--log",
                dir,
                "--key",
                vkey_file,
                "--witnesses",
                policy.to_str().unwrap(),
                "--quiet",
            ],
        );
        assert_eq!(code, Some(0), "{stderr}");
        assert!(
            stdout.contains("cosigned by witness-a.example, witness-b.example"),
            "{stdout}"
        );
    }
    let (code, stdout, stderr) = audit_out(
        &ca,
        "state-cp",
        &[
            "checkpoint",
            "--log",
            dir,
            "--key",
            vkey_file,
            "--witnesses",
            ca_policy.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["witnesses"]["threshold"], 2, "{v}");
    assert_eq!(
        v["witnesses"]["cosigned_by"],
        serde_json::json!(["witness-a.example", "witness-b.example"]),
        "{v}"
    );

    // A policy this checkpoint does not meet: refused (exit 1), naming the
    // witness that is missing, by verify and checkpoint alike.
    let unmet = ca.write("unmet.toml", &policy_toml(2, &[&a, &c]));
    for sub in ["verify", "checkpoint"] {
        let (code, _, stderr) = audit_out(
            &ca,
            "state-unmet",
            &[
                sub,
                "--log",
                dir,
                "--key",
                vkey_file,
                "--witnesses",
                unmet.to_str().unwrap(),
                "--quiet",
            ],
        );
        assert_eq!(code, Some(1), "{sub}: {stderr}");
        assert!(
            stderr.contains("witness policy (2 of 2) is not met"),
            "{stderr}"
        );
        assert!(stderr.contains("witness-c.example"), "{stderr}");
    }
    // The checkpoint with its cosignatures cut off fails any policy.
    let stripped_dir = ca.path("stripped");
    common_copy(std::path::Path::new(dir), &stripped_dir);
    let note = std::fs::read_to_string(stripped_dir.join("checkpoint")).unwrap();
    let kept: Vec<&str> = note
        .lines()
        .filter(|l| !l.starts_with("\u{2014} witness-"))
        .collect();
    std::fs::write(stripped_dir.join("checkpoint"), kept.join("\n") + "\n").unwrap();
    let (code, _, stderr) = audit_out(
        &ca,
        "state-stripped",
        &[
            "checkpoint",
            "--log",
            stripped_dir.to_str().unwrap(),
            "--key",
            vkey_file,
            "--witnesses",
            node_policy.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("witness-a.example, witness-b.example"),
        "{stderr}"
    );
    // ... and passes without one (the log key's signature is still there).
    let (code, _, stderr) = audit_out(
        &ca,
        "state-stripped",
        &[
            "checkpoint",
            "--log",
            stripped_dir.to_str().unwrap(),
            "--key",
            vkey_file,
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");

    // A node configuration for another log key: bad input (exit 2).
    let other = Ca::initialised("audit-witnesses-other");
    let other_vkey = log_vkey(&other);
    let wrong_node = ca.write(
        "wrong-node.toml",
        &format!("log_key = \"{other_vkey}\"\n{}", policy_toml(1, &[&a, &b])),
    );
    let (code, _, stderr) = audit_out(
        &ca,
        "state-wrong",
        &[
            "verify",
            "--log",
            dir,
            "--key",
            vkey_file,
            "--witnesses",
            wrong_node.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&other_vkey), "{stderr}");
    let bad = ca.write("bad.toml", "[witnesses]\nthreshold = 3\n");
    let (code, _, stderr) = audit_out(
        &ca,
        "state-bad",
        &[
            "verify",
            "--log",
            dir,
            "--key",
            vkey_file,
            "--witnesses",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--witnesses"), "{stderr}");

    // prove: the final certificates are found through their
    // precertificate entries, and the proofs they carry verify against
    // the log key and the policy, for this entry, in this log's history.
    for cert in [&ssh_cert, &x509_file] {
        let (code, stdout, stderr) = audit_out(
            &ca,
            "state-prove",
            &[
                "prove",
                "--log",
                dir,
                "--key",
                vkey_file,
                "--witnesses",
                ca_policy.to_str().unwrap(),
                "--cert",
                cert.to_str().unwrap(),
                "--json",
                "--quiet",
            ],
        );
        assert_eq!(code, Some(0), "{}: {stderr}", cert.display());
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(v["precertificate_sha256"].is_string(), "{v}");
        assert_eq!(v["entry"]["certificate"]["form"], "precertificate", "{v}");
        assert_eq!(
            v["entry"]["certificate"]["sha256"], v["precertificate_sha256"],
            "{v}"
        );
        let proof = &v["certificate_proof"];
        assert_eq!(proof["index"], v["index"], "{v}");
        assert_eq!(proof["consistent_with_log"], true, "{v}");
        assert_eq!(
            proof["cosigned_by"],
            serde_json::json!(["witness-a.example", "witness-b.example"]),
            "{v}"
        );
        // In text, the same, said in words.
        let (code, stdout, stderr) = audit_out(
            &ca,
            "state-prove",
            &[
                "prove",
                "--log",
                dir,
                "--key",
                vkey_file,
                "--cert",
                cert.to_str().unwrap(),
                "--quiet",
            ],
        );
        assert_eq!(code, Some(0), "{stderr}");
        assert!(
            stdout.contains("the certificate's own proof: verified"),
            "{stdout}"
        );
    }
}

/// Copies a directory tree (`cp -a`).
fn common_copy(from: &std::path::Path, to: &std::path::Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}
