//! The one error type of the HSM layer.

use std::path::PathBuf;

/// Everything that can go wrong talking to a token.
///
/// Messages name what failed and what to do; they never carry a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The PIN could not be read from where the configuration says it is.
    #[error("{source_name} {reason}")]
    PinSource {
        /// Where the PIN was looked for (file path or variable name).
        source_name: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The PKCS#11 module file does not exist.
    #[error("PKCS#11 module {0} does not exist")]
    ModuleMissing(PathBuf),
    /// The file exists but could not be loaded as a PKCS#11 module.
    #[error("{path} is not a loadable PKCS#11 module ({detail})")]
    ModuleLoad {
        /// The module path from the configuration.
        path: PathBuf,
        /// What the loader said.
        detail: String,
    },
    /// No slot holds a token matching the configured label or URI.
    #[error("no token matches {wanted}; tokens present: {present}")]
    TokenNotFound {
        /// The label or URI that was configured.
        wanted: String,
        /// Labels of the tokens that are present, to help fix the config.
        present: String,
    },
    /// More than one token matches the selector: refuse to guess.
    #[error("{count} tokens match {wanted}; make the label or URI specific")]
    TokenAmbiguous {
        /// The label or URI that was configured.
        wanted: String,
        /// How many matched.
        count: usize,
    },
    /// Initialisation was asked for a label that an initialised token already has.
    #[error("a token labelled {0:?} already exists; refusing to initialise another")]
    TokenExists(String),
    /// The module offers no uninitialised slot to create a token in.
    #[error("the module has no free (uninitialised) slot for a new token")]
    NoFreeSlot,
    /// A PKCS#11 URI (RFC 7512) could not be parsed.
    #[error("invalid PKCS#11 URI: {0}")]
    InvalidUri(String),
    /// The token refused the PIN. Never retried: retries lock real tokens.
    #[error("the token refused the PIN (not retried: repeated attempts lock the token)")]
    PinIncorrect,
    /// The token's user PIN is locked.
    #[error("the token's user PIN is locked; unlock it with the SO PIN before retrying")]
    PinLocked,
    /// The token cannot do what the configured key type needs.
    #[error("the token cannot {operation} {algorithm} keys: it lacks {mechanism}")]
    MechanismUnsupported {
        /// "generate" or "sign with".
        operation: &'static str,
        /// The key type.
        algorithm: crate::KeyAlgorithm,
        /// The missing PKCS#11 mechanism.
        mechanism: &'static str,
    },
    /// No key with this label exists on the token.
    #[error("no key labelled {0:?} on the token")]
    KeyNotFound(String),
    /// Several objects of one class carry this label: refuse to guess which.
    #[error(
        "{count} keys on the token are labelled {label:?}; remove the ambiguity before using it"
    )]
    KeyAmbiguous {
        /// The key label.
        label: String,
        /// How many objects matched.
        count: usize,
    },
    /// Generation was asked for a label that already exists; keys are never replaced.
    #[error("a key labelled {0:?} already exists on the token; refusing to generate another")]
    KeyExists(String),
    /// A key with this label exists but is of another type than expected.
    #[error("key {label:?} on the token is {found}, but the configuration asks for {wanted}")]
    KeyTypeMismatch {
        /// The key label.
        label: String,
        /// What the token holds.
        found: String,
        /// What the configuration asks for.
        wanted: crate::KeyAlgorithm,
    },
    /// A key on the token does not have the protections every CA key must have.
    #[error("key {label:?} is not protected as required: {problem}")]
    KeyNotProtected {
        /// The key label.
        label: String,
        /// Which attribute is wrong.
        problem: &'static str,
    },
    /// The token returned something malformed (bad point, bad signature size…).
    #[error("the token returned a malformed {0}")]
    MalformedTokenData(&'static str),
    /// A PKCS#11 call failed.
    #[error("PKCS#11 {function} failed: {rv}")]
    Pkcs11 {
        /// The PKCS#11 function.
        function: String,
        /// The return value.
        rv: String,
    },
    /// The session pool has shut down (the token handle was dropped).
    #[error("the HSM session pool has stopped")]
    PoolStopped,
    /// Public key material could not be encoded.
    #[error("cannot encode public key: {0}")]
    Encoding(String),
}

/// Result with the HSM layer's error.
pub type Result<T> = std::result::Result<T, Error>;

impl From<cryptoki::error::Error> for Error {
    fn from(err: cryptoki::error::Error) -> Self {
        use cryptoki::error::{Error as CkError, RvError};
        match err {
            CkError::Pkcs11(RvError::PinIncorrect, _) => Self::PinIncorrect,
            CkError::Pkcs11(RvError::PinLocked, _) => Self::PinLocked,
            CkError::Pkcs11(rv, function) => Self::Pkcs11 {
                function: function.to_string(),
                rv: rv.to_string(),
            },
            other => Self::Pkcs11 {
                function: "call".into(),
                rv: other.to_string(),
            },
        }
    }
}
