//! `signet agent`: an ssh-agent that offers the Signet SSH certificate and
//! signs with the key on the YubiKey.
//!
//! - [`proto`]: the wire protocol, no I/O (fuzzed);
//! - [`identity`]: the certificate file, read on every request, and what to
//!   tell the user when it is missing or expired;
//! - [`key`]: who signs — [`AgentKey`], implemented by the card and, for
//!   tests, by [`SoftKey`];
//! - [`server`]: the socket loop, peer checks and signing off the I/O thread;
//! - [`card`]: the YubiKey's slot 9a as an [`AgentKey`];
//! - [`paths`]: the private runtime directory, the socket and the lock.

pub mod card;
pub mod identity;
pub mod key;
pub mod paths;
pub mod proto;
pub mod server;

use std::path::PathBuf;

pub use key::{AgentKey, KeyError, RsaHash, SoftKey};
pub use paths::AgentPaths;
pub use server::{Agent, AgentHandle, Log};

/// Why the agent could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A file or socket operation failed (what, and the error).
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The runtime directory is not a private directory of ours.
    #[error("{0} is not a directory owned by this user with mode 0700; refusing to put the agent's socket there")]
    UnsafeDir(PathBuf),
    /// Another agent holds the lock.
    #[error("another signet agent is running (pid {pid}) on {}", socket.display())]
    AlreadyRunning {
        /// Its pid, as its lock file says.
        pid: String,
        /// Its socket.
        socket: PathBuf,
    },
}
