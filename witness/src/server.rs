//! `signet-witness serve`: the HTTP interface (tlog-witness v1).
//!
//! - `POST /add-checkpoint`: the witness's one write call; see
//!   [`crate::witness`] for the checks and [`crate::protocol`] for the format.
//! - `GET /healthz`: `ok` and the latest cosigned size of every log.
//!
//! Plain HTTP/1.1 with keep-alive: requests are authenticated by the log's
//! signature and answers by the witness's, so TLS adds no integrity here
//! (put a TLS proxy in front to hide the traffic). Bodies above
//! `max_body_bytes` are refused (413), requests that take longer than
//! `request_timeout` are cut (503). Every refusal is logged with its reason.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::Router;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::protocol::{ADD_CHECKPOINT_PATH, TLOG_SIZE_CONTENT_TYPE};
use crate::witness::{Refusal, Witness};

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// What the handlers share.
#[derive(Clone)]
struct AppState {
    witness: Arc<Witness>,
    max_body: usize,
}

async fn add_checkpoint(State(app): State<AppState>, body: Body) -> Response {
    let body = match axum::body::to_bytes(body, app.max_body).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(
                status = 413,
                reason = %e,
                max_body_bytes = app.max_body,
                "add-checkpoint refused: body too large or unreadable"
            );
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain; charset=utf-8",
                format!(
                    "the body is larger than {} bytes or unreadable\n",
                    app.max_body
                ),
            );
        }
    };
    // Blocking work (a signature, possibly by a token; two fsyncs) runs on
    // this worker thread, the runtime moving its other tasks elsewhere: no
    // hand-off to another thread and back on every request.
    match tokio::task::block_in_place(|| app.witness.add_checkpoint(&body)) {
        Ok(cosigned) => {
            tracing::info!(
                origin = %cosigned.origin,
                old_size = cosigned.old_size,
                size = cosigned.size,
                "cosigned"
            );
            text(StatusCode::OK, "text/plain; charset=utf-8", cosigned.lines)
        }
        Err(refused) => {
            let status = refused.refusal.status();
            let (old_size, size) = refused
                .sizes
                .map_or((None, None), |(o, s)| (Some(o), Some(s)));
            tracing::warn!(
                origin = refused.origin.as_deref().unwrap_or("-"),
                old_size,
                size,
                status,
                reason = refused.refusal.reason(),
                "add-checkpoint refused"
            );
            if let Some(note) = &refused.evidence {
                // Signed by the log and contradicting what was cosigned:
                // keep it, it proves the log forked.
                tracing::error!(
                    origin = refused.origin.as_deref().unwrap_or("-"),
                    checkpoint = %note.escape_debug(),
                    "the log signed a checkpoint inconsistent with the one cosigned (evidence of a fork)"
                );
            }
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match refused.refusal {
                Refusal::Conflict { latest_size, .. } | Refusal::Fork { latest_size, .. } => {
                    text(code, TLOG_SIZE_CONTENT_TYPE, format!("{latest_size}\n"))
                }
                other => text(
                    code,
                    "text/plain; charset=utf-8",
                    format!("{}\n", other.reason()),
                ),
            }
        }
    }
}

async fn healthz(State(app): State<AppState>) -> Response {
    let mut body = String::from("ok\n");
    for (origin, size) in app.witness.sizes() {
        match size {
            Some(s) => body.push_str(&format!("{origin} {s}\n")),
            None => body.push_str(&format!("{origin} -\n")),
        }
    }
    text(StatusCode::OK, "text/plain; charset=utf-8", body)
}

async fn not_found() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "no such route; a witness answers POST /add-checkpoint\n".into(),
    )
}

async fn deadline(req: Request, next: Next, timeout: Duration) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?timeout, "request cut: it took longer than request_timeout");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "the request took too long\n".into(),
            )
        }
    }
}

/// The router, without a socket (benchmarks drive it directly). It must
/// run on tokio's multi-thread runtime (the handler blocks in place).
pub fn app(witness: Arc<Witness>, max_body: usize, timeout: Duration) -> Router {
    Router::new()
        .route(ADD_CHECKPOINT_PATH, post(add_checkpoint))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(AppState { witness, max_body })
        // The handler reads the body itself, with max_body as its bound.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| deadline(req, next, timeout),
        ))
}

/// Serves until SIGTERM or SIGINT.
pub fn run(config: &Config, witness: Witness) -> Result<()> {
    let witness = Arc::new(witness);
    let app = app(
        witness.clone(),
        config.max_body_bytes,
        config.request_timeout,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Server(format!("cannot start the runtime: {e}")))?;
    let listen = config.listen;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::Server(format!("cannot listen on {listen}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::Server(format!("listener: {e}")))?;
        tracing::info!(
            listen = %bound,
            vkey = %witness.vkey(),
            logs = ?witness.sizes(),
            "signet-witness serving"
        );
        // Answers are small and latency matters: no Nagle delay.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| Error::Server(format!("serving: {e}")))
    })?;
    tracing::info!("signet-witness stopped");
    Ok(())
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
