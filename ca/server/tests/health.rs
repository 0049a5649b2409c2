//! `GET /v1/health` tells the truth: 200 while the CA can issue, 503 with
//! the part and the reason when it cannot.
//!
//! SoftHSM2 keeps serving keys from memory when its token files vanish, so
//! a dead HSM cannot be produced with it; the daemon's router is driven
//! here with the real CA, store and service and an HSM check that fails,
//! which is what `serve` wires to a token that stopped answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod touchkit;

use std::sync::Arc;

use signet_ca::ca_keys::CaKeys;
use signet_ca::config::Config;
use signet_ca::store::configured::{open, OpenKind};
use signet_ca::touch::Service;
use touchkit::TouchCa;

fn get(port: u16, path: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

#[test]
fn health_says_503_and_why_when_the_hsm_stops_answering() {
    let t = TouchCa::new("health");
    // This test is its own process (nextest), so the variable is ours.
    std::env::set_var("SOFTHSM2_CONF", t.ca.hsm.conf());
    let config = Config::load(&t.ca.config).unwrap();
    let keys = CaKeys::open(&config).unwrap();
    let (signer, mark) = keys.log_signer(&config).unwrap();
    // The configured store: the embedded one, or PostgreSQL in the
    // suite's PostgreSQL run.
    let store = open(
        &config,
        signer.clone(),
        signer.verifier().clone(),
        mark,
        None,
        OpenKind::Existing,
    )
    .unwrap();
    let authority = keys.authority(config.clone(), store.clone()).unwrap();
    let service = Arc::new(Service::new(config, authority, store).unwrap());
    let healthy = signet_ca::serve::hsm_probe(&keys);
    let dead: signet_ca::serve::api::HsmProbe =
        Arc::new(|| Err("the HSM does not answer: CKR_DEVICE_REMOVED".into()));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ports: Vec<u16> = [healthy, dead]
        .into_iter()
        .map(|probe| {
            let app = signet_ca::serve::app(service.clone(), probe);
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                tokio::spawn(async move { axum::serve(listener, app).await });
                port
            })
        })
        .collect();

    // The real token answers.
    let (status, health) = get(ports[0], "/v1/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["ok"], true);
    assert_eq!(health["hsm"]["ok"], true);
    assert!(health["log"]["size"].as_u64().unwrap() > 0);

    // A token that stopped answering: 503, the HSM named with the reason,
    // the store still fine.
    let (status, health) = get(ports[1], "/v1/health");
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["ok"], false);
    assert_eq!(health["hsm"]["ok"], false);
    assert_eq!(
        health["hsm"]["reason"],
        "the HSM does not answer: CKR_DEVICE_REMOVED"
    );
    assert_eq!(health["store"]["ok"], true);
}
