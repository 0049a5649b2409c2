//! The store's promises, tested without a token: software checkpoint
//! signer, the high-water mark in a file. The same attacks through the real
//! binary and SoftHSM2 are in `tests/attacks.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use signet_log::entry::{Actor, Entry, EntryKind};
use signet_log::merkle;
use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey};
use signet_log::tiles::TilePath;

use super::local::{ENTRIES, META};
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

struct Fixture {
    dir: tempfile::TempDir,
    signer: Arc<TestSigner>,
    mark: Arc<FlakyMark>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mark = Arc::new(FlakyMark {
            file: FileMark::new(dir.path().join("mark/high-water")),
            fail: AtomicBool::new(false),
        });
        Self {
            dir,
            signer: signer(7),
            mark,
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("log.redb")
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

    /// A log of two entries, and a copy of its store taken after the first.
    fn backed_up_then_grown() -> (Self, std::path::PathBuf) {
        let fx = Self::new();
        let backup = fx.dir.path().join("backup.redb");
        fx.open().unwrap().append(&entry(0), None).unwrap();
        std::fs::copy(fx.path(), &backup).unwrap();
        fx.open().unwrap().append(&entry(1), None).unwrap();
        (fx, backup)
    }

    /// Opens the store, creating it on first use (as `init` does).
    fn open(&self) -> Result<LocalStore> {
        LocalStore::create(self.options())
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

fn integrity_message(result: Result<LocalStore>) -> String {
    match result {
        Err(err @ Error::Integrity { .. }) => err.to_string(),
        Err(other) => panic!("expected an integrity error, got {other}"),
        Ok(_) => panic!("a tampered store was opened"),
    }
}

#[test]
fn appends_are_ordered_checkpointed_and_survive_reopen() {
    let fx = Fixture::new();
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

#[test]
fn a_reservation_holds_its_serial_until_dropped_unless_it_was_logged() {
    let fx = Fixture::new();
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

#[test]
fn a_reservation_from_another_store_is_refused() {
    let (one, two) = (Fixture::new(), Fixture::new());
    let (a, b) = (one.open().unwrap(), two.open().unwrap());
    let foreign = b.reserve_serial(SerialKind::Ssh, "1").unwrap().unwrap();
    let err = a
        .append(&ssh_cert_entry(1), Some(foreign))
        .unwrap_err()
        .to_string();
    assert!(err.contains("another store"), "{err}");
    assert_eq!(a.len(), 0);
}

#[test]
fn concurrent_appends_get_dense_unique_indices_and_share_checkpoints() {
    let fx = Fixture::new();
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

#[test]
fn tiles_cover_exactly_the_checkpointed_tree() {
    let fx = Fixture::new();
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

#[test]
fn a_store_without_its_checkpoint_is_refused_and_nothing_is_signed() {
    let fx = Fixture::new();
    {
        let store = fx.open().unwrap();
        for i in 0..3 {
            store.append(&entry(i), None).unwrap();
        }
    }
    {
        let db = redb::Database::create(fx.path()).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META).unwrap().remove("checkpoint").unwrap();
        txn.commit().unwrap();
    }
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

#[test]
fn an_old_copy_of_the_store_is_behind_the_mark() {
    let (fx, backup) = Fixture::backed_up_then_grown();
    std::fs::copy(&backup, fx.path()).unwrap();
    let message = integrity_message(fx.open());
    assert!(message.contains("behind the high-water mark"), "{message}");
    assert!(message.contains("holds 1 entries"), "{message}");
    assert!(message.contains("log restore"), "{message}");

    // A deleted store is the oldest copy of all.
    std::fs::remove_file(fx.path()).unwrap();
    let message = integrity_message(fx.open());
    assert!(message.contains("behind the high-water mark"), "{message}");
}

#[test]
fn a_fork_of_the_same_size_is_refused() {
    let (fx, backup) = Fixture::backed_up_then_grown();
    // The old copy grows another second entry under another mark (adopted
    // for it), then is put back in place of the real store.
    let other_mark = Arc::new(FileMark::new(fx.dir.path().join("other-mark")));
    {
        let forked = LocalStore::adopt_mark(StoreOptions {
            path: backup.clone(),
            mark: other_mark,
            ..fx.options()
        })
        .unwrap();
        forked.append(&entry(99), None).unwrap();
    }
    std::fs::copy(&backup, fx.path()).unwrap();
    let message = integrity_message(fx.open());
    assert!(message.contains("is a fork"), "{message}");
}

#[test]
fn a_mark_not_signed_by_the_log_key_is_refused() {
    let fx = Fixture::new();
    {
        fx.open().unwrap().append(&entry(0), None).unwrap();
    }
    // A mark signed by another key, as a storage admin with a key of their
    // own would write it.
    let forger = Fixture::new();
    {
        let store = LocalStore::create(StoreOptions {
            signer: signer(9),
            verifier: signer(9).verifier.clone(),
            ..forger.options()
        })
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

#[test]
fn a_crash_between_commit_and_mark_hands_nothing_out_and_recovers() {
    let fx = Fixture::new();
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
    let fx = Fixture::new();
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
    let fx = Fixture::new();
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
    let fx = Fixture::new();
    match LocalStore::open(fx.options()) {
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
    let message = integrity_message(LocalStore::open(fx.options()));
    assert!(
        message.contains("is missing, but the log had 1 entries"),
        "{message}"
    );
}

#[test]
fn a_store_with_entries_but_no_mark_is_refused_until_adopted() {
    let fx = Fixture::new();
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
    let store = LocalStore::adopt_mark(fx.options()).unwrap();
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

#[test]
fn an_entry_and_its_serial_reservation_must_agree() {
    let fx = Fixture::new();
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

#[test]
fn a_mark_moved_by_another_writer_stops_issuance() {
    let fx = Fixture::new();
    let store = fx.open().unwrap();
    store.append(&entry(0), None).unwrap();
    // Another CA on the same log (a clone of this one) moves the mark.
    let clone_dir = tempfile::tempdir().unwrap();
    let clone_path = clone_dir.path().join("log.redb");
    {
        // Copy the store while this one holds it open: redb refuses a second
        // open of the same file, so copy the bytes.
        std::fs::copy(fx.path(), &clone_path).unwrap();
        let clone = LocalStore::open(StoreOptions {
            path: clone_path,
            ..fx.options()
        })
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
    let fx = Fixture::new();
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
    assert_eq!(LocalStore::adopt_mark(fx.options()).unwrap().len(), 2);
}

#[test]
fn entries_appended_together_share_one_commit_and_checkpoint() {
    let fx = Fixture::new();
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

#[test]
fn entries_appended_together_are_refused_together() {
    let fx = Fixture::new();
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
