//! The `signet-ssh/1` tunnel preamble: one line from the client naming the
//! node and the login, one line back from the proxy, then raw bytes.
//!
//! ```text
//! client → proxy   signet-ssh/1 node=web-1 login=root\n
//! proxy → client   signet-ssh/1 ok\n
//!              or  signet-ssh/1 refused login_not_allowed: your roles do not allow the login "root" on web-1\n
//! ```
//!
//! Strict on purpose, since every byte comes from the network before the
//! proxy knows anything: ASCII, fields in this order separated by one
//! space, the node a name by the roles' rules, the login a unix login by
//! the same rules sshd matching relies on, at most [`MAX_PREAMBLE`] bytes
//! with the newline. Anything else is refused with what was wrong.

use signet_policy::rules;

/// The ALPN protocol of SSH tunnels; the version is in the name.
pub const ALPN_SSH: &[u8] = b"signet-ssh/1";

/// The version word that starts every preamble and reply line.
pub const VERSION: &str = "signet-ssh/1";

/// The longest preamble line, newline included.
pub const MAX_PREAMBLE: usize = 256;

/// The longest reply line, newline included.
pub const MAX_REPLY: usize = 1024;

/// What the client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preamble {
    /// The node, by its inventory name.
    pub node: String,
    /// The unix login on it.
    pub login: String,
}

/// Why a preamble is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PreambleError {
    /// No newline within [`MAX_PREAMBLE`] bytes.
    #[error("the preamble is longer than {MAX_PREAMBLE} bytes")]
    TooLong,
    /// The connection ended before the newline.
    #[error("the connection ended inside the preamble")]
    Truncated,
    /// Not `signet-ssh/1 node=<node> login=<login>`.
    #[error("malformed preamble: {0}")]
    Malformed(String),
    /// Another version of the protocol.
    #[error("unsupported preamble version {0:?} (this proxy speaks {VERSION})")]
    Version(String),
}

impl Preamble {
    /// The line as the client sends it.
    pub fn to_line(&self) -> String {
        format!("{VERSION} node={} login={}\n", self.node, self.login)
    }

    /// Parses one line, with or without its newline (`\r\n` is refused:
    /// one spelling only).
    pub fn parse(line: &[u8]) -> Result<Preamble, PreambleError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.len() >= MAX_PREAMBLE {
            return Err(PreambleError::TooLong);
        }
        let text = std::str::from_utf8(line)
            .ok()
            .filter(|t| t.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
            .ok_or_else(|| PreambleError::Malformed("not printable ASCII".into()))?;
        let mut words = text.split(' ');
        let version = words.next().unwrap_or_default();
        if version != VERSION {
            if version.starts_with("signet-ssh/") {
                return Err(PreambleError::Version(version.to_owned()));
            }
            return Err(PreambleError::Malformed(format!(
                "expected \"{VERSION} node=<node> login=<login>\""
            )));
        }
        let field = |word: Option<&str>, key: &str| -> Result<String, PreambleError> {
            word.and_then(|w| w.strip_prefix(key))
                .and_then(|w| w.strip_prefix('='))
                .map(str::to_owned)
                .ok_or_else(|| {
                    PreambleError::Malformed(format!(
                        "expected {key}=… (\"{VERSION} node=<node> login=<login>\")"
                    ))
                })
        };
        let node = field(words.next(), "node")?;
        let login = field(words.next(), "login")?;
        if words.next().is_some() {
            return Err(PreambleError::Malformed(
                "unexpected text after login=…".into(),
            ));
        }
        rules::check_name(&node).map_err(|m| PreambleError::Malformed(format!("node: {m}")))?;
        rules::check_login(&login).map_err(|m| PreambleError::Malformed(format!("login: {m}")))?;
        Ok(Preamble { node, login })
    }
}

/// Collects a preamble from bytes as they arrive: at most [`MAX_PREAMBLE`]
/// bytes are ever held, and bytes after the newline (the start of the SSH
/// stream) are handed back untouched.
#[derive(Debug, Default)]
pub struct PreambleReader {
    buf: Vec<u8>,
}

impl PreambleReader {
    /// A reader with nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes. `Ok(None)`: the line is not complete yet. `Ok(Some((p,
    /// rest)))`: the preamble, and what followed it in `bytes`.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<(Preamble, Vec<u8>)>, PreambleError> {
        let room = MAX_PREAMBLE - self.buf.len();
        let window = &bytes[..bytes.len().min(room)];
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.buf.extend_from_slice(&window[..=i]);
                let preamble = Preamble::parse(&self.buf)?;
                Ok(Some((preamble, bytes[i + 1..].to_vec())))
            }
            None if bytes.len() >= room => Err(PreambleError::TooLong),
            None => {
                self.buf.extend_from_slice(bytes);
                Ok(None)
            }
        }
    }

    /// The connection ended: a preamble cut short.
    pub fn finish(&self) -> PreambleError {
        PreambleError::Truncated
    }
}

/// The proxy's answer to a preamble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The tunnel is open: raw bytes follow.
    Ok,
    /// Refused; the connection closes after this line.
    Refused {
        /// A stable word for scripts (`login_not_allowed`, `user_locked`, …).
        code: String,
        /// Why, for the engineer.
        message: String,
    },
}

impl Reply {
    /// The line as sent (control characters in the message become spaces;
    /// the line is cut to [`MAX_REPLY`] bytes).
    pub fn to_line(&self) -> String {
        match self {
            Self::Ok => format!("{VERSION} ok\n"),
            Self::Refused { code, message } => {
                let clean: String = message
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                let mut line = format!("{VERSION} refused {code}: {clean}");
                let mut cut = MAX_REPLY - 1;
                if line.len() > cut {
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
                line.push('\n');
                line
            }
        }
    }

    /// Parses a reply line (the client side).
    pub fn parse(line: &[u8]) -> Result<Reply, PreambleError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.len() >= MAX_REPLY {
            return Err(PreambleError::TooLong);
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| PreambleError::Malformed("reply is not UTF-8".into()))?;
        // The client shows the message on a terminal: a control character
        // (an escape sequence, a second line) is refused, never printed.
        if text.chars().any(char::is_control) {
            return Err(PreambleError::Malformed(
                "reply holds a control character".into(),
            ));
        }
        let rest = text
            .strip_prefix(VERSION)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| {
                PreambleError::Malformed(format!("reply does not start with {VERSION}"))
            })?;
        if rest == "ok" {
            return Ok(Reply::Ok);
        }
        let refused = rest
            .strip_prefix("refused ")
            .and_then(|r| r.split_once(": "))
            .filter(|(code, _)| {
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            .ok_or_else(|| {
                PreambleError::Malformed("expected ok or refused <code>: <reason>".into())
            })?;
        Ok(Reply::Refused {
            code: refused.0.to_owned(),
            message: refused.1.to_owned(),
        })
    }
}
