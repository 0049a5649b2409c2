//! Schema migrations, embedded in the binary and applied in order at start
//! (and by `signet-ca store migrate`). Several replicas may start at once:
//! migrations run in one transaction under an advisory lock, so exactly one
//! applies them and the others find them done.

use postgres::Client;

use super::connect::describe;
use crate::{Error, Result};

/// Every migration, in order: (version, SQL). Never edit a released one;
/// add the next.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_log.sql")),
    (2, include_str!("migrations/0002_join_tokens.sql")),
    (3, include_str!("migrations/0003_ceremonies.sql")),
];

/// The advisory lock key migrations hold ("signet-m" in ASCII).
const MIGRATION_LOCK: i64 = 0x7369_676e_6574_2d6d;

/// The newest schema this binary knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

/// Brings the schema up to date; returns the versions applied now (empty
/// when it already was). A database migrated by a newer signet-ca is
/// refused rather than written with an older idea of its tables.
pub(crate) fn migrate(client: &mut Client, place: &str) -> Result<Vec<i32>> {
    let failed = |e: postgres::Error| {
        if super::reader::lost(&e) {
            super::connect::unavailable(place, &e)
        } else {
            Error::Store(format!("migrating {place}: {}", describe(&e)))
        }
    };
    // Up to date already: nothing to lock or create, so a database user
    // without CREATE (after the first migration) can run the CA.
    let exists: bool = client
        .query_one("SELECT to_regclass('signet_schema') IS NOT NULL", &[])
        .map_err(failed)?
        .get(0);
    let current: Option<i32> = match exists {
        true => client
            .query_one("SELECT coalesce(max(version), 0) FROM signet_schema", &[])
            .map_err(failed)?
            .get(0),
        false => None,
    };
    if current == Some(latest_version()) {
        return Ok(Vec::new());
    }
    let mut txn = client.transaction().map_err(failed)?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failed)?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS signet_schema (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(failed)?;
    let current: i32 = txn
        .query_one("SELECT coalesce(max(version), 0) FROM signet_schema", &[])
        .map_err(failed)?
        .get(0);
    if current > latest_version() {
        return Err(Error::Store(format!(
            "{place} has schema version {current}, newer than this signet-ca knows ({}): \
             upgrade signet-ca",
            latest_version()
        )));
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        txn.batch_execute(sql).map_err(failed)?;
        txn.execute(
            "INSERT INTO signet_schema (version) VALUES ($1)",
            &[version],
        )
        .map_err(failed)?;
        applied.push(*version);
    }
    txn.commit().map_err(failed)?;
    Ok(applied)
}
