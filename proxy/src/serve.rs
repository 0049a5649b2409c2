//! `signet-proxy serve`: the one TLS port engineers reach.
//!
//! Each connection: a TLS handshake (bounded in time) where a client
//! certificate is optional at the TLS layer, so a refusal can be told in
//! words, but any certificate given must chain to the CA's X.509 root and
//! be valid now; ALPN `signet-ssh/1`; the preamble read within
//! [`PREAMBLE_TIMEOUT`] (a slow client cannot hold a task open); the
//! decision against the feed's view; one reply line; then the node's sshd
//! dialled and bytes copied both ways. Every open tunnel is registered so
//! a new view (a lock) or its certificate's end closes it at once. A
//! source address holds at most [`MAX_PER_SOURCE`] connections.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::decide::{decide, to_cut, Refusal};
use crate::feed::{self, Feed};
use crate::identity::Identity;
use crate::preamble::{PreambleReader, Reply, ALPN_SSH};

/// Time allowed for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the preamble line after the handshake.
pub const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to connect to the node.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one source address may hold at once.
pub const MAX_PER_SOURCE: usize = 32;
/// How often open tunnels are checked against the clock (certificate
/// ends) when no new view arrives.
pub const RECHECK: Duration = Duration::from_millis(500);

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A file cannot be read or is not what it should be.
    #[error("{0}")]
    Identity(String),
    /// The TLS configuration cannot be built.
    #[error("TLS: {0}")]
    Tls(String),
    /// The port cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn pem_der(path: &std::path::Path) -> Result<Vec<u8>, ServeError> {
    let pem = std::fs::read(path)
        .map_err(|e| ServeError::Identity(format!("{}: {e}", path.display())))?;
    der::pem::decode_vec(&pem)
        .map(|(_, der)| der)
        .map_err(|e| ServeError::Identity(format!("{}: {e}", path.display())))
}

/// The trust domain from the proxy's own certificate (its URI
/// `signet://<domain>/user/proxy.<name>`): users' URIs must name the same.
pub fn trust_domain(proxy_cert: &[u8]) -> Result<String, ServeError> {
    use der::Decode as _;
    use x509_cert::ext::pkix::name::GeneralName;
    let bad = || {
        ServeError::Identity(
            "the proxy certificate names no signet://<domain>/user/proxy.<name> URI".into(),
        )
    };
    let cert = x509_cert::Certificate::from_der(proxy_cert).map_err(|_| bad())?;
    let Ok(Some((_, san))) = cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::SubjectAltName>()
    else {
        return Err(bad());
    };
    san.0
        .iter()
        .find_map(|n| match n {
            GeneralName::UniformResourceIdentifier(u) => u
                .as_str()
                .strip_prefix("signet://")
                .and_then(|rest| rest.split_once('/'))
                .filter(|(_, path)| path.starts_with("user/proxy.") || path.starts_with("proxy/"))
                .map(|(domain, _)| domain.to_owned()),
            _ => None,
        })
        .filter(|d| !d.is_empty())
        .ok_or_else(bad)
}

/// The TLS configuration: the proxy's own pair as the server certificate,
/// client certificates optional but verified against `root` when given.
pub fn tls_config(
    root: &[u8],
    cert: &[u8],
    key: &[u8],
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.to_vec()))
        .map_err(|e| ServeError::Tls(format!("ca.root as a trust anchor: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(cert.to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
        )
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![ALPN_SSH.to_vec()];
    Ok(Arc::new(config))
}

/// An open tunnel: who it runs as, and how to close it.
struct Open {
    who: Identity,
    cut: oneshot::Sender<Refusal>,
}

/// What every connection shares.
#[derive(Default)]
struct Shared {
    tunnels: Mutex<HashMap<u64, Open>>,
    sources: Mutex<HashMap<IpAddr, usize>>,
    next: AtomicU64,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent across a panic: each change is one insert
    // or remove.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Holds a source's slot; frees it when the connection ends.
struct SourceSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut sources = locked(&self.shared.sources);
        if let Some(n) = sources.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                sources.remove(&self.ip);
            }
        }
    }
}

/// Removes a tunnel from the registry when it ends.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        locked(&self.shared.tunnels).remove(&self.id);
    }
}

/// Closes the tunnels [`to_cut`] names for the current view and clock.
fn cut_now(shared: &Shared, feed: &Feed) {
    let view = feed.view();
    let mut tunnels = locked(&shared.tunnels);
    let cut = to_cut(
        view.as_deref(),
        tunnels.iter().map(|(id, open)| (*id, &open.who)),
        unix_now(),
    );
    for (id, refusal) in cut {
        if let Some(open) = tunnels.remove(&id) {
            tracing::info!(
                event = "cut",
                tunnel = id,
                user = %open.who.user,
                code = refusal.code.as_str(),
                reason = %refusal.message,
                "tunnel closed"
            );
            let _ = open.cut.send(refusal);
        }
    }
}

/// Runs the proxy until the process ends: the feed thread, the cutter
/// thread and the TLS listener.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let root = pem_der(&config.ca.root)?;
    let cert = pem_der(&config.identity.certificate)?;
    let key = pem_der(&config.identity.key)?;
    let domain = trust_domain(&cert)?;
    let acceptor = TlsAcceptor::from(tls_config(&root, &cert, &key)?);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let feed = Feed::new();
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (config, feed, stop) = (config.clone(), feed.clone(), stop.clone());
        std::thread::spawn(move || {
            feed::run(&config, &feed, &stop, &|e| {
                tracing::warn!(event = "feed", error = %e, "CA feed interrupted; reconnecting");
            });
        });
    }
    {
        let (feed, shared) = (feed.clone(), shared.clone());
        std::thread::spawn(move || {
            let mut seen = feed.generation();
            loop {
                let now = feed.wait_for_change(seen, RECHECK);
                if now != seen {
                    tracing::info!(event = "view", generation = now, "new view from the CA");
                    seen = now;
                }
                cut_now(&shared, &feed);
            }
        });
    }
    tracing::info!(event = "listening", addr = %config.listen, trust_domain = %domain, "signet-proxy serving");
    let domain: Arc<str> = domain.into();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        {
            let mut sources = locked(&shared.sources);
            let n = sources.entry(peer.ip()).or_insert(0);
            if *n >= MAX_PER_SOURCE {
                tracing::warn!(event = "refuse", peer = %peer, code = "too_many_connections", "source over its connection limit");
                continue;
            }
            *n += 1;
        }
        let slot = SourceSlot {
            shared: shared.clone(),
            ip: peer.ip(),
        };
        let (acceptor, feed, shared, domain) = (
            acceptor.clone(),
            feed.clone(),
            shared.clone(),
            domain.clone(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            connection(tcp, peer, acceptor, &feed, shared, &domain).await;
        });
    }
}

async fn refuse<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
    user: &str,
    code: &str,
    message: &str,
) {
    tracing::info!(event = "refuse", peer = %peer, user, code, reason = message, "tunnel refused");
    let line = Reply::Refused {
        code: code.to_owned(),
        message: message.to_owned(),
    }
    .to_line();
    let _ = stream.write_all(line.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    feed: &Feed,
    shared: Arc<Shared>,
    domain: &str,
) {
    let mut tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(event = "refuse", peer = %peer, code = "tls", reason = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(event = "refuse", peer = %peer, code = "tls_timeout", "TLS handshake too slow");
            return;
        }
    };
    let (alpn, client_cert) = {
        let (_, conn) = tls.get_ref();
        (
            conn.alpn_protocol().map(<[u8]>::to_vec),
            conn.peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec()),
        )
    };
    if alpn.as_deref() != Some(ALPN_SSH) {
        tracing::info!(event = "refuse", peer = %peer, code = "alpn", "no signet-ssh/1 ALPN");
        let _ = tls.shutdown().await;
        return;
    }
    // The preamble, within its time.
    let read = async {
        let mut reader = PreambleReader::new();
        let mut buf = [0u8; 512];
        loop {
            let n = tls.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(reader.finish().to_string());
            }
            if let Some(done) = reader.push(&buf[..n]).map_err(|e| e.to_string())? {
                return Ok(done);
            }
        }
    };
    let (preamble, rest) = match tokio::time::timeout(PREAMBLE_TIMEOUT, read).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return refuse(&mut tls, peer, "", "bad_preamble", &e).await,
        Err(_) => {
            return refuse(
                &mut tls,
                peer,
                "",
                "preamble_timeout",
                "no preamble in time",
            )
            .await
        }
    };
    let Some(der) = client_cert else {
        return refuse(
            &mut tls,
            peer,
            "",
            "no_certificate",
            "a client certificate from the CA is required; run `signet login`",
        )
        .await;
    };
    let who = match Identity::from_certificate(&der, domain) {
        Ok(who) => who,
        Err(e) => return refuse(&mut tls, peer, "", "bad_certificate", &e.to_string()).await,
    };
    let view = feed.view();
    let address = match decide(view.as_deref(), &who, &preamble, unix_now()) {
        Ok(node) => node.address.clone(),
        Err(r) => return refuse(&mut tls, peer, &who.user, r.code.as_str(), &r.message).await,
    };
    drop(view);
    let mut node = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(&address)).await {
        Ok(Ok(node)) => node,
        Ok(Err(e)) => {
            let message = format!("node {} at {address}: {e}", preamble.node);
            return refuse(&mut tls, peer, &who.user, "node_unreachable", &message).await;
        }
        Err(_) => {
            let message = format!("node {} at {address} did not answer in time", preamble.node);
            return refuse(&mut tls, peer, &who.user, "node_unreachable", &message).await;
        }
    };
    // Registered before the reply, so a lock arriving now cuts it.
    let id = shared.next.fetch_add(1, Ordering::Relaxed);
    let (cut_tx, mut cut_rx) = oneshot::channel();
    locked(&shared.tunnels).insert(
        id,
        Open {
            who: who.clone(),
            cut: cut_tx,
        },
    );
    let _registered = Registered {
        shared: shared.clone(),
        id,
    };
    // Checked again now that it is registered: a view that arrived while
    // dialling must not be missed.
    cut_now(&shared, feed);
    tracing::info!(
        event = "accept",
        tunnel = id,
        peer = %peer,
        user = %who.user,
        device = ?who.device,
        node = %preamble.node,
        login = %preamble.login,
        address = %address,
        "tunnel open"
    );
    if tls.write_all(Reply::Ok.to_line().as_bytes()).await.is_err()
        || node.write_all(&rest).await.is_err()
    {
        return;
    }
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut tls, &mut node) => {
            let (up, down) = copied.unwrap_or((0, 0));
            tracing::info!(event = "close", tunnel = id, user = %who.user, up, down, "tunnel ended");
        }
        _ = &mut cut_rx => {
            // Logged by cut_now; dropping both streams closes them.
        }
    }
}
