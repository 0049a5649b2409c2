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
//! 3. no serial of an issued certificate repeats, counted separately for
//!    OpenSSH and X.509;
//! 4. the tree is recomputed from the entries; every hash tile above level 0
//!    the log serves must equal the recomputed one;
//! 5. the roots of the first `n` entries, for each earlier trusted checkpoint
//!    of size `n`, must equal that checkpoint's root (consistency, checked
//!    directly rather than through a proof), and the whole tree must have the
//!    checkpoint's size and root.
//!
//! Memory stays small: the compact range, one partial tile per level, one
//! map of serials, and a bounded window of bundles in flight. Bundles are
//! fetched and decoded in parallel; everything order-dependent runs in log
//! order on the calling thread.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use signet_log::checkpoint::Checkpoint;
use signet_log::entry::{Entry, EntryKind};
use signet_log::merkle::{leaf_hash, CompactRange, Hash, NodeId};
use signet_log::tiles::{TileBuilder, TileKind, TilePath, TILE_HEIGHT, TILE_WIDTH};

use super::error::{detail, AuditError, Result, VerifyFailure};
use super::fetch::{fetch_bundle, fetch_hash_tile};
use super::source::LogSource;

/// Most entry bundles fetched and decoded ahead of the ones merged.
pub const WINDOW: u64 = 32;

/// Progress is reported every this many bundles.
const PROGRESS_BUNDLES: u64 = 16;

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

/// A serial number held inline (no allocation per certificate): its length
/// and its text, which the entry format limits to 40 characters. A longer one
/// (which a decoded entry cannot hold) is kept as its SHA-256.
type SerialKey = [u8; 41];

fn serial_key(serial: &str) -> SerialKey {
    let mut key = [0u8; 41];
    let bytes = serial.as_bytes();
    if bytes.len() <= 40 {
        key[0] = bytes.len() as u8;
        key[1..=bytes.len()].copy_from_slice(bytes);
    } else {
        key[0] = 0xff;
        key[1..33].copy_from_slice(&Sha256::digest(bytes));
    }
    key
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
    let bundle_bytes = fetch_bundle(source, &bundle_path, size)?;
    let raw = bundle_bytes
        .entries()
        .get(..usize::from(width))
        .ok_or_else(|| VerifyFailure::BadTile {
            path: bundle_path.to_string(),
            reason: "fewer entries than its width".into(),
        })?;
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
            reason: detail(&e),
        })?;
        // What the entry says must be what its certificate says: auditors
        // search and read the entry's fields, servers trust the certificate.
        signet_log::entry::check_certificate_contents(&entry).map_err(|e| {
            VerifyFailure::BadEntry {
                index,
                path: bundle_path.to_string(),
                reason: detail(&e),
            }
        })?;
        leaves.push(leaf);
        entries.push(entry);
    }
    Ok(CheckedBundle { leaves, entries })
}

/// The order-dependent half of the check: the tree, the tiles above level 0,
/// serials, earlier checkpoints, and the visitor. Fed bundles in log order.
struct Merger<'a> {
    source: &'a dyn LogSource,
    size: u64,
    prefixes: Vec<&'a Previous>,
    summary: Summary,
    range: CompactRange,
    builder: TileBuilder,
    completed: Vec<(NodeId, Hash)>,
    serials: HashMap<(SerialSpace, SerialKey), u64>,
    kinds: Vec<(EntryKind, u64)>,
}

impl<'a> Merger<'a> {
    fn push(
        &mut self,
        checked: CheckedBundle,
        visit: &mut dyn FnMut(VerifiedEntry<'_>) -> Result<()>,
    ) -> Result<()> {
        self.summary.bundles += 1;
        self.summary.hash_tiles += 1;
        for (leaf, entry) in checked.leaves.iter().zip(&checked.entries) {
            let index = self.range.size();
            if let Some(cert) = &entry.certificate {
                self.summary.certificates += 1;
                // Serials of issued certificates; a certificate recorded by
                // another kind (a rotated CA key's) is not an issuance.
                if entry.kind.issues_certificate() {
                    let space = SerialSpace::of(entry.kind, &cert.bytes.0);
                    let key = (space, serial_key(&cert.serial));
                    if let Some(&first) = self.serials.get(&key) {
                        return Err(VerifyFailure::SerialRepeat {
                            index,
                            first,
                            space: space.name(),
                            serial: cert.serial.clone(),
                        }
                        .into());
                    }
                    self.serials.insert(key, index);
                }
            }
            match self.kinds.iter_mut().find(|(k, _)| *k == entry.kind) {
                Some((_, n)) => *n += 1,
                None => self.kinds.push((entry.kind, 1)),
            }

            let completed = &mut self.completed;
            completed.clear();
            self.range
                .append(*leaf, |node, hash| {
                    if node.level % TILE_HEIGHT == 0 {
                        completed.push((node, *hash));
                    }
                })
                .map_err(tile_err)?;
            for (node, hash) in &self.completed {
                if let Some((path, tile)) = self.builder.observe(*node, hash).map_err(tile_err)? {
                    // Level-0 tiles were compared hash by hash already.
                    if path.kind() != (TileKind::Hash { level: 0 }) {
                        compare_tile(self.source, &path, &tile.hashes().concat(), self.size)?;
                        self.summary.hash_tiles += 1;
                    }
                }
            }
            for p in &self.prefixes {
                if p.checkpoint.size() == self.range.size() {
                    if &self.range.root() != p.checkpoint.root() {
                        return Err(VerifyFailure::Inconsistent {
                            which: p.which,
                            old: p.checkpoint.size(),
                        }
                        .into());
                    }
                    self.summary
                        .consistent_with
                        .push((p.which, p.checkpoint.size()));
                }
            }
            visit(VerifiedEntry {
                index,
                leaf_hash: leaf,
                entry,
            })?;
        }
        Ok(())
    }

    fn finish(mut self, checkpoint: &Checkpoint) -> Result<Summary> {
        for (path, tile) in self.builder.partial_tiles().map_err(tile_err)? {
            if path.kind() != (TileKind::Hash { level: 0 }) {
                compare_tile(self.source, &path, &tile.hashes().concat(), self.size)?;
                self.summary.hash_tiles += 1;
            }
        }
        self.summary.kinds = self
            .kinds
            .into_iter()
            .map(|(k, n)| (kind_name(k), n))
            .collect();
        if self.range.size() != self.size || &self.range.root() != checkpoint.root() {
            return Err(VerifyFailure::RootMismatch { size: self.size }.into());
        }
        Ok(self.summary)
    }
}

/// Verifies the whole log against `checkpoint` (which the caller verified
/// against the pinned key), and that it extends every checkpoint in
/// `previous`.
///
/// `visit` sees every entry in order once it is checked; its error stops
/// the run. Nothing the visitor saw is verified until this returns `Ok`:
/// callers that print results must hold them back until then.
/// `progress(done, total)` is called every few thousand entries.
///
/// Worker threads ([`LogSource::parallelism`] of them) fetch, hash and decode
/// bundles, at most [`WINDOW`] bundles ahead of the calling thread, which
/// does everything that depends on order.
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
    let mut merger = Merger {
        source,
        size,
        prefixes,
        summary: Summary {
            entries: size,
            ..Summary::default()
        },
        range: CompactRange::new(),
        builder: TileBuilder::new(),
        completed: Vec::with_capacity(64),
        serials: HashMap::new(),
        kinds: Vec::new(),
    };

    let tile_width = u64::from(TILE_WIDTH);
    let bundles = size.div_ceil(tile_width);
    let threads = source.parallelism().max(1);
    progress(0, size);

    let next = AtomicU64::new(0);
    let merged = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<(u64, Result<CheckedBundle>)>(WINDOW as usize);
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, merged, stop) = (&next, &merged, &stop);
            scope.spawn(move || loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= bundles {
                    return;
                }
                // Stay within the window, so memory is bounded however slow
                // one fetch is.
                while b >= merged.load(Ordering::Acquire).saturating_add(WINDOW) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if tx.send((b, check_bundle(source, size, b))).is_err() {
                    return;
                }
            });
        }
        drop(tx);

        let result = (|| {
            let mut pending: BTreeMap<u64, Result<CheckedBundle>> = BTreeMap::new();
            for b in 0..bundles {
                let checked = loop {
                    if let Some(r) = pending.remove(&b) {
                        break r;
                    }
                    match rx.recv() {
                        Ok((i, r)) => {
                            pending.insert(i, r);
                        }
                        Err(_) => {
                            return Err(AuditError::Fetch {
                                what: source.describe(),
                                reason: "the fetching threads stopped early".into(),
                            })
                        }
                    }
                };
                merger.push(checked?, visit)?;
                merged.store(b + 1, Ordering::Release);
                if (b + 1) % PROGRESS_BUNDLES == 0 {
                    progress(merger.range.size(), size);
                }
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        result
    })?;
    progress(merger.range.size(), size);
    merger.finish(checkpoint)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_keys_are_exact() {
        assert_ne!(serial_key("1"), serial_key("10"));
        assert_ne!(serial_key("1"), serial_key("01"));
        assert_eq!(serial_key("abc"), serial_key("abc"));
        let long = "f".repeat(41);
        assert_eq!(serial_key(&long)[0], 0xff);
        assert_ne!(serial_key(&long), serial_key(&"f".repeat(42)));
    }

    #[test]
    fn serial_spaces() {
        assert_eq!(
            SerialSpace::of(EntryKind::SshHostCert, &[0x30]),
            SerialSpace::OpenSsh
        );
        assert_eq!(
            SerialSpace::of(EntryKind::X509Cert, &[0]),
            SerialSpace::X509
        );
        assert_eq!(
            SerialSpace::of(EntryKind::AdminSign, &[0x30, 0x82]),
            SerialSpace::X509
        );
        assert_eq!(
            SerialSpace::of(EntryKind::AdminSign, &[0, 0, 0, 0x20]),
            SerialSpace::OpenSsh
        );
    }

    #[test]
    fn bundle_widths() {
        assert_eq!(bundle_width(1000, 0), 256);
        assert_eq!(bundle_width(1000, 3), 232);
        assert_eq!(bundle_width(u64::MAX, u64::MAX / 256), 255);
    }
}
