//! The ssh-agent wire protocol: messages in, messages out, no I/O.
//!
//! Only what the Signet agent answers is parsed (draft-ietf-sshm-ssh-agent,
//! OpenSSH's PROTOCOL.agent): list identities, sign, and the
//! `session-bind@openssh.com` extension. Every other request is
//! [`Request::Unsupported`] and gets `SSH_AGENT_FAILURE`.
//!
//! Why not a crate: `ssh-agent-lib` 0.6 depends on `ssh-key` 0.6 and with
//! it a second RustCrypto stack (der 0.7, signature 2) whose types do not
//! interoperate with the workspace's `ssh-key` 0.7. The three messages the
//! agent needs are a few lines each on `ssh-encoding` (re-exported by
//! `ssh-key`), and this module is fuzzed (`fuzz/fuzz_targets/agent.rs`).

use ssh_key::encoding::{Decode, Encode, Reader};

/// The longest message (length prefix excluded) the agent reads; longer
/// ones close the connection. OpenSSH's ssh-agent uses the same bound.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// `SSH_AGENT_FAILURE`.
pub const SSH_AGENT_FAILURE: u8 = 5;
/// `SSH_AGENT_SUCCESS`.
pub const SSH_AGENT_SUCCESS: u8 = 6;
/// `SSH_AGENTC_REQUEST_IDENTITIES`.
pub const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
/// `SSH_AGENT_IDENTITIES_ANSWER`.
pub const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
/// `SSH_AGENTC_SIGN_REQUEST`.
pub const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
/// `SSH_AGENT_SIGN_RESPONSE`.
pub const SSH_AGENT_SIGN_RESPONSE: u8 = 14;
/// `SSH_AGENTC_EXTENSION`.
pub const SSH_AGENTC_EXTENSION: u8 = 27;

/// Sign flag: an RSA key signs with SHA-256 (`rsa-sha2-256`).
pub const SSH_AGENT_RSA_SHA2_256: u32 = 2;
/// Sign flag: an RSA key signs with SHA-512 (`rsa-sha2-512`).
pub const SSH_AGENT_RSA_SHA2_512: u32 = 4;

/// The extension OpenSSH's ssh sends to bind a connection to a host.
pub const SESSION_BIND: &str = "session-bind@openssh.com";

/// Why a message could not be read. The connection is closed: a client that
/// sends malformed messages is not one the agent keeps talking to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// The length prefix is zero or above [`MAX_MESSAGE_LEN`].
    #[error("message length {0} is outside 1..={MAX_MESSAGE_LEN}")]
    Length(u32),
    /// A field is truncated, over-long or not what its type needs.
    #[error("malformed {message} message: {reason}")]
    Malformed {
        /// The message being read.
        message: &'static str,
        /// What was wrong, from the decoder.
        reason: String,
    },
}

/// A request from a client, parsed.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// `SSH_AGENTC_REQUEST_IDENTITIES`.
    RequestIdentities,
    /// `SSH_AGENTC_SIGN_REQUEST`.
    Sign {
        /// The key to sign with, as the client names it (a key or certificate blob).
        key_blob: Vec<u8>,
        /// The data to sign (for ssh, the session's authentication request).
        data: Vec<u8>,
        /// `SSH_AGENT_RSA_SHA2_*` bits.
        flags: u32,
    },
    /// `session-bind@openssh.com`: which host this connection authenticates to.
    SessionBind(SessionBind),
    /// An extension the agent does not implement (its name).
    UnsupportedExtension(String),
    /// Any other message type (its number); the body is not read.
    Unsupported(u8),
}

/// The body of `session-bind@openssh.com`.
#[derive(Debug, PartialEq, Eq)]
pub struct SessionBind {
    /// The server's host key blob.
    pub host_key: Vec<u8>,
    /// The SSH session identifier (exchange hash).
    pub session_id: Vec<u8>,
    /// The server's signature over the session identifier.
    pub signature: Vec<u8>,
    /// Whether the connection forwards this agent to that host.
    pub forwarding: bool,
}

/// Checks a message's 4-byte length prefix and returns the body length.
pub fn body_len(prefix: [u8; 4]) -> Result<usize, ProtoError> {
    let len = u32::from_be_bytes(prefix);
    match usize::try_from(len) {
        Ok(n) if (1..=MAX_MESSAGE_LEN).contains(&n) => Ok(n),
        _ => Err(ProtoError::Length(len)),
    }
}

fn malformed(message: &'static str) -> impl Fn(ssh_key::encoding::Error) -> ProtoError {
    move |e| ProtoError::Malformed {
        message,
        reason: e.to_string(),
    }
}

impl Request {
    /// Parses one message body (without its length prefix). Known messages
    /// must be exactly their fields: trailing bytes are malformed.
    pub fn decode(body: &[u8]) -> Result<Self, ProtoError> {
        let Some((&kind, mut rest)) = body.split_first() else {
            return Err(ProtoError::Length(0));
        };
        match kind {
            SSH_AGENTC_REQUEST_IDENTITIES => {
                rest.ensure_finished()
                    .map_err(malformed("request-identities"))?;
                Ok(Self::RequestIdentities)
            }
            SSH_AGENTC_SIGN_REQUEST => {
                let m = malformed("sign-request");
                let key_blob = Vec::<u8>::decode(&mut rest).map_err(&m)?;
                let data = Vec::<u8>::decode(&mut rest).map_err(&m)?;
                let flags = u32::decode(&mut rest).map_err(&m)?;
                rest.ensure_finished().map_err(&m)?;
                Ok(Self::Sign {
                    key_blob,
                    data,
                    flags,
                })
            }
            SSH_AGENTC_EXTENSION => {
                let name = String::decode(&mut rest).map_err(malformed("extension"))?;
                if name != SESSION_BIND {
                    // Its contents are the extension's own; not read.
                    return Ok(Self::UnsupportedExtension(name));
                }
                let m = malformed(SESSION_BIND);
                let host_key = Vec::<u8>::decode(&mut rest).map_err(&m)?;
                let session_id = Vec::<u8>::decode(&mut rest).map_err(&m)?;
                let signature = Vec::<u8>::decode(&mut rest).map_err(&m)?;
                let forwarding = bool::decode(&mut rest).map_err(&m)?;
                rest.ensure_finished().map_err(&m)?;
                Ok(Self::SessionBind(SessionBind {
                    host_key,
                    session_id,
                    signature,
                    forwarding,
                }))
            }
            other => Ok(Self::Unsupported(other)),
        }
    }
}

/// A reply to a client, ready to encode.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// `SSH_AGENT_FAILURE`.
    Failure,
    /// `SSH_AGENT_SUCCESS`.
    Success,
    /// `SSH_AGENT_IDENTITIES_ANSWER`: (key blob, comment) pairs.
    Identities(Vec<(Vec<u8>, String)>),
    /// `SSH_AGENT_SIGN_RESPONSE`: the encoded SSH signature.
    Signature(Vec<u8>),
}

impl Response {
    /// The message with its length prefix, as written to the socket.
    pub fn encode(&self) -> Result<Vec<u8>, ssh_key::encoding::Error> {
        let mut body = Vec::new();
        match self {
            Self::Failure => SSH_AGENT_FAILURE.encode(&mut body)?,
            Self::Success => SSH_AGENT_SUCCESS.encode(&mut body)?,
            Self::Identities(keys) => {
                SSH_AGENT_IDENTITIES_ANSWER.encode(&mut body)?;
                u32::try_from(keys.len())
                    .map_err(|_| ssh_key::encoding::Error::Length)?
                    .encode(&mut body)?;
                for (blob, comment) in keys {
                    blob.as_slice().encode(&mut body)?;
                    comment.as_str().encode(&mut body)?;
                }
            }
            Self::Signature(signature) => {
                SSH_AGENT_SIGN_RESPONSE.encode(&mut body)?;
                signature.as_slice().encode(&mut body)?;
            }
        }
        let mut message = Vec::with_capacity(body.len() + 4);
        body.as_slice().encode(&mut message)?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(bytes: &[u8]) -> Vec<u8> {
        let mut v = (bytes.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn lengths_outside_the_bounds_are_refused() {
        assert_eq!(body_len([0, 0, 0, 0]), Err(ProtoError::Length(0)));
        assert_eq!(body_len([0, 4, 0, 1]), Err(ProtoError::Length(0x40001)));
        assert_eq!(body_len([0xff; 4]), Err(ProtoError::Length(u32::MAX)));
        assert_eq!(body_len([0, 4, 0, 0]), Ok(MAX_MESSAGE_LEN));
        assert_eq!(body_len([0, 0, 0, 1]), Ok(1));
    }

    #[test]
    fn a_sign_request_is_read_field_by_field() {
        let mut body = vec![SSH_AGENTC_SIGN_REQUEST];
        body.extend(string(b"key"));
        body.extend(string(b"data"));
        body.extend(4u32.to_be_bytes());
        assert_eq!(
            Request::decode(&body),
            Ok(Request::Sign {
                key_blob: b"key".to_vec(),
                data: b"data".to_vec(),
                flags: 4
            })
        );
        // Trailing bytes, a truncated flag word, an over-long string: malformed.
        let mut trailing = body.clone();
        trailing.push(0);
        assert!(matches!(
            Request::decode(&trailing),
            Err(ProtoError::Malformed { .. })
        ));
        assert!(matches!(
            Request::decode(&body[..body.len() - 1]),
            Err(ProtoError::Malformed { .. })
        ));
        let mut long = vec![SSH_AGENTC_SIGN_REQUEST];
        long.extend(0xffff_fff0u32.to_be_bytes());
        long.extend(b"key");
        assert!(matches!(
            Request::decode(&long),
            Err(ProtoError::Malformed { .. })
        ));
    }

    #[test]
    fn session_bind_and_other_extensions() {
        let mut body = vec![SSH_AGENTC_EXTENSION];
        body.extend(string(SESSION_BIND.as_bytes()));
        body.extend(string(b"hostkey"));
        body.extend(string(b"sid"));
        body.extend(string(b"sig"));
        body.push(1);
        assert_eq!(
            Request::decode(&body),
            Ok(Request::SessionBind(SessionBind {
                host_key: b"hostkey".to_vec(),
                session_id: b"sid".to_vec(),
                signature: b"sig".to_vec(),
                forwarding: true,
            }))
        );
        assert!(Request::decode(&body[..body.len() - 1]).is_err());
        let mut other = vec![SSH_AGENTC_EXTENSION];
        other.extend(string(b"query"));
        other.extend(b"anything");
        assert_eq!(
            Request::decode(&other),
            Ok(Request::UnsupportedExtension("query".into()))
        );
    }

    #[test]
    fn other_messages_are_unsupported_and_empty_ones_refused() {
        // SSH_AGENTC_ADD_IDENTITY, SSH_AGENTC_REMOVE_ALL_IDENTITIES, LOCK.
        for kind in [17u8, 19, 22, 0, 255] {
            assert_eq!(
                Request::decode(&[kind, 1, 2, 3]),
                Ok(Request::Unsupported(kind))
            );
        }
        assert_eq!(Request::decode(&[]), Err(ProtoError::Length(0)));
        assert!(Request::decode(&[SSH_AGENTC_REQUEST_IDENTITIES, 0]).is_err());
    }

    #[test]
    fn responses_encode_with_their_length() {
        assert_eq!(Response::Failure.encode().unwrap(), [0, 0, 0, 1, 5]);
        assert_eq!(Response::Success.encode().unwrap(), [0, 0, 0, 1, 6]);
        assert_eq!(
            Response::Identities(vec![]).encode().unwrap(),
            [0, 0, 0, 5, 12, 0, 0, 0, 0]
        );
        let answer = Response::Identities(vec![(b"k".to_vec(), "c".into())])
            .encode()
            .unwrap();
        assert_eq!(
            answer,
            [0, 0, 0, 15, 12, 0, 0, 0, 1, 0, 0, 0, 1, b'k', 0, 0, 0, 1, b'c']
        );
        assert_eq!(
            Response::Signature(b"s".to_vec()).encode().unwrap(),
            [0, 0, 0, 6, 14, 0, 0, 0, 1, b's']
        );
    }
}
