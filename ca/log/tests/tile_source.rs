//! Serving tiles from a store: `tile_paths` names exactly the tiles the
//! builder makes, and `read_tile` gives the same bytes, refuses tiles the
//! tree size does not have, and names what a store lost.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use signet_log::merkle::{leaf_hash, root, CompactRange, Hash, HashStore, MemoryHashStore};
use signet_log::tiles::{
    read_tile, tile_paths, tiles_for_root, EntryBundle, HashTile, ReadTileError, TileBuilder,
    TileKind, TilePath, TileSet, TileSource,
};
use signet_log::MerkleError;

/// The store's own failure, to see it passed through.
#[derive(Debug, thiserror::Error)]
#[error("disk on fire")]
struct DiskError;

/// A store of entries and subtree hashes, as the CA keeps them, that can
/// lose records or fail, and remembers what it was asked.
#[derive(Default)]
struct MemSource {
    entries: Vec<Vec<u8>>,
    nodes: MemoryHashStore,
    lost_entries: BTreeSet<u64>,
    lost_nodes: BTreeSet<(u32, u64)>,
    failing: bool,
    asked: RefCell<usize>,
}

impl MemSource {
    fn with_entries(n: u64) -> Self {
        let mut s = Self::default();
        for i in 0..n {
            s.push(format!("entry {i}").into_bytes());
        }
        s
    }

    fn push(&mut self, entry: Vec<u8>) {
        self.nodes.push(leaf_hash(&entry));
        self.entries.push(entry);
    }
}

impl TileSource for MemSource {
    type Error = DiskError;

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, DiskError> {
        *self.asked.borrow_mut() += 1;
        if self.failing {
            return Err(DiskError);
        }
        if self.lost_entries.contains(&index) {
            return Ok(None);
        }
        Ok(usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
            .cloned())
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, DiskError> {
        *self.asked.borrow_mut() += 1;
        if self.failing {
            return Err(DiskError);
        }
        if self.lost_nodes.contains(&(level, index)) {
            return Ok(None);
        }
        match self.nodes.subtree_hash(level, index) {
            Ok(h) => Ok(Some(h)),
            Err(signet_log::Error::Merkle(MerkleError::MissingHash { .. })) => Ok(None),
            Err(e) => panic!("{e}"),
        }
    }
}

/// The hash tiles of a log of `entries`, as the tile builder makes them
/// while appending: full tiles as they fill, then the partial ones.
fn built_tiles(entries: &[Vec<u8>]) -> BTreeMap<TilePath, HashTile> {
    let mut range = CompactRange::new();
    let mut builder = TileBuilder::new();
    let mut tiles = BTreeMap::new();
    for e in entries {
        let mut done = Vec::new();
        range
            .append(leaf_hash(e), |node, hash| done.push((node, *hash)))
            .unwrap();
        for (node, hash) in done {
            if let Some((path, tile)) = builder.observe(node, &hash).unwrap() {
                tiles.insert(path, tile);
            }
        }
    }
    tiles.extend(builder.partial_tiles().unwrap());
    tiles
}

fn names(paths: &[TilePath]) -> Vec<String> {
    paths.iter().map(ToString::to_string).collect()
}

#[test]
fn every_tile_of_a_tree_is_listed_and_served_as_the_builder_makes_it() {
    let source = MemSource::with_entries(70_000);
    for size in [
        1u64, 2, 255, 256, 257, 300, 511, 512, 65_535, 65_536, 70_000,
    ] {
        let entries = &source.entries[..size as usize];
        let built = built_tiles(entries);
        let paths = tile_paths(size);
        assert_eq!(
            paths.iter().collect::<BTreeSet<_>>().len(),
            paths.len(),
            "{size}: a path listed twice"
        );

        let hash_paths: BTreeSet<TilePath> = paths
            .iter()
            .filter(|p| p.kind() != TileKind::Entries)
            .copied()
            .collect();
        assert_eq!(
            hash_paths,
            built.keys().copied().collect::<BTreeSet<_>>(),
            "{size}: hash tiles listed differ from the tiles built"
        );

        let mut level0 = BTreeMap::new();
        let mut served_entries = Vec::new();
        for path in &paths {
            let bytes = read_tile(&source, path, size)
                .unwrap()
                .unwrap_or_else(|| panic!("{size}: listed tile {path} not served"));
            match path.kind() {
                TileKind::Entries => {
                    let bundle = EntryBundle::parse(&bytes, path.width()).unwrap();
                    assert_eq!(bundle.width(), path.width());
                    served_entries.extend(bundle.entries().iter().cloned());
                    level0.insert(path.index(), bundle);
                }
                TileKind::Hash { .. } => {
                    assert_eq!(bytes, built[path].to_bytes(), "{size}: {path}");
                }
            }
        }
        assert_eq!(served_entries, entries, "{size}: entries served");
        // Each bundle hashes to its level-0 tile, as an auditor checks.
        for (index, bundle) in level0 {
            let tile = built
                .iter()
                .find(|(p, _)| p.kind() == (TileKind::Hash { level: 0 }) && p.index() == index)
                .map(|(_, t)| t)
                .unwrap();
            assert!(bundle.matches_tile(tile), "{size}: bundle {index}");
        }

        // The root computed from served tiles is the tree's.
        let mut set = TileSet::new(size);
        for path in tiles_for_root(size).unwrap() {
            set.insert_bytes(path, &read_tile(&source, &path, size).unwrap().unwrap())
                .unwrap();
        }
        assert_eq!(
            root(&set, size).unwrap(),
            root(&source.nodes, size).unwrap(),
            "{size}"
        );
    }
}

#[test]
fn tile_paths_follow_the_spec_example() {
    // c2sp.org/tlog-tiles: a tree of 70,000 entries has 273 full level-0
    // tiles and a partial of width 112, one full level-1 tile and a partial
    // of width 17, and a level-2 partial of width 1; entry bundles like level 0.
    let paths = tile_paths(70_000);
    let count = |kind: TileKind, full: bool| {
        paths
            .iter()
            .filter(|p| p.kind() == kind && p.is_full() == full)
            .count()
    };
    assert_eq!(count(TileKind::Entries, true), 273);
    assert_eq!(count(TileKind::Hash { level: 0 }, true), 273);
    assert_eq!(count(TileKind::Hash { level: 1 }, true), 1);
    assert_eq!(paths.len(), 273 * 2 + 1 + 4);
    let partial: Vec<TilePath> = paths.iter().filter(|p| !p.is_full()).copied().collect();
    assert_eq!(
        names(&partial),
        [
            "tile/entries/273.p/112",
            "tile/0/273.p/112",
            "tile/1/001.p/17",
            "tile/2/000.p/1"
        ]
    );
    assert!(tile_paths(0).is_empty());
    // A tree of 2^16 entries: full tiles only, but for the root's own tile.
    let partial: Vec<TilePath> = tile_paths(65_536)
        .into_iter()
        .filter(|p| !p.is_full())
        .collect();
    assert_eq!(names(&partial), ["tile/2/000.p/1"]);
}

#[test]
fn tiles_beyond_the_tree_size_are_not_served() {
    // The store already holds 1000 entries; the checkpoint covers 300.
    let source = MemSource::with_entries(1_000);
    let size = 300;
    let tile = |p: TilePath| read_tile(&source, &p, size).unwrap();
    let hash = |l, i, w| TilePath::hash(l, i, w).unwrap();
    let bundle = |i, w| TilePath::entries(i, w).unwrap();

    // What the tree of 300 has: the older sizes' narrower partials too.
    let built = built_tiles(&source.entries[..300]);
    assert_eq!(
        tile(hash(0, 1, 44)).unwrap(),
        built[&hash(0, 1, 44)].to_bytes()
    );
    assert_eq!(
        tile(hash(0, 1, 10)).unwrap(),
        built[&hash(0, 1, 44)].to_bytes()[..10 * 32]
    );
    assert!(tile(hash(1, 0, 1)).is_some());
    assert!(tile(bundle(1, 44)).is_some());

    // What it does not: entries and hashes past 300, though the store has them.
    *source.asked.borrow_mut() = 0;
    for p in [
        hash(0, 1, 45),
        hash(0, 1, 256),
        hash(0, 2, 1),
        hash(1, 0, 2),
        hash(2, 0, 1),
        hash(63, 0, 1),
        hash(63, u64::MAX, 256),
        hash(7, u64::MAX, 1),
        bundle(1, 45),
        bundle(1, 256),
        bundle(2, 1),
        bundle(u64::MAX, 256),
        bundle(u64::MAX / 256, 1),
    ] {
        assert_eq!(tile(p), None, "{p} served at size {size}");
    }
    assert_eq!(
        *source.asked.borrow(),
        0,
        "the store was read for tiles it need not have"
    );

    // At the largest tree size, huge indices stay in range without overflow.
    assert_eq!(
        read_tile(&source, &bundle(u64::MAX / 256, 256), u64::MAX).unwrap(),
        None,
        "a bundle past the largest index"
    );
    let empty = MemSource::default();
    assert!(matches!(
        read_tile(&empty, &bundle(u64::MAX / 256, 255), u64::MAX),
        Err(ReadTileError::MissingEntry { index }) if index == u64::MAX - 255
    ));
    assert_eq!(read_tile(&empty, &hash(0, 0, 1), 0).unwrap(), None);
}

#[test]
fn lost_records_are_named() {
    let mut source = MemSource::with_entries(600);
    source.lost_entries.insert(300);
    source.lost_nodes.insert((8, 1));
    source.lost_nodes.insert((0, 599));

    let err = read_tile(&source, &TilePath::entries(1, 256).unwrap(), 600).unwrap_err();
    assert!(
        matches!(err, ReadTileError::MissingEntry { index: 300 }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "entry 300 is missing from the store");

    let err = read_tile(&source, &TilePath::hash(1, 0, 2).unwrap(), 600).unwrap_err();
    assert!(
        matches!(err, ReadTileError::MissingHash { level: 8, index: 1 }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "hash (level 8, index 1) is missing from the store"
    );

    let err = read_tile(&source, &TilePath::hash(0, 2, 88).unwrap(), 600).unwrap_err();
    assert!(
        matches!(
            err,
            ReadTileError::MissingHash {
                level: 0,
                index: 599
            }
        ),
        "{err:?}"
    );
    // Tiles that do not touch the lost records are still served.
    assert!(read_tile(&source, &TilePath::entries(0, 256).unwrap(), 600)
        .unwrap()
        .is_some());
    assert!(read_tile(&source, &TilePath::hash(1, 0, 1).unwrap(), 600)
        .unwrap()
        .is_some());
}

#[test]
fn store_failures_and_oversized_entries_are_errors() {
    let mut source = MemSource::with_entries(10);
    source.failing = true;
    for path in tile_paths(10) {
        let err = read_tile(&source, &path, 10).unwrap_err();
        assert!(
            matches!(err, ReadTileError::Source(DiskError)),
            "{path}: {err:?}"
        );
        assert_eq!(err.to_string(), "disk on fire");
    }

    let mut source = MemSource::with_entries(3);
    source.push(vec![b'x'; 65_536]);
    let err = read_tile(&source, &TilePath::entries(0, 4).unwrap(), 4).unwrap_err();
    assert!(
        matches!(
            err,
            ReadTileError::EntryTooLarge {
                index: 3,
                len: 65_536
            }
        ),
        "{err:?}"
    );
    // The largest entry a bundle can carry is served.
    let mut source = MemSource::with_entries(0);
    source.push(vec![b'x'; 65_535]);
    let bytes = read_tile(&source, &TilePath::entries(0, 1).unwrap(), 1)
        .unwrap()
        .unwrap();
    assert_eq!(
        EntryBundle::parse(&bytes, 1).unwrap().entries()[0].len(),
        65_535
    );
}
