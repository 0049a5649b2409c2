//! `signet audit`: verifying Signet's signing log without trusting the CA.
//!
//! - [`source`]: where the log's files come from (a directory or `http(s)://`);
//! - [`trust`]: the pinned log key and origin, and opening checkpoints;
//! - [`fetch`]: tiles and bundles, and proofs computed from tiles;
//! - [`verify`]: the whole-log check every answer rests on;
//! - [`state`]: the last fully verified checkpoint, remembered per origin;
//! - [`certfile`]: reading a certificate to prove;
//! - [`query`]: search filters, times, JSON output.
//!
//! The flow: fetch the checkpoint and open it with the pinned key; load the
//! earlier checkpoint (given, or remembered); replay the log with
//! [`verify::verify_log`]; only then act on what it saw.

pub mod certfile;
mod error;
pub mod fetch;
mod pem;
pub mod query;
pub mod source;
pub mod state;
pub mod trust;
pub mod verify;

pub use error::{AuditError, ErrorClass, Result, VerifyFailure};
