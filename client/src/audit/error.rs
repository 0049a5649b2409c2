//! The audit library's one error type, grouped by what the caller should do
//! about it (which is also the CLI's exit code).

/// `Result` with [`AuditError`].
pub type Result<T> = std::result::Result<T, AuditError>;

/// Everything `signet audit` can fail with.
///
/// The variants fall into three groups, mapped by [`AuditError::class`]:
/// the log does not verify, the local input is wrong, or the log could not
/// be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log failed verification: tampering, inconsistency, or a log that
    /// does not serve what its signed checkpoint commits to.
    #[error(transparent)]
    Verification(#[from] VerifyFailure),
    /// A file or flag given by the user is unusable (key, certificate,
    /// earlier checkpoint, time).
    #[error("{0}")]
    BadInput(String),
    /// The log (or local state) could not be read or written.
    #[error("could not fetch {what}: {reason}")]
    Fetch {
        /// The path or URL.
        what: String,
        /// Why.
        reason: String,
    },
    /// Local state or output could not be written.
    #[error("could not write {what}: {reason}")]
    Write {
        /// The file.
        what: String,
        /// Why.
        reason: String,
    },
}

/// A `signet-log` error's message without its category prefix (the caller's
/// message already says whether it is a tile, an entry or a checkpoint).
pub(crate) fn detail(e: &signet_log::Error) -> String {
    use signet_log::Error as E;
    match e {
        E::Merkle(x) => x.to_string(),
        E::Tile(x) => x.to_string(),
        E::Checkpoint(x) => x.to_string(),
        E::Note(x) => x.to_string(),
        E::Entry(x) => x.to_string(),
        other => other.to_string(),
    }
}

/// How bad an [`AuditError`] is, from the auditor's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The log does not verify.
    Verification,
    /// The user's input is wrong.
    BadInput,
    /// Nothing could be concluded: the log or local files were unreachable.
    Unavailable,
}

impl AuditError {
    /// Which group the error is in.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Verification(_) => ErrorClass::Verification,
            Self::BadInput(_) => ErrorClass::BadInput,
            Self::Fetch { .. } | Self::Write { .. } => ErrorClass::Unavailable,
        }
    }

    pub(crate) fn bad_input(msg: impl Into<String>) -> Self {
        Self::BadInput(msg.into())
    }
}

/// Why a log failed verification. Every variant names where: the entry
/// index, the tile path, or the checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyFailure {
    /// The checkpoint is malformed, not signed by the pinned key, or of
    /// another origin.
    #[error("checkpoint {source_name}: {reason}")]
    Checkpoint {
        /// Where it came from (`checkpoint`, or a file name).
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tile or entry bundle the checkpoint commits to is missing.
    #[error("{path}: missing, but the checkpoint (size {size}) commits to it")]
    MissingTile {
        /// The tile path.
        path: String,
        /// The checkpoint's size.
        size: u64,
    },
    /// A tile or entry bundle is malformed.
    #[error("{path}: {reason}")]
    BadTile {
        /// The tile path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry is malformed, non-canonical or of an unknown version.
    #[error("entry {index} (in {path}): {reason}")]
    BadEntry {
        /// The entry's index.
        index: u64,
        /// Its bundle.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry's leaf hash differs from the hash tile's.
    #[error("entry {index}: its hash differs from {path} (entry changed, removed or reordered)")]
    LeafMismatch {
        /// The entry's index.
        index: u64,
        /// The level-0 hash tile.
        path: String,
    },
    /// A hash tile above level 0 differs from the tree recomputed from the entries.
    #[error("{path}: differs from the tree recomputed from the entries")]
    TileMismatch {
        /// The tile path.
        path: String,
    },
    /// The tree recomputed from the entries does not have the checkpoint's root.
    #[error("the tree of the {size} entries does not have the checkpoint's root hash")]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
    },
    /// A certificate serial appears twice.
    #[error("entry {index}: {space} serial {serial} was already used by entry {first}")]
    SerialRepeat {
        /// The later entry.
        index: u64,
        /// The entry that used it first.
        first: u64,
        /// `OpenSSH` or `X.509`.
        space: &'static str,
        /// The serial.
        serial: String,
    },
    /// The log is smaller than an earlier trusted checkpoint.
    #[error(
        "the log's checkpoint (size {new}) is older than the {which} checkpoint (size {old}): \
         the log was truncated or rolled back, or this is a copy older than what was \
         verified before; nothing about the log is verified until it serves at least size {old}"
    )]
    Rollback {
        /// Which earlier checkpoint: `remembered` or `--since`.
        which: &'static str,
        /// Its size.
        old: u64,
        /// The log's size.
        new: u64,
    },
    /// The log's first entries do not have the root of an earlier trusted checkpoint.
    #[error(
        "the log is not consistent with the {which} checkpoint: its first {old} entries have \
         another root hash (the log was rewritten or forked)"
    )]
    Inconsistent {
        /// Which earlier checkpoint: `remembered` or `--since`.
        which: &'static str,
        /// That checkpoint's size.
        old: u64,
    },
    /// A certificate is not in the verified log.
    #[error("certificate {sha256} is not in the log (all {size} entries verified)")]
    NotLogged {
        /// Hex SHA-256 of the certificate.
        sha256: String,
        /// Entries searched.
        size: u64,
    },
    /// An inclusion or consistency proof computed from tiles failed.
    #[error("{what}: {reason}")]
    Proof {
        /// Which proof.
        what: String,
        /// Why.
        reason: String,
    },
}
