//! A real `signet-proxy serve` in front of the client tests' CA
//! (`support/ca.rs`): joined with a one-time token from `signet-ca proxies
//! invite`, configured from the shipped example (deploy/proxy.example.toml),
//! serving on a loopback port once it has the CA's first view; stopped on
//! drop (and by the kernel if the test dies). Its TLS server certificate
//! names `localhost` only (the CA allows that name:
//! [`Ca::enable_proxy_listener`]).
//!
//! Included with `#[path]` next to `support/ca.rs`. The binary is
//! `signet-proxy` in the directory the caller names.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use signet_testkit::child::{spawn_tied, Daemon};
use signet_testkit::free_port;

use super::Ca;

/// The proxy daemon and its files (in the CA's directory).
pub struct Proxy {
    /// The TLS port engineers reach.
    pub port: u16,
    /// Its configuration file.
    pub config: PathBuf,
    log: PathBuf,
    _daemon: Daemon,
}

impl Proxy {
    /// Joins the CA as `name` and serves; the CA must be serving with its
    /// proxy listener ([`Ca::enable_proxy_listener`]).
    pub fn join_and_serve(ca: &Ca, bin_dir: &Path, name: &str) -> Self {
        Self::join_and_serve_on(ca, bin_dir, name, free_port())
    }

    /// As [`Proxy::join_and_serve`], on `port` (chosen before the CA was
    /// made, so the CA can list it as a WebAuthn origin: logins through
    /// the proxy sign the proxy's origin).
    pub fn join_and_serve_on(ca: &Ca, bin_dir: &Path, name: &str, port: u16) -> Self {
        let binary = bin_dir.join("signet-proxy");
        assert!(
            binary.exists(),
            "{} is missing: build it with `cargo build --all-features -p signet-proxy`",
            binary.display()
        );
        let feed_port = ca
            .proxy_port
            .expect("the CA's proxy listener (Ca::enable_proxy_listener)");
        let dir = ca.path(&format!("proxy-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("x509-ca.pem");
        std::fs::write(&root, ca.ok(&["export", "x509-ca"])).unwrap();
        let token = dir.join("join-token");
        std::fs::write(&token, ca.ok(&["proxies", "invite", "--name", name])).unwrap();
        let p = |path: &Path| path.to_str().unwrap().to_owned();
        let text = include_str!("../../../deploy/proxy.example.toml")
            .replace("0.0.0.0:443", &format!("127.0.0.1:{port}"))
            .replace(
                "public_names = [\"proxy.example.com\"]",
                "public_names = [\"localhost\"]",
            )
            .replace(
                "https://ca.internal.example:8441",
                &format!("https://localhost:{}", ca.port),
            )
            .replace(
                "https://ca.internal.example:8442",
                &format!("https://localhost:{feed_port}"),
            )
            .replace("/etc/signet/x509-ca.pem", &p(&root))
            .replace(
                "/var/lib/signet-proxy/proxy.key",
                &p(&dir.join("proxy.key")),
            )
            .replace(
                "/var/lib/signet-proxy/proxy.pem",
                &p(&dir.join("proxy.pem")),
            )
            .replace("/etc/signet/proxy-join-token", &p(&token));
        assert!(
            text.contains("public_names = [\"localhost\"]"),
            "the example config changed"
        );
        let config = dir.join("proxy.toml");
        std::fs::write(&config, text).unwrap();
        let joined = Command::new(&binary)
            .args(["join", "--config"])
            .arg(&config)
            .env_remove("SIGNET_PROXY_JOIN_TOKEN")
            .output()
            .unwrap();
        assert!(
            joined.status.success(),
            "signet-proxy join: {}",
            String::from_utf8_lossy(&joined.stderr)
        );
        let log = dir.join("proxy.log");
        let daemon = Daemon::new(
            spawn_tied(
                binary.to_str().unwrap(),
                &["serve".as_ref(), "--config".as_ref(), config.as_os_str()],
                |c| {
                    c.stdin(Stdio::null())
                        .stderr(std::fs::File::create(&log).unwrap());
                },
            )
            .unwrap(),
        );
        let proxy = Self {
            port,
            config,
            log,
            _daemon: daemon,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "signet-proxy serve did not come up: {}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy.wait_for("new view from the CA", 1);
        proxy
    }

    /// Its log (JSON events on stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many times `needle` is in the log now.
    pub fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Waits (30 s at most) until `needle` is in the log `n` times.
    pub fn wait_for(&self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.log();
            if text.matches(needle).count() >= n {
                return text;
            }
            assert!(Instant::now() < deadline, "no {needle:?} ×{n} in:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
