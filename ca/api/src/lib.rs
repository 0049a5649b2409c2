//! The CA's wire types: what the CA, the access proxy and the client say to
//! each other under `/v1/`. Types only — no I/O — so every party parses the
//! same thing the same way. (The admin socket's protocol is the CA's own
//! business and lives in signet-ca.)
//!
//! Every request type refuses unknown fields: a client that sends something
//! the CA would ignore gets an error instead of a surprise. Binary values are
//! standard padded base64 ([`B64`]), except inside WebAuthn structures, which
//! keep the base64url of the WebAuthn JSON encoding. Errors are an
//! [`ApiError`]: a stable machine-readable [`ErrorCode`] and a message for
//! people. `docs/api.md` shows an example of every call.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
pub mod certs;
pub mod enroll;
mod error;
pub mod health;
pub mod log;
pub mod nodes;
pub mod proxy;

pub use error::{ApiError, ErrorCode};
/// Bytes as standard padded base64: the log's own field type, so an entry
/// and an answer carrying it encode bytes the same way.
pub use signet_log::entry::Base64Bytes as B64;
/// The WebAuthn structures inside requests and responses.
pub use signet_webauthn::wire as webauthn;

/// The prefix of every versioned route.
pub const API_PREFIX: &str = "/v1";
