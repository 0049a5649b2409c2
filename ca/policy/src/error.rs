//! The crate's one error type.
//!
//! Role files are written by people and read by `signet-ca roles apply`,
//! which shows these errors verbatim, so every error that comes from a file's
//! content names the file, the line and column, and the field
//! (`roles/prod.yaml:7:19: options.hardware_key: unknown value "toch", …`).

use std::fmt;
use std::path::PathBuf;

/// `Result` with this crate's [`PolicyError`].
pub type Result<T> = std::result::Result<T, PolicyError>;

/// Where in a role file something is: the file as it was named to
/// [`crate::Policy::load`] or [`crate::Policy::parse`], the line and the
/// column (both counted from 1; the column in characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file, as the caller named it.
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A problem in the content of a role file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Where it is.
    pub location: Location,
    /// The field, as a path from the top of its document (`options.hardware_key`,
    /// `allow.logins[1]`, `allow.node_labels.env[0]`); empty when the problem
    /// is the document or the file itself.
    pub field: String,
    /// What is wrong, in words an administrator can act on.
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.location, self.message)
        } else {
            write!(f, "{}: {}: {}", self.location, self.field, self.message)
        }
    }
}

/// Everything that can go wrong loading or parsing roles and users.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The path as named.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A path cannot be used as a source of roles: not a regular file or
    /// directory, too large, a directory without role files, nesting too deep.
    #[error("{}: {reason}", path.display())]
    Unusable {
        /// The path as named.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No paths were given: loading nothing would remove every role and user.
    #[error("no role files named")]
    NothingNamed,
    /// A file's content is wrong: syntax, an unknown field, a bad value, a
    /// duplicate name, a user naming a missing role.
    #[error("{0}")]
    Invalid(Box<Invalid>),
}

impl PolicyError {
    /// The location and field of a content error, if this is one.
    pub fn invalid(&self) -> Option<&Invalid> {
        match self {
            Self::Invalid(invalid) => Some(invalid),
            _ => None,
        }
    }
}

/// A value that does not satisfy a rule, said without its location (the
/// caller adds it): used by the checks shared between the YAML parser and the
/// log's change records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    /// The field, as in [`Invalid::field`].
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
