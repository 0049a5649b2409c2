//! Durable storage of the log, behind one trait so another backend
//! (PostgreSQL, for several CA replicas) can stand where the embedded redb
//! store stands today.
//!
//! The promises every backend keeps, and the types that hold them:
//! - a store is verified against its own signed checkpoint and the
//!   high-water mark kept outside it *before* anything is signed over it
//!   ([`local::LocalStore::open`] returns only a verified store);
//! - an append returns an [`Appended`] only once the entry is durable,
//!   covered by a signed checkpoint and the high-water mark has moved past
//!   it; nothing outside this module can make an `Appended` or a
//!   [`SignedCheckpoint`];
//! - a serial number is claimed by a [`SerialReservation`] guard that the
//!   append consumes and that releases the claim if it is dropped unused.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use signet_log::checkpoint::open_checkpoint;
use signet_log::entry::Entry;
use signet_log::merkle::{self, Hash, HashStore};
use signet_log::note::{VerifierKey, VerifierSet};
use signet_log::tiles::{TilePath, TileSource};

use crate::{Error, Result};

pub mod ceremonies;
pub mod configured;
pub mod high_water;
pub mod local;
pub mod postgres;
pub mod restore;
pub mod verify;
pub mod witnessing;

pub use ceremonies::{CeremonyStore, MemoryCeremonies};
pub use high_water::{FileMark, HighWaterMark, TokenMark};
pub use local::{CommitMode, LocalStore, StoreOptions};
pub use postgres::{PgConfig, PgOptions, PgStore};
pub use verify::CheckReport;
pub use witnessing::{WitnessState, Witnesses};

/// Which namespace a serial number belongs to: OpenSSH and X.509 serials
/// are unique within their kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SerialKind {
    /// A 64-bit OpenSSH certificate serial.
    Ssh,
    /// A 128-bit X.509 serial (hex).
    X509,
}

impl SerialKind {
    /// The key of a serial in the store's serial index.
    pub(crate) fn key(self, serial: &str) -> String {
        let prefix = match self {
            Self::Ssh => "ssh:",
            Self::X509 => "x509:",
        };
        format!("{prefix}{serial}")
    }

    /// The namespace an issued certificate's serial lives in.
    pub(crate) fn of(kind: signet_log::entry::EntryKind, certificate: &[u8]) -> Self {
        use signet_log::entry::EntryKind;
        match kind {
            EntryKind::X509Cert => Self::X509,
            // Admin-signed entries carry either kind: OpenSSH certificates
            // start with their key type string's length, X.509 with a DER
            // SEQUENCE tag.
            EntryKind::AdminSign if certificate.first() == Some(&0x30) => Self::X509,
            _ => Self::Ssh,
        }
    }
}

/// Keeps the types below from being built outside this module: their
/// values are made only where the promise they stand for was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sealed;

/// A checkpoint signed by the log key: the tree size and root it commits
/// to, and the signed-note text served at `/log/checkpoint`. Made only by
/// this module, from a note that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// Entries covered.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
    /// The C2SP signed note.
    pub note: String,
    _sealed: Sealed,
}

impl SignedCheckpoint {
    /// Parses a signed note and checks that the log key signed it for this
    /// log's origin.
    pub(crate) fn verify(note: &[u8], verifier: &VerifierKey) -> Result<Self> {
        let text = std::str::from_utf8(note)
            .map_err(|_| Error::Store("a checkpoint is not UTF-8 text".into()))?;
        let verifiers = VerifierSet::new(vec![verifier.clone()])?;
        let opened = open_checkpoint(note, verifier.name(), &verifiers)?;
        opened.note.require(verifier)?;
        Ok(Self {
            size: opened.checkpoint.size(),
            root: *opened.checkpoint.root(),
            note: text.to_owned(),
            _sealed: Sealed,
        })
    }

    /// The same checkpoint with the note the witnesses' cosignatures were
    /// added to (checked by the caller against the witness policy).
    pub(crate) fn with_note(&self, note: String) -> Self {
        Self {
            size: self.size,
            root: self.root,
            note,
            _sealed: Sealed,
        }
    }
}

/// Where an appended entry ended up. Made only by a store's append.
#[derive(Debug, Clone)]
pub struct Appended {
    /// Its index in the log.
    pub index: u64,
    /// A durable checkpoint that covers it.
    pub checkpoint: Arc<SignedCheckpoint>,
    /// The entry's inclusion proof in that checkpoint's tree.
    pub inclusion_proof: Vec<Hash>,
    _sealed: Sealed,
}

/// The serials claimed by issuances in progress in this process.
#[derive(Debug, Default)]
pub(crate) struct SerialLedger {
    in_flight: Mutex<HashSet<String>>,
}

impl SerialLedger {
    fn in_flight(&self) -> MutexGuard<'_, HashSet<String>> {
        lock(&self.in_flight)
    }
}

/// A serial number claimed for one issuance. The append that logs the
/// certificate consumes it; dropped unused (the issuance failed), it frees
/// the serial again — unless the serial reached the log, which keeps it
/// used for ever.
#[derive(Debug)]
pub struct SerialReservation {
    serial: String,
    /// The serial's key in the index: its namespace and the serial.
    key: String,
    ledger: Arc<SerialLedger>,
}

impl SerialReservation {
    /// Claims `serial` unless it is in flight here or `used` says the store
    /// has it. The ledger stays locked while `used` looks, and a reservation
    /// is released only after its append committed, so no serial can slip
    /// between "not in the store yet" and "no longer in flight".
    pub(crate) fn claim(
        ledger: &Arc<SerialLedger>,
        kind: SerialKind,
        serial: &str,
        used: impl FnOnce(&str) -> Result<bool>,
    ) -> Result<Option<Self>> {
        let key = kind.key(serial);
        let mut in_flight = ledger.in_flight();
        if in_flight.contains(&key) || used(&key)? {
            return Ok(None);
        }
        in_flight.insert(key.clone());
        Ok(Some(Self {
            serial: serial.to_owned(),
            key,
            ledger: ledger.clone(),
        }))
    }

    /// Whether this reservation was made by `ledger`'s store.
    pub(crate) fn belongs_to(&self, ledger: &Arc<SerialLedger>) -> bool {
        Arc::ptr_eq(&self.ledger, ledger)
    }

    /// The serial as the certificate carries it.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    pub(crate) fn index_key(&self) -> &str {
        &self.key
    }
}

impl Drop for SerialReservation {
    fn drop(&mut self) {
        self.ledger.in_flight().remove(&self.key);
    }
}

/// A consistent read-only view of a stored log.
pub trait LogRead {
    /// The bytes of the entry at `index`.
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>>;
    /// The stored hash of a complete subtree.
    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>>;
    /// The index a serial was used at, if it was.
    fn serial_index(&self, kind: SerialKind, serial: &str) -> Result<Option<u64>>;
    /// The highest index present, plus one.
    fn end(&self) -> Result<u64>;
    /// Number of entries actually present (an integrity check compares it
    /// with [`LogRead::end`]).
    fn entry_count(&self) -> Result<u64>;
}

/// What issuance, `serve`, `log check` and `log export` need from storage.
/// The embedded redb store implements it; a shared backend can too.
pub trait LogStore: Send + Sync {
    /// Claims a serial for an issuance in progress; `Ok(None)` if it was
    /// ever used or is in use now (the caller draws another).
    fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<Option<SerialReservation>>;

    /// Appends an entry (consuming the reservation of the serial its
    /// certificate uses, if any) and returns once it is durable, covered by
    /// a signed checkpoint, and below the high-water mark.
    fn append(&self, entry: &Entry, serial: Option<SerialReservation>) -> Result<Appended>;

    /// [`LogStore::append`] for entries that belong together (the two
    /// certificates of one sign-in): all are durable, covered by a signed
    /// checkpoint and below the high-water mark when it returns, and a
    /// store that batches appends commits them in one batch, so they cost
    /// one commit and one mark update instead of one each. The answers are
    /// in the order of `entries`. This default appends them one by one.
    fn append_all(
        &self,
        entries: Vec<(&Entry, Option<SerialReservation>)>,
    ) -> Result<Vec<Appended>> {
        entries
            .into_iter()
            .map(|(entry, serial)| self.append(entry, serial))
            .collect()
    }

    /// The latest signed checkpoint (a verified store always has one).
    /// With witnesses configured it may not have met their policy yet:
    /// what is served to others is [`LogStore::published_checkpoint`].
    fn latest_checkpoint(&self) -> Arc<SignedCheckpoint>;

    /// The latest checkpoint that met the witness policy (the log's
    /// signature alone when no witnesses are configured): the one served at
    /// `/log/checkpoint`. `None` while no checkpoint has met it since start.
    fn published_checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        Some(self.latest_checkpoint())
    }

    /// The configured witnesses' states, for the health check (empty
    /// without witnesses).
    fn witness_states(&self) -> Vec<WitnessState> {
        Vec::new()
    }

    /// Why the last checkpoint was not released (the witness policy was not
    /// met), or `None`.
    fn witness_failure(&self) -> Option<String> {
        None
    }

    /// The key checkpoints are signed with (its note verifier key), when
    /// the store knows it: `GET /v1/ca` publishes it for clients to pin.
    fn verifier(&self) -> Option<VerifierKey> {
        None
    }

    /// Why the store no longer accepts entries (a failed commit or mark),
    /// or `None` while it does: the daemon's health check reports it.
    fn failure(&self) -> Option<String> {
        None
    }

    /// What the verification at open covered.
    fn verified(&self) -> CheckReport;

    /// Whether a certificate with this SHA-256 is in an `admin-sign` entry
    /// of the log: the CA uses a root certificate only once it is logged.
    fn logs_admin_certificate(&self, sha256: &[u8; 32]) -> bool;

    /// A consistent view of the stored log.
    fn reader(&self) -> Result<Box<dyn LogRead + '_>>;

    /// Log sizes, sent each time entries other replicas appended have been
    /// verified in, for a store shared by several CAs; `None` for a store
    /// only this daemon writes.
    fn remote_appends(&self) -> Option<crossbeam_channel::Receiver<u64>> {
        None
    }

    /// Brings this replica's view up to what a shared store holds now:
    /// entries other replicas committed are verified in (and announced
    /// through [`LogStore::remote_appends`]) before it returns. An error if
    /// the store is out of reach. A store only this daemon writes is always
    /// up to date.
    fn refresh(&self) -> Result<()> {
        Ok(())
    }

    /// Where ceremonies in progress wait between begin and finish, for a
    /// store shared by several CAs (so begin on one and finish on another
    /// works); `None` keeps them in this process's memory.
    fn ceremonies(&self) -> Option<Arc<dyn CeremonyStore>> {
        None
    }

    /// Records a one-time join token by its SHA-256 (never the token) for
    /// `subject` (`node:<name>`), valid until `expires` (unix seconds). The
    /// invite's log entry comes first; this only lets
    /// [`LogStore::spend_join_token`] spend it at most once, even across
    /// replicas sharing the store.
    fn put_join_token(
        &self,
        _token_sha256: &[u8; 32],
        _subject: &str,
        _expires: u64,
    ) -> Result<()> {
        Err(Error::Store("this store keeps no join tokens".into()))
    }

    /// Spends a join token: `true` exactly once, for a token recorded for
    /// `subject`, unspent and not expired at `now`; `false` otherwise (and
    /// nothing changes). Atomic in the store, so two requests (or two
    /// replicas) presenting one token cannot both get `true`.
    fn spend_join_token(
        &self,
        _token_sha256: &[u8; 32],
        _subject: &str,
        _now: u64,
    ) -> Result<bool> {
        Err(Error::Store("this store keeps no join tokens".into()))
    }

    /// An inclusion proof for `index` in the tree of `size` entries, where
    /// `size` is at most the latest checkpoint's.
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        check_size(self.latest_checkpoint().size, size)?;
        if index >= size {
            return Err(Error::bad(
                "index",
                format!("{index} is not below the tree size {size}"),
            ));
        }
        let reader = self.reader()?;
        Ok(merkle::inclusion_proof(
            &Nodes(reader.as_ref()),
            index,
            size,
        )?)
    }

    /// A consistency proof between two tree sizes, both at most the latest
    /// checkpoint's.
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        check_size(self.latest_checkpoint().size, new)?;
        if old == 0 || old > new {
            return Err(Error::bad(
                "old",
                format!("{old} must be between 1 and the new size {new}"),
            ));
        }
        let reader = self.reader()?;
        Ok(merkle::consistency_proof(
            &Nodes(reader.as_ref()),
            old,
            new,
        )?)
    }

    /// The bytes of a tile (hash tile or entry bundle) within the latest
    /// checkpoint, or `None` if that tree does not have it.
    fn tile(&self, path: &TilePath) -> Result<Option<Vec<u8>>> {
        let size = self.latest_checkpoint().size;
        let reader = self.reader()?;
        signet_log::tiles::read_tile(&Tiles(reader.as_ref()), path, size)
            .map_err(|e| Error::Store(format!("tile {path}: {e}")))
    }
}

fn check_size(covered: u64, size: u64) -> Result<()> {
    if size > covered {
        return Err(Error::bad(
            "size",
            format!("{size} is beyond the latest checkpoint ({covered})"),
        ));
    }
    Ok(())
}

/// A store reader as the Merkle code's hash store.
pub(crate) struct Nodes<'a>(pub(crate) &'a dyn LogRead);

impl HashStore for Nodes<'_> {
    fn subtree_hash(&self, level: u32, index: u64) -> signet_log::Result<Hash> {
        match self.0.node(level, index) {
            Ok(Some(hash)) => Ok(hash),
            _ => Err(signet_log::MerkleError::MissingHash { level, index }.into()),
        }
    }
}

/// A store reader as the tile layout's source.
struct Tiles<'a>(&'a dyn LogRead);

impl TileSource for Tiles<'_> {
    type Error = Error;

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        self.0.entry(index)
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>> {
        self.0.node(level, index)
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single assignment, insertion or
    // removal, so a poisoned lock still holds consistent state.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens a file the CA only reads (a mark, a tile of a copy) without ever
/// blocking on a FIFO: O_NONBLOCK, and anything but a regular file is an
/// error. `Ok(None)` if there is no such file.
pub(crate) fn open_regular_file(path: &std::path::Path) -> Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    let is_file = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !is_file {
        return Err(Error::File {
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    Ok(Some(file))
}

pub(crate) fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// Makes an [`Appended`] (backends only).
pub(crate) fn appended(
    index: u64,
    checkpoint: Arc<SignedCheckpoint>,
    inclusion_proof: Vec<Hash>,
) -> Appended {
    Appended {
        index,
        checkpoint,
        inclusion_proof,
        _sealed: Sealed,
    }
}

#[cfg(test)]
mod tests;
