//! Where proof generation gets its hashes from.
//!
//! The CA keeps the hashes of complete subtrees (in C2SP tiles, or any other
//! table); proofs and roots are computed from them in `O(log n)` lookups. The
//! [`HashStore`] trait is the only thing the Merkle code asks of that storage.

use super::hash::{node_hash, Hash};
use crate::error::{MerkleError, Result};

/// Names a complete subtree: `2^level` leaves starting at leaf `index·2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    /// Height of the subtree; 0 is a single leaf.
    pub level: u32,
    /// Position of the subtree among those of the same height, from the left.
    pub index: u64,
}

impl NodeId {
    /// The subtree of `2^level` leaves at position `index`.
    pub fn new(level: u32, index: u64) -> Self {
        Self { level, index }
    }

    /// First leaf covered, or `None` if that does not fit in a `u64`.
    pub fn first_leaf(&self) -> Option<u64> {
        if self.level >= 64 {
            return if self.index == 0 { Some(0) } else { None };
        }
        self.index.checked_mul(1u64 << self.level)
    }

    /// One past the last leaf covered, or `None` if that does not fit in a `u64`.
    pub fn end_leaf(&self) -> Option<u64> {
        if self.level >= 64 {
            return None;
        }
        self.index.checked_add(1)?.checked_mul(1u64 << self.level)
    }
}

/// A source of complete-subtree hashes.
///
/// `subtree_hash(level, index)` returns the root of the subtree covering leaves
/// `[index·2^level, (index+1)·2^level)`. It is only ever asked for subtrees
/// that are complete in the tree size being worked on; it should return
/// [`MerkleError::MissingHash`] for anything it does not have.
///
/// Closures `Fn(u32, u64) -> Result<Hash>` implement it, so a caller can adapt
/// any lookup without a new type.
pub trait HashStore {
    /// The hash of the complete subtree at (`level`, `index`).
    fn subtree_hash(&self, level: u32, index: u64) -> Result<Hash>;
}

impl<F> HashStore for F
where
    F: Fn(u32, u64) -> Result<Hash>,
{
    fn subtree_hash(&self, level: u32, index: u64) -> Result<Hash> {
        self(level, index)
    }
}

/// Every complete-subtree hash of a log, in memory.
///
/// Meant for tests, tools and small logs: it holds about two hashes per leaf.
#[derive(Debug, Clone, Default)]
pub struct MemoryHashStore {
    /// `levels[l][i]` is the hash of `NodeId { level: l, index: i }`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryHashStore {
    /// An empty store (a tree of size 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding the given leaf hashes.
    pub fn from_leaf_hashes<'a>(leaves: impl IntoIterator<Item = &'a Hash>) -> Self {
        let mut s = Self::new();
        for l in leaves {
            s.push(*l);
        }
        s
    }

    /// Number of leaves held.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf hash and every subtree hash it completes.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut level = 0;
        let mut hash = leaf_hash;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(hash);
            if row.len() % 2 == 1 {
                return;
            }
            let n = row.len();
            hash = node_hash(&row[n - 2], &row[n - 1]);
            level += 1;
        }
    }
}

impl HashStore for MemoryHashStore {
    fn subtree_hash(&self, level: u32, index: u64) -> Result<Hash> {
        let missing = MerkleError::MissingHash { level, index };
        let row = self.levels.get(level as usize).ok_or(missing.clone())?;
        let i = usize::try_from(index).map_err(|_| missing.clone())?;
        Ok(*row.get(i).ok_or(missing)?)
    }
}
