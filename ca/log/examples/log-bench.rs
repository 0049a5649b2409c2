//! `log-bench`: how fast the log's Merkle code runs on this machine, next to
//! how fast the machine hashes.
//!
//! ```sh
//! cargo run --release -p signet-log --example log-bench -- [entries]
//! ```
//!
//! Prints one `key=value` line per measurement. Every rate comes with
//! `ratio_to_sha256`, the rate divided by raw SHA-256 compressions per second
//! measured in the same run, so numbers from different machines compare.
//! Default size: 1,000,000 entries, all in memory (about 100 MB).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may abort on error

use std::collections::BTreeMap;
use std::time::Instant;

use sha2::{Digest, Sha256};
use signet_log::merkle::{inclusion_proof, leaf_hash, root, verify_inclusion, CompactRange, Hash};
use signet_log::tiles::{HashTile, TileBuilder, TileKind, TilePath, TileSet};

fn report(name: &str, n: u64, secs: f64, unit: &str, baseline: Option<f64>) -> f64 {
    let rate = n as f64 / secs;
    let ratio = baseline.map_or(String::new(), |b| {
        format!(" ratio_to_sha256={:.4}", rate / b)
    });
    println!("bench={name} n={n} seconds={secs:.4} rate={rate:.0} unit={unit}/s{ratio}");
    rate
}

/// A small deterministic generator, so runs pick the same indices.
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 11
}

fn main() {
    let entries: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |s| s.parse().expect("entries"));
    println!(
        "bench=config entries={entries} profile={}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    // Baseline: SHA-256 of 65-byte inputs, the size of a node hash input.
    let n = 2_000_000u64;
    let mut buf = [0u8; 65];
    let t = Instant::now();
    for i in 0..n {
        buf[..8].copy_from_slice(&i.to_le_bytes());
        let d = Sha256::digest(buf);
        buf[1..33].copy_from_slice(&d);
    }
    let sha = report("sha256_65b", n, t.elapsed().as_secs_f64(), "hashes", None);

    // Append: leaf hash, compact range, tile building (what the CA does per entry).
    let t = Instant::now();
    let mut range = CompactRange::new();
    let mut builder = TileBuilder::new();
    let mut tiles: BTreeMap<TilePath, HashTile> = BTreeMap::new();
    let mut done = Vec::with_capacity(64);
    for i in 0..entries {
        let leaf = leaf_hash(&i.to_le_bytes());
        done.clear();
        range.append(leaf, |node, h| done.push((node, *h))).unwrap();
        for (node, h) in &done {
            if let Some((p, tile)) = builder.observe(*node, h).unwrap() {
                tiles.insert(p, tile);
            }
        }
    }
    for (p, tile) in builder.partial_tiles().unwrap() {
        tiles.insert(p, tile);
    }
    report(
        "append_with_tiles",
        entries,
        t.elapsed().as_secs_f64(),
        "entries",
        Some(sha),
    );
    let want_root = range.root();

    // Loading every tile into a tile set (hashes each tile's inner levels once).
    let t = Instant::now();
    let mut set = TileSet::new(entries);
    for (p, tile) in &tiles {
        set.insert(*p, tile.clone()).unwrap();
    }
    report(
        "tileset_load",
        tiles.len() as u64,
        t.elapsed().as_secs_f64(),
        "tiles",
        Some(sha),
    );

    // Root from the tile set.
    let t = Instant::now();
    let reps = 1_000u64;
    for _ in 0..reps {
        assert_eq!(root(&set, entries).unwrap(), want_root);
    }
    report(
        "root_from_tiles",
        reps,
        t.elapsed().as_secs_f64(),
        "roots",
        Some(sha),
    );

    // Inclusion proofs from the tile set, and their verification.
    let samples = 10_000u64;
    let mut state = 42u64;
    let indices: Vec<u64> = (0..samples)
        .map(|_| next(&mut state) % entries.max(1))
        .collect();
    let t = Instant::now();
    let proofs: Vec<Vec<Hash>> = indices
        .iter()
        .map(|&i| inclusion_proof(&set, i, entries).unwrap())
        .collect();
    report(
        "inclusion_proof_from_tiles",
        samples,
        t.elapsed().as_secs_f64(),
        "proofs",
        Some(sha),
    );
    let t = Instant::now();
    for (i, p) in indices.iter().zip(&proofs) {
        verify_inclusion(&leaf_hash(&i.to_le_bytes()), *i, entries, p, &want_root).unwrap();
    }
    report(
        "inclusion_verify",
        samples,
        t.elapsed().as_secs_f64(),
        "proofs",
        Some(sha),
    );

    // Full-tree recomputation from the level-0 tiles: what an auditor does to
    // check a mirror of the whole log against a checkpoint.
    let t = Instant::now();
    let mut again = CompactRange::new();
    for (p, tile) in &tiles {
        if p.kind() == (TileKind::Hash { level: 0 }) && (p.is_full() || p.index() == entries / 256)
        {
            for h in tile.hashes() {
                again.append(*h, |_, _| ()).unwrap();
            }
        }
    }
    assert_eq!(again.size(), entries);
    assert_eq!(again.root(), want_root);
    report(
        "recompute_from_level0_tiles",
        entries,
        t.elapsed().as_secs_f64(),
        "entries",
        Some(sha),
    );
}
