//! The crate's one error type.
//!
//! Errors are grouped by the part of the log they come from, so a caller can
//! match on a category (`Error::Proof(_)`) without knowing every variant.
//! Signature failures deliberately say only *that* a signature failed, never
//! why: the detail is of no use to an attacker-controlled input's author and of
//! little use to anyone else.

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in `signet-log`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Merkle tree arguments or proofs are wrong.
    #[error("merkle: {0}")]
    Merkle(#[from] MerkleError),
    /// A tile path, hash tile or entry bundle is malformed.
    #[error("tile: {0}")]
    Tile(#[from] TileError),
    /// A checkpoint body is malformed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A signed note, signature line or verifier key is malformed or does not verify.
    #[error("note: {0}")]
    Note(#[from] NoteError),
    /// A log entry is malformed, non-canonical or of an unknown version.
    #[error("entry: {0}")]
    Entry(#[from] EntryError),
    /// A witness policy is invalid, or a checkpoint does not meet it.
    #[error("witness: {0}")]
    Witness(#[from] WitnessError),
    /// A certificate's proof of logging is missing, malformed or does not
    /// verify, or a certificate is not what its entry records.
    #[error("{0}")]
    Proof(#[from] ProofError),
}

/// Witness policy errors: a bad configuration, or a checkpoint without the
/// cosignatures the policy demands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The policy is invalid; `field` names it as in the TOML form
    /// (`witnesses.threshold`, `witnesses.witness[1].vkey`, ...).
    #[error("{field}: {reason}")]
    BadPolicy {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Fewer distinct configured witnesses cosigned than the threshold.
    #[error(
        "checkpoint cosigned by {} of the {} witnesses needed ({}); no valid cosignature from: {}",
        cosigned.len(),
        threshold,
        if cosigned.is_empty() { "none".to_owned() } else { cosigned.join(", ") },
        if missing.is_empty() { "none".to_owned() } else { missing.join(", ") }
    )]
    ThresholdNotMet {
        /// The policy's threshold.
        threshold: usize,
        /// Witnesses (display names) whose cosignature verified.
        cosigned: Vec<String>,
        /// Configured witnesses without a cosignature on the note.
        missing: Vec<String>,
    },
    /// A cosignature line by a configured witness's key does not verify.
    #[error("cosignature by witness {witness:?} is invalid: {reason}")]
    BadCosignature {
        /// The witness's display name.
        witness: String,
        /// Why.
        reason: String,
    },
    /// The log key given is a `cosignature/v1` key, which signs no checkpoint.
    #[error("log key {0:?} is a cosignature/v1 key, not a note signing key")]
    LogKeyIsCosignatureKey(String),
}

/// Merkle tree errors: bad sizes and indices, proofs of the wrong shape, and
/// proofs that do not lead to the claimed root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// A leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The older tree of a consistency proof is bigger than the newer one.
    #[error("tree size {old} is larger than tree size {new}")]
    SizesOutOfOrder {
        /// The first (older) size.
        old: u64,
        /// The second (newer) size.
        new: u64,
    },
    /// A consistency proof from the empty tree was asked for or given.
    #[error("consistency with an empty tree proves nothing")]
    EmptyOldTree,
    /// A proof has a different number of hashes than the sizes demand.
    #[error("proof has {got} hashes, {expected} expected")]
    WrongProofLength {
        /// What the sizes and index demand.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The proof does not lead to the expected root hash.
    #[error("proof does not match the root hash")]
    RootMismatch,
    /// A replayed log has a different number of entries than its checkpoint.
    #[error("log has {got} entries, checkpoint says {expected}")]
    SizeMismatch {
        /// The checkpoint's tree size.
        expected: u64,
        /// Entries replayed.
        got: u64,
    },
    /// Two trees of the same size have different roots.
    #[error("trees of equal size have different roots")]
    DifferentRoots,
    /// A subtree that is not complete, or lies outside the tree, was asked for.
    #[error("no complete subtree at level {level}, index {index}")]
    BadSubtree {
        /// Height of the subtree (0 = a leaf).
        level: u32,
        /// Index of the subtree within its level.
        index: u64,
    },
    /// A hash store does not have a hash it was asked for.
    #[error("hash store is missing level {level}, index {index}")]
    MissingHash {
        /// Height of the subtree (0 = a leaf).
        level: u32,
        /// Index of the subtree within its level.
        index: u64,
    },
    /// The tree cannot grow any further (2^64 - 1 leaves).
    #[error("tree is full")]
    TreeFull,
    /// A compact range was given hashes that do not fit its size.
    #[error("compact range for size {size} needs {expected} hashes, got {got}")]
    BadCompactRange {
        /// The tree size.
        size: u64,
        /// Hashes the size demands (one per set bit).
        expected: usize,
        /// Hashes given.
        got: usize,
    },
}

/// Tile errors (C2SP tlog-tiles).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TileError {
    /// A tile path does not follow the `tile/<L>/<N>[.p/<W>]` grammar.
    #[error("malformed tile path")]
    BadPath,
    /// A tile level above 63.
    #[error("tile level {0} is above 63")]
    BadLevel(u64),
    /// A width outside 1..=256.
    #[error("tile width {0} is outside 1..=256")]
    BadWidth(u64),
    /// Tile bytes are not a whole number of hashes, or not the expected width.
    #[error("hash tile is {got} bytes, {expected} expected")]
    WrongTileLength {
        /// `32 * width`.
        expected: usize,
        /// What arrived.
        got: usize,
    },
    /// An entry bundle ends in the middle of an entry.
    #[error("entry bundle is truncated")]
    TruncatedBundle,
    /// An entry bundle holds a different number of entries than its width.
    #[error("entry bundle has {got} entries, {expected} expected")]
    WrongEntryCount {
        /// The bundle's width.
        expected: usize,
        /// Entries found (counting stops just past the expected number).
        got: usize,
    },
    /// An entry is longer than the 65535 bytes a bundle can hold.
    #[error("entry of {0} bytes does not fit a bundle")]
    EntryTooLarge(usize),
    /// A tile or bundle would need more than 256 items.
    #[error("too many items for one tile")]
    TooManyItems,
    /// A tile needed for the tree size is not in the tile set.
    #[error("missing tile {0}")]
    MissingTile(String),
    /// A tile's width does not match what the tree size demands.
    #[error("tile {path} has width {got}, tree size needs {expected}")]
    WidthMismatch {
        /// The tile.
        path: String,
        /// Width the tree size implies.
        expected: u16,
        /// Width supplied.
        got: u16,
    },
}

/// Checkpoint body errors (C2SP tlog-checkpoint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The body is longer than [`crate::checkpoint::MAX_CHECKPOINT_LEN`].
    #[error("checkpoint is too long")]
    TooLong,
    /// The body does not end in a newline.
    #[error("checkpoint does not end in a newline")]
    MissingFinalNewline,
    /// Fewer than three lines.
    #[error("checkpoint has fewer than three lines")]
    TooFewLines,
    /// The origin line is empty or holds forbidden characters.
    #[error("bad origin line")]
    BadOrigin,
    /// The size line is not a canonical decimal `u64`.
    #[error("bad tree size line")]
    BadSize,
    /// The root hash line is not canonical base64 of 32 bytes.
    #[error("bad root hash line")]
    BadRootHash,
    /// An extension line is empty or holds forbidden characters.
    #[error("bad extension line")]
    BadExtension,
    /// More extension lines than [`crate::checkpoint::MAX_EXTENSIONS`].
    #[error("too many extension lines")]
    TooManyExtensions,
    /// The checkpoint names a different log than expected.
    #[error("checkpoint is for origin {got:?}, expected {expected:?}")]
    WrongOrigin {
        /// The origin the caller trusts.
        expected: String,
        /// The origin in the checkpoint.
        got: String,
    },
}

/// Signed-note errors (C2SP signed-note) and verifier key errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is larger than [`crate::note::MAX_NOTE_LEN`].
    #[error("note is too long")]
    TooLong,
    /// The note is not UTF-8, holds control characters, or has no
    /// signature block.
    #[error("malformed note")]
    Malformed,
    /// A signature line is malformed.
    #[error("malformed signature line")]
    BadSignatureLine,
    /// More signature lines than [`crate::note::MAX_SIGNATURES`].
    #[error("too many signatures")]
    TooManySignatures,
    /// A key name is empty or holds a space or `+`.
    #[error("bad key name")]
    BadKeyName,
    /// A verifier key string is malformed.
    #[error("malformed verifier key")]
    BadVerifierKey,
    /// The key id in a verifier key does not match its name and key.
    #[error("verifier key id does not match the key")]
    KeyIdMismatch,
    /// A verifier key has a signature type this crate does not support.
    #[error("unsupported signature type {0:#04x}")]
    UnsupportedKeyType(u8),
    /// Two verifier keys share both name and key id.
    #[error("two verifier keys share name {0:?} and key id")]
    DuplicateVerifier(String),
    /// A signature by a known key does not verify.
    #[error("invalid signature by {0:?}")]
    BadSignature(String),
    /// No signature in the note is by a known key.
    #[error("no signature by a known key")]
    NoKnownSignature,
    /// A signature the caller requires is not in the note.
    #[error("missing signature by {0:?}")]
    MissingSignature(String),
    /// A note must carry at least one signature.
    #[error("no signer given")]
    NoSigner,
    /// The signer returned an error (for example, the HSM was unavailable).
    #[error("signer failed: {0}")]
    Signer(String),
    /// The text to sign is not a valid note text.
    #[error(
        "text to sign must be non-empty UTF-8, end in a newline and hold no control characters"
    )]
    BadText,
    /// A cosignature line by this key name is not a 72-byte `cosignature/v1`
    /// timestamped signature with a timestamp of at most 2^63 - 1.
    #[error("malformed cosignature by {0:?}")]
    MalformedCosignature(String),
    /// A cosignature was checked against a key that is not a `cosignature/v1` key.
    #[error("key {0:?} is not a cosignature/v1 (type 0x04) key")]
    NotACosignatureKey(String),
    /// A cosignature timestamp above 2^63 - 1 was asked for.
    #[error("cosignature timestamp above 2^63 - 1")]
    BadTimestamp,
}

/// Log entry errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not JSON, or not the shape of an entry (the message says where).
    #[error("invalid entry: {0}")]
    Invalid(String),
    /// The `version` field is missing or names a version this crate does not know.
    #[error("unsupported entry version")]
    UnsupportedVersion,
    /// The bytes are valid but not the canonical encoding of the entry.
    #[error("entry is not canonically encoded")]
    NonCanonical,
    /// The encoding is longer than an entry bundle can hold (65535 bytes).
    #[error("entry encoding is {0} bytes, at most 65535 allowed")]
    TooLarge(usize),
    /// A field has a value outside its allowed form (the message names it).
    #[error("bad field {0}")]
    BadField(&'static str),
    /// The certificate the entry carries does not parse, or says something
    /// else than the entry (the message names the field).
    #[error("the certificate does not match the entry: {0}")]
    CertificateMismatch(&'static str),
}

/// Why a certificate is not provably logged (`crate::certificate`). Each
/// refusal has its own variant, and its message names the reason, because
/// the node-side check writes it to sshd's log for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The certificate has no log-proof extension.
    #[error("the certificate carries no log proof (no {0} extension)")]
    NoProof(&'static str),
    /// The proof text is not in the format (the message names the part).
    #[error("malformed log proof: {0}")]
    Malformed(&'static str),
    /// The certificate cannot be taken back to the precertificate the log
    /// records: the proof extension is critical, repeated, not last, or the
    /// certificate does not re-encode to its own bytes.
    #[error("the certificate does not reduce to a precertificate: {0}")]
    NotReducible(&'static str),
    /// The proof's checkpoint is not signed by the trusted log key (or names
    /// another log).
    #[error("the proof's checkpoint is not signed by the log key {key:?}: {reason}")]
    NotSignedByLog {
        /// The trusted log key's name (the log's origin).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A configured witness's cosignature on the checkpoint is invalid.
    #[error("the proof's checkpoint has an invalid cosignature by witness {witness:?}")]
    BadCosignature {
        /// The witness's name in the policy.
        witness: String,
    },
    /// Too few configured witnesses cosigned the checkpoint.
    #[error("witness policy not met: {0}")]
    WitnessPolicyNotMet(String),
    /// The proof's entry records another certificate (its `sha256` is not
    /// the hash of this certificate's precertificate).
    #[error(
        "the proof is for another entry (its sha256 is not this certificate's precertificate)"
    )]
    OtherEntry,
    /// The proof's entry is not a precertificate entry.
    #[error("the proof's entry does not record a precertificate")]
    NotPrecertificateEntry,
    /// The entry's leaf is not at the index in the checkpoint's tree.
    #[error("the inclusion proof does not verify: {0}")]
    Inclusion(MerkleError),
    /// The logged entry says something else than the certificate (the
    /// message names the field).
    #[error("the logged entry does not match the certificate: {0}")]
    ContentsMismatch(&'static str),
}
