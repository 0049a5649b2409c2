//! End to end with both real binaries: the CA issues, exports and serves its
//! log; the auditor's `signet audit` verifies it, proves a certificate's
//! inclusion, and catches a rewritten log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::Ca;

/// The `signet` binary, built next to `signet-ca` by `cargo nextest run --workspace`.
fn signet_binary() -> PathBuf {
    let ca = PathBuf::from(env!("CARGO_BIN_EXE_signet-ca"));
    let path = ca.with_file_name("signet");
    assert!(
        path.exists(),
        "{} is missing: build the workspace (`cargo build -p signet`; deploy/test.sh does)",
        path.display()
    );
    path
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
