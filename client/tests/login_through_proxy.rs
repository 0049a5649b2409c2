//! `signet enroll` and `signet login` with the access proxy's URL as the
//! CA's, all real peers: the `signet-ca serve` daemon on SoftHSM2, a joined
//! `signet-proxy serve` forwarding the CA's API on its one port (ALPN
//! `http/1.1`), and the virtual YubiKey behind a private pcscd (FIDO2 for
//! the touch, PIV for the key). The client trusts the CA's X.509 root alone
//! and checks the proxy's host name in the server certificate the CA gave
//! it. The security key signs the proxy's origin, so the CA must list it
//! (`webauthn.extra_origins`): until it does, enrollment through the proxy
//! is refused.
//!
//! Needs what client/tests/login.rs needs, and `signet-ca` and
//! `signet-proxy` built next to `signet`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};

#[path = "support/ca.rs"]
mod support;
use support::{current_user, Ca, Trust};
#[path = "support/proxy.rs"]
mod proxy_support;
use proxy_support::Proxy;

const PIN: &str = "123456";
/// The origin the CA is told at first: not the proxy's.
const NOT_THE_PROXY: &str = "https://localhost:1";

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_signet")).parent().unwrap()
}

/// The engineer's machine: XDG directories, a PIN file, the card's pcscd.
struct Home {
    dir: tempfile::TempDir,
    envs: Vec<(String, PathBuf)>,
}

impl Home {
    fn new(key: &VirtualYubiKey) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::Builder::new()
            .prefix("signet-login-proxy-")
            .tempdir()
            .unwrap();
        for sub in ["home", "config", "state", "runtime"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::set_permissions(
            dir.path().join("runtime"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let pin = dir.path().join("pin");
        std::fs::write(&pin, format!("{PIN}\n")).unwrap();
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self {
            dir,
            envs: key.pcscd().envs(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(args)
            .stdin(Stdio::null())
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_RUNTIME_DIR", self.path("runtime"))
            .env("SIGNET_PIN_FILE", self.path("pin"))
            .env_remove("SIGNET_FIDO_PIN_FILE")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .output()
            .unwrap()
    }
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn enroll_and_login_with_the_proxy_as_the_ca() {
    let key = VirtualYubiKey::start(VirtualKeyOptions::default()).unwrap_or_else(|e| {
        panic!("the virtual YubiKey did not start ({e}); it needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them)")
    });
    key.fido().set_pin(PIN).unwrap();
    let home = Home::new(&key);
    let login = current_user();
    let mut ca = Ca::new(
        bin_dir(),
        Trust::Root(&key.root().cert_pem().unwrap()),
        NOT_THE_PROXY,
    );
    ca.enable_proxy_listener();
    ca.serve();
    let root = ca.path("ca-root.pem");
    std::fs::write(&root, ca.ok(&["export", "x509-ca"])).unwrap();
    let root = root.to_str().unwrap().to_owned();
    let proxy = Proxy::join_and_serve(&ca, bin_dir(), "edge-1");
    let via_proxy = format!("localhost:{}", proxy.port);

    // The invite link names the CA's own address (serve.public_url unset);
    // the engineer is given the proxy's.
    let link = ca.ok(&["users", "invite", "alice", "--ttl", "10m"]);
    let link = link
        .trim()
        .replace(&format!("localhost:{}", ca.port), &via_proxy);
    assert!(link.contains(&via_proxy), "{link}");

    // The CA does not list the proxy's origin yet: the key's signature is
    // for an origin the CA refuses, and nothing is enrolled.
    let refused = home.run(&["enroll", &link, "--ca-cert", &root]);
    assert!(!refused.status.success(), "{}", said(&refused));
    assert!(
        said(&refused).to_lowercase().contains("origin"),
        "{}",
        said(&refused)
    );

    // The CA lists the proxy's origin (a restart; the proxy reconnects).
    let config = std::fs::read_to_string(&ca.config)
        .unwrap()
        .replace(NOT_THE_PROXY, &format!("https://localhost:{}", proxy.port));
    std::fs::write(&ca.config, config).unwrap();
    ca.stop();
    ca.serve();
    proxy.wait_for("new view from the CA", 2);

    // Enroll and log in through the proxy alone.
    let enrolled = home.run(&["enroll", &link, "--ca-cert", &root]);
    assert!(
        enrolled.status.success(),
        "{}\nproxy log:\n{}",
        said(&enrolled),
        proxy.log()
    );
    let logged_in = home.run(&[
        "login",
        "--proxy",
        &via_proxy,
        "--user",
        "alice",
        "--ca-cert",
        &root,
        "--principal",
        &login,
    ]);
    assert!(
        logged_in.status.success(),
        "{}\nproxy log:\n{}",
        said(&logged_in),
        proxy.log()
    );
    println!("{}", said(&logged_in).trim());

    // The proxy by an address its certificate does not name: refused by
    // the client before any request.
    let wrong = home.run(&[
        "login",
        "--proxy",
        &format!("127.0.0.1:{}", proxy.port),
        "--user",
        "alice",
        "--ca-cert",
        &root,
        "--principal",
        &login,
    ]);
    assert!(!wrong.status.success(), "{}", said(&wrong));
}
