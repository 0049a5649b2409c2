//! Consistency proofs: RFC 9162 §2.1.4.1 (generation) and §2.1.4.2 (verification).
//!
//! A consistency proof shows that the tree of `new` leaves starts with the tree
//! of `old` leaves: the log only appended, it never rewrote history.
//!
//! RFC 9162 defines proofs for `0 < old < new`. At the edges: between two
//! trees of equal (non-zero) size the proof is empty and the roots must be
//! equal; a proof from the empty tree (`old == 0`) would prove nothing, so it
//! is refused with [`MerkleError::EmptyOldTree`] rather than silently
//! accepted (a verifier's first checkpoint has nothing to be consistent with).

use super::hash::{node_hash, Hash};
use super::store::HashStore;
use super::tree::{range_root, split_point};
use crate::error::{MerkleError, Result};

fn check_sizes(old: u64, new: u64) -> Result<()> {
    if old > new {
        return Err(MerkleError::SizesOutOfOrder { old, new }.into());
    }
    if old == 0 {
        return Err(MerkleError::EmptyOldTree.into());
    }
    Ok(())
}

/// Number of hashes in the consistency proof from `old` to `new` leaves.
pub fn consistency_proof_len(old: u64, new: u64) -> Result<usize> {
    check_sizes(old, new)?;
    if old == new {
        return Ok(0);
    }
    // Walk SUBPROOF(m, D[n], b) without hashing.
    let (mut m, mut n, mut b, mut len) = (old, new, true, 0usize);
    while m != n {
        let k = split_point(n);
        if m <= k {
            n = k;
        } else {
            m -= k;
            n -= k;
            b = false;
        }
        len += 1;
    }
    if !b {
        len += 1;
    }
    Ok(len)
}

/// The consistency proof from the tree of `old` leaves to the tree of `new` leaves.
pub fn consistency_proof<S: HashStore + ?Sized>(
    store: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>> {
    if old > new {
        return Err(MerkleError::SizesOutOfOrder { old, new }.into());
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start..start+n], b) top down; reversed at the end because
    // the RFC puts the deepest hash first.
    let mut path = Vec::with_capacity(65);
    let (mut start, mut m, mut n, mut b) = (0u64, old, new, true);
    while m != n {
        let k = split_point(n);
        if m <= k {
            path.push(range_root(store, start + k, n - k)?);
            n = k;
        } else {
            path.push(range_root(store, start, k)?);
            start += k;
            m -= k;
            n -= k;
            b = false;
        }
    }
    if !b {
        // The old tree's last subtree is not the old root itself: include it.
        path.push(range_root(store, start, m)?);
    }
    path.reverse();
    Ok(path)
}

/// Checks that the tree of `new` leaves with root `new_root` extends the tree of
/// `old` leaves with root `old_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<()> {
    let expected = consistency_proof_len(old, new)?;
    if proof.len() != expected {
        return Err(MerkleError::WrongProofLength {
            expected,
            got: proof.len(),
        }
        .into());
    }
    if old == new {
        if old_root != new_root {
            return Err(MerkleError::DifferentRoots.into());
        }
        return Ok(());
    }

    // RFC 9162 §2.1.4.2. If `old` is a power of two the old root is itself a
    // node of the new tree, and the proof leaves it out: put it back in front.
    let first: &Hash;
    let rest: &[Hash];
    if old.is_power_of_two() {
        first = old_root;
        rest = proof;
    } else {
        // `expected` is non-zero here, so `proof` has a first element.
        let (f, r) = proof
            .split_first()
            .ok_or(MerkleError::WrongProofLength { expected, got: 0 })?;
        first = f;
        rest = r;
    }

    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(MerkleError::WrongProofLength {
                expected,
                got: proof.len(),
            }
            .into());
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // Climb past the levels where this node is a left child with no
            // right sibling (the tree's right edge): they add no hash.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
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
    if &fr != old_root || &sr != new_root {
        return Err(MerkleError::RootMismatch.into());
    }
    Ok(())
}
