//! The proxy's observability against real peers (see `edge`): `/healthz`
//! follows the CA's feed (503 before the first view, 200 once synced, 503
//! again when the view goes stale), `/metrics` is valid Prometheus text
//! whose counters follow what happens (tunnels, bytes, refusals by reason,
//! a lock's cut and its propagation delay, the feed's state), and a stale
//! view refuses new tunnels with `view_stale`. Also: the running proxy
//! renews its certificates at half life and keeps serving with the new
//! server certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod edge;

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use edge::{eventually, http_get, read_line, run_ok, sample, wait_exit, Edge};

#[test]
fn health_and_metrics_follow_the_feed_the_tunnels_and_a_lock() {
    let mut edge = Edge::new(&[], "1h");
    // The proxy starts while the CA is down: never synced.
    edge.stop_ca();
    edge.start_proxy();
    let (status, body) = http_get(edge.metrics_port, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not synced"), "{body}");
    let m = edge.metrics();
    assert_eq!(sample(&m, "signet_proxy_feed_synced"), 0.0);
    assert_eq!(sample(&m, "signet_proxy_feed_connected"), 0.0);
    assert_eq!(sample(&m, "signet_proxy_feed_last_heard_seconds"), -1.0);
    let mut refused = edge.tunnel(true);
    let reply = read_line(&mut refused);
    assert!(
        reply.starts_with("signet-ssh/1 refused not_synced:"),
        "{reply}"
    );
    wait_exit(&mut refused, Duration::from_secs(10), "a refused tunnel");
    // Anything else on the metrics port: 404.
    assert_eq!(http_get(edge.metrics_port, "/").0, 404);

    // The CA comes up: the proxy syncs, health turns 200.
    edge.start_ca();
    let healthy = edge.wait_healthy();
    assert!(healthy.starts_with("ok: view at log size"), "{healthy}");
    let m = edge.metrics();
    assert_eq!(sample(&m, "signet_proxy_feed_synced"), 1.0);
    assert_eq!(sample(&m, "signet_proxy_feed_connected"), 1.0);
    assert!(sample(&m, "signet_proxy_view_log_size") > 0.0);
    let heard = sample(&m, "signet_proxy_feed_last_heard_seconds");
    assert!((0.0..10.0).contains(&heard), "{heard}");
    assert_eq!(
        sample(&m, "signet_proxy_refusals_total{reason=\"not_synced\"}"),
        1.0
    );
    assert!(sample(&m, "signet_proxy_certificate_not_after_seconds") > 1.7e9);

    // A tunnel to the echo node: counted open, its bytes as they flow.
    let mut tunnel = edge.tunnel(true);
    assert_eq!(read_line(&mut tunnel), "signet-ssh/1 ok\n");
    tunnel
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello through the proxy\n")
        .unwrap();
    assert_eq!(read_line(&mut tunnel), "hello through the proxy\n");
    let m = edge.metrics();
    assert_eq!(sample(&m, "signet_proxy_tunnels_open"), 1.0);
    assert_eq!(sample(&m, "signet_proxy_tunnels_total"), 1.0);
    assert!(sample(&m, "signet_proxy_tunnel_bytes_total{direction=\"up\"}") >= 24.0);
    assert!(sample(&m, "signet_proxy_tunnel_bytes_total{direction=\"down\"}") >= 24.0);

    // No client certificate: refused and counted by its reason.
    let mut bare = edge.tunnel(false);
    let reply = read_line(&mut bare);
    assert!(
        reply.starts_with("signet-ssh/1 refused no_certificate:"),
        "{reply}"
    );
    wait_exit(
        &mut bare,
        Duration::from_secs(10),
        "a tunnel without a certificate",
    );

    // The lock: the tunnel is cut, the cut and its delay are in the metrics.
    let locked = Instant::now();
    edge.ca(&["lock", "--user", "alice", "--reason", "metrics test"]);
    wait_exit(&mut tunnel, Duration::from_secs(10), "the locked tunnel");
    println!(
        "lock to tunnel closed: {} ms (signet-ca lock included)",
        locked.elapsed().as_millis()
    );
    let m = eventually(Duration::from_secs(5), "the cut counted", || {
        let m = edge.metrics();
        (sample(&m, "signet_proxy_tunnels_cut_total{reason=\"user_locked\"}") == 1.0).then_some(m)
    });
    assert_eq!(sample(&m, "signet_proxy_tunnels_open"), 0.0);
    assert_eq!(
        sample(&m, "signet_proxy_lock_propagation_seconds_count"),
        1.0
    );
    let delay = sample(&m, "signet_proxy_lock_propagation_seconds_sum");
    println!("lock propagation (view arrival to cut) as the proxy measured it: {delay:.6} s");
    assert!((0.0..1.0).contains(&delay), "{delay}");
    assert_eq!(
        sample(&m, "signet_proxy_refusals_total{reason=\"no_certificate\"}"),
        1.0
    );
    edge.ca(&["unlock", "--user", "alice", "--reason", "done"]);

    // An API call through the port is counted by its status class.
    let (_, status, _) = edge.curl(&[&edge.via_proxy("/log/checkpoint")]);
    assert_eq!(status, 200);
    assert!(
        sample(
            &edge.metrics(),
            "signet_proxy_http_requests_total{class=\"2xx\"}"
        ) >= 1.0
    );

    // The CA goes away: after stale_after (10 s here) without a heartbeat
    // the proxy fails closed for new tunnels, and says why.
    edge.stop_ca();
    let stopped = Instant::now();
    let body = eventually(Duration::from_secs(30), "healthz 503 stale", || {
        let (status, body) = http_get(edge.metrics_port, "/healthz");
        (status == 503).then_some(body)
    });
    println!("stale after {:?}: {}", stopped.elapsed(), body.trim());
    assert!(body.starts_with("stale:"), "{body}");
    assert!(stopped.elapsed() >= Duration::from_secs(5));
    let mut stale = edge.tunnel(true);
    let reply = read_line(&mut stale);
    assert!(
        reply.starts_with("signet-ssh/1 refused view_stale:"),
        "{reply}"
    );
    wait_exit(
        &mut stale,
        Duration::from_secs(10),
        "a tunnel on a stale view",
    );
    let m = edge.metrics();
    assert_eq!(sample(&m, "signet_proxy_feed_connected"), 0.0);
    assert!(sample(&m, "signet_proxy_feed_last_heard_seconds") > 10.0);
    assert_eq!(
        sample(&m, "signet_proxy_refusals_total{reason=\"view_stale\"}"),
        1.0
    );

    // The CA back: fresh again.
    edge.start_ca();
    edge.wait_healthy();
    let mut again = edge.tunnel(true);
    assert_eq!(read_line(&mut again), "signet-ssh/1 ok\n");
    let _ = again.kill();
    let _ = again.wait();
}

/// The serial of the certificate the proxy serves now.
fn served_serial(edge: &Edge) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", edge.proxy_port))
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-verify_return_error", "-CAfile"])
        .arg(&edge.root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(shown.contains("Verify return code: 0 (ok)"), "{shown}");
    let start = shown.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = shown.find("-----END CERTIFICATE-----").unwrap() + 25;
    let pem = edge.path("now-served.pem");
    std::fs::write(&pem, &shown[start..end]).unwrap();
    run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(&pem),
    )
    .trim()
    .to_owned()
}

#[test]
fn the_running_proxy_renews_both_certificates_at_half_life() {
    // Proxy certificates of 30 s: renewed about 15 s after the join.
    let mut edge = Edge::new(
        &[(
            "x509_client_max_ttl = \"8h\"",
            "x509_client_max_ttl = \"30s\"",
        )],
        "20s",
    );
    edge.start_proxy();
    edge.wait_healthy();
    let first = served_serial(&edge);
    let client_before = std::fs::read_to_string(edge.path("proxy.pem")).unwrap();
    let started = Instant::now();
    let renewed = eventually(Duration::from_secs(60), "a renewal", || {
        let m = edge.metrics();
        (sample(&m, "signet_proxy_renewals_total{outcome=\"renewed\"}") >= 1.0).then_some(m)
    });
    println!("renewed {:?} after serving began", started.elapsed());
    assert_eq!(
        sample(&renewed, "signet_proxy_renewals_total{outcome=\"failed\"}"),
        0.0,
        "{}",
        edge.proxy_log_text()
    );
    // The new server certificate is served, checked by name and root, and
    // the client certificate on disk changed with it.
    let second = served_serial(&edge);
    assert_ne!(first, second);
    assert_ne!(
        std::fs::read_to_string(edge.path("proxy.pem")).unwrap(),
        client_before
    );
    let (code, status, _) = edge.curl(&[&edge.via_proxy("/log/checkpoint")]);
    assert_eq!((code, status), (0, 200));
    // The feed reconnects with the renewed certificate after the old one
    // ends: still healthy once the first certificate has expired.
    std::thread::sleep(Duration::from_secs(20).saturating_sub(started.elapsed()));
    edge.wait_healthy();
    assert!(edge.proxy_log_text().contains("\"event\":\"renewed\""));
}
