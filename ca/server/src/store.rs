//! Durable storage of what the CA did: the ordered list of log entries and
//! the set of serial numbers ever used.
//!
//! An append returns only once its entry is on disk (fsync). Concurrent
//! appends share one flush (group commit): the first waiter flushes for
//! everyone who appended before the flush started, the others wait for it.
//! So durability costs one fsync per batch, not per certificate.

use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

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

/// Storage of the CA's log entries. Implementations must make an append
/// durable before returning and must never reuse a serial.
pub trait Store: Send + Sync {
    /// Claims `serial` for an issuance in progress. `Ok(false)` if it was
    /// ever used or is being used now; the caller picks another.
    fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<bool>;

    /// Appends an entry (with the serial it used, if any) and returns its
    /// index once it is durable.
    fn append(&self, entry: Vec<u8>, serial: Option<(SerialKind, String)>) -> Result<u64>;

    /// Number of entries.
    fn len(&self) -> Result<u64>;

    /// Whether there are no entries.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The entry at `index`.
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>>;
}

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// The embedded default: sled in the data directory.
pub struct SledStore {
    db: sled::Db,
    entries: sled::Tree,
    serials: sled::Tree,
    state: Mutex<AppendState>,
    flushes: GroupCommit,
}

struct AppendState {
    next_index: u64,
    in_flight: std::collections::HashSet<Vec<u8>>,
}

impl SledStore {
    /// Opens (or creates) the store. Fails clearly if another process has it open.
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new().path(path).open().map_err(|e| match e {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => Error::Store(
                format!("{} is in use by another signet-ca process", path.display()),
            ),
            other => Error::Store(format!("cannot open {}: {other}", path.display())),
        })?;
        let entries = db.open_tree("entries").map_err(store_err)?;
        let serials = db.open_tree("serials").map_err(store_err)?;
        let next_index = match entries.last().map_err(store_err)? {
            Some((key, _)) => index_from_key(&key)? + 1,
            None => 0,
        };
        Ok(Self {
            db,
            entries,
            serials,
            state: Mutex::new(AppendState {
                next_index,
                in_flight: std::collections::HashSet::new(),
            }),
            flushes: GroupCommit::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, AppendState> {
        // A panic while holding this lock cannot leave it half-updated: every
        // update is a single assignment after the sled writes succeeded.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn index_from_key(key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| Error::Store("malformed entry key in the store".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

impl Store for SledStore {
    fn reserve_serial(&self, kind: SerialKind, serial: &str) -> Result<bool> {
        let key = kind.key(serial);
        let mut state = self.state();
        if state.in_flight.contains(&key) || self.serials.contains_key(&key).map_err(store_err)? {
            return Ok(false);
        }
        state.in_flight.insert(key);
        Ok(true)
    }

    fn append(&self, entry: Vec<u8>, serial: Option<(SerialKind, String)>) -> Result<u64> {
        let index = {
            let mut state = self.state();
            let index = state.next_index;
            let serial_key = serial.as_ref().map(|(kind, s)| kind.key(s));
            if let Some(key) = &serial_key {
                if !state.in_flight.contains(key) {
                    return Err(Error::Store("serial was not reserved before use".into()));
                }
            }
            let key = index.to_be_bytes();
            let result: std::result::Result<(), sled::transaction::TransactionError<String>> =
                (&self.entries, &self.serials).transaction(|(entries, serials)| {
                    entries.insert(&key, entry.as_slice())?;
                    if let Some(serial_key) = &serial_key {
                        serials.insert(serial_key.as_slice(), &key)?;
                    }
                    Ok(())
                });
            result.map_err(store_err)?;
            if let Some(key) = &serial_key {
                state.in_flight.remove(key);
            }
            state.next_index = index + 1;
            index
        };
        self.flushes.wait_durable(&self.db)?;
        Ok(index)
    }

    fn len(&self) -> Result<u64> {
        Ok(self.state().next_index)
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .entries
            .get(index.to_be_bytes())
            .map_err(store_err)?
            .map(|v| v.to_vec()))
    }
}

/// Group commit: many writers, one fsync per batch.
#[derive(Default)]
struct GroupCommit {
    state: Mutex<FlushState>,
    done: Condvar,
}

#[derive(Default)]
struct FlushState {
    /// Writes announced so far (each writer takes a ticket after writing).
    tickets: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A flush is running.
    flushing: bool,
}

impl GroupCommit {
    /// Returns once everything written before this call is on disk.
    fn wait_durable(&self, db: &sled::Db) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.tickets += 1;
        let ticket = state.tickets;
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            if !state.flushing {
                // Lead a flush for every ticket taken so far.
                state.flushing = true;
                let target = state.tickets;
                drop(state);
                let flushed = db.flush();
                state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.flushing = false;
                if flushed.is_ok() {
                    state.durable = state.durable.max(target);
                }
                self.done.notify_all();
                flushed.map_err(store_err)?;
            } else {
                state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_are_ordered_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            assert!(store.reserve_serial(SerialKind::Ssh, "7").unwrap());
            assert_eq!(
                store
                    .append(b"a".to_vec(), Some((SerialKind::Ssh, "7".into())))
                    .unwrap(),
                0
            );
            assert_eq!(store.append(b"b".to_vec(), None).unwrap(), 1);
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.len().unwrap(), 2);
        assert_eq!(store.entry(1).unwrap().unwrap(), b"b");
        assert!(
            !store.reserve_serial(SerialKind::Ssh, "7").unwrap(),
            "serial reused"
        );
        assert!(
            store.reserve_serial(SerialKind::X509, "7").unwrap(),
            "kinds are separate"
        );
    }

    #[test]
    fn a_serial_in_flight_cannot_be_reserved_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        assert!(store.reserve_serial(SerialKind::X509, "ab").unwrap());
        assert!(!store.reserve_serial(SerialKind::X509, "ab").unwrap());
    }

    #[test]
    fn unreserved_serial_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        assert!(store
            .append(b"x".to_vec(), Some((SerialKind::Ssh, "1".into())))
            .is_err());
        assert_eq!(store.len().unwrap(), 0, "nothing written on failure");
    }

    #[test]
    fn concurrent_appends_get_dense_unique_indices() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| store.append(format!("{t}-{i}").into_bytes(), None).unwrap())
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
}
