//! `signet-ca serve`: the log over HTTP as C2SP tiles and JSON proofs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Ca;

/// A minimal HTTP/1.1 GET; returns (status, body).
fn get(port: u16, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

#[test]
fn serves_checkpoint_tiles_and_proofs_and_rejects_bad_requests() {
    let ca = Ca::initialised("serve");
    let key = ca.client_key("k", "ed25519");
    ca.issue_users(&["a", "b", "c"], &key.with_extension("pub"));
    let daemon = ca.serve();
    let port = daemon.port;

    let (status, body) = get(port, "/log/checkpoint");
    assert_eq!(status, 200);
    let note = String::from_utf8(body).unwrap();
    assert!(note.starts_with("ca.example.com/signet-log\n8\n"), "{note}");

    let checkpoint = signet_log::checkpoint::Checkpoint::parse(
        signet_log::note::Note::parse(note.as_bytes())
            .unwrap()
            .text(),
    )
    .unwrap();
    let (status, bundle) = get(port, "/log/tile/entries/000.p/8");
    assert_eq!(status, 200);
    let bundle = signet_log::tiles::EntryBundle::parse(&bundle, 8).unwrap();
    assert_eq!(bundle.entries().len(), 8);
    let leaves = bundle.leaf_hashes();
    assert_eq!(
        signet_log::merkle::root_from_leaf_hashes(&leaves),
        *checkpoint.root(),
        "the served entries are the checkpoint's"
    );
    let (status, tile) = get(port, "/log/tile/0/000.p/8");
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
    for index in 0..8u64 {
        let (status, body) = get(port, &format!("/v1/log/proof/inclusion?index={index}"));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["size"], 8);
        signet_log::merkle::verify_inclusion(
            &leaves[index as usize],
            index,
            8,
            &decode(&json, "inclusion_proof"),
            checkpoint.root(),
        )
        .unwrap_or_else(|e| panic!("inclusion proof for {index}: {e}"));
    }
    for old in 1..=8u64 {
        let (status, body) = get(port, &format!("/v1/log/proof/consistency?old={old}&new=8"));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let old_root = signet_log::merkle::root_from_leaf_hashes(&leaves[..old as usize]);
        signet_log::merkle::verify_consistency(
            old,
            8,
            &decode(&json, "consistency_proof"),
            &old_root,
            checkpoint.root(),
        )
        .unwrap_or_else(|e| panic!("consistency proof {old}→8: {e}"));
    }
    // A proof for another entry does not verify: the check above can fail.
    let (_, body) = get(port, "/v1/log/proof/inclusion?index=1");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(signet_log::merkle::verify_inclusion(
        &leaves[2],
        1,
        8,
        &decode(&json, "inclusion_proof"),
        checkpoint.root()
    )
    .is_err());

    for (path, expected) in [
        ("/log/tile/0/000.p/9", 404), // beyond the tree
        ("/log/tile/0/x.p/1", 404),   // not a tile path
        ("/v1/log/proof/inclusion?index=7&size=7", 400),
        ("/v1/log/proof/inclusion?index=8", 400), // beyond the size
        ("/v1/log/proof/consistency?old=0&new=8", 400),
        ("/v1/log/proof/consistency?old=0", 400),
        ("/v1/log/proof/consistency?old=9", 400),
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
            assert!(
                json["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{path}: no reason"
            );
        }
    }
}
