//! The engineer's address behind an access proxy. Engineers reach the CA
//! through a proxy, so every request's TCP peer is the proxy; the CA's
//! per-source rate limits would count them all as one. For a peer listed
//! in `serve.trusted_proxies`, the client address is the last
//! `X-Forwarded-For` value (the one the proxy wrote, after dropping any
//! the client sent); for every other peer the header is ignored, so nobody
//! else can choose the address they are counted under.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

/// The last address in `X-Forwarded-For` (all fields, comma lists), if it
/// is one.
pub(super) fn last_forwarded(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Rewrites the request's peer address when it came from a trusted proxy.
fn rewrite(request: &mut Request, trusted: &[IpAddr]) {
    let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    else {
        return;
    };
    if !trusted.contains(&peer.ip()) {
        return;
    }
    if let Some(client) = last_forwarded(request.headers()) {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, 0)));
    }
}

/// `router` with the rewrite in front of it (nothing when no proxy is trusted).
pub(super) fn layer(router: Router, trusted: Vec<IpAddr>) -> Router {
    if trusted.is_empty() {
        return router;
    }
    let trusted: Arc<[IpAddr]> = trusted.into();
    router.layer(axum::middleware::from_fn(
        move |mut request: Request, next: Next| {
            let trusted = trusted.clone();
            async move {
                rewrite(&mut request, &trusted);
                let response: Response = next.run(request).await;
                response
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn with(peer: &str, xff: &[&str]) -> Request {
        let mut request = Request::new(axum::body::Body::empty());
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        for value in xff {
            request
                .headers_mut()
                .append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        request
    }

    fn peer(request: &Request) -> IpAddr {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .unwrap()
            .0
            .ip()
    }

    #[test]
    fn only_a_trusted_proxys_last_value_counts() {
        let trusted: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap()];
        let cases = [
            ("10.0.0.5:4000", &["192.0.2.7"][..], "192.0.2.7"),
            ("10.0.0.5:4000", &["1.1.1.1, 192.0.2.7"][..], "192.0.2.7"),
            ("10.0.0.5:4000", &["1.1.1.1", "192.0.2.8"][..], "192.0.2.8"),
            ("10.0.0.5:4000", &["2001:db8::1"][..], "2001:db8::1"),
            // Not an address: the proxy's own stays.
            ("10.0.0.5:4000", &["nonsense"][..], "10.0.0.5"),
            ("10.0.0.5:4000", &[][..], "10.0.0.5"),
            // Anyone else: the header is ignored.
            ("198.51.100.9:4000", &["192.0.2.7"][..], "198.51.100.9"),
        ];
        for (from, xff, want) in cases {
            let mut request = with(from, xff);
            rewrite(&mut request, &trusted);
            assert_eq!(
                peer(&request),
                want.parse::<IpAddr>().unwrap(),
                "{from} {xff:?}"
            );
        }
    }
}
