//! Durable storage of the log: entries, the Merkle tree's complete-subtree
//! hashes (from which tiles and proofs are served), the set of serial
//! numbers ever used, and the latest signed checkpoint.
//!
//! An append returns only once its entry is on disk (fsync) and covered by a
//! signed checkpoint. Concurrent appends share one flush and one checkpoint
//! signature (group commit): the first waiter flushes and signs for everyone
//! who appended before it started, the others wait for it.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use signet_log::checkpoint::Checkpoint;
use signet_log::merkle::{self, CompactRange, Hash, HashStore, NodeId};
use signet_log::note::NoteSigner;
use signet_log::tiles::{EntryBundle, HashTile, TileKind, TilePath, TILE_HEIGHT, TILE_WIDTH};
use sled::Transactional;

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
    fn key(self, serial: &str) -> Vec<u8> {
        let prefix = match self {
            Self::Ssh => "ssh:",
            Self::X509 => "x509:",
        };
        format!("{prefix}{serial}").into_bytes()
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
}

/// What issuance needs from log storage. The embedded sled store implements
/// it; a shared backend (PostgreSQL) for several CA replicas can too.
pub trait LogStore: Send + Sync {
    /// Claims a serial for an issuance in progress; `Ok(false)` if it was
    /// ever used or is in use now.
    fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<bool>;
    /// Appends an entry and returns once it is durable and covered by a
    /// signed checkpoint.
    fn append(&self, entry: Vec<u8>, serial: Option<(SerialKind, String)>) -> Result<Appended>;
    /// An inclusion proof for `index` in the tree of `size` entries.
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>>;
}

impl LogStore for SledStore {
    fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<bool> {
        SledStore::reserve_serial(self, kind, serial)
    }
    fn append(&self, entry: Vec<u8>, serial: Option<(SerialKind, String)>) -> Result<Appended> {
        SledStore::append(self, entry, serial)
    }
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        SledStore::inclusion_proof(self, index, size)
    }
}

/// The signer of checkpoints, shared with the group-commit leader.
pub type CheckpointSigner = Arc<dyn NoteSigner + Send + Sync>;

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// The embedded default log store: sled in the data directory.
pub struct SledStore {
    db: sled::Db,
    entries: sled::Tree,
    serials: sled::Tree,
    nodes: sled::Tree,
    meta: sled::Tree,
    origin: String,
    signer: CheckpointSigner,
    state: Mutex<AppendState>,
    commit: Mutex<CommitState>,
    committed: Condvar,
}

struct AppendState {
    tree: CompactRange,
    in_flight: std::collections::HashSet<Vec<u8>>,
}

struct CommitState {
    latest: Option<Arc<SignedCheckpoint>>,
    flushing: bool,
}

const CHECKPOINT_KEY: &[u8] = b"checkpoint";

fn node_key(level: u32, index: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    // Levels are below 64 for any u64-sized tree.
    key[0] = level.min(255) as u8;
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is completed before anything can panic,
    // so a poisoned lock still holds consistent state.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SledStore {
    /// Opens (or creates) the store. If entries were made durable after the
    /// last checkpoint (a crash between flush and signature), a checkpoint
    /// covering them is signed now. Fails clearly if another process has it open.
    pub fn open(path: &Path, origin: &str, signer: CheckpointSigner) -> Result<Self> {
        let db = sled::Config::new().path(path).open().map_err(|e| match e {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => Error::Store(
                format!("{} is in use by another signet-ca process", path.display()),
            ),
            other => Error::Store(format!("cannot open {}: {other}", path.display())),
        })?;
        let entries = db.open_tree("entries").map_err(store_err)?;
        let serials = db.open_tree("serials").map_err(store_err)?;
        let nodes = db.open_tree("nodes").map_err(store_err)?;
        let meta = db.open_tree("meta").map_err(store_err)?;
        let size = match entries.last().map_err(store_err)? {
            Some((key, _)) => index_from_key(&key)? + 1,
            None => 0,
        };
        let node_store = SledNodes(&nodes);
        let tree = CompactRange::from_store(&node_store, size)?;
        let latest = match meta.get(CHECKPOINT_KEY).map_err(store_err)? {
            Some(bytes) => Some(Arc::new(parse_stored_checkpoint(&bytes)?)),
            None => None,
        };
        let store = Self {
            db,
            entries,
            serials,
            nodes,
            meta,
            origin: origin.to_owned(),
            signer,
            state: Mutex::new(AppendState {
                tree,
                in_flight: std::collections::HashSet::new(),
            }),
            commit: Mutex::new(CommitState {
                latest,
                flushing: false,
            }),
            committed: Condvar::new(),
        };
        let covered = lock(&store.commit).latest.as_ref().map(|c| c.size);
        if covered.is_none_or(|covered| covered < size) {
            store.commit_batch()?;
        }
        Ok(store)
    }

    /// Claims `serial` for an issuance in progress. `Ok(false)` if it was
    /// ever used or is being used now; the caller picks another.
    pub fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<bool> {
        let key = kind.key(serial);
        let mut state = lock(&self.state);
        if state.in_flight.contains(&key) || self.serials.contains_key(&key).map_err(store_err)? {
            return Ok(false);
        }
        state.in_flight.insert(key);
        Ok(true)
    }

    /// Appends an entry (with the serial it used, if any) and returns once it
    /// is durable and covered by a signed checkpoint.
    pub fn append(&self, entry: Vec<u8>, serial: Option<(SerialKind, String)>) -> Result<Appended> {
        let index = {
            let mut state = lock(&self.state);
            let serial_key = serial.as_ref().map(|(kind, s)| kind.key(s));
            if let Some(key) = &serial_key {
                if !state.in_flight.contains(key) {
                    return Err(Error::Store("serial was not reserved before use".into()));
                }
            }
            let index = state.tree.size();
            let mut tree = state.tree.clone();
            let mut new_nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(2);
            tree.append(merkle::leaf_hash(&entry), |node, hash| {
                new_nodes.push((node, *hash))
            })?;
            let key = index.to_be_bytes();
            let result: std::result::Result<(), sled::transaction::TransactionError<String>> =
                (&self.entries, &self.serials, &self.nodes).transaction(
                    |(entries, serials, nodes)| {
                        entries.insert(&key, entry.as_slice())?;
                        if let Some(serial_key) = &serial_key {
                            serials.insert(serial_key.as_slice(), &key)?;
                        }
                        for (node, hash) in &new_nodes {
                            nodes.insert(&node_key(node.level, node.index), hash.as_slice())?;
                        }
                        Ok(())
                    },
                );
            result.map_err(store_err)?;
            if let Some(key) = &serial_key {
                state.in_flight.remove(key);
            }
            state.tree = tree;
            index
        };
        let checkpoint = self.wait_committed(index)?;
        Ok(Appended { index, checkpoint })
    }

    /// Waits until a durable, signed checkpoint covers `index`, leading the
    /// flush and signature if nobody else is.
    fn wait_committed(&self, index: u64) -> Result<Arc<SignedCheckpoint>> {
        let mut commit = lock(&self.commit);
        loop {
            if let Some(latest) = commit.latest.as_ref().filter(|c| c.size > index) {
                return Ok(latest.clone());
            }
            if commit.flushing {
                commit = self
                    .committed
                    .wait(commit)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            commit.flushing = true;
            drop(commit);
            let result = self.commit_batch();
            commit = lock(&self.commit);
            commit.flushing = false;
            self.committed.notify_all();
            result?;
        }
    }

    /// Flushes everything appended so far, then signs and publishes a
    /// checkpoint for it: one fsync and one HSM signature per batch.
    fn commit_batch(&self) -> Result<()> {
        let (size, root) = {
            let state = lock(&self.state);
            (state.tree.size(), state.tree.root())
        };
        self.db.flush().map_err(store_err)?;
        let checkpoint = Checkpoint::new(&self.origin, size, root)?;
        let note = checkpoint.sign(&[self.signer.as_ref()])?.to_text();
        // The checkpoint is derived data: if it is lost in a crash, `open`
        // signs a new one over the durable entries.
        self.meta
            .insert(CHECKPOINT_KEY, note.as_bytes())
            .map_err(store_err)?;
        let signed = Arc::new(SignedCheckpoint { size, root, note });
        let mut commit = lock(&self.commit);
        if commit.latest.as_ref().is_none_or(|c| c.size <= size) {
            commit.latest = Some(signed);
        }
        Ok(())
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Option<Arc<SignedCheckpoint>> {
        lock(&self.commit).latest.clone()
    }

    /// Number of entries (some may not be covered by a checkpoint yet).
    pub fn len(&self) -> u64 {
        lock(&self.state).tree.size()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .entries
            .get(index.to_be_bytes())
            .map_err(store_err)?
            .map(|v| v.to_vec()))
    }

    /// Number of entries actually present in storage (for integrity checks).
    pub fn stored_entry_count(&self) -> usize {
        self.entries.len()
    }

    /// The index a serial was used at, if it was.
    pub fn serial_index(&self, kind: SerialKind, serial: &str) -> Result<Option<u64>> {
        match self.serials.get(kind.key(serial)).map_err(store_err)? {
            Some(bytes) => Ok(Some(index_from_key(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The stored hash of a complete subtree.
    pub fn node(&self, level: u32, index: u64) -> Result<Option<Hash>> {
        SledNodes(&self.nodes).get(level, index)
    }

    /// An inclusion proof for `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        Ok(merkle::inclusion_proof(
            &SledNodes(&self.nodes),
            index,
            size,
        )?)
    }

    /// A consistency proof between two tree sizes.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        Ok(merkle::consistency_proof(
            &SledNodes(&self.nodes),
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
        let width = u64::from(path.width());
        let first = path.index().saturating_mul(u64::from(TILE_WIDTH));
        match path.kind() {
            TileKind::Entries => {
                if first.saturating_add(width) > size {
                    return Ok(None);
                }
                let mut entries = Vec::with_capacity(width as usize);
                for i in first..first + width {
                    match self.entry(i)? {
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
                    match self.node(level, i)? {
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

fn index_from_key(key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| Error::Store("malformed entry key in the store".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The subtree hashes in sled, as the Merkle code's hash store.
struct SledNodes<'a>(&'a sled::Tree);

impl SledNodes<'_> {
    fn get(&self, level: u32, index: u64) -> Result<Option<Hash>> {
        match self.0.get(node_key(level, index)).map_err(store_err)? {
            Some(bytes) => Ok(Some(bytes.as_ref().try_into().map_err(|_| {
                Error::Store(format!("hash ({level}, {index}) is malformed"))
            })?)),
            None => Ok(None),
        }
    }
}

impl HashStore for SledNodes<'_> {
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

    fn open(dir: &Path) -> SledStore {
        SledStore::open(dir, "test/signet-log", TestSigner::new()).unwrap()
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
        assert_eq!(store.entry(1).unwrap().unwrap(), b"b");
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
                    (0..25)
                        .map(|i| {
                            let appended =
                                store.append(format!("{t}-{i}").into_bytes(), None).unwrap();
                            assert!(appended.checkpoint.size > appended.index);
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
        assert_eq!(all, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn tiles_cover_exactly_the_checkpointed_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for i in 0..300u32 {
            store.append(i.to_be_bytes().to_vec(), None).unwrap();
        }
        let paths = SledStore::tile_paths(300).unwrap();
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
