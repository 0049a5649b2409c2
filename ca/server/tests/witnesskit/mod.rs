//! Witnesses for the CA's process tests: real `signet-witness serve`
//! processes on loopback (each with its own key file and state directory,
//! killed on drop and with the test process), and the CA configuration
//! that lists them.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use signet_testkit::child::{spawn_tied, Daemon};

use crate::common::Ca;

/// A binary of the workspace built next to `signet-ca` (`signet-witness`,
/// `signet-node`, `signet`): this package's tests do not build them.
pub fn sibling_binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_signet-ca")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace --all-features`; \
         deploy/test.sh does)",
        path.display()
    );
    path
}

/// The CA's log verifier key (`signet-ca log export` prints it).
pub fn log_vkey(ca: &Ca) -> String {
    let dir = ca.path("vkey-export");
    let vkey = ca.ok(&["log", "export", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    vkey.trim().to_owned()
}

/// A `signet-witness serve` for one log, with its own directory.
pub struct WitnessProcess {
    // Field order is drop order: the process stops before its directory goes.
    daemon: Option<Daemon>,
    /// The name in its vkey and cosignatures.
    pub name: String,
    /// Its verifier key (`signet-witness init` printed it).
    pub vkey: String,
    port: u16,
    config: PathBuf,
    stderr: PathBuf,
    pub dir: tempfile::TempDir,
}

impl WitnessProcess {
    /// A new witness named `name` that cosigns the log `origin` signed by
    /// `log_vkey`; `init` is run and the server started.
    pub fn start(name: &str, origin: &str, log_vkey: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("signet-witness-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("witness.toml");
        let port = signet_testkit::free_port();
        std::fs::write(
            &config,
            format!(
                "name = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\
                 request_timeout = \"5s\"\n[key]\nfile = \"witness.key\"\n\
                 [[log]]\norigin = \"{origin}\"\nvkey = \"{log_vkey}\"\n"
            ),
        )
        .unwrap();
        let out = Command::new(sibling_binary("signet-witness"))
            .args(["init", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "signet-witness init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vkey = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let mut w = Self {
            daemon: None,
            name: name.to_owned(),
            vkey,
            port,
            config,
            stderr: dir.path().join("stderr.log"),
            dir,
        };
        w.restart();
        w
    }

    /// Where the CA reaches it. Stays the same across restarts, so the
    /// CA's configuration need not change.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the witness is down (nothing listens on its port).
    pub fn kill(&mut self) {
        self.daemon = None;
    }

    /// Starts (again) on its port, with the state it kept.
    pub fn restart(&mut self) {
        self.daemon = None;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let child = spawn_tied(
            sibling_binary("signet-witness").to_str().unwrap(),
            &[
                OsStr::new("serve"),
                OsStr::new("--config"),
                self.config.as_os_str(),
            ],
            |c| {
                c.stdout(Stdio::null()).stderr(stderr);
            },
        )
        .unwrap();
        let mut daemon = Daemon::new(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                daemon.exited().is_none(),
                "signet-witness {} exited: {}",
                self.name,
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "signet-witness {} did not start: {}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.daemon = Some(daemon);
    }

    /// Its log lines so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// The `[witnesses]` table for `witnesses` with `threshold`.
pub fn policy_toml(threshold: usize, witnesses: &[&WitnessProcess]) -> String {
    let mut out = format!("\n[witnesses]\nthreshold = {threshold}\n");
    for w in witnesses {
        out.push_str(&format!(
            "\n[[witnesses.witness]]\nname = \"{}\"\nurl = \"{}\"\nvkey = \"{}\"\n",
            w.name,
            w.url(),
            w.vkey
        ));
    }
    out
}

/// The CA's configuration with `policy` (a `[witnesses]` table, or
/// nothing) in place of any earlier one, and a short witness timeout.
pub fn set_ca_witnesses(ca: &Ca, policy: &str) {
    let text = std::fs::read_to_string(&ca.config).unwrap();
    let base = match text.find("\n[witnesses]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    };
    let base = if base.contains("\nwitness_timeout =") {
        base
    } else {
        base.replace(
            "high_water = \"token\"",
            "high_water = \"token\"\nwitness_timeout = \"2s\"",
        )
    };
    std::fs::write(&ca.config, format!("{base}{policy}")).unwrap();
}

/// A GET to the daemon over HTTPS, trusting only the CA's root; returns
/// (status, body).
pub fn https_get(ca: &Ca, port: u16, path: &str) -> (u16, String) {
    let root_pem = ca.ok(&["export", "x509-ca"]);
    let (_, der_bytes) = der::pem::decode_vec(root_pem.as_bytes()).unwrap();
    let root = ureq::tls::Certificate::from_der(&der_bytes).to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
            root,
        ])))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent
        .get(&format!("https://localhost:{port}{path}"))
        .call()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// `GET /v1/health` as JSON, with its status.
pub fn health(ca: &Ca, port: u16) -> (u16, serde_json::Value) {
    let (status, body) = https_get(ca, port, "/v1/health");
    (status, serde_json::from_str(&body).unwrap())
}

/// The witness named `name` in a health answer.
pub fn witness_health<'a>(health: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    health["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the health answer: {health}"))
}

/// A CA initialised on its own token, with its log origin.
pub const ORIGIN: &str = "ca.example.com/signet-log";

/// A node's configuration (`signet-node`): the log key and the policy,
/// without urls (a node never talks to witnesses).
pub fn node_config(log_vkey: &str, threshold: usize, witnesses: &[&WitnessProcess]) -> String {
    let mut out = format!("log_key = \"{log_vkey}\"\n\n[witnesses]\nthreshold = {threshold}\n");
    for w in witnesses {
        out.push_str(&format!(
            "\n[[witnesses.witness]]\nname = \"{}\"\nvkey = \"{}\"\n",
            w.name, w.vkey
        ));
    }
    out
}
