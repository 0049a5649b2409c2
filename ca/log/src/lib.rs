//! Signet's verifiable log, as a library with no I/O.
//!
//! Every certificate Signet issues and every admin action is an [`entry::Entry`]
//! in an append-only Merkle tree. This crate holds everything needed to build
//! that log and, more importantly, to check it without trusting the CA:
//!
//! - [`merkle`]: RFC 9162 hashing, roots, inclusion and consistency proofs, and
//!   the compact range the CA appends to;
//! - [`tiles`]: the C2SP tlog-tiles layout the log is served in;
//! - [`checkpoint`]: the C2SP tlog-checkpoint tree head;
//! - [`note`]: C2SP signed notes, signed through a trait so the key can stay
//!   in an HSM, and witnesses' `cosignature/v1` cosignatures;
//! - [`witness`]: k-of-n witness policies and cosigned checkpoints;
//! - [`entry`]: the versioned, canonical-JSON entry format;
//! - [`certificate`]: precertificates, and the proof of logging a
//!   certificate carries (checked offline, e.g. by the node-side check);
//! - [`replay`]: the auditor's end-to-end replay of a whole log.
//!
//! # The whole round trip
//!
//! ```
//! use signet_log::checkpoint::{open_checkpoint, Checkpoint};
//! use signet_log::merkle::{inclusion_proof, leaf_hash, verify_inclusion, CompactRange, MemoryHashStore};
//! use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey, VerifierSet};
//!
//! // The CA's log key. In production this wraps the HSM; here, a software key.
//! struct LogKey(ed25519_dalek::SigningKey, VerifierKey);
//! impl NoteSigner for LogKey {
//!     fn name(&self) -> &str { self.1.name() }
//!     fn key_id(&self) -> KeyId { self.1.key_id() }
//!     fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
//!         use ed25519_dalek::Signer as _;
//!         Ok(self.0.sign(msg).to_bytes().to_vec())
//!     }
//! }
//! let origin = "ca.example.com/signet-log";
//! let sk = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! let vkey = VerifierKey::ed25519(origin, sk.verifying_key().as_bytes())?;
//! let log_key = LogKey(sk, vkey.clone());
//!
//! // CA: append entries (storing the subtree hashes), then sign a checkpoint.
//! let mut range = CompactRange::new();
//! let mut store = MemoryHashStore::new();
//! for entry in [b"first".as_slice(), b"second", b"third"] {
//!     range.append(leaf_hash(entry), |_, _| ())?;
//!     store.push(leaf_hash(entry));
//! }
//! let checkpoint = Checkpoint::new(origin, range.size(), range.root())?;
//! let signed = checkpoint.sign(&[&log_key])?.to_text();
//! let proof = inclusion_proof(&store, 1, range.size())?;
//!
//! // Auditor: trust only the pinned key and origin, then check the proof.
//! let trusted = VerifierSet::new(vec![VerifierKey::parse(&vkey.to_string())?])?;
//! let opened = open_checkpoint(signed.as_bytes(), origin, &trusted)?;
//! let cp = &opened.checkpoint;
//! verify_inclusion(&leaf_hash(b"second"), 1, cp.size(), &proof, cp.root())?;
//! # Ok::<(), signet_log::Error>(())
//! ```
//!
//! Storage, networking and clocks belong to the callers (the CA daemon and the
//! `signet audit` verifier); nothing here reads a file, a socket or the time.

#![deny(missing_docs)]

pub mod certificate;
pub mod checkpoint;
pub mod entry;
mod error;
pub mod merkle;
pub mod note;
pub mod replay;
pub mod tiles;
pub mod witness;

pub use error::{
    CheckpointError, EntryError, Error, MerkleError, NoteError, ProofError, Result, TileError,
    WitnessError,
};
