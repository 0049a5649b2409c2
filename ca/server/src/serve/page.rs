//! The enrollment page: one small HTML file and one script, served from the
//! binary, no framework and nothing from another origin. The token stays in
//! the path: no referrer leaves the page, nothing is cached.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const HTML: &str = include_str!("../../assets/enroll.html");
const SCRIPT: &str = include_str!("../../assets/enroll.js");

const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                   style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

fn headers(content_type: &'static str) -> [(header::HeaderName, &'static str); 6] {
    [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ]
}

/// `GET /enroll/<token>`: the page (its script reads the token from the path).
pub(super) async fn page() -> Response {
    (headers("text/html; charset=utf-8"), HTML).into_response()
}

/// `GET /enroll/assets/enroll.js`.
pub(super) async fn script() -> Response {
    (headers("text/javascript; charset=utf-8"), SCRIPT).into_response()
}
