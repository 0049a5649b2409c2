//! Ceremonies in progress in the `ceremonies` table (migration 3), so a
//! sign-in begun on one replica can finish on another.
//!
//! Times are the database's (`now()`), never a replica's clock, so replicas
//! whose clocks differ agree on what has expired. Taking is one
//! `DELETE ... RETURNING`: of two replicas taking one id, exactly one gets
//! the row, and it is gone whether or not it was still valid.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::Client;

use super::reader::{lost, query_err, Pool};
use crate::store::ceremonies::{CeremonyKind, CeremonyStore, Put, Taken};
use crate::store::lock;
use crate::{Error, Result};

/// Expired rows are swept at most this often per replica (and whenever
/// the cap is reached).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The ceremonies of every replica, in the shared database.
pub(crate) struct PgCeremonies {
    pool: Arc<Pool>,
    last_sweep: std::sync::Mutex<Option<Instant>>,
}

impl PgCeremonies {
    pub(crate) fn new(pool: Arc<Pool>) -> Self {
        Self {
            pool,
            last_sweep: std::sync::Mutex::new(None),
        }
    }

    /// Runs `query` on a pooled connection; a connection the database
    /// dropped since it was pooled (a restart) is replaced once.
    fn with_client<T>(
        &self,
        query: impl Fn(&mut Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut client = self.pool.get()?;
        let result = match query(&mut client) {
            Err(e) if lost(&e) => {
                client = self.pool.get()?;
                query(&mut client)
            }
            other => other,
        };
        match result {
            Ok(value) => {
                self.pool.put(client);
                Ok(value)
            }
            Err(e) => Err(query_err(self.pool.place(), &e)),
        }
    }

    fn sweep(&self) -> Result<()> {
        self.with_client(|c| c.execute("DELETE FROM ceremonies WHERE expires_at <= now()", &[]))?;
        *lock(&self.last_sweep) = Some(Instant::now());
        Ok(())
    }

    fn insert(
        &self,
        id_sha256: &[u8; 32],
        kind: CeremonyKind,
        body: &[u8],
        ttl: Duration,
        max: i64,
    ) -> Result<bool> {
        let seconds = ttl.as_secs_f64();
        let inserted = self.with_client(|c| {
            c.execute(
                "INSERT INTO ceremonies (id_sha256, kind, body, expires_at) \
                 SELECT $1, $2, $3, now() + $4::float8 * interval '1 second' \
                 WHERE (SELECT count(*) FROM ceremonies) < $5",
                &[&id_sha256.as_slice(), &kind.as_str(), &body, &seconds, &max],
            )
        })?;
        Ok(inserted == 1)
    }
}

impl CeremonyStore for PgCeremonies {
    fn put(
        &self,
        id_sha256: &[u8; 32],
        kind: CeremonyKind,
        body: &[u8],
        ttl: Duration,
        max: usize,
    ) -> Result<Put> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let due = lock(&self.last_sweep).is_none_or(|at| at.elapsed() >= SWEEP_EVERY);
        if due {
            self.sweep()?;
        }
        if self.insert(id_sha256, kind, body, ttl, max)? {
            return Ok(Put::Stored);
        }
        // At the cap (expired rows count until swept): sweep now, then try
        // once more.
        self.sweep()?;
        Ok(if self.insert(id_sha256, kind, body, ttl, max)? {
            Put::Stored
        } else {
            Put::TooMany
        })
    }

    fn take(&self, id_sha256: &[u8; 32]) -> Result<Option<Taken>> {
        let row = self.with_client(|c| {
            c.query_opt(
                "DELETE FROM ceremonies WHERE id_sha256 = $1 \
                 RETURNING kind, body, expires_at > now()",
                &[&id_sha256.as_slice()],
            )
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (kind, body, valid): (String, Vec<u8>, bool) = (
            row.try_get(0).map_err(|e| unreadable(&e))?,
            row.try_get(1).map_err(|e| unreadable(&e))?,
            row.try_get(2).map_err(|e| unreadable(&e))?,
        );
        if !valid {
            return Ok(None);
        }
        let kind = CeremonyKind::parse(&kind)
            .ok_or_else(|| Error::Store(format!("a stored ceremony of unknown kind {kind:?}")))?;
        Ok(Some(Taken { kind, body }))
    }

    fn pending(&self) -> Result<usize> {
        let count: i64 = self.with_client(|c| {
            c.query_one(
                "SELECT count(*) FROM ceremonies WHERE expires_at > now()",
                &[],
            )
            .and_then(|row| row.try_get(0))
        })?;
        Ok(usize::try_from(count).unwrap_or(0))
    }
}

fn unreadable(e: &postgres::Error) -> Error {
    Error::Store(format!("a stored ceremony cannot be read: {e}"))
}
