//! The crate's error type.

use std::path::PathBuf;

/// Errors of the virtual card, its persistence and the PC/SC harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file, socket or child process failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A state file or attestation root could not be parsed.
    #[error("invalid {what} in {path}: {detail}")]
    Invalid {
        /// Which kind of file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// Key generation or certificate building failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// A configuration value (firmware version, serial, address) is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The PC/SC environment (pcscd, readers) did not come up as expected.
    #[error("pc/sc harness: {0}")]
    Harness(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Malformed BER-TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// The input ends inside a tag, length or value.
    #[error("truncated TLV")]
    Truncated,
    /// A tag longer than three bytes.
    #[error("tag too long")]
    TagTooLong,
    /// An indefinite or over-long length.
    #[error("unsupported length encoding")]
    BadLength,
    /// Bytes after the expected single TLV.
    #[error("trailing bytes after TLV")]
    TrailingBytes,
}
