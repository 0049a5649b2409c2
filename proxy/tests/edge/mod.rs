//! The real peers of the proxy's server-side tests (forwarding, server
//! certificate, metrics, health): the CA daemon (`signet-ca` on SoftHSM2)
//! with its proxy listener, configured from deploy/signet-ca.example.toml
//! to allow proxies the names `localhost` and `127.0.0.1` and WebAuthn at
//! the proxy's origin; a `signet-proxy` joined with those public names
//! (deploy/proxy.example.toml) and metrics on a loopback port; a plain TCP
//! echo server as the node `echo-1`; alice's X.509 client certificate on a
//! file key. Clients are the reference tools: curl and openssl, checking
//! the proxy against the CA's root alone.
//!
//! Needs `signet-ca` and `signet-proxy` built in this target directory
//! (`cargo build --all-features -p signet-ca -p signet-proxy`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use signet_testkit::child::{spawn_tied, Daemon};
use signet_testkit::{free_port, SoftHsm};

/// A binary of this workspace, next to the test's own directory.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo build --all-features -p {name}`",
        path.display()
    );
    path
}

/// Runs a command, asserts it succeeded, returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Waits until something accepts TCP connections on the port.
pub fn wait_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` until it returns `Some`, at most `limit`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain HTTP/1.1 GET on the loopback port: status and body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Prometheus text: every sample as (name with labels, value); panics on a
/// line that is neither a comment, a sample nor the closing `# EOF`.
pub fn parse_metrics(text: &str) -> Vec<(String, f64)> {
    assert!(text.trim_end().ends_with("# EOF"), "no # EOF:\n{text}");
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number in {line:?}"));
        let bare = name.split('{').next().unwrap();
        assert!(
            bare.starts_with("signet_proxy_")
                && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {bare:?}"
        );
        if let Some(labels) = name.strip_prefix(bare) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "labels of {line:?}"
            );
        }
        samples.push((name.to_owned(), value));
    }
    samples
}

/// One sample's value (exact name with labels), 0 when absent.
pub fn sample(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0.0, |(_, v)| *v)
}

/// A TCP echo server for the node: echoes each connection's bytes.
pub fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn self_signed(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.pem"));
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
            ])
            .arg(dir.join(format!("{name}.key")))
            .arg("-out")
            .arg(&out)
            .args(["-subj", "/CN=unused-root", "-days", "1"]),
    );
    out
}

/// Everything the tests touch.
pub struct Edge {
    pub proxy_port: u16,
    pub ca_port: u16,
    pub feed_port: u16,
    pub metrics_port: u16,
    /// The CA's X.509 root (PEM).
    pub root: PathBuf,
    /// alice's file key and X.509 client certificate.
    pub key: PathBuf,
    pub cert: PathBuf,
    pub proxy_config: PathBuf,
    ca_config: PathBuf,
    proxy_logs: usize,
    proxy: Option<Daemon>,
    ca_daemon: Option<Daemon>,
    pub hsm: SoftHsm,
}

impl Edge {
    /// The CA initialised (roles, the node `echo-1`, alice's certificate),
    /// its daemon serving, the proxy joined but not serving yet.
    /// `ca_settings` replaces lines of the CA's example configuration.
    /// alice's certificate is valid for `user_ttl`.
    pub fn new(ca_settings: &[(&str, &str)], user_ttl: &str) -> Edge {
        let hsm = SoftHsm::create("proxy-edge");
        let dir = hsm.dir().to_owned();
        let fido = self_signed(&dir, "fido-roots");
        let piv = self_signed(&dir, "piv-roots");
        let (proxy_port, ca_port, feed_port, metrics_port) =
            (free_port(), free_port(), free_port(), free_port());
        let mut config = hsm
            .ca_config_from(include_str!("../../../deploy/signet-ca.example.toml"))
            .replace(
                "listen = \"127.0.0.1:8441\"",
                &format!("listen = \"127.0.0.1:{ca_port}\""),
            )
            .replace(
                "# proxy_listen = \"0.0.0.0:8442\"",
                &format!("proxy_listen = \"127.0.0.1:{feed_port}\""),
            )
            .replace(
                "proxy_names = [\"proxy.example.com\"]",
                "proxy_names = [\"localhost\", \"127.0.0.1\"]",
            )
            .replace("rp_id = \"ca.example.com\"", "rp_id = \"localhost\"")
            // Engineers reach the CA through the proxy: its origin is the
            // one their security keys sign.
            .replace(
                "origin = \"https://ca.example.com\"",
                &format!("origin = \"https://localhost:{proxy_port}\""),
            )
            .replace(
                "attestation_roots = [\"/usr/share/signet/yubico-fido-roots.pem\"]",
                &format!("attestation_roots = [\"{}\"]", fido.display()),
            )
            .replace(
                "yubico = true",
                &format!("yubico = false\nroots = [\"{}\"]", piv.display()),
            );
        for (from, to) in ca_settings {
            assert!(config.contains(from), "{from:?} is not in the example");
            config = config.replace(from, to);
        }
        let ca_config = dir.join("signet-ca.toml");
        std::fs::write(&ca_config, config).unwrap();
        let mut edge = Edge {
            proxy_port,
            ca_port,
            feed_port,
            metrics_port,
            root: dir.join("root.pem"),
            key: dir.join("user.key"),
            cert: dir.join("user.pem"),
            proxy_config: dir.join("proxy.toml"),
            ca_config,
            proxy_logs: 0,
            proxy: None,
            ca_daemon: None,
            hsm,
        };
        edge.ca(&["init"]);
        let echo = echo_server();
        std::fs::write(
            dir.join("roles.yaml"),
            "kind: role\nname: sre\nallow:\n  logins: [alice]\n  node_labels: { env: [prod] }\n\
             options: { max_session_ttl: 8h, hardware_key: touch, session_mfa: false }\n---\n\
             kind: user\nname: alice\nroles: [sre]\n",
        )
        .unwrap();
        edge.ca(&["roles", "apply", dir.join("roles.yaml").to_str().unwrap()]);
        std::fs::write(
            dir.join("nodes.yaml"),
            format!(
                "kind: node\nname: echo-1\naddress: 127.0.0.1:{echo}\nlabels: {{ env: prod }}\n"
            ),
        )
        .unwrap();
        edge.ca(&["nodes", "apply", dir.join("nodes.yaml").to_str().unwrap()]);
        run_ok(
            Command::new("openssl")
                .args([
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                ])
                .arg(&edge.key),
        );
        run_ok(
            Command::new("openssl")
                .arg("ec")
                .arg("-in")
                .arg(&edge.key)
                .arg("-pubout")
                .arg("-out")
                .arg(dir.join("user.pub.pem")),
        );
        let pem = edge.ca(&[
            "sign",
            "x509-client",
            "--user",
            "alice",
            "--ttl",
            user_ttl,
            "--public-key",
            dir.join("user.pub.pem").to_str().unwrap(),
        ]);
        std::fs::write(&edge.cert, pem).unwrap();
        let root = edge.ca(&["export", "x509-ca"]);
        std::fs::write(&edge.root, root).unwrap();
        edge.start_ca();
        edge.join();
        edge
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.hsm.dir().join(name)
    }

    /// `signet-ca --config … ARGS` (through the admin socket while the daemon runs).
    pub fn ca(&self, args: &[&str]) -> String {
        let out = self.ca_run(args);
        assert!(
            out.status.success(),
            "signet-ca {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn ca_run(&self, args: &[&str]) -> Output {
        Command::new(binary("signet-ca"))
            .env("SOFTHSM2_CONF", self.hsm.conf())
            .arg("--config")
            .arg(&self.ca_config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ca_log(&self) -> PathBuf {
        self.path("ca.log")
    }

    pub fn start_ca(&mut self) {
        assert!(self.ca_daemon.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.ca_log())
            .unwrap();
        self.ca_daemon = Some(Daemon::new(
            spawn_tied(
                binary("signet-ca").to_str().unwrap(),
                &[
                    "--config".as_ref(),
                    self.ca_config.as_os_str(),
                    "serve".as_ref(),
                ],
                |c| {
                    c.env("SOFTHSM2_CONF", self.hsm.conf())
                        .stdin(Stdio::null())
                        .stderr(log);
                },
            )
            .unwrap(),
        ));
        wait_port(self.ca_port, "signet-ca serve", &self.ca_log());
        wait_port(self.feed_port, "the CA's proxy listener", &self.ca_log());
    }

    /// Stops (SIGKILL) the CA daemon.
    pub fn stop_ca(&mut self) {
        drop(self.ca_daemon.take());
    }

    fn join(&mut self) {
        let token = self.ca(&["proxies", "invite", "--name", "edge-1"]);
        std::fs::write(self.path("join-token"), token).unwrap();
        let p = |name: &str| self.path(name).to_str().unwrap().to_owned();
        let config = include_str!("../../../deploy/proxy.example.toml")
            .replace("0.0.0.0:443", &format!("127.0.0.1:{}", self.proxy_port))
            .replace(
                "public_names = [\"proxy.example.com\"]",
                "public_names = [\"localhost\", \"127.0.0.1\"]",
            )
            .replace(
                "# metrics_listen = \"127.0.0.1:9443\"",
                &format!("metrics_listen = \"127.0.0.1:{}\"", self.metrics_port),
            )
            .replace("# stale_after = \"30s\"", "stale_after = \"10s\"")
            .replace(
                "https://ca.internal.example:8441",
                &format!("https://localhost:{}", self.ca_port),
            )
            .replace(
                "https://ca.internal.example:8442",
                &format!("https://localhost:{}", self.feed_port),
            )
            .replace("/etc/signet/x509-ca.pem", &p("root.pem"))
            .replace("/var/lib/signet-proxy/proxy.key", &p("proxy.key"))
            .replace("/var/lib/signet-proxy/proxy.pem", &p("proxy.pem"))
            .replace("/etc/signet/proxy-join-token", &p("join-token"));
        std::fs::write(&self.proxy_config, config).unwrap();
        run_ok(
            Command::new(binary("signet-proxy"))
                .args(["join", "--config"])
                .arg(&self.proxy_config)
                .env_remove("SIGNET_PROXY_JOIN_TOKEN"),
        );
    }

    /// The current proxy process's log.
    pub fn proxy_log(&self) -> PathBuf {
        self.path(&format!("proxy-{}.log", self.proxy_logs))
    }

    pub fn proxy_log_text(&self) -> String {
        std::fs::read_to_string(self.proxy_log()).unwrap_or_default()
    }

    /// Starts `signet-proxy serve` and waits for its port (not for a view).
    pub fn start_proxy(&mut self) {
        assert!(self.proxy.is_none());
        self.proxy_logs += 1;
        let log = std::fs::File::create(self.proxy_log()).unwrap();
        self.proxy = Some(Daemon::new(
            spawn_tied(
                binary("signet-proxy").to_str().unwrap(),
                &[
                    "serve".as_ref(),
                    "--config".as_ref(),
                    self.proxy_config.as_os_str(),
                ],
                |c| {
                    c.stdin(Stdio::null()).stderr(log);
                },
            )
            .unwrap(),
        ));
        wait_port(self.proxy_port, "signet-proxy serve", &self.proxy_log());
        wait_port(self.metrics_port, "the metrics listener", &self.proxy_log());
    }

    /// Waits until `/healthz` answers 200.
    pub fn wait_healthy(&self) -> String {
        eventually(Duration::from_secs(30), "healthz 200", || {
            let (status, body) = http_get(self.metrics_port, "/healthz");
            (status == 200).then_some(body)
        })
    }

    /// The samples of `/metrics` now.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let (status, body) = http_get(self.metrics_port, "/metrics");
        assert_eq!(status, 200, "{body}");
        parse_metrics(&body)
    }

    /// curl with the CA root as its only trust anchor; returns (exit code,
    /// status, body).
    pub fn curl(&self, args: &[&str]) -> (i32, u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(&self.root)
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (
            out.status.code().unwrap_or(-1),
            status.trim().parse().unwrap_or(0),
            body.to_owned(),
        )
    }

    /// The proxy's URL for `path`, by host name.
    pub fn via_proxy(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.proxy_port)
    }

    /// The CA's own URL for `path`.
    pub fn direct(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.ca_port)
    }

    /// `openssl s_client` to the proxy with `args`, stdin piped, stdout
    /// piped (the session's bytes), stderr discarded.
    pub fn s_client(&self, args: &[&str]) -> Child {
        Command::new("openssl")
            .args(["s_client", "-quiet", "-connect"])
            .arg(format!("127.0.0.1:{}", self.proxy_port))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// A tunnel as alice (or without a certificate): sends the preamble
    /// for `echo-1`; returns the client with stdin still open.
    pub fn tunnel(&self, with_cert: bool) -> Child {
        let key = self.key.to_str().unwrap().to_owned();
        let cert = self.cert.to_str().unwrap().to_owned();
        let mut args = vec!["-alpn", "signet-ssh/1"];
        if with_cert {
            args.extend(["-cert", cert.as_str(), "-key", key.as_str()]);
        }
        let mut child = self.s_client(&args);
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"signet-ssh/1 node=echo-1 login=alice\n")
            .unwrap();
        child
    }
}

/// Reads one line from a child's stdout.
pub fn read_line(child: &mut Child) -> String {
    let out = child.stdout.as_mut().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap_or(0) == 1 {
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Waits for a child to exit, at most `limit`; kills it and panics after.
pub fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
