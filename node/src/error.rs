//! The node check's one error type. Every message is one line: sshd puts
//! the command's stderr in its log, where the operator reads why a login
//! was refused.

use std::path::PathBuf;

/// `Result` with [`NodeError`].
pub type Result<T> = std::result::Result<T, NodeError>;

/// Why `signet-node` refused (it then prints no principal).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The command line is not `principals --config FILE USER TYPE CERT`.
    #[error("usage: signet-node principals --config FILE USER TYPE CERT_BASE64 ({0})")]
    Usage(String),
    /// The configuration cannot be read or is invalid (the reason names
    /// the field).
    #[error("config {}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The configuration, or a directory above it, could be changed by
    /// someone else than its owner.
    #[error("config {}: unsafe ownership or permissions (sshd's rule for the files its commands trust): {reason}", path.display())]
    UnsafeConfig {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key sshd passed is not an OpenSSH certificate.
    #[error("refused: the key is not a readable OpenSSH certificate: {0}")]
    NotACertificate(String),
    /// The certificate was refused (the reason says why).
    #[error("refused certificate key_id={key_id:?} serial={serial} for user {user:?}: {reason}")]
    Refused {
        /// The certificate's key id (what sshd logs too).
        key_id: String,
        /// The certificate's serial number.
        serial: u64,
        /// The target user sshd asked about.
        user: String,
        /// Why.
        reason: String,
    },
}
