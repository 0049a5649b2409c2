//! The witness proper, without HTTP: checks an `add-checkpoint` request
//! against the latest checkpoint cosigned for that log, stores the new one
//! durably and cosigns it.
//!
//! The checks follow c2sp.org/tlog-witness v1 in its order:
//!
//! | check | refusal |
//! | --- | --- |
//! | body, checkpoint and note well formed | 400 |
//! | origin configured | 404 |
//! | a signature by the log's key verifies | 403 |
//! | old size ≤ checkpoint size | 400 |
//! | old size = size of the latest cosigned checkpoint (0 if none) | 409, with that size |
//! | old size 0: no proof lines | 400 |
//! | same size: same root | 409 |
//! | consistency proof from the latest cosigned checkpoint verifies | 422 |
//!
//! The check of the old size and the update of the stored checkpoint happen
//! under one lock per log, so two requests can never both advance from the
//! same state (the race the spec describes, which would roll the witness
//! back). The new checkpoint is durable before the cosignature is returned.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use signet_log::checkpoint::Checkpoint;
use signet_log::merkle::verify_consistency;
use signet_log::note::{Note, VerifierSet};

use crate::config::{Config, LogConfig};
use crate::error::Result;
use crate::key::WitnessSigner;
use crate::protocol::parse_request;
use crate::state::{Latest, StateDir};

/// Why a request was not cosigned; each maps to the HTTP status the spec
/// demands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400: malformed body, checkpoint or note; old size above the
    /// checkpoint's; a proof with old size 0.
    BadRequest(String),
    /// 403: no signature by the log's key verifies.
    Forbidden(String),
    /// 404: the origin is not a log this witness cosigns for.
    UnknownLog(String),
    /// 409: the old size is not the latest cosigned size (given here).
    Conflict {
        /// The size of the latest checkpoint cosigned for the log.
        latest_size: u64,
        /// What conflicts.
        reason: String,
    },
    /// 409 as well: the same size as the latest cosigned checkpoint with
    /// another root hash, a fork signed by the log.
    Fork {
        /// The size of the latest checkpoint cosigned for the log.
        latest_size: u64,
        /// What differs.
        reason: String,
    },
    /// 422: the consistency proof does not verify.
    BadProof(String),
    /// 500: the witness could not sign or store.
    Internal(String),
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Forbidden(_) => 403,
            Self::UnknownLog(_) => 404,
            Self::Conflict { .. } | Self::Fork { .. } => 409,
            Self::BadProof(_) => 422,
            Self::Internal(_) => 500,
        }
    }

    /// The reason, for the log line and the answer.
    pub fn reason(&self) -> &str {
        match self {
            Self::BadRequest(r)
            | Self::Forbidden(r)
            | Self::UnknownLog(r)
            | Self::BadProof(r)
            | Self::Internal(r) => r,
            Self::Conflict { reason, .. } | Self::Fork { reason, .. } => reason,
        }
    }
}

/// A refused request, with what is known of it for the log line.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The checkpoint's origin, if it got that far.
    pub origin: Option<String>,
    /// The old size and new size, if parsed.
    pub sizes: Option<(u64, u64)>,
    /// Why.
    pub refusal: Refusal,
    /// For a checkpoint signed by the log that contradicts what the witness
    /// cosigned (a fork: same size with another root, or a proof that does
    /// not verify): the signed note, which is evidence of the log's
    /// misbehaviour and is logged in full.
    pub evidence: Option<String>,
}

/// A cosigned checkpoint.
#[derive(Debug, Clone)]
pub struct Cosigned {
    /// The log.
    pub origin: String,
    /// The size cosigned before.
    pub old_size: u64,
    /// The size cosigned now.
    pub size: u64,
    /// The response body: the cosignature line(s), each ending in a newline.
    pub lines: String,
}

struct LogSlot {
    verifiers: VerifierSet,
    /// The latest cosigned checkpoint; the lock serialises this log's requests.
    latest: Mutex<Option<Latest>>,
}

/// A running witness.
pub struct Witness {
    signer: WitnessSigner,
    logs: HashMap<String, LogSlot>,
    state: StateDir,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("vkey", &self.signer.verifier_key().to_string())
            .field("logs", &self.logs.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Witness {
    /// A witness for the configured logs, with the state read (and checked)
    /// from the state directory.
    pub fn new(config: &Config, signer: WitnessSigner) -> Result<Self> {
        let state = StateDir::open(&config.state_dir)?;
        let mut logs = HashMap::new();
        for log in &config.logs {
            logs.insert(log.origin.clone(), Self::slot(&state, log)?);
        }
        Ok(Self {
            signer,
            logs,
            state,
        })
    }

    fn slot(state: &StateDir, log: &LogConfig) -> Result<LogSlot> {
        Ok(LogSlot {
            verifiers: log.verifiers(),
            latest: Mutex::new(state.load(log)?),
        })
    }

    /// The witness's vkey.
    pub fn vkey(&self) -> String {
        self.signer.verifier_key().to_string()
    }

    /// The latest cosigned size of every log (for `/healthz` and the start-up line).
    pub fn sizes(&self) -> Vec<(String, Option<u64>)> {
        let mut v: Vec<_> = self
            .logs
            .iter()
            .map(|(origin, slot)| {
                let latest = slot.latest.lock().unwrap_or_else(PoisonError::into_inner);
                (origin.clone(), latest.as_ref().map(|l| l.size))
            })
            .collect();
        v.sort();
        v
    }

    /// Handles one `add-checkpoint` request body. Blocking (it signs and
    /// syncs files): call it from a blocking thread.
    pub fn add_checkpoint(&self, body: &[u8]) -> std::result::Result<Cosigned, Box<Refused>> {
        let mut origin = None;
        let mut sizes = None;
        let mut note = None;
        self.check_and_cosign(body, &mut origin, &mut sizes, &mut note)
            .map_err(|refusal| {
                // Only a note the log signed is evidence; it gets this far
                // only if its signature verified.
                let evidence = match &refusal {
                    Refusal::BadProof(_) | Refusal::Fork { .. } => note,
                    _ => None,
                };
                Box::new(Refused {
                    origin,
                    sizes,
                    refusal,
                    evidence,
                })
            })
    }

    fn check_and_cosign(
        &self,
        body: &[u8],
        origin_out: &mut Option<String>,
        sizes_out: &mut Option<(u64, u64)>,
        signed_note_out: &mut Option<String>,
    ) -> std::result::Result<Cosigned, Refusal> {
        let request = parse_request(body).map_err(Refusal::BadRequest)?;
        let note = Note::parse(&request.checkpoint).map_err(|e| {
            Refusal::BadRequest(format!("the checkpoint is not a signed note: {e}"))
        })?;
        let checkpoint = Checkpoint::parse(note.text())
            .map_err(|e| Refusal::BadRequest(format!("the note is not a checkpoint: {e}")))?;
        let origin = checkpoint.origin().to_owned();
        *origin_out = Some(origin.clone());
        let (old, size) = (request.old_size, checkpoint.size());
        *sizes_out = Some((old, size));
        let slot = self.logs.get(&origin).ok_or_else(|| {
            Refusal::UnknownLog(format!(
                "this witness does not cosign for origin {origin:?}"
            ))
        })?;
        note.verify(&slot.verifiers)
            .map_err(|e| Refusal::Forbidden(format!("no valid signature by the log's key: {e}")))?;
        *signed_note_out = Some(note.to_text());
        if old > size {
            return Err(Refusal::BadRequest(format!(
                "old size {old} is larger than the checkpoint's size {size}"
            )));
        }

        let mut latest = slot.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let latest_size = latest.as_ref().map_or(0, |l| l.size);
        if old != latest_size {
            return Err(Refusal::Conflict {
                latest_size,
                reason: format!(
                    "old size {old} is not the size of the latest checkpoint cosigned for this log ({latest_size})"
                ),
            });
        }
        if old == 0 {
            if !request.proof.is_empty() {
                return Err(Refusal::BadRequest(
                    "a consistency proof from size 0 must be empty".to_owned(),
                ));
            }
            // Size 0 twice: the empty tree has one root.
            if let Some(l) = latest.as_ref() {
                if size == 0 && l.root != *checkpoint.root() {
                    return Err(Refusal::Fork {
                        latest_size,
                        reason: "same size 0 with another root hash".to_owned(),
                    });
                }
            }
        } else if let Some(l) = latest.as_ref() {
            if old == size && l.root != *checkpoint.root() {
                return Err(Refusal::Fork {
                    latest_size,
                    reason: format!(
                        "a checkpoint of size {size} with another root hash than the one cosigned (a fork)"
                    ),
                });
            }
            verify_consistency(old, size, &request.proof, &l.root, checkpoint.root()).map_err(
                |e| {
                    Refusal::BadProof(format!(
                        "the consistency proof from size {old} to {size} does not verify: {e}"
                    ))
                },
            )?;
        }

        let line = self
            .signer
            .cosign_line(note.text(), now())
            .map_err(|e| Refusal::Internal(format!("cannot cosign: {e}")))?;
        let text = note.to_text();
        self.state
            .store(&origin, &text)
            .map_err(|e| Refusal::Internal(format!("cannot store the checkpoint: {e}")))?;
        *latest = Some(Latest {
            size,
            root: *checkpoint.root(),
            note: text,
        });
        Ok(Cosigned {
            origin,
            old_size: old,
            size,
            lines: line,
        })
    }
}
