//! The CA's error type. Each variant maps to an exit code class so scripts
//! can tell a bad request from a broken HSM.

use std::path::PathBuf;

/// Everything the CA can refuse or fail at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file is unreadable or invalid.
    #[error("config {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A request argument is malformed (names the field).
    #[error("{field}: {reason}")]
    BadRequest {
        /// The field or flag, e.g. `--ttl`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The request is well-formed but policy refuses it (e.g. TTL above the maximum).
    #[error("refused by policy: {0}")]
    Policy(String),
    /// The token failed or refused.
    #[error(transparent)]
    Hsm(#[from] signet_hsm::Error),
    /// The HSM failed to sign (the certificate builders keep only its
    /// message; a faulty signature stays [`Error::Hsm`]).
    #[error("the HSM could not sign: {0}")]
    Signing(String),
    /// A YubiKey's attestation of a CA key did not hold (unknown device
    /// root, another key, an imported key, other policies): the key is not
    /// used and nothing is logged.
    #[error("attestation: {0}")]
    Attestation(String),
    /// The CA is not initialised (keys or root certificate missing).
    #[error("the CA is not initialised: {0} (run `signet-ca init`)")]
    NotInitialised(String),
    /// The issuance store failed.
    #[error("store: {0}")]
    Store(String),
    /// The shared store (PostgreSQL) is out of reach: the CA issues nothing
    /// until it is back, and recovers by itself when it is.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    /// The log format refused an entry.
    #[error("log entry: {0}")]
    Log(#[from] signet_log::Error),
    /// Building or encoding a certificate failed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The log store failed its integrity check: the CA will not issue.
    #[error("log integrity check failed{}: {problem}; the CA refuses to issue until the store is restored", index.map(|i| format!(" at index {i}")).unwrap_or_default())]
    Integrity {
        /// The first bad index, if one can be named.
        index: Option<u64>,
        /// What is wrong.
        problem: String,
    },
    /// The witness policy was not met: the checkpoint (and every
    /// certificate proven against it) is held back.
    #[error("witnesses: {0}")]
    Witness(String),
    /// A file could not be written or read.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
}

/// Result with the CA's error.
pub type Result<T> = std::result::Result<T, Error>;

/// Exit codes of `signet-ca`, documented in its `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    /// 1: an internal failure (store, encoding).
    Internal = 1,
    /// 2: bad usage, configuration or request.
    Usage = 2,
    /// 3: the HSM is unreachable or refused (module, token, PIN, mechanism).
    Hsm = 3,
    /// 4: refused by policy.
    Policy = 4,
    /// 5: the log failed its integrity check.
    Integrity = 5,
    /// 6: the witnesses did not cosign (down, or refusing the checkpoint).
    Witness = 6,
}

impl Error {
    /// The exit code class of this error.
    pub fn exit_class(&self) -> ExitClass {
        match self {
            Self::Config { .. } | Self::BadRequest { .. } | Self::NotInitialised(_) => {
                ExitClass::Usage
            }
            Self::Policy(_) => ExitClass::Policy,
            Self::Integrity { .. } => ExitClass::Integrity,
            Self::Witness(_) => ExitClass::Witness,
            Self::Hsm(_) | Self::Signing(_) | Self::Attestation(_) => ExitClass::Hsm,
            Self::Store(_)
            | Self::StoreUnavailable(_)
            | Self::Log(_)
            | Self::Certificate(_)
            | Self::File { .. } => ExitClass::Internal,
        }
    }

    pub(crate) fn bad(field: &'static str, reason: impl Into<String>) -> Self {
        Self::BadRequest {
            field,
            reason: reason.into(),
        }
    }
}

/// What the HSM said when a certificate builder's signer failed, found in
/// the builder error's sources: the builders wrap it (x509-cert) or drop it
/// (ssh-key, hence [`crate::authority`]'s adapter).
pub(crate) fn signing_failure(err: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(hsm) = e.downcast_ref::<signet_hsm::Error>() {
            return Some(match hsm {
                signet_hsm::Error::FaultySignature { key } => {
                    Error::Hsm(signet_hsm::Error::FaultySignature { key: key.clone() })
                }
                other => Error::Signing(other.to_string()),
            });
        }
        current = e.source();
    }
    None
}
