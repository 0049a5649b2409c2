//! The Signet certificate authority: configuration, the key ceremony,
//! certificate profiles, issuance and durable storage.
//!
//! Issuance, policy and storage are plain library code; the binary adds
//! the command line (and later the HTTP API) on top.
#![deny(missing_docs)]

pub mod admin;
pub mod authority;
pub mod bench;
pub mod ca_keys;
pub mod config;
pub mod daemon_config;
pub mod directory;
mod error;
pub mod keys;
pub mod log_signer;
pub mod profile;
pub mod request;
pub mod serve;
pub mod store;
pub mod touch;
pub mod x509;

pub use error::{Error, ExitClass, Result};
