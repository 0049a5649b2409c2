//! Tile paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`.
//!
//! `<N>` is written in groups of three digits, all but the last prefixed with
//! `x` (index 1234067 is `x001/x234/067`), so tiles can be stored as plain
//! files without a name being both a file and a directory. Parsing accepts
//! only the one canonical spelling of each path: no leading zeros, no empty
//! leading groups, no `.p/256`.

use std::fmt;

use super::TILE_WIDTH;
use crate::error::{Result, TileError};

/// Whether a tile holds hashes (and of which tile level) or entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TileKind {
    /// A hash tile at tile level `level` (tree level `8·level`), 0..=63.
    Hash {
        /// Tile level.
        level: u8,
    },
    /// An entry bundle.
    Entries,
}

/// A tile's name: its kind, its index within its level, and its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TilePath {
    kind: TileKind,
    index: u64,
    width: u16,
}

/// Highest tile level the spec allows.
pub const MAX_TILE_LEVEL: u8 = 63;

impl TilePath {
    /// A hash tile. `width` is 256 for a full tile, 1..=255 for a partial one.
    pub fn hash(level: u8, index: u64, width: u16) -> Result<Self> {
        if level > MAX_TILE_LEVEL {
            return Err(TileError::BadLevel(level.into()).into());
        }
        Self::checked(TileKind::Hash { level }, index, width)
    }

    /// An entry bundle. `width` is 256 for a full bundle, 1..=255 for a partial one.
    pub fn entries(index: u64, width: u16) -> Result<Self> {
        Self::checked(TileKind::Entries, index, width)
    }

    /// A path whose level and width the caller has already kept in range
    /// (level <= 63, width 1..=256).
    pub(super) fn new_valid(kind: TileKind, index: u64, width: u16) -> Self {
        debug_assert!((1..=TILE_WIDTH).contains(&width));
        debug_assert!(match kind {
            TileKind::Hash { level } => level <= MAX_TILE_LEVEL,
            TileKind::Entries => true,
        });
        Self { kind, index, width }
    }

    fn checked(kind: TileKind, index: u64, width: u16) -> Result<Self> {
        if width == 0 || width > TILE_WIDTH {
            return Err(TileError::BadWidth(width.into()).into());
        }
        Ok(Self { kind, index, width })
    }

    /// Hash tile or entry bundle.
    pub fn kind(&self) -> TileKind {
        self.kind
    }

    /// Index within the level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Number of hashes or entries, 1..=256.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether this is a full (256-wide) tile.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// Parses a path relative to the log prefix, such as `tile/0/x001/234.p/7`.
    pub fn parse(path: &str) -> Result<Self> {
        let bad = || TileError::BadPath;
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (first, rest) = rest.split_once('/').ok_or_else(bad)?;
        let kind = if first == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(first).ok_or_else(bad)?;
            if level > u64::from(MAX_TILE_LEVEL) {
                return Err(TileError::BadLevel(level).into());
            }
            // Checked just above: level <= 63.
            TileKind::Hash { level: level as u8 }
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index_part, w)) => {
                let w = parse_decimal(w).ok_or_else(bad)?;
                if w == 0 || w >= u64::from(TILE_WIDTH) {
                    return Err(TileError::BadWidth(w).into());
                }
                (index_part, w as u16)
            }
            None => (rest, TILE_WIDTH),
        };
        let index = parse_index(index_part).ok_or_else(bad)?;
        Self::checked(kind, index, width)
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TileKind::Hash { level } => write!(f, "tile/{level}/")?,
            TileKind::Entries => f.write_str("tile/entries/")?,
        }
        f.write_str(&format_index(self.index))?;
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

/// Writes a tile index as `x`-prefixed groups of three digits.
pub fn format_index(mut n: u64) -> String {
    let mut groups = Vec::new();
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let mut out = String::with_capacity(groups.len() * 5);
    for (i, g) in groups.iter().rev().enumerate() {
        if i + 1 < groups.len() {
            out.push_str(&format!("x{g:03}/"));
        } else {
            out.push_str(&format!("{g:03}"));
        }
    }
    out
}

/// Parses the canonical `x`-grouped form of a tile index.
fn parse_index(s: &str) -> Option<u64> {
    let groups: Vec<&str> = s.split('/').collect();
    if groups.len() > 7 {
        return None;
    }
    let mut n: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let last = i + 1 == groups.len();
        let digits = if last { *g } else { g.strip_prefix('x')? };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v = u64::from(digits.parse::<u16>().ok()?);
        if i == 0 && !last && v == 0 {
            // "x000/..." is a second spelling of a shorter index.
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(v)?;
    }
    Some(n)
}

/// Parses a decimal number with no sign and no leading zeros.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(format_index(1234067), "x001/x234/067");
        assert_eq!(format_index(0), "000");
        assert_eq!(format_index(1000), "x001/000");
        let p = TilePath::hash(0, 1234067, 256).unwrap();
        assert_eq!(p.to_string(), "tile/0/x001/x234/067");
        let p = TilePath::hash(2, 5, 17).unwrap();
        assert_eq!(p.to_string(), "tile/2/005.p/17");
        let p = TilePath::entries(u64::MAX, 1).unwrap();
        assert_eq!(
            p.to_string(),
            "tile/entries/x018/x446/x744/x073/x709/x551/615.p/1"
        );
        assert_eq!(TilePath::parse(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn rejects_non_canonical() {
        for bad in [
            "",
            "tile/",
            "tile/0",
            "tile/0/",
            "tile/00/000",
            "tile/64/000",
            "tile/-1/000",
            "tile/0/0",
            "tile/0/0000",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/07",
            "tile/0/001.p/",
            "tile/0/001.p/1/",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/0/x001/x018/x446/x744/x073/x709/x551/615",
            "tile/entries/abc",
            "tile/entry/000",
            "/tile/0/000",
            "tile/0/+01",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
