//! Inclusion proofs: RFC 9162 §2.1.3.1 (generation) and §2.1.3.2 (verification).
//!
//! A proof for leaf `index` in a tree of `size` leaves is the list of sibling
//! hashes on the path from the leaf to the root, lowest first.

use super::hash::{node_hash, Hash};
use super::store::HashStore;
use super::tree::{range_root, split_point};
use crate::error::{MerkleError, Result};

/// Number of hashes in the inclusion proof of `index` in a tree of `size`.
///
/// Fails if `index` is not below `size`.
pub fn inclusion_proof_len(index: u64, size: u64) -> Result<usize> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size }.into());
    }
    // Walk the RFC recursion without hashing: one hash per split.
    let (mut m, mut n, mut len) = (index, size, 0usize);
    while n > 1 {
        let k = split_point(n);
        if m < k {
            n = k;
        } else {
            m -= k;
            n -= k;
        }
        len += 1;
    }
    Ok(len)
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
///
/// Asks `store` for `O(log² size)` subtree hashes at most, all of them complete
/// within `size`.
pub fn inclusion_proof<S: HashStore + ?Sized>(
    store: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size }.into());
    }
    // PATH(m, D[start..start+n]) top down; the RFC lists the siblings bottom
    // up, so the list is reversed at the end.
    let mut path = Vec::with_capacity(64);
    let (mut start, mut m, mut n) = (0u64, index, size);
    while n > 1 {
        let k = split_point(n);
        if m < k {
            path.push(range_root(store, start + k, n - k)?);
            n = k;
        } else {
            path.push(range_root(store, start, k)?);
            start += k;
            m -= k;
            n -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The root that `proof` leads to from `leaf_hash` at `index` in a tree of `size`.
///
/// Fails if the index is out of range or the proof has the wrong length; a
/// wrong hash anywhere shows up as a different root.
pub fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash> {
    let expected = inclusion_proof_len(index, size)?;
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength {
            expected,
            got: proof.len(),
        }
        .into());
    }
    // RFC 9162 §2.1.3.2, with fn = index and sn = size - 1.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            // Cannot happen after the length check; kept as the RFC states it.
            return Err(MerkleError::WrongProofLength {
                expected,
                got: proof.len(),
            }
            .into());
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            // Climb past the levels where this node is a left child with no
            // right sibling (the tree's right edge): they add no hash.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(MerkleError::WrongProofLength {
            expected,
            got: proof.len(),
        }
        .into());
    }
    Ok(r)
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` with root `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    let got = root_from_inclusion_proof(leaf_hash, index, size, proof)?;
    if &got != root {
        return Err(MerkleError::RootMismatch.into());
    }
    Ok(())
}
