//! The touch flow end to end against a running `signet-ca serve` over
//! HTTPS: roles applied from YAML, an invite, enrollment of a software
//! security key, then certificates after an assertion over the request —
//! checked by the tools a relying party uses (ssh-keygen, openssl) and by
//! the log proof in the response.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod touchkit;

use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use touchkit::{TouchCa, PIN_ONCE, TOUCH_ALWAYS};

#[test]
fn enroll_then_issue_over_https() {
    let mut t = TouchCa::new("touch-e2e");
    // Metrics on a loopback listener of their own.
    let metrics_port = signet_testkit::free_port();
    let config = std::fs::read_to_string(&t.ca.config).unwrap();
    std::fs::write(
        &t.ca.config,
        config.replacen(
            "listen = \"127.0.0.1:8441\"",
            &format!("listen = \"127.0.0.1:8441\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\""),
            1,
        ),
    )
    .unwrap();
    t.serve();

    // Health, checked by curl against the CA's own root (an outside peer).
    let root = t.path("root.pem");
    std::fs::write(&root, &t.root_pem).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&root)
        .arg(t.url("/v1/health"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let health: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(health["ok"], true, "{health}");
    assert_eq!(health["hsm"]["ok"], true);

    // What a client pins at first contact: the log's origin and verifier
    // key (the same vkey `log export` prints) and the X.509 root.
    let (status, ca_info) = t.get("/v1/ca");
    assert_eq!(status, 200, "{ca_info}");
    let ca_info: serde_json::Value = serde_json::from_str(&ca_info).unwrap();
    assert_eq!(ca_info["log"]["origin"], "ca.example.com/signet-log");
    assert_eq!(ca_info["x509_root_pem"], t.root_pem.as_str());
    let vkey = ca_info["log"]["vkey"].as_str().unwrap().to_owned();
    assert!(vkey.starts_with("ca.example.com/signet-log+"), "{vkey}");
    assert_eq!(
        ca_info["ssh_host_ca"].as_str().unwrap(),
        t.ca.ok(&["export", "ssh-host-ca"]).trim()
    );

    // Enroll alice's security key with the invite, through the API.
    let enrolled = t.enroll("alice");
    assert_eq!(enrolled["user"], "alice");
    let shown: serde_json::Value =
        serde_json::from_str(&t.ca.ok(&["users", "show", "alice", "--json"])).unwrap();
    assert_eq!(shown["credentials"].as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown["credentials"][0]["id"], enrolled["credential_id"]);

    // A key generated on a YubiKey with PIN once and touch always.
    let device = t.device(12_345_678);
    let slot = device.slot_key(PIN_ONCE, TOUCH_ALWAYS);
    let (status, body) = t.login("alice", &slot, &["ubuntu", "root"], 3600);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "alice");
    assert_eq!(body["roles"], json!(["dev", "prod"]));
    assert_eq!(body["device"]["serial"], 12_345_678);

    // The SSH certificate, as ssh-keygen reads it.
    let ssh_cert = t.path("alice-cert.pub");
    std::fs::write(&ssh_cert, body["ssh"]["certificate"].as_str().unwrap()).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&ssh_cert)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}");
    assert!(
        listing.contains("ubuntu") && listing.contains("root"),
        "{listing}"
    );
    assert!(
        listing.contains("piv-device@signet serial=12345678 pin-policy=once touch-policy=always")
            || listing.contains("piv-device@signet"),
        "{listing}"
    );
    // Its key is the slot key.
    let key_line =
        ssh_key::Certificate::from_openssh(body["ssh"]["certificate"].as_str().unwrap()).unwrap();
    let slot_ssh = signet_hsm::PublicKey::from_spki_der(&slot.spki)
        .unwrap()
        .to_ssh()
        .unwrap();
    assert_eq!(key_line.public_key(), &slot_ssh);

    // The X.509 certificate, as openssl verifies it against the root.
    let x509 = t.path("alice.pem");
    std::fs::write(&x509, body["x509"]["certificate_pem"].as_str().unwrap()).unwrap();
    let out = Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(&root)
        .arg(&x509)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&x509)
        .output()
        .unwrap();
    let sans = String::from_utf8_lossy(&text.stdout);
    for want in [
        "signet://example.com/user/alice",
        "signet://example.com/role/dev",
        "signet://example.com/device/12345678",
        "signet://example.com/key-policy/pin-once.touch-always",
    ] {
        assert!(sans.contains(want), "{want} missing in {sans}");
    }

    // Each certificate's entry records exactly that certificate, and its
    // inclusion proof verifies against the checkpoint the log key signed.
    let log_key = t.ca.ok(&["export", "log-key"]);
    let (_, spki) = der::pem::decode_vec(log_key.as_bytes()).unwrap();
    let public = signet_hsm::PublicKey::from_spki_der(&spki).unwrap();
    let verifier =
        signet_ca::log_signer::verifier_for(&public, "ca.example.com/signet-log").unwrap();
    let verifiers = signet_log::note::VerifierSet::new(vec![verifier]).unwrap();
    let received = [
        ssh_key::Certificate::from_openssh(body["ssh"]["certificate"].as_str().unwrap())
            .unwrap()
            .to_bytes()
            .unwrap(),
        der::pem::decode_vec(body["x509"]["certificate_pem"].as_str().unwrap().as_bytes())
            .unwrap()
            .1,
    ];
    for (which, cert) in ["ssh", "x509"].into_iter().zip(received) {
        let proof = &body[which]["log"];
        let entry_bytes = STANDARD.decode(proof["entry"].as_str().unwrap()).unwrap();
        let entry = signet_log::entry::Entry::from_bytes(&entry_bytes).unwrap();
        // The entry holds the precertificate: the certificate without the
        // proof it carries.
        assert_eq!(
            entry.certificate.as_ref().unwrap().form,
            signet_log::entry::CertificateForm::Precertificate,
            "{which}"
        );
        signet_log::certificate::certificate_matches_entry(&cert, &entry)
            .unwrap_or_else(|e| panic!("{which}: {e}"));
        assert_eq!(entry.roles, vec!["dev".to_owned(), "prod".to_owned()]);
        let note = signet_log::note::Note::parse(proof["checkpoint"].as_str().unwrap().as_bytes())
            .unwrap();
        let verified = note.verify(&verifiers).unwrap();
        let checkpoint = signet_log::checkpoint::Checkpoint::parse(verified.text()).unwrap();
        let hashes: Vec<[u8; 32]> = proof["inclusion_proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                STANDARD
                    .decode(h.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap()
            })
            .collect();
        signet_log::merkle::verify_inclusion(
            &signet_log::merkle::leaf_hash(&entry_bytes),
            proof["index"].as_u64().unwrap(),
            checkpoint.size(),
            &hashes,
            checkpoint.root(),
        )
        .unwrap();
    }

    // A refusal, to see it counted: a login no role allows.
    let (status, refused) = t.login(
        "bob",
        &device.slot_key(PIN_ONCE, TOUCH_ALWAYS),
        &["root"],
        60,
    );
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "not_allowed");

    // Prometheus metrics, as curl sees them.
    let out = Command::new("curl")
        .args(["-sS", "--fail"])
        .arg(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = String::from_utf8_lossy(&out.stdout);
    for want in [
        "signet_ca_issuances_total{kind=\"ssh-user\",outcome=\"issued\"} 1",
        "signet_ca_issuances_total{kind=\"x509-client\",outcome=\"issued\"} 1",
        "signet_ca_refusals_total{route=\"certs_begin\",reason=\"not_allowed\"} 1",
        "signet_ca_issue_sign_and_log_seconds_count 1",
        "signet_ca_log_size ",
    ] {
        assert!(metrics.contains(want), "{want} missing in:\n{metrics}");
    }

    // The counter moved on and the key was used.
    let shown: serde_json::Value =
        serde_json::from_str(&t.ca.ok(&["users", "show", "alice", "--json"])).unwrap();
    assert!(shown["credentials"][0]["last_used"].is_u64(), "{shown}");
}
