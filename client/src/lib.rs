//! The Signet client library, behind the `signet` binary.
//!
//! For now it holds the auditor's side of the signing log, [`audit`]: fetch
//! a log (a tile directory or an HTTP prefix), verify it end to end against
//! a pinned key, and answer questions from the verified log. It depends on
//! `signet-log` and an HTTP client only, never on the CA.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod audit;
pub mod card;
pub mod login;
pub mod profile;
pub mod tunnel;
pub mod ui;
