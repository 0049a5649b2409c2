//! Serving tiles from a store of entries and subtree hashes.
//!
//! A log store keeps entries and complete-subtree hashes in whatever shape
//! suits it (redb tables, PostgreSQL rows). What it serves is the C2SP
//! layout: which tiles exist for a tree size, and the bytes of each. That
//! layout lives here, so every backend serves exactly the same files; the
//! store only answers [`TileSource`]'s two lookups.

use super::{EntryBundle, HashTile, TileKind, TilePath, MAX_ENTRY_LEN, TILE_HEIGHT, TILE_WIDTH};
use crate::merkle::Hash;

/// What a log store must answer so its tiles can be served.
///
/// Both lookups return `Ok(None)` for something the store does not hold and
/// `Err` only when the store itself fails (I/O, a corrupt record).
/// [`read_tile`] asks only for entries and hashes that the tree of the size
/// it is given must have, so a `None` means the store lost data.
pub trait TileSource {
    /// The store's own error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The bytes of the entry at `index` (leaf `index` of the tree).
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, Self::Error>;

    /// The hash of the complete subtree of height `level` at position `index`
    /// (level 0: the leaf hashes), as [`crate::merkle::NodeId`] names it.
    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, Self::Error>;
}

/// Why [`read_tile`] could not produce a tile the tree has.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadTileError<E> {
    /// The store has no entry that the tree size says it must have.
    #[error("entry {index} is missing from the store")]
    MissingEntry {
        /// Index of the entry.
        index: u64,
    },
    /// The store has no subtree hash that the tree size says it must have.
    #[error("hash (level {level}, index {index}) is missing from the store")]
    MissingHash {
        /// Height of the subtree.
        level: u32,
        /// Index of the subtree within its level.
        index: u64,
    },
    /// A stored entry is longer than an entry bundle can carry.
    #[error("entry {index} is {len} bytes, more than a bundle can carry")]
    EntryTooLarge {
        /// Index of the entry.
        index: u64,
        /// Its length.
        len: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Source(E),
}

/// Every tile of the tree of `size` entries: at each level, the full tiles
/// and the one partial tile (if the level does not end on a tile boundary),
/// and the entry bundles likewise. Entry bundles come first, then hash
/// tiles by level; within a level, by index.
///
/// This is what a mirror or `log export` copies. The list grows with the
/// tree (about `size / 128` paths).
pub fn tile_paths(size: u64) -> Vec<TilePath> {
    let mut paths = Vec::new();
    push_level(&mut paths, size, TileKind::Entries);
    for tile_level in 0..=super::path::MAX_TILE_LEVEL {
        let count = hashes_at(u32::from(tile_level) * TILE_HEIGHT, size);
        if count == 0 {
            break;
        }
        push_level(&mut paths, count, TileKind::Hash { level: tile_level });
    }
    paths
}

/// The tiles of one level holding `count` items.
fn push_level(paths: &mut Vec<TilePath>, count: u64, kind: TileKind) {
    let width = u64::from(TILE_WIDTH);
    for index in 0..count / width {
        paths.push(TilePath::new_valid(kind, index, TILE_WIDTH));
    }
    // Below 256, so it fits in a u16.
    let rest = (count % width) as u16;
    if rest > 0 {
        paths.push(TilePath::new_valid(kind, count / width, rest));
    }
}

/// Number of complete subtrees of height `level` in a tree of `size` leaves.
fn hashes_at(level: u32, size: u64) -> u64 {
    size.checked_shr(level).unwrap_or(0)
}

/// The bytes of the tile at `path` in the tree of `size` entries, read from
/// `source`; `Ok(None)` if that tree does not have the tile.
///
/// A tree has a tile when every item the path names lies within it: the
/// full tiles and partial tiles up to the tree's own width at that level.
/// A partial tile narrower than the tree's (the tile of an older tree size)
/// is served too, since its bytes never change. A tile that extends past the
/// tree (a full tile still being filled, a later size's partial tile) is
/// `None`: serving it would publish entries no checkpoint covers yet.
///
/// An item the tree must have but the store lacks is an error naming it.
pub fn read_tile<S>(
    source: &S,
    path: &TilePath,
    size: u64,
) -> Result<Option<Vec<u8>>, ReadTileError<S::Error>>
where
    S: TileSource + ?Sized,
{
    let width = u64::from(path.width());
    let first = path.index().saturating_mul(u64::from(TILE_WIDTH));
    let available = match path.kind() {
        TileKind::Entries => size,
        TileKind::Hash { level } => hashes_at(u32::from(level) * TILE_HEIGHT, size),
    };
    // Past u64::MAX, or past the tree: not a tile of this tree.
    let end = match first.checked_add(width) {
        Some(end) if end <= available => end,
        _ => return Ok(None),
    };
    let items = first..end;
    match path.kind() {
        TileKind::Entries => {
            let mut entries = Vec::with_capacity(path.width().into());
            for index in items {
                let entry = source
                    .entry(index)
                    .map_err(ReadTileError::Source)?
                    .ok_or(ReadTileError::MissingEntry { index })?;
                if entry.len() > MAX_ENTRY_LEN {
                    return Err(ReadTileError::EntryTooLarge {
                        index,
                        len: entry.len(),
                    });
                }
                entries.push(entry);
            }
            Ok(Some(EntryBundle::from_checked(entries).to_bytes()))
        }
        TileKind::Hash { level } => {
            let level = u32::from(level) * TILE_HEIGHT;
            let mut hashes = Vec::with_capacity(path.width().into());
            for index in items {
                let hash = source
                    .node(level, index)
                    .map_err(ReadTileError::Source)?
                    .ok_or(ReadTileError::MissingHash { level, index })?;
                hashes.push(hash);
            }
            Ok(Some(HashTile::from_checked(hashes).to_bytes()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_for_small_sizes() {
        let names =
            |size| -> Vec<String> { tile_paths(size).iter().map(ToString::to_string).collect() };
        assert!(names(0).is_empty());
        assert_eq!(names(1), ["tile/entries/000.p/1", "tile/0/000.p/1"]);
        assert_eq!(
            names(256),
            ["tile/entries/000", "tile/0/000", "tile/1/000.p/1"]
        );
        assert_eq!(
            names(300),
            [
                "tile/entries/000",
                "tile/entries/001.p/44",
                "tile/0/000",
                "tile/0/001.p/44",
                "tile/1/000.p/1"
            ]
        );
    }
}
