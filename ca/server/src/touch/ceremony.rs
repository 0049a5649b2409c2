//! Ceremonies in progress: what `begin` promised, waiting for `finish`.
//!
//! Each is single use — `take` removes it whatever happens next, so an
//! assertion can never be replayed against the same ceremony — and expires
//! 60 seconds after it began. They wait in the store's
//! [`CeremonyStore`]: this process's memory for the embedded store (a
//! restart cancels the ceremonies in flight, and the clients begin again),
//! a table every replica shares for PostgreSQL (begin on one replica,
//! finish on another).
//!
//! A ceremony is kept as typed JSON ([`CertRow`], [`EnrollRow`]) under the
//! SHA-256 of its id. What comes back is parsed as strictly as a request:
//! a stored ceremony that does not parse is refused (the store failed), it
//! is never acted on.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use signet_hsm::PublicKey;
use signet_log::entry::PivDevice;

use crate::request::SubjectKey;
use crate::store::ceremonies::{CeremonyKind, CeremonyStore, Put};
use crate::{Error, Result};

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
    /// Its SubjectPublicKeyInfo (DER), as requested and attested.
    pub public_key_spki: Vec<u8>,
    /// The device and key policies its attestation states.
    pub device: PivDevice,
    /// The logins asked for.
    pub principals: Vec<String>,
    /// The validity asked for.
    pub ttl: Duration,
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

/// A [`CertCeremony`] as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertRow {
    user: String,
    challenge: [u8; 32],
    request_sha256: [u8; 32],
    public_key_spki: Vec<u8>,
    device: PivDevice,
    principals: Vec<String>,
    ttl_seconds: u64,
    require_uv: bool,
}

/// An [`EnrollCeremony`] as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollRow {
    user: String,
    token_sha256: [u8; 32],
    challenge: [u8; 32],
}

impl Pending {
    fn to_row(&self) -> Result<(CeremonyKind, Vec<u8>)> {
        let encoded = match self {
            Self::Cert(c) => (
                CeremonyKind::Cert,
                serde_json::to_vec(&CertRow {
                    user: c.user.clone(),
                    challenge: c.challenge,
                    request_sha256: c.request_sha256,
                    public_key_spki: c.public_key_spki.clone(),
                    device: c.device.clone(),
                    principals: c.principals.clone(),
                    ttl_seconds: c.ttl.as_secs(),
                    require_uv: c.require_uv,
                }),
            ),
            Self::Enroll(e) => (
                CeremonyKind::Enroll,
                serde_json::to_vec(&EnrollRow {
                    user: e.user.clone(),
                    token_sha256: e.token_sha256,
                    challenge: e.challenge,
                }),
            ),
        };
        let (kind, body) = encoded;
        Ok((
            kind,
            body.map_err(|e| Error::Store(format!("a ceremony cannot be stored: {e}")))?,
        ))
    }

    /// A stored ceremony, parsed back; anything unexpected is an error.
    fn from_row(kind: CeremonyKind, body: &[u8]) -> Result<Self> {
        let unreadable = |e: &dyn std::fmt::Display| {
            Error::Store(format!("a stored ceremony is unreadable: {e}"))
        };
        Ok(match kind {
            CeremonyKind::Cert => {
                let row: CertRow = serde_json::from_slice(body).map_err(|e| unreadable(&e))?;
                let key =
                    PublicKey::from_spki_der(&row.public_key_spki).map_err(|e| unreadable(&e))?;
                let public_key =
                    SubjectKey::from_public_key(key, "public_key").map_err(|e| unreadable(&e))?;
                Self::Cert(Box::new(CertCeremony {
                    user: row.user,
                    challenge: row.challenge,
                    request_sha256: row.request_sha256,
                    public_key,
                    public_key_spki: row.public_key_spki,
                    device: row.device,
                    principals: row.principals,
                    ttl: Duration::from_secs(row.ttl_seconds),
                    require_uv: row.require_uv,
                }))
            }
            CeremonyKind::Enroll => {
                let row: EnrollRow = serde_json::from_slice(body).map_err(|e| unreadable(&e))?;
                Self::Enroll(EnrollCeremony {
                    user: row.user,
                    token_sha256: row.token_sha256,
                    challenge: row.challenge,
                })
            }
        })
    }
}

/// The pending ceremonies, in the store's [`CeremonyStore`].
pub struct Ceremonies {
    store: Arc<dyn CeremonyStore>,
}

/// Why a ceremony could not be started.
#[derive(Debug)]
pub enum StartError {
    /// [`MAX_PENDING`] are pending.
    TooMany,
    /// The store could not keep it (the database is lost, …).
    Store(Error),
}

/// The key a ceremony id is stored under.
fn key_of(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Ceremonies {
    /// Ceremonies kept in `store`.
    pub fn new(store: Arc<dyn CeremonyStore>) -> Self {
        Self { store }
    }

    /// Stores a ceremony and returns its id (128 random bits, base64url).
    pub fn start(&self, ceremony: Pending) -> std::result::Result<String, StartError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| StartError::Store(Error::Store(format!("no randomness: {e}"))))?;
        let id = URL_SAFE_NO_PAD.encode(id);
        let (kind, body) = ceremony.to_row().map_err(StartError::Store)?;
        match self
            .store
            .put(&key_of(&id), kind, &body, CEREMONY_TTL, MAX_PENDING)
            .map_err(StartError::Store)?
        {
            Put::Stored => Ok(id),
            Put::TooMany => Err(StartError::TooMany),
        }
    }

    /// Removes and returns a ceremony that has not expired: `Ok(None)` for
    /// an unknown, spent or expired one (a second call with the same id
    /// finds nothing); an error when the store fails or what it holds
    /// does not parse.
    pub fn take(&self, id: &str) -> Result<Option<Pending>> {
        match self.store.take(&key_of(id))? {
            Some(taken) => Pending::from_row(taken.kind, &taken.body).map(Some),
            None => Ok(None),
        }
    }

    /// How many are pending (0 when the store cannot say).
    pub fn len(&self) -> usize {
        self.store.pending().unwrap_or(0)
    }

    /// Whether none are pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl StartError {
    /// The refusal a client gets: `too_many` when too many `what`s (sign-ins,
    /// enrollments) are in progress, unavailable when the store failed.
    pub(super) fn refusal(self, what: &str) -> super::Refusal {
        match self {
            Self::TooMany => super::Refusal::new(
                signet_api::ErrorCode::RateLimited,
                "too_many_ceremonies",
                format!("too many {what} in progress; try again in a minute"),
            ),
            Self::Store(e) => super::Refusal::from(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryCeremonies;
    use signet_log::entry::{PinPolicy, TouchPolicy};

    fn ceremonies() -> (Arc<MemoryCeremonies>, Ceremonies) {
        let store = Arc::new(MemoryCeremonies::default());
        (store.clone(), Ceremonies::new(store))
    }

    fn enrollment() -> Pending {
        Pending::Enroll(EnrollCeremony {
            user: "alice".into(),
            token_sha256: [1; 32],
            challenge: [2; 32],
        })
    }

    fn sign_in() -> Pending {
        let key = p256::SecretKey::from_slice(&[7; 32]).unwrap();
        let spki = {
            use p256::pkcs8::EncodePublicKey as _;
            key.public_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec()
        };
        let public = PublicKey::from_spki_der(&spki).unwrap();
        Pending::Cert(Box::new(CertCeremony {
            user: "alice".into(),
            challenge: [3; 32],
            request_sha256: [4; 32],
            public_key: SubjectKey::from_public_key(public, "public_key").unwrap(),
            public_key_spki: spki,
            device: PivDevice {
                serial: 12_345_678,
                pin_policy: PinPolicy::Once,
                touch_policy: TouchPolicy::Always,
            },
            principals: vec!["ubuntu".into(), "root".into()],
            ttl: Duration::from_secs(3600),
            require_uv: true,
        }))
    }

    #[test]
    fn a_ceremony_is_taken_once_and_only_before_it_expires() {
        let (store, ceremonies) = ceremonies();
        let id = ceremonies.start(enrollment()).unwrap();
        let just_in_time = std::time::Instant::now() + CEREMONY_TTL - Duration::from_secs(1);
        let taken = store.take_at(&key_of(&id), just_in_time).unwrap();
        assert!(matches!(
            Pending::from_row(taken.kind, &taken.body).unwrap(),
            Pending::Enroll(_)
        ));
        // Spent: a replay finds nothing.
        assert!(ceremonies.take(&id).unwrap().is_none());

        // Expired: refused, and gone (a later try finds nothing either).
        let id = ceremonies.start(enrollment()).unwrap();
        let late = std::time::Instant::now() + CEREMONY_TTL + Duration::from_secs(1);
        assert!(store.take_at(&key_of(&id), late).is_none());
        assert!(ceremonies.take(&id).unwrap().is_none());
        assert!(ceremonies.is_empty());
        // An id never handed out finds nothing.
        assert!(ceremonies.take("made-up").unwrap().is_none());
    }

    #[test]
    fn a_sign_in_survives_the_round_trip_through_its_row() {
        let (_, ceremonies) = ceremonies();
        let id = ceremonies.start(sign_in()).unwrap();
        let Some(Pending::Cert(back)) = ceremonies.take(&id).unwrap() else {
            panic!("not a sign-in");
        };
        let Pending::Cert(sent) = sign_in() else {
            unreachable!()
        };
        assert_eq!(back.user, sent.user);
        assert_eq!(back.challenge, sent.challenge);
        assert_eq!(back.request_sha256, sent.request_sha256);
        assert_eq!(back.public_key_spki, sent.public_key_spki);
        assert_eq!(back.public_key.fingerprint(), sent.public_key.fingerprint());
        assert_eq!(back.device, sent.device);
        assert_eq!(back.principals, sent.principals);
        assert_eq!(back.ttl, sent.ttl);
        assert!(back.require_uv);
    }

    #[test]
    fn a_stored_ceremony_that_does_not_parse_is_refused_not_acted_on() {
        let (_, ceremonies) = ceremonies();
        let (_, good) = sign_in().to_row().unwrap();
        let good: serde_json::Value = serde_json::from_slice(&good).unwrap();
        let mut extra = good.clone();
        extra["grant"] = serde_json::json!("all");
        let mut short = good.clone();
        short["challenge"] = serde_json::json!([1, 2, 3]);
        let mut bad_key = good.clone();
        bad_key["public_key_spki"] = serde_json::json!([48, 3, 1]);
        let mut no_user = good.clone();
        no_user.as_object_mut().unwrap().remove("user");
        let rows: Vec<(CeremonyKind, Vec<u8>)> = vec![
            (CeremonyKind::Cert, b"".to_vec()),
            (CeremonyKind::Cert, b"{not json".to_vec()),
            (CeremonyKind::Cert, serde_json::to_vec(&extra).unwrap()),
            (CeremonyKind::Cert, serde_json::to_vec(&short).unwrap()),
            (CeremonyKind::Cert, serde_json::to_vec(&bad_key).unwrap()),
            (CeremonyKind::Cert, serde_json::to_vec(&no_user).unwrap()),
            // A sign-in's row read as an enrollment.
            (CeremonyKind::Enroll, serde_json::to_vec(&good).unwrap()),
        ];
        for (i, (kind, body)) in rows.into_iter().enumerate() {
            let id = format!("row-{i}");
            ceremonies
                .store
                .put(&key_of(&id), kind, &body, CEREMONY_TTL, MAX_PENDING)
                .unwrap();
            let err = ceremonies.take(&id).unwrap_err();
            assert!(matches!(err, Error::Store(_)), "{i}: {err}");
            // Gone all the same: a retry cannot reach it.
            assert!(ceremonies.take(&id).unwrap().is_none(), "{i}");
        }
    }
}
