//! Replaying a whole log: the auditor's end-to-end check.
//!
//! Every entry must decode as a canonical entry of a known version, and the
//! tree over all of them must have exactly the size and root of a verified
//! checkpoint. Memory stays `O(log n)` whatever the log's length.

use crate::checkpoint::Checkpoint;
use crate::entry::Entry;
use crate::error::{MerkleError, Result};
use crate::merkle::{leaf_hash, CompactRange};

/// A log being replayed entry by entry, in order.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    range: CompactRange,
}

impl Replay {
    /// A replay from the first entry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the next entry and adds it to the tree. On error the entry is
    /// not added; its index is [`Replay::size`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<Entry> {
        let entry = Entry::from_bytes(bytes)?;
        self.range.append(leaf_hash(bytes), |_, _| ())?;
        Ok(entry)
    }

    /// Entries replayed so far.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// Checks that the entries replayed are exactly the tree of `checkpoint`
    /// (which the caller has verified with [`crate::checkpoint::open_checkpoint`]).
    pub fn finish(&self, checkpoint: &Checkpoint) -> Result<()> {
        if self.range.size() != checkpoint.size() {
            return Err(MerkleError::SizeMismatch {
                expected: checkpoint.size(),
                got: self.range.size(),
            }
            .into());
        }
        if &self.range.root() != checkpoint.root() {
            return Err(MerkleError::RootMismatch.into());
        }
        Ok(())
    }
}
