//! Published RFC 6962/9162 vectors: reference tree hashes and the
//! transparency-dev/merkle proof probes (see tests/vectors/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use signet_log::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, root_from_leaf_hashes, verify_consistency,
    verify_inclusion, Hash, HashStore, MemoryHashStore,
};

fn hex32(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn reference() -> (Vec<Vec<u8>>, MemoryHashStore, Value) {
    let v: Value =
        serde_json::from_str(&common::read_vector("merkle/rfc6962-reference.json")).unwrap();
    let inputs: Vec<Vec<u8>> = v["leaf_inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| hex::decode(s.as_str().unwrap()).unwrap())
        .collect();
    let leaves: Vec<Hash> = inputs.iter().map(|i| leaf_hash(i)).collect();
    (inputs, MemoryHashStore::from_leaf_hashes(&leaves), v)
}

#[test]
fn reference_leaf_node_and_root_hashes() {
    let (inputs, store, v) = reference();
    for (i, want) in v["leaf_hashes"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            leaf_hash(&inputs[i]),
            hex32(want.as_str().unwrap()),
            "leaf {i}"
        );
    }
    for (level, row) in v["node_hashes"].as_array().unwrap().iter().enumerate() {
        for (index, want) in row.as_array().unwrap().iter().enumerate() {
            let got = store.subtree_hash(level as u32, index as u64).unwrap();
            assert_eq!(got, hex32(want.as_str().unwrap()), "node {level}/{index}");
        }
    }
    let leaves: Vec<Hash> = inputs.iter().map(|i| leaf_hash(i)).collect();
    for (size, want) in v["root_hashes"].as_array().unwrap().iter().enumerate() {
        let want = hex32(want.as_str().unwrap());
        assert_eq!(root(&store, size as u64).unwrap(), want, "root {size}");
        assert_eq!(root_from_leaf_hashes(&leaves[..size]), want, "root {size}");
    }
}

/// Base64 hashes from a probe.
fn hashes(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

/// A probe's hash. Some probes use values that are not 32 bytes ("don't
/// care", or a hash with garbage appended), which our typed API cannot
/// express; they stand in as the SHA-256 of their text, so equal values stay
/// equal and a damaged hash stays different from the real one. An empty value
/// is no hash at all.
fn hash(v: &Value) -> Option<Hash> {
    let s = v.as_str().filter(|s| !s.is_empty())?;
    match STANDARD.decode(s).ok().and_then(|b| Hash::try_from(b).ok()) {
        Some(h) => Some(h),
        None => Some(
            sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), s)).into(),
        ),
    }
}

fn probes(dir: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut stack = vec![common::vector_path(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                out.push((display(&p), v));
            }
        }
    }
    assert!(out.len() > 50, "vectors missing from {dir}");
    out
}

fn display(p: &Path) -> String {
    p.to_string_lossy()
        .rsplit("vectors/")
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn inclusion_probes() {
    let (_, store, _) = reference();
    let mut checked = 0;
    for (name, p) in probes("merkle/inclusion") {
        let want_err = p["wantErr"].as_bool().unwrap();
        let index = p["leafIdx"].as_u64().unwrap();
        let size = p["treeSize"].as_u64().unwrap();
        let result = match (hash(&p["leafHash"]), hash(&p["root"]), hashes(&p["proof"])) {
            (Some(leaf), Some(r), Some(proof)) => {
                verify_inclusion(&leaf, index, size, &proof, &r).is_ok()
            }
            _ => false,
        };
        assert_eq!(result, !want_err, "{name}: {}", p["desc"]);
        if !want_err && name.contains("happy-path") {
            // Our generator produces exactly the published proof.
            let proof = hashes(&p["proof"]).unwrap();
            if size <= 8 && hash(&p["root"]) == root(&store, size).ok() {
                assert_eq!(
                    inclusion_proof(&store, index, size).unwrap(),
                    proof,
                    "{name}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 50);
}

#[test]
fn consistency_probes() {
    let (_, store, _) = reference();
    for (name, p) in probes("merkle/consistency") {
        let want_err = p["wantErr"].as_bool().unwrap();
        let (s1, s2) = (p["size1"].as_u64().unwrap(), p["size2"].as_u64().unwrap());
        let result = match (hash(&p["root1"]), hash(&p["root2"]), hashes(&p["proof"])) {
            (Some(r1), Some(r2), Some(proof)) => {
                verify_consistency(s1, s2, &proof, &r1, &r2).is_ok()
            }
            _ => false,
        };
        assert_eq!(result, !want_err, "{name}: {}", p["desc"]);
        if !want_err && name.contains("happy-path") && s2 <= 8 {
            let proof = hashes(&p["proof"]).unwrap();
            assert_eq!(consistency_proof(&store, s1, s2).unwrap(), proof, "{name}");
        }
    }
}

#[test]
fn every_proof_in_the_reference_tree() {
    let (_, store, _) = reference();
    for size in 1..=8u64 {
        let r = root(&store, size).unwrap();
        for index in 0..size {
            let proof = inclusion_proof(&store, index, size).unwrap();
            let leaf = store.subtree_hash(0, index).unwrap();
            verify_inclusion(&leaf, index, size, &proof, &r).unwrap();
        }
        for old in 1..=size {
            let proof = consistency_proof(&store, old, size).unwrap();
            verify_consistency(old, size, &proof, &root(&store, old).unwrap(), &r).unwrap();
        }
    }
}
