//! The log over HTTPS, laid out per C2SP tlog-tiles under `/log/` (so
//! standard tile clients and mirrors can follow it), plus inclusion and
//! consistency proofs under `/v1/log/proof/`.
//!
//! The log is public data. Store reads are short and run on the blocking
//! pool, never on the async workers.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use signet_log::tiles::TilePath;

use crate::store::LogStore;
use crate::Error;

/// The log's routes.
pub fn routes(store: Arc<dyn LogStore>) -> Router {
    Router::new()
        .route("/log/checkpoint", get(checkpoint))
        .route("/log/{*path}", get(tile))
        .route("/v1/log/proof/inclusion", get(inclusion))
        .route("/v1/log/proof/consistency", get(consistency))
        .with_state(store)
}

/// An error as the client sees it: a status and a reason, never internals.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = match self.0 {
            StatusCode::NOT_FOUND => signet_api::ErrorCode::NotFound,
            StatusCode::BAD_REQUEST => signet_api::ErrorCode::InvalidRequest,
            _ => signet_api::ErrorCode::Internal,
        };
        (self.0, Json(signet_api::ApiError::new(code, self.1))).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::BadRequest { .. } => Self(StatusCode::BAD_REQUEST, err.to_string()),
            Error::Log(e) => Self(StatusCode::BAD_REQUEST, e.to_string()),
            other => {
                log::error!("serving the log: {other}");
                Self(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?
        .map_err(ApiError::from)
}

/// The latest released checkpoint: with witnesses, only one that met
/// their policy is ever served.
fn published(store: &Arc<dyn LogStore>) -> Result<Arc<crate::store::SignedCheckpoint>, ApiError> {
    store.published_checkpoint().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "no checkpoint has met the witness policy since the CA started".into(),
        )
    })
}

async fn checkpoint(State(store): State<Arc<dyn LogStore>>) -> Result<Response, ApiError> {
    let latest = published(&store)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        latest.note.clone(),
    )
        .into_response())
}

async fn tile(
    State(store): State<Arc<dyn LogStore>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let parsed = TilePath::parse(&path)
        .map_err(|e| ApiError(StatusCode::NOT_FOUND, format!("not a tile path: {e}")))?;
    let full = parsed.is_full();
    let bytes = blocking(move || store.tile(&parsed)).await?;
    match bytes {
        Some(bytes) => {
            // Full tiles never change; partial ones are replaced by wider ones.
            let cache = if full {
                "public, max-age=31536000, immutable"
            } else {
                "no-store"
            };
            Ok((
                [
                    (header::CONTENT_TYPE, "application/octet-stream"),
                    (header::CACHE_CONTROL, cache),
                ],
                bytes,
            )
                .into_response())
        }
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "no such tile in the current tree".into(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    index: u64,
    size: Option<u64>,
}

fn encode_proof(proof: &[signet_log::merkle::Hash]) -> Vec<String> {
    proof
        .iter()
        .map(|h| base64::engine::general_purpose::STANDARD.encode(h))
        .collect()
}

async fn inclusion(
    State(store): State<Arc<dyn LogStore>>,
    query: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let size = match query.size {
        Some(size) => size,
        None => published(&store)?.size,
    };
    let index = query.index;
    let proof = blocking(move || store.inclusion_proof(index, size)).await?;
    Ok(Json(serde_json::json!({
        "index": index,
        "size": size,
        "inclusion_proof": encode_proof(&proof),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    old: u64,
    new: Option<u64>,
}

async fn consistency(
    State(store): State<Arc<dyn LogStore>>,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let new = match query.new {
        Some(new) => new,
        None => published(&store)?.size,
    };
    let old = query.old;
    let proof = blocking(move || store.consistency_proof(old, new)).await?;
    Ok(Json(serde_json::json!({
        "old": old,
        "new": new,
        "consistency_proof": encode_proof(&proof),
    }))
    .into_response())
}
