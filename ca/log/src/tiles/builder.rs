//! Building hash tiles while appending.
//!
//! Feed [`TileBuilder::observe`] every subtree that
//! [`crate::merkle::CompactRange::append`] reports; it hands back each hash
//! tile as it becomes full and can list the partial tiles of the tree so
//! far. The auditor's replay compares them with the tiles a log serves; a
//! writer that keeps whole tiles could store them.

use super::{HashTile, TilePath, TILE_HEIGHT, TILE_WIDTH};
use crate::error::Result;
use crate::merkle::{Hash, HashStore, NodeId};

/// Collects the hashes of tile-boundary levels into tiles.
#[derive(Debug, Clone, Default)]
pub struct TileBuilder {
    /// For each tile level: the index of the tile being filled and its hashes so far.
    pending: Vec<(u64, Vec<Hash>)>,
}

impl TileBuilder {
    /// A builder for an empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder for a log that already has `size` leaves, reading the hashes
    /// of its partial tiles from `store`.
    pub fn resume<S: HashStore + ?Sized>(store: &S, size: u64) -> Result<Self> {
        let mut pending = Vec::new();
        for tile_level in 0..=(63 / TILE_HEIGHT) {
            let level = tile_level * TILE_HEIGHT;
            let count = size >> level;
            if count == 0 {
                break;
            }
            let in_tile = count % u64::from(TILE_WIDTH);
            let first = count - in_tile;
            let mut hashes = Vec::with_capacity(in_tile as usize);
            for i in first..count {
                hashes.push(store.subtree_hash(level, i)?);
            }
            pending.push((first / u64::from(TILE_WIDTH), hashes));
        }
        Ok(Self { pending })
    }

    /// Takes one completed subtree; returns a hash tile if this one filled it.
    ///
    /// Subtrees must arrive in the order `CompactRange::append` reports them.
    pub fn observe(&mut self, node: NodeId, hash: &Hash) -> Result<Option<(TilePath, HashTile)>> {
        if node.level % TILE_HEIGHT != 0 {
            return Ok(None);
        }
        let tile_level = (node.level / TILE_HEIGHT) as usize;
        while self.pending.len() <= tile_level {
            self.pending.push((0, Vec::new()));
        }
        let (tile_index, hashes) = &mut self.pending[tile_level];
        hashes.push(*hash);
        if hashes.len() < usize::from(TILE_WIDTH) {
            return Ok(None);
        }
        let full = HashTile::new(std::mem::take(hashes))?;
        let path = TilePath::hash(tile_level as u8, *tile_index, TILE_WIDTH)?;
        *tile_index += 1;
        Ok(Some((path, full)))
    }

    /// The partial tiles of the tree so far (none at a level whose last tile is full).
    pub fn partial_tiles(&self) -> Result<Vec<(TilePath, HashTile)>> {
        let mut out = Vec::new();
        for (tile_level, (tile_index, hashes)) in self.pending.iter().enumerate() {
            if hashes.is_empty() {
                continue;
            }
            let width = hashes.len() as u16;
            let path = TilePath::hash(tile_level as u8, *tile_index, width)?;
            out.push((path, HashTile::new(hashes.clone())?));
        }
        Ok(out)
    }
}
