//! The store's promises, tested without a token: software checkpoint
//! signer, the high-water mark in a file. The same attacks through the real
//! binary and SoftHSM2 are in `tests/attacks.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use signet_log::checkpoint::Checkpoint;
use signet_log::entry::{Actor, Entry, EntryKind};
use signet_log::merkle;
use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey};
use signet_log::tiles::TilePath;

use super::local::{ENTRIES, META};
use super::postgres::{PgConfig, PgOptions, PgStore};
use super::*;

/// A software Ed25519 checkpoint signer that counts its signatures.
struct TestSigner {
    key: ed25519_dalek::SigningKey,
    verifier: VerifierKey,
    signed: AtomicUsize,
}

impl NoteSigner for TestSigner {
    fn name(&self) -> &str {
        self.verifier.name()
    }
    fn key_id(&self) -> KeyId {
        self.verifier.key_id()
    }
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignerError> {
        use ed25519_dalek::Signer;
        self.signed.fetch_add(1, Ordering::SeqCst);
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

fn signer(seed: u8) -> Arc<TestSigner> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let verifier = VerifierKey::ed25519("test/signet-log", key.verifying_key().as_bytes()).unwrap();
    Arc::new(TestSigner {
        key,
        verifier,
        signed: AtomicUsize::new(0),
    })
}

/// A mark in a file that can be told to fail, as a token that is unplugged
/// between the commit and the mark's update.
struct FlakyMark {
    file: FileMark,
    fail: AtomicBool,
}

impl HighWaterMark for FlakyMark {
    fn describe(&self) -> String {
        self.file.describe()
    }
    fn load(&self) -> Result<Vec<Vec<u8>>> {
        self.file.load()
    }
    fn store(&self, note: &[u8]) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Store("the token is gone".into()));
        }
        self.file.store(note)
    }
}

/// Which store a test runs against: every test of the matrix below runs
/// against both, the PostgreSQL one on a throw-away cluster of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Local,
    Postgres,
}

/// Where a log is kept: a redb file, or a database of the fixture's cluster.
#[derive(Debug, Clone)]
enum Place {
    File(std::path::PathBuf),
    Db(String),
}

/// A copy of a store taken by the operator's backup.
enum Backup {
    File(std::path::PathBuf),
    Dump(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Existing,
    Adopt,
}

struct Fixture {
    backend: Backend,
    // Field order is drop order: the cluster stops before its directory goes.
    pg: Option<std::sync::Mutex<signet_testkit::Postgres>>,
    dir: tempfile::TempDir,
    signer: Arc<TestSigner>,
    mark: Arc<FlakyMark>,
    place: Place,
}

/// The log tables an attacker with the database's credentials edits.
const PG_TABLES: &str = "log_entries, log_nodes, log_serials, log_checkpoints";

trait Len {
    fn len(&self) -> u64;
}

impl Len for Box<dyn LogStore> {
    fn len(&self) -> u64 {
        self.latest_checkpoint().size
    }
}

impl Fixture {
    fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mark = Arc::new(FlakyMark {
            file: FileMark::new(dir.path().join("mark/high-water")),
            fail: AtomicBool::new(false),
        });
        let (pg, place) = match backend {
            Backend::Local => (None, Place::File(dir.path().join("log.redb"))),
            Backend::Postgres => {
                let mut pg = signet_testkit::Postgres::start();
                let db = pg.create_database();
                (Some(std::sync::Mutex::new(pg)), Place::Db(db))
            }
        };
        Self {
            backend,
            pg,
            dir,
            signer: signer(7),
            mark,
            place,
        }
    }

    fn pg(&self) -> std::sync::MutexGuard<'_, signet_testkit::Postgres> {
        self.pg.as_ref().unwrap().lock().unwrap()
    }

    fn db(&self) -> &str {
        match &self.place {
            Place::Db(db) => db,
            Place::File(_) => panic!("not a database"),
        }
    }

    fn path(&self) -> std::path::PathBuf {
        match &self.place {
            Place::File(path) => path.clone(),
            Place::Db(_) => panic!("not a file"),
        }
    }

    fn pg_config(&self, db: &str) -> PgConfig {
        let pg = self.pg();
        PgConfig {
            url: pg.url(db),
            password_file: Some(pg.password_file()),
            ca_file: None,
        }
    }

    fn options(&self) -> StoreOptions {
        StoreOptions {
            path: self.path(),
            origin: "test/signet-log".into(),
            signer: self.signer.clone(),
            verifier: self.signer.verifier.clone(),
            mark: self.mark.clone(),
            mode: CommitMode::Group,
            witnesses: None,
        }
    }

    /// Opens the log at `place` with this signer and mark.
    fn open_at(
        &self,
        place: &Place,
        mode: Mode,
        signer: Arc<TestSigner>,
        mark: Arc<dyn HighWaterMark>,
    ) -> Result<Box<dyn LogStore>> {
        match place {
            Place::File(path) => {
                let options = StoreOptions {
                    path: path.clone(),
                    verifier: signer.verifier.clone(),
                    signer,
                    mark,
                    ..self.options()
                };
                Ok(Box::new(match mode {
                    Mode::Create => LocalStore::create(options)?,
                    Mode::Existing => LocalStore::open(options)?,
                    Mode::Adopt => LocalStore::adopt_mark(options)?,
                }))
            }
            Place::Db(db) => {
                let options = PgOptions {
                    db: self.pg_config(db),
                    origin: "test/signet-log".into(),
                    verifier: signer.verifier.clone(),
                    signer,
                    mark,
                    mode: CommitMode::Group,
                    witnesses: None,
                    replica: "test".into(),
                };
                Ok(Box::new(match mode {
                    Mode::Create => PgStore::create(options)?,
                    Mode::Existing => PgStore::open(options)?,
                    Mode::Adopt => PgStore::adopt_mark(options)?,
                }))
            }
        }
    }

    /// Opens the store, creating it on first use (as `init` does).
    fn open(&self) -> Result<Box<dyn LogStore>> {
        self.open_at(
            &self.place,
            Mode::Create,
            self.signer.clone(),
            self.mark.clone(),
        )
    }

    fn open_as(&self, mode: Mode) -> Result<Box<dyn LogStore>> {
        self.open_at(&self.place, mode, self.signer.clone(), self.mark.clone())
    }

    /// A copy of the store as it is now (the store must be closed).
    fn backup(&self) -> Backup {
        match &self.place {
            Place::File(path) => {
                let copy = self
                    .dir
                    .path()
                    .join(format!("backup-{}.redb", rand::random::<u32>()));
                std::fs::copy(path, &copy).unwrap();
                Backup::File(copy)
            }
            Place::Db(db) => Backup::Dump(self.pg().dump(db, true)),
        }
    }

    /// Puts a backup back in place of the store.
    fn put_back(&self, backup: &Backup) {
        match backup {
            Backup::File(copy) => {
                std::fs::copy(copy, self.path()).unwrap();
            }
            Backup::Dump(dump) => {
                let pg = self.pg();
                pg.psql(
                    self.db(),
                    &format!("TRUNCATE {PG_TABLES}, log_head, signet_schema"),
                );
                pg.psql_script(self.db(), dump);
            }
        }
    }

    /// Deletes the store (the file; every row of the log).
    fn remove_store(&self) {
        match &self.place {
            Place::File(path) => std::fs::remove_file(path).unwrap(),
            Place::Db(db) => {
                self.pg().psql(db, &format!("TRUNCATE {PG_TABLES}"));
            }
        }
    }

    /// Removes the stored signed checkpoint(s).
    fn delete_checkpoint(&self) {
        match &self.place {
            Place::File(path) => {
                let db = redb::Database::create(path).unwrap();
                let txn = db.begin_write().unwrap();
                txn.open_table(META).unwrap().remove("checkpoint").unwrap();
                txn.commit().unwrap();
            }
            Place::Db(db) => {
                self.pg().psql(db, "DELETE FROM log_checkpoints");
            }
        }
    }

    /// A copy of the store elsewhere, taken while it is open.
    fn clone_store(&self, into: &tempfile::TempDir) -> Place {
        match &self.place {
            Place::File(path) => {
                // redb refuses a second open of the same file: copy the bytes.
                let copy = into.path().join("log.redb");
                std::fs::copy(path, &copy).unwrap();
                Place::File(copy)
            }
            Place::Db(db) => Place::Db(self.pg().clone_database(db)),
        }
    }

    /// A log of two entries, and a copy of its store taken after the first.
    fn backed_up_then_grown(self) -> (Self, Backup) {
        self.open().unwrap().append(&entry(0), None).unwrap();
        let backup = self.backup();
        self.open().unwrap().append(&entry(1), None).unwrap();
        (self, backup)
    }
}

fn entry(n: u64) -> Entry {
    Entry {
        kind: EntryKind::RoleChange,
        time: 1_700_000_000 + n,
        actor: Actor::LocalAdmin {
            unix_user: "test".into(),
        },
        request_hash: None,
        subject: Some(format!("role-{n}")),
        principals: Vec::new(),
        roles: Vec::new(),
        certificate: None,
        change: None,
    }
}

/// An issuance entry with a real OpenSSH user certificate (signed by a
/// software CA key) of this serial, as the CA logs one.
fn ssh_cert_entry(serial: u64) -> Entry {
    use sha2::Digest;
    let ca = ssh_key::private::Ed25519Keypair::from_seed(&[3; 32]);
    let user = ssh_key::private::Ed25519Keypair::from_seed(&[4; 32]);
    let user_key = ssh_key::public::KeyData::from(user.public);
    let mut builder = ssh_key::certificate::Builder::new(
        vec![0; 32],
        user_key.clone(),
        1_700_000_000,
        1_700_003_600,
    )
    .unwrap();
    builder
        .serial(serial)
        .unwrap()
        .cert_type(ssh_key::certificate::CertType::User)
        .unwrap()
        .key_id(format!("user=alice serial={serial}"))
        .unwrap()
        .valid_principal("root")
        .unwrap();
    let cert = builder.sign(&ssh_key::PrivateKey::from(ca)).unwrap();
    let bytes = ssh_key::encoding::Encode::encode_vec(&cert).unwrap();
    let mut e = entry(serial);
    e.kind = EntryKind::SshUserCert;
    e.subject = Some("alice".into());
    e.principals = vec!["root".into()];
    e.certificate = Some(signet_log::entry::IssuedCertificate {
        serial: serial.to_string(),
        public_key_fingerprint: user_key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
        not_before: 1_700_000_000,
        not_after: 1_700_003_600,
        sha256: signet_log::entry::Sha256Hex(sha2::Sha256::digest(&bytes).into()),
        bytes: signet_log::entry::Base64Bytes(bytes),
        form: signet_log::entry::CertificateForm::Full,
    });
    signet_log::entry::check_certificate_contents(&e).unwrap();
    e
}

fn first_leaf() -> merkle::Hash {
    merkle::leaf_hash(&ssh_cert_entry(7).to_canonical_bytes().unwrap())
}

fn leaf(n: u64) -> merkle::Hash {
    merkle::leaf_hash(&entry(n).to_canonical_bytes().unwrap())
}

fn integrity_message<S>(result: Result<S>) -> String {
    match result {
        Err(err @ Error::Integrity { .. }) => err.to_string(),
        Err(other) => panic!("expected an integrity error, got {other}"),
        Ok(_) => panic!("a tampered store was opened"),
    }
}

/// Every test of the matrix runs against the embedded store and against
/// PostgreSQL: one body, two backends.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod local_store {
            $(#[test] fn $name() { super::$name(super::Fixture::new(super::Backend::Local)) })*
        }
        mod postgres_store {
            $(#[test] fn $name() { super::$name(super::Fixture::new(super::Backend::Postgres)) })*
        }
    };
}

both_backends!(
    appends_are_ordered_checkpointed_and_survive_reopen,
    a_reservation_holds_its_serial_until_dropped_unless_it_was_logged,
    a_reservation_from_another_store_is_refused,
    concurrent_appends_get_dense_unique_indices_and_share_checkpoints,
    tiles_cover_exactly_the_checkpointed_tree,
    a_store_without_its_checkpoint_is_refused_and_nothing_is_signed,
    an_old_copy_of_the_store_is_behind_the_mark,
    a_fork_of_the_same_size_is_refused,
    a_mark_not_signed_by_the_log_key_is_refused,
    a_crash_between_commit_and_mark_hands_nothing_out_and_recovers,
    a_store_with_entries_but_no_mark_is_refused_until_adopted,
    an_entry_and_its_serial_reservation_must_agree,
    a_mark_moved_by_another_writer_stops_issuance,
    entries_appended_together_share_one_commit_and_checkpoint,
    entries_appended_together_are_refused_together,
    a_join_token_is_spent_once_by_its_subject_before_it_expires,
);

fn appends_are_ordered_checkpointed_and_survive_reopen(fx: Fixture) {
    let root_after_two;
    {
        let store = fx.open().unwrap();
        let serial = store.reserve_serial(SerialKind::Ssh, "7").unwrap().unwrap();
        let a = store.append(&ssh_cert_entry(7), Some(serial)).unwrap();
        assert_eq!(a.index, 0);
        let b = store.append(&entry(1), None).unwrap();
        assert_eq!((b.index, b.checkpoint.size), (1, 2));
        root_after_two = b.checkpoint.root;
        assert_eq!(
            root_after_two,
            merkle::root_from_leaf_hashes(&[first_leaf(), leaf(1)])
        );
    }
    let store = fx.open().unwrap();
    assert_eq!(store.len(), 2);
    assert_eq!(store.verified().high_water, Some(2));
    assert!(
        store
            .reserve_serial(SerialKind::Ssh, "7")
            .unwrap()
            .is_none(),
        "serial reused"
    );
    assert!(
        store
            .reserve_serial(SerialKind::X509, "7")
            .unwrap()
            .is_some(),
        "kinds are separate"
    );
    let c = store.append(&entry(2), None).unwrap();
    let proof = store.inclusion_proof(0, c.checkpoint.size).unwrap();
    merkle::verify_inclusion(&first_leaf(), 0, 3, &proof, &c.checkpoint.root).unwrap();
    let consistency = store.consistency_proof(2, 3).unwrap();
    merkle::verify_consistency(2, 3, &consistency, &root_after_two, &c.checkpoint.root).unwrap();
}

fn a_reservation_holds_its_serial_until_dropped_unless_it_was_logged(fx: Fixture) {
    let store = fx.open().unwrap();
    let held = store.reserve_serial(SerialKind::Ssh, "9").unwrap().unwrap();
    assert!(store
        .reserve_serial(SerialKind::Ssh, "9")
        .unwrap()
        .is_none());
    drop(held);
    let again = store.reserve_serial(SerialKind::Ssh, "9").unwrap().unwrap();
    store.append(&ssh_cert_entry(9), Some(again)).unwrap();
    assert!(store
        .reserve_serial(SerialKind::Ssh, "9")
        .unwrap()
        .is_none());
}

fn a_reservation_from_another_store_is_refused(fx: Fixture) {
    let two = Fixture::new(fx.backend);
    let (a, b) = (fx.open().unwrap(), two.open().unwrap());
    let foreign = b.reserve_serial(SerialKind::Ssh, "1").unwrap().unwrap();
    let err = a
        .append(&ssh_cert_entry(1), Some(foreign))
        .unwrap_err()
        .to_string();
    assert!(err.contains("another store"), "{err}");
    assert_eq!(a.len(), 0);
}

fn concurrent_appends_get_dense_unique_indices_and_share_checkpoints(fx: Fixture) {
    let store = Arc::new(fx.open().unwrap());
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..100u64)
                    .map(|i| {
                        let n = t * 1000 + i;
                        let appended = store.append(&entry(n), None).unwrap();
                        merkle::verify_inclusion(
                            &leaf(n),
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
    assert_eq!(all, (0..800).collect::<Vec<_>>());
    assert!(
        fx.signer.signed.load(Ordering::SeqCst) < 801,
        "group commit shares checkpoint signatures"
    );
}

fn tiles_cover_exactly_the_checkpointed_tree(fx: Fixture) {
    let store = fx.open().unwrap();
    for i in 0..300u64 {
        store.append(&entry(i), None).unwrap();
    }
    for path in signet_log::tiles::tile_paths(300) {
        assert!(store.tile(&path).unwrap().is_some(), "{path}");
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

fn a_store_without_its_checkpoint_is_refused_and_nothing_is_signed(fx: Fixture) {
    {
        let store = fx.open().unwrap();
        for i in 0..3 {
            store.append(&entry(i), None).unwrap();
        }
    }
    fx.delete_checkpoint();
    let signed = fx.signer.signed.load(Ordering::SeqCst);
    let message = integrity_message(fx.open());
    assert!(
        message.contains("holds 3 entries but no signed checkpoint"),
        "{message}"
    );
    assert_eq!(
        fx.signer.signed.load(Ordering::SeqCst),
        signed,
        "signed over it"
    );
}

fn an_old_copy_of_the_store_is_behind_the_mark(fx: Fixture) {
    let (fx, backup) = fx.backed_up_then_grown();
    fx.put_back(&backup);
    let message = integrity_message(fx.open());
    assert!(message.contains("behind the high-water mark"), "{message}");
    assert!(message.contains("holds 1 entries"), "{message}");
    assert!(message.contains("log restore"), "{message}");

    // A deleted store is the oldest copy of all.
    fx.remove_store();
    let message = integrity_message(fx.open());
    assert!(message.contains("behind the high-water mark"), "{message}");
}

fn a_fork_of_the_same_size_is_refused(fx: Fixture) {
    let (fx, backup) = fx.backed_up_then_grown();
    // The old copy is put back in place of the real store and grows another
    // second entry under another mark (adopted for it).
    let other_mark = Arc::new(FileMark::new(fx.dir.path().join("other-mark")));
    fx.put_back(&backup);
    {
        let forked = fx
            .open_at(&fx.place, Mode::Adopt, fx.signer.clone(), other_mark)
            .unwrap();
        forked.append(&entry(99), None).unwrap();
    }
    let message = integrity_message(fx.open());
    assert!(message.contains("is a fork"), "{message}");
}

fn a_mark_not_signed_by_the_log_key_is_refused(fx: Fixture) {
    {
        fx.open().unwrap().append(&entry(0), None).unwrap();
    }
    // A mark signed by another key, as a storage admin with a key of their
    // own would write it.
    let forger = Fixture::new(fx.backend);
    {
        let store = forger
            .open_at(&forger.place, Mode::Create, signer(9), forger.mark.clone())
            .unwrap();
        store.append(&entry(0), None).unwrap();
    }
    let forged = forger.mark.load().unwrap().pop().unwrap();
    fx.mark.store(&forged).unwrap();
    let message = integrity_message(fx.open());
    assert!(
        message.contains("does not verify with the log key"),
        "{message}"
    );
}

fn a_crash_between_commit_and_mark_hands_nothing_out_and_recovers(fx: Fixture) {
    {
        let store = fx.open().unwrap();
        store.append(&entry(0), None).unwrap();
        fx.mark.fail.store(true, Ordering::SeqCst);
        let err = store.append(&entry(1), None).unwrap_err().to_string();
        assert!(err.contains("high-water mark could not be moved"), "{err}");
        // Not published either: readers still see the marked checkpoint.
        assert_eq!(store.latest_checkpoint().size, 1);
    }
    fx.mark.fail.store(false, Ordering::SeqCst);
    // The store is ahead of the mark; it extends it, so it is accepted and
    // the mark catches up.
    let store = fx.open().unwrap();
    assert_eq!(store.len(), 2);
    drop(store);
    let marked = high_water::load_mark(fx.mark.as_ref(), &fx.signer.verifier)
        .unwrap()
        .unwrap();
    assert_eq!(marked.size, 2);
}

#[test]
fn an_entry_at_the_largest_index_is_an_integrity_error_not_a_panic() {
    let fx = Fixture::new(Backend::Local);
    {
        fx.open().unwrap().append(&entry(0), None).unwrap();
    }
    {
        let db = redb::Database::create(fx.path()).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(ENTRIES)
            .unwrap()
            .insert(u64::MAX, b"x".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let message = integrity_message(fx.open());
    assert!(message.contains("largest possible index"), "{message}");
}

#[test]
fn a_restore_rebuilds_the_log_and_its_serial_index_from_tiles() {
    let fx = Fixture::new(Backend::Local);
    let export = fx.dir.path().join("export");
    let root = {
        let store = fx.open().unwrap();
        for i in 0..300u64 {
            store.append(&entry(i), None).unwrap();
        }
        for path in signet_log::tiles::tile_paths(300) {
            let file = export.join(path.to_string());
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, store.tile(&path).unwrap().unwrap()).unwrap();
        }
        let checkpoint = store.latest_checkpoint();
        std::fs::write(export.join("checkpoint"), &checkpoint.note).unwrap();
        checkpoint.root
    };
    std::fs::remove_file(fx.path()).unwrap();
    let copy = restore::copy_at(export.to_str().unwrap()).unwrap();
    let report = restore::restore(
        &fx.path(),
        copy.as_ref(),
        &fx.signer.verifier,
        fx.mark.as_ref(),
        false,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(report.entries, 300);
    assert!(report.moved_aside.is_none());
    let store = fx.open().unwrap();
    assert_eq!(store.latest_checkpoint().root, root);
    assert_eq!(store.append(&entry(300), None).unwrap().index, 300);
    // The rebuilt store's tiles are byte for byte what was exported.
    let first = store
        .tile(&TilePath::entries(0, 256).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        first,
        std::fs::read(export.join("tile/entries/000")).unwrap()
    );
}

#[test]
fn a_missing_store_file_is_not_created_by_plain_open() {
    let fx = Fixture::new(Backend::Local);
    match fx.open_as(Mode::Existing) {
        Err(Error::NotInitialised(_)) => {}
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a store was created"),
    }
    assert!(!fx.path().exists());
    // Once the log has entries, a missing file is a lost store.
    {
        fx.open().unwrap().append(&entry(0), None).unwrap();
    }
    std::fs::remove_file(fx.path()).unwrap();
    let message = integrity_message(fx.open_as(Mode::Existing));
    assert!(
        message.contains("is missing, but the log had 1 entries"),
        "{message}"
    );
}

fn a_store_with_entries_but_no_mark_is_refused_until_adopted(fx: Fixture) {
    {
        let store = fx.open().unwrap();
        store.append(&entry(0), None).unwrap();
        store.append(&entry(1), None).unwrap();
    }
    // The storage admin deletes the mark (or rolls the token back to before
    // it existed), hoping an old store passes as new.
    std::fs::remove_file(fx.dir.path().join("mark/high-water")).unwrap();
    let signed = fx.signer.signed.load(Ordering::SeqCst);
    let message = integrity_message(fx.open());
    assert!(message.contains("no high-water mark"), "{message}");
    assert!(message.contains("adopt-mark"), "{message}");
    assert_eq!(fx.signer.signed.load(Ordering::SeqCst), signed);

    // The operator, who knows this store is the newest copy, adopts it.
    let store = fx.open_as(Mode::Adopt).unwrap();
    assert_eq!(store.len(), 2);
    drop(store);
    assert_eq!(
        high_water::load_mark(fx.mark.as_ref(), &fx.signer.verifier)
            .unwrap()
            .unwrap()
            .size,
        2
    );
    assert_eq!(fx.open().unwrap().len(), 2);
}

fn an_entry_and_its_serial_reservation_must_agree(fx: Fixture) {
    let store = fx.open().unwrap();
    // A certificate without its reservation, and one with another serial's.
    let err = store
        .append(&ssh_cert_entry(5), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("was not reserved"), "{err}");
    let other = store.reserve_serial(SerialKind::Ssh, "6").unwrap().unwrap();
    let err = store
        .append(&ssh_cert_entry(5), Some(other))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    // A reservation handed in with an entry that carries no certificate.
    let stray = store.reserve_serial(SerialKind::Ssh, "7").unwrap().unwrap();
    assert!(store.append(&entry(1), Some(stray)).is_err());
    // A reservation in the other namespace.
    let x509 = store
        .reserve_serial(SerialKind::X509, "5")
        .unwrap()
        .unwrap();
    assert!(store.append(&ssh_cert_entry(5), Some(x509)).is_err());
    assert_eq!(store.len(), 0, "nothing was logged");
}

fn a_mark_moved_by_another_writer_stops_issuance(fx: Fixture) {
    let store = fx.open().unwrap();
    store.append(&entry(0), None).unwrap();
    // Another CA on the same log (a clone of this one) moves the mark.
    let clone_dir = tempfile::tempdir().unwrap();
    {
        let clone_place = fx.clone_store(&clone_dir);
        let clone = fx
            .open_at(
                &clone_place,
                Mode::Existing,
                fx.signer.clone(),
                fx.mark.clone(),
            )
            .unwrap();
        clone.append(&entry(50), None).unwrap();
    }
    let err = store.append(&entry(1), None).unwrap_err().to_string();
    assert!(err.contains("changed under this CA"), "{err}");
    // And it stays stopped: nothing more is handed out.
    let err = store.append(&entry(2), None).unwrap_err().to_string();
    assert!(err.contains("until signet-ca restarts"), "{err}");
}

#[test]
fn a_restore_needs_the_mark_and_never_replaces_a_newer_store() {
    let fx = Fixture::new(Backend::Local);
    let export = fx.dir.path().join("export");
    {
        let store = fx.open().unwrap();
        store.append(&entry(0), None).unwrap();
        for path in signet_log::tiles::tile_paths(1) {
            let file = export.join(path.to_string());
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, store.tile(&path).unwrap().unwrap()).unwrap();
        }
        std::fs::write(export.join("checkpoint"), &store.latest_checkpoint().note).unwrap();
        store.append(&entry(1), None).unwrap();
    }
    let copy = restore::copy_at(export.to_str().unwrap()).unwrap();
    // The store in place is newer (2 entries) than the copy (1).
    let err = restore::restore(
        &fx.path(),
        copy.as_ref(),
        &fx.signer.verifier,
        fx.mark.as_ref(),
        false,
        |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("roll the log back") || err.contains("newer"),
        "{err}"
    );
    // Without a mark, a restore needs the operator's word.
    std::fs::remove_file(fx.dir.path().join("mark/high-water")).unwrap();
    let err = restore::restore(
        &fx.path(),
        copy.as_ref(),
        &fx.signer.verifier,
        fx.mark.as_ref(),
        false,
        |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--without-mark"), "{err}");
    // And even then the newer store in place is not replaced.
    let err = restore::restore(
        &fx.path(),
        copy.as_ref(),
        &fx.signer.verifier,
        fx.mark.as_ref(),
        true,
        |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("newer than the copy"), "{err}");
    assert_eq!(fx.open_as(Mode::Adopt).unwrap().len(), 2);
}

fn entries_appended_together_share_one_commit_and_checkpoint(fx: Fixture) {
    let store = fx.open().unwrap();
    store.append(&entry(0), None).unwrap();
    let signed_before = fx.signer.signed.load(Ordering::SeqCst);
    let serial = store.reserve_serial(SerialKind::Ssh, "7").unwrap().unwrap();
    let (cert, role) = (ssh_cert_entry(7), entry(2));
    let appended = store
        .append_all(vec![(&cert, Some(serial)), (&role, None)])
        .unwrap();
    // One batch: one checkpoint signature, covering both, in call order.
    assert_eq!(fx.signer.signed.load(Ordering::SeqCst), signed_before + 1);
    assert_eq!(
        appended.iter().map(|a| a.index).collect::<Vec<_>>(),
        vec![1, 2]
    );
    for a in &appended {
        assert_eq!(a.checkpoint.size, 3);
    }
    let leaves = [
        leaf(0),
        merkle::leaf_hash(&cert.to_canonical_bytes().unwrap()),
        leaf(2),
    ];
    for (a, leaf) in appended.iter().zip(&leaves[1..]) {
        merkle::verify_inclusion(leaf, a.index, 3, &a.inclusion_proof, &a.checkpoint.root).unwrap();
    }
    assert_eq!(
        appended[0].checkpoint.root,
        merkle::root_from_leaf_hashes(&leaves)
    );
    // Durable and under the mark: a reopened store has both.
    drop(store);
    let store = fx.open().unwrap();
    assert_eq!((store.len(), store.verified().high_water), (3, Some(3)));
    assert!(store
        .reserve_serial(SerialKind::Ssh, "7")
        .unwrap()
        .is_none());
}

fn entries_appended_together_are_refused_together(fx: Fixture) {
    let store = fx.open().unwrap();
    let signed_before = fx.signer.signed.load(Ordering::SeqCst);
    // The second entry carries a certificate but no reservation of its
    // serial: neither entry may be logged.
    let (role, cert) = (entry(0), ssh_cert_entry(8));
    let err = store
        .append_all(vec![(&role, None), (&cert, None)])
        .unwrap_err();
    assert!(err.to_string().contains("was not reserved"), "{err}");
    assert_eq!(store.len(), 0);
    assert_eq!(fx.signer.signed.load(Ordering::SeqCst), signed_before);
    // A valid first entry does not go in alone, and its serial is free again.
    let serial = store.reserve_serial(SerialKind::Ssh, "8").unwrap().unwrap();
    let err = store
        .append_all(vec![
            (&cert, Some(serial)),
            (
                &role,
                Some(store.reserve_serial(SerialKind::Ssh, "9").unwrap().unwrap()),
            ),
        ])
        .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(store.len(), 0);
    assert_eq!(fx.signer.signed.load(Ordering::SeqCst), signed_before);
    assert!(store
        .reserve_serial(SerialKind::Ssh, "8")
        .unwrap()
        .is_some());
}

// What only a shared database adds: several replicas, a database lost and
// back, attackers with the database's credentials, TLS.

/// A second replica on the fixture's database (the same HSM log key and,
/// as with a network HSM, the same high-water mark).
fn replica(fx: &Fixture, name: &str) -> PgStore {
    PgStore::open(PgOptions {
        db: fx.pg_config(fx.db()),
        origin: "test/signet-log".into(),
        signer: fx.signer.clone(),
        verifier: fx.signer.verifier.clone(),
        mark: fx.mark.clone(),
        mode: CommitMode::Group,
        witnesses: None,
        replica: name.into(),
    })
    .unwrap()
}

#[test]
fn postgres_replicas_on_one_database_keep_one_gap_free_order() {
    let fx = Fixture::new(Backend::Postgres);
    fx.open().unwrap();
    let replicas = [Arc::new(replica(&fx, "a")), Arc::new(replica(&fx, "b"))];
    let handles: Vec<_> = (0..6u64)
        .map(|t| {
            let store = replicas[(t % 2) as usize].clone();
            std::thread::spawn(move || {
                (0..40u64)
                    .map(|i| {
                        let n = t * 1000 + i;
                        let appended = store.append(&entry(n), None).unwrap();
                        merkle::verify_inclusion(
                            &leaf(n),
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
    assert_eq!(all, (0..240).collect::<Vec<_>>(), "gaps or duplicates");
    // Both replicas signed checkpoints, one per size.
    let signers = fx.pg().psql(
        fx.db(),
        "SELECT string_agg(DISTINCT signed_by, ',' ORDER BY signed_by) FROM log_checkpoints WHERE size > 0",
    );
    assert_eq!(signers.trim(), "a,b");
    drop(replicas);
    // The whole log verifies from scratch, and the mark followed it.
    let store = fx.open_as(Mode::Existing).unwrap();
    assert_eq!((store.len(), store.verified().high_water), (240, Some(240)));
}

#[test]
fn postgres_a_second_checkpoint_for_one_size_is_refused_by_the_database() {
    let fx = Fixture::new(Backend::Postgres);
    let store = fx.open().unwrap();
    store.append(&entry(0), None).unwrap();
    drop(store);
    // A checkpoint of size 1 over another root, signed by the log key.
    let other = Checkpoint::new("test/signet-log", 1, merkle::leaf_hash(b"other"))
        .unwrap()
        .sign(&[fx.signer.as_ref() as &dyn NoteSigner])
        .unwrap()
        .to_text();
    let err = std::panic::catch_unwind(|| {
        fx.pg().psql(
            fx.db(),
            &format!(
                "INSERT INTO log_checkpoints (size, root, note, signed_by) \
                 VALUES (1, '\\x{}', '{}', 'x')",
                hex::encode([0u8; 32]),
                other
            ),
        )
    });
    assert!(err.is_err(), "two checkpoints for one size");
}

#[test]
fn postgres_entries_rewritten_or_removed_in_the_database_are_refused() {
    let fx = Fixture::new(Backend::Postgres);
    {
        let store = fx.open().unwrap();
        for i in 0..3 {
            store.append(&entry(i), None).unwrap();
        }
    }
    let backup = fx.backup();
    // Rewritten: another valid entry in place of entry 1.
    let forged = String::from_utf8(entry(77).to_canonical_bytes().unwrap()).unwrap();
    fx.pg().psql(
        fx.db(),
        &format!(
            "UPDATE log_entries SET body = convert_to('{}', 'UTF8') WHERE idx = 1",
            forged.replace('\'', "''")
        ),
    );
    let message = integrity_message(fx.open());
    assert!(
        message.contains("entry 1 does not match its recorded hash"),
        "{message}"
    );
    // Removed from the middle, and from the end.
    fx.put_back(&backup);
    fx.pg()
        .psql(fx.db(), "DELETE FROM log_entries WHERE idx = 1");
    let message = integrity_message(fx.open());
    assert!(message.contains("entry 1 is missing"), "{message}");
    fx.put_back(&backup);
    fx.pg()
        .psql(fx.db(), "DELETE FROM log_entries WHERE idx = 2");
    let message = integrity_message(fx.open());
    assert!(message.contains("the log is truncated"), "{message}");
    // The newest checkpoint deleted: the entries outrun the one left.
    fx.put_back(&backup);
    fx.pg().psql(
        fx.db(),
        "DELETE FROM log_checkpoints WHERE size = (SELECT max(size) FROM log_checkpoints)",
    );
    let message = integrity_message(fx.open());
    assert!(message.contains("covers only 2"), "{message}");
    // Put back whole, it opens.
    fx.put_back(&backup);
    assert_eq!(fx.open().unwrap().len(), 3);
}

#[test]
fn postgres_a_replica_checks_what_the_others_wrote_before_appending_after_it() {
    let fx = Fixture::new(Backend::Postgres);
    fx.open().unwrap();
    let (a, b) = (replica(&fx, "a"), replica(&fx, "b"));
    a.append(&entry(0), None).unwrap();
    a.append(&entry(1), None).unwrap();
    // Someone with the database's credentials rewrites what A committed
    // before B has seen it.
    let forged = String::from_utf8(entry(66).to_canonical_bytes().unwrap()).unwrap();
    fx.pg().psql(
        fx.db(),
        &format!(
            "UPDATE log_entries SET body = convert_to('{}', 'UTF8') WHERE idx = 1",
            forged.replace('\'', "''")
        ),
    );
    // B may already have caught up while idle; either way it never appends
    // after the forged entry, and A refuses the fork too.
    let b_caught_up = b.latest_checkpoint().size == 2;
    let err = b.append(&entry(2), None);
    if !b_caught_up {
        match err {
            Err(Error::Integrity { problem, .. }) => {
                assert!(
                    problem.contains("do not hash to the signed checkpoint"),
                    "{problem}"
                )
            }
            other => panic!("B appended after a forged entry: {other:?}"),
        }
    }
    let message = integrity_message(fx.open_as(Mode::Existing));
    assert!(message.contains("entry 1 does not match"), "{message}");
}

#[test]
fn postgres_a_lost_database_fails_closed_and_the_store_recovers_by_itself() {
    let fx = Fixture::new(Backend::Postgres);
    let store = fx.open().unwrap();
    store.append(&entry(0), None).unwrap();
    assert_eq!(store.failure(), None);
    fx.pg().stop();
    match store.append(&entry(1), None) {
        Err(Error::StoreUnavailable(reason)) => assert!(reason.contains("127.0.0.1"), "{reason}"),
        other => panic!("appended without a database: {other:?}"),
    }
    let failure = store.failure().expect("the health check says why");
    assert!(failure.contains("unavailable"), "{failure}");
    assert!(matches!(
        store.reserve_serial(SerialKind::Ssh, "5"),
        Err(Error::StoreUnavailable(_))
    ));
    // Nothing was published beyond what was durable.
    assert_eq!(store.latest_checkpoint().size, 1);
    fx.pg().restart();
    // The idle writer notices the database is back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while store.failure().is_some() {
        assert!(std::time::Instant::now() < deadline, "never recovered");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let appended = store.append(&entry(1), None).unwrap();
    assert_eq!((appended.index, appended.checkpoint.size), (1, 2));
    let serial = store.reserve_serial(SerialKind::Ssh, "5").unwrap().unwrap();
    store.append(&ssh_cert_entry(5), Some(serial)).unwrap();
    drop(store);
    assert_eq!(fx.open_as(Mode::Existing).unwrap().len(), 3);
}

#[test]
fn postgres_an_empty_database_is_not_a_log_unless_created() {
    let fx = Fixture::new(Backend::Postgres);
    match fx.open_as(Mode::Existing) {
        Err(Error::NotInitialised(message)) => assert!(message.contains("no log"), "{message}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a log was started by a plain open"),
    }
    fx.open().unwrap().append(&entry(0), None).unwrap();
    fx.remove_store();
    let message = integrity_message(fx.open_as(Mode::Existing));
    assert!(
        message.contains("holds no log, but the log had 1 entries"),
        "{message}"
    );
}

/// A database server certificate for 127.0.0.1 issued by a throw-away
/// authority (openssl); returns it and the authority's certificate file.
fn server_certificate(dir: &std::path::Path) -> (signet_testkit::ServerTls, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", "/CN=signet-test-db-ca"],
            &["-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-new"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "server.crt",
    ]);
    (
        signet_testkit::ServerTls {
            cert_pem: std::fs::read_to_string(dir.join("server.crt")).unwrap(),
            key_pem: std::fs::read_to_string(dir.join("server.key")).unwrap(),
        },
        dir.join("ca.crt"),
    )
}

#[test]
fn postgres_over_tls_with_the_servers_authority_and_never_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, ca_file) = server_certificate(dir.path());
    let mut pg = signet_testkit::Postgres::start_tls(tls);
    let db = pg.create_database();
    let config = |query: &str, ca_file: Option<std::path::PathBuf>| PgConfig {
        url: format!("{}?{query}", pg.url(&db)),
        password_file: Some(pg.password_file()),
        ca_file,
    };
    let applied = PgStore::migrate(&config("sslmode=require", Some(ca_file.clone()))).unwrap();
    assert_eq!(
        applied,
        (1..=postgres::schema::latest_version()).collect::<Vec<_>>()
    );
    // Migrations are applied once.
    assert!(
        PgStore::migrate(&config("sslmode=require", Some(ca_file.clone())))
            .unwrap()
            .is_empty()
    );
    // A server whose certificate does not chain to the configured roots.
    let err = PgStore::migrate(&config("sslmode=require", None)).unwrap_err();
    assert!(matches!(err, Error::StoreUnavailable(_)), "{err}");
    // In clear: the server refuses.
    let err = PgStore::migrate(&config("sslmode=disable", Some(ca_file))).unwrap_err();
    assert!(
        err.to_string().contains("no encryption") || err.to_string().contains("rejects"),
        "{err}"
    );
    // A wrong password.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let err = PgStore::migrate(&PgConfig {
        password_file: Some(wrong),
        ..config("sslmode=require", Some(dir.path().join("ca.crt")))
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("password"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
}

#[test]
fn postgres_store_copy_moves_a_populated_embedded_log_with_the_same_root() {
    let local = Fixture::new(Backend::Local);
    let (root, size) = {
        let store = local.open().unwrap();
        for i in 0..300u64 {
            store.append(&entry(i), None).unwrap();
        }
        let serial = store.reserve_serial(SerialKind::Ssh, "7").unwrap().unwrap();
        let last = store.append(&ssh_cert_entry(7), Some(serial)).unwrap();
        (last.checkpoint.root, last.checkpoint.size)
    };
    let pg = Fixture::new(Backend::Postgres);
    let source = local.open_as(Mode::Existing).unwrap();
    let mut calls = 0;
    let report =
        postgres::copy::copy_into(source.as_ref(), &pg.pg_config(pg.db()), |_, _| calls += 1)
            .unwrap();
    assert_eq!((report.entries, report.root), (size, root));
    assert!(calls > 0);
    // The copy opens verified from scratch, under the same log key and mark.
    let copied = pg
        .open_at(
            &pg.place,
            Mode::Existing,
            local.signer.clone(),
            local.mark.clone(),
        )
        .unwrap();
    assert_eq!(copied.verified().entries, 301);
    assert_eq!(copied.latest_checkpoint().root, root);
    assert!(copied
        .reserve_serial(SerialKind::Ssh, "7")
        .unwrap()
        .is_none());
    assert_eq!(copied.append(&entry(301), None).unwrap().index, 301);
    // Byte for byte the same tiles as the source served.
    let tile = TilePath::entries(0, 256).unwrap();
    assert_eq!(copied.tile(&tile).unwrap(), source.tile(&tile).unwrap());
    drop(copied);
    // A database that already holds a log is never overwritten.
    let err = postgres::copy::copy_into(source.as_ref(), &pg.pg_config(pg.db()), |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("already holds a log"), "{err}");
}

/// Append latency and throughput, embedded vs PostgreSQL (one and two
/// replicas on one database): 8 threads appending at once, a software
/// checkpoint signer, the mark in a file. Prints a table for
/// docs/BENCHMARKS.md; asserts only that every append landed.
/// `cargo nextest run -p signet-ca --all-features --lib --run-ignored only -E 'test(postgres_benchmark)' --no-capture`
#[test]
#[ignore = "a benchmark: run on demand"]
fn postgres_benchmark_append_latency() {
    const THREADS: u64 = 8;
    const EACH: u64 = 150;
    let run = |stores: Vec<Arc<Box<dyn LogStore>>>| -> (f64, f64, f64) {
        let start = std::time::Instant::now();
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = stores[(t as usize) % stores.len()].clone();
                std::thread::spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let begin = std::time::Instant::now();
                            store.append(&entry(t * 100_000 + i), None).unwrap();
                            begin.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut latencies: Vec<std::time::Duration> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let total = start.elapsed();
        latencies.sort_unstable();
        let pick =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        (
            latencies.len() as f64 / total.as_secs_f64(),
            pick(0.5).as_secs_f64() * 1e3,
            pick(0.99).as_secs_f64() * 1e3,
        )
    };
    let mut rows = Vec::new();
    let local = Fixture::new(Backend::Local);
    rows.push((
        "embedded (redb)",
        run(vec![Arc::new(local.open().unwrap())]),
    ));
    let pg = Fixture::new(Backend::Postgres);
    pg.open().unwrap();
    let one: Box<dyn LogStore> = Box::new(replica(&pg, "a"));
    rows.push(("PostgreSQL, 1 replica", run(vec![Arc::new(one)])));
    let (a, b): (Box<dyn LogStore>, Box<dyn LogStore>) =
        (Box::new(replica(&pg, "a")), Box::new(replica(&pg, "b")));
    rows.push((
        "PostgreSQL, 2 replicas",
        run(vec![Arc::new(a), Arc::new(b)]),
    ));
    println!("| store | appends/s | p50 ms | p99 ms |\n| --- | --- | --- | --- |");
    for (name, (rate, p50, p99)) in rows {
        println!("| {name} | {rate:.0} | {p50:.2} | {p99:.2} |");
    }
    assert_eq!(
        pg.open_as(Mode::Existing).unwrap().len(),
        2 * THREADS * EACH
    );
}

#[test]
fn postgres_a_replica_follows_the_others_and_refuses_a_database_that_lost_its_checkpoints() {
    let fx = Fixture::new(Backend::Postgres);
    fx.open().unwrap();
    let (a, b) = (replica(&fx, "a"), replica(&fx, "b"));
    let followed = b.subscribe();
    let mut last = a.append(&entry(0), None).unwrap();
    for i in 1..5 {
        last = a.append(&entry(i), None).unwrap();
    }
    // B appends nothing, yet its view follows A's (woken by A's NOTIFY, or
    // at its next poll), verified as it goes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while b.latest_checkpoint().size < 5 {
        assert!(std::time::Instant::now() < deadline, "B never followed A");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(b.latest_checkpoint().root, last.checkpoint.root);
    // B's subscribers heard of A's entries, and can read them.
    let mut heard = 0;
    while heard < 5 {
        heard = followed
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("B announced A's entries");
    }
    assert_eq!(
        b.reader().unwrap().entry(4).unwrap().unwrap(),
        entry(4).to_canonical_bytes().unwrap()
    );
    assert_eq!(b.inclusion_proof(4, 5).unwrap(), last.inclusion_proof);
    // Every checkpoint removed behind the replicas' backs: neither signs a
    // fresh history over what it cannot see.
    fx.pg().psql(fx.db(), "DELETE FROM log_checkpoints");
    for store in [&a, &b] {
        match store.append(&entry(9), None) {
            Err(Error::Integrity { problem, .. }) => {
                assert!(problem.contains("no signed checkpoint"), "{problem}")
            }
            other => panic!("appended over a log without checkpoints: {other:?}"),
        }
    }
    assert_eq!(
        fx.pg()
            .psql(fx.db(), "SELECT count(*) FROM log_checkpoints")
            .trim(),
        "0"
    );
}

#[test]
fn postgres_a_ca_runs_as_a_database_user_without_create_once_migrated() {
    let fx = Fixture::new(Backend::Postgres);
    fx.open().unwrap().append(&entry(0), None).unwrap();
    // The operator's least-privilege role for the CA.
    fx.pg().psql(
        fx.db(),
        "CREATE ROLE signet_app LOGIN PASSWORD 'app-secret'; \
         REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
         GRANT SELECT, INSERT ON log_entries, log_nodes, log_serials, log_checkpoints TO signet_app; \
         GRANT SELECT, UPDATE ON log_head TO signet_app; \
         GRANT SELECT ON signet_schema TO signet_app",
    );
    let password = fx.dir.path().join("app-password");
    std::fs::write(&password, "app-secret\n").unwrap();
    let url = fx.pg().url(fx.db()).replace("signet@", "signet_app@");
    let store = PgStore::open(PgOptions {
        db: PgConfig {
            url,
            password_file: Some(password),
            ca_file: None,
        },
        origin: "test/signet-log".into(),
        signer: fx.signer.clone(),
        verifier: fx.signer.verifier.clone(),
        mark: fx.mark.clone(),
        mode: CommitMode::Group,
        witnesses: None,
        replica: "app".into(),
    })
    .unwrap();
    assert_eq!(store.append(&entry(1), None).unwrap().index, 1);
    // And what it may not do, it cannot: rewrite the log.
    drop(store);
    let err = std::panic::catch_unwind(|| {
        fx.pg().psql(
            fx.db(),
            "SET ROLE signet_app; UPDATE log_entries SET body = 'x' WHERE idx = 0",
        )
    });
    assert!(err.is_err(), "the CA's role could rewrite entries");
}

#[test]
fn postgres_ceremonies_are_shared_taken_once_expire_are_capped_and_fail_closed() {
    use super::ceremonies::{CeremonyKind, Put};
    use std::time::Duration;
    const TTL: Duration = Duration::from_secs(60);
    let fx = Fixture::new(Backend::Postgres);
    fx.open().unwrap();
    let (a, b) = (replica(&fx, "a"), replica(&fx, "b"));
    let (on_a, on_b) = (a.ceremonies().unwrap(), b.ceremonies().unwrap());

    // Begun on A, finished on B; then gone for both.
    assert_eq!(
        on_a.put(&[1; 32], CeremonyKind::Cert, b"{\"x\":1}", TTL, 10)
            .unwrap(),
        Put::Stored
    );
    assert!(on_a
        .put(&[1; 32], CeremonyKind::Enroll, b"{}", TTL, 10)
        .is_err());
    let taken = on_b.take(&[1; 32]).unwrap().unwrap();
    assert_eq!(taken.kind, CeremonyKind::Cert);
    assert_eq!(taken.body, b"{\"x\":1}");
    assert!(on_a.take(&[1; 32]).unwrap().is_none());
    assert!(on_b.take(&[1; 32]).unwrap().is_none());
    // The id itself is nowhere in the database, only its hash.
    assert_eq!(
        fx.pg()
            .psql(
                fx.db(),
                "SELECT count(*) FROM ceremonies WHERE length(id_sha256) <> 32"
            )
            .trim(),
        "0"
    );

    // Many takers of one ceremony on both replicas: exactly one gets it.
    on_a.put(&[2; 32], CeremonyKind::Enroll, b"{}", TTL, 10)
        .unwrap();
    let got: usize = std::thread::scope(|scope| {
        let takers: Vec<_> = (0..8)
            .map(|i| {
                let store = if i % 2 == 0 { &on_a } else { &on_b };
                scope.spawn(move || store.take(&[2; 32]).unwrap().is_some())
            })
            .collect();
        takers
            .into_iter()
            .map(|t| usize::from(t.join().unwrap()))
            .sum()
    });
    assert_eq!(got, 1);

    // Expired (by the database's clock): refused, and removed by the try.
    on_a.put(&[3; 32], CeremonyKind::Cert, b"{}", TTL, 10)
        .unwrap();
    fx.pg().psql(
        fx.db(),
        "UPDATE ceremonies SET expires_at = now() - interval '1 second'",
    );
    assert!(on_b.take(&[3; 32]).unwrap().is_none());
    assert_eq!(
        fx.pg()
            .psql(fx.db(), "SELECT count(*) FROM ceremonies")
            .trim(),
        "0"
    );

    // The cap counts pending ones across replicas; expired ones are swept
    // to make room.
    on_a.put(&[4; 32], CeremonyKind::Cert, b"{}", TTL, 2)
        .unwrap();
    on_b.put(&[5; 32], CeremonyKind::Cert, b"{}", TTL, 2)
        .unwrap();
    assert_eq!(
        on_a.put(&[6; 32], CeremonyKind::Cert, b"{}", TTL, 2)
            .unwrap(),
        Put::TooMany
    );
    assert_eq!(on_b.pending().unwrap(), 2);
    fx.pg().psql(
        fx.db(),
        "UPDATE ceremonies SET expires_at = now() - interval '1 second'",
    );
    assert_eq!(
        on_a.put(&[6; 32], CeremonyKind::Cert, b"{}", TTL, 2)
            .unwrap(),
        Put::Stored
    );
    assert_eq!(
        fx.pg()
            .psql(fx.db(), "SELECT count(*) FROM ceremonies")
            .trim(),
        "1",
        "expired rows were not swept"
    );
    // A kind the table does not know cannot be stored behind the CA's back.
    let pg = fx.pg();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pg.psql(
            fx.db(),
            "INSERT INTO ceremonies (id_sha256, kind, body, expires_at) \
             VALUES (decode(repeat('07', 32), 'hex'), 'proxy', '', now() + interval '1 minute')",
        )
    }));
    drop(pg);
    assert!(refused.is_err());

    // The database lost: refused as unavailable, never kept in memory
    // instead; back: working again by itself.
    fx.pg().stop();
    for result in [
        on_a.put(&[8; 32], CeremonyKind::Cert, b"{}", TTL, 10)
            .map(|_| ()),
        on_b.take(&[6; 32]).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(Error::StoreUnavailable(_))),
            "{result:?}"
        );
    }
    fx.pg().restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match on_b.take(&[6; 32]) {
            Ok(found) => {
                assert!(found.is_some(), "the ceremony begun before the restart");
                break;
            }
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn a_join_token_is_spent_once_by_its_subject_before_it_expires(fx: Fixture) {
    let web = "node:web-1";
    {
        let store = fx.open().unwrap();
        store.put_join_token(&[1; 32], web, 2_000).unwrap();
        store.put_join_token(&[2; 32], web, 1_000).unwrap();
        assert!(
            store.put_join_token(&[1; 32], "node:db-1", 3_000).is_err(),
            "a token recorded twice"
        );
        assert!(
            !store.spend_join_token(&[9; 32], web, 1_500).unwrap(),
            "unknown"
        );
        assert!(
            !store
                .spend_join_token(&[1; 32], "node:db-1", 1_500)
                .unwrap(),
            "another node's"
        );
        assert!(
            !store.spend_join_token(&[2; 32], web, 1_000).unwrap(),
            "expired"
        );
        assert!(store.spend_join_token(&[1; 32], web, 1_500).unwrap());
        assert!(
            !store.spend_join_token(&[1; 32], web, 1_500).unwrap(),
            "spent"
        );
        // Eight spends of one token at once: exactly one wins.
        store.put_join_token(&[3; 32], web, 2_000).unwrap();
        store.put_join_token(&[4; 32], web, 2_000).unwrap();
        let store: Arc<dyn LogStore> = Arc::from(store);
        let spends: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || store.spend_join_token(&[3; 32], web, 1_500).unwrap())
            })
            .collect();
        let wins = spends
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|won| *won)
            .count();
        assert_eq!(wins, 1);
    }
    // Durable: after a reopen, spent stays spent and unspent stays usable.
    let store = fx.open().unwrap();
    assert!(!store.spend_join_token(&[1; 32], web, 1_500).unwrap());
    assert!(!store.spend_join_token(&[3; 32], web, 1_500).unwrap());
    assert!(store.spend_join_token(&[4; 32], web, 1_500).unwrap());
}
