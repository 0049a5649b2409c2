//! The CA's HTTPS routes under `/v1/` and the enrollment page.
//!
//! Every error is an [`ApiError`] JSON body with a stable code; a body that
//! does not parse names the field; every route has a body limit and a
//! deadline. The work itself runs on the blocking pool (HSM signatures and
//! durable log appends block), never on the async workers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use signet_api::health::{Component, Health, LogStatus};
use signet_api::{ApiError, ErrorCode};

use crate::touch::{Refusal, Service};

/// Checks that the HSM answers; `Err` says why not.
pub type HsmProbe = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The touch flow.
    pub service: Arc<Service>,
    /// The HSM check behind `/v1/health`.
    pub hsm_probe: HsmProbe,
}

/// An error response.
pub struct ErrorResponse(pub ApiError);

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.0)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<Refusal> for ErrorResponse {
    fn from(refusal: Refusal) -> Self {
        Self(refusal.to_api())
    }
}

fn error(code: ErrorCode, message: impl Into<String>) -> ErrorResponse {
    ErrorResponse(ApiError::new(code, message))
}

/// A JSON body parsed into `T`, or an error naming what is wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ErrorResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let route = req.uri().path().to_owned();
        read_json(req, state)
            .await
            .map(ApiJson)
            .inspect_err(|refused| {
                // Refused before the service sees it, and still a refusal: one
                // structured event, as the service logs its own.
                tracing::warn!(
                    event = "refused",
                    route = %route,
                    reason = refused.0.code.as_str(),
                    code = refused.0.code.as_str(),
                    detail = %refused.0.message,
                    "request refused"
                );
            })
    }
}

/// The body as `T`, or the error naming what is wrong with it.
async fn read_json<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, ErrorResponse> {
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                error(ErrorCode::BodyTooLarge, "the request body is too large")
            } else {
                error(
                    ErrorCode::MalformedRequest,
                    format!("cannot read the body: {}", e.body_text()),
                )
            }
        })?;
    let malformed = |e: &dyn std::fmt::Display| {
        error(
            ErrorCode::MalformedRequest,
            format!("the JSON body does not parse: {e}"),
        )
    };
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    // The path names the field that failed (`attestation[1]`,
    // `assertion.response.signature`): serde_json's own message has
    // only a line and a column.
    let value = serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            malformed(e.inner())
        } else {
            malformed(&format!("{path}: {}", e.inner()))
        }
    })?;
    json.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

/// The client's address, when the listener knows it.
pub struct Source(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Source(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

async fn blocking<T: Serialize + Send + 'static>(
    job: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<Json<T>, ErrorResponse> {
    match tokio::task::spawn_blocking(job).await {
        Ok(Ok(value)) => Ok(Json(value)),
        Ok(Err(refusal)) => Err(refusal.into()),
        Err(_) => Err(Refusal::internal("a request task failed").into()),
    }
}

/// The `/v1/` routes and the enrollment page, with limits.
pub fn routes(state: AppState, max_body: usize, timeout: Duration) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/ca", get(ca_info))
        .route("/v1/certs/begin", post(certs_begin))
        .route("/v1/certs/finish", post(certs_finish))
        .route("/v1/enroll/begin", post(enroll_begin))
        .route("/v1/enroll/finish", post(enroll_finish))
        .route(signet_api::nodes::NODE_JOIN_PATH, post(nodes_join))
        .route(signet_api::nodes::NODE_RENEW_PATH, post(nodes_renew))
        .route("/enroll/{token}", get(super::page::page))
        .route("/enroll/assets/enroll.js", get(super::page::script))
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| deadline(req, next, timeout),
        ))
}

/// Cuts a request that takes longer than the deadline.
async fn deadline(req: Request, next: Next, timeout: Duration) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => error(
            ErrorCode::Unavailable,
            "the request took too long; try again",
        )
        .into_response(),
    }
}

/// 404 for everything else, as JSON.
pub async fn not_found() -> ErrorResponse {
    error(ErrorCode::NotFound, "no such route")
}

/// `GET /v1/ca`: the log's origin and verifier key, the X.509 root and the
/// SSH host CA,
/// for a client to pin at its first login (and to compare after).
async fn ca_info(
    State(state): State<AppState>,
) -> Result<Json<signet_api::ca::CaInfo>, ErrorResponse> {
    use der::EncodePem as _;
    let service = &state.service;
    let vkey = service.store().verifier().ok_or_else(|| {
        error(
            ErrorCode::Unavailable,
            "this CA's store does not publish its log key",
        )
    })?;
    let x509_root_pem = service
        .authority()
        .root()
        .to_pem(der::pem::LineEnding::LF)
        .map_err(|_| ErrorResponse::from(Refusal::internal("cannot encode the X.509 root")))?;
    let ssh_host_ca = service
        .authority()
        .ssh_host_ca_line()
        .map_err(|e| ErrorResponse::from(Refusal::internal(e)))?;
    Ok(Json(signet_api::ca::CaInfo {
        log: signet_api::ca::CaLog {
            origin: vkey.name().to_owned(),
            vkey: vkey.to_string(),
        },
        x509_root_pem,
        ssh_host_ca,
    }))
}

async fn health(State(state): State<AppState>) -> Response {
    let probe = state.hsm_probe.clone();
    let service = state.service.clone();
    let result = tokio::task::spawn_blocking(move || {
        let hsm = probe();
        // A store that fails, or a directory that could not follow the
        // log (another replica's entry it cannot apply): either stops
        // issuance, and the reason is shown here.
        let store = service
            .store()
            .failure()
            .or_else(|| service.directory_failure());
        let checkpoint = service.store().latest_checkpoint();
        let witnesses = service.store().witness_states();
        let witness_failure = service.store().witness_failure();
        (hsm, store, checkpoint, witnesses, witness_failure)
    })
    .await;
    let Ok((hsm, store, checkpoint, witnesses, witness_failure)) = result else {
        return error(ErrorCode::Internal, "the health check failed").into_response();
    };
    let component = |failure: Option<String>| Component {
        ok: failure.is_none(),
        reason: failure,
    };
    let health = Health {
        ok: hsm.is_ok() && store.is_none() && witness_failure.is_none(),
        hsm: component(hsm.err()),
        store: component(store),
        log: LogStatus {
            size: checkpoint.size,
            root_hash: base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                checkpoint.root,
            ),
            origin: state.service.config().log_origin(),
        },
        witnesses: witnesses
            .into_iter()
            .map(|w| signet_api::health::WitnessStatus {
                name: w.name,
                ok: w.ok,
                reason: w.reason,
                size: w.size,
            })
            .collect(),
    };
    let status = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CACHE_CONTROL, "no-store")], Json(health)).into_response()
}

async fn certs_begin(
    State(state): State<AppState>,
    Source(source): Source,
    ApiJson(request): ApiJson<signet_api::certs::BeginRequest>,
) -> Result<Json<signet_api::certs::BeginResponse>, ErrorResponse> {
    blocking(move || state.service.begin_cert(&request, source)).await
}

async fn certs_finish(
    State(state): State<AppState>,
    Source(source): Source,
    ApiJson(request): ApiJson<signet_api::certs::FinishRequest>,
) -> Result<Json<signet_api::certs::FinishResponse>, ErrorResponse> {
    blocking(move || state.service.finish_cert(&request, source)).await
}

async fn enroll_begin(
    State(state): State<AppState>,
    Source(source): Source,
    ApiJson(request): ApiJson<signet_api::enroll::EnrollBeginRequest>,
) -> Result<Json<signet_api::enroll::EnrollBeginResponse>, ErrorResponse> {
    blocking(move || state.service.enroll_begin(&request, source)).await
}

/// `POST /v1/nodes/join`: a node's join token and host keys buy its host
/// certificates (see `signet_api::nodes`).
async fn nodes_join(
    State(state): State<AppState>,
    Source(source): Source,
    ApiJson(request): ApiJson<signet_api::nodes::NodeJoinRequest>,
) -> Result<Json<signet_api::nodes::NodeCertificates>, ErrorResponse> {
    blocking(move || state.service.join_node(&request, source)).await
}

/// `POST /v1/nodes/renew`: a node renews its host certificates, signing
/// with each host key.
async fn nodes_renew(
    State(state): State<AppState>,
    Source(source): Source,
    ApiJson(request): ApiJson<signet_api::nodes::NodeRenewRequest>,
) -> Result<Json<signet_api::nodes::NodeCertificates>, ErrorResponse> {
    blocking(move || state.service.renew_node(&request, source)).await
}

async fn enroll_finish(
    State(state): State<AppState>,
    Source(source): Source,
    ApiJson(request): ApiJson<signet_api::enroll::EnrollFinishRequest>,
) -> Result<Json<signet_api::enroll::EnrollFinishResponse>, ErrorResponse> {
    blocking(move || state.service.enroll_finish(&request, source)).await
}
