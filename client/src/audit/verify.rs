//! The whole-log check behind `signet audit verify` (and `prove`, `search`,
//! `export`, which only answer from a log that passed it).
//!
//! For a checkpoint already verified against the pinned key, in one pass
//! over the log:
//!
//! 1. every entry bundle is fetched, and every entry's leaf hash is compared
//!    with the level-0 hash tile of the same index (so a changed, missing or
//!    reordered entry is named by its index);
//! 2. every entry decodes as a canonical entry of a known version, and its
//!    certificate (if any) has the SHA-256 the entry states;
//! 3. no certificate serial repeats, counted separately for OpenSSH and X.509;
//! 4. the tree is recomputed from the entries; every hash tile above level 0
//!    the log serves must equal the recomputed one;
//! 5. the roots of the first `n` entries, for each earlier trusted checkpoint
//!    of size `n`, must equal that checkpoint's root (consistency, checked
//!    directly rather than through a proof), and the whole tree must have the
//!    checkpoint's size and root.
//!
//! Memory stays small: the compact range, one partial tile per level, and
//! one map of serials. Bundles are fetched and decoded in parallel in
//! batches; everything order-dependent runs in log order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use signet_log::checkpoint::Checkpoint;
use signet_log::entry::{Entry, EntryKind};
use signet_log::merkle::{leaf_hash, CompactRange, Hash, NodeId};
use signet_log::tiles::{TileBuilder, TileKind, TilePath, TILE_HEIGHT, TILE_WIDTH};

use super::error::{AuditError, Result, VerifyFailure};
use super::fetch::{fetch_bundle, fetch_hash_tile};
use super::source::LogSource;

/// Entry bundles fetched and decoded per batch.
const BATCH_BUNDLES: u64 = 64;

/// An earlier checkpoint the log must extend.
#[derive(Debug, Clone)]
pub struct Previous {
    /// How the auditor got it: `remembered` or `--since`.
    pub which: &'static str,
    /// The checkpoint (already verified against the pinned key).
    pub checkpoint: Checkpoint,
}

/// One verified entry, as handed to the visitor.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedEntry<'a> {
    /// Its index in the log.
    pub index: u64,
    /// Its Merkle leaf hash.
    pub leaf_hash: &'a Hash,
    /// The decoded entry.
    pub entry: &'a Entry,
}

/// What a successful verification covered.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Entries verified (the checkpoint's size).
    pub entries: u64,
    /// Entry bundles read.
    pub bundles: u64,
    /// Hash tiles read and compared.
    pub hash_tiles: u64,
    /// Certificates seen (entries carrying one).
    pub certificates: u64,
    /// Entries by kind, in the order kinds were first seen.
    pub kinds: Vec<(String, u64)>,
    /// Earlier checkpoints the log was shown to extend: `(which, size)`.
    pub consistent_with: Vec<(&'static str, u64)>,
}

/// Serial number spaces: OpenSSH serials and X.509 serials are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SerialSpace {
    OpenSsh,
    X509,
}

impl SerialSpace {
    fn name(self) -> &'static str {
        match self {
            Self::OpenSsh => "OpenSSH",
            Self::X509 => "X.509",
        }
    }

    /// The space of an entry's certificate: by kind, and for `admin-sign` by
    /// the certificate bytes (an X.509 DER certificate starts with a SEQUENCE
    /// tag, an OpenSSH certificate blob with a length-prefixed type name).
    fn of(kind: EntryKind, bytes: &[u8]) -> Self {
        match kind {
            EntryKind::SshUserCert | EntryKind::SshHostCert => Self::OpenSsh,
            EntryKind::X509Cert => Self::X509,
            _ if bytes.first() == Some(&0x30) => Self::X509,
            _ => Self::OpenSsh,
        }
    }
}

/// A bundle's entries, decoded and checked against its level-0 tile.
struct CheckedBundle {
    leaves: Vec<Hash>,
    entries: Vec<Entry>,
}

fn bundle_width(size: u64, bundle: u64) -> u16 {
    let first = bundle * u64::from(TILE_WIDTH);
    // `first < size` for every bundle asked for, so this is 1..=256.
    (size - first).min(u64::from(TILE_WIDTH)) as u16
}

fn tile_err(e: signet_log::Error) -> AuditError {
    VerifyFailure::BadTile {
        path: "tile".into(),
        reason: e.to_string(),
    }
    .into()
}

/// Fetches bundle `bundle` and its level-0 tile, compares every entry's leaf
/// hash with the tile, and decodes every entry.
fn check_bundle(source: &dyn LogSource, size: u64, bundle: u64) -> Result<CheckedBundle> {
    let width = bundle_width(size, bundle);
    let bundle_path = TilePath::entries(bundle, width).map_err(tile_err)?;
    let tile_path = TilePath::hash(0, bundle, width).map_err(tile_err)?;
    let raw = fetch_bundle(source, &bundle_path, size)?;
    let tile = fetch_hash_tile(source, &tile_path, size)?;
    let first = bundle * u64::from(TILE_WIDTH);
    let mut leaves = Vec::with_capacity(raw.len());
    let mut entries = Vec::with_capacity(raw.len());
    for ((i, bytes), tile_hash) in raw.iter().enumerate().zip(tile.hashes()) {
        let index = first + i as u64;
        let leaf = leaf_hash(bytes);
        if &leaf != tile_hash {
            return Err(VerifyFailure::LeafMismatch {
                index,
                path: tile_path.to_string(),
            }
            .into());
        }
        let entry = Entry::from_bytes(bytes).map_err(|e| VerifyFailure::BadEntry {
            index,
            path: bundle_path.to_string(),
            reason: e.to_string(),
        })?;
        leaves.push(leaf);
        entries.push(entry);
    }
    Ok(CheckedBundle { leaves, entries })
}

/// Runs `check_bundle` for `bundles` on up to `threads` threads; results in order.
fn check_batch(
    source: &dyn LogSource,
    size: u64,
    bundles: std::ops::Range<u64>,
    threads: usize,
) -> Vec<Result<CheckedBundle>> {
    let count = (bundles.end - bundles.start) as usize;
    let threads = threads.clamp(1, count.max(1));
    if threads == 1 {
        return bundles.map(|b| check_bundle(source, size, b)).collect();
    }
    let next = AtomicU64::new(bundles.start);
    let mut results: Vec<(u64, Result<CheckedBundle>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= bundles.end {
                            break;
                        }
                        out.push((b, check_bundle(source, size, b)));
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for w in workers {
            match w.join() {
                Ok(mut part) => all.append(&mut part),
                // A worker panicked: re-raise it here rather than hide it.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    results.sort_by_key(|(b, _)| *b);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Verifies the whole log against `checkpoint` (which the caller verified
/// against the pinned key), and that it extends every checkpoint in
/// `previous`.
///
/// `visit` sees every entry in order once it is checked; its error stops
/// the run. Nothing the visitor saw is verified until this returns `Ok`:
/// callers that print results must hold them back until then.
/// `progress(done, total)` is called after each batch.
pub fn verify_log(
    source: &dyn LogSource,
    checkpoint: &Checkpoint,
    previous: &[Previous],
    visit: &mut dyn FnMut(VerifiedEntry<'_>) -> Result<()>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary> {
    let size = checkpoint.size();
    let mut prefixes: Vec<&Previous> = Vec::new();
    for p in previous {
        if p.checkpoint.size() > size {
            return Err(VerifyFailure::Rollback {
                which: p.which,
                old: p.checkpoint.size(),
                new: size,
            }
            .into());
        }
        if p.checkpoint.size() > 0 {
            prefixes.push(p);
        }
    }

    let mut summary = Summary {
        entries: size,
        ..Summary::default()
    };
    let mut range = CompactRange::new();
    let mut builder = TileBuilder::new();
    let mut completed: Vec<(NodeId, Hash)> = Vec::with_capacity(64);
    let mut serials: HashMap<(SerialSpace, String), u64> = HashMap::new();
    let mut kinds: Vec<(EntryKind, u64)> = Vec::new();

    let tile_width = u64::from(TILE_WIDTH);
    let bundles = size / tile_width + u64::from(size % tile_width != 0);
    let threads = source.parallelism();
    progress(0, size);
    let mut start = 0;
    while start < bundles {
        let end = start.saturating_add(BATCH_BUNDLES).min(bundles);
        for checked in check_batch(source, size, start..end, threads) {
            let checked = checked?;
            summary.bundles += 1;
            summary.hash_tiles += 1;
            for (leaf, entry) in checked.leaves.iter().zip(&checked.entries) {
                let index = range.size();
                if let Some(cert) = &entry.certificate {
                    summary.certificates += 1;
                    let space = SerialSpace::of(entry.kind, &cert.bytes.0);
                    if let Some(&first) = serials.get(&(space, cert.serial.clone())) {
                        return Err(VerifyFailure::SerialRepeat {
                            index,
                            first,
                            space: space.name(),
                            serial: cert.serial.clone(),
                        }
                        .into());
                    }
                    serials.insert((space, cert.serial.clone()), index);
                }
                match kinds.iter_mut().find(|(k, _)| *k == entry.kind) {
                    Some((_, n)) => *n += 1,
                    None => kinds.push((entry.kind, 1)),
                }

                completed.clear();
                range
                    .append(*leaf, |node, hash| {
                        if node.level % TILE_HEIGHT == 0 {
                            completed.push((node, *hash));
                        }
                    })
                    .map_err(tile_err)?;
                for (node, hash) in &completed {
                    if let Some((path, tile)) = builder.observe(*node, hash).map_err(tile_err)? {
                        // Level-0 tiles were compared hash by hash already.
                        if path.kind() != (TileKind::Hash { level: 0 }) {
                            compare_tile(source, &path, &tile.hashes().concat(), size)?;
                            summary.hash_tiles += 1;
                        }
                    }
                }
                for p in &prefixes {
                    if p.checkpoint.size() == range.size() {
                        if &range.root() != p.checkpoint.root() {
                            return Err(VerifyFailure::Inconsistent {
                                which: p.which,
                                old: p.checkpoint.size(),
                            }
                            .into());
                        }
                        summary.consistent_with.push((p.which, p.checkpoint.size()));
                    }
                }
                visit(VerifiedEntry {
                    index,
                    leaf_hash: leaf,
                    entry,
                })?;
            }
        }
        progress(range.size(), size);
        start = end;
    }

    for (path, tile) in builder.partial_tiles().map_err(tile_err)? {
        if path.kind() != (TileKind::Hash { level: 0 }) {
            compare_tile(source, &path, &tile.hashes().concat(), size)?;
            summary.hash_tiles += 1;
        }
    }
    summary.kinds = kinds.into_iter().map(|(k, n)| (kind_name(k), n)).collect();
    if range.size() != size || &range.root() != checkpoint.root() {
        return Err(VerifyFailure::RootMismatch { size }.into());
    }
    Ok(summary)
}

/// Fetches hash tile `path` and compares it with the recomputed hashes.
fn compare_tile(source: &dyn LogSource, path: &TilePath, want: &[u8], size: u64) -> Result<()> {
    let got = fetch_hash_tile(source, path, size)?;
    if got.hashes().concat() != want {
        return Err(VerifyFailure::TileMismatch {
            path: path.to_string(),
        }
        .into());
    }
    Ok(())
}

/// The kind's name as written in entries (`ssh-user-cert`, …).
pub fn kind_name(kind: EntryKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}
