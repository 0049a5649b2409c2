//! Benchmark of the CA's log store: durable appends per second with group
//! commit against one flush per append (1, 8 and 64 concurrent writers),
//! then inclusion-proof generation at 1M entries.
//!
//!     cargo run --release -p signet-ca --example log_bench [-- ENTRIES]
//!
//! Checkpoints are signed in software here (Ed25519) so the figure is the
//! store's; with an HSM log key each batch adds one token signature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use signet_ca::store::{CommitMode, FileMark, LocalStore, LogStore, StoreOptions};
use signet_log::entry::{Actor, Entry, EntryKind};
use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey};

struct SoftSigner(ed25519_dalek::SigningKey, VerifierKey);

impl NoteSigner for SoftSigner {
    fn name(&self) -> &str {
        self.1.name()
    }
    fn key_id(&self) -> KeyId {
        self.1.key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        use ed25519_dalek::Signer;
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

fn open(path: std::path::PathBuf, mode: CommitMode) -> LocalStore {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let verifier =
        VerifierKey::ed25519("bench/signet-log", key.verifying_key().as_bytes()).unwrap();
    LocalStore::create(StoreOptions {
        mark: Arc::new(FileMark::new(path.with_extension("high-water"))),
        path,
        origin: "bench/signet-log".into(),
        signer: Arc::new(SoftSigner(key, verifier.clone())),
        verifier,
        mode,
        witnesses: None,
    })
    .unwrap()
}

/// A realistic entry size (an issuance entry with an OpenSSH certificate is ~1.3 KB).
fn entry(i: u64) -> Entry {
    Entry {
        kind: EntryKind::RoleChange,
        time: 1_700_000_000 + i,
        actor: Actor::LocalAdmin {
            unix_user: "bench".into(),
        },
        request_hash: None,
        subject: Some(format!("bench-{i}-{}", "x".repeat(1150))),
        principals: Vec::new(),
        roles: Vec::new(),
        certificate: None,
        change: None,
    }
}

fn appends_per_second(mode: CommitMode, writers: usize, duration: Duration) -> f64 {
    let dir = tempfile::tempdir_in(".").unwrap();
    let store = Arc::new(open(dir.path().join("log.redb"), mode));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store
                        .append(&entry(w as u64 * 1_000_000 + n), None)
                        .unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let entries: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(1_000_000);
    let duration = Duration::from_secs(3);
    for writers in [1, 8, 64] {
        let each = appends_per_second(CommitMode::EachAppend, writers, duration);
        let group = appends_per_second(CommitMode::Group, writers, duration);
        println!(
            "log_append writers={writers} group_commit_per_s={group:.0} flush_each_per_s={each:.0} ratio={:.1}",
            group / each
        );
    }

    // A large log for proof generation.
    let dir = tempfile::tempdir_in(".").unwrap();
    let store = Arc::new(open(dir.path().join("log.redb"), CommitMode::Group));
    let started = Instant::now();
    let per_writer = entries / 64;
    std::thread::scope(|s| {
        for w in 0..64u64 {
            let store = store.clone();
            s.spawn(move || {
                for n in 0..per_writer {
                    store.append(&entry(w * per_writer + n), None).unwrap();
                }
            });
        }
    });
    let size = store.latest_checkpoint().size;
    eprintln!(
        "built a {size}-entry log in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let samples = 10_000u64;
    let started = Instant::now();
    for i in 0..samples {
        let index = (i * 7_919) % size;
        store.inclusion_proof(index, size).unwrap();
    }
    let per_proof = started.elapsed().as_secs_f64() / samples as f64;
    let hash_started = Instant::now();
    let mut h = [0u8; 32];
    for _ in 0..samples * 20 {
        h = signet_log::merkle::leaf_hash(&h);
    }
    let per_hash = hash_started.elapsed().as_secs_f64() / (samples * 20) as f64;
    println!(
        "inclusion_proof entries={size} us_per_proof={:.1} proofs_per_s={:.0} sha256_per_s={:.0} hashes_equivalent={:.1}",
        per_proof * 1e6,
        1.0 / per_proof,
        1.0 / per_hash,
        per_proof / per_hash
    );
}
