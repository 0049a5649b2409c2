//! Tree roots (RFC 9162 §2.1.1, "MTH"), computed from complete subtrees.
//!
//! MTH splits a list of `n` leaves at the largest power of two below `n`. The
//! consequence used throughout this module: the leaves `[start, start+size)` of
//! any range that the recursion visits split into complete subtrees, one per
//! set bit of `size`, largest first; the range's hash is those subtree hashes
//! folded together from the right.

use super::hash::{node_hash, Hash, EMPTY_ROOT};
use super::store::{HashStore, NodeId};
use crate::error::{MerkleError, Result};

/// The largest power of two strictly below `n`; `n` must be at least 2.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The complete subtrees that make up leaves `[start, start+size)`, largest first.
///
/// Fails with [`MerkleError::BadSubtree`] if the range does not decompose into
/// aligned subtrees (every range the RFC recursion produces does), or does not
/// fit in a `u64`.
pub fn subtrees_of_range(start: u64, size: u64) -> Result<Vec<NodeId>> {
    let bad = MerkleError::BadSubtree {
        level: 0,
        index: start,
    };
    start.checked_add(size).ok_or(bad.clone())?;
    let mut out = Vec::with_capacity(size.count_ones() as usize);
    let mut offset = start;
    for level in (0..64u32).rev() {
        let width = 1u64 << level;
        if size & width == 0 {
            continue;
        }
        if offset % width != 0 {
            return Err(MerkleError::BadSubtree {
                level,
                index: offset >> level,
            }
            .into());
        }
        out.push(NodeId::new(level, offset >> level));
        offset += width;
    }
    Ok(out)
}

/// Folds subtree hashes (largest, leftmost first) into the hash of their range.
pub(crate) fn fold_right(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return EMPTY_ROOT;
    };
    iter.fold(*last, |acc, h| node_hash(h, &acc))
}

/// The Merkle hash of leaves `[start, start+size)`, from the store's subtrees.
///
/// `size` must be at least 1 and the range must decompose into aligned
/// subtrees (see [`subtrees_of_range`]).
pub fn range_root<S: HashStore + ?Sized>(store: &S, start: u64, size: u64) -> Result<Hash> {
    if size == 0 {
        return Err(MerkleError::BadSubtree {
            level: 0,
            index: start,
        }
        .into());
    }
    let nodes = subtrees_of_range(start, size)?;
    let mut hashes = Vec::with_capacity(nodes.len());
    for n in nodes {
        hashes.push(store.subtree_hash(n.level, n.index)?);
    }
    Ok(fold_right(&hashes))
}

/// The root hash of the tree of the first `size` leaves.
pub fn root<S: HashStore + ?Sized>(store: &S, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    range_root(store, 0, size)
}

/// The root hash of a tree given all its leaf hashes (O(n) time, O(log n) memory).
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    let mut range = super::CompactRange::new();
    for leaf in leaves {
        // A slice cannot hold 2^64 - 1 hashes, so the range cannot be full.
        if range.append(*leaf, |_, _| ()).is_err() {
            break;
        }
    }
    range.root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn ranges_decompose() {
        let r = subtrees_of_range(8, 7).unwrap();
        assert_eq!(
            r,
            vec![NodeId::new(2, 2), NodeId::new(1, 6), NodeId::new(0, 14)]
        );
        assert!(subtrees_of_range(1, 2).is_err());
        assert!(subtrees_of_range(u64::MAX, 2).is_err());
        assert_eq!(subtrees_of_range(0, u64::MAX).unwrap().len(), 64);
    }
}
