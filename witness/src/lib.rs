//! `signet-witness`: a C2SP tlog-witness (<https://c2sp.org/tlog-witness>)
//! for Signet's log, or any log that publishes C2SP checkpoints.
//!
//! A witness keeps, for every log it is configured for, the latest checkpoint
//! it cosigned, and cosigns a new checkpoint only if a consistency proof shows
//! that it extends that one. A log (the CA) that collects cosignatures from
//! enough independent witnesses therefore cannot show a fork or a rolled-back
//! tree to anyone relying on the cosignatures: the witnesses would have had to
//! cosign both branches. Cosignatures are C2SP tlog-cosignature
//! `cosignature/v1` (Ed25519), checked by `signet_log::witness`.
//!
//! - [`config`]: the TOML configuration;
//! - [`key`]: the witness key, in a file or a PKCS#11 token;
//! - [`state`]: the latest cosigned checkpoint per log, stored durably;
//! - [`witness`]: the checks and the cosigning, without HTTP;
//! - [`server`]: `POST /add-checkpoint` and `/healthz` over HTTP;
//! - [`protocol`]: the request and answer formats;
//! - [`client`]: the blocking client the CA uses.
//!
//! See `docs/witness.md` for running one.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
mod error;
pub mod key;
pub mod protocol;
pub mod server;
pub mod state;
pub mod witness;

pub use error::{Error, Result};
