//! The compact range: the log's right edge, for appending in `O(log n)`.
//!
//! A tree of `size` leaves is exactly one complete subtree per set bit of
//! `size` (largest first). Keeping only those hashes is enough to append a
//! leaf and to compute the root; every append reports the subtrees it
//! completes, which is how the CA fills its stored hashes (tiles) as it goes.

use super::hash::{node_hash, Hash};
use super::store::{HashStore, NodeId};
use super::tree::{fold_right, subtrees_of_range};
use crate::error::{MerkleError, Result};

/// The hashes along the right edge of a tree of `size` leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// One hash per set bit of `size`, the largest subtree first.
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The compact range of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a compact range from its hashes, e.g. after a restart.
    ///
    /// `hashes` must hold one hash per set bit of `size`, largest subtree first
    /// (what [`CompactRange::hashes`] returns).
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(MerkleError::BadCompactRange {
                size,
                expected,
                got: hashes.len(),
            }
            .into());
        }
        Ok(Self { size, hashes })
    }

    /// Reads the compact range of the first `size` leaves from a hash store.
    pub fn from_store<S: HashStore + ?Sized>(store: &S, size: u64) -> Result<Self> {
        let mut hashes = Vec::new();
        for n in subtrees_of_range(0, size)? {
            hashes.push(store.subtree_hash(n.level, n.index)?);
        }
        Ok(Self { size, hashes })
    }

    /// Number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The right-edge subtree hashes, largest first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The right-edge subtrees, largest first, matching [`CompactRange::hashes`].
    pub fn nodes(&self) -> Vec<NodeId> {
        // The range [0, size) always decomposes; an error would mean a bug.
        subtrees_of_range(0, self.size).unwrap_or_default()
    }

    /// Appends a leaf hash. `completed` is called for the new leaf and for every
    /// subtree the leaf completes, from the leaf up.
    pub fn append(
        &mut self,
        leaf_hash: Hash,
        mut completed: impl FnMut(NodeId, &Hash),
    ) -> Result<()> {
        if self.size == u64::MAX {
            return Err(MerkleError::TreeFull.into());
        }
        let mut hash = leaf_hash;
        let mut level = 0u32;
        completed(NodeId::new(0, self.size), &hash);
        // Each trailing one bit of `size` is a subtree of that height waiting
        // for a right sibling of the same height: the new node is that sibling.
        while (self.size >> level) & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                // `hashes` has one entry per set bit, so this cannot happen.
                return Err(MerkleError::TreeFull.into());
            };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(NodeId::new(level, self.size >> level), &hash);
        }
        self.hashes.push(hash);
        self.size += 1;
        Ok(())
    }

    /// The root hash of the tree, in `O(log n)`.
    pub fn root(&self) -> Hash {
        fold_right(&self.hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root, MemoryHashStore};

    #[test]
    fn append_reports_completed_subtrees() {
        let mut r = CompactRange::new();
        let mut seen = Vec::new();
        for i in 0u8..4 {
            r.append(leaf_hash(&[i]), |n, _| seen.push(n)).unwrap();
        }
        assert_eq!(
            seen,
            vec![
                NodeId::new(0, 0),
                NodeId::new(0, 1),
                NodeId::new(1, 0),
                NodeId::new(0, 2),
                NodeId::new(0, 3),
                NodeId::new(1, 1),
                NodeId::new(2, 0),
            ]
        );
    }

    #[test]
    fn matches_store_and_restores() {
        let leaves: Vec<Hash> = (0u32..100).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let store = MemoryHashStore::from_leaf_hashes(&leaves);
        let mut r = CompactRange::new();
        for (i, l) in leaves.iter().enumerate() {
            r.append(*l, |_, _| ()).unwrap();
            let size = i as u64 + 1;
            assert_eq!(r.root(), root(&store, size).unwrap());
            assert_eq!(CompactRange::from_store(&store, size).unwrap(), r);
        }
        assert!(CompactRange::from_parts(3, vec![[0; 32]]).is_err());
        let mut full = CompactRange::from_parts(u64::MAX, vec![[0; 32]; 64]).unwrap();
        assert!(full.append([0; 32], |_, _| ()).is_err());
    }
}
