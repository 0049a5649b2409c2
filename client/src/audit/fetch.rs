//! Fetching and parsing tiles and entry bundles, with the partial-tile
//! fallback of C2SP tlog-tiles: a partial tile the log no longer serves may
//! be read as the prefix of the full tile that replaced it.

use std::collections::BTreeSet;

use signet_log::checkpoint::Checkpoint;
use signet_log::merkle::{
    consistency_proof, inclusion_proof, verify_consistency, verify_inclusion, Hash,
};
use signet_log::tiles::{
    tiles_for_consistency, tiles_for_inclusion, EntryBundle, HashTile, TileKind, TilePath, TileSet,
    TILE_WIDTH,
};

use super::error::{detail, AuditError, Result, VerifyFailure};
use super::source::{Fetched, LogSource, MAX_BUNDLE_LEN, MAX_SIGNED_CHECKPOINT_LEN};

/// Bytes in a full hash tile.
const MAX_HASH_TILE_LEN: u64 = 32 * TILE_WIDTH as u64;

fn bad_tile(path: &TilePath, e: signet_log::Error) -> AuditError {
    VerifyFailure::BadTile {
        path: path.to_string(),
        reason: detail(&e),
    }
    .into()
}

/// The full tile a partial one is a prefix of.
fn full_of(path: &TilePath) -> Result<TilePath> {
    let full = match path.kind() {
        TileKind::Hash { level } => TilePath::hash(level, path.index(), TILE_WIDTH),
        TileKind::Entries => TilePath::entries(path.index(), TILE_WIDTH),
    };
    full.map_err(|e| bad_tile(path, e))
}

/// Fetches `path`, or for a partial tile that is gone, the full tile; returns
/// the path actually read and its bytes.
fn fetch_with_fallback(
    source: &dyn LogSource,
    path: &TilePath,
    limit: u64,
    size: u64,
) -> Result<(TilePath, Vec<u8>)> {
    if let Fetched::Found(bytes) = source.fetch(&path.to_string(), limit)? {
        return Ok((*path, bytes));
    }
    if !path.is_full() {
        let full = full_of(path)?;
        if let Fetched::Found(bytes) = source.fetch(&full.to_string(), limit)? {
            return Ok((full, bytes));
        }
    }
    Err(VerifyFailure::MissingTile {
        path: path.to_string(),
        size,
    }
    .into())
}

/// A hash tile of exactly `path.width()` hashes.
pub(crate) fn fetch_hash_tile(
    source: &dyn LogSource,
    path: &TilePath,
    size: u64,
) -> Result<HashTile> {
    let (read, bytes) = fetch_with_fallback(source, path, MAX_HASH_TILE_LEN, size)?;
    let tile = HashTile::parse(&bytes, read.width()).map_err(|e| bad_tile(&read, e))?;
    if read.width() == path.width() {
        return Ok(tile);
    }
    let prefix = tile.hashes()[..usize::from(path.width())].to_vec();
    HashTile::new(prefix).map_err(|e| bad_tile(path, e))
}

/// The bundle `path`: its entries are the first `path.width()` of the
/// result (which holds more when a partial bundle was read from a full one).
pub(crate) fn fetch_bundle(
    source: &dyn LogSource,
    path: &TilePath,
    size: u64,
) -> Result<EntryBundle> {
    let (read, bytes) = fetch_with_fallback(source, path, MAX_BUNDLE_LEN, size)?;
    EntryBundle::parse(&bytes, read.width()).map_err(|e| bad_tile(&read, e))
}

/// Fetches the signed checkpoint.
pub fn fetch_checkpoint(source: &dyn LogSource) -> Result<Vec<u8>> {
    match source.fetch("checkpoint", MAX_SIGNED_CHECKPOINT_LEN) {
        Ok(Fetched::Found(bytes)) => Ok(bytes),
        Ok(Fetched::NotFound) => Err(AuditError::Fetch {
            what: format!("{} checkpoint", source.describe()),
            reason: "not found (is this a Signet log? the checkpoint is at <prefix>/checkpoint)"
                .into(),
        }),
        Err(AuditError::Verification(VerifyFailure::BadTile { reason, .. })) => {
            Err(VerifyFailure::Checkpoint {
                source_name: "checkpoint".into(),
                reason,
            }
            .into())
        }
        Err(e) => Err(e),
    }
}

/// A tile set holding `paths`, for proofs in a tree of `size`.
fn fetch_tile_set(
    source: &dyn LogSource,
    paths: &BTreeSet<TilePath>,
    size: u64,
) -> Result<TileSet> {
    let mut set = TileSet::new(size);
    for p in paths {
        let tile = fetch_hash_tile(source, p, size)?;
        set.insert(*p, tile).map_err(|e| bad_tile(p, e))?;
    }
    Ok(set)
}

/// Checks, from hash tiles alone, that `new` extends `old` (an RFC 9162
/// consistency proof computed from the tiles and checked against both roots).
pub fn check_consistency(
    source: &dyn LogSource,
    old: &Checkpoint,
    new: &Checkpoint,
    which: &'static str,
) -> Result<()> {
    if old.size() > new.size() {
        return Err(VerifyFailure::Rollback {
            which,
            old: old.size(),
            new: new.size(),
        }
        .into());
    }
    if old.size() == 0 {
        return Ok(());
    }
    if old.size() == new.size() {
        if old.root() != new.root() {
            return Err(VerifyFailure::Inconsistent {
                which,
                old: old.size(),
            }
            .into());
        }
        return Ok(());
    }
    let proof_err = |e: signet_log::Error| -> AuditError {
        VerifyFailure::Proof {
            what: format!("consistency proof {} -> {}", old.size(), new.size()),
            reason: detail(&e),
        }
        .into()
    };
    let paths = tiles_for_consistency(old.size(), new.size()).map_err(proof_err)?;
    let set = fetch_tile_set(source, &paths, new.size())?;
    let proof = consistency_proof(&set, old.size(), new.size()).map_err(proof_err)?;
    verify_consistency(old.size(), new.size(), &proof, old.root(), new.root()).map_err(
        |e| match e {
            signet_log::Error::Merkle(_) => VerifyFailure::Inconsistent {
                which,
                old: old.size(),
            }
            .into(),
            other => proof_err(other),
        },
    )
}

/// Checks, from hash tiles alone, that `leaf` is entry `index` of `checkpoint`;
/// returns the proof.
pub fn check_inclusion(
    source: &dyn LogSource,
    checkpoint: &Checkpoint,
    index: u64,
    leaf: &Hash,
) -> Result<Vec<Hash>> {
    let proof_err = |e: signet_log::Error| -> AuditError {
        VerifyFailure::Proof {
            what: format!("inclusion proof of entry {index}"),
            reason: detail(&e),
        }
        .into()
    };
    let size = checkpoint.size();
    let paths = tiles_for_inclusion(index, size).map_err(proof_err)?;
    let set = fetch_tile_set(source, &paths, size)?;
    let proof = inclusion_proof(&set, index, size).map_err(proof_err)?;
    verify_inclusion(leaf, index, size, &proof, checkpoint.root()).map_err(proof_err)?;
    Ok(proof)
}
