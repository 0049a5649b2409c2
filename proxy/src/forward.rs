//! The CA's API on the proxy's port (ALPN `http/1.1`, or no ALPN): engineers'
//! clients use the proxy's URL as their CA URL (`signet login`, `signet
//! enroll`, the enrollment page, `signet audit` reading the log).
//!
//! Requests for `/v1/…`, `/enroll/…` and `/log/…` go to the CA's public
//! listener (`ca.url`), whose certificate is checked against `ca.root`
//! only, over one upstream connection per client connection. The CA serves
//! nothing else, so every other path is answered 404 here, and so are
//! `/v1/proxy/…` (the proxies' own join is not for the internet). Method,
//! path and query, body, status and end-to-end headers pass unchanged;
//! hop-by-hop headers (RFC 9110, 7.6.1) and any `Forwarded`/`X-Forwarded-*`
//! a client sent are dropped, `Host` names the CA, and `X-Forwarded-For`
//! carries the client's address (the CA believes it from the proxies in its
//! `serve.trusted_proxies`, for its per-source rate limits). Limits: the request head
//! within [`HEADER_TIMEOUT`] and [`MAX_HEADER_BYTES`], the body at most
//! `http.max_body_bytes` (413) within [`BODY_TIMEOUT`], the CA's answer
//! within `http.request_timeout` (504). The CA down: 502.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::config::Config;
use crate::metrics::Metrics;

/// Time allowed for a request's head (and an idle connection's next one).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a request's body to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header fields in a request.
pub const MAX_HEADERS: usize = 64;
/// Time allowed to connect to the CA.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the forwarder cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// `ca.url` is not `https://host[:port]`.
    #[error("ca.url: {0}")]
    Url(String),
    /// The CA root cannot be a trust anchor.
    #[error("ca.root: {0}")]
    Root(String),
}

type Body = BoxBody<Bytes, hyper::Error>;

/// Forwards one client connection's requests to the CA.
pub struct Forwarder {
    host: String,
    port: u16,
    authority: HeaderValue,
    server_name: ServerName<'static>,
    tls: TlsConnector,
    max_body: usize,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

/// Whether a path is the CA's to answer.
pub fn forwarded_path(path: &str) -> bool {
    let ours =
        path.starts_with("/v1/") || path.starts_with("/enroll/") || path.starts_with("/log/");
    ours && !path.starts_with("/v1/proxy/")
        && !path.split('/').any(|segment| matches!(segment, "." | ".."))
        && !path.to_ascii_lowercase().contains("%2e")
        && !path.contains('\\')
}

/// Headers that concern one connection only, never forwarded either way.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Headers a client may not set on the CA's side of the proxy (`Expect`:
/// the proxy has read the whole body already).
const CLIENT_MAY_NOT_SET: [&str; 6] = [
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// `headers` without hop-by-hop fields, those the `Connection` field
/// names, and the framing (`Transfer-Encoding`, `Content-Length`: hyper
/// writes its own for the body it sends).
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || n == "transfer-encoding"
            || n == "content-length"
            || named.iter().any(|c| c == n)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// A JSON error in the CA's own shape (`code`, `message`).
fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl Forwarder {
    /// The forwarder for `config.ca.url`, trusting `root` (DER) only.
    pub fn new(config: &Config, root: &[u8], metrics: Arc<Metrics>) -> Result<Self, ForwardError> {
        let uri: Uri = config
            .ca
            .url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| ForwardError::Url(e.to_string()))?;
        if uri.scheme_str() != Some("https") {
            return Err(ForwardError::Url("must be https://".into()));
        }
        let host = uri
            .host()
            .ok_or_else(|| ForwardError::Url("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| host.clone());
        let authority =
            HeaderValue::from_str(&authority).map_err(|e| ForwardError::Url(e.to_string()))?;
        let server_name =
            ServerName::try_from(host.clone()).map_err(|e| ForwardError::Url(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(root.to_vec()))
            .map_err(|e| ForwardError::Root(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ForwardError::Root(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            host,
            port,
            authority,
            server_name,
            tls: TlsConnector::from(Arc::new(tls)),
            max_body: config.http.max_body_bytes,
            timeout: config.http.request_timeout,
            metrics,
        })
    }

    /// Serves one client connection (TLS already done) until it closes.
    pub async fn serve<S>(self: Arc<Self>, io: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let upstream: Arc<Mutex<Option<SendRequest<Full<Bytes>>>>> = Arc::new(Mutex::new(None));
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let this = self.clone();
            let upstream = upstream.clone();
            async move {
                let response = this.handle(request, peer, &upstream).await;
                Ok::<_, Infallible>(response)
            }
        });
        let served = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_headers(MAX_HEADERS)
            .max_buf_size(MAX_HEADER_BYTES.max(8192))
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), service)
            .await;
        if let Err(e) = served {
            tracing::debug!(event = "http_closed", peer = %peer, error = %e, "HTTP connection ended with an error");
        }
    }

    async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        upstream: &Mutex<Option<SendRequest<Full<Bytes>>>>,
    ) -> Response<Body> {
        // The path's first segment only: an enrollment link's path is its token.
        let route = match request.uri().path().split('/').nth(1) {
            Some("v1") => "v1",
            Some("enroll") => "enroll",
            Some("log") => "log",
            _ => "other",
        };
        let method = request.method().clone();
        let response = self.forward(request, peer, upstream).await;
        let status = response.status().as_u16();
        self.metrics.http_answered(status);
        tracing::info!(event = "http", peer = %peer, method = %method, route, status, "API call");
        response
    }

    async fn forward(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        upstream: &Mutex<Option<SendRequest<Full<Bytes>>>>,
    ) -> Response<Body> {
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        if request.method() == hyper::Method::CONNECT
            || !request.uri().path().starts_with('/')
            || !forwarded_path(request.uri().path())
        {
            return error(StatusCode::NOT_FOUND, "not_found", "no such page or API");
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is too large",
            );
        }
        let (parts, body) = request.into_parts();
        let body =
            match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, self.max_body).collect())
                .await
            {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the request body is too large",
                    )
                }
                Ok(Err(_)) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "malformed_request",
                        "the request body could not be read",
                    )
                }
                Err(_) => {
                    return error(
                        StatusCode::REQUEST_TIMEOUT,
                        "timeout",
                        "the request body did not arrive in time",
                    )
                }
            };
        let mut headers = end_to_end(&parts.headers);
        for name in CLIENT_MAY_NOT_SET {
            headers.remove(name);
        }
        headers.insert(header::HOST, self.authority.clone());
        // An address's text is always a valid header value.
        if let Ok(client) = HeaderValue::from_str(&peer.ip().to_string()) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), client);
        }
        let Ok(uri) = path_and_query.parse::<Uri>() else {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_request",
                "bad request target",
            );
        };
        let mut outgoing = Request::new(Full::new(body));
        *outgoing.method_mut() = parts.method;
        *outgoing.uri_mut() = uri;
        *outgoing.headers_mut() = headers;
        match tokio::time::timeout(self.timeout, self.send(outgoing, upstream)).await {
            Ok(Ok(response)) => {
                // hyper frames the answer from the body's known length
                // (or chunks it), so the CA's framing headers go.
                let (mut parts, body) = response.into_parts();
                parts.headers = end_to_end(&parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Ok(Err(e)) => {
                tracing::warn!(event = "http_upstream", error = %e, "the CA cannot be reached");
                error(
                    StatusCode::BAD_GATEWAY,
                    "unavailable",
                    "the CA cannot be reached through this proxy; try again shortly",
                )
            }
            Err(_) => error(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "the CA did not answer in time",
            ),
        }
    }

    /// Sends on this connection's upstream, opening one when there is none
    /// or the last one closed.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        upstream: &Mutex<Option<SendRequest<Full<Bytes>>>>,
    ) -> Result<Response<Incoming>, String> {
        let mut slot = upstream.lock().await;
        let reusable = match slot.as_mut() {
            Some(sender) if !sender.is_closed() => sender.ready().await.is_ok(),
            _ => false,
        };
        if !reusable {
            *slot = Some(self.connect().await?);
        }
        let Some(sender) = slot.as_mut() else {
            return Err("no connection".into());
        };
        let sent = sender.send_request(request).await;
        if sent.is_err() {
            *slot = None;
        }
        sent.map_err(|e| e.to_string())
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| format!("{}:{}: connect timed out", self.host, self.port))?
        .map_err(|e| format!("{}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.tls.connect(self.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| "TLS handshake with the CA timed out".to_owned())?
        .map_err(|e| format!("TLS with the CA: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_headers(128)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// A header name, for tests.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_the_cas_paths_are_forwarded() {
        for path in [
            "/v1/ca",
            "/v1/certs/begin",
            "/v1/log/proof/inclusion",
            "/enroll/abc",
            "/enroll/assets/enroll.js",
            "/log/checkpoint",
            "/log/tile/0/000",
        ] {
            assert!(forwarded_path(path), "{path}");
        }
        for path in [
            "/",
            "/metrics",
            "/healthz",
            "/v1/proxy/join",
            "/v1/proxy/feed",
            "/v1/../v1/proxy/join",
            "/v1/%2e%2e/proxy/join",
            "/v1/%2E%2E/x",
            "/log/./checkpoint",
            "/v1",
            "/v10/x",
            "/enroll",
            "/v1\\proxy",
        ] {
            assert!(!forwarded_path(path), "{path}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("content-length", HeaderValue::from_static("5"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.append("accept", HeaderValue::from_static("a"));
        h.append("accept", HeaderValue::from_static("b"));
        let out = end_to_end(&h);
        assert_eq!(out.len(), 3);
        assert_eq!(out.get_all("accept").iter().count(), 2);
        assert!(out.get("content-type").is_some());
        assert!(is_hop_by_hop(&HeaderName::from_static("upgrade")));
    }
}
