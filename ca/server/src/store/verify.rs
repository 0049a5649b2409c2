//! Tamper evidence at rest: the local store verified against its own signed
//! checkpoint, entry by entry. The daemon runs this at start and `sign`
//! before issuing; a failure names the first bad index and the CA refuses
//! to issue until an operator restores the store.

use std::collections::HashSet;

use signet_log::checkpoint::open_checkpoint;
use signet_log::entry::{Entry, EntryKind};
use signet_log::merkle::{self, CompactRange};
use signet_log::note::{VerifierKey, VerifierSet};

use crate::store::{LocalStore, SerialKind};
use crate::{Error, Result};

/// What a successful check covered.
#[derive(Debug, Clone, Copy)]
pub struct CheckReport {
    /// Entries checked.
    pub entries: u64,
    /// Size of the signed checkpoint the entries match.
    pub checkpoint_size: u64,
}

fn broken(index: Option<u64>, problem: impl Into<String>) -> Error {
    Error::Integrity {
        index,
        problem: problem.into(),
    }
}

/// Verifies the store: the checkpoint signature, every entry's encoding,
/// that every certificate says what its entry says, every stored hash, the
/// serial index, and the root against the checkpoint.
pub fn check_store(store: &LocalStore, verifier: &VerifierKey) -> Result<CheckReport> {
    let latest = store
        .latest_checkpoint()
        .ok_or_else(|| broken(None, "the store has no signed checkpoint"))?;
    let verifiers = VerifierSet::new(vec![verifier.clone()])?;
    let opened =
        open_checkpoint(latest.note.as_bytes(), verifier.name(), &verifiers).map_err(|e| {
            broken(
                None,
                format!("the stored checkpoint does not verify with the log key: {e}"),
            )
        })?;
    opened.note.require(verifier).map_err(|e| {
        broken(
            None,
            format!("the stored checkpoint is not signed by the log key: {e}"),
        )
    })?;
    let signed_size = opened.checkpoint.size();
    let reader = store.reader()?;
    let size = reader.end()?;
    if size < signed_size {
        return Err(broken(
            Some(size),
            format!("the log is truncated: the signed checkpoint covers {signed_size} entries, the store has {size}"),
        ));
    }
    if reader.entry_count()? != size {
        // Some index below `size` is missing; find the first.
        for index in 0..size {
            if reader.entry(index)?.is_none() {
                return Err(broken(Some(index), format!("entry {index} is missing")));
            }
        }
    }
    let mut tree = CompactRange::new();
    let mut serials: HashSet<(bool, String)> = HashSet::new();
    for index in 0..size {
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
            let kind = match entry.kind {
                EntryKind::X509Cert => SerialKind::X509,
                _ => SerialKind::Ssh,
            };
            if !serials.insert((kind == SerialKind::X509, cert.serial.clone())) {
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
        if tree.size() == signed_size && tree.root() != *opened.checkpoint.root() {
            return Err(broken(
                None,
                format!("the entries do not hash to the signed checkpoint of size {signed_size}"),
            ));
        }
    }
    if signed_size == 0 && tree.root() != *opened.checkpoint.root() {
        return Err(broken(None, "the empty log does not match its checkpoint"));
    }
    Ok(CheckReport {
        entries: size,
        checkpoint_size: signed_size,
    })
}
