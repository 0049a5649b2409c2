//! `signet-ca store copy`: moves a single-host CA's log into PostgreSQL.
//!
//! The source is an opened (so verified) store; its entries, the hashes
//! recomputed from them, the serial index and its latest signed checkpoint
//! are written into an empty database in one transaction. The caller then
//! opens the database as the CA would — verified from scratch against the
//! checkpoint and the high-water mark — and compares the roots.

use signet_log::entry::Entry;
use signet_log::merkle::{self, CompactRange, Hash, NodeId};

use super::connect::Connector;
use super::reader::{query_err, to_db};
use super::schema;
use crate::store::verify::broken;
use crate::store::{LogStore, SerialKind};
use crate::{Error, Result};

/// What was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    /// Entries written.
    pub entries: u64,
    /// The root of the copied tree (the source checkpoint's).
    pub root: Hash,
}

/// Rows per INSERT while copying.
const ROWS: usize = 2048;

/// Copies the log of `source` into the empty database `db`. Refuses a
/// database that already holds a log. `progress(done, total)` is called
/// as entries are read.
pub fn copy_into(
    source: &dyn LogStore,
    db: &super::PgConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<CopyReport> {
    let checkpoint = source.latest_checkpoint();
    let connector = Connector::new(db)?;
    let place = connector.place().to_owned();
    let err = |e: postgres::Error| query_err(&place, &e);
    let mut client = connector.connect()?;
    schema::migrate(&mut client, &place)?;
    let mut txn = client.transaction().map_err(err)?;
    txn.execute("SELECT 1 FROM log_head FOR UPDATE", &[])
        .map_err(err)?;
    let (entries, checkpoints): (i64, i64) = {
        let row = txn
            .query_one(
                "SELECT (SELECT count(*) FROM log_entries), (SELECT count(*) FROM log_checkpoints)",
                &[],
            )
            .map_err(err)?;
        (row.get(0), row.get(1))
    };
    if entries > 0 || checkpoints > 0 {
        return Err(Error::Store(format!(
            "the database {place} already holds a log ({entries} entries): store copy writes \
             only into an empty one"
        )));
    }
    let reader = source.reader()?;
    let mut tree = CompactRange::new();
    let mut batch = Batch::default();
    for index in 0..checkpoint.size {
        let bytes = reader
            .entry(index)?
            .ok_or_else(|| broken(Some(index), format!("entry {index} is missing")))?;
        let entry = Entry::from_bytes(&bytes)
            .map_err(|e| broken(Some(index), format!("entry {index}: {e}")))?;
        if let Some(cert) = &entry.certificate {
            batch
                .serial_key
                .push(SerialKind::of(entry.kind, &cert.bytes.0).key(&cert.serial));
            batch.serial_idx.push(to_db(index)?);
        }
        let mut nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(2);
        tree.append(merkle::leaf_hash(&bytes), |node, hash| {
            nodes.push((node, *hash))
        })?;
        for (node, hash) in nodes {
            batch
                .node_level
                .push(i32::try_from(node.level).map_err(|_| {
                    Error::Store(format!("tree level {} out of range", node.level))
                })?);
            batch.node_idx.push(to_db(node.index)?);
            batch.node_hash.push(hash.to_vec());
        }
        batch.entry_idx.push(to_db(index)?);
        batch.entry_body.push(bytes);
        if batch.entry_idx.len() >= ROWS {
            batch.write(&mut txn, &place)?;
            progress(index + 1, checkpoint.size);
        }
    }
    batch.write(&mut txn, &place)?;
    progress(checkpoint.size, checkpoint.size);
    if tree.size() != checkpoint.size || tree.root() != checkpoint.root {
        return Err(broken(
            None,
            "the source's entries do not hash to its signed checkpoint",
        ));
    }
    txn.execute(
        "INSERT INTO log_checkpoints (size, root, note, signed_by) VALUES ($1, $2, $3, 'store copy')",
        &[&to_db(checkpoint.size)?, &checkpoint.root.to_vec(), &checkpoint.note],
    )
    .map_err(err)?;
    txn.commit().map_err(err)?;
    Ok(CopyReport {
        entries: checkpoint.size,
        root: checkpoint.root,
    })
}

#[derive(Default)]
struct Batch {
    entry_idx: Vec<i64>,
    entry_body: Vec<Vec<u8>>,
    node_level: Vec<i32>,
    node_idx: Vec<i64>,
    node_hash: Vec<Vec<u8>>,
    serial_key: Vec<String>,
    serial_idx: Vec<i64>,
}

impl Batch {
    fn write(&mut self, txn: &mut postgres::Transaction<'_>, place: &str) -> Result<()> {
        let err = |e: postgres::Error| query_err(place, &e);
        let bodies: Vec<&[u8]> = self.entry_body.iter().map(Vec::as_slice).collect();
        let hashes: Vec<&[u8]> = self.node_hash.iter().map(Vec::as_slice).collect();
        txn.execute(
            "INSERT INTO log_entries (idx, body) SELECT * FROM unnest($1::int8[], $2::bytea[])",
            &[&self.entry_idx, &bodies],
        )
        .map_err(err)?;
        txn.execute(
            "INSERT INTO log_nodes (level, idx, hash) \
             SELECT * FROM unnest($1::int4[], $2::int8[], $3::bytea[])",
            &[&self.node_level, &self.node_idx, &hashes],
        )
        .map_err(err)?;
        let inserted = txn
            .execute(
                "INSERT INTO log_serials (key, idx) SELECT * FROM unnest($1::text[], $2::int8[]) \
                 ON CONFLICT (key) DO NOTHING",
                &[&self.serial_key, &self.serial_idx],
            )
            .map_err(err)?;
        if inserted != self.serial_key.len() as u64 {
            return Err(broken(None, "the source log repeats a serial"));
        }
        *self = Self::default();
        Ok(())
    }
}
