//! Ceremonies in progress: what `begin` promised, waiting for `finish`.
//!
//! Each is single use — `take` removes it whatever happens next, so an
//! assertion can never be replayed against the same ceremony — and expires
//! 60 seconds after it began. They live in memory: a restart cancels the
//! ceremonies in flight, and the clients begin again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use signet_attest::AttestedKey;
use signet_policy::Grant;

use crate::request::SubjectKey;

/// How long a ceremony may take, begin to finish.
pub const CEREMONY_TTL: Duration = Duration::from_secs(60);
/// The most ceremonies pending at once; beyond it `begin` is refused
/// until some finish or expire.
pub(super) const MAX_PENDING: usize = 10_000;

/// A certificate request waiting for its assertion.
#[derive(Debug, Clone)]
pub struct CertCeremony {
    /// The user.
    pub user: String,
    /// The challenge the assertion must sign.
    pub challenge: [u8; 32],
    /// SHA-256 of the request.
    pub request_sha256: [u8; 32],
    /// The attested key to certify.
    pub public_key: SubjectKey,
    /// What its attestation says.
    pub attested: AttestedKey,
    /// The logins asked for.
    pub principals: Vec<String>,
    /// The validity asked for.
    pub ttl: Duration,
    /// What the roles allowed at begin (checked again at finish).
    pub grant: Grant,
    /// Whether the assertion must carry user verification.
    pub require_uv: bool,
}

/// An enrollment waiting for its new credential.
#[derive(Debug, Clone)]
pub struct EnrollCeremony {
    /// The user the invite is for.
    pub user: String,
    /// SHA-256 of the invite token.
    pub token_sha256: [u8; 32],
    /// The challenge the registration must sign.
    pub challenge: [u8; 32],
}

/// Either kind.
#[derive(Debug, Clone)]
pub enum Pending {
    /// `/v1/certs/begin` → `/v1/certs/finish`.
    Cert(Box<CertCeremony>),
    /// `/v1/enroll/begin` → `/v1/enroll/finish`.
    Enroll(EnrollCeremony),
}

/// The pending ceremonies by id.
#[derive(Debug, Default)]
pub struct Ceremonies {
    pending: Mutex<HashMap<String, (Instant, Pending)>>,
}

/// Why a ceremony could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany;

impl Ceremonies {
    /// Stores a ceremony and returns its id (128 random bits, base64url).
    pub fn start(&self, ceremony: Pending) -> Result<String, TooMany> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|_| TooMany)?;
        let id = URL_SAFE_NO_PAD.encode(id);
        let now = Instant::now();
        let mut pending = crate::store::lock(&self.pending);
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, (started, _)| now.duration_since(*started) < CEREMONY_TTL);
            if pending.len() >= MAX_PENDING {
                return Err(TooMany);
            }
        }
        pending.insert(id.clone(), (now, ceremony));
        Ok(id)
    }

    /// Removes and returns a ceremony that has not expired. A second call
    /// with the same id finds nothing.
    pub fn take(&self, id: &str) -> Option<Pending> {
        self.take_at(id, Instant::now())
    }

    /// [`Ceremonies::take`] as of `now` (tests move the clock).
    fn take_at(&self, id: &str, now: Instant) -> Option<Pending> {
        let (started, ceremony) = crate::store::lock(&self.pending).remove(id)?;
        (now.saturating_duration_since(started) < CEREMONY_TTL).then_some(ceremony)
    }

    /// How many are pending (expired ones included until swept).
    pub fn len(&self) -> usize {
        crate::store::lock(&self.pending).len()
    }

    /// Whether none are pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrollment() -> Pending {
        Pending::Enroll(EnrollCeremony {
            user: "alice".into(),
            token_sha256: [1; 32],
            challenge: [2; 32],
        })
    }

    #[test]
    fn a_ceremony_is_taken_once_and_only_before_it_expires() {
        let ceremonies = Ceremonies::default();
        let id = ceremonies.start(enrollment()).unwrap();
        let just_in_time = Instant::now() + CEREMONY_TTL - Duration::from_secs(1);
        assert!(matches!(
            ceremonies.take_at(&id, just_in_time),
            Some(Pending::Enroll(_))
        ));
        // Spent: a replay finds nothing.
        assert!(ceremonies.take(&id).is_none());

        // Expired: refused, and gone (a later try finds nothing either).
        let id = ceremonies.start(enrollment()).unwrap();
        let late = Instant::now() + CEREMONY_TTL + Duration::from_secs(1);
        assert!(ceremonies.take_at(&id, late).is_none());
        assert!(ceremonies.take(&id).is_none());
        assert!(ceremonies.is_empty());
    }
}
