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
//!
//! Beside the tunnels: ALPN `http/1.1` (or none) is the CA's API,
//! forwarded ([`crate::forward`]); the TLS certificate is the proxy's
//! server certificate, renewed at half life ([`crate::tls`]); metrics and
//! health on `metrics_listen` ([`crate::metrics`]); and past `stale_after`
//! without a word from the CA, new tunnels are refused (`view_stale`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::decide::{decide, to_cut, Refusal, RefusalCode};
use crate::feed::{self, Feed};
use crate::forward::Forwarder;
use crate::identity::Identity;
use crate::metrics::{Counted, Metrics};
use crate::preamble::{PreambleReader, Reply, ALPN_SSH};
use crate::tls::ALPN_HTTP;

/// Time allowed for the preamble line after the handshake.
pub const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to connect to the node.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after a failed accept (out of file descriptors).
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
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
    /// The TLS identity cannot be used.
    #[error(transparent)]
    TlsIdentity(#[from] crate::tls::TlsError),
    /// The CA's URL or root cannot be used for forwarding.
    #[error(transparent)]
    Forward(#[from] crate::forward::ForwardError),
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

/// An open tunnel: who it runs as, and how to close it.
struct Open {
    who: Identity,
    cut: oneshot::Sender<Refusal>,
}

/// What every connection shares.
struct Shared {
    tunnels: Mutex<HashMap<u64, Open>>,
    sources: Mutex<HashMap<IpAddr, usize>>,
    next: AtomicU64,
    metrics: Arc<Metrics>,
    forwarder: Arc<Forwarder>,
    stale_after: Duration,
    handshake_timeout: Duration,
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
        self.shared.metrics.tunnel_closed();
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
            let since_view = matches!(
                refusal.code,
                RefusalCode::UserLocked | RefusalCode::DeviceLocked
            )
            .then(|| feed.received().map(|t| t.elapsed()))
            .flatten();
            shared.metrics.cut(refusal.code.as_str(), since_view);
            let _ = open.cut.send(refusal);
        }
    }
}

/// Runs the proxy until the process ends: the feed thread, the cutter
/// thread and the TLS listener.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let identity = crate::tls::Identity::load(&config)?;
    let domain = trust_domain(&identity.client_cert)?;
    let resolver = crate::tls::Resolver::new(identity.certified.clone());
    let acceptor = TlsAcceptor::from(crate::tls::server_config(&identity.root, resolver.clone())?);
    let metrics = Metrics::new();
    if let Some((_, not_after)) = crate::tls::validity(&identity.client_cert) {
        metrics.certificate(not_after);
    }
    let forwarder = Arc::new(Forwarder::new(&config, &identity.root, metrics.clone())?);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Listen { addr, source })?,
        ),
        None => None,
    };
    let feed = Feed::new();
    let shared = Arc::new(Shared {
        tunnels: Mutex::new(HashMap::new()),
        sources: Mutex::new(HashMap::new()),
        next: AtomicU64::new(0),
        metrics: metrics.clone(),
        forwarder,
        stale_after: config.stale_after,
        handshake_timeout: config.handshake_timeout,
    });
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(listener) = metrics_listener {
        if !listener.local_addr().is_ok_and(|a| a.ip().is_loopback()) {
            tracing::warn!(event = "metrics", "metrics_listen is not a loopback address: /metrics and /healthz are not authenticated");
        }
        tokio::spawn(crate::metrics::serve(
            listener,
            metrics.clone(),
            feed.clone(),
            config.stale_after,
        ));
    }
    {
        let (config, metrics) = (config.clone(), metrics.clone());
        std::thread::spawn(move || {
            crate::tls::renew_forever(&config, &resolver, &|outcome| match outcome {
                Ok(not_after) => {
                    metrics.renewal(true);
                    metrics.certificate(not_after);
                    tracing::info!(event = "renewed", not_after, "proxy certificates renewed");
                }
                Err(e) => {
                    metrics.renewal(false);
                    tracing::error!(event = "renewal_failed", error = %e, "proxy certificate renewal failed; retrying in a minute");
                }
            })
        });
    }
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
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors (a flood from many sources) fails
                // every accept at once: pause instead of spinning a core.
                tracing::warn!(event = "accept_failed", error = %e, "cannot accept; pausing");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        // Tunnels carry keystrokes: no Nagle delay on small writes.
        let _ = tcp.set_nodelay(true);
        {
            let mut sources = locked(&shared.sources);
            let n = sources.entry(peer.ip()).or_insert(0);
            if *n >= MAX_PER_SOURCE {
                tracing::warn!(event = "refuse", peer = %peer, code = "too_many_connections", "source over its connection limit");
                shared.metrics.refused("too_many_connections");
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
    metrics: &Metrics,
    peer: SocketAddr,
    user: &str,
    code: &'static str,
    message: &str,
) {
    tracing::info!(event = "refuse", peer = %peer, user, code, reason = message, "tunnel refused");
    metrics.refused(code);
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
    let mut tls = match tokio::time::timeout(shared.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(event = "refuse", peer = %peer, code = "tls", reason = %e, "TLS handshake failed");
            shared.metrics.refused("tls");
            return;
        }
        Err(_) => {
            tracing::info!(event = "refuse", peer = %peer, code = "tls_timeout", "TLS handshake too slow");
            shared.metrics.refused("tls_timeout");
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
    match alpn.as_deref() {
        Some(ALPN_SSH) => {}
        // The CA's API; clients that name no protocol speak HTTP/1.1.
        Some(ALPN_HTTP) | None => return shared.forwarder.clone().serve(tls, peer).await,
        Some(_) => {
            // rustls accepts only the protocols offered; nothing else gets here.
            tracing::info!(event = "refuse", peer = %peer, code = "alpn", "unknown ALPN");
            shared.metrics.refused("alpn");
            let _ = tls.shutdown().await;
            return;
        }
    }
    let metrics = shared.metrics.clone();
    let metrics = &*metrics;
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
        Ok(Err(e)) => return refuse(&mut tls, metrics, peer, "", "bad_preamble", &e).await,
        Err(_) => {
            return refuse(
                &mut tls,
                metrics,
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
            metrics,
            peer,
            "",
            "no_certificate",
            "a client certificate from the CA is required; run `signet login`",
        )
        .await;
    };
    let who = match Identity::from_certificate(&der, domain) {
        Ok(who) => who,
        Err(e) => {
            return refuse(
                &mut tls,
                metrics,
                peer,
                "",
                "bad_certificate",
                &e.to_string(),
            )
            .await
        }
    };
    if let Some(silent) = feed
        .silent_for()
        .filter(|silent| *silent > shared.stale_after)
    {
        let r = Refusal::stale(silent);
        return refuse(
            &mut tls,
            metrics,
            peer,
            &who.user,
            r.code.as_str(),
            &r.message,
        )
        .await;
    }
    let view = feed.view();
    let address = match decide(view.as_deref(), &who, &preamble, unix_now()) {
        Ok(node) => node.address.clone(),
        Err(r) => {
            return refuse(
                &mut tls,
                metrics,
                peer,
                &who.user,
                r.code.as_str(),
                &r.message,
            )
            .await
        }
    };
    drop(view);
    let mut node = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(&address)).await {
        Ok(Ok(node)) => {
            let _ = node.set_nodelay(true);
            node
        }
        Ok(Err(e)) => {
            let message = format!("node {} at {address}: {e}", preamble.node);
            return refuse(
                &mut tls,
                metrics,
                peer,
                &who.user,
                "node_unreachable",
                &message,
            )
            .await;
        }
        Err(_) => {
            let message = format!("node {} at {address} did not answer in time", preamble.node);
            return refuse(
                &mut tls,
                metrics,
                peer,
                &who.user,
                "node_unreachable",
                &message,
            )
            .await;
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
    metrics.tunnel_opened();
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
    // What came with the preamble is the client's too.
    metrics.bytes("up").inc_by(rest.len() as u64);
    let mut tls = Counted::new(tls, metrics.bytes("up"));
    let mut node = Counted::new(node, metrics.bytes("down"));
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
