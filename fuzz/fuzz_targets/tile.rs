//! Fuzz tile paths, hash tiles and entry bundles.
//!
//! The first byte picks the width the verifier expects (1..=256); the rest is
//! the tile or bundle body, and also tried as a path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_log::tiles::{EntryBundle, HashTile, TilePath};

fuzz_target!(|data: &[u8]| {
    let Some((&w, body)) = data.split_first() else {
        return;
    };
    let width = u16::from(w) + 1;
    if let Ok(tile) = HashTile::parse(body, width) {
        assert_eq!(tile.to_bytes(), body, "hash tile must round-trip");
    }
    if let Ok(bundle) = EntryBundle::parse(body, width) {
        assert_eq!(bundle.to_bytes(), body, "bundle must round-trip");
        assert_eq!(bundle.width(), width);
    }
    if let Ok(path) = std::str::from_utf8(body) {
        if let Ok(p) = TilePath::parse(path) {
            assert_eq!(p.to_string(), path, "tile path must round-trip");
        }
    }
});
