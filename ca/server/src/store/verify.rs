//! Tamper evidence at rest: a stored log verified against its own signed
//! checkpoint and the high-water mark, entry by entry, before the CA signs
//! anything over it. A failure names the first bad index and what was found;
//! the CA then refuses to issue until the store is restored.

use std::collections::HashSet;

use sha2::Digest;
use signet_log::entry::Entry;
use signet_log::merkle::{self, CompactRange};
use signet_log::note::VerifierKey;

use super::{LogRead, SerialKind, SignedCheckpoint};
use crate::{Error, Result};

/// What a successful verification covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckReport {
    /// Entries checked.
    pub entries: u64,
    /// Size of the signed checkpoint the entries match.
    pub checkpoint_size: u64,
    /// Size of the high-water mark the store was compared with (`None`: no
    /// mark had been written yet, a brand-new log).
    pub high_water: Option<u64>,
}

/// A verified stored log: its checkpoint (none only for a new, empty store)
/// and the tree frontier the writer continues from.
pub(crate) struct Verified {
    pub(crate) checkpoint: Option<SignedCheckpoint>,
    pub(crate) tree: CompactRange,
    pub(crate) report: CheckReport,
    /// SHA-256 of every certificate in an `admin-sign` entry (the roots and
    /// attestations the ceremony logged).
    pub(crate) admin_certificates: HashSet<[u8; 32]>,
}

pub(crate) fn broken(index: Option<u64>, problem: impl Into<String>) -> Error {
    Error::Integrity {
        index,
        problem: problem.into(),
    }
}

/// Verifies a stored log: the checkpoint's signature, that it covers exactly
/// the stored entries, every entry's encoding, that every certificate says
/// what its entry says, every stored hash, the serial index, the root, and
/// that the log is not behind or beside the high-water mark (`mark`, already
/// verified with the log key).
pub(crate) fn verify_log(
    reader: &dyn LogRead,
    stored_checkpoint: Option<&[u8]>,
    verifier: &VerifierKey,
    mark: Option<&SignedCheckpoint>,
    mark_place: &str,
    adopting_mark: bool,
) -> Result<Verified> {
    let end = reader.end()?;
    let checkpoint = match stored_checkpoint {
        None if end == 0 => None,
        None => {
            return Err(broken(
                None,
                format!(
                    "the store holds {end} entries but no signed checkpoint (the CA commits \
                     entries and their checkpoint together, so the checkpoint was removed)"
                ),
            ))
        }
        Some(note) => Some(SignedCheckpoint::verify(note, verifier).map_err(|e| {
            broken(
                None,
                format!("the stored checkpoint does not verify with the log key: {e}"),
            )
        })?),
    };
    let signed_size = checkpoint.as_ref().map_or(0, |c| c.size);
    if end < signed_size {
        return Err(broken(
            Some(end),
            format!(
                "the log is truncated: the signed checkpoint covers {signed_size} entries, \
                 the store has {end}"
            ),
        ));
    }
    if end > signed_size {
        return Err(broken(
            Some(signed_size),
            format!(
                "the store holds {end} entries but its signed checkpoint covers only \
                 {signed_size} (entries were added outside the CA)"
            ),
        ));
    }
    if mark.is_none() && end > 0 && !adopting_mark {
        return Err(broken(
            None,
            format!(
                "the store holds {end} entries but there is no high-water mark in {mark_place}: \
                 the mark was deleted (or rolled back with the token), or the log predates it. \
                 Nothing shows this store is the newest copy of the log. If you know it is, \
                 adopt it with `signet-ca log adopt-mark`; otherwise restore the newest copy \
                 with `signet-ca log restore`"
            ),
        ));
    }
    if let Some(mark) = mark {
        if mark.size > signed_size {
            return Err(broken(
                None,
                format!(
                    "the store is behind the high-water mark: it holds {signed_size} entries, \
                     but the CA signed and handed out a checkpoint of {} entries (kept in {mark_place}). \
                     This is an old copy of the store; rebuild it from a mirror or export with \
                     `signet-ca log restore --from DIR|URL`",
                    mark.size
                ),
            ));
        }
    }
    if reader.entry_count()? != end {
        for index in 0..end {
            if reader.entry(index)?.is_none() {
                return Err(broken(Some(index), format!("entry {index} is missing")));
            }
        }
    }
    let mut tree = CompactRange::new();
    let mut serials: HashSet<String> = HashSet::new();
    let mut admin_certificates: HashSet<[u8; 32]> = HashSet::new();
    check_prefixes(&tree, checkpoint.as_ref(), mark, mark_place)?;
    for index in 0..end {
        let bytes = reader
            .entry(index)?
            .ok_or_else(|| broken(Some(index), format!("entry {index} is missing")))?;
        let entry = Entry::from_bytes(&bytes).map_err(|e| {
            broken(
                Some(index),
                format!("entry {index} is not a valid entry: {e}"),
            )
        })?;
        signet_log::entry::check_certificate_contents(&entry)
            .map_err(|e| broken(Some(index), format!("entry {index}: {e}")))?;
        let mut mismatch = None;
        tree.append(merkle::leaf_hash(&bytes), |node, hash| {
            if mismatch.is_none() {
                match reader.node(node.level, node.index) {
                    Ok(Some(stored)) if &stored == hash => {}
                    _ => mismatch = Some(node),
                }
            }
        })?;
        if let Some(node) = mismatch {
            let what = if node.level == 0 {
                format!("entry {index} does not match its recorded hash (modified or moved)")
            } else {
                format!(
                    "the stored tree hash ({}, {}) does not match the entries",
                    node.level, node.index
                )
            };
            return Err(broken(Some(index), what));
        }
        if let Some(cert) = &entry.certificate {
            if entry.kind == signet_log::entry::EntryKind::AdminSign {
                admin_certificates.insert(sha2::Sha256::digest(&cert.bytes.0).into());
            }
            let kind = SerialKind::of(entry.kind, &cert.bytes.0);
            if !serials.insert(kind.key(&cert.serial)) {
                return Err(broken(
                    Some(index),
                    format!("entry {index} repeats serial {}", cert.serial),
                ));
            }
            if reader.serial_index(kind, &cert.serial)? != Some(index) {
                return Err(broken(
                    Some(index),
                    format!("the serial index does not point at entry {index}"),
                ));
            }
        }
        check_prefixes(&tree, checkpoint.as_ref(), mark, mark_place)?;
    }
    Ok(Verified {
        report: CheckReport {
            entries: end,
            checkpoint_size: signed_size,
            high_water: mark.map(|m| m.size),
        },
        checkpoint,
        tree,
        admin_certificates,
    })
}

/// At the sizes of the checkpoint and the mark, the replayed tree must have
/// their roots: otherwise the entries were rewritten, or the store is a fork
/// of what the CA published.
fn check_prefixes(
    tree: &CompactRange,
    checkpoint: Option<&SignedCheckpoint>,
    mark: Option<&SignedCheckpoint>,
    mark_place: &str,
) -> Result<()> {
    if let Some(checkpoint) = checkpoint {
        if tree.size() == checkpoint.size && tree.root() != checkpoint.root {
            return Err(broken(
                None,
                format!(
                    "the entries do not hash to the signed checkpoint of size {}",
                    checkpoint.size
                ),
            ));
        }
    }
    if let Some(mark) = mark {
        if tree.size() == mark.size && tree.root() != mark.root {
            return Err(broken(
                None,
                format!(
                    "the store is a fork: its first {} entries differ from the log the CA \
                     published (high-water mark in {mark_place})",
                    mark.size
                ),
            ));
        }
    }
    Ok(())
}
