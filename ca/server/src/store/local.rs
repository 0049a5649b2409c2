//! The embedded default log store: entries, the Merkle tree's
//! complete-subtree hashes (from which tiles and proofs are served), the
//! index of serial numbers ever used, and the latest signed checkpoint, in
//! one redb file.
//!
//! An append returns only once its entry is committed to disk (two-phase
//! commit, fsync), covered by a signed checkpoint, and the high-water mark
//! has moved past it. Concurrent appends share one write transaction, one
//! fsync and one checkpoint signature (group commit).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use signet_log::checkpoint::Checkpoint;
use signet_log::entry::Entry;
use signet_log::merkle::{self, CompactRange, Hash, HashStore, NodeId};
use signet_log::note::{NoteSigner, VerifierKey};

use super::verify::{broken, verify_log, CheckReport};
use super::witnessing::{WitnessState, Witnesses};
use super::{
    appended, lock, store_err, Appended, HighWaterMark, LogRead, LogStore, Nodes, SerialKind,
    SerialLedger, SerialReservation, SignedCheckpoint,
};
use crate::{Error, Result};

/// How appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// Concurrent appends share one fsync and one checkpoint signature.
    #[default]
    Group,
    /// Every append flushes and signs alone (the benchmark's baseline).
    EachAppend,
}

/// The signer of checkpoints, shared with the group-commit writer.
pub type CheckpointSigner = Arc<dyn NoteSigner + Send + Sync>;

/// Everything [`LocalStore::open`] needs.
pub struct StoreOptions {
    /// The store file (created if missing).
    pub path: PathBuf,
    /// The log's origin (checkpoint first line).
    pub origin: String,
    /// Signs checkpoints (the HSM log key).
    pub signer: CheckpointSigner,
    /// Verifies them: the public half of `signer`.
    pub verifier: VerifierKey,
    /// Where the high-water mark lives (outside the store file).
    pub mark: Arc<dyn HighWaterMark>,
    /// Group commit or one commit per append.
    pub mode: CommitMode,
    /// The witnesses whose cosignatures release a checkpoint (and every
    /// append proven against it); `None` releases on the log key's
    /// signature alone.
    pub witnesses: Option<Arc<Witnesses>>,
}

pub(super) const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
pub(super) const NODES: TableDefinition<u128, &[u8]> = TableDefinition::new("nodes");
const SERIALS: TableDefinition<&str, u64> = TableDefinition::new("serials");
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CHECKPOINT_KEY: &str = "checkpoint";
/// One-time join tokens by their SHA-256: expiry (8 bytes, big-endian),
/// spent (1 byte), then the subject (UTF-8). Outside the log: only the
/// "at most once" of a token lives here, its invite is a log entry.
const JOIN_TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("join_tokens");

/// The embedded default log store: one redb file in the data directory.
///
/// Appends go to one writer thread, which takes every request waiting at
/// that moment as a batch: it writes them in one transaction, commits
/// (fsync) once, signs one checkpoint, moves the high-water mark and
/// answers them all. Readers (tiles, proofs) use read transactions and
/// never block it.
pub struct LocalStore {
    db: Arc<Database>,
    shared: Arc<Shared>,
    ledger: Arc<SerialLedger>,
    report: CheckReport,
    /// Certificates of `admin-sign` entries: those verified at open, and
    /// those appended since.
    admin_certificates: Mutex<std::collections::HashSet<[u8; 32]>>,
    /// Appends to the writer; the requests of one call travel together, so
    /// they land in one batch.
    requests: Option<crossbeam_channel::Sender<Vec<AppendRequest>>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// State the writer publishes and callers read.
struct Shared {
    latest: Mutex<Arc<SignedCheckpoint>>,
    /// The latest checkpoint released under the witness policy.
    published: Mutex<Option<Arc<SignedCheckpoint>>>,
    witnesses: Option<Arc<Witnesses>>,
    /// Why the store stopped accepting entries, for the health check.
    failure: Arc<Mutex<Option<String>>>,
    /// The log key's verifier, for `GET /v1/ca`.
    verifier: VerifierKey,
}

struct AppendRequest {
    entry: Vec<u8>,
    serial: Option<SerialReservation>,
    reply: oneshot::Sender<Result<Appended>>,
}

/// The single writer: owns the tree frontier. It commits batches and hands
/// them to the [`Marker`], which answers them once the mark covers them.
struct Writer {
    db: Arc<Database>,
    tree: CompactRange,
    origin: String,
    signer: CheckpointSigner,
    verifier: VerifierKey,
    mode: CommitMode,
    /// Set when a commit failed: whether it reached the disk is unknown, so
    /// the writer refuses everything until a restart verifies the store.
    failed: Option<String>,
    /// The same reason, where the health check reads it.
    failure: Arc<Mutex<Option<String>>>,
}

/// Owns the high-water mark and publishes checkpoints. Runs on a thread of
/// its own so that moving the mark (a token object write: milliseconds on
/// many tokens) overlaps the next batch's commit; batches committed while
/// it was busy are covered by one write of the newest checkpoint — group
/// commit for the mark.
struct Marker {
    mark: Arc<dyn HighWaterMark>,
    /// Reads the committed tree for consistency and inclusion proofs.
    db: Arc<Database>,
    witnesses: Option<Arc<Witnesses>>,
    verifier: VerifierKey,
    /// The note the mark holds now (as this CA wrote or found it); its size
    /// only ever grows.
    marked: Option<Arc<SignedCheckpoint>>,
    shared: Option<Arc<Shared>>,
    /// Set after a failure: from then on nothing is handed out until the CA
    /// restarts and verifies the store and the mark again.
    failed: Option<String>,
}

/// A committed batch waiting for the mark: its checkpoint and, per
/// request, the reply, its result and its serial reservation (released once
/// answered).
struct Committed {
    checkpoint: Arc<SignedCheckpoint>,
    replies: Vec<PendingReply>,
}

/// One request of a committed batch: where to answer, what to answer, and
/// the serial reservation to release once answered.
type PendingReply = (
    oneshot::Sender<Result<Appended>>,
    Result<Appended>,
    Option<SerialReservation>,
);

/// The most appends one batch takes, to bound the latency of its first one.
const MAX_BATCH: usize = 4096;

fn node_key(level: u32, index: u64) -> u128 {
    (u128::from(level) << 64) | u128::from(index)
}

/// A write transaction that commits with redb's two-phase commit, as its
/// documentation recommends for data that must survive a crash.
fn begin_write(db: &Database) -> Result<redb::WriteTransaction> {
    let mut txn = db.begin_write().map_err(store_err)?;
    txn.set_two_phase_commit(true);
    Ok(txn)
}

/// How [`LocalStore`] treats a missing file or a missing mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenMode {
    /// The store must exist and have a mark (every command but these two).
    Existing,
    /// A missing store file is created (the key ceremony, the benchmark).
    CreateIfMissing,
    /// An existing store without a mark gets one (`log adopt-mark`).
    AdoptMark,
}

impl LocalStore {
    /// Opens the store file and verifies it — against its own signed
    /// checkpoint, entry by entry, and against the high-water mark — before
    /// anything is signed over it. A store whose checkpoint is missing, that
    /// holds entries its checkpoint does not cover, that is behind or beside
    /// the mark, or that has entries but no mark at all is refused with an
    /// integrity error saying what was found; a missing file is refused too
    /// (only [`LocalStore::create`] makes one). Fails clearly if another
    /// process has the file open.
    pub fn open(options: StoreOptions) -> Result<Self> {
        Self::open_as(options, OpenMode::Existing)
    }

    /// [`LocalStore::open`], creating an empty store if there is no file
    /// yet: the key ceremony's first run.
    pub fn create(options: StoreOptions) -> Result<Self> {
        Self::open_as(options, OpenMode::CreateIfMissing)
    }

    /// [`LocalStore::open`] for a store that has entries but no high-water
    /// mark (made before marks existed, or the mark was lost): verified as
    /// usual, then the mark is written from its checkpoint. Only for an
    /// operator who knows this store is the newest copy of the log.
    pub fn adopt_mark(options: StoreOptions) -> Result<Self> {
        Self::open_as(options, OpenMode::AdoptMark)
    }

    fn open_as(options: StoreOptions, open_mode: OpenMode) -> Result<Self> {
        let StoreOptions {
            path,
            origin,
            signer,
            verifier,
            mark,
            mode,
            witnesses,
        } = options;
        let marked = super::high_water::load_mark(mark.as_ref(), &verifier)?;
        let exists = path.try_exists().map_err(|e| Error::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if !exists && open_mode != OpenMode::CreateIfMissing {
            return Err(match &marked {
                Some(m) if m.size > 0 => broken(
                    None,
                    format!(
                        "the store {} is missing, but the log had {} entries (high-water mark in \
                         {}); rebuild it with `signet-ca log restore --from DIR|URL`",
                        path.display(),
                        m.size,
                        mark.describe()
                    ),
                ),
                _ => Error::NotInitialised(format!("no log store at {}", path.display())),
            });
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Store(format!("cannot create {}: {e}", parent.display())))?;
        }
        let in_use = |e: redb::DatabaseError| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Store(format!(
                "{} is in use by another signet-ca process",
                path.display()
            )),
            other => Error::Store(format!("cannot open {}: {other}", path.display())),
        };
        let db = if exists {
            Database::open(&path).map_err(in_use)?
        } else {
            let db = Database::create(&path).map_err(in_use)?;
            ensure_tables(&db)?;
            db
        };
        let db = Arc::new(db);

        let read = db.begin_read().map_err(store_err)?;
        let reader = LocalReader::new(&read)?;
        let stored_note = {
            let meta = read.open_table(META).map_err(missing_table)?;
            let note = meta.get(CHECKPOINT_KEY).map_err(store_err)?;
            note.map(|n| n.value().to_vec())
        };
        let verified = verify_log(
            &reader,
            stored_note.as_deref(),
            &verifier,
            marked.as_ref(),
            &mark.describe(),
            open_mode == OpenMode::AdoptMark,
        )?;
        drop((reader, read));

        let mut writer = Writer {
            db: db.clone(),
            tree: verified.tree,
            origin,
            signer,
            verifier,
            mode,
            failed: None,
            failure: Arc::new(Mutex::new(None)),
        };
        let mut marker = Marker {
            mark,
            db: db.clone(),
            witnesses: witnesses.clone(),
            verifier: writer.verifier.clone(),
            marked: marked.map(Arc::new),
            shared: None,
            failed: None,
        };
        let latest = match verified.checkpoint {
            Some(checkpoint) => Arc::new(checkpoint),
            // A new, empty store (and no mark, or verification would have
            // refused it): its first checkpoint says so.
            None => writer.commit_unmarked(begin_write(&db)?)?,
        };
        // A crash between a commit and the mark's update leaves the store
        // ahead of the mark; the store has just been verified to extend the
        // marked tree, so the mark catches up.
        marker.advance(&latest)?;
        // Witnesses are asked at once: a log restored from an old backup,
        // or a witness that is down, shows in the health check before the
        // first request — and nothing is released until they cosign.
        let published = match marker.release(&latest) {
            Ok(cosigned) => Some(Arc::new(cosigned)),
            Err(err) => {
                log::error!("the latest checkpoint is held back: {err}");
                None
            }
        };
        let shared = Arc::new(Shared {
            latest: Mutex::new(latest),
            published: Mutex::new(published),
            witnesses,
            failure: writer.failure.clone(),
            verifier: writer.verifier.clone(),
        });
        marker.shared = Some(shared.clone());
        let (requests, rx) = crossbeam_channel::unbounded();
        let (committed, to_mark) = crossbeam_channel::unbounded();
        let marker_thread = std::thread::Builder::new()
            .name("signet-log-marker".into())
            .spawn(move || marker.run(to_mark))
            .map_err(|e| Error::Store(format!("cannot start the log marker: {e}")))?;
        let handle = std::thread::Builder::new()
            .name("signet-log-writer".into())
            .spawn(move || {
                writer.run(rx, committed);
                // The writer is done: the marker answers what it was handed
                // and stops when the channel closes.
                let _ = marker_thread.join();
            })
            .map_err(|e| Error::Store(format!("cannot start the log writer: {e}")))?;
        Ok(Self {
            db,
            shared,
            ledger: Arc::new(SerialLedger::default()),
            report: verified.report,
            admin_certificates: Mutex::new(verified.admin_certificates),
            requests: Some(requests),
            writer: Some(handle),
        })
    }

    /// Number of entries committed: every commit publishes its checkpoint,
    /// so this is the latest checkpoint's size.
    pub fn len(&self) -> u64 {
        self.latest_checkpoint().size
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn serial_used(&self, key: &str) -> Result<bool> {
        let read = self.db.begin_read().map_err(store_err)?;
        let table = read.open_table(SERIALS).map_err(store_err)?;
        Ok(table.get(key).map_err(store_err)?.is_some())
    }
}

fn ensure_tables(db: &Database) -> Result<()> {
    // Created once, so readers never see them missing.
    let txn = begin_write(db)?;
    {
        txn.open_table(ENTRIES).map_err(store_err)?;
        txn.open_table(NODES).map_err(store_err)?;
        txn.open_table(SERIALS).map_err(store_err)?;
        txn.open_table(META).map_err(store_err)?;
    }
    txn.commit().map_err(store_err)
}

impl LogStore for LocalStore {
    fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<Option<SerialReservation>> {
        SerialReservation::claim(&self.ledger, kind, serial, |key| self.serial_used(key))
    }

    fn append(&self, entry: &Entry, serial: Option<SerialReservation>) -> Result<Appended> {
        let mut appended = self.append_all(vec![(entry, serial)])?;
        appended
            .pop()
            .ok_or_else(|| Error::Store("the log writer answered no append".into()))
    }

    fn append_all(
        &self,
        entries: Vec<(&Entry, Option<SerialReservation>)>,
    ) -> Result<Vec<Appended>> {
        let mut requests = Vec::with_capacity(entries.len());
        let mut answers = Vec::with_capacity(entries.len());
        let mut admin_certificates = Vec::new();
        for (entry, serial) in entries {
            // The serial index must say exactly what the entries say: an
            // entry with a certificate comes with the reservation of that
            // very serial (same namespace), and an entry without one comes
            // with none.
            let expected = entry
                .certificate
                .as_ref()
                .map(|c| SerialKind::of(entry.kind, &c.bytes.0).key(&c.serial));
            match (&serial, &expected) {
                (Some(reservation), Some(key)) if reservation.index_key() == key => {
                    if !reservation.belongs_to(&self.ledger) {
                        return Err(Error::Store(
                            "the serial was reserved in another store".into(),
                        ));
                    }
                }
                (None, None) => {}
                (Some(reservation), _) => {
                    return Err(Error::Store(format!(
                        "the reservation of serial {} does not match the entry's certificate",
                        reservation.serial()
                    )))
                }
                (None, Some(key)) => {
                    return Err(Error::Store(format!(
                        "serial {key} was not reserved before its certificate was logged"
                    )))
                }
            }
            if let (signet_log::entry::EntryKind::AdminSign, Some(cert)) =
                (&entry.kind, &entry.certificate)
            {
                admin_certificates
                    .push(<sha2::Sha256 as sha2::Digest>::digest(&cert.bytes.0).into());
            }
            let (reply, answer) = oneshot::channel();
            requests.push(AppendRequest {
                entry: entry.to_canonical_bytes()?,
                serial,
                reply,
            });
            answers.push(answer);
        }
        let stopped = || Error::Store("the log writer has stopped".into());
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(requests)
            .map_err(|_| stopped())?;
        // Every answer is awaited, even after a failure: none is left behind.
        let results: Vec<Result<Appended>> = answers
            .into_iter()
            .map(|answer| answer.recv().map_err(|_| stopped()).and_then(|r| r))
            .collect();
        let appended = results.into_iter().collect::<Result<Vec<_>>>()?;
        let mut known = lock(&self.admin_certificates);
        for sha256 in admin_certificates {
            known.insert(sha256);
        }
        Ok(appended)
    }

    fn latest_checkpoint(&self) -> Arc<SignedCheckpoint> {
        lock(&self.shared.latest).clone()
    }

    fn published_checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        lock(&self.shared.published).clone()
    }

    fn witness_states(&self) -> Vec<WitnessState> {
        self.shared
            .witnesses
            .as_ref()
            .map(|w| w.states())
            .unwrap_or_default()
    }

    fn witness_failure(&self) -> Option<String> {
        self.shared.witnesses.as_ref().and_then(|w| w.failure())
    }

    fn verifier(&self) -> Option<VerifierKey> {
        Some(self.shared.verifier.clone())
    }

    fn failure(&self) -> Option<String> {
        if self.requests.is_none() {
            return Some("the store is closed".into());
        }
        lock(&self.shared.failure).clone()
    }

    fn verified(&self) -> CheckReport {
        self.report
    }

    fn logs_admin_certificate(&self, sha256: &[u8; 32]) -> bool {
        lock(&self.admin_certificates).contains(sha256)
    }

    fn reader(&self) -> Result<Box<dyn LogRead + '_>> {
        let read = self.db.begin_read().map_err(store_err)?;
        Ok(Box::new(LocalReader::new(&read)?))
    }

    fn put_join_token(&self, token_sha256: &[u8; 32], subject: &str, expires: u64) -> Result<()> {
        let txn = begin_write(&self.db)?;
        {
            let mut table = txn.open_table(JOIN_TOKENS).map_err(store_err)?;
            if table
                .get(token_sha256.as_slice())
                .map_err(store_err)?
                .is_some()
            {
                return Err(Error::Store("a join token recorded twice".into()));
            }
            let mut value = Vec::with_capacity(9 + subject.len());
            value.extend_from_slice(&expires.to_be_bytes());
            value.push(0);
            value.extend_from_slice(subject.as_bytes());
            table
                .insert(token_sha256.as_slice(), value.as_slice())
                .map_err(store_err)?;
        }
        txn.commit().map_err(store_err)
    }

    fn spend_join_token(&self, token_sha256: &[u8; 32], subject: &str, now: u64) -> Result<bool> {
        // One write transaction: redb runs one at a time, so the check and
        // the spend cannot interleave with another spend.
        let txn = begin_write(&self.db)?;
        let spent = {
            let mut table = txn.open_table(JOIN_TOKENS).map_err(store_err)?;
            let current = table
                .get(token_sha256.as_slice())
                .map_err(store_err)?
                .map(|v| v.value().to_vec());
            match current {
                Some(mut value)
                    if value.len() >= 9
                        && value[8] == 0
                        && &value[9..] == subject.as_bytes()
                        && value[..8]
                            .try_into()
                            .is_ok_and(|b| now < u64::from_be_bytes(b)) =>
                {
                    value[8] = 1;
                    table
                        .insert(token_sha256.as_slice(), value.as_slice())
                        .map_err(store_err)?;
                    true
                }
                _ => false,
            }
        };
        if spent {
            txn.commit().map_err(store_err)?;
        } else {
            txn.abort().map_err(store_err)?;
        }
        Ok(spent)
    }
}

/// A consistent read-only view of the stored log (one read transaction).
pub(crate) struct LocalReader {
    entries: redb::ReadOnlyTable<u64, &'static [u8]>,
    nodes: redb::ReadOnlyTable<u128, &'static [u8]>,
    serials: redb::ReadOnlyTable<&'static str, u64>,
}

impl LocalReader {
    fn new(read: &redb::ReadTransaction) -> Result<Self> {
        Ok(Self {
            entries: read.open_table(ENTRIES).map_err(missing_table)?,
            nodes: read.open_table(NODES).map_err(missing_table)?,
            serials: read.open_table(SERIALS).map_err(missing_table)?,
        })
    }
}

/// A table the CA always creates is gone: the file was made or edited
/// outside the CA.
fn missing_table(e: redb::TableError) -> Error {
    match e {
        redb::TableError::TableDoesNotExist(name) => broken(
            None,
            format!("the store has no {name} table (it was not written by signet-ca)"),
        ),
        other => store_err(other),
    }
}

impl LogRead for LocalReader {
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .entries
            .get(index)
            .map_err(store_err)?
            .map(|v| v.value().to_vec()))
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>> {
        read_node(&self.nodes, level, index)
    }

    fn serial_index(&self, kind: SerialKind, serial: &str) -> Result<Option<u64>> {
        Ok(self
            .serials
            .get(kind.key(serial).as_str())
            .map_err(store_err)?
            .map(|v| v.value()))
    }

    fn end(&self) -> Result<u64> {
        match self.entries.last().map_err(store_err)? {
            Some((key, _)) => key.value().checked_add(1).ok_or_else(|| {
                broken(
                    None,
                    "the store holds an entry at the largest possible index",
                )
            }),
            None => Ok(0),
        }
    }

    fn entry_count(&self) -> Result<u64> {
        self.entries.len().map_err(store_err)
    }
}

fn read_node(
    table: &redb::ReadOnlyTable<u128, &'static [u8]>,
    level: u32,
    index: u64,
) -> Result<Option<Hash>> {
    match table.get(node_key(level, index)).map_err(store_err)? {
        Some(bytes) => Ok(Some(bytes.value().try_into().map_err(|_| {
            broken(
                None,
                format!("the stored hash ({level}, {index}) is malformed"),
            )
        })?)),
        None => Ok(None),
    }
}

impl Drop for LocalStore {
    fn drop(&mut self) {
        // Closing the queue ends the writer after the batch in progress.
        self.requests.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Writer {
    fn run(
        mut self,
        requests: crossbeam_channel::Receiver<Vec<AppendRequest>>,
        committed: crossbeam_channel::Sender<Committed>,
    ) {
        // One call's requests always share a batch; in group mode, so do
        // those of every call waiting at that moment.
        while let Ok(mut batch) = requests.recv() {
            if self.mode == CommitMode::Group {
                while batch.len() < MAX_BATCH {
                    match requests.try_recv() {
                        Ok(more) => batch.extend(more),
                        Err(_) => break,
                    }
                }
            }
            if batch.is_empty() {
                continue;
            }
            if let Some(reason) = &self.failed {
                for request in batch {
                    let _ = request.reply.send(Err(Error::Store(reason.clone())));
                }
                continue;
            }
            let before = self.tree.clone();
            match self.write_batch(&batch) {
                Ok((checkpoint, results)) => {
                    let replies = batch
                        .into_iter()
                        .zip(results)
                        .map(|(request, result)| (request.reply, result, request.serial))
                        .collect();
                    if let Err(unsent) = committed.send(Committed {
                        checkpoint,
                        replies,
                    }) {
                        // The marker is gone: nothing may be handed out.
                        for (reply, _, _) in unsent.into_inner().replies {
                            let _ = reply
                                .send(Err(Error::Store("the log's marker has stopped".into())));
                        }
                    }
                }
                Err(err) => {
                    // Nothing of the batch was committed: forget it.
                    self.tree = before;
                    let text = err.to_string();
                    for request in batch {
                        let _ = request.reply.send(Err(Error::Store(text.clone())));
                    }
                }
            }
        }
    }

    /// Writes a batch in one transaction, commits it and signs a checkpoint;
    /// returns the checkpoint and each request's index and proof. An error
    /// means nothing was committed.
    fn write_batch(
        &mut self,
        batch: &[AppendRequest],
    ) -> Result<(Arc<SignedCheckpoint>, Vec<Result<Appended>>)> {
        let first_index = self.tree.size();
        let mut recent: HashMap<u128, Hash> = HashMap::new();
        let txn = begin_write(&self.db)?;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(store_err)?;
            let mut nodes = txn.open_table(NODES).map_err(store_err)?;
            let mut serials = txn.open_table(SERIALS).map_err(store_err)?;
            for request in batch {
                let index = self.tree.size();
                let mut new_nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(2);
                self.tree
                    .append(merkle::leaf_hash(&request.entry), |node, hash| {
                        new_nodes.push((node, *hash))
                    })?;
                for (node, hash) in &new_nodes {
                    let key = node_key(node.level, node.index);
                    nodes.insert(key, hash.as_slice()).map_err(store_err)?;
                    recent.insert(key, *hash);
                }
                if let Some(serial) = &request.serial {
                    let previous = serials
                        .insert(serial.index_key(), index)
                        .map_err(store_err)?;
                    if let Some(previous) = previous {
                        return Err(Error::Store(format!(
                            "serial {} is already used by entry {}",
                            serial.serial(),
                            previous.value()
                        )));
                    }
                }
                entries
                    .insert(index, request.entry.as_slice())
                    .map_err(store_err)?;
            }
        }
        let checkpoint = self.commit_unmarked(txn)?;
        // Proofs for the whole batch, from the hashes just written and the
        // tree's right edge; older hashes (rarely needed) from a read
        // transaction opened only if one is. A proof that cannot be made
        // fails its own request only: the entry is committed all the same.
        for (node, hash) in self.tree.nodes().into_iter().zip(self.tree.hashes()) {
            recent.insert(node_key(node.level, node.index), *hash);
        }
        let nodes = BatchNodes {
            recent: &recent,
            db: &self.db,
            older: std::cell::RefCell::new(None),
        };
        let results = (first_index..)
            .take(batch.len())
            .map(|index| {
                let proof = merkle::inclusion_proof(&nodes, index, checkpoint.size)?;
                Ok(appended(index, checkpoint.clone(), proof))
            })
            .collect();
        Ok((checkpoint, results))
    }

    /// Signs a checkpoint for the tree as written in `txn`, records it in
    /// the same transaction and commits (one fsync). The mark has not moved
    /// yet: nothing may be handed out on the strength of it alone.
    fn commit_unmarked(&mut self, txn: redb::WriteTransaction) -> Result<Arc<SignedCheckpoint>> {
        let (size, root) = (self.tree.size(), self.tree.root());
        let checkpoint = Checkpoint::new(&self.origin, size, root)?;
        let note = checkpoint.sign(&[self.signer.as_ref()])?.to_text();
        // What was signed is checked like any stored checkpoint: a faulty
        // signature never reaches the disk or a client.
        let signed = SignedCheckpoint::verify(note.as_bytes(), &self.verifier).map_err(|e| {
            log::error!("the log key's checkpoint signature does not verify: {e}");
            Error::Store(format!(
                "the token produced a checkpoint signature that does not verify: {e}"
            ))
        })?;
        if signed.size != size || signed.root != root {
            return Err(Error::Store(
                "the signed checkpoint is not the one asked for".into(),
            ));
        }
        {
            let mut meta = txn.open_table(META).map_err(store_err)?;
            meta.insert(CHECKPOINT_KEY, note.as_bytes())
                .map_err(store_err)?;
        }
        if let Err(err) = txn.commit() {
            let reason = format!(
                "a log commit failed ({err}); signet-ca must restart and verify the store \
                 before it issues again"
            );
            log::error!("{reason}");
            self.failed = Some(reason.clone());
            *lock(&self.failure) = Some(reason.clone());
            return Err(Error::Store(reason));
        }
        Ok(Arc::new(signed))
    }
}

impl Marker {
    fn run(mut self, committed: crossbeam_channel::Receiver<Committed>) {
        while let Ok(first) = committed.recv() {
            let mut done = vec![first];
            done.extend(committed.try_iter());
            // Batches commit in order, so the last checkpoint covers them all.
            let Some(newest) = done.last().map(|c| c.checkpoint.clone()) else {
                continue;
            };
            let outcome = match &self.failed {
                Some(reason) => Err(Error::Store(reason.clone())),
                None => self.advance(&newest),
            };
            let released = outcome.and_then(|()| {
                self.publish(&newest);
                self.release(&newest).map(Arc::new)
            });
            match released {
                Ok(cosigned) => {
                    self.publish_released(&cosigned);
                    for (reply, result, serial) in done.into_iter().flat_map(|c| c.replies) {
                        let _ = reply.send(result.and_then(|a| self.prove_in(a, &cosigned)));
                        // Released only now, long after the serial index
                        // committed.
                        drop(serial);
                    }
                }
                Err(Error::Witness(reason)) => {
                    // Not a store failure: the next batch asks again.
                    log::error!("checkpoint {} is held back: {reason}", newest.size);
                    for (reply, _, _) in done.into_iter().flat_map(|c| c.replies) {
                        let _ = reply.send(Err(Error::Witness(reason.clone())));
                    }
                }
                Err(err) => {
                    // The entries are in the log (which only ever holds more
                    // than was handed out), but none of them may leave the CA,
                    // now or until a restart has verified everything again.
                    log::error!("the log's high-water mark could not be moved: {err}");
                    let text = format!(
                        "the entry was written but the high-water mark could not be moved \
                         past it, so nothing is handed out until signet-ca restarts: {err}"
                    );
                    self.failed.get_or_insert_with(|| text.clone());
                    if let Some(shared) = &self.shared {
                        lock(&shared.failure).get_or_insert_with(|| text.clone());
                    }
                    for (reply, _, _) in done.into_iter().flat_map(|c| c.replies) {
                        let _ = reply.send(Err(Error::Store(text.clone())));
                    }
                }
            }
        }
    }

    /// Moves the high-water mark to `checkpoint` if it is beyond it; never
    /// backwards. Compare-and-swap: the mark must still hold what this CA
    /// last wrote or found — if it moved, another CA (a clone, a standby
    /// with the same origin) is writing this log, and both would fork it.
    fn advance(&mut self, checkpoint: &Arc<SignedCheckpoint>) -> Result<()> {
        if self
            .marked
            .as_ref()
            .is_some_and(|marked| marked.size >= checkpoint.size)
        {
            return Ok(());
        }
        let stored = super::high_water::load_mark(self.mark.as_ref(), &self.verifier)?;
        let expected = self.marked.as_ref().map(|m| m.note.as_str());
        if stored.as_ref().map(|m| m.note.as_str()) != expected {
            return Err(broken(
                None,
                format!(
                    "the high-water mark in {} changed under this CA (it now holds {}, this CA \
                     last saw {}): another signet-ca is writing this log, or the mark was edited",
                    self.mark.describe(),
                    stored.map_or("nothing".into(), |m| format!("size {}", m.size)),
                    self.marked
                        .as_ref()
                        .map_or("nothing".into(), |m| format!("size {}", m.size)),
                ),
            ));
        }
        self.mark.store(checkpoint.note.as_bytes())?;
        self.marked = Some(checkpoint.clone());
        Ok(())
    }

    fn publish(&self, checkpoint: &Arc<SignedCheckpoint>) {
        if let Some(shared) = &self.shared {
            *lock(&shared.latest) = checkpoint.clone();
        }
    }

    fn publish_released(&self, checkpoint: &Arc<SignedCheckpoint>) {
        if let Some(shared) = &self.shared {
            *lock(&shared.published) = Some(checkpoint.clone());
        }
    }

    /// The checkpoint as released: cosigned as the witness policy demands,
    /// or as it is without witnesses.
    fn release(&self, checkpoint: &Arc<SignedCheckpoint>) -> Result<SignedCheckpoint> {
        let Some(witnesses) = &self.witnesses else {
            return Ok(checkpoint.as_ref().clone());
        };
        let db = self.db.clone();
        let proofs = move |old: u64, new: u64| -> Result<Vec<Hash>> {
            let read = db.begin_read().map_err(store_err)?;
            let reader = LocalReader::new(&read)?;
            Ok(merkle::consistency_proof(&Nodes(&reader), old, new)?)
        };
        witnesses.cosign(checkpoint, &proofs)
    }

    /// `appended` proven in the released checkpoint: batches marked
    /// together are released under the newest one, so the older ones'
    /// proofs are made again for its tree.
    fn prove_in(
        &self,
        mut appended: Appended,
        released: &Arc<SignedCheckpoint>,
    ) -> Result<Appended> {
        if appended.checkpoint.size != released.size {
            let read = self.db.begin_read().map_err(store_err)?;
            let reader = LocalReader::new(&read)?;
            appended.inclusion_proof =
                merkle::inclusion_proof(&Nodes(&reader), appended.index, released.size)?;
        }
        appended.checkpoint = released.clone();
        Ok(appended)
    }
}

/// Hashes for a batch's proofs: those just written and the right edge in
/// memory, anything older from a read transaction opened on first need.
struct BatchNodes<'a> {
    recent: &'a HashMap<u128, Hash>,
    db: &'a Database,
    older: std::cell::RefCell<Option<redb::ReadOnlyTable<u128, &'static [u8]>>>,
}

impl HashStore for BatchNodes<'_> {
    fn subtree_hash(&self, level: u32, index: u64) -> signet_log::Result<Hash> {
        if let Some(hash) = self.recent.get(&node_key(level, index)) {
            return Ok(*hash);
        }
        let missing =
            || signet_log::Error::from(signet_log::MerkleError::MissingHash { level, index });
        let mut older = self.older.borrow_mut();
        if older.is_none() {
            let read = self.db.begin_read().map_err(|_| missing())?;
            *older = Some(read.open_table(NODES).map_err(|_| missing())?);
        }
        match older.as_ref() {
            Some(table) => match read_node(table, level, index) {
                Ok(Some(hash)) => Ok(hash),
                _ => Err(missing()),
            },
            None => Err(missing()),
        }
    }
}

/// Writes a verified log (from `log restore`) into a new store file: its
/// entries, every subtree hash, the serial index and its signed checkpoint,
/// in one transaction. The caller then opens it with [`LocalStore::open`],
/// which verifies it again from scratch.
pub(crate) fn write_restored(
    path: &std::path::Path,
    entries: &[Vec<u8>],
    serials: &[(String, u64)],
    checkpoint_note: &[u8],
) -> Result<()> {
    let db = Database::create(path)
        .map_err(|e| Error::Store(format!("cannot create {}: {e}", path.display())))?;
    ensure_tables(&db)?;
    let txn = begin_write(&db)?;
    {
        let mut entry_table = txn.open_table(ENTRIES).map_err(store_err)?;
        let mut nodes = txn.open_table(NODES).map_err(store_err)?;
        let mut serial_table = txn.open_table(SERIALS).map_err(store_err)?;
        let mut meta = txn.open_table(META).map_err(store_err)?;
        let mut tree = CompactRange::new();
        for (index, entry) in (0u64..).zip(entries) {
            let mut new_nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(2);
            tree.append(merkle::leaf_hash(entry), |node, hash| {
                new_nodes.push((node, *hash))
            })?;
            for (node, hash) in &new_nodes {
                nodes
                    .insert(node_key(node.level, node.index), hash.as_slice())
                    .map_err(store_err)?;
            }
            entry_table
                .insert(index, entry.as_slice())
                .map_err(store_err)?;
        }
        for (key, index) in serials {
            serial_table
                .insert(key.as_str(), *index)
                .map_err(store_err)?;
        }
        meta.insert(CHECKPOINT_KEY, checkpoint_note)
            .map_err(store_err)?;
    }
    txn.commit().map_err(store_err)
}
