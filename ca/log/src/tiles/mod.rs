//! The C2SP tlog-tiles layout (<https://c2sp.org/tlog-tiles>): the log as
//! static files under a prefix of the server's choosing (Signet's CA serves
//! them under `/log/`).
//!
//! A *hash tile* at tile level `L` holds up to 256 consecutive Merkle hashes
//! of tree level `8·L`; an *entry bundle* holds up to 256 consecutive entries.
//! Tiles are static files, so the log can be served, cached and mirrored by
//! anything that serves files, and an auditor computes every proof itself.
//!
//! - [`path`]: the `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]` names;
//! - [`HashTile`] and [`EntryBundle`]: strict parsing and building of the bytes;
//! - [`tile_paths`] and [`read_tile`]: which tiles a tree size has and their
//!   bytes, read from any store of entries and subtree hashes through
//!   [`TileSource`] (how the CA serves and exports its log);
//! - [`TileSet`]: tiles fetched for a tree size, read as a
//!   [`crate::merkle::HashStore`] so roots and proofs come out of them;
//! - [`TileBuilder`]: turns the subtrees a replay completes into the tiles a
//!   log of that size must serve (how the auditor checks the served hash
//!   tiles above level 0);
//! - [`tiles_for_inclusion`] and friends: which tiles a verifier must fetch.
//!
//! Tile bytes are untrusted input: a root or proof computed from a
//! [`TileSet`] means nothing until it is checked against a signed checkpoint.

mod builder;
mod bundle;
mod hash_tile;
pub mod path;
mod set;
mod source;

pub use builder::TileBuilder;
pub use bundle::{EntryBundle, MAX_ENTRY_LEN};
pub use hash_tile::HashTile;
pub use path::{TileKind, TilePath};
pub use set::{
    tile_for_node, tiles_for_consistency, tiles_for_inclusion, tiles_for_nodes, tiles_for_root,
    TileSet,
};
pub use source::{read_tile, tile_paths, ReadTileError, TileSource};

/// Tree levels covered by one tile level: a tile is a subtree of height 8.
pub const TILE_HEIGHT: u32 = 8;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u16 = 256;
