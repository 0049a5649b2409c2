//! Tiles: building them while appending, reading proofs back out of them,
//! and refusing malformed tile bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use std::collections::BTreeMap;

use signet_log::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_inclusion, CompactRange, Hash,
    MemoryHashStore,
};
use signet_log::tiles::{
    tiles_for_consistency, tiles_for_inclusion, tiles_for_root, EntryBundle, HashTile, TileBuilder,
    TileKind, TilePath, TileSet,
};
use signet_log::{Error, TileError};

/// A log of `n` leaves: the reference store, and the tiles a CA would have
/// written (full tiles as they filled, partial tiles at the end).
fn build(n: u64) -> (MemoryHashStore, BTreeMap<TilePath, HashTile>) {
    let mut store = MemoryHashStore::new();
    let mut range = CompactRange::new();
    let mut builder = TileBuilder::new();
    let mut tiles = BTreeMap::new();
    for i in 0..n {
        let leaf = leaf_hash(&i.to_be_bytes());
        store.push(leaf);
        let mut done = Vec::new();
        range
            .append(leaf, |node, hash| done.push((node, *hash)))
            .unwrap();
        for (node, hash) in done {
            if let Some((path, tile)) = builder.observe(node, &hash).unwrap() {
                tiles.insert(path, tile);
            }
        }
    }
    for (path, tile) in builder.partial_tiles().unwrap() {
        tiles.insert(path, tile);
    }
    (store, tiles)
}

fn set_from(
    size: u64,
    tiles: &BTreeMap<TilePath, HashTile>,
    wanted: impl IntoIterator<Item = TilePath>,
) -> TileSet {
    let mut set = TileSet::new(size);
    for p in wanted {
        // Serve the exact tile if stored, else a wider one it is a prefix of
        // (the full tile, or the partial tile of a later tree size).
        let wider = tiles.range(p..).find(|(q, _)| {
            q.kind() == p.kind() && q.index() == p.index() && q.width() >= p.width()
        });
        match wider {
            Some((q, t)) => set.insert_bytes(*q, &t.to_bytes()).unwrap(),
            None => panic!("no tile for {p}"),
        }
    }
    set
}

#[test]
fn spec_example_tile_counts() {
    let (_, tiles) = build(70_000);
    let count = |level: u8, full: bool| {
        tiles
            .keys()
            .filter(|p| p.kind() == TileKind::Hash { level } && p.is_full() == full)
            .count()
    };
    assert_eq!(count(0, true), 273);
    assert_eq!(count(0, false), 1);
    assert_eq!(count(1, true), 1);
    assert_eq!(count(1, false), 1);
    assert_eq!(count(2, false), 1);
    let partial: Vec<String> = tiles
        .keys()
        .filter(|p| !p.is_full())
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        partial,
        vec!["tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1"]
    );
}

#[test]
fn proofs_from_tiles_match_proofs_from_the_full_store() {
    let n = 70_000;
    let (store, tiles) = build(n);
    let want_root = root(&store, n).unwrap();
    let set = set_from(n, &tiles, tiles_for_root(n).unwrap());
    assert_eq!(root(&set, n).unwrap(), want_root);

    for index in [0, 1, 255, 256, 65_535, 65_536, 69_999] {
        let needed = tiles_for_inclusion(index, n).unwrap();
        let set = set_from(n, &tiles, needed);
        let proof = inclusion_proof(&set, index, n).unwrap();
        assert_eq!(proof, inclusion_proof(&store, index, n).unwrap());
        verify_inclusion(
            &leaf_hash(&index.to_be_bytes()),
            index,
            n,
            &proof,
            &want_root,
        )
        .unwrap();
    }

    // Older tree sizes, served from the same (now full) tiles.
    for (old, new) in [
        (1, n),
        (256, 70_000),
        (300, 65_536),
        (65_536, 69_999),
        (12_345, 54_321),
    ] {
        let set = set_from(new, &tiles, tiles_for_consistency(old, new).unwrap());
        assert_eq!(
            consistency_proof(&set, old, new).unwrap(),
            consistency_proof(&store, old, new).unwrap(),
            "{old}->{new}"
        );
    }
}

#[test]
fn missing_tiles_are_reported() {
    let n = 1000;
    let (_, tiles) = build(n);
    let mut needed: Vec<TilePath> = tiles_for_inclusion(5, n).unwrap().into_iter().collect();
    needed.pop();
    let set = set_from(n, &tiles, needed);
    assert!(matches!(
        inclusion_proof(&set, 5, n),
        Err(Error::Tile(TileError::MissingTile(_)))
    ));
}

#[test]
fn resume_builder_from_store() {
    let (store, tiles) = build(1_000);
    let mut b = TileBuilder::resume(&store, 1_000).unwrap();
    let partial: BTreeMap<TilePath, HashTile> = b.partial_tiles().unwrap().into_iter().collect();
    for (p, t) in &partial {
        assert_eq!(tiles.get(p), Some(t), "{p}");
    }
    // Keep appending from the resumed state; the next full tile matches a
    // builder that never stopped.
    let (_, more) = build(1_024);
    let mut range = CompactRange::from_store(&store, 1_000).unwrap();
    let mut emitted = Vec::new();
    for i in 1_000u64..1_024 {
        let mut done = Vec::new();
        range
            .append(leaf_hash(&i.to_be_bytes()), |n, h| done.push((n, *h)))
            .unwrap();
        for (node, hash) in done {
            if let Some(t) = b.observe(node, &hash).unwrap() {
                emitted.push(t);
            }
        }
    }
    assert_eq!(emitted.len(), 1);
    assert_eq!(more.get(&emitted[0].0), Some(&emitted[0].1));
}

#[test]
fn malformed_tile_bytes() {
    let hashes: Vec<Hash> = (0u8..10).map(|i| [i; 32]).collect();
    let t = HashTile::new(hashes).unwrap();
    let bytes = t.to_bytes();
    assert_eq!(HashTile::parse(&bytes, 10).unwrap(), t);
    for (b, w) in [
        (&bytes[..bytes.len() - 1], 10u16),
        (&bytes[..], 9),
        (&bytes[..], 11),
        (&[][..], 1),
        (&bytes[..], 0),
        (&bytes[..], 257),
    ] {
        assert!(
            HashTile::parse(b, w).is_err(),
            "{} bytes as width {w}",
            b.len()
        );
    }
    let oversize = vec![0u8; 32 * 257];
    assert!(HashTile::parse(&oversize, 256).is_err());
    assert!(HashTile::new(vec![]).is_err());
    assert!(HashTile::new(vec![[0; 32]; 257]).is_err());

    let mut set = TileSet::new(10);
    let path = TilePath::hash(0, 0, 10).unwrap();
    assert!(set
        .insert(path, HashTile::new(vec![[0; 32]; 9]).unwrap())
        .is_err());
    assert!(set.insert_bytes(path, &bytes[..31]).is_err());
    assert!(set
        .insert(TilePath::entries(0, 10).unwrap(), t.clone())
        .is_err());

    // Entry bundles: fuzz-style truncations of a valid bundle all fail cleanly.
    let bundle = EntryBundle::new((0..5).map(|i| vec![i; i as usize * 3]).collect()).unwrap();
    let bytes = bundle.to_bytes();
    for cut in 0..bytes.len() {
        assert!(EntryBundle::parse(&bytes[..cut], 5).is_err());
    }
    assert_eq!(EntryBundle::parse(&bytes, 5).unwrap(), bundle);
}

#[test]
fn tiles_for_edge_sizes() {
    assert!(tiles_for_root(0).unwrap().is_empty());
    assert_eq!(tiles_for_root(1).unwrap().len(), 1);
    // A tree of exactly 256 leaves: one full level-0 tile suffices for the root
    // (the partial level-1 tile of width 1 holds the same hash).
    let t: Vec<String> = tiles_for_root(256)
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(t, vec!["tile/1/000.p/1"]);
    assert!(tiles_for_root(u64::MAX).unwrap().len() <= 64);
    assert!(tiles_for_inclusion(u64::MAX - 1, u64::MAX).is_ok());
    assert!(tiles_for_inclusion(5, 5).is_err());
    assert!(tiles_for_consistency(6, 5).is_err());
}

/// The CA's own storage implements `HashStore`; a proof needs few lookups.
#[test]
fn external_hash_store() {
    use signet_log::merkle::HashStore;
    use std::cell::Cell;

    struct Counting<'a> {
        inner: &'a MemoryHashStore,
        lookups: Cell<usize>,
    }
    impl HashStore for Counting<'_> {
        fn subtree_hash(&self, level: u32, index: u64) -> signet_log::Result<Hash> {
            self.lookups.set(self.lookups.get() + 1);
            self.inner.subtree_hash(level, index)
        }
    }
    let (store, _) = build(100_000);
    let counting = Counting {
        inner: &store,
        lookups: Cell::new(0),
    };
    for index in [0, 77_777, 99_999] {
        counting.lookups.set(0);
        let p = inclusion_proof(&counting, index, 100_000).unwrap();
        assert_eq!(p, inclusion_proof(&store, index, 100_000).unwrap());
        // 17 levels: at most one lookup per level per sibling.
        assert!(
            counting.lookups.get() <= 17 * 17,
            "{}",
            counting.lookups.get()
        );
    }
}
