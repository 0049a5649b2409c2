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
//!   in an HSM;
//! - [`entry`]: the versioned, canonical-JSON entry format;
//! - [`replay`]: the auditor's end-to-end replay of a whole log.
//!
//! Storage, networking and clocks belong to the callers (the CA daemon and the
//! `signet audit` verifier); nothing here reads a file, a socket or the time.

#![deny(missing_docs)]

pub mod checkpoint;
pub mod entry;
mod error;
pub mod merkle;
pub mod note;
pub mod replay;
pub mod tiles;

pub use error::{CheckpointError, EntryError, Error, MerkleError, NoteError, Result, TileError};
