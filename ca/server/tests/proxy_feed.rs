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
    let mut daemon = ca.serve();
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
    assert!(body.contains("not a proxy's"), "{body}");

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
        .arg(format!("https://localhost:{}/v1/proxy/feed", daemon.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");

    // A proxy joins: invite, then its token and public key at
    // /v1/proxy/join on the public listener; once only.
    let token = ca.ok(&["proxies", "invite", "--name", "edge-1"]);
    openssl(
        &ca,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "proxy.key",
        ],
    );
    openssl(
        &ca,
        &[
            "ec",
            "-in",
            "proxy.key",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "proxy.spki",
        ],
    );
    let spki = std::fs::read(ca.path("proxy.spki")).unwrap();
    let body = json!({
        "token": token.trim_end(),
        "public_key": base64::engine::general_purpose::STANDARD.encode(&spki),
    });
    let (status, joined) = post_json(&ca, daemon.port, "/v1/proxy/join", &body);
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["name"], "edge-1");
    ca.write("proxy.pem", joined["certificate_pem"].as_str().unwrap());
    let (status, again) = post_json(&ca, daemon.port, "/v1/proxy/join", &body);
    assert_eq!(
        (status, again["code"].as_str()),
        (404, Some("invite_invalid")),
        "{again}"
    );
    let (status, bad) = post_json(
        &ca,
        daemon.port,
        "/v1/proxy/join",
        &json!({"token": "x", "public_key": "AAAA", "extra": 1}),
    );
    assert_eq!(status, 400, "{bad}");

    // With its certificate the feed streams: a snapshot at once, another
    // as soon as a lock is applied.
    let mut feed = FeedReader::open(&ca, port);
    let first = feed.next_snapshot();
    assert_eq!(first["nodes"][0]["name"], "web-1", "{first}");
    assert_eq!(first["device_locks"], json!([]));
    let started = std::time::Instant::now();
    ca.ok(&["lock", "--device", "4242", "--reason", "stolen"]);
    let next = feed.next_snapshot();
    println!(
        "lock reached the feed {:?} after the lock command started",
        started.elapsed()
    );
    assert_eq!(next["device_locks"][0]["serial"], 4242, "{next}");
    assert!(next["log_size"].as_u64() > first["log_size"].as_u64());
    drop(feed);

    // After a restart the CA still knows the proxy's certificate (from the log).
    daemon.terminate();
    drop(daemon);
    let text = std::fs::read_to_string(&ca.config).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("listen = \"127.0.0.1:") {
                "listen = \"127.0.0.1:8441\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&ca.config, text.join("\n") + "\n").unwrap();
    let _daemon = ca.serve();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy listener did not come back"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut feed = FeedReader::open(&ca, port);
    assert_eq!(feed.next_snapshot()["device_locks"][0]["serial"], 4242);
}

fn post_json(ca: &Ca, port: u16, path: &str, body: &Value) -> (u16, Value) {
    post_json_as(ca, port, path, body, None)
}

fn post_json_as(
    ca: &Ca,
    port: u16,
    path: &str,
    body: &Value,
    client: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    if let Some((cert, key)) = client {
        cmd.arg("--cert")
            .arg(ca.path(cert))
            .arg("--key")
            .arg(ca.path(key));
    }
    let out = cmd
        .args([
            "-sS",
            "--max-time",
            "10",
            "-H",
            "content-type: application/json",
            "--data-binary",
            "@-",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(ca.path("root.pem"))
        .arg(format!("https://localhost:{port}{path}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(body.to_string().as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// The feed read by curl with the proxy's certificate, line by line;
/// curl is killed when this is dropped.
struct FeedReader {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl FeedReader {
    fn open(ca: &Ca, port: u16) -> Self {
        Self::open_with(ca, port, "proxy.pem", "proxy.key")
    }

    fn open_with(ca: &Ca, port: u16, cert: &str, key: &str) -> Self {
        use std::io::BufRead as _;
        let mut child = Command::new("curl")
            .args(["-sS", "-N", "--max-time", "60", "--cacert"])
            .arg(ca.path("root.pem"))
            .arg("--cert")
            .arg(ca.path(cert))
            .arg("--key")
            .arg(ca.path(key))
            .arg(format!("https://localhost:{port}/v1/proxy/feed"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    /// The next snapshot's view (heartbeats skipped).
    fn next_snapshot(&mut self) -> Value {
        loop {
            let line = self.lines.next().expect("the feed ended").unwrap();
            let message = signet_api::proxy::FeedMessage::parse_line(line.as_bytes()).unwrap();
            if let signet_api::proxy::FeedMessage::Snapshot { .. } = message {
                let value: Value = serde_json::from_str(&line).unwrap();
                return value["view"].clone();
            }
        }
    }
}

impl Drop for FeedReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// `signet-proxy` from the same target directory as this test (built by
/// `cargo build -p signet-proxy`; nextest over the workspace builds it).
fn signet_proxy_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = dir.join("signet-proxy");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p signet-proxy`",
        binary.display()
    );
    binary
}

#[test]
fn proxy_feed_signet_proxy_join_writes_an_identity_the_feed_admits() {
    let ca = Ca::initialised("proxy-join");
    ca.write("roles.yaml", ROLES);
    ca.ok(&["roles", "apply", ca.path("roles.yaml").to_str().unwrap()]);
    let root_pem = ca.ok(&["export", "x509-ca"]);
    ca.write("root.pem", &root_pem);
    let port = signet_testkit::free_port();
    set_serve(&ca.config, "proxy_listen", &format!("127.0.0.1:{port}"));
    let daemon = ca.serve();
    let token = ca.ok(&["proxies", "invite", "--name", "edge-2"]);
    ca.write("join-token", &token);

    let example = include_str!("../../../deploy/proxy.example.toml");
    let config = example
        .replace(
            "https://ca.internal.example:8441",
            &format!("https://localhost:{}", daemon.port),
        )
        .replace(
            "https://ca.internal.example:8442",
            &format!("https://localhost:{port}"),
        )
        .replace(
            "/etc/signet/x509-ca.pem",
            ca.path("root.pem").to_str().unwrap(),
        )
        .replace(
            "/var/lib/signet-proxy/proxy.key",
            ca.path("proxy.key").to_str().unwrap(),
        )
        .replace(
            "/var/lib/signet-proxy/proxy.pem",
            ca.path("proxy.pem").to_str().unwrap(),
        )
        .replace(
            "/etc/signet/proxy-join-token",
            ca.path("join-token").to_str().unwrap(),
        );
    let config_path = ca.write("proxy.toml", &config);
    let join = || {
        Command::new(signet_proxy_binary())
            .args(["join", "--config"])
            .arg(&config_path)
            .env_remove("SIGNET_PROXY_JOIN_TOKEN")
            .output()
            .unwrap()
    };

    let out = join();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("joined as edge-2"), "{stderr}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(ca.path("proxy.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!stderr.contains(token.trim()), "the token was printed");

    // The identity it wrote opens the feed.
    let mut feed = FeedReader::open(&ca, port);
    let view = feed.next_snapshot();
    assert_eq!(view["users"][0]["name"], "alice", "{view}");
    drop(feed);

    // signet-proxy renew: a new pair replaces the old one on disk.
    std::fs::copy(ca.path("proxy.pem"), ca.path("old.pem")).unwrap();
    std::fs::copy(ca.path("proxy.key"), ca.path("old.key")).unwrap();
    let out = Command::new(signet_proxy_binary())
        .args(["renew", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("renewed as edge-2"), "{stderr}");
    assert_ne!(
        std::fs::read(ca.path("proxy.pem")).unwrap(),
        std::fs::read(ca.path("old.pem")).unwrap()
    );
    assert_ne!(
        std::fs::read(ca.path("proxy.key")).unwrap(),
        std::fs::read(ca.path("old.key")).unwrap()
    );
    let mode = std::fs::metadata(ca.path("proxy.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (_, old_again) = post_json_as(
        &ca,
        port,
        "/v1/proxy/renew",
        &json!({"public_key": "AAAA"}),
        Some(("old.pem", "old.key")),
    );
    assert_eq!(old_again["code"], "not_allowed", "{old_again}");

    // Renewal on the proxy listener with the certificate being renewed:
    // once per certificate; the new one opens the feed.
    openssl(
        &ca,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "renewed.key",
        ],
    );
    openssl(
        &ca,
        &[
            "ec",
            "-in",
            "renewed.key",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "renewed.spki",
        ],
    );
    let renew = json!({
        "public_key": base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(ca.path("renewed.spki")).unwrap()),
    });
    let client = Some(("proxy.pem", "proxy.key"));
    let (status, renewed) = post_json_as(&ca, port, "/v1/proxy/renew", &renew, client);
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["name"], "edge-2");
    ca.write("renewed.pem", renewed["certificate_pem"].as_str().unwrap());
    let (status, again) = post_json_as(&ca, port, "/v1/proxy/renew", &renew, client);
    assert_eq!(again["code"], "not_allowed", "{status} {again}");
    let mut feed = FeedReader::open_with(&ca, port, "renewed.pem", "renewed.key");
    assert_eq!(feed.next_snapshot()["users"][0]["name"], "alice");
    drop(feed);

    // Again: the token is spent and the files exist; nothing replaced.
    let key_before = std::fs::read(ca.path("proxy.key")).unwrap();
    let out = join();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(ca.path("proxy.key")).unwrap(), key_before);

    // No token anywhere: says where to put one.
    std::fs::remove_file(ca.path("join-token")).unwrap();
    let no_file = config.replace(
        &format!("token_file = \"{}\"", ca.path("join-token").display()),
        "",
    );
    std::fs::write(&config_path, no_file).unwrap();
    let out = join();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SIGNET_PROXY_JOIN_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
