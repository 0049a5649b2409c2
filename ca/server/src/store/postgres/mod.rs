//! The shared log store: the log in PostgreSQL, so several `signet-ca`
//! replicas (same HSM keys, one database) keep one log in one total order.
//!
//! It keeps every promise of the embedded store ([`super::LocalStore`]):
//! - verified at open against its own latest signed checkpoint, entry by
//!   entry, and against the high-water mark outside the database, before
//!   anything is signed over it;
//! - an append returns only once its entry is committed (the database's
//!   commit), covered by a signed checkpoint, the high-water mark has moved
//!   past it and the witnesses (if any) cosigned;
//! - group commit: each replica's writer thread takes every append waiting
//!   at that moment into one transaction, one commit, one checkpoint
//!   signature.
//!
//! Across replicas:
//! - appends are serialized in the database: each batch's transaction
//!   first locks the one row of `log_head`, then reads the latest
//!   checkpoint and computes its indices from it, so there are no gaps and
//!   no index twice;
//! - the replica holding that lock (the lease, for the length of one
//!   transaction) is the one that signs the batch's checkpoint; the primary
//!   key on `log_checkpoints.size` makes two different checkpoints for one
//!   size impossible;
//! - a replica whose tree is behind (others appended) catches up inside
//!   the locked transaction, replaying the new entries and checking them
//!   against the signed checkpoint and the stored hashes before it appends
//!   after them;
//! - the high-water mark may be shared (a network HSM) or one per host; it
//!   is moved under an advisory lock, only forwards, and only from a mark
//!   that is one of this log's checkpoints.
//!
//! A lost database fails closed: appends and serial reservations fail with
//! [`Error::StoreUnavailable`], [`LogStore::failure`] says why, and the
//! writer reconnects by itself (it polls while idle), verifying whatever
//! was committed meanwhile before it appends again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::Client;
use signet_log::checkpoint::Checkpoint;
use signet_log::entry::{Entry, EntryKind};
use signet_log::merkle::{self, CompactRange, Hash, HashStore, NodeId};
use signet_log::note::VerifierKey;

use super::local::{CheckpointSigner, CommitMode};
use super::verify::{broken, verify_log, CheckReport};
use super::witnessing::{WitnessState, Witnesses};
use super::{
    appended, lock, Appended, HighWaterMark, LogRead, LogStore, Nodes, SerialKind, SerialLedger,
    SerialReservation, SignedCheckpoint,
};
use crate::{Error, Result};

mod ceremonies;
mod connect;
pub mod copy;
mod reader;
pub mod schema;

use connect::Connector;
pub use connect::PgConfig;
use reader::{query_err, to_db, to_index, PgReader, Pool};

/// Everything [`PgStore::open`] needs.
pub struct PgOptions {
    /// The database.
    pub db: PgConfig,
    /// The log's origin (checkpoint first line).
    pub origin: String,
    /// Signs checkpoints (the HSM log key; the same key on every replica).
    pub signer: CheckpointSigner,
    /// Verifies them: the public half of `signer`.
    pub verifier: VerifierKey,
    /// Where the high-water mark lives (outside the database).
    pub mark: Arc<dyn HighWaterMark>,
    /// Group commit or one commit per append.
    pub mode: CommitMode,
    /// The witnesses whose cosignatures release a checkpoint.
    pub witnesses: Option<Arc<Witnesses>>,
    /// This replica's name, recorded with the checkpoints it signs.
    pub replica: String,
}

/// How often an idle writer looks at the database: to follow the other
/// replicas' appends, and to notice that a lost database is back.
const POLL: Duration = Duration::from_secs(1);

/// The most appends one batch takes.
const MAX_BATCH: usize = 4096;

/// The notification channel appends announce themselves on.
const CHANNEL: &str = "signet_log";

/// The advisory lock key held while the high-water mark moves ("signet-w").
const MARK_LOCK: i64 = 0x7369_676e_6574_2d77;

/// The log in PostgreSQL, shared by every replica pointed at it.
pub struct PgStore {
    pool: Arc<Pool>,
    shared: Arc<Shared>,
    ledger: Arc<SerialLedger>,
    report: CheckReport,
    requests: Option<crossbeam_channel::Sender<Vec<AppendRequest>>>,
    /// Asks the writer to follow the database now ([`LogStore::refresh`]).
    refreshes: Option<crossbeam_channel::Sender<oneshot::Sender<Result<()>>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Tells the listener thread to end (it notices within a second).
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// State the writer publishes and callers read.
struct Shared {
    latest: Mutex<Arc<SignedCheckpoint>>,
    published: Mutex<Option<Arc<SignedCheckpoint>>>,
    witnesses: Option<Arc<Witnesses>>,
    /// Why appends fail now (the database is lost, the mark could not
    /// move), for the health check.
    failure: Mutex<Option<String>>,
    verifier: VerifierKey,
    /// Certificates of `admin-sign` entries seen in the log (verified at
    /// open, appended or caught up since).
    admin_certificates: Mutex<HashSet<[u8; 32]>>,
    /// Who wants to hear of entries other replicas appended.
    subscribers: Mutex<Vec<crossbeam_channel::Sender<u64>>>,
}

struct AppendRequest {
    entry: Vec<u8>,
    serial: Option<SerialReservation>,
    admin_certificate: Option<[u8; 32]>,
    reply: oneshot::Sender<Result<Appended>>,
}

/// The replica's single writer: its connection, its copy of the tree
/// frontier, the mark.
struct Writer {
    pool: Arc<Pool>,
    client: Option<Client>,
    tree: CompactRange,
    origin: String,
    signer: CheckpointSigner,
    verifier: VerifierKey,
    mode: CommitMode,
    mark: Arc<dyn HighWaterMark>,
    marked: Option<Arc<SignedCheckpoint>>,
    /// Set when the mark could not be moved past committed entries: from
    /// then on nothing is handed out until signet-ca restarts.
    mark_failed: Option<String>,
    witnesses: Option<Arc<Witnesses>>,
    shared: Option<Arc<Shared>>,
    replica: String,
}

/// How [`PgStore`] treats an empty database or a missing mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenMode {
    Existing,
    CreateIfMissing,
    AdoptMark,
}

impl PgStore {
    /// Connects, applies pending migrations, verifies the log and starts
    /// the writer. A database without a log is refused (only
    /// [`PgStore::create`] starts one).
    pub fn open(options: PgOptions) -> Result<Self> {
        Self::open_as(options, OpenMode::Existing)
    }

    /// [`PgStore::open`], starting an empty log if the database has none.
    pub fn create(options: PgOptions) -> Result<Self> {
        Self::open_as(options, OpenMode::CreateIfMissing)
    }

    /// [`PgStore::open`] for a log without a high-water mark: verified,
    /// then the mark is written from its checkpoint.
    pub fn adopt_mark(options: PgOptions) -> Result<Self> {
        Self::open_as(options, OpenMode::AdoptMark)
    }

    /// Applies pending migrations and returns the versions applied.
    pub fn migrate(db: &PgConfig) -> Result<Vec<i32>> {
        let connector = Connector::new(db)?;
        let mut client = connector.connect()?;
        schema::migrate(&mut client, connector.place())
    }

    fn open_as(options: PgOptions, open_mode: OpenMode) -> Result<Self> {
        let PgOptions {
            db,
            origin,
            signer,
            verifier,
            mark,
            mode,
            witnesses,
            replica,
        } = options;
        let connector = Arc::new(Connector::new(&db)?);
        let mut client = connector.connect()?;
        schema::migrate(&mut client, connector.place())?;
        let pool = Arc::new(Pool::new(connector.clone()));
        pool.put(client);
        let marked = super::high_water::load_mark(mark.as_ref(), &verifier)?;
        let verified = {
            let reader = PgReader::new(&pool)?;
            let stored_note = reader.latest_note()?;
            if stored_note.is_none() && reader.end()? == 0 && open_mode != OpenMode::CreateIfMissing
            {
                return Err(match &marked {
                    Some(m) if m.size > 0 => broken(
                        None,
                        format!(
                            "the database {} holds no log, but the log had {} entries \
                             (high-water mark in {}); restore the database from its backup",
                            connector.place(),
                            m.size,
                            mark.describe()
                        ),
                    ),
                    _ => Error::NotInitialised(format!(
                        "no log in the database {}",
                        connector.place()
                    )),
                });
            }
            verify_log(
                &reader,
                stored_note.as_deref(),
                &verifier,
                marked.as_ref(),
                &mark.describe(),
                open_mode == OpenMode::AdoptMark,
            )?
        };
        let mut writer = Writer {
            pool: pool.clone(),
            client: None,
            tree: verified.tree,
            origin,
            signer,
            verifier: verifier.clone(),
            mode,
            mark,
            marked: marked.map(Arc::new),
            mark_failed: None,
            witnesses: witnesses.clone(),
            shared: None,
            replica,
        };
        let shared = Arc::new(Shared {
            // Replaced below by the synced checkpoint.
            latest: Mutex::new(Arc::new(match verified.checkpoint {
                Some(c) => c,
                None => writer.sync()?.0.as_ref().clone(),
            })),
            published: Mutex::new(None),
            witnesses,
            failure: Mutex::new(None),
            verifier,
            admin_certificates: Mutex::new(verified.admin_certificates),
            subscribers: Mutex::new(Vec::new()),
        });
        writer.shared = Some(shared.clone());
        // Whatever the other replicas appended since the verification,
        // checked against the signed checkpoint.
        let (latest, _) = writer.sync()?;
        writer.advance(&latest)?;
        *lock(&shared.latest) = latest.clone();
        match writer.release(&latest) {
            Ok(cosigned) => *lock(&shared.published) = Some(Arc::new(cosigned)),
            Err(err) => log::error!("the latest checkpoint is held back: {err}"),
        }
        let (requests, rx) = crossbeam_channel::unbounded();
        let (refreshes, refresh_rx) = crossbeam_channel::unbounded();
        let (wake_tx, wake) = crossbeam_channel::bounded(1);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let listener = Listener {
            connector,
            wake: wake_tx,
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name("signet-log-pg-listener".into())
            .spawn(move || listener.run())
            .map_err(|e| Error::Store(format!("cannot start the log listener: {e}")))?;
        let handle = std::thread::Builder::new()
            .name("signet-log-pg-writer".into())
            .spawn(move || writer.run(rx, wake, refresh_rx))
            .map_err(|e| Error::Store(format!("cannot start the log writer: {e}")))?;
        Ok(Self {
            pool,
            shared,
            ledger: Arc::new(SerialLedger::default()),
            report: verified.report,
            requests: Some(requests),
            refreshes: Some(refreshes),
            writer: Some(handle),
            stop,
        })
    }

    /// Log sizes, sent each time entries appended by other replicas have
    /// been verified into this one's view (every entry below the size is
    /// then readable through [`LogStore::reader`]). What the directory
    /// needs to apply another replica's locks and role changes; a
    /// subscriber that goes away is forgotten.
    pub fn subscribe(&self) -> crossbeam_channel::Receiver<u64> {
        let (tx, rx) = crossbeam_channel::unbounded();
        lock(&self.shared.subscribers).push(tx);
        rx
    }

    /// Entries covered by the latest checkpoint this replica knows.
    pub fn len(&self) -> u64 {
        self.latest_checkpoint().size
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn serial_used(&self, key: &str) -> Result<bool> {
        let mut client = self.pool.get()?;
        let rows = client
            .query("SELECT 1 FROM log_serials WHERE key = $1", &[&key])
            .map_err(|e| query_err(self.pool.place(), &e))?;
        self.pool.put(client);
        Ok(!rows.is_empty())
    }
}

impl LogStore for PgStore {
    fn remote_appends(&self) -> Option<crossbeam_channel::Receiver<u64>> {
        Some(self.subscribe())
    }

    fn refresh(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.refreshes
            .as_ref()
            .ok_or_else(|| Error::Store("the log writer has stopped".into()))?
            .send(reply)
            .map_err(|_| Error::Store("the log writer has stopped".into()))?;
        answer
            .recv()
            .map_err(|_| Error::Store("the log writer has stopped".into()))?
    }

    fn ceremonies(&self) -> Option<Arc<dyn super::CeremonyStore>> {
        Some(Arc::new(ceremonies::PgCeremonies::new(self.pool.clone())))
    }

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
        for (entry, serial) in entries {
            check_reservation(entry, serial.as_ref(), &self.ledger)?;
            let admin_certificate = match (&entry.kind, &entry.certificate) {
                (EntryKind::AdminSign, Some(cert)) => {
                    Some(<sha2::Sha256 as sha2::Digest>::digest(&cert.bytes.0).into())
                }
                _ => None,
            };
            let (reply, answer) = oneshot::channel();
            requests.push(AppendRequest {
                entry: entry.to_canonical_bytes()?,
                serial,
                admin_certificate,
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
        let results: Vec<Result<Appended>> = answers
            .into_iter()
            .map(|answer| answer.recv().map_err(|_| stopped()).and_then(|r| r))
            .collect();
        results.into_iter().collect()
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
        lock(&self.shared.admin_certificates).contains(sha256)
    }

    fn put_join_token(&self, token_sha256: &[u8; 32], subject: &str, expires: u64) -> Result<()> {
        let expires = i64::try_from(expires)
            .map_err(|_| Error::bad("expires", "beyond the database's range"))?;
        let mut client = self.pool.get()?;
        client
            .execute(
                "INSERT INTO join_tokens (token_sha256, subject, expires_at) VALUES ($1, $2, $3)",
                &[&token_sha256.as_slice(), &subject, &expires],
            )
            .map_err(|e| query_err(self.pool.place(), &e))?;
        self.pool.put(client);
        Ok(())
    }

    fn spend_join_token(&self, token_sha256: &[u8; 32], subject: &str, now: u64) -> Result<bool> {
        let now =
            i64::try_from(now).map_err(|_| Error::bad("now", "beyond the database's range"))?;
        let mut client = self.pool.get()?;
        // One statement: only an unspent, unexpired row of this subject
        // matches, and the row lock makes a second spend find it spent.
        let spent = client
            .execute(
                "UPDATE join_tokens SET spent_at = now() \
                 WHERE token_sha256 = $1 AND subject = $2 AND spent_at IS NULL AND expires_at > $3",
                &[&token_sha256.as_slice(), &subject, &now],
            )
            .map_err(|e| query_err(self.pool.place(), &e))?;
        self.pool.put(client);
        Ok(spent == 1)
    }

    fn reader(&self) -> Result<Box<dyn LogRead + '_>> {
        Ok(Box::new(PgReader::new(&self.pool)?))
    }
}

/// The serial index must say exactly what the entries say: an entry with a
/// certificate comes with the reservation of that very serial (same
/// namespace, this store), and an entry without one with none.
fn check_reservation(
    entry: &Entry,
    serial: Option<&SerialReservation>,
    ledger: &Arc<SerialLedger>,
) -> Result<()> {
    let expected = entry
        .certificate
        .as_ref()
        .map(|c| SerialKind::of(entry.kind, &c.bytes.0).key(&c.serial));
    match (serial, &expected) {
        (Some(reservation), Some(key)) if reservation.index_key() == key => {
            if !reservation.belongs_to(ledger) {
                return Err(Error::Store(
                    "the serial was reserved in another store".into(),
                ));
            }
            Ok(())
        }
        (None, None) => Ok(()),
        (Some(reservation), _) => Err(Error::Store(format!(
            "the reservation of serial {} does not match the entry's certificate",
            reservation.serial()
        ))),
        (None, Some(key)) => Err(Error::Store(format!(
            "serial {key} was not reserved before its certificate was logged"
        ))),
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.requests.take();
        self.refreshes.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// LISTENs for other replicas' appends and wakes the writer, so this
/// replica follows them within milliseconds instead of at its next poll.
/// Losing the connection only slows that down: the writer still polls.
struct Listener {
    connector: Arc<Connector>,
    wake: crossbeam_channel::Sender<()>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Listener {
    fn run(self) {
        use postgres::fallible_iterator::FallibleIterator;
        use std::sync::atomic::Ordering;
        while !self.stop.load(Ordering::SeqCst) {
            let mut client = match self.connector.connect() {
                Ok(client) => client,
                Err(_) => {
                    std::thread::sleep(POLL);
                    continue;
                }
            };
            if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
                std::thread::sleep(POLL);
                continue;
            }
            while !self.stop.load(Ordering::SeqCst) {
                let next = {
                    let mut notifications = client.notifications();
                    let mut iter = notifications.timeout_iter(POLL);
                    iter.next().map(|n| n.is_some())
                };
                match next {
                    // Full: a wake-up is already pending.
                    Ok(true) => {
                        let _ = self.wake.try_send(());
                    }
                    Ok(false) => {}
                    Err(_) => break,
                }
                if client.is_closed() {
                    break;
                }
            }
        }
    }
}

/// What one locked transaction produced: the checkpoint now latest, and
/// per request its index.
type Batch = (Arc<SignedCheckpoint>, Vec<u64>);

impl Writer {
    fn run(
        mut self,
        requests: crossbeam_channel::Receiver<Vec<AppendRequest>>,
        mut wake: crossbeam_channel::Receiver<()>,
        mut refreshes: crossbeam_channel::Receiver<oneshot::Sender<Result<()>>>,
    ) {
        loop {
            let mut batch = crossbeam_channel::select! {
                recv(requests) -> batch => match batch {
                    Ok(batch) => batch,
                    Err(_) => return,
                },
                recv(refreshes) -> asked => {
                    match asked {
                        Ok(reply) => {
                            // Every refresh waiting now is answered by one
                            // look at the database.
                            let mut replies = vec![reply];
                            replies.extend(refreshes.try_iter());
                            self.idle();
                            for reply in replies {
                                let _ = reply.send(self.current_failure());
                            }
                        }
                        Err(_) => refreshes = crossbeam_channel::never(),
                    }
                    continue;
                },
                recv(wake) -> woken => {
                    if woken.is_err() {
                        // The listener stopped: polling alone from now on.
                        wake = crossbeam_channel::never();
                    }
                    self.idle();
                    continue;
                },
                default(POLL) => {
                    self.idle();
                    continue;
                },
            };
            if self.mode == CommitMode::Group {
                while batch.len() < MAX_BATCH {
                    match requests.try_recv() {
                        Ok(more) => batch.extend(more),
                        Err(_) => break,
                    }
                }
            }
            if !batch.is_empty() {
                self.serve(batch);
            }
        }
    }

    /// While idle: follow the other replicas, and notice a database that
    /// came back.
    fn idle(&mut self) {
        if self.mark_failed.is_some() {
            return;
        }
        // Without taking the log's lock unless another replica appended.
        match self.head_size() {
            Ok(Some(size)) if size == self.tree.size() => {
                self.set_failure(None);
                return;
            }
            Ok(_) => {}
            Err(err) => {
                self.client = None;
                self.set_failure(Some(err.to_string()));
                return;
            }
        }
        match self.sync() {
            Ok((latest, _)) => {
                if let Err(err) = self.advance(&latest) {
                    self.fail_mark(&err);
                    return;
                }
                self.publish(&latest);
                self.set_failure(None);
                // What `/log/checkpoint` serves follows too: the other
                // replica's checkpoint, once it meets the witness policy
                // here as well (without witnesses, at once).
                if let Some(shared) = &self.shared {
                    match self.release(&latest) {
                        Ok(released) => {
                            let mut published = lock(&shared.published);
                            if published.as_ref().is_none_or(|p| p.size <= released.size) {
                                *published = Some(Arc::new(released));
                            }
                        }
                        Err(err) => {
                            log::error!("checkpoint {} is held back: {err}", latest.size)
                        }
                    }
                }
            }
            Err(err) => self.set_failure(Some(err.to_string())),
        }
    }

    fn serve(&mut self, batch: Vec<AppendRequest>) {
        if let Some(reason) = &self.mark_failed {
            for request in batch {
                let _ = request.reply.send(Err(Error::Store(reason.clone())));
            }
            return;
        }
        let entries: Vec<&[u8]> = batch.iter().map(|r| r.entry.as_slice()).collect();
        let serials: Vec<Option<&str>> = batch
            .iter()
            .map(|r| r.serial.as_ref().map(SerialReservation::index_key))
            .collect();
        let (checkpoint, indices) = match self.write_batch(&entries, &serials) {
            Ok(done) => done,
            Err(err) => {
                if matches!(err, Error::StoreUnavailable(_)) {
                    self.set_failure(Some(err.to_string()));
                }
                let text = err.to_string();
                for request in batch {
                    let _ = request.reply.send(Err(match &err {
                        Error::StoreUnavailable(_) => Error::StoreUnavailable(text.clone()),
                        Error::Integrity { index, problem } => Error::Integrity {
                            index: *index,
                            problem: problem.clone(),
                        },
                        _ => Error::Store(text.clone()),
                    }));
                }
                return;
            }
        };
        self.set_failure(None);
        if let Some(shared) = &self.shared {
            let mut known = lock(&shared.admin_certificates);
            known.extend(batch.iter().filter_map(|r| r.admin_certificate));
        }
        if let Err(err) = self.advance(&checkpoint) {
            let text = self.fail_mark(&err);
            for request in batch {
                let _ = request.reply.send(Err(Error::Store(text.clone())));
            }
            return;
        }
        self.publish(&checkpoint);
        let released = match self.release(&checkpoint) {
            Ok(cosigned) => Arc::new(cosigned),
            Err(err) => {
                log::error!("checkpoint {} is held back: {err}", checkpoint.size);
                let text = match &err {
                    Error::Witness(reason) => reason.clone(),
                    other => other.to_string(),
                };
                for request in batch {
                    let _ = request.reply.send(Err(Error::Witness(text.clone())));
                }
                return;
            }
        };
        if let Some(shared) = &self.shared {
            *lock(&shared.published) = Some(released.clone());
        }
        let proofs = self.proofs(&indices, released.size);
        for ((request, index), proof) in batch.into_iter().zip(indices).zip(proofs) {
            let _ = request
                .reply
                .send(proof.map(|proof| appended(index, released.clone(), proof)));
            // Released only now, long after the serial committed.
            drop(request.serial);
        }
    }

    /// Whether appends are accepted now: the failure [`Writer::idle`] or
    /// the last batch left, as an error.
    fn current_failure(&self) -> Result<()> {
        let failure = match &self.shared {
            Some(shared) => lock(&shared.failure).clone(),
            None => None,
        };
        match failure {
            None => Ok(()),
            Some(reason) if self.mark_failed.is_some() => Err(Error::Store(reason)),
            Some(reason) => Err(Error::StoreUnavailable(reason)),
        }
    }

    fn fail_mark(&mut self, err: &Error) -> String {
        log::error!("the log's high-water mark could not be moved: {err}");
        let text = format!(
            "the entry was written but the high-water mark could not be moved past it, so \
             nothing is handed out until signet-ca restarts: {err}"
        );
        self.mark_failed.get_or_insert_with(|| text.clone());
        self.set_failure(Some(text.clone()));
        text
    }

    fn set_failure(&self, failure: Option<String>) {
        if let Some(shared) = &self.shared {
            let mut slot = lock(&shared.failure);
            if self.mark_failed.is_some() {
                *slot = self.mark_failed.clone();
            } else {
                if slot.is_none() {
                    if let Some(reason) = &failure {
                        log::error!("the log store stops accepting entries: {reason}");
                    }
                } else if failure.is_none() {
                    log::info!("the log store accepts entries again");
                }
                *slot = failure;
            }
        }
    }

    fn publish(&self, checkpoint: &Arc<SignedCheckpoint>) {
        if let Some(shared) = &self.shared {
            let mut latest = lock(&shared.latest);
            if latest.size <= checkpoint.size {
                *latest = checkpoint.clone();
            }
        }
    }

    fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            self.client = Some(self.pool.get()?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| Error::Store("no database connection".into()))
    }

    /// The latest checkpoint's size in the database (no lock).
    fn head_size(&mut self) -> Result<Option<u64>> {
        let place = self.pool.place().to_owned();
        let row = self
            .client()?
            .query_one("SELECT max(size) FROM log_checkpoints", &[])
            .map_err(|e| query_err(&place, &e))?;
        row.get::<_, Option<i64>>(0).map(to_index).transpose()
    }

    /// Catches up with the database without appending (an empty batch).
    fn sync(&mut self) -> Result<Batch> {
        self.write_batch(&[], &[])
    }

    /// One transaction: lock the log, catch up with what other replicas
    /// committed, append `entries` (with their serials), sign and record
    /// the checkpoint, commit. With no entries, nothing is signed unless
    /// the log has no checkpoint at all yet. On an error nothing of this
    /// batch is assumed committed and the tree stays as it was.
    fn write_batch(&mut self, entries: &[&[u8]], serials: &[Option<&str>]) -> Result<Batch> {
        let place = self.pool.place().to_owned();
        let result = self.write_batch_in(entries, serials, &place);
        if let Err(Error::StoreUnavailable(_)) = &result {
            // The connection may be broken: a fresh one next time.
            self.client = None;
        }
        result
    }

    fn write_batch_in(
        &mut self,
        entries: &[&[u8]],
        serials: &[Option<&str>],
        place: &str,
    ) -> Result<Batch> {
        let err = |e: postgres::Error| query_err(place, &e);
        let mut tree = self.tree.clone();
        let verifier = self.verifier.clone();
        let (origin, signer, replica) = (
            self.origin.clone(),
            self.signer.clone(),
            self.replica.clone(),
        );
        let client = self.client()?;
        let mut txn = client.transaction().map_err(err)?;
        txn.execute("SELECT 1 FROM log_head FOR UPDATE", &[])
            .map_err(err)?;
        let head = txn
            .query_opt(
                "SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1",
                &[],
            )
            .map_err(err)?
            .map(|row| {
                let note: String = row.get(0);
                SignedCheckpoint::verify(note.as_bytes(), &verifier).map_err(|e| {
                    broken(
                        None,
                        format!("the latest checkpoint in the database does not verify: {e}"),
                    )
                })
            })
            .transpose()?;
        let mut admin = Vec::new();
        let mut followed = None;
        if head.is_none() && tree.size() > 0 {
            return Err(broken(
                None,
                format!(
                    "the database holds no signed checkpoint, but this replica had seen {} \
                     entries (the checkpoints were removed)",
                    tree.size()
                ),
            ));
        }
        if let Some(head) = &head {
            if head.size < tree.size() {
                return Err(broken(
                    None,
                    format!(
                        "the database went back: its latest checkpoint covers {} entries, this \
                         replica had seen {} (restored from an old backup?)",
                        head.size,
                        tree.size()
                    ),
                ));
            }
            if head.size > tree.size() {
                admin = catch_up(&mut txn, &mut tree, head, place)?;
                followed = Some(head.size);
            }
            if tree.root() != head.root {
                return Err(broken(
                    None,
                    format!(
                        "the database's checkpoint of size {} is not the tree this replica \
                         holds (a fork)",
                        head.size
                    ),
                ));
            }
            if entries.is_empty() {
                txn.commit().map_err(err)?;
                self.tree = tree;
                self.learn_admin(admin);
                self.announce(followed);
                return Ok((Arc::new(head.clone()), Vec::new()));
            }
        }
        let first = tree.size();
        let mut indices = Vec::with_capacity(entries.len());
        let (mut entry_idx, mut node_level, mut node_idx, mut node_hash) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut serial_key, mut serial_idx) = (Vec::new(), Vec::new());
        for (entry, serial) in entries.iter().zip(serials) {
            let index = tree.size();
            let mut new_nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(2);
            tree.append(merkle::leaf_hash(entry), |node, hash| {
                new_nodes.push((node, *hash))
            })?;
            for (node, hash) in new_nodes {
                node_level.push(i32::try_from(node.level).map_err(|_| {
                    Error::Store(format!("tree level {} out of range", node.level))
                })?);
                node_idx.push(to_db(node.index)?);
                node_hash.push(hash.to_vec());
            }
            entry_idx.push(to_db(index)?);
            if let Some(key) = serial {
                serial_key.push(*key);
                serial_idx.push(to_db(index)?);
            }
            indices.push(index);
        }
        if !entries.is_empty() {
            txn.execute(
                "INSERT INTO log_entries (idx, body) SELECT * FROM unnest($1::int8[], $2::bytea[])",
                &[&entry_idx, &entries],
            )
            .map_err(err)?;
            txn.execute(
                "INSERT INTO log_nodes (level, idx, hash) \
                 SELECT * FROM unnest($1::int4[], $2::int8[], $3::bytea[])",
                &[&node_level, &node_idx, &node_hash],
            )
            .map_err(err)?;
            let inserted = txn
                .execute(
                    "INSERT INTO log_serials (key, idx) SELECT * FROM unnest($1::text[], $2::int8[]) \
                     ON CONFLICT (key) DO NOTHING",
                    &[&serial_key, &serial_idx],
                )
                .map_err(err)?;
            if inserted != serial_key.len() as u64 {
                return Err(Error::Store(
                    "a serial of this batch is already used in the log".into(),
                ));
            }
        }
        let checkpoint = sign(&origin, &tree, signer.as_ref(), &verifier)?;
        txn.execute(
            "INSERT INTO log_checkpoints (size, root, note, signed_by) VALUES ($1, $2, $3, $4)",
            &[
                &to_db(checkpoint.size)?,
                &checkpoint.root.to_vec(),
                &checkpoint.note,
                &replica,
            ],
        )
        .map_err(err)?;
        // Wakes the other replicas' writers (delivered on commit).
        txn.execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &checkpoint.size.to_string()],
        )
        .map_err(err)?;
        txn.commit().map_err(|e| {
            // Whether it reached the database is unknown: the next batch
            // finds out under the lock, and verifies whatever is there.
            Error::StoreUnavailable(format!(
                "the commit to {place} failed ({}); whether it landed is checked before the next \
                 append",
                connect::describe(&e)
            ))
        })?;
        debug_assert_eq!(indices.first().copied().unwrap_or(first), first);
        self.tree = tree;
        self.learn_admin(admin);
        self.announce(followed);
        Ok((Arc::new(checkpoint), indices))
    }

    /// Tells the subscribers that entries other replicas appended are now
    /// verified here, up to `size`.
    fn announce(&self, followed: Option<u64>) {
        if let (Some(shared), Some(size)) = (&self.shared, followed) {
            lock(&shared.subscribers).retain(|tx| tx.send(size).is_ok());
        }
    }

    fn learn_admin(&self, admin: Vec<[u8; 32]>) {
        if let (Some(shared), false) = (&self.shared, admin.is_empty()) {
            lock(&shared.admin_certificates).extend(admin);
        }
    }

    /// Moves the high-water mark to `checkpoint` if it is beyond it; never
    /// backwards. The mark may be shared by the replicas (a network HSM):
    /// it moves under an advisory lock, and the mark found must be one of
    /// this log's checkpoints — a mark from another log with this origin
    /// (a clone) stops this replica.
    fn advance(&mut self, checkpoint: &Arc<SignedCheckpoint>) -> Result<()> {
        if self
            .marked
            .as_ref()
            .is_some_and(|marked| marked.size >= checkpoint.size)
        {
            return Ok(());
        }
        let place = self.pool.place().to_owned();
        let err = |e: postgres::Error| query_err(&place, &e);
        let (mark, verifier) = (self.mark.clone(), self.verifier.clone());
        let client = self.client()?;
        let mut txn = client.transaction().map_err(err)?;
        txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MARK_LOCK])
            .map_err(err)?;
        let stored = super::high_water::load_mark(mark.as_ref(), &verifier)?;
        if let Some(stored) = &stored {
            let in_log: Option<Vec<u8>> = txn
                .query_opt(
                    "SELECT root FROM log_checkpoints WHERE size = $1",
                    &[&to_db(stored.size)?],
                )
                .map_err(err)?
                .map(|row| row.get(0));
            if in_log.as_deref() != Some(stored.root.as_slice()) {
                return Err(broken(
                    None,
                    format!(
                        "the high-water mark in {} changed under this CA (it now holds size {}, \
                         which is not a checkpoint of this log): another signet-ca is writing \
                         another copy of this log, or the mark was edited",
                        mark.describe(),
                        stored.size
                    ),
                ));
            }
            if stored.size >= checkpoint.size {
                let stored = Arc::new(stored.clone());
                txn.commit().map_err(err)?;
                self.marked = Some(stored);
                return Ok(());
            }
        }
        mark.store(checkpoint.note.as_bytes())?;
        txn.commit().map_err(err)?;
        self.marked = Some(checkpoint.clone());
        Ok(())
    }

    fn release(&self, checkpoint: &Arc<SignedCheckpoint>) -> Result<SignedCheckpoint> {
        let Some(witnesses) = &self.witnesses else {
            return Ok(checkpoint.as_ref().clone());
        };
        let pool = self.pool.clone();
        let proofs = move |old: u64, new: u64| -> Result<Vec<Hash>> {
            let reader = PgReader::new(&pool)?;
            Ok(merkle::consistency_proof(&Nodes(&reader), old, new)?)
        };
        witnesses.cosign(checkpoint, &proofs)
    }

    /// Inclusion proofs of `indices` in the tree of `size`: the right edge
    /// from memory, the rest from one snapshot.
    fn proofs(&self, indices: &[u64], size: u64) -> Vec<Result<Vec<Hash>>> {
        let edge: HashMap<(u32, u64), Hash> = self
            .tree
            .nodes()
            .into_iter()
            .zip(self.tree.hashes())
            .map(|(node, hash)| ((node.level, node.index), *hash))
            .collect();
        let reader = match PgReader::new(&self.pool) {
            Ok(reader) => reader,
            Err(err) => {
                let text = err.to_string();
                return indices
                    .iter()
                    .map(|_| Err(Error::StoreUnavailable(text.clone())))
                    .collect();
            }
        };
        let nodes = EdgeNodes {
            edge: &edge,
            reader: &reader,
        };
        indices
            .iter()
            .map(|index| Ok(merkle::inclusion_proof(&nodes, *index, size)?))
            .collect()
    }
}

/// Signs a checkpoint for `tree` and checks the signature: a faulty one
/// never reaches the database or a client.
fn sign(
    origin: &str,
    tree: &CompactRange,
    signer: &(dyn signet_log::note::NoteSigner + Send + Sync),
    verifier: &VerifierKey,
) -> Result<SignedCheckpoint> {
    let (size, root) = (tree.size(), tree.root());
    let note = Checkpoint::new(origin, size, root)?
        .sign(&[signer])?
        .to_text();
    let signed = SignedCheckpoint::verify(note.as_bytes(), verifier).map_err(|e| {
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
    Ok(signed)
}

/// Replays the entries other replicas committed after `tree` up to `head`
/// (in the locked transaction), checking each entry, every stored hash and
/// the root against the signed checkpoint. Returns the SHA-256 of the
/// certificates in `admin-sign` entries among them.
fn catch_up(
    txn: &mut postgres::Transaction<'_>,
    tree: &mut CompactRange,
    head: &SignedCheckpoint,
    place: &str,
) -> Result<Vec<[u8; 32]>> {
    let err = |e: postgres::Error| query_err(place, &e);
    let from = tree.size();
    let rows = txn
        .query(
            "SELECT idx, body FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
            &[&to_db(from)?, &to_db(head.size)?],
        )
        .map_err(err)?;
    let mut admin = Vec::new();
    let mut wanted: Vec<(NodeId, Hash)> = Vec::new();
    for (expected, row) in (from..).zip(&rows) {
        let index = to_index(row.get(0))?;
        if index != expected {
            return Err(broken(
                Some(expected),
                format!("entry {expected} is missing"),
            ));
        }
        let body: Vec<u8> = row.get(1);
        let entry = Entry::from_bytes(&body).map_err(|e| {
            broken(
                Some(index),
                format!("entry {index} is not a valid entry: {e}"),
            )
        })?;
        signet_log::entry::check_certificate_contents(&entry)
            .map_err(|e| broken(Some(index), format!("entry {index}: {e}")))?;
        if let (EntryKind::AdminSign, Some(cert)) = (&entry.kind, &entry.certificate) {
            admin.push(<sha2::Sha256 as sha2::Digest>::digest(&cert.bytes.0).into());
        }
        tree.append(merkle::leaf_hash(&body), |node, hash| {
            wanted.push((node, *hash))
        })?;
    }
    if tree.size() != head.size {
        return Err(broken(
            Some(tree.size()),
            format!(
                "the database holds {} entries below its checkpoint of size {}",
                tree.size(),
                head.size
            ),
        ));
    }
    if tree.root() != head.root {
        return Err(broken(
            Some(from),
            format!(
                "the entries from {from} do not hash to the signed checkpoint of size {}",
                head.size
            ),
        ));
    }
    let levels: Vec<i32> = wanted
        .iter()
        .map(|(node, _)| i32::try_from(node.level).unwrap_or(i32::MAX))
        .collect();
    let indices: Vec<i64> = wanted
        .iter()
        .map(|(node, _)| i64::try_from(node.index).unwrap_or(i64::MAX))
        .collect();
    let stored: HashMap<(i32, i64), Vec<u8>> = txn
        .query(
            "SELECT n.level, n.idx, n.hash FROM log_nodes n \
             JOIN unnest($1::int4[], $2::int8[]) AS k(level, idx) \
             ON n.level = k.level AND n.idx = k.idx",
            &[&levels, &indices],
        )
        .map_err(err)?
        .into_iter()
        .map(|row| ((row.get(0), row.get(1)), row.get(2)))
        .collect();
    for ((node, hash), key) in wanted.iter().zip(levels.into_iter().zip(indices)) {
        if stored.get(&key).map(Vec::as_slice) != Some(hash.as_slice()) {
            return Err(broken(
                None,
                format!(
                    "the stored tree hash ({}, {}) does not match the entries",
                    node.level, node.index
                ),
            ));
        }
    }
    Ok(admin)
}

/// Hashes for proofs: the tree's right edge in memory, the rest read.
struct EdgeNodes<'a> {
    edge: &'a HashMap<(u32, u64), Hash>,
    reader: &'a PgReader<'a>,
}

impl HashStore for EdgeNodes<'_> {
    fn subtree_hash(&self, level: u32, index: u64) -> signet_log::Result<Hash> {
        if let Some(hash) = self.edge.get(&(level, index)) {
            return Ok(*hash);
        }
        match self.reader.node(level, index) {
            Ok(Some(hash)) => Ok(hash),
            _ => Err(signet_log::MerkleError::MissingHash { level, index }.into()),
        }
    }
}
