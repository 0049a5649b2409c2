//! The proxies' side of the CA: the view their feed carries (through
//! `signet-ca proxies view`), and the mTLS-only proxy listener, which real
//! TLS clients (curl, openssl) cannot use without a certificate from this
//! CA, with a certificate from another CA, or with a user's certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod touchkit;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use common::Ca;
use serde_json::{json, Value};

const ROLES: &str = "\
kind: role
name: sre
allow:
  logins: [root]
  node_labels: { env: [prod] }
options: { max_session_ttl: 8h, hardware_key: touch, session_mfa: false }
---
kind: user
name: alice
roles: [sre]
";

const NODES: &str = "\
kind: node
name: web-1
address: 127.0.0.1:2222
labels: { env: prod }
";

fn set_serve(config: &Path, key: &str, value: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let commented = format!("# {key} = ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&commented))
        .unwrap_or_else(|| panic!("no {commented} in the example config"))
        .to_owned();
    std::fs::write(config, text.replace(&line, &format!("{key} = {value:?}"))).unwrap();
}

/// curl over TLS to the proxy listener; returns (exit code, HTTP status or
/// 0, body, stderr).
fn curl(ca: &Ca, port: u16, cert: Option<(&Path, &Path)>) -> (i32, u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "5", "--cacert"])
        .arg(ca.path("root.pem"))
        .args(["-o", "-", "-w", "\n%{http_code}"]);
    if let Some((cert, key)) = cert {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    cmd.arg(format!("https://localhost:{port}/v1/proxy/feed"));
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    (
        out.status.code().unwrap_or(-1),
        code.trim().parse().unwrap_or(0),
        body.to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn openssl(ca: &Ca, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(ca.path(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn proxy_feed_view_and_the_mtls_listener() {
    let ca = Ca::initialised("proxy-feed");
    ca.write("roles.yaml", ROLES);
    ca.write("nodes.yaml", NODES);
    ca.ok(&["roles", "apply", ca.path("roles.yaml").to_str().unwrap()]);
    ca.ok(&["nodes", "apply", ca.path("nodes.yaml").to_str().unwrap()]);
    ca.ok(&["lock", "--device", "4242", "--reason", "lost on a train"]);
    ca.ok(&[
        "lock", "--user", "alice", "--reason", "leave", "--ttl", "1h",
    ]);
    let root_pem = ca.ok(&["export", "x509-ca"]);
    ca.write("root.pem", &root_pem);

    // The view, as the feed would send it now.
    let view: Value = serde_json::from_str(&ca.ok(&["proxies", "view"])).unwrap();
    assert_eq!(
        view["nodes"],
        json!([{"name": "web-1", "address": "127.0.0.1:2222", "labels": {"env": "prod"}}])
    );
    assert_eq!(
        view["users"],
        json!([{"name": "alice", "access": [{"role": "sre", "logins": ["root"], "node_labels": {"env": ["prod"]}}]}])
    );
    assert_eq!(view["device_locks"][0]["serial"], 4242);
    assert_eq!(view["device_locks"][0]["reason"], "lost on a train");
    assert!(view["device_locks"][0].get("until").is_none());
    assert_eq!(view["user_locks"][0]["user"], "alice");
    assert!(view["user_locks"][0]["until"].as_u64().unwrap() > view["time"].as_u64().unwrap());
    let (_, root_der) = der::pem::decode_vec(root_pem.as_bytes()).unwrap();
    let shown = base64::engine::general_purpose::STANDARD
        .decode(view["x509_root"].as_str().unwrap())
        .unwrap();
    assert_eq!(shown, root_der);
    // The view parses as the feed's own type, so a proxy reads it.
    let line = format!("{{\"type\":\"snapshot\",\"v\":1,\"view\":{view}}}");
    signet_api::proxy::FeedMessage::parse_line(line.as_bytes()).unwrap();

    // The unlock ends the device lock in the view.
    ca.ok(&["unlock", "--device", "4242"]);
    let view: Value = serde_json::from_str(&ca.ok(&["proxies", "view"])).unwrap();
    assert_eq!(view["device_locks"], json!([]));

    // A user's certificate from this CA, and one from another CA.
    openssl(
        &ca,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "user.key",
        ],
    );
    openssl(
        &ca,
        &["ec", "-in", "user.key", "-pubout", "-out", "user.pub.pem"],
    );
    let user_pem = ca.ok(&[
        "sign",
        "x509-client",
        "--user",
        "alice",
        "--ttl",
        "1h",
        "--public-key",
        ca.path("user.pub.pem").to_str().unwrap(),
    ]);
    ca.write("user.pem", &user_pem);
    openssl(
        &ca,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-subj",
            "/CN=proxy",
            "-days",
            "1",
            "-addext",
            "subjectAltName=URI:signet://example.com/proxy/edge-1",
        ],
    );

    let port = signet_testkit::free_port();
    set_serve(&ca.config, "proxy_listen", &format!("127.0.0.1:{port}"));
    let _daemon = ca.serve();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy listener did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // No client certificate: the handshake fails (TLS 1.3 reports it as
    // the server's alert on the first read).
    let (exit, status, _, err) = curl(&ca, port, None);
    assert!(exit != 0 && status == 0, "{exit} {status} {err}");
    assert!(
        err.contains("certificate required") || err.contains("alert"),
        "{err}"
    );

    // Another CA's certificate, even one naming a proxy: refused in the handshake.
    let (exit, status, _, err) = curl(
        &ca,
        port,
        Some((&ca.path("other.pem"), &ca.path("other.key"))),
    );
    assert!(exit != 0 && status == 0, "{exit} {status} {err}");

    // A user's certificate from this CA: the handshake passes, the feed
    // says no, with the reason.
    let (exit, status, body, err) = curl(
        &ca,
        port,
        Some((&ca.path("user.pem"), &ca.path("user.key"))),
    );
    assert_eq!((exit, status), (0, 403), "{body} {err}");
    assert!(body.contains("names no proxy"), "{body}");

    // The public listener asks for no client certificate and has no feed.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
        ])
        .arg(ca.path("root.pem"))
        .arg(format!("https://localhost:{}/v1/proxy/feed", _daemon.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
}

#[test]
fn proxy_invites_print_a_token_logged_by_its_hash_that_never_enrolls() {
    let mut t = touchkit::TouchCa::new("proxy-invite");
    t.serve();
    let out =
        t.ca.run(&["proxies", "invite", "--name", "edge-1", "--ttl", "30m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.lines().count(), 1, "{token}");
    let token = token.trim_end();
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("Join token for proxy edge-1 until"), "{note}");
    assert!(note.contains("never on a command line"), "{note}");

    // Refusals: a bad name, a TTL out of bounds.
    for args in [
        &["proxies", "invite", "--name", "edge 1"][..],
        &["proxies", "invite", "--name", "edge-1", "--ttl", "8d"],
        &["proxies", "invite", "--name", "edge-1", "--ttl", "0s"],
    ] {
        assert_eq!(t.ca.run(args).status.code(), Some(2), "{args:?}");
    }

    // The token is no enrollment invite: refused like a made-up one.
    let (status, refused) = t.post("/v1/enroll/begin", &json!({ "token": token }));
    let (made_up_status, made_up) = t.post("/v1/enroll/begin", &json!({ "token": "A".repeat(43) }));
    assert_ne!(status, 200, "{refused}");
    assert_eq!(
        (status, &refused["code"]),
        (made_up_status, &made_up["code"]),
        "{refused}"
    );

    // The log holds the invite by the token's hash, subject proxy:edge-1,
    // and never the token.
    t.daemon.take();
    let dir = t.ca.path("export");
    t.ca.ok(&["log", "export", dir.to_str().unwrap()]);
    let mut found = false;
    for path in files_under(&dir.join("tile/entries")) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token is in the log"
        );
        let hash = hex_sha256(token.as_bytes());
        found |= bytes.windows(hash.len()).any(|w| w == hash.as_bytes())
            && bytes
                .windows(b"proxy:edge-1".len())
                .any(|w| w == b"proxy:edge-1");
    }
    assert!(
        found,
        "no invite entry with the token's hash and subject proxy:edge-1"
    );
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
