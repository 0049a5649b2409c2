//! The C2SP tlog-tiles layout (<https://c2sp.org/tlog-tiles>), in which the
//! log is served under `/log/`.
//!
//! A *hash tile* at tile level `L` holds up to 256 consecutive Merkle hashes
//! of tree level `8·L`; an *entry bundle* holds up to 256 consecutive entries.
//! Tiles are static files, so the log can be served, cached and mirrored by
//! anything that serves files, and an auditor computes every proof itself.
//!
//! - [`path`]: the `tile/<L>/<N>[.p/<W>]` names;
//! - [`HashTile`] and [`EntryBundle`]: strict parsing and building of the bytes;
//! - [`TileSet`]: tiles fetched for a tree size, read as a
//!   [`crate::merkle::HashStore`] so roots and proofs come out of them;
//! - [`TileBuilder`]: turns the subtrees the CA completes while appending into
//!   full tiles to store;
//! - [`tiles_for_inclusion`] and friends: which tiles a verifier must fetch.
//!
//! Tile bytes are untrusted input: a root or proof computed from a
//! [`TileSet`] means nothing until it is checked against a signed checkpoint.

mod builder;
mod bundle;
mod hash_tile;
pub mod path;
mod set;

pub use builder::TileBuilder;
pub use bundle::{EntryBundle, MAX_ENTRY_LEN};
pub use hash_tile::HashTile;
pub use path::{TileKind, TilePath};
pub use set::{
    tile_for_node, tiles_for_consistency, tiles_for_inclusion, tiles_for_nodes, tiles_for_root,
    TileSet,
};

/// Tree levels covered by one tile level: a tile is a subtree of height 8.
pub const TILE_HEIGHT: u32 = 8;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u16 = 256;
