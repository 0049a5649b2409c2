//! Reading the log from the database: a pool of idle connections, and a
//! reader that sees one snapshot (a repeatable-read, read-only transaction)
//! and fetches entries, hashes and serials in chunks, so verifying a large
//! log costs a query per thousand entries, not one per entry.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use postgres::Client;
use signet_log::merkle::Hash;

use super::connect::{describe, unavailable, Connector};
use crate::store::verify::broken;
use crate::store::{lock, LogRead, SerialKind};
use crate::{Error, Result};

/// Rows fetched per query while reading in order.
const CHUNK: u64 = 1024;

/// Idle connections for readers, reopened on demand.
pub(crate) struct Pool {
    connector: Arc<Connector>,
    idle: Mutex<Vec<Client>>,
}

/// At most this many idle connections are kept.
const MAX_IDLE: usize = 8;

impl Pool {
    pub(crate) fn new(connector: Arc<Connector>) -> Self {
        Self {
            connector,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn get(&self) -> Result<Client> {
        while let Some(client) = lock(&self.idle).pop() {
            if !client.is_closed() {
                return Ok(client);
            }
        }
        self.connector.connect()
    }

    pub(crate) fn put(&self, client: Client) {
        let mut idle = lock(&self.idle);
        if !client.is_closed() && idle.len() < MAX_IDLE {
            idle.push(client);
        }
    }

    pub(crate) fn place(&self) -> &str {
        self.connector.place()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // A synchronous client closes by blocking on its own runtime, which
        // panics when the pool is dropped inside an async context (the
        // daemon's services going away at shutdown): close them on a
        // thread of their own there.
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !idle.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

/// An error of a query: the database's refusal, or the database lost.
pub(crate) fn query_err(place: &str, e: &postgres::Error) -> Error {
    if lost(e) {
        unavailable(place, e)
    } else {
        Error::Store(format!("the database {place}: {}", describe(e)))
    }
}

/// Whether an error means the database is out of reach rather than that
/// it refused a statement: no answer at all, a connection exception
/// (SQLSTATE class 08), the server shutting down or starting (57P01-03),
/// or out of connections (53300).
pub(crate) fn lost(e: &postgres::Error) -> bool {
    match e.code() {
        None => e.as_db_error().is_none(),
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }
    }
}

pub(crate) fn to_index(value: i64) -> Result<u64> {
    u64::try_from(value)
        .map_err(|_| broken(None, format!("a negative index ({value}) in the database")))
}

pub(crate) fn to_db(value: u64) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| Error::Store(format!("index {value} is beyond the database's range")))
}

pub(crate) fn to_hash(bytes: &[u8], what: impl FnOnce() -> String) -> Result<Hash> {
    bytes
        .try_into()
        .map_err(|_| broken(None, format!("{} is malformed", what())))
}

/// A consistent read-only view of the log in the database.
pub(crate) struct PgReader<'a> {
    pool: &'a Pool,
    client: RefCell<Option<Client>>,
    entries: RefCell<HashMap<u64, Vec<u8>>>,
    /// Entry chunks fetched (by first index).
    entry_chunks: RefCell<std::collections::HashSet<u64>>,
    nodes: RefCell<HashMap<(u32, u64), Hash>>,
    node_chunks: RefCell<std::collections::HashSet<(u32, u64)>>,
    serials: RefCell<HashMap<String, u64>>,
}

impl<'a> PgReader<'a> {
    /// Starts a snapshot on a pooled connection.
    pub(crate) fn new(pool: &'a Pool) -> Result<Self> {
        let mut client = pool.get()?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| query_err(pool.place(), &e))?;
        Ok(Self {
            pool,
            client: RefCell::new(Some(client)),
            entries: RefCell::default(),
            entry_chunks: RefCell::default(),
            nodes: RefCell::default(),
            node_chunks: RefCell::default(),
            serials: RefCell::default(),
        })
    }

    fn query(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>> {
        let mut slot = self.client.borrow_mut();
        let client = slot
            .as_mut()
            .ok_or_else(|| Error::Store("the reader's connection is gone".into()))?;
        client.query(sql, params).map_err(|e| {
            let err = query_err(self.pool.place(), &e);
            // A failed statement aborts the snapshot: the reader is done.
            slot.take();
            err
        })
    }

    /// The latest signed checkpoint's note in this snapshot.
    pub(crate) fn latest_note(&self) -> Result<Option<Vec<u8>>> {
        let rows = self.query(
            "SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )?;
        Ok(rows.first().map(|row| row.get::<_, String>(0).into_bytes()))
    }

    fn fetch_entries(&self, first: u64) -> Result<()> {
        let start = first - first % CHUNK;
        if !self.entry_chunks.borrow_mut().insert(start) {
            return Ok(());
        }
        let (from, to) = (to_db(start)?, to_db(start.saturating_add(CHUNK))?);
        let rows = self.query(
            "SELECT idx, body FROM log_entries WHERE idx >= $1 AND idx < $2",
            &[&from, &to],
        )?;
        let mut entries = self.entries.borrow_mut();
        for row in rows {
            entries.insert(to_index(row.get(0))?, row.get(1));
        }
        let rows = self.query(
            "SELECT key, idx FROM log_serials WHERE idx >= $1 AND idx < $2",
            &[&from, &to],
        )?;
        let mut serials = self.serials.borrow_mut();
        for row in rows {
            serials.insert(row.get(0), to_index(row.get(1))?);
        }
        Ok(())
    }
}

impl LogRead for PgReader<'_> {
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        self.fetch_entries(index)?;
        Ok(self.entries.borrow().get(&index).cloned())
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>> {
        let start = index - index % CHUNK;
        if self.node_chunks.borrow_mut().insert((level, start)) {
            let level_db = i32::try_from(level)
                .map_err(|_| Error::Store(format!("tree level {level} out of range")))?;
            let rows = self.query(
                "SELECT idx, hash FROM log_nodes WHERE level = $1 AND idx >= $2 AND idx < $3",
                &[
                    &level_db,
                    &to_db(start)?,
                    &to_db(start.saturating_add(CHUNK))?,
                ],
            )?;
            let mut nodes = self.nodes.borrow_mut();
            for row in rows {
                let idx = to_index(row.get(0))?;
                let bytes: Vec<u8> = row.get(1);
                let hash = to_hash(&bytes, || format!("the stored hash ({level}, {idx})"))?;
                nodes.insert((level, idx), hash);
            }
        }
        Ok(self.nodes.borrow().get(&(level, index)).copied())
    }

    fn serial_index(&self, kind: SerialKind, serial: &str) -> Result<Option<u64>> {
        let key = kind.key(serial);
        if let Some(index) = self.serials.borrow().get(&key) {
            return Ok(Some(*index));
        }
        let rows = self.query("SELECT idx FROM log_serials WHERE key = $1", &[&key])?;
        rows.first().map(|row| to_index(row.get(0))).transpose()
    }

    fn end(&self) -> Result<u64> {
        let rows = self.query("SELECT max(idx) FROM log_entries", &[])?;
        match rows.first().and_then(|row| row.get::<_, Option<i64>>(0)) {
            Some(last) => to_index(last)?.checked_add(1).ok_or_else(|| {
                broken(
                    None,
                    "the store holds an entry at the largest possible index",
                )
            }),
            None => Ok(0),
        }
    }

    fn entry_count(&self) -> Result<u64> {
        let rows = self.query("SELECT count(*) FROM log_entries", &[])?;
        to_index(rows.first().map_or(0, |row| row.get(0)))
    }
}

impl Drop for PgReader<'_> {
    fn drop(&mut self) {
        if let Some(mut client) = self.client.get_mut().take() {
            if client.batch_execute("ROLLBACK").is_ok() {
                self.pool.put(client);
            }
        }
    }
}
