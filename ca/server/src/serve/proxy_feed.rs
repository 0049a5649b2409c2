//! The access proxies' listener (`serve.proxy_listen`): mutual TLS only,
//! and `GET /v1/proxy/feed`, the proxies' live view of nodes, access and
//! locks.
//!
//! A connection must present a client certificate that chains to the CA's
//! X.509 root (rustls refuses anything else in the handshake) and that a
//! proxy obtained by joining (`POST /v1/proxy/join` with a one-time token
//! from `signet-ca proxies invite`; the log records which invite each
//! proxy certificate spent, so the CA knows their serials after a
//! restart); a user's certificate chains to the same root and is refused
//! with 403. The feed
//! is JSON lines ([`signet_api::proxy`]): a snapshot at once, another
//! each time the CA applies a change, heartbeats in between.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use signet_api::proxy::{FeedMessage, ProxyView, FEED_PATH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::tls::CertResolver;
use crate::touch::Service;
use crate::{Error, Result};

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 64;
/// Time between heartbeats when nothing changes.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Who is connected: the peer's address and its certificate's serial.
#[derive(Debug, Clone)]
pub struct ProxyPeer {
    /// The TCP peer.
    pub addr: SocketAddr,
    /// The client certificate's serial, lowercase hex without leading
    /// zeros (as the log writes it).
    pub serial: Option<String>,
}

/// A certificate's serial as the log writes it: lowercase hex, no leading zeros.
pub fn serial_of(cert_der: &[u8]) -> Option<String> {
    use der::Decode as _;
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    let hex: String = cert
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let trimmed = hex.trim_start_matches('0');
    Some(if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.to_owned()
    })
}

/// The TLS configuration: client certificates required, chaining to the
/// CA's root; the daemon's own (renewed) server certificate.
pub fn server_config(
    service: &Service,
    resolver: Arc<CertResolver>,
) -> Result<Arc<rustls::ServerConfig>> {
    let root = der::Encode::to_der(service.authority().root())
        .map_err(|e| Error::Certificate(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root))
        .map_err(|e| Error::Certificate(format!("the X.509 root as a TLS trust anchor: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::Certificate(format!("TLS client verifier: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Certificate(format!("TLS: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections and completes their TLS handshakes in tasks of
/// their own (bounded in number and time), so a slow or silent peer never
/// holds up the next one. Hands axum only finished, verified connections.
pub struct MtlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, ProxyPeer)>,
}

impl MtlsListener {
    /// Starts accepting on `listener`.
    pub fn new(listener: TcpListener, tls: Arc<rustls::ServerConfig>) -> Result<Self> {
        let local = listener
            .local_addr()
            .map_err(|e| Error::bad("serve.proxy_listen", e.to_string()))?;
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let acceptor = TlsAcceptor::from(tls);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, addr) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(event = "proxy_accept_failed", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let serial = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|c| serial_of(c));
                            let _ = tx.send((tls, ProxyPeer { addr, serial })).await;
                        }
                        Ok(Err(e)) => tracing::warn!(
                            event = "proxy_handshake_refused",
                            peer = %addr,
                            error = %e,
                            "TLS handshake on the proxy listener failed"
                        ),
                        Err(_) => tracing::warn!(
                            event = "proxy_handshake_refused",
                            peer = %addr,
                            "TLS handshake on the proxy listener timed out"
                        ),
                    }
                });
            }
        });
        Ok(Self { local, ready })
    }
}

impl axum::serve::Listener for MtlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = ProxyPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(x) => x,
            // The accept task ended only if its semaphore closed, which
            // never happens; wait forever rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(ProxyPeer {
            addr: self.local,
            serial: None,
        })
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, MtlsListener>>
    for ProxyPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, MtlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Serves the proxy listener, when `serve.proxy_listen` bound one.
pub fn spawn(
    listener: Option<TcpListener>,
    service: &Arc<Service>,
    resolver: Arc<CertResolver>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let tls = server_config(service, resolver)?;
    let listener = MtlsListener::new(listener, tls)?;
    tracing::info!(event = "listening", addr = %listener.local, "serving the proxies (mutual TLS)");
    let app = routes(service.clone()).into_make_service_with_connect_info::<ProxyPeer>();
    Ok(Some(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })))
}

/// The join route, on the CA's public listener (a joining proxy has no
/// certificate yet; its one-time token is its credential).
pub fn join_routes(service: Arc<Service>) -> Router {
    Router::new()
        .route(signet_api::proxy::JOIN_PATH, axum::routing::post(join))
        .with_state(service)
}

// `Refusal` is the touch flow's one answer type, whatever its size.
#[allow(clippy::result_large_err)]
async fn join(
    State(service): State<Arc<Service>>,
    super::api::ApiJson(request): super::api::ApiJson<signet_api::proxy::JoinRequest>,
) -> std::result::Result<axum::Json<signet_api::proxy::JoinResponse>, super::api::ErrorResponse> {
    match tokio::task::spawn_blocking(move || service.join_proxy(&request)).await {
        Ok(Ok(joined)) => Ok(axum::Json(joined)),
        Ok(Err(refusal)) => Err(refusal.into()),
        Err(_) => Err(crate::touch::Refusal::internal("the join task failed").into()),
    }
}

// `Refusal` is the touch flow's one answer type, whatever its size.
#[allow(clippy::result_large_err)]
async fn renew(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<ProxyPeer>,
    super::api::ApiJson(request): super::api::ApiJson<signet_api::proxy::RenewRequest>,
) -> std::result::Result<axum::Json<signet_api::proxy::JoinResponse>, super::api::ErrorResponse> {
    let serial = peer.serial.unwrap_or_default();
    match tokio::task::spawn_blocking(move || service.renew_proxy(&serial, &request)).await {
        Ok(Ok(renewed)) => Ok(axum::Json(renewed)),
        Ok(Err(refusal)) => Err(refusal.into()),
        Err(_) => Err(crate::touch::Refusal::internal("the renewal task failed").into()),
    }
}

/// The proxy listener's routes.
pub fn routes(service: Arc<Service>) -> Router {
    Router::new()
        .route(FEED_PATH, get(feed))
        .route(signet_api::proxy::RENEW_PATH, axum::routing::post(renew))
        .with_state(service)
}

async fn feed(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<ProxyPeer>,
) -> Response {
    let proxy = peer
        .serial
        .as_deref()
        .and_then(|serial| service.proxy_of_serial(serial));
    let Some(proxy) = proxy else {
        tracing::warn!(
            event = "proxy_feed_refused",
            peer = %peer.addr,
            serial = peer.serial.as_deref().unwrap_or(""),
            "a client certificate that no proxy joined with asked for the feed"
        );
        return (
            StatusCode::FORBIDDEN,
            "this certificate is not a proxy's (proxies join with signet-proxy join)\n",
        )
            .into_response();
    };
    tracing::info!(event = "proxy_feed_connected", proxy = %proxy, peer = %peer.addr, "proxy connected to the feed");
    let changes = service.subscribe();
    let view = move || service.proxy_view();
    (
        [(header::CONTENT_TYPE, "application/jsonl")],
        Body::from_stream(lines(changes, view, HEARTBEAT)),
    )
        .into_response()
}

/// The feed as a stream of lines: a snapshot now, a snapshot after each
/// change, a heartbeat after `heartbeat` without one. Changes that arrive
/// together are sent as one snapshot (the newest state).
pub fn lines(
    changes: watch::Receiver<u64>,
    view: impl Fn() -> ProxyView + Send + Sync + 'static,
    heartbeat: Duration,
) -> impl futures_util::Stream<Item = std::result::Result<String, Infallible>> + Send {
    struct State<F> {
        changes: watch::Receiver<u64>,
        view: F,
        last: Option<(u64, u64)>,
    }
    let state = State {
        changes,
        view,
        last: None,
    };
    futures_util::stream::unfold(state, move |mut s| async move {
        let message = match s.last {
            None => {
                s.changes.mark_unchanged();
                let view = (s.view)();
                s.last = Some((view.log_size, view.time));
                FeedMessage::snapshot(view)
            }
            Some((size, _)) => match tokio::time::timeout(heartbeat, s.changes.changed()).await {
                Ok(Ok(())) => {
                    s.changes.mark_unchanged();
                    let view = (s.view)();
                    s.last = Some((view.log_size, view.time));
                    FeedMessage::snapshot(view)
                }
                // The service is gone: the daemon is stopping; end the feed.
                Ok(Err(_)) => return None,
                Err(_) => FeedMessage::heartbeat(size, crate::touch::now()),
            },
        };
        Some((Ok(message.to_line()), s))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures_util::StreamExt as _;

    use super::*;

    #[tokio::test]
    async fn the_feed_sends_a_snapshot_then_one_per_change_and_heartbeats() {
        let (tx, rx) = watch::channel(3u64);
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let size = Arc::new(AtomicU64::new(3));
        let current = size.clone();
        let view = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            ProxyView {
                log_size: current.load(Ordering::SeqCst),
                ..ProxyView::default()
            }
        };
        let stream = lines(rx, view, Duration::from_millis(20));
        futures_util::pin_mut!(stream);
        let next = |line: Option<std::result::Result<String, Infallible>>| {
            FeedMessage::parse_line(line.unwrap().unwrap().as_bytes()).unwrap()
        };
        match next(stream.next().await) {
            FeedMessage::Snapshot { view, .. } => assert_eq!(view.log_size, 3),
            other => panic!("{other:?}"),
        }
        // Nothing changes: a heartbeat naming the last size.
        match next(stream.next().await) {
            FeedMessage::Heartbeat { log_size, .. } => assert_eq!(log_size, 3),
            other => panic!("{other:?}"),
        }
        // Two changes before the feed looks: one snapshot of the newest.
        size.store(5, Ordering::SeqCst);
        tx.send_replace(4);
        tx.send_replace(5);
        let before = calls.load(Ordering::SeqCst);
        loop {
            match next(stream.next().await) {
                FeedMessage::Snapshot { view, .. } => {
                    assert_eq!(view.log_size, 5);
                    break;
                }
                FeedMessage::Heartbeat { .. } => continue,
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), before + 1);
        // The sender gone (the daemon stopping): the feed ends.
        drop(tx);
        loop {
            match stream.next().await {
                None => break,
                Some(line) => assert!(line.unwrap().contains("heartbeat")),
            }
        }
    }

    #[test]
    fn serials_are_written_as_the_log_writes_them() {
        assert_eq!(serial_of(b"not a certificate"), None);
    }
}
