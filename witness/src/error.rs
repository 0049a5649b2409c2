//! The crate's error type for configuration, keys and state. Refusals of
//! `add-checkpoint` requests are not errors of the witness: they are
//! [`crate::witness::Refusal`]s, answered with an HTTP status.

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What can stop the witness from starting or running. Messages name files
/// and fields, never a PIN or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file is missing, unreadable or invalid.
    #[error("configuration {path}: {reason}")]
    Config {
        /// The configuration file.
        path: String,
        /// What is wrong (the field, and why).
        reason: String,
    },
    /// The witness key cannot be created, read or used.
    #[error("witness key: {0}")]
    Key(String),
    /// The state directory or a stored checkpoint cannot be read or written,
    /// or a stored checkpoint does not verify.
    #[error("state: {0}")]
    State(String),
    /// The listener or the runtime failed.
    #[error("server: {0}")]
    Server(String),
}

impl Error {
    /// The process exit status for this error: 2 configuration, 3 key (a
    /// token refusing a PIN must not be retried by a restart loop), 4 state,
    /// 1 anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config { .. } => 2,
            Self::Key(_) => 3,
            Self::State(_) => 4,
            Self::Server(_) => 1,
        }
    }
}
