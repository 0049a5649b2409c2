//! Hash tiles: up to 256 concatenated 32-byte Merkle hashes.

use super::TILE_WIDTH;
use crate::error::{Result, TileError};
use crate::merkle::{Hash, HASH_LEN};

/// The contents of a hash tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashTile {
    hashes: Vec<Hash>,
}

impl HashTile {
    /// A tile from 1 to 256 hashes.
    pub fn new(hashes: Vec<Hash>) -> Result<Self> {
        if hashes.is_empty() {
            return Err(TileError::BadWidth(0).into());
        }
        if hashes.len() > usize::from(TILE_WIDTH) {
            return Err(TileError::TooManyItems.into());
        }
        Ok(Self { hashes })
    }

    /// A tile from hashes the caller has already counted (1..=256).
    pub(super) fn from_checked(hashes: Vec<Hash>) -> Self {
        debug_assert!((1..=usize::from(TILE_WIDTH)).contains(&hashes.len()));
        Self { hashes }
    }

    /// Parses tile bytes that must hold exactly `width` hashes (the width in
    /// the tile's path, which the verifier chose).
    pub fn parse(bytes: &[u8], width: u16) -> Result<Self> {
        if width == 0 || width > TILE_WIDTH {
            return Err(TileError::BadWidth(width.into()).into());
        }
        let expected = usize::from(width) * HASH_LEN;
        if bytes.len() != expected {
            return Err(TileError::WrongTileLength {
                expected,
                got: bytes.len(),
            }
            .into());
        }
        let hashes = bytes
            .chunks_exact(HASH_LEN)
            .map(|c| {
                let mut h = [0u8; HASH_LEN];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Self { hashes })
    }

    /// The tile's bytes, as served.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.hashes.concat()
    }

    /// The hashes, left to right.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Number of hashes, 1..=256.
    pub fn width(&self) -> u16 {
        // `new` and `parse` keep the length within 1..=256.
        self.hashes.len() as u16
    }
}
