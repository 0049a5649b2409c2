//! `signet-ca serve`: the log over HTTPS as C2SP tiles and JSON proofs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Ca;

/// A GET over HTTPS trusting only the CA's own X.509 root; returns
/// (status, body).
fn get(root_pem: &str, port: u16, path: &str) -> (u16, Vec<u8>) {
    let (_, der_bytes) = der::pem::decode_vec(root_pem.as_bytes()).unwrap();
    let root = ureq::tls::Certificate::from_der(&der_bytes).to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
            root,
        ])))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent
        .get(&format!("https://localhost:{port}{path}"))
        .call()
        .unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().unwrap();
    (status, body)
}

#[test]
fn serves_checkpoint_tiles_and_proofs_and_rejects_bad_requests() {
    let ca = Ca::initialised("serve");
    let key = ca.client_key("k", "ed25519");
    ca.issue_users(&["a", "b", "c"], &key.with_extension("pub"));
    let daemon = ca.serve();
    let port = daemon.port;
    let root = ca.ok(&["export", "x509-ca"]);
    let get = |port: u16, path: &str| get(&root, port, path);

    let (status, body) = get(port, "/log/checkpoint");
    assert_eq!(status, 200);
    let note = String::from_utf8(body).unwrap();
    // Eight entries (the ceremony and three certificates), and the
    // daemon's own TLS certificate logged at start.
    assert!(note.starts_with("ca.example.com/signet-log\n9\n"), "{note}");

    let checkpoint = signet_log::checkpoint::Checkpoint::parse(
        signet_log::note::Note::parse(note.as_bytes())
            .unwrap()
            .text(),
    )
    .unwrap();
    let (status, bundle) = get(port, "/log/tile/entries/000.p/9");
    assert_eq!(status, 200);
    let bundle = signet_log::tiles::EntryBundle::parse(&bundle, 9).unwrap();
    assert_eq!(bundle.entries().len(), 9);
    let leaves = bundle.leaf_hashes();
    assert_eq!(
        signet_log::merkle::root_from_leaf_hashes(&leaves),
        *checkpoint.root(),
        "the served entries are the checkpoint's"
    );
    let (status, tile) = get(port, "/log/tile/0/000.p/9");
    assert_eq!(status, 200);
    assert_eq!(tile, leaves.concat(), "level-0 tile = the leaf hashes");

    // The proofs the server hands out verify against what it signed.
    let decode = |json: &serde_json::Value, field: &str| -> Vec<[u8; 32]> {
        use base64::Engine;
        json[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                base64::engine::general_purpose::STANDARD
                    .decode(h.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap()
            })
            .collect()
    };
    for index in 0..9u64 {
        let (status, body) = get(port, &format!("/v1/log/proof/inclusion?index={index}"));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["size"], 9);
        signet_log::merkle::verify_inclusion(
            &leaves[index as usize],
            index,
            9,
            &decode(&json, "inclusion_proof"),
            checkpoint.root(),
        )
        .unwrap_or_else(|e| panic!("inclusion proof for {index}: {e}"));
    }
    for old in 1..=9u64 {
        let (status, body) = get(port, &format!("/v1/log/proof/consistency?old={old}&new=9"));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let old_root = signet_log::merkle::root_from_leaf_hashes(&leaves[..old as usize]);
        signet_log::merkle::verify_consistency(
            old,
            9,
            &decode(&json, "consistency_proof"),
            &old_root,
            checkpoint.root(),
        )
        .unwrap_or_else(|e| panic!("consistency proof {old}→9: {e}"));
    }
    // A proof for another entry does not verify: the check above can fail.
    let (_, body) = get(port, "/v1/log/proof/inclusion?index=1");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(signet_log::merkle::verify_inclusion(
        &leaves[2],
        1,
        9,
        &decode(&json, "inclusion_proof"),
        checkpoint.root()
    )
    .is_err());

    for (path, expected) in [
        ("/log/tile/0/000.p/10", 404), // beyond the tree
        ("/log/tile/0/x.p/1", 404),    // not a tile path
        ("/v1/log/proof/inclusion?index=8&size=8", 400),
        ("/v1/log/proof/inclusion?index=9", 400), // beyond the size
        ("/v1/log/proof/consistency?old=0&new=9", 400),
        ("/v1/log/proof/consistency?old=0", 400),
        ("/v1/log/proof/consistency?old=10", 400),
        ("/v1/log/proof/inclusion?index=0&size=99", 400),
        ("/v1/log/proof/inclusion?index=abc", 400),
        ("/v1/log/proof/inclusion?index=0&bogus=1", 400),
        ("/v1/log/proof/consistency?old=7&new=1", 400),
    ] {
        let (status, body) = get(port, path);
        assert_eq!(
            status,
            expected,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        if expected == 400 {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["code"], "invalid_request", "{path}");
            assert!(
                json["message"].as_str().is_some_and(|e| !e.is_empty()),
                "{path}: no reason"
            );
        }
    }
}
