//! The agent's socket: who may connect, one task per connection, signing
//! off the I/O thread.
//!
//! A current-thread tokio runtime reads and writes the sockets; signatures
//! (which may wait for a PIN check and a touch) run on tokio's blocking
//! pool, one at a time, so the card has one user.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use signature::Verifier as _;
use ssh_key::encoding::Decode as _;
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, Signature};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;

use super::identity::Identity;
use super::key::{AgentKey, RsaHash};
use super::proto::{self, Request, Response, SessionBind};
use super::AgentError;

/// Where the agent's messages go: stderr in the foreground, the log file
/// for a daemon, a buffer in tests. Never given secrets.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// A [`Log`] that writes timestamped lines to stderr.
pub fn stderr_log() -> Log {
    Arc::new(|line: &str| {
        eprintln!(
            "{} signet agent: {line}",
            humantime::format_rfc3339_seconds(SystemTime::now())
        )
    })
}

/// The uid this process runs as: the owner of `/proc/self` (no `unsafe`
/// `getuid` call needed).
pub fn current_uid() -> std::io::Result<u32> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

/// The agent: one certificate, one key, one owner.
pub struct Agent {
    certificate: PathBuf,
    comment: String,
    key: Arc<dyn AgentKey>,
    /// Serializes signatures: the card has one user at a time.
    signing: Arc<Mutex<()>>,
    log: Log,
    uid: u32,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("certificate", &self.certificate)
            .field("comment", &self.comment)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

/// Stops an agent started with [`Agent::spawn`] when dropped.
#[derive(Debug)]
pub struct AgentHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), AgentError>>>,
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What one connection has told the agent about itself.
#[derive(Default)]
struct Connection {
    /// The last `session-bind@openssh.com`, verified.
    bound: Option<SessionBind>,
}

impl Agent {
    /// An agent offering the certificate at `certificate` (read on each
    /// request) as `signet <user>`, signing with `key`; only clients running
    /// as this process's uid are served.
    pub fn new(
        certificate: PathBuf,
        user: &str,
        key: Arc<dyn AgentKey>,
        log: Log,
    ) -> Result<Self, AgentError> {
        Ok(Self {
            certificate,
            comment: format!("signet {user}"),
            key,
            signing: Arc::new(Mutex::new(())),
            log,
            uid: current_uid().map_err(|e| AgentError::Io("reading /proc/self".into(), e))?,
        })
    }

    /// The certificate as it is now, for a start-up message.
    pub fn identity(&self) -> Identity {
        Identity::load(&self.certificate, SystemTime::now())
    }

    /// Serves `listener` until SIGINT or SIGTERM.
    pub fn serve(self, listener: std::os::unix::net::UnixListener) -> Result<(), AgentError> {
        let runtime = runtime()?;
        runtime.block_on(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| AgentError::Io("SIGTERM handler".into(), e))?;
            let stop = async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            };
            self.accept_loop(listener, stop).await
        })
    }

    /// Serves `listener` on a thread of its own until the handle is dropped
    /// (for tests and benchmarks in one process).
    pub fn spawn(
        self,
        listener: std::os::unix::net::UnixListener,
    ) -> Result<AgentHandle, AgentError> {
        let (tx, rx) = oneshot::channel::<()>();
        let runtime = runtime()?;
        let thread = std::thread::Builder::new()
            .name("signet-agent".into())
            .spawn(move || {
                runtime.block_on(self.accept_loop(listener, async move {
                    let _ = rx.await;
                }))
            })
            .map_err(|e| AgentError::Io("starting the agent thread".into(), e))?;
        Ok(AgentHandle {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    async fn accept_loop(
        self,
        listener: std::os::unix::net::UnixListener,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), AgentError> {
        listener
            .set_nonblocking(true)
            .map_err(|e| AgentError::Io("socket".into(), e))?;
        let listener = tokio::net::UnixListener::from_std(listener)
            .map_err(|e| AgentError::Io("socket".into(), e))?;
        let agent = Arc::new(self);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let agent = Arc::clone(&agent);
                        tokio::spawn(async move { agent.connection(stream).await });
                    }
                    Err(e) => {
                        (agent.log)(&format!("accept failed: {e}"));
                        // EMFILE and friends: do not spin.
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// One client, until it hangs up or misbehaves.
    async fn connection(self: Arc<Self>, mut stream: UnixStream) {
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == self.uid => {}
            Ok(cred) => {
                (self.log)(&format!(
                    "refused a client running as uid {} (this agent serves uid {} only)",
                    cred.uid(),
                    self.uid
                ));
                return;
            }
            Err(e) => {
                (self.log)(&format!("refused a client: no peer credentials ({e})"));
                return;
            }
        }
        let mut state = Connection::default();
        loop {
            let mut prefix = [0u8; 4];
            match stream.read_exact(&mut prefix).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
                Err(e) => {
                    (self.log)(&format!("connection closed: {e}"));
                    return;
                }
            }
            let len = match proto::body_len(prefix) {
                Ok(len) => len,
                Err(e) => {
                    (self.log)(&format!("connection closed: {e}"));
                    return;
                }
            };
            let mut body = vec![0u8; len];
            if let Err(e) = stream.read_exact(&mut body).await {
                (self.log)(&format!("connection closed: truncated message ({e})"));
                return;
            }
            let request = match Request::decode(&body) {
                Ok(request) => request,
                Err(e) => {
                    (self.log)(&format!("connection closed: {e}"));
                    return;
                }
            };
            let response = self.handle(request, &mut state).await;
            let bytes = match response.encode() {
                Ok(bytes) => bytes,
                Err(e) => {
                    (self.log)(&format!("connection closed: encoding the reply: {e}"));
                    return;
                }
            };
            if let Err(e) = stream.write_all(&bytes).await {
                (self.log)(&format!("connection closed: {e}"));
                return;
            }
        }
    }

    async fn handle(&self, request: Request, state: &mut Connection) -> Response {
        match request {
            Request::RequestIdentities => match self.identity() {
                Identity::Valid(valid) => {
                    Response::Identities(vec![(valid.blob, self.comment.clone())])
                }
                other => {
                    if let Some(problem) = other.problem() {
                        (self.log)(&format!("no identity offered: {problem}"));
                    }
                    Response::Identities(Vec::new())
                }
            },
            Request::Sign {
                key_blob,
                data,
                flags,
            } => match self.sign(&key_blob, data, flags, state).await {
                Ok(signature) => Response::Signature(signature),
                Err(why) => {
                    (self.log)(&format!("signature refused: {why}"));
                    Response::Failure
                }
            },
            Request::SessionBind(bind) => match verify_bind(&bind) {
                Ok(fingerprint) => {
                    (self.log)(&format!(
                        "connection bound to host key {fingerprint}{}",
                        if bind.forwarding { " (forwarded)" } else { "" }
                    ));
                    state.bound = Some(bind);
                    Response::Success
                }
                Err(why) => {
                    (self.log)(&format!("session-bind refused: {why}"));
                    Response::Failure
                }
            },
            Request::UnsupportedExtension(name) => {
                (self.log)(&format!("extension {name:?} is not supported"));
                Response::Failure
            }
            Request::Unsupported(kind) => {
                (self.log)(&format!("message type {kind} is not supported"));
                Response::Failure
            }
        }
    }

    /// Checks a sign request and signs it on the blocking pool. The error
    /// is for the log; the client only sees a failure.
    async fn sign(
        &self,
        key_blob: &[u8],
        data: Vec<u8>,
        flags: u32,
        state: &Connection,
    ) -> Result<Vec<u8>, String> {
        let valid = match self.identity() {
            Identity::Valid(valid) => valid,
            other => return Err(other.problem().unwrap_or_default()),
        };
        if !valid.matches(key_blob) {
            return Err("the request names a key this agent does not hold".into());
        }
        // ssh's own connection, bound to its session, signs only that
        // session's authentication. A forwarded connection is bound hop by
        // hop, and clients on the far host that do not bind (OpenSSH before
        // 8.9, other programs) must still work through it, so it is not held
        // to the forwarding hop's session.
        if let Some(bound) = state.bound.as_ref().filter(|b| !b.forwarding) {
            if !signs_for_session(&data, &bound.session_id) {
                return Err(
                    "the data to sign is not for the session this connection is bound to".into(),
                );
            }
        }
        let public = valid.public().clone();
        let rsa = rsa_hash(&public, flags)?;
        let key = Arc::clone(&self.key);
        let signing = Arc::clone(&self.signing);
        let log = Arc::clone(&self.log);
        let check = public.clone();
        let signed = tokio::task::spawn_blocking(move || {
            let _card = signing.lock().unwrap_or_else(PoisonError::into_inner);
            log("signing with the Signet key");
            key.sign(&public, &data, rsa).map(|s| (s, data))
        })
        .await
        .map_err(|e| format!("the signing task failed: {e}"))?
        .map_err(|e| e.to_string())?;
        let (signature, data) = signed;
        // A signature the certificate's key does not verify is worth nothing
        // to the server: catch a card that holds another key here.
        check.verify(&data, &signature).map_err(|_| {
            "the key's signature does not verify with the certificate's key; run `signet login`"
                .to_string()
        })?;
        Vec::<u8>::try_from(signature).map_err(|e| e.to_string())
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, AgentError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Io("starting the runtime".into(), e))
}

/// The RSA hash a request's flags ask for, or `None` for other key types.
fn rsa_hash(public: &KeyData, flags: u32) -> Result<Option<RsaHash>, String> {
    if !matches!(public, KeyData::Rsa(_)) {
        return Ok(None);
    }
    if flags & proto::SSH_AGENT_RSA_SHA2_512 != 0 {
        Ok(Some(RsaHash::Sha512))
    } else if flags & proto::SSH_AGENT_RSA_SHA2_256 != 0 {
        Ok(Some(RsaHash::Sha256))
    } else {
        Err("an RSA signature with SHA-1 (ssh-rsa) was asked for; refused".into())
    }
}

/// An SSH user-authentication request (RFC 4252 §7) starts with the session
/// identifier as a string: on a bound connection it must be the bound one.
fn signs_for_session(data: &[u8], session_id: &[u8]) -> bool {
    let mut reader = data;
    Vec::<u8>::decode(&mut reader).is_ok_and(|id| id == session_id)
}

/// Verifies that the host signed the session identifier; returns the host
/// key's fingerprint for the log.
fn verify_bind(bind: &SessionBind) -> Result<String, String> {
    let key =
        KeyData::decode(&mut bind.host_key.as_slice()).map_err(|e| format!("host key: {e}"))?;
    let signature =
        Signature::try_from(bind.signature.as_slice()).map_err(|e| format!("signature: {e}"))?;
    key.verify(&bind.session_id, &signature)
        .map_err(|_| "the host's signature over the session does not verify".to_string())?;
    Ok(key.fingerprint(HashAlg::Sha256).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_flags_matter_only_for_rsa() {
        let ed = KeyData::Ed25519(ssh_key::private::Ed25519Keypair::from_seed(&[1; 32]).public);
        assert_eq!(rsa_hash(&ed, 0), Ok(None));
        assert_eq!(rsa_hash(&ed, 4), Ok(None));
    }

    #[test]
    fn bound_sessions_check_the_session_id() {
        let mut data = 3u32.to_be_bytes().to_vec();
        data.extend(b"sid");
        data.extend(b"rest");
        assert!(signs_for_session(&data, b"sid"));
        assert!(!signs_for_session(&data, b"other"));
        assert!(!signs_for_session(b"\0\0", b"sid"));
    }
}
