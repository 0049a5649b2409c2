//! `signet-ca serve`: the CA daemon.
//!
//! HTTPS only (rustls, TLS 1.3), on `serve.listen`: the touch flow under
//! `/v1/certs/` and `/v1/enroll/`, the enrollment page, `/v1/health`, and
//! the log under `/log/` and `/v1/log/proof/`. Its TLS certificate is
//! issued at start by the CA's own X.509 key and logged. Beside it: the
//! admin socket, Prometheus metrics on a loopback listener, and a renewal
//! task for the TLS certificate. SIGTERM (or SIGINT) stops accepting,
//! lets requests in flight finish (10 s at most), removes the socket.

pub mod api;
mod forwarded;
mod log_routes;
pub mod metrics;
mod page;
pub mod proxy_feed;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;

pub use log_routes::routes as log_routes;

use crate::ca_keys::CaKeys;
use crate::config::Config;
use crate::store::LogStore;
use crate::touch::Service;
use crate::{admin, Error, Result};

/// How long requests in flight may take to finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// How often a directory that fell behind the log tries again.
const CATCH_UP_RETRY: Duration = Duration::from_secs(1);

/// The daemon's whole router (without a socket, so tests can drive it).
pub fn app(service: Arc<Service>, hsm_probe: api::HsmProbe) -> Router {
    let config = service.config().clone();
    let router = Router::new()
        .merge(log_routes(service.store().clone()))
        .merge(proxy_feed::join_routes(service.clone()))
        .merge(api::routes(
            api::AppState { service, hsm_probe },
            config.serve.max_body_bytes,
            config.serve.request_timeout,
        ))
        .fallback(api::not_found);
    forwarded::layer(router, config.serve.trusted_proxies.clone())
}

/// The HSM check behind `/v1/health`: a lookup on the token (a real round
/// trip to the device, logged in); a YubiKey CA is checked by its last
/// signature only.
pub fn hsm_probe(keys: &CaKeys) -> api::HsmProbe {
    match keys.token() {
        Some(token) => {
            let token = token.clone();
            Arc::new(move || {
                token
                    .read_data_objects("signet-health-probe")
                    .map(|_| ())
                    .map_err(|e| format!("the HSM does not answer: {e}"))
            })
        }
        None => Arc::new(|| Ok(())),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(config: Config, keys: CaKeys, store: Arc<dyn LogStore>) -> Result<()> {
    let authority = keys.authority(config.clone(), store.clone())?;
    let metrics = metrics::Metrics::new();
    let service = Arc::new(
        Service::new(config.clone(), authority, store)?.with_observer(Box::new(metrics.clone())),
    );
    if let Some(remote) = service.store().remote_appends() {
        // A weak handle: the thread must not keep the store open at shutdown;
        // the channel closes when the store goes.
        let service = Arc::downgrade(&service);
        std::thread::Builder::new()
            .name("signet-catch-up".into())
            .spawn(move || loop {
                // Woken by each report; while the directory is behind (an
                // entry could not be read or applied), tried again every
                // second as well, so a database back from an outage lets
                // it catch up by itself.
                let reported = match remote.recv_timeout(CATCH_UP_RETRY) {
                    Ok(_) => true,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => false,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                };
                let Some(service) = service.upgrade() else {
                    break;
                };
                if !reported && service.directory_failure().is_none() {
                    continue;
                }
                if let Err(e) = service.catch_up() {
                    tracing::error!(event = "catch_up_failed", error = %e, "cannot apply entries another replica appended");
                }
            })
            .map_err(|e| Error::Store(format!("cannot start the catch-up thread: {e}")))?;
    }
    let probe = hsm_probe(&keys);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Store(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        // Every listener is bound before the TLS certificate is issued and
        // logged: a daemon that cannot start logs nothing.
        let listen = config.serve.listen;
        let https = std::net::TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| Error::bad("serve.listen", format!("cannot listen on {listen}: {e}")))?;
        let socket = config
            .serve
            .admin_socket
            .clone()
            .unwrap_or_else(|| config.data_dir.join("admin.sock"));
        let (admin_listener, _socket_file) =
            admin::bind(&socket, config.serve.admin_group.as_deref())?;
        let metrics_listener = match config.serve.metrics_listen {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Error::bad(
                    "serve.metrics_listen",
                    format!("cannot listen on {addr}: {e}"),
                )
            })?),
            None => None,
        };
        let proxy_listener = match config.serve.proxy_listen {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Error::bad(
                    "serve.proxy_listen",
                    format!("cannot listen on {addr}: {e}"),
                )
            })?),
            None => None,
        };
        // Issuing blocks (the HSM, the store: PostgreSQL's client runs a
        // runtime of its own, which may not start on this thread).
        let (tls, resolver) = tokio::task::block_in_place(|| tls::server_config(&service))?;
        let proxy_task = proxy_feed::spawn(proxy_listener, &service, resolver.clone())?;
        let admin_task = tokio::spawn(admin::serve(
            admin_listener,
            service.clone(),
            config.serve.admin_group.clone(),
        ));
        let renew_task = tokio::spawn(tls::renew(service.clone(), resolver));
        let metrics_task = match metrics_listener {
            Some(listener) => {
                let service = service.clone();
                let router = Router::new().route(
                    "/metrics",
                    get(move || {
                        let service = service.clone();
                        let metrics = metrics.clone();
                        async move {
                            // Rendering reads the store (pending ceremonies
                            // in the database, on PostgreSQL): blocking work.
                            let text =
                                tokio::task::spawn_blocking(move || metrics.render(&service))
                                    .await
                                    .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
                            Ok::<_, axum::http::StatusCode>((
                                [(
                                    axum::http::header::CONTENT_TYPE,
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )],
                                text,
                            ))
                        }
                    }),
                );
                Some(tokio::spawn(
                    async move { axum::serve(listener, router).await },
                ))
            }
            None => None,
        };
        let handle = axum_server::Handle::new();
        // TCP_NODELAY on every connection: the TLS handshake's last flight
        // and the response are small writes in a row, and with Nagle's
        // algorithm one waits for the peer's delayed ACK (~40 ms).
        let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(RustlsConfig::from_config(tls))
            .acceptor(axum_server::accept::NoDelayAcceptor::new());
        let server = axum_server::from_tcp(https)
            .acceptor(acceptor)
            .handle(handle.clone())
            .serve(app(service.clone(), probe).into_make_service_with_connect_info::<SocketAddr>());
        let watcher = handle.clone();
        tokio::spawn(async move {
            if let Some(addr) = watcher.listening().await {
                tracing::info!(event = "listening", %addr, "serving HTTPS");
                eprintln!(
                    "signet-ca: serving https://{addr}/ (log: {} entries); admin socket {}",
                    service.store().latest_checkpoint().size,
                    socket.display()
                );
            }
            shutdown().await;
            tracing::info!(event = "stopping", "signal received: draining requests");
            watcher.graceful_shutdown(Some(DRAIN));
        });
        let served = server.await;
        admin_task.abort();
        renew_task.abort();
        if let Some(task) = proxy_task {
            task.abort();
        }
        if let Some(task) = metrics_task {
            task.abort();
        }
        served.map_err(|e| Error::bad("serve.listen", format!("cannot serve on {listen}: {e}")))
    })
}

async fn shutdown() {
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}
