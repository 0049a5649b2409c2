//! Signet's access proxy, its core without I/O: the `signet-ssh/1` tunnel
//! preamble and reply ([`preamble`]), who a client certificate names
//! ([`identity`]), and the per-connection decision against the CA's live
//! view ([`decide`]).
//!
//! The proxy is the only part of Signet engineers reach. A tunnel is a TLS
//! connection with ALPN `signet-ssh/1` and a client certificate from the
//! CA (its key on the engineer's YubiKey); the client names the node and
//! login in a one-line preamble; the proxy decides with the view the CA
//! streams to it (nodes, each user's access by role, locks) and either
//! answers `ok` and copies bytes both ways to the node's sshd, or answers
//! one line with the reason and closes. It fails closed: before its first
//! snapshot from the CA it refuses every tunnel, and after `stale_after`
//! without a word from the CA it refuses new ones.
//!
//! The daemon around that core: [`serve`] (the port), [`forward`] (the
//! CA's API on the same port, ALPN `http/1.1`), [`tls`] (the server
//! certificate and its renewal), [`feed`] (the CA's live view),
//! [`metrics`] (`/metrics`, `/healthz`), [`join`] and [`config`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod decide;
pub mod feed;
pub mod forward;
pub mod identity;
pub mod join;
pub mod metrics;
pub mod preamble;
pub mod serve;
pub mod tls;

pub use decide::{decide, still_allowed, to_cut, Refusal, RefusalCode};
pub use identity::Identity;
pub use preamble::{Preamble, PreambleError, Reply, ALPN_SSH};
