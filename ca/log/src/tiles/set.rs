//! Reading Merkle hashes out of hash tiles, and knowing which tiles to fetch.
//!
//! A subtree at tree level `8·L + r` is the root of `2^r` consecutive hashes
//! in one tile of tile level `L` (never spanning two tiles, because subtrees
//! are aligned). So every hash a proof needs is either stored in a tile or a
//! few hashes away from one.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use super::{HashTile, TileKind, TilePath, TILE_HEIGHT, TILE_WIDTH};
use crate::error::{MerkleError, Result, TileError};
use crate::merkle::{consistency_proof, inclusion_proof, node_hash, root, Hash, HashStore, NodeId};

/// Where a complete subtree's hash lives: the tile (with the width the tree
/// size gives it) and the run of `count` hashes from `offset` whose root it is.
pub fn tile_for_node(node: NodeId, tree_size: u64) -> Result<(TilePath, usize, usize)> {
    let bad = || MerkleError::BadSubtree {
        level: node.level,
        index: node.index,
    };
    let end = node.end_leaf().ok_or_else(bad)?;
    if end > tree_size {
        return Err(bad().into());
    }
    let tile_level = node.level / TILE_HEIGHT;
    let r = node.level % TILE_HEIGHT;
    let base_level = tile_level * TILE_HEIGHT;
    // Position of the subtree's first hash among the hashes of `base_level`.
    // `end` fits in u64, so this does too.
    let first = node.index << r;
    let count = 1usize << r;
    let tile_index = first / u64::from(TILE_WIDTH);
    let offset = (first % u64::from(TILE_WIDTH)) as usize;
    // Hashes at `base_level` in this tree, and how many full tiles they fill.
    let hashes_at_level = tree_size >> base_level;
    let full_tiles = hashes_at_level / u64::from(TILE_WIDTH);
    let width = if tile_index < full_tiles {
        TILE_WIDTH
    } else {
        (hashes_at_level % u64::from(TILE_WIDTH)) as u16
    };
    // tile_level <= 7 because level < 64.
    let path = TilePath::hash(tile_level as u8, tile_index, width)?;
    Ok((path, offset, count))
}

/// The tiles holding the given subtrees, for a tree of `tree_size` leaves.
pub fn tiles_for_nodes(
    nodes: impl IntoIterator<Item = NodeId>,
    tree_size: u64,
) -> Result<BTreeSet<TilePath>> {
    let mut out = BTreeSet::new();
    for n in nodes {
        out.insert(tile_for_node(n, tree_size)?.0);
    }
    Ok(out)
}

/// A hash store that remembers what it was asked for, to learn which tiles a
/// computation needs before fetching them.
#[derive(Default)]
struct Recorder {
    asked: RefCell<Vec<NodeId>>,
}

impl HashStore for Recorder {
    fn subtree_hash(&self, level: u32, index: u64) -> Result<Hash> {
        self.asked.borrow_mut().push(NodeId::new(level, index));
        Ok([0; 32])
    }
}

fn tiles_for(size: u64, run: impl FnOnce(&Recorder) -> Result<()>) -> Result<BTreeSet<TilePath>> {
    let rec = Recorder::default();
    run(&rec)?;
    tiles_for_nodes(rec.asked.into_inner(), size)
}

/// The hash tiles needed to compute the root of a tree of `size` leaves.
pub fn tiles_for_root(size: u64) -> Result<BTreeSet<TilePath>> {
    tiles_for(size, |r| root(r, size).map(|_| ()))
}

/// The hash tiles needed to compute the inclusion proof of `index` in a tree of `size`.
pub fn tiles_for_inclusion(index: u64, size: u64) -> Result<BTreeSet<TilePath>> {
    tiles_for(size, |r| inclusion_proof(r, index, size).map(|_| ()))
}

/// The hash tiles needed to compute the consistency proof from `old` to `new` leaves.
pub fn tiles_for_consistency(old: u64, new: u64) -> Result<BTreeSet<TilePath>> {
    tiles_for(new, |r| consistency_proof(r, old, new).map(|_| ()))
}

/// Hash tiles for one tree size, read as a [`HashStore`].
///
/// Insert the tiles named by [`tiles_for_root`] / [`tiles_for_inclusion`] /
/// [`tiles_for_consistency`], then call the functions of [`crate::merkle`] on
/// the set. A tile wider than the tree size needs (a full tile fetched in place
/// of a partial one) is fine: its leading hashes are the same.
///
/// Each tile's seven inner levels are hashed once, on insertion (at most 254
/// hashes per tile), so every later lookup is a table read.
#[derive(Debug, Clone)]
pub struct TileSet {
    size: u64,
    tiles: BTreeMap<(u8, u64), TileNodes>,
}

/// A tile's hashes and the subtrees they complete: `levels[r][i]` is the root
/// of hashes `[i·2^r, (i+1)·2^r)` of the tile.
#[derive(Debug, Clone)]
struct TileNodes {
    levels: Vec<Vec<Hash>>,
}

impl TileNodes {
    fn new(tile: &HashTile) -> Self {
        let mut levels = vec![tile.hashes().to_vec()];
        for _ in 1..TILE_HEIGHT {
            let Some(below) = levels.last() else { break };
            let row: Vec<Hash> = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            if row.is_empty() {
                break;
            }
            levels.push(row);
        }
        Self { levels }
    }

    fn width(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }
}

impl TileSet {
    /// An empty set for a tree of `size` leaves.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            tiles: BTreeMap::new(),
        }
    }

    /// The tree size the set answers for.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds a hash tile. Its width must match its path; entry bundles are refused.
    pub fn insert(&mut self, path: TilePath, tile: HashTile) -> Result<()> {
        let TileKind::Hash { level } = path.kind() else {
            return Err(TileError::BadPath.into());
        };
        if tile.width() != path.width() {
            return Err(TileError::WidthMismatch {
                path: path.to_string(),
                expected: path.width(),
                got: tile.width(),
            }
            .into());
        }
        match self.tiles.get(&(level, path.index())) {
            Some(old) if old.width() >= usize::from(tile.width()) => {}
            _ => {
                self.tiles
                    .insert((level, path.index()), TileNodes::new(&tile));
            }
        }
        Ok(())
    }

    /// Parses tile bytes for `path` and adds them.
    pub fn insert_bytes(&mut self, path: TilePath, bytes: &[u8]) -> Result<()> {
        let tile = HashTile::parse(bytes, path.width())?;
        self.insert(path, tile)
    }
}

impl HashStore for TileSet {
    fn subtree_hash(&self, level: u32, index: u64) -> Result<Hash> {
        let (path, offset, count) = tile_for_node(NodeId::new(level, index), self.size)?;
        let TileKind::Hash { level: tile_level } = path.kind() else {
            return Err(TileError::BadPath.into());
        };
        let tile = self
            .tiles
            .get(&(tile_level, path.index()))
            .ok_or_else(|| TileError::MissingTile(path.to_string()))?;
        // `count` is 2^r with r < 8, and `offset` a multiple of it.
        let r = count.trailing_zeros() as usize;
        tile.levels
            .get(r)
            .and_then(|row| row.get(offset >> r))
            .copied()
            .ok_or_else(|| TileError::MissingTile(path.to_string()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_size_70000() {
        // From the spec: 273 full level-0 tiles, a partial of width 112, one
        // full level-1 tile, a partial of width 17, a partial level-2 of width 1.
        let tiles = tiles_for_root(70_000).unwrap();
        let names: Vec<String> = tiles.iter().map(|t| t.to_string()).collect();
        assert!(names.contains(&"tile/0/273.p/112".to_string()), "{names:?}");
        assert!(names.contains(&"tile/1/001.p/17".to_string()), "{names:?}");
        let (p, _, _) = tile_for_node(NodeId::new(16, 0), 70_000).unwrap();
        assert_eq!(p.to_string(), "tile/2/000.p/1");
        let (p, _, _) = tile_for_node(NodeId::new(8, 255), 70_000).unwrap();
        assert_eq!(p.to_string(), "tile/1/000");
        assert!(tile_for_node(NodeId::new(0, 70_000), 70_000).is_err());
    }
}
