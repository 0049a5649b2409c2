//! RFC 9162 Merkle tree math: hashing, roots, inclusion and consistency proofs,
//! and the compact range the CA appends to.
//!
//! Everything here works on *hashes of complete subtrees*. A complete subtree
//! is named by a [`NodeId`]: `level` is its height (0 is a single leaf) and
//! `index` counts subtrees of that height from the left, so it covers leaves
//! `[index·2^level, (index+1)·2^level)`. Such a hash never changes once the log
//! holds those leaves, which is why the CA can store them (as C2SP tiles) and
//! why proof generation only needs a [`HashStore`] that can look them up, never
//! the whole list of leaves.
//!
//! The functions are iterative and bounded by the tree height (at most 64
//! steps), so neither a huge tree size nor a hostile proof can exhaust the
//! stack or loop for long.

mod compact;
mod consistency;
mod hash;
mod inclusion;
mod store;
mod tree;

pub use compact::CompactRange;
pub use consistency::{consistency_proof, consistency_proof_len, verify_consistency};
pub use hash::{leaf_hash, node_hash, Hash, EMPTY_ROOT, HASH_LEN};
pub use inclusion::{
    inclusion_proof, inclusion_proof_len, root_from_inclusion_proof, verify_inclusion,
};
pub use store::{HashStore, MemoryHashStore, NodeId};
pub use tree::{range_root, root, root_from_leaf_hashes, subtrees_of_range};
