//! The CA's API through the proxy's one port, against real peers (see
//! `edge`): curl, openssl and the `signet` client reach the CA's public
//! listener through `signet-proxy serve`, trusting the CA's X.509 root
//! alone and checking the proxy's host name in its server certificate.
//! Bad requests are refused cleanly: paths the CA does not serve, the
//! proxies' own join, bodies over the limit, malformed HTTP, a request
//! head that never ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod edge;

use std::io::{Read as _, Write as _};
use std::process::Command;
use std::time::Duration;

use edge::{binary, run_ok, wait_exit, Edge};

#[test]
fn the_cas_api_through_the_proxy_checked_by_the_cas_root_and_the_proxys_name() {
    let mut edge = Edge::new(&[], "1h");
    edge.start_proxy();
    edge.wait_healthy();

    // A proxy asking for a name the CA does not allow it (here the CA's
    // own) gets nothing, and its invite is not spent: the same token then
    // joins with allowed names.
    let token = edge.ca(&["proxies", "invite", "--name", "edge-2"]);
    std::fs::write(edge.path("join-token-2"), token).unwrap();
    let config = std::fs::read_to_string(&edge.proxy_config)
        .unwrap()
        .replace("join-token", "join-token-2")
        .replace("proxy.key", "proxy-2.key")
        .replace("proxy.pem", "proxy-2.pem");
    let greedy = edge.path("proxy-2-greedy.toml");
    std::fs::write(
        &greedy,
        config.replace(
            "public_names = [\"localhost\", \"127.0.0.1\"]",
            "public_names = [\"localhost\", \"ca.example.com\"]",
        ),
    )
    .unwrap();
    let out = Command::new(binary("signet-proxy"))
        .args(["join", "--config"])
        .arg(&greedy)
        .env_remove("SIGNET_PROXY_JOIN_TOKEN")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("does not allow proxies the name ca.example.com"),
        "{said}"
    );
    assert!(!edge.path("proxy-2.key").exists() && !edge.path("proxy-2-server.pem").exists());
    let fair = edge.path("proxy-2.toml");
    std::fs::write(&fair, &config).unwrap();
    run_ok(
        Command::new(binary("signet-proxy"))
            .args(["join", "--config"])
            .arg(&fair)
            .env_remove("SIGNET_PROXY_JOIN_TOKEN"),
    );
    assert!(edge.path("proxy-2-server.pem").exists());

    // The proxy's server certificate: from the CA, for its public names,
    // a TLS server's (openssl reads it as the reference tool).
    let s_client = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", edge.proxy_port))
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args([
            "-verify_return_error",
            "-alpn",
            "http/1.1",
            "-showcerts",
            "-CAfile",
        ])
        .arg(&edge.root)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&s_client.stdout).into_owned();
    assert!(
        shown.contains("Verify return code: 0 (ok)"),
        "{shown}{}",
        String::from_utf8_lossy(&s_client.stderr)
    );
    assert!(shown.contains("ALPN protocol: http/1.1"), "{shown}");
    let leaf = &shown[shown.find("-----BEGIN CERTIFICATE-----").unwrap()
        ..shown.find("-----END CERTIFICATE-----").unwrap() + 25];
    std::fs::write(edge.path("served.pem"), leaf).unwrap();
    let text = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(edge.path("served.pem")),
    );
    assert!(text.contains("DNS:localhost"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(!text.contains("TLS Web Client Authentication"), "{text}");
    assert!(
        !text.contains("URI:signet://"),
        "the client certificate is not served: {text}"
    );

    // The log's checkpoint and a /v1 call, through the proxy and directly:
    // the same answers (curl checks the name and trusts only the root).
    for path in ["/log/checkpoint", "/v1/ca", "/v1/health"] {
        let (code, status, body) = edge.curl(&[&edge.via_proxy(path)]);
        let (_, direct_status, direct_body) = edge.curl(&[&edge.direct(path)]);
        assert_eq!(code, 0, "{path}: curl exit {code}: {body}");
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!((status, &body), (direct_status, &direct_body), "{path}");
    }
    // By the IP address it names too.
    let (code, status, _) = edge.curl(&[&format!(
        "https://127.0.0.1:{}/log/checkpoint",
        edge.proxy_port
    )]);
    assert_eq!((code, status), (0, 200));
    // A name it does not carry: curl refuses the certificate (exit 60).
    let (code, _, body) = edge.curl(&[
        "--resolve",
        &format!("wrong.example:{}:127.0.0.1", edge.proxy_port),
        &format!("https://wrong.example:{}/log/checkpoint", edge.proxy_port),
    ]);
    assert_eq!(
        code, 60,
        "a name outside the certificate was accepted: {body}"
    );

    // A POST with a body: the CA's refusal, status and JSON, unchanged.
    for body in ["{", "{\"token\":\"no-such-invite\"}"] {
        let args = |url: String| {
            vec![
                "-X".to_owned(),
                "POST".into(),
                "-H".into(),
                "content-type: application/json".into(),
                "--data-binary".into(),
                body.to_owned(),
                url,
            ]
        };
        let a = args(edge.via_proxy("/v1/enroll/begin"));
        let b = args(edge.direct("/v1/enroll/begin"));
        let through = edge.curl(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let direct = edge.curl(&b.iter().map(String::as_str).collect::<Vec<_>>());
        assert!((400..500).contains(&through.1), "{through:?}");
        assert_eq!(through, direct, "{body}");
        assert!(through.2.contains("\"code\""), "{through:?}");
    }
    // A larger body, announced with Expect: 100-continue: the same answer.
    let padded = format!("{{\"token\":\"{}\"}}", "x".repeat(5000));
    let post = |url: String| {
        edge.curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &padded,
            &url,
        ])
    };
    let through = post(edge.via_proxy("/v1/enroll/begin"));
    assert!((400..500).contains(&through.1), "{through:?}");
    assert_eq!(through, post(edge.direct("/v1/enroll/begin")));
    // The enrollment page for a link (whatever the CA answers, as it answers it).
    let page = edge.curl(&[&edge.via_proxy("/enroll/not-a-token")]);
    assert_eq!(page, edge.curl(&[&edge.direct("/enroll/not-a-token")]));

    // The real client: `signet audit verify` reads the whole log through
    // the proxy (ureq, no ALPN), the CA's root its only TLS anchor.
    std::fs::write(edge.path("log-key"), edge.ca(&["export", "log-key"])).unwrap();
    let home = edge.path("auditor-home");
    std::fs::create_dir_all(&home).unwrap();
    let audit = run_ok(
        Command::new(binary("signet"))
            .env("HOME", &home)
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .args(["audit", "verify", "--quiet", "--json", "--log"])
            .arg(edge.via_proxy("/log/"))
            .arg("--key")
            .arg(edge.path("log-key"))
            .args(["--origin", "ca.example.com/signet-log", "--tls-ca"])
            .arg(&edge.root),
    );
    println!("signet audit verify through the proxy: {}", audit.trim());
    // The proxy's server certificate is in that log, as an admin-sign
    // entry naming its public names and the proxy.
    let export = run_ok(
        Command::new(binary("signet"))
            .env("HOME", &home)
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .args(["audit", "export", "--quiet", "--format", "jsonl", "--log"])
            .arg(edge.via_proxy("/log/"))
            .arg("--key")
            .arg(edge.path("log-key"))
            .args(["--origin", "ca.example.com/signet-log", "--tls-ca"])
            .arg(&edge.root),
    );
    let server_entry = export
        .lines()
        .find(|l| l.contains("proxy join (edge-1)") && l.contains("\"admin-sign\""))
        .unwrap_or_else(|| panic!("no server certificate entry:\n{export}"));
    assert!(
        server_entry.contains("\"principals\":[\"localhost\",\"127.0.0.1\"]"),
        "{server_entry}"
    );

    // Not the CA's to answer through the proxy: 404 here, whatever the CA
    // would say (its join is for proxies, not for the internet).
    for path in [
        "/",
        "/metrics",
        "/healthz",
        "/v1/proxy/join",
        "/v1/proxy/feed",
        "/v1/../v1/proxy/join",
        "/v1/%2e%2e/v1/proxy/join",
    ] {
        let (code, status, body) = edge.curl(&["--path-as-is", &edge.via_proxy(path)]);
        assert_eq!((code, status), (0, 404), "{path}: {body}");
        assert!(body.contains("not_found"), "{path}: {body}");
    }
    let (_, direct_join, _) = edge.curl(&[
        "-X",
        "POST",
        "--data-binary",
        "{}",
        &edge.direct("/v1/proxy/join"),
    ]);
    assert_ne!(direct_join, 404, "the CA itself serves the join");

    // A body over the limit (64 KiB): 413, declared or chunked.
    let big = edge.path("big.json");
    std::fs::write(&big, vec![b'x'; 70_000]).unwrap();
    let data = format!("@{}", big.display());
    let url = edge.via_proxy("/v1/enroll/begin");
    for extra in [&[][..], &["-H", "Transfer-Encoding: chunked"][..]] {
        let mut args = vec!["-X", "POST", "--data-binary", &data];
        args.extend_from_slice(extra);
        args.push(&url);
        let (code, status, body) = edge.curl(&args);
        assert_eq!((code, status), (0, 413), "{extra:?}: {body}");
        assert!(body.contains("body_too_large"), "{body}");
    }

    // Malformed HTTP: a 400 and the connection closed; no ALPN at all is
    // taken as HTTP/1.1 (what plain clients send).
    let mut garbage = edge.s_client(&[]);
    garbage
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"THIS IS NOT HTTP\r\n\r\n")
        .unwrap();
    wait_exit(&mut garbage, Duration::from_secs(20), "a malformed request");
    let mut answer = String::new();
    garbage
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut answer)
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");

    // A head larger than the limit: refused, closed.
    let mut huge = edge.s_client(&["-alpn", "http/1.1"]);
    let filler = "a".repeat(20_000);
    huge.stdin
        .as_mut()
        .unwrap()
        .write_all(
            format!("GET /log/checkpoint HTTP/1.1\r\nHost: x\r\nX-Fill: {filler}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    wait_exit(&mut huge, Duration::from_secs(20), "an oversized head");
    let mut answer = String::new();
    huge.stdout
        .take()
        .unwrap()
        .read_to_string(&mut answer)
        .unwrap();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer:?}"
    );

    // A head that never ends, and a connection that sends nothing: closed
    // after the header timeout (10 s).
    let opened = std::time::Instant::now();
    let mut idle = edge.s_client(&["-alpn", "http/1.1"]);
    let mut slow = edge.s_client(&["-alpn", "http/1.1"]);
    slow.stdin
        .as_mut()
        .unwrap()
        .write_all(b"GET /log/checkpoint HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let waited = wait_exit(&mut slow, Duration::from_secs(40), "a slow request head");
    println!("an unfinished request head was closed after {waited:?}");
    assert!(waited >= Duration::from_secs(5), "{waited:?}");

    // A connection that never sends a request: closed after the same 10 s.
    wait_exit(&mut idle, Duration::from_secs(40), "an idle connection");
    let waited = opened.elapsed();
    println!("an idle HTTP connection was closed within {waited:?}");
    assert!(waited >= Duration::from_secs(5), "{waited:?}");

    // Each call is a log event, without the path (an enrollment link's
    // path is its secret token).
    let log = edge.proxy_log_text();
    assert!(log.contains("\"event\":\"http\""), "{log}");
    assert!(log.contains("\"route\":\"enroll\""), "{log}");
    assert!(!log.contains("not-a-token"), "{log}");

    // The CA down: the proxy answers 502 in the CA's error shape.
    edge.stop_ca();
    let (code, status, body) = edge.curl(&[&edge.via_proxy("/log/checkpoint")]);
    assert_eq!((code, status), (0, 502), "{body}");
    assert!(body.contains("unavailable"), "{body}");
}

/// One `POST /v1/enroll/begin` with an unknown invite from `source` (a
/// loopback address) to `url`, with extra curl arguments: the CA's code.
fn enroll_begin_from(edge: &Edge, source: &str, url: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "-4",
        "--interface",
        source,
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        "{\"token\":\"no-such-invite\"}",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let (code, status, body) = edge.curl(&args);
    assert_eq!(code, 0, "{body}");
    assert!((400..500).contains(&status), "{status} {body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["code"].as_str().unwrap().to_owned()
}

#[test]
fn behind_a_trusted_proxy_each_engineer_has_their_own_rate_limit() {
    // The CA counts 3 requests per source and minute, and trusts the
    // proxy's X-Forwarded-For (the proxy's address is 127.0.0.1).
    let mut edge = Edge::new(
        &[
            ("per_source_per_minute = 120", "per_source_per_minute = 3"),
            (
                "# trusted_proxies = [\"10.0.0.5\"]",
                "trusted_proxies = [\"127.0.0.1\"]",
            ),
        ],
        "1h",
    );
    edge.start_proxy();
    edge.wait_healthy();
    let via = edge.via_proxy("/v1/enroll/begin");
    for _ in 0..3 {
        assert_eq!(
            enroll_begin_from(&edge, "127.0.0.2", &via, &[]),
            "invite_invalid"
        );
    }
    assert_eq!(
        enroll_begin_from(&edge, "127.0.0.2", &via, &[]),
        "rate_limited"
    );
    // Naming another address does not move a client to another bucket:
    // the proxy writes the header itself.
    assert_eq!(
        enroll_begin_from(
            &edge,
            "127.0.0.2",
            &via,
            &["-H", "X-Forwarded-For: 127.0.0.3"]
        ),
        "rate_limited"
    );
    // Another engineer behind the same proxy is not held back.
    assert_eq!(
        enroll_begin_from(&edge, "127.0.0.3", &via, &[]),
        "invite_invalid"
    );
    // Straight at the CA, a client's own header is ignored (its peer is no proxy).
    let direct = edge.direct("/v1/enroll/begin");
    assert_eq!(
        enroll_begin_from(
            &edge,
            "127.0.0.2",
            &direct,
            &["-H", "X-Forwarded-For: 127.0.0.9"]
        ),
        "rate_limited"
    );
}
