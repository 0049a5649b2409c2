//! Durable storage of the log: entries, the Merkle tree's complete-subtree
//! hashes (from which tiles and proofs are served), the set of serial
//! numbers ever used, and the latest signed checkpoint, in one redb file.
//!
//! An append returns only once its entry is committed to disk (fsync) and
//! covered by a signed checkpoint. Concurrent appends share one write
//! transaction, one fsync and one checkpoint signature (group commit).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use signet_log::checkpoint::Checkpoint;
use signet_log::merkle::{self, CompactRange, Hash, HashStore, NodeId};
use signet_log::note::NoteSigner;
use signet_log::tiles::{EntryBundle, HashTile, TileKind, TilePath, TILE_HEIGHT, TILE_WIDTH};

use crate::{Error, Result};

/// Which namespace a serial number belongs to: OpenSSH and X.509 serials
/// are unique within their kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialKind {
    /// A 64-bit OpenSSH certificate serial.
    Ssh,
    /// A 128-bit X.509 serial (hex).
    X509,
}

impl SerialKind {
    fn key(self, serial: &str) -> String {
        let prefix = match self {
            Self::Ssh => "ssh:",
            Self::X509 => "x509:",
        };
        format!("{prefix}{serial}")
    }
}

/// A signed checkpoint: the tree size and root it commits to, and the
/// signed-note text served at `/log/checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// Entries covered.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
    /// The C2SP signed note.
    pub note: String,
}

/// Where an appended entry ended up.
#[derive(Debug, Clone)]
pub struct Appended {
    /// Its index in the log.
    pub index: u64,
    /// A durable checkpoint that covers it.
    pub checkpoint: Arc<SignedCheckpoint>,
    /// The entry's inclusion proof in that checkpoint's tree.
    pub inclusion_proof: Vec<Hash>,
}

/// What issuance needs from log storage. The embedded redb store implements
/// it; a shared backend (PostgreSQL) for several CA replicas can too.
pub trait LogStore: Send + Sync {
    /// Claims a serial for an issuance in progress; `Ok(false)` if it was
    /// ever used or is in use now.
    fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<bool>;
    /// Appends an entry and returns once it is durable and covered by a
    /// signed checkpoint, with the entry's inclusion proof in it.
    fn append(&self, entry: Vec<u8>, serial: Option<(SerialKind, String)>) -> Result<Appended>;
}

impl LogStore for LocalStore {
    fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<bool> {
        LocalStore::reserve_serial(self, kind, serial)
    }
    fn append(&self, entry: Vec<u8>, serial: Option<(SerialKind, String)>) -> Result<Appended> {
        LocalStore::append(self, entry, serial)
    }
}

/// How appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// Concurrent appends share one fsync and one checkpoint signature.
    #[default]
    Group,
    /// Every append flushes and signs alone (the benchmark's baseline).
    EachAppend,
}

/// The signer of checkpoints, shared with the group-commit leader.
pub type CheckpointSigner = Arc<dyn NoteSigner + Send + Sync>;

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
const NODES: TableDefinition<u128, &[u8]> = TableDefinition::new("nodes");
const SERIALS: TableDefinition<&str, u64> = TableDefinition::new("serials");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CHECKPOINT_KEY: &str = "checkpoint";

/// The embedded default log store: one redb file in the data directory.
///
/// Appends go to one writer thread, which takes every request waiting at
/// that moment as a batch: it writes them in one transaction, commits
/// (fsync) once, signs one checkpoint and answers them all. Readers (tiles,
/// proofs, the integrity check) use read transactions and never block it.
pub struct LocalStore {
    db: Arc<Database>,
    shared: Arc<Shared>,
    requests: Option<crossbeam_channel::Sender<AppendRequest>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// State the writer publishes and callers read.
struct Shared {
    latest: Mutex<Option<Arc<SignedCheckpoint>>>,
    in_flight: Mutex<std::collections::HashSet<String>>,
}

struct AppendRequest {
    entry: Vec<u8>,
    serial_key: Option<String>,
    reply: oneshot::Sender<Result<Appended>>,
}

/// The single writer: owns the tree frontier.
struct Writer {
    db: Arc<Database>,
    tree: CompactRange,
    origin: String,
    signer: CheckpointSigner,
    mode: CommitMode,
    shared: Arc<Shared>,
}

/// The most appends one batch takes, to bound the latency of its first one.
const MAX_BATCH: usize = 4096;

fn node_key(level: u32, index: u64) -> u128 {
    (u128::from(level) << 64) | u128::from(index)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single assignment or insertion,
    // so a poisoned lock still holds consistent state.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LocalStore {
    /// Opens (or creates) the store file. If entries were committed after
    /// the last checkpoint was recorded, a checkpoint covering them is signed
    /// now. Fails clearly if another process has the file open.
    pub fn open(path: &Path, origin: &str, signer: CheckpointSigner) -> Result<Self> {
        Self::open_with(path, origin, signer, CommitMode::Group)
    }

    /// [`LocalStore::open`] with a choice of commit mode.
    pub fn open_with(
        path: &Path,
        origin: &str,
        signer: CheckpointSigner,
        mode: CommitMode,
    ) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Store(format!("cannot create {}: {e}", parent.display())))?;
        }
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Store(format!(
                "{} is in use by another signet-ca process",
                path.display()
            )),
            other => Error::Store(format!("cannot open {}: {other}", path.display())),
        })?;
        // Create the tables once so readers never see them missing.
        let txn = db.begin_write().map_err(store_err)?;
        {
            txn.open_table(ENTRIES).map_err(store_err)?;
            txn.open_table(NODES).map_err(store_err)?;
            txn.open_table(SERIALS).map_err(store_err)?;
            txn.open_table(META).map_err(store_err)?;
        }
        txn.commit().map_err(store_err)?;
        let db = Arc::new(db);
        let read = db.begin_read().map_err(store_err)?;
        let entries = read.open_table(ENTRIES).map_err(store_err)?;
        let size = match entries.last().map_err(store_err)? {
            Some((key, _)) => key.value() + 1,
            None => 0,
        };
        let nodes = read.open_table(NODES).map_err(store_err)?;
        let tree = CompactRange::from_store(&ReadNodes(&nodes), size)?;
        let meta = read.open_table(META).map_err(store_err)?;
        let latest = match meta.get(CHECKPOINT_KEY).map_err(store_err)? {
            Some(bytes) => Some(Arc::new(parse_stored_checkpoint(bytes.value())?)),
            None => None,
        };
        drop((entries, nodes, meta, read));
        let shared = Arc::new(Shared {
            latest: Mutex::new(latest.clone()),
            in_flight: Mutex::new(std::collections::HashSet::new()),
        });
        let mut writer = Writer {
            db: db.clone(),
            tree,
            origin: origin.to_owned(),
            signer,
            mode,
            shared: shared.clone(),
        };
        if latest.is_none_or(|c| c.size < size) {
            let txn = db.begin_write().map_err(store_err)?;
            writer.commit(txn)?;
        }
        let (requests, rx) = crossbeam_channel::unbounded();
        let handle = std::thread::Builder::new()
            .name("signet-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::Store(format!("cannot start the log writer: {e}")))?;
        Ok(Self {
            db,
            shared,
            requests: Some(requests),
            writer: Some(handle),
        })
    }

    /// Claims `serial` for an issuance in progress. `Ok(false)` if it was
    /// ever used or is being used now; the caller picks another.
    pub fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<bool> {
        let key = kind.key(serial);
        let mut in_flight = lock(&self.shared.in_flight);
        if in_flight.contains(&key) || self.serial_used(&key)?.is_some() {
            return Ok(false);
        }
        in_flight.insert(key);
        Ok(true)
    }

    fn serial_used(&self, key: &str) -> Result<Option<u64>> {
        let read = self.db.begin_read().map_err(store_err)?;
        let table = read.open_table(SERIALS).map_err(store_err)?;
        Ok(table.get(key).map_err(store_err)?.map(|v| v.value()))
    }

    /// Appends an entry (with the serial it used, if any) and returns once it
    /// is durable and covered by a signed checkpoint.
    pub fn append(&self, entry: Vec<u8>, serial: Option<(SerialKind, String)>) -> Result<Appended> {
        let serial_key = serial.as_ref().map(|(kind, s)| kind.key(s));
        if let Some(key) = &serial_key {
            if !lock(&self.shared.in_flight).contains(key) {
                return Err(Error::Store("serial was not reserved before use".into()));
            }
        }
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::Store("the log writer has stopped".into());
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(AppendRequest {
                entry,
                serial_key,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        lock(&self.shared.latest).clone()
    }

    /// Number of entries committed: every commit publishes its checkpoint,
    /// so this is the latest checkpoint's size.
    pub fn len(&self) -> u64 {
        self.latest_checkpoint().map_or(0, |c| c.size)
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A consistent view of the stored log for reading.
    pub fn reader(&self) -> Result<LogReader> {
        let read = self.db.begin_read().map_err(store_err)?;
        Ok(LogReader {
            entries: read.open_table(ENTRIES).map_err(store_err)?,
            nodes: read.open_table(NODES).map_err(store_err)?,
            serials: read.open_table(SERIALS).map_err(store_err)?,
        })
    }

    /// An inclusion proof for `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        let reader = self.reader()?;
        Ok(merkle::inclusion_proof(
            &ReadNodes(&reader.nodes),
            index,
            size,
        )?)
    }

    /// A consistency proof between two tree sizes.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        let reader = self.reader()?;
        Ok(merkle::consistency_proof(
            &ReadNodes(&reader.nodes),
            old,
            new,
        )?)
    }

    fn check_size(&self, size: u64) -> Result<()> {
        let covered = self.latest_checkpoint().map_or(0, |c| c.size);
        if size > covered {
            return Err(Error::bad(
                "size",
                format!("{size} is beyond the latest checkpoint ({covered})"),
            ));
        }
        Ok(())
    }

    /// The bytes of a tile (hash tile or entry bundle) within the latest
    /// checkpoint, or `None` if the tree does not have it.
    pub fn tile(&self, path: &TilePath) -> Result<Option<Vec<u8>>> {
        let size = self.latest_checkpoint().map_or(0, |c| c.size);
        let reader = self.reader()?;
        let width = u64::from(path.width());
        let first = path.index().saturating_mul(u64::from(TILE_WIDTH));
        match path.kind() {
            TileKind::Entries => {
                if first.saturating_add(width) > size {
                    return Ok(None);
                }
                let mut entries = Vec::with_capacity(width as usize);
                for i in first..first + width {
                    match reader.entry(i)? {
                        Some(entry) => entries.push(entry),
                        None => return Err(Error::Store(format!("entry {i} is missing"))),
                    }
                }
                Ok(Some(EntryBundle::new(entries)?.to_bytes()))
            }
            TileKind::Hash { level: tile_level } => {
                let level = u32::from(tile_level) * TILE_HEIGHT;
                let available = if level >= 64 { 0 } else { size >> level };
                if first.saturating_add(width) > available {
                    return Ok(None);
                }
                let mut hashes = Vec::with_capacity(width as usize);
                for i in first..first + width {
                    match reader.node(level, i)? {
                        Some(hash) => hashes.push(hash),
                        None => {
                            return Err(Error::Store(format!("hash ({level}, {i}) is missing")))
                        }
                    }
                }
                Ok(Some(HashTile::new(hashes)?.to_bytes()))
            }
        }
    }

    /// Every tile path of the tree at `size`: full tiles and the one partial
    /// tile per level, plus the entry bundles.
    pub fn tile_paths(size: u64) -> Result<Vec<TilePath>> {
        let width = u64::from(TILE_WIDTH);
        let mut paths = Vec::new();
        let mut push_level =
            |count: u64, make: &dyn Fn(u64, u16) -> signet_log::Result<TilePath>| -> Result<()> {
                for index in 0..count / width {
                    paths.push(make(index, TILE_WIDTH)?);
                }
                let rest = (count % width) as u16;
                if rest > 0 {
                    paths.push(make(count / width, rest)?);
                }
                Ok(())
            };
        push_level(size, &|i, w| TilePath::entries(i, w))?;
        let mut tile_level = 0u8;
        loop {
            let level = u32::from(tile_level) * TILE_HEIGHT;
            let count = if level >= 64 { 0 } else { size >> level };
            if count == 0 {
                break;
            }
            push_level(count, &|i, w| TilePath::hash(tile_level, i, w))?;
            tile_level += 1;
        }
        Ok(paths)
    }
}

/// A consistent read-only view of the stored log (one read transaction).
pub struct LogReader {
    entries: redb::ReadOnlyTable<u64, &'static [u8]>,
    nodes: redb::ReadOnlyTable<u128, &'static [u8]>,
    serials: redb::ReadOnlyTable<&'static str, u64>,
}

impl LogReader {
    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .entries
            .get(index)
            .map_err(store_err)?
            .map(|v| v.value().to_vec()))
    }

    /// Number of entries actually present (an integrity check compares it
    /// with the highest index).
    pub fn entry_count(&self) -> Result<u64> {
        self.entries.len().map_err(store_err)
    }

    /// The highest index present, plus one.
    pub fn end(&self) -> Result<u64> {
        Ok(self
            .entries
            .last()
            .map_err(store_err)?
            .map_or(0, |(k, _)| k.value() + 1))
    }

    /// The stored hash of a complete subtree.
    pub fn node(&self, level: u32, index: u64) -> Result<Option<Hash>> {
        ReadNodes(&self.nodes).get(level, index)
    }

    /// The index a serial was used at, if it was.
    pub fn serial_index(&self, kind: SerialKind, serial: &str) -> Result<Option<u64>> {
        Ok(self
            .serials
            .get(kind.key(serial).as_str())
            .map_err(store_err)?
            .map(|v| v.value()))
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
    fn run(mut self, requests: crossbeam_channel::Receiver<AppendRequest>) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            if self.mode == CommitMode::Group {
                while batch.len() < MAX_BATCH {
                    match requests.try_recv() {
                        Ok(request) => batch.push(request),
                        Err(_) => break,
                    }
                }
            }
            let before = self.tree.clone();
            let outcome = self.write_batch(&batch);
            match outcome {
                // Committed: each request gets its index, checkpoint and
                // proof (or, if its proof could not be made, an error; its
                // entry is in the log all the same, which only ever holds
                // more than was handed out).
                Ok(appended) => {
                    for (request, appended) in batch.into_iter().zip(appended) {
                        if let Some(key) = &request.serial_key {
                            lock(&self.shared.in_flight).remove(key);
                        }
                        let _ = request.reply.send(appended);
                    }
                }
                Err(err) => {
                    // Nothing of the batch was committed: forget it.
                    self.tree = before;
                    let text = err.to_string();
                    for request in batch {
                        if let Some(key) = &request.serial_key {
                            lock(&self.shared.in_flight).remove(key);
                        }
                        let _ = request.reply.send(Err(Error::Store(text.clone())));
                    }
                }
            }
        }
    }

    /// Writes a batch in one transaction, commits it and signs a checkpoint.
    /// An outer error means nothing was committed.
    fn write_batch(&mut self, batch: &[AppendRequest]) -> Result<Vec<Result<Appended>>> {
        let first_index = self.tree.size();
        let mut recent: HashMap<u128, Hash> = HashMap::new();
        let txn = self.db.begin_write().map_err(store_err)?;
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
                if let Some(serial_key) = &request.serial_key {
                    serials
                        .insert(serial_key.as_str(), index)
                        .map_err(store_err)?;
                }
                entries
                    .insert(index, request.entry.as_slice())
                    .map_err(store_err)?;
            }
        }
        let checkpoint = self.commit(txn)?;
        // Proofs for the whole batch, from the hashes just written and the
        // tree's right edge; older hashes (rarely needed) from a read
        // transaction opened only if one is.
        for (node, hash) in self.tree.nodes().into_iter().zip(self.tree.hashes()) {
            recent.insert(node_key(node.level, node.index), *hash);
        }
        let nodes = BatchNodes {
            recent: &recent,
            db: &self.db,
            older: std::cell::RefCell::new(None),
        };
        let appended = (0..batch.len() as u64)
            .map(|offset| {
                let index = first_index + offset;
                Ok(Appended {
                    index,
                    checkpoint: checkpoint.clone(),
                    inclusion_proof: merkle::inclusion_proof(&nodes, index, checkpoint.size)?,
                })
            })
            .collect();
        Ok(appended)
    }

    /// Signs a checkpoint for the tree as written in `txn`, records it in
    /// the same transaction and commits (one fsync), then publishes it.
    fn commit(&mut self, txn: redb::WriteTransaction) -> Result<Arc<SignedCheckpoint>> {
        let (size, root) = (self.tree.size(), self.tree.root());
        let checkpoint = Checkpoint::new(&self.origin, size, root)?;
        let note = checkpoint.sign(&[self.signer.as_ref()])?.to_text();
        {
            let mut meta = txn.open_table(META).map_err(store_err)?;
            meta.insert(CHECKPOINT_KEY, note.as_bytes())
                .map_err(store_err)?;
        }
        txn.commit().map_err(store_err)?;
        let signed = Arc::new(SignedCheckpoint { size, root, note });
        *lock(&self.shared.latest) = Some(signed.clone());
        Ok(signed)
    }
}

fn parse_stored_checkpoint(bytes: &[u8]) -> Result<SignedCheckpoint> {
    let note_text = std::str::from_utf8(bytes)
        .map_err(|_| Error::Store("stored checkpoint is not UTF-8".into()))?;
    let note = signet_log::note::Note::parse(bytes)?;
    let checkpoint = Checkpoint::parse(note.text())?;
    Ok(SignedCheckpoint {
        size: checkpoint.size(),
        root: *checkpoint.root(),
        note: note_text.to_owned(),
    })
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
            Some(table) => ReadNodes(table).subtree_hash(level, index),
            None => Err(missing()),
        }
    }
}

/// The subtree hashes in a read transaction, as the Merkle code's hash store.
struct ReadNodes<'a>(&'a redb::ReadOnlyTable<u128, &'static [u8]>);

impl ReadNodes<'_> {
    fn get(&self, level: u32, index: u64) -> Result<Option<Hash>> {
        match self.0.get(node_key(level, index)).map_err(store_err)? {
            Some(bytes) => Ok(Some(bytes.value().try_into().map_err(|_| {
                Error::Store(format!("hash ({level}, {index}) is malformed"))
            })?)),
            None => Ok(None),
        }
    }
}

impl HashStore for ReadNodes<'_> {
    fn subtree_hash(&self, level: u32, index: u64) -> signet_log::Result<Hash> {
        match self.get(level, index) {
            Ok(Some(hash)) => Ok(hash),
            _ => Err(signet_log::MerkleError::MissingHash { level, index }.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_log::note::{KeyId, SignerError, VerifierKey};

    /// A software Ed25519 checkpoint signer for unit tests (the real one is in the HSM).
    pub(crate) struct TestSigner(ed25519_dalek::SigningKey, VerifierKey);

    impl TestSigner {
        pub(crate) fn new() -> Arc<Self> {
            let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
            let verifier =
                VerifierKey::ed25519("test/signet-log", key.verifying_key().as_bytes()).unwrap();
            Arc::new(Self(key, verifier))
        }
    }

    impl NoteSigner for TestSigner {
        fn name(&self) -> &str {
            self.1.name()
        }
        fn key_id(&self) -> KeyId {
            self.1.key_id()
        }
        fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignerError> {
            use ed25519_dalek::Signer;
            Ok(self.0.sign(msg).to_bytes().to_vec())
        }
    }

    fn open(dir: &Path) -> LocalStore {
        LocalStore::open(&dir.join("log.redb"), "test/signet-log", TestSigner::new()).unwrap()
    }

    #[test]
    fn appends_are_ordered_checkpointed_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let root_after_two;
        {
            let store = open(dir.path());
            assert!(store.reserve_serial(SerialKind::Ssh, "7").unwrap());
            let a = store
                .append(b"a".to_vec(), Some((SerialKind::Ssh, "7".into())))
                .unwrap();
            assert_eq!(a.index, 0);
            assert!(a.checkpoint.size >= 1);
            let b = store.append(b"b".to_vec(), None).unwrap();
            assert_eq!(b.index, 1);
            assert_eq!(b.checkpoint.size, 2);
            root_after_two = b.checkpoint.root;
            let expected =
                merkle::root_from_leaf_hashes(&[merkle::leaf_hash(b"a"), merkle::leaf_hash(b"b")]);
            assert_eq!(root_after_two, expected);
        }
        let store = open(dir.path());
        assert_eq!(store.len(), 2);
        assert_eq!(store.reader().unwrap().entry(1).unwrap().unwrap(), b"b");
        assert_eq!(store.latest_checkpoint().unwrap().root, root_after_two);
        assert!(
            !store.reserve_serial(SerialKind::Ssh, "7").unwrap(),
            "serial reused"
        );
        assert!(
            store.reserve_serial(SerialKind::X509, "7").unwrap(),
            "kinds are separate"
        );
        let c = store.append(b"c".to_vec(), None).unwrap();
        let proof = store.inclusion_proof(0, c.checkpoint.size).unwrap();
        merkle::verify_inclusion(&merkle::leaf_hash(b"a"), 0, 3, &proof, &c.checkpoint.root)
            .unwrap();
        let consistency = store.consistency_proof(2, 3).unwrap();
        merkle::verify_consistency(2, 3, &consistency, &root_after_two, &c.checkpoint.root)
            .unwrap();
    }

    #[test]
    fn a_serial_in_flight_cannot_be_reserved_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        assert!(store.reserve_serial(SerialKind::X509, "ab").unwrap());
        assert!(!store.reserve_serial(SerialKind::X509, "ab").unwrap());
    }

    #[test]
    fn unreserved_serial_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        assert!(store
            .append(b"x".to_vec(), Some((SerialKind::Ssh, "1".into())))
            .is_err());
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn concurrent_appends_get_dense_unique_indices_and_share_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path()));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..150)
                        .map(|i| {
                            let entry = format!("{t}-{i}").into_bytes();
                            let appended = store.append(entry.clone(), None).unwrap();
                            assert!(appended.checkpoint.size > appended.index);
                            // The proof handed back with each append verifies
                            // against the checkpoint handed back with it.
                            merkle::verify_inclusion(
                                &merkle::leaf_hash(&entry),
                                appended.index,
                                appended.checkpoint.size,
                                &appended.inclusion_proof,
                                &appended.checkpoint.root,
                            )
                            .unwrap();
                            appended.index
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..1200).collect::<Vec<_>>());
    }

    #[test]
    fn tiles_cover_exactly_the_checkpointed_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for i in 0..300u32 {
            store.append(i.to_be_bytes().to_vec(), None).unwrap();
        }
        let paths = LocalStore::tile_paths(300).unwrap();
        let names: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        assert!(names.contains(&"tile/0/000".to_owned()), "{names:?}");
        assert!(names.contains(&"tile/0/001.p/44".to_owned()), "{names:?}");
        assert!(names.contains(&"tile/1/000.p/1".to_owned()), "{names:?}");
        assert!(
            names.contains(&"tile/entries/001.p/44".to_owned()),
            "{names:?}"
        );
        for path in &paths {
            assert!(store.tile(path).unwrap().is_some(), "{path}");
        }
        assert!(store
            .tile(&TilePath::hash(0, 1, 45).unwrap())
            .unwrap()
            .is_none());
        assert!(store
            .tile(&TilePath::entries(2, 1).unwrap())
            .unwrap()
            .is_none());
    }
}
