//! Where ceremonies in progress wait between `begin` and `finish`.
//!
//! The touch flow (`crate::touch`) turns a ceremony into typed JSON and
//! back; a store only keeps the bytes under the SHA-256 of the ceremony's
//! id, and keeps three promises whatever the backend:
//! - single use: [`CeremonyStore::take`] removes the ceremony whether or
//!   not it is still valid, so a second take of the same id finds nothing,
//!   even on another replica;
//! - expiry: a ceremony taken after its time to live is refused (and gone);
//! - a cap: [`CeremonyStore::put`] refuses once `max` unexpired ceremonies
//!   are pending, after sweeping the expired ones.
//!
//! The embedded store keeps them in this process's memory (one host: a
//! restart cancels the ceremonies in flight and the clients begin again);
//! the PostgreSQL store keeps them in a table every replica reads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Result;

/// Which flow a ceremony belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// `/v1/certs/begin` → `/v1/certs/finish`.
    Cert,
    /// `/v1/enroll/begin` → `/v1/enroll/finish`.
    Enroll,
}

impl CeremonyKind {
    /// Its name in a store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cert => "cert",
            Self::Enroll => "enroll",
        }
    }

    /// The kind a stored name stands for; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cert" => Some(Self::Cert),
            "enroll" => Some(Self::Enroll),
            _ => None,
        }
    }
}

/// What [`CeremonyStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Stored.
    Stored,
    /// Refused: `max` unexpired ceremonies are pending.
    TooMany,
}

/// A stored ceremony, as [`CeremonyStore::take`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Its kind.
    pub kind: CeremonyKind,
    /// The bytes given to [`CeremonyStore::put`].
    pub body: Vec<u8>,
}

/// Ceremonies in progress, by the SHA-256 of their id.
pub trait CeremonyStore: Send + Sync {
    /// Stores a ceremony for `ttl`, unless `max` unexpired ones are
    /// pending (expired ones are swept first). An id stored twice is an
    /// error (ids are 128 random bits: it does not happen by chance).
    fn put(
        &self,
        id_sha256: &[u8; 32],
        kind: CeremonyKind,
        body: &[u8],
        ttl: Duration,
        max: usize,
    ) -> Result<Put>;

    /// Removes the ceremony and returns it if it had not expired. Removed
    /// whatever happens next: a second call finds nothing.
    fn take(&self, id_sha256: &[u8; 32]) -> Result<Option<Taken>>;

    /// How many unexpired ceremonies are pending (for metrics).
    fn pending(&self) -> Result<usize>;
}

/// Ceremonies in this process's memory: the embedded store's.
#[derive(Debug, Default)]
pub struct MemoryCeremonies {
    pending: Mutex<HashMap<[u8; 32], Stored>>,
}

#[derive(Debug)]
struct Stored {
    expires: Instant,
    kind: CeremonyKind,
    body: Vec<u8>,
}

impl MemoryCeremonies {
    /// [`CeremonyStore::take`] as of `now` (tests move the clock).
    pub(crate) fn take_at(&self, id_sha256: &[u8; 32], now: Instant) -> Option<Taken> {
        let stored = super::lock(&self.pending).remove(id_sha256)?;
        (now < stored.expires).then_some(Taken {
            kind: stored.kind,
            body: stored.body,
        })
    }

    /// [`CeremonyStore::put`] as of `now`.
    pub(crate) fn put_at(
        &self,
        id_sha256: &[u8; 32],
        kind: CeremonyKind,
        body: &[u8],
        expires: Instant,
        max: usize,
        now: Instant,
    ) -> Result<Put> {
        let mut pending = super::lock(&self.pending);
        if pending.len() >= max {
            pending.retain(|_, stored| now < stored.expires);
            if pending.len() >= max {
                return Ok(Put::TooMany);
            }
        }
        if pending.contains_key(id_sha256) {
            return Err(crate::Error::Store("a ceremony id stored twice".into()));
        }
        pending.insert(
            *id_sha256,
            Stored {
                expires,
                kind,
                body: body.to_vec(),
            },
        );
        Ok(Put::Stored)
    }
}

impl CeremonyStore for MemoryCeremonies {
    fn put(
        &self,
        id_sha256: &[u8; 32],
        kind: CeremonyKind,
        body: &[u8],
        ttl: Duration,
        max: usize,
    ) -> Result<Put> {
        let now = Instant::now();
        self.put_at(id_sha256, kind, body, now + ttl, max, now)
    }

    fn take(&self, id_sha256: &[u8; 32]) -> Result<Option<Taken>> {
        Ok(self.take_at(id_sha256, Instant::now()))
    }

    fn pending(&self) -> Result<usize> {
        let now = Instant::now();
        Ok(super::lock(&self.pending)
            .values()
            .filter(|stored| now < stored.expires)
            .count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn taken_once_refused_after_expiry_and_capped() {
        let store = MemoryCeremonies::default();
        let now = Instant::now();
        assert_eq!(
            store
                .put_at(&[1; 32], CeremonyKind::Cert, b"a", now + TTL, 2, now)
                .unwrap(),
            Put::Stored
        );
        // The same id twice is an error, not an overwrite.
        assert!(store
            .put_at(&[1; 32], CeremonyKind::Enroll, b"b", now + TTL, 2, now)
            .is_err());
        let taken = store.take_at(&[1; 32], now + TTL / 2).unwrap();
        assert_eq!(
            (taken.kind, taken.body.as_slice()),
            (CeremonyKind::Cert, &b"a"[..])
        );
        assert!(store.take_at(&[1; 32], now).is_none(), "taken twice");

        // Expired: refused, and removed by the refusal.
        store
            .put_at(&[2; 32], CeremonyKind::Enroll, b"b", now + TTL, 2, now)
            .unwrap();
        assert!(store.take_at(&[2; 32], now + TTL).is_none());
        assert!(store.take_at(&[2; 32], now).is_none());

        // The cap counts pending ones; expired ones are swept to make room.
        for id in [3u8, 4] {
            store
                .put_at(&[id; 32], CeremonyKind::Cert, b"c", now + TTL, 2, now)
                .unwrap();
        }
        assert_eq!(
            store
                .put_at(&[5; 32], CeremonyKind::Cert, b"c", now + TTL, 2, now)
                .unwrap(),
            Put::TooMany
        );
        let later = now + TTL + Duration::from_secs(1);
        assert_eq!(
            store
                .put_at(&[5; 32], CeremonyKind::Cert, b"c", later + TTL, 2, later)
                .unwrap(),
            Put::Stored
        );
        assert_eq!(store.pending().unwrap(), 1);
    }

    #[test]
    fn kinds_parse_only_their_names() {
        for kind in [CeremonyKind::Cert, CeremonyKind::Enroll] {
            assert_eq!(CeremonyKind::parse(kind.as_str()), Some(kind));
        }
        for bad in ["", "Cert", "cert ", "proxy"] {
            assert_eq!(CeremonyKind::parse(bad), None);
        }
    }
}
