//! Observability: Prometheus `/metrics` (the text exposition, OpenMetrics
//! flavour) and `/healthz`, plain HTTP on `metrics_listen`, apart from the
//! public port.
//!
//! Metrics (prefix `signet_proxy_`): open tunnels, tunnels opened, bytes
//! up (client → node) and down, refusals and cuts by reason, the lock
//! propagation delay (from the arrival of the view carrying a lock to the
//! tunnel's close), the feed's state (connected, seconds since the CA was
//! last heard, the view's log size), API calls forwarded by status class,
//! the proxy certificate's end and renewals. No user or node names: labels
//! are reasons only, so the listener leaks no identities.
//!
//! `/healthz`: 200 when the proxy has a view from the CA heard from within
//! `stale_after`; 503 with the reason before the first view and when the
//! view is stale (the state in which new tunnels are refused).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

use crate::feed::Feed;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Class {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// Every metric the proxy keeps.
#[derive(Debug)]
pub struct Metrics {
    open: Gauge,
    opened: Counter,
    bytes: Family<Direction, Counter>,
    refusals: Family<Reason, Counter>,
    cuts: Family<Reason, Counter>,
    lock_delay: Histogram,
    feed_connected: Gauge,
    feed_silence: Gauge<f64, AtomicU64>,
    feed_synced: Gauge,
    view_log_size: Gauge,
    http: Family<Class, Counter>,
    cert_not_after: Gauge,
    renewals: Family<Outcome, Counter>,
    registry: Registry,
}

impl Metrics {
    /// Registers every metric, each at zero.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("signet_proxy");
        let open = Gauge::default();
        registry.register("tunnels_open", "Tunnels open now", open.clone());
        let opened = Counter::default();
        registry.register("tunnels", "Tunnels opened", opened.clone());
        let bytes = Family::<Direction, Counter>::default();
        registry.register(
            "tunnel_bytes",
            "Bytes carried by tunnels: up is client to node, down is node to client",
            bytes.clone(),
        );
        for direction in ["up", "down"] {
            let _ = bytes.get_or_create(&Direction { direction });
        }
        let refusals = Family::<Reason, Counter>::default();
        registry.register(
            "refusals",
            "Connections refused, by reason (the code the client is told)",
            refusals.clone(),
        );
        for code in crate::decide::RefusalCode::ALL {
            let _ = refusals.get_or_create(&Reason {
                reason: code.as_str(),
            });
        }
        let cuts = Family::<Reason, Counter>::default();
        registry.register(
            "tunnels_cut",
            "Open tunnels closed by the proxy, by reason",
            cuts.clone(),
        );
        let lock_delay = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "lock_propagation_seconds",
            "From the arrival of the CA's view carrying a lock to the locked tunnel's close",
            lock_delay.clone(),
        );
        let feed_connected = Gauge::default();
        registry.register(
            "feed_connected",
            "1 while the CA's feed stream is open",
            feed_connected.clone(),
        );
        let feed_silence = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "feed_last_heard_seconds",
            "Seconds since the CA was last heard (snapshot or heartbeat); -1 if never",
            feed_silence.clone(),
        );
        let feed_synced = Gauge::default();
        registry.register(
            "feed_synced",
            "1 once a view from the CA arrived",
            feed_synced.clone(),
        );
        let view_log_size = Gauge::default();
        registry.register(
            "view_log_size",
            "Log entries the current view reflects",
            view_log_size.clone(),
        );
        let http = Family::<Class, Counter>::default();
        registry.register(
            "http_requests",
            "API calls answered on the public port, by status class",
            http.clone(),
        );
        let cert_not_after = Gauge::default();
        registry.register(
            "certificate_not_after_seconds",
            "When the proxy's certificate ends, unix seconds",
            cert_not_after.clone(),
        );
        let renewals = Family::<Outcome, Counter>::default();
        registry.register(
            "renewals",
            "Certificate renewals, by outcome",
            renewals.clone(),
        );
        Arc::new(Self {
            open,
            opened,
            bytes,
            refusals,
            cuts,
            lock_delay,
            feed_connected,
            feed_silence,
            feed_synced,
            view_log_size,
            http,
            cert_not_after,
            renewals,
            registry,
        })
    }

    /// A connection refused with `reason`.
    pub fn refused(&self, reason: &'static str) {
        self.refusals.get_or_create(&Reason { reason }).inc();
    }

    /// A tunnel opened.
    pub fn tunnel_opened(&self) {
        self.opened.inc();
        self.open.inc();
    }

    /// A tunnel ended (however).
    pub fn tunnel_closed(&self) {
        self.open.dec();
    }

    /// An open tunnel closed by the proxy; a lock's delay since its view arrived.
    pub fn cut(&self, reason: &'static str, since_view: Option<Duration>) {
        self.cuts.get_or_create(&Reason { reason }).inc();
        if let Some(delay) = since_view {
            self.lock_delay.observe(delay.as_secs_f64());
        }
    }

    /// The counter of one direction's bytes.
    pub fn bytes(&self, direction: &'static str) -> Counter {
        self.bytes.get_or_create(&Direction { direction }).clone()
    }

    /// An API call answered with `status`.
    pub fn http_answered(&self, status: u16) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http.get_or_create(&Class { class }).inc();
    }

    /// The certificate in use ends at `not_after`.
    pub fn certificate(&self, not_after: u64) {
        self.cert_not_after
            .set(i64::try_from(not_after).unwrap_or(i64::MAX));
    }

    /// A renewal's outcome.
    pub fn renewal(&self, ok: bool) {
        let outcome = if ok { "renewed" } else { "failed" };
        self.renewals.get_or_create(&Outcome { outcome }).inc();
    }

    /// The exposition, with the feed's gauges read now.
    pub fn render(&self, feed: &Feed) -> String {
        self.feed_connected.set(i64::from(feed.connected()));
        self.feed_silence
            .set(feed.silent_for().map_or(-1.0, |d| d.as_secs_f64()));
        let view = feed.view();
        self.feed_synced.set(i64::from(view.is_some()));
        self.view_log_size.set(
            view.as_ref()
                .map_or(0, |v| i64::try_from(v.log_size).unwrap_or(i64::MAX)),
        );
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The proxy's health: `Ok` with a line when it can decide new tunnels,
/// `Err` with the reason when it refuses them all.
pub fn health(feed: &Feed, stale_after: Duration) -> Result<String, String> {
    let Some(view) = feed.view() else {
        return Err("not synced: no view from the CA yet".into());
    };
    let silent = feed.silent_for().unwrap_or(Duration::MAX);
    if silent > stale_after {
        return Err(format!(
            "stale: the CA was last heard {} s ago (limit {} s); new tunnels are refused",
            silent.as_secs(),
            stale_after.as_secs()
        ));
    }
    Ok(format!(
        "ok: view at log size {}, the CA heard {} ms ago",
        view.log_size,
        silent.as_millis()
    ))
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// Serves `/metrics` and `/healthz` on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    feed: Arc<Feed>,
    stale_after: Duration,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (metrics, feed) = (metrics.clone(), feed.clone());
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let response = match (request.method().as_str(), request.uri().path()) {
                ("GET", "/metrics") => text(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    metrics.render(&feed),
                ),
                ("GET", "/healthz") => match health(&feed, stale_after) {
                    Ok(line) => text(StatusCode::OK, "text/plain; charset=utf-8", line + "\n"),
                    Err(line) => text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain; charset=utf-8",
                        line + "\n",
                    ),
                },
                _ => text(
                    StatusCode::NOT_FOUND,
                    "text/plain; charset=utf-8",
                    "GET /metrics or /healthz\n".into(),
                ),
            };
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// A stream whose reads are counted as they happen (a tunnel's bytes show
/// while it is open, and a cut tunnel's count is not lost).
pub struct Counted<S> {
    inner: S,
    counter: Counter,
}

impl<S> Counted<S> {
    /// Counts what is read from `inner` into `counter`.
    pub fn new(inner: S, counter: Counter) -> Self {
        Self { inner, counter }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            self.counter.inc_by(n as u64);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
