//! Helpers for the witness's process tests: a test log (signet-log's own
//! tree and checkpoint types, a software Ed25519 note key) and the
//! `signet-witness` binary run on a free loopback port, killed on drop.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::Signer as _;
use signet_log::checkpoint::Checkpoint;
use signet_log::merkle::{
    consistency_proof, leaf_hash, root_from_leaf_hashes, Hash, MemoryHashStore,
};
use signet_log::note::{KeyId, NoteSigner, SignerError, VerifierKey};
use signet_testkit::child::{spawn_tied, Daemon};

pub const BIN: &str = env!("CARGO_BIN_EXE_signet-witness");

/// A log: leaf hashes and a note key whose name is the origin.
pub struct TestLog {
    pub origin: String,
    key: ed25519_dalek::SigningKey,
    pub vkey: VerifierKey,
    leaves: Vec<Hash>,
    /// What the entries say, so two logs with one key can fork.
    flavour: String,
}

impl NoteSigner for TestLog {
    fn name(&self) -> &str {
        &self.origin
    }
    fn key_id(&self) -> KeyId {
        self.vkey.key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

impl TestLog {
    pub fn new(origin: &str, seed: u8, flavour: &str) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let vkey = VerifierKey::ed25519(origin, key.verifying_key().as_bytes()).unwrap();
        Self {
            origin: origin.to_owned(),
            key,
            vkey,
            leaves: Vec::new(),
            flavour: flavour.to_owned(),
        }
    }

    pub fn grow_to(&mut self, size: u64) -> &mut Self {
        while (self.leaves.len() as u64) < size {
            let i = self.leaves.len();
            self.leaves
                .push(leaf_hash(format!("{} entry {i}", self.flavour).as_bytes()));
        }
        self
    }

    pub fn root(&self, size: u64) -> Hash {
        root_from_leaf_hashes(&self.leaves[..size as usize])
    }

    /// The signed checkpoint note of the first `size` entries.
    pub fn checkpoint(&self, size: u64) -> String {
        Checkpoint::new(&self.origin, size, self.root(size))
            .unwrap()
            .sign(&[self])
            .unwrap()
            .to_text()
    }

    pub fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        if old == 0 {
            return Vec::new();
        }
        let store = MemoryHashStore::from_leaf_hashes(&self.leaves);
        consistency_proof(&store, old, new).unwrap()
    }
}

/// A `signet-witness serve` on a free loopback port, with its own
/// directory (config, key, state); killed and reaped on drop.
pub struct WitnessProcess {
    // Field order is drop order: the process stops before its directory goes.
    daemon: Option<Daemon>,
    pub port: u16,
    pub config: PathBuf,
    stderr: PathBuf,
    pub dir: tempfile::TempDir,
}

/// The configuration text of a witness named `name` with a key file.
pub fn file_config(name: &str, logs: &[&TestLog]) -> String {
    let mut s = format!(
        "name = \"{name}\"\nstate_dir = \"state\"\nrequest_timeout = \"5s\"\n[key]\nfile = \"witness.key\"\n"
    );
    for l in logs {
        s.push_str(&format!(
            "[[log]]\norigin = \"{}\"\nvkey = \"{}\"\n",
            l.origin, l.vkey
        ));
    }
    s
}

pub fn run(args: &[&str], envs: &[(&str, &OsStr)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `signet-witness init --config <config>`; returns the vkey it printed.
pub fn init(config: &Path) -> String {
    let out = run(&["init", "--config", config.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl WitnessProcess {
    /// Writes `config_text` (with a `listen` line added) in a new
    /// directory, runs `init`, and starts the server.
    pub fn start(name: &str, logs: &[&TestLog]) -> (Self, String) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("witness.toml");
        std::fs::write(&config, file_config(name, logs)).unwrap();
        let vkey = init(&config);
        let mut w = Self {
            daemon: None,
            port: 0,
            config,
            stderr: dir.path().join("stderr.log"),
            dir,
        };
        w.restart();
        (w, vkey)
    }

    /// A server for an existing directory and configuration (no init).
    pub fn start_with(dir: tempfile::TempDir, config: PathBuf) -> Self {
        let mut w = Self {
            daemon: None,
            port: 0,
            config,
            stderr: dir.path().join("stderr.log"),
            dir,
        };
        w.restart();
        w
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, no shutdown: what a crash or power cut leaves.
    pub fn kill_9(&mut self) {
        // Daemon's drop sends SIGKILL (Child::kill) and reaps.
        self.daemon = None;
    }

    /// (Re)starts the server on a fresh free port; retries if the port was
    /// taken in the meantime.
    pub fn restart(&mut self) {
        self.daemon = None;
        let text = std::fs::read_to_string(&self.config).unwrap();
        let base: String = text
            .lines()
            .filter(|l| !l.starts_with("listen ="))
            .map(|l| format!("{l}\n"))
            .collect();
        for _attempt in 0..5 {
            let port = signet_testkit::free_port();
            // Top-level keys must come before the first table.
            std::fs::write(
                &self.config,
                format!("listen = \"127.0.0.1:{port}\"\n{base}"),
            )
            .unwrap();
            let stderr = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.stderr)
                .unwrap();
            let child = spawn_tied(
                BIN,
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
            loop {
                if daemon.exited().is_some() {
                    break;
                }
                if healthz(port).is_some() {
                    self.port = port;
                    self.daemon = Some(daemon);
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "signet-witness did not start: {}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            if !self.log().contains("cannot listen") {
                panic!("signet-witness exited: {}", self.log());
            }
        }
        panic!("no free port after 5 attempts: {}", self.log());
    }

    /// The server's log lines (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("witness.key")
    }
}

/// GET /healthz, or `None` if nothing answers.
pub fn healthz(port: u16) -> Option<String> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .http_status_as_error(false)
            .build(),
    );
    let mut r = agent
        .get(&format!("http://127.0.0.1:{port}/healthz"))
        .call()
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.body_mut().read_to_string().ok()
}

/// A raw POST to `/add-checkpoint`: status, content type, body.
pub fn post_raw(url: &str, body: &[u8]) -> (u16, String, String) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build(),
    );
    let mut r = agent
        .post(&format!("{url}/add-checkpoint"))
        .send(body)
        .unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.body_mut().read_to_string().unwrap();
    (r.status().as_u16(), ct, text)
}
