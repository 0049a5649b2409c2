//! Releasing checkpoints only once the witness policy is met.
//!
//! After a batch is committed and the high-water mark has moved, the store
//! sends its checkpoint to every configured witness (C2SP tlog-witness
//! `add-checkpoint`, with a consistency proof from the size that witness
//! last cosigned) in parallel, and waits until `threshold` of them have
//! answered with a cosignature that verifies — or until so many have failed
//! that the threshold can no longer be met, which fails the batch closed: its
//! entries stay in the log (which only ever holds more than was handed out),
//! but no certificate proven against that checkpoint leaves the CA.
//!
//! Witnesses slower than the `threshold`-th one are not waited for: their
//! answers still update what this CA knows of them, so the next batch sends
//! them the right consistency proof.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use signet_log::merkle::Hash;
use signet_log::note::VerifierKey;
use signet_log::witness::{append_cosignatures, Witness, WitnessPolicy};

use super::{lock, SignedCheckpoint};
use crate::{Error, Result};

/// What one witness answered to an `add-checkpoint` request.
#[derive(Debug)]
pub enum CallError {
    /// The witness's latest cosigned checkpoint has another size (HTTP 409).
    Conflict {
        /// The size it has.
        witness_size: u64,
    },
    /// Anything else: refused (with the witness's reason), unreachable,
    /// timed out, malformed answer.
    Failed(String),
}

/// How the store reaches one witness: the HTTP client in production, kept
/// behind a trait so the store does not depend on a transport.
pub trait WitnessEndpoint: Send + Sync {
    /// Sends `add-checkpoint`: the size this CA believes the witness has,
    /// the consistency proof from it to the checkpoint, and the signed
    /// checkpoint note. Returns the witness's cosignature lines.
    fn add_checkpoint(
        &self,
        old_size: u64,
        proof: &[Hash],
        note: &[u8],
    ) -> std::result::Result<Vec<String>, CallError>;
}

/// Makes consistency proofs over the committed tree (old size, new size).
pub type ProofSource<'a> = &'a (dyn Fn(u64, u64) -> Result<Vec<Hash>> + Sync);

/// One witness's state as the health check reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessState {
    /// The witness's display name from the policy.
    pub name: String,
    /// Whether its last answer was a valid cosignature.
    pub ok: bool,
    /// Why not, when it was not.
    pub reason: Option<String>,
    /// The size it last cosigned, as far as this CA knows.
    pub size: Option<u64>,
    /// When it last answered with a valid cosignature.
    pub last_cosigned: Option<SystemTime>,
}

struct Member {
    witness: Witness,
    /// A policy of this witness alone: checks its answers.
    alone: WitnessPolicy,
    log_key: VerifierKey,
    endpoint: Box<dyn WitnessEndpoint>,
    state: Mutex<WitnessState>,
}

/// The configured witnesses, their policy and what this CA knows of each.
pub struct Witnesses {
    policy: WitnessPolicy,
    log_key: VerifierKey,
    members: Vec<Arc<Member>>,
    /// Whether the last round met the policy, and why not.
    last_round: Mutex<Option<String>>,
}

impl std::fmt::Debug for Witnesses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witnesses")
            .field("threshold", &self.policy.threshold())
            .field("witnesses", &self.states())
            .finish()
    }
}

impl Witnesses {
    /// Witnesses for `policy`, each reached through the endpoint
    /// `connect` makes from its configuration. `log_key` verifies the
    /// checkpoints they cosign.
    pub fn new(
        policy: WitnessPolicy,
        log_key: VerifierKey,
        mut connect: impl FnMut(&Witness) -> Result<Box<dyn WitnessEndpoint>>,
    ) -> Result<Self> {
        let members = policy
            .witnesses()
            .iter()
            .map(|witness| {
                Ok(Arc::new(Member {
                    alone: WitnessPolicy::new(1, vec![witness.clone()])
                        .map_err(|e| Error::Witness(e.to_string()))?,
                    log_key: log_key.clone(),
                    endpoint: connect(witness)?,
                    state: Mutex::new(WitnessState {
                        name: witness.name().to_owned(),
                        ok: false,
                        reason: Some("not asked yet".into()),
                        size: None,
                        last_cosigned: None,
                    }),
                    witness: witness.clone(),
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            policy,
            log_key,
            members,
            last_round: Mutex::new(None),
        })
    }

    /// The policy checkpoints are released under.
    pub fn policy(&self) -> &WitnessPolicy {
        &self.policy
    }

    /// Each witness's state, in configuration order.
    pub fn states(&self) -> Vec<WitnessState> {
        self.members
            .iter()
            .map(|m| lock(&m.state).clone())
            .collect()
    }

    /// Why the last round did not meet the policy, or `None` if it did (or
    /// none ran yet): the health check's signal.
    pub fn failure(&self) -> Option<String> {
        lock(&self.last_round).clone()
    }

    /// Collects cosignatures on `checkpoint` until the policy is met and
    /// returns it with their lines added; fails once the policy can no
    /// longer be met. `proofs` makes consistency proofs over the committed
    /// tree (it may be called from the witnesses' threads).
    pub fn cosign(
        &self,
        checkpoint: &SignedCheckpoint,
        proofs: ProofSource<'_>,
    ) -> Result<SignedCheckpoint> {
        let outcome = self.round(checkpoint, proofs);
        *lock(&self.last_round) = outcome.as_ref().err().map(|e| e.to_string());
        outcome
    }

    fn round(
        &self,
        checkpoint: &SignedCheckpoint,
        proofs: ProofSource<'_>,
    ) -> Result<SignedCheckpoint> {
        let threshold = self.policy.threshold();
        if threshold == 0 {
            return Ok(checkpoint.clone());
        }
        // Proofs are made here, on this thread, for every size a witness is
        // known to be at: the workers then only talk to their witness.
        let (tx, rx) = crossbeam_channel::unbounded();
        let note = Arc::new(checkpoint.note.clone().into_bytes());
        let (size, root) = (checkpoint.size, checkpoint.root);
        std::thread::scope(|scope| {
            for member in &self.members {
                let tx = tx.clone();
                let note = note.clone();
                let member = member.clone();
                scope.spawn(move || {
                    let answer = member.ask(size, root, &note, proofs);
                    let _ = tx.send((member.witness.name().to_owned(), answer));
                });
            }
            drop(tx);
            self.collect(checkpoint, threshold, rx)
        })
    }

    /// Gathers answers until `threshold` cosignatures verify or the
    /// remaining witnesses cannot make up the difference.
    fn collect(
        &self,
        checkpoint: &SignedCheckpoint,
        threshold: usize,
        answers: crossbeam_channel::Receiver<(String, std::result::Result<Vec<String>, String>)>,
    ) -> Result<SignedCheckpoint> {
        let total = self.members.len();
        let mut lines: Vec<String> = Vec::new();
        let mut cosigned = 0usize;
        let mut failures: Vec<String> = Vec::new();
        for (name, answer) in answers.iter() {
            match answer {
                Ok(witness_lines) => {
                    lines.extend(witness_lines);
                    cosigned += 1;
                    if cosigned >= threshold {
                        break;
                    }
                }
                Err(reason) => {
                    failures.push(format!("{name}: {reason}"));
                    if total - failures.len() < threshold {
                        break;
                    }
                }
            }
        }
        if cosigned < threshold {
            return Err(Error::Witness(format!(
                "checkpoint {} was not released: {} of {} witnesses must cosign, {} did ({})",
                checkpoint.size,
                threshold,
                total,
                cosigned,
                failures.join("; ")
            )));
        }
        let note = append_cosignatures(&checkpoint.note, &lines).map_err(|e| {
            Error::Witness(format!(
                "the witnesses answered lines that are not cosignatures: {e}"
            ))
        })?;
        // The assembled note is checked as a node or auditor will check it.
        self.policy
            .verify_checkpoint(note.as_bytes(), &self.log_key)
            .map_err(|e| Error::Witness(format!("the cosigned checkpoint does not verify: {e}")))?;
        Ok(checkpoint.with_note(note))
    }
}

impl Member {
    /// Asks this witness to cosign; retries once with the size the witness
    /// says it has. Verifies the answer before counting it and records the
    /// outcome.
    fn ask(
        &self,
        size: u64,
        root: Hash,
        note: &[u8],
        proofs: ProofSource<'_>,
    ) -> std::result::Result<Vec<String>, String> {
        let result = self.ask_once(size, root, note, proofs);
        let mut state = lock(&self.state);
        match &result {
            Ok(_) => {
                state.ok = true;
                state.reason = None;
                state.size = Some(size);
                state.last_cosigned = Some(SystemTime::now());
            }
            Err(reason) => {
                state.ok = false;
                state.reason = Some(reason.clone());
                log::warn!(
                    "witness {} did not cosign checkpoint {size}: {reason}",
                    self.witness.name()
                );
            }
        }
        result
    }

    fn ask_once(
        &self,
        size: u64,
        root: Hash,
        note: &[u8],
        proofs: ProofSource<'_>,
    ) -> std::result::Result<Vec<String>, String> {
        let known = lock(&self.state).size;
        let mut old = known.unwrap_or(0);
        for attempt in 0..2 {
            if old > size {
                return Err(format!(
                    "it has cosigned {old} entries of this log but this log has {size}: the \
                     log was rolled back (a store restored from a backup?) or forked"
                ));
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                proofs(old, size).map_err(|e| format!("no consistency proof {old}→{size}: {e}"))?
            };
            match self.endpoint.add_checkpoint(old, &proof, note) {
                Ok(lines) => return self.check_lines(lines, note, size, root),
                Err(CallError::Conflict { witness_size }) if attempt == 0 => {
                    lock(&self.state).size = Some(witness_size);
                    old = witness_size;
                }
                Err(CallError::Conflict { witness_size }) => {
                    return Err(format!(
                        "it refuses this checkpoint of size {size} against the one it cosigned \
                         at size {witness_size}: another tree of the same size (a fork, or a \
                         store restored from a backup)"
                    ))
                }
                Err(CallError::Failed(reason)) => return Err(reason),
            }
        }
        Err("no answer".into())
    }

    /// Keeps only the lines this witness's key made and checks them.
    fn check_lines(
        &self,
        lines: Vec<String>,
        note: &[u8],
        size: u64,
        root: Hash,
    ) -> std::result::Result<Vec<String>, String> {
        let text = std::str::from_utf8(note).map_err(|_| "the checkpoint is not UTF-8")?;
        let note = append_cosignatures(text, &lines)
            .map_err(|e| format!("it answered lines that are not cosignatures: {e}"))?;
        let checked = self
            .alone
            .verify_checkpoint(note.as_bytes(), &self.log_key)
            .map_err(|e| format!("its answer does not verify: {e}"))?;
        if checked.size() != size || *checked.root() != root {
            return Err("it cosigned another checkpoint".into());
        }
        Ok(lines)
    }
}

/// The witnesses `config` lists, reached over HTTP, or `None` when it lists
/// none.
pub fn from_config(
    config: &crate::config::Config,
    log_key: &VerifierKey,
) -> Result<Option<Arc<Witnesses>>> {
    let Some(policy) = &config.witnesses else {
        return Ok(None);
    };
    if policy.is_none() {
        return Ok(None);
    }
    let timeout = config.log.witness_timeout;
    let witnesses = Witnesses::new(policy.clone(), log_key.clone(), |witness| {
        let url = witness.url().ok_or_else(|| Error::Config {
            path: "witnesses".into(),
            reason: format!(
                "witness {:?} has no url: the CA needs one to ask it to cosign",
                witness.name()
            ),
        })?;
        Ok(Box::new(HttpWitness::new(url, timeout)) as Box<dyn WitnessEndpoint>)
    })?;
    Ok(Some(Arc::new(witnesses)))
}

/// A witness reached over HTTP (C2SP tlog-witness), through one shared
/// keep-alive pool.
struct HttpWitness {
    url: String,
    timeout: Duration,
}

impl HttpWitness {
    fn new(url: &str, timeout: Duration) -> Self {
        Self {
            url: url.to_owned(),
            timeout,
        }
    }
}

impl WitnessEndpoint for HttpWitness {
    fn add_checkpoint(
        &self,
        old_size: u64,
        proof: &[Hash],
        note: &[u8],
    ) -> std::result::Result<Vec<String>, CallError> {
        use signet_witness::client::ClientError;
        let note = std::str::from_utf8(note)
            .map_err(|_| CallError::Failed("the checkpoint is not UTF-8".into()))?;
        signet_witness::client::add_checkpoint(&self.url, old_size, proof, note, self.timeout)
            .map_err(|e| match e {
                ClientError::Conflict { witness_size } => CallError::Conflict { witness_size },
                other => CallError::Failed(other.to_string()),
            })
    }
}
