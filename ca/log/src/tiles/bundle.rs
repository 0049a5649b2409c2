//! Entry bundles: up to 256 entries, each a big-endian `u16` length and the bytes.

use super::{HashTile, TILE_WIDTH};
use crate::error::{Result, TileError};
use crate::merkle::{leaf_hash, Hash};

/// Longest entry a bundle can carry.
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// The contents of an entry bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryBundle {
    entries: Vec<Vec<u8>>,
}

impl EntryBundle {
    /// A bundle from 1 to 256 entries of at most 65535 bytes each.
    pub fn new(entries: Vec<Vec<u8>>) -> Result<Self> {
        if entries.is_empty() {
            return Err(TileError::BadWidth(0).into());
        }
        if entries.len() > usize::from(TILE_WIDTH) {
            return Err(TileError::TooManyItems.into());
        }
        if let Some(e) = entries.iter().find(|e| e.len() > MAX_ENTRY_LEN) {
            return Err(TileError::EntryTooLarge(e.len()).into());
        }
        Ok(Self { entries })
    }

    /// A bundle from entries the caller has already counted (1..=256) and
    /// measured (at most [`MAX_ENTRY_LEN`] bytes each).
    pub(super) fn from_checked(entries: Vec<Vec<u8>>) -> Self {
        debug_assert!((1..=usize::from(TILE_WIDTH)).contains(&entries.len()));
        debug_assert!(entries.iter().all(|e| e.len() <= MAX_ENTRY_LEN));
        Self { entries }
    }

    /// Parses bundle bytes that must hold exactly `width` entries and nothing more.
    pub fn parse(bytes: &[u8], width: u16) -> Result<Self> {
        if width == 0 || width > TILE_WIDTH {
            return Err(TileError::BadWidth(width.into()).into());
        }
        let want = usize::from(width);
        let mut entries = Vec::with_capacity(want);
        let mut rest = bytes;
        while !rest.is_empty() {
            if entries.len() == want {
                return Err(TileError::WrongEntryCount {
                    expected: want,
                    got: want + 1,
                }
                .into());
            }
            let (len, tail) = rest
                .split_first_chunk::<2>()
                .ok_or(TileError::TruncatedBundle)?;
            let len = usize::from(u16::from_be_bytes(*len));
            if tail.len() < len {
                return Err(TileError::TruncatedBundle.into());
            }
            let (entry, tail) = tail.split_at(len);
            entries.push(entry.to_vec());
            rest = tail;
        }
        if entries.len() != want {
            return Err(TileError::WrongEntryCount {
                expected: want,
                got: entries.len(),
            }
            .into());
        }
        Ok(Self { entries })
    }

    /// The bundle's bytes, as served.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.iter().map(|e| e.len() + 2).sum());
        for e in &self.entries {
            // `new` and `parse` keep every entry within u16.
            out.extend_from_slice(&(e.len() as u16).to_be_bytes());
            out.extend_from_slice(e);
        }
        out
    }

    /// The entries, in log order.
    pub fn entries(&self) -> &[Vec<u8>] {
        &self.entries
    }

    /// The Merkle leaf hash of each entry.
    pub fn leaf_hashes(&self) -> Vec<Hash> {
        self.entries.iter().map(|e| leaf_hash(e)).collect()
    }

    /// Whether the entries hash to exactly the hashes of `tile`, the level-0
    /// hash tile with the same index. A bundle fetched from an untrusted
    /// mirror is authenticated this way once the tile is (by a proof to a
    /// signed checkpoint).
    pub fn matches_tile(&self, tile: &HashTile) -> bool {
        self.entries.len() == tile.hashes().len()
            && self
                .entries
                .iter()
                .zip(tile.hashes())
                .all(|(e, h)| &leaf_hash(e) == h)
    }

    /// Number of entries, 1..=256.
    pub fn width(&self) -> u16 {
        // Kept within 1..=256 by `new` and `parse`.
        self.entries.len() as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        let b = EntryBundle::new(vec![b"a".to_vec(), vec![], vec![7; 300]]).unwrap();
        let bytes = b.to_bytes();
        assert_eq!(EntryBundle::parse(&bytes, 3).unwrap(), b);
        assert!(EntryBundle::parse(&bytes, 2).is_err());
        assert!(EntryBundle::parse(&bytes, 4).is_err());
        assert!(EntryBundle::parse(&bytes[..bytes.len() - 1], 3).is_err());
        assert!(EntryBundle::parse(&[0], 1).is_err());
        assert!(EntryBundle::parse(&[0, 5, 1], 1).is_err());
        assert!(EntryBundle::parse(&[], 1).is_err());
        assert!(EntryBundle::new(vec![vec![0; 65536]]).is_err());
        assert!(EntryBundle::new(vec![vec![]; 257]).is_err());
        let tile = HashTile::new(b.leaf_hashes()).unwrap();
        assert!(b.matches_tile(&tile));
        let other = HashTile::new(b.leaf_hashes()[..2].to_vec()).unwrap();
        assert!(!b.matches_tile(&other));
    }
}
