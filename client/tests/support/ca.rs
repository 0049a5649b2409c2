//! A real `signet-ca serve` for the client's tests, the hardware test and
//! the login benchmark: a SoftHSM2 token, a configuration made from the
//! shipped example (deploy/signet-ca.example.toml), roles applied, and the
//! daemon on a loopback port once started (stopped on drop).
//!
//! Included with `#[path]` by client/tests/login.rs, client/tests/hardware.rs
//! and client/examples/login_bench.rs, so the binaries are found from a
//! directory the caller names (integration tests know it from
//! `CARGO_BIN_EXE_signet`, an example from its own path).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use signet_testkit::child::spawn_tied;
use signet_testkit::{free_port, SoftHsm};

/// A login only the `ops` role allows; it demands `touch_and_pin`.
pub const OPS_LOGIN: &str = "ops-admin";

/// Whose attestation the CA trusts.
pub enum Trust<'a> {
    /// One root for both the PIV and the FIDO attestation (the virtual
    /// YubiKey's test root, PEM).
    Root(&'a str),
    /// Yubico's: the PIV roots built into the CA and the FIDO roots shipped
    /// in deploy/attestation (a real YubiKey).
    Yubico,
}

pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The CA: a SoftHSM2 token, its configuration, and the daemon once started.
pub struct Ca {
    pub hsm: SoftHsm,
    pub config: PathBuf,
    pub port: u16,
    /// The proxies' listener, once [`Ca::enable_proxy_listener`] ran.
    pub proxy_port: Option<u16>,
    binary: PathBuf,
    daemon: Option<signet_testkit::child::Daemon>,
}

impl Ca {
    /// An initialised CA whose binary is `signet-ca` in `bin_dir`, trusting
    /// `trust`, with WebAuthn origin `https://localhost:PORT` (and
    /// `extra_origin`), and roles: `dev` (the current user and `deploy`,
    /// 8 h, touch) and `ops` ([`OPS_LOGIN`], 1 h, touch and PIN), both held
    /// by alice.
    pub fn new(bin_dir: &Path, trust: Trust<'_>, extra_origin: &str) -> Self {
        let binary = bin_dir.join("signet-ca");
        assert!(
            binary.exists(),
            "{} is missing: build it with `cargo build -p signet-ca` (nextest over the workspace does)",
            binary.display()
        );
        let hsm = SoftHsm::create("signet-login");
        let port = free_port();
        let dir = hsm.dir().to_path_buf();
        let example = include_str!("../../../deploy/signet-ca.example.toml");
        let mut text = hsm
            .ca_config_from(example)
            .replace(
                "listen = \"127.0.0.1:8441\"",
                &format!("listen = \"127.0.0.1:{port}\""),
            )
            .replace("rp_id = \"ca.example.com\"", "rp_id = \"localhost\"")
            .replace(
                "origin = \"https://ca.example.com\"",
                &format!(
                    "origin = \"https://localhost:{port}\"\nextra_origins = [\"{extra_origin}\"]"
                ),
            );
        let fido_roots = dir.join("fido-roots.pem");
        match trust {
            Trust::Root(pem) => {
                let roots = dir.join("virtual-key-root.pem");
                std::fs::write(&roots, pem).unwrap();
                std::fs::write(&fido_roots, pem).unwrap();
                text = text.replace(
                    "yubico = true",
                    &format!("yubico = false\nroots = [\"{}\"]", roots.display()),
                );
            }
            Trust::Yubico => {
                std::fs::write(
                    &fido_roots,
                    include_str!("../../../deploy/attestation/yubico-fido-roots.pem"),
                )
                .unwrap();
            }
        }
        text = text.replace(
            "attestation_roots = [\"/usr/share/signet/yubico-fido-roots.pem\"]",
            &format!("attestation_roots = [\"{}\"]", fido_roots.display()),
        );
        assert!(text.contains(&format!("https://localhost:{port}")));
        let config = dir.join("signet-ca.toml");
        std::fs::write(&config, text).unwrap();
        let ca = Self {
            hsm,
            config,
            port,
            proxy_port: None,
            binary,
            daemon: None,
        };
        ca.ok(&["init"]);
        let user = current_user();
        let roles = dir.join("roles");
        std::fs::create_dir_all(&roles).unwrap();
        std::fs::write(
            roles.join("roles.yaml"),
            format!(
                "kind: role\nname: dev\nallow:\n  logins: [{user}, deploy]\n  node_labels: {{ env: [dev] }}\n\
                 options:\n  max_session_ttl: 8h\n  hardware_key: touch\n  session_mfa: false\n\
                 ---\nkind: role\nname: ops\nallow:\n  logins: [{OPS_LOGIN}]\n  node_labels: {{ env: [prod] }}\n\
                 options:\n  max_session_ttl: 1h\n  hardware_key: touch_and_pin\n  session_mfa: false\n\
                 ---\nkind: user\nname: alice\nroles: [dev, ops]\n"
            ),
        )
        .unwrap();
        ca.ok(&["roles", "apply", roles.to_str().unwrap()]);
        ca
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.env("SOFTHSM2_CONF", self.hsm.conf())
            .arg("--config")
            .arg(&self.config);
        cmd
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "signet-ca {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.hsm.dir().join(name)
    }

    /// Turns on the daemon's listener for access proxies (their feed) on a
    /// free loopback port, before [`Ca::serve`], and allows the proxy name
    /// `localhost`; returns the port.
    pub fn enable_proxy_listener(&mut self) -> u16 {
        let port = free_port();
        let text = std::fs::read_to_string(&self.config).unwrap();
        let commented = "# proxy_listen = \"0.0.0.0:8442\"";
        assert!(text.contains(commented), "the example config changed");
        // Proxies may be named localhost (what the tests dial), nothing else.
        let names = "proxy_names = [\"proxy.example.com\"]";
        assert!(text.contains(names), "the example config changed");
        std::fs::write(
            &self.config,
            text.replace(commented, &format!("proxy_listen = \"127.0.0.1:{port}\""))
                .replace(names, "proxy_names = [\"localhost\"]"),
        )
        .unwrap();
        self.proxy_port = Some(port);
        port
    }

    /// Starts `signet-ca serve` and waits until it listens (20 s at most).
    pub fn serve(&mut self) {
        let child = spawn_tied(
            self.binary.to_str().unwrap(),
            &[
                "--config".as_ref(),
                self.config.as_os_str(),
                "serve".as_ref(),
            ],
            |command| {
                command
                    .env("SOFTHSM2_CONF", self.hsm.conf())
                    .stderr(std::fs::File::create(self.path("serve.log")).unwrap());
            },
        )
        .unwrap();
        self.daemon = Some(signet_testkit::child::Daemon::new(child));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "signet-ca serve did not come up: {}",
                std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if let Some(port) = self.proxy_port {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the CA's proxy listener did not come up: {}",
                    std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }

    pub fn stop(&mut self) {
        self.daemon = None;
    }
}
