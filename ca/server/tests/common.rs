//! A CA on its own SoftHSM2 token, driven through the real `signet-ca` binary.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use signet_testkit::{Postgres, SoftHsm};

pub struct Ca {
    pub hsm: SoftHsm,
    pub config: PathBuf,
    /// The CA's database when the suite runs on PostgreSQL
    /// ([`on_postgres`]): a cluster of the test's own, stopped with the CA.
    pub pg: Option<Postgres>,
}

/// The store the CAs under test keep their log and state in: the embedded
/// store by default; PostgreSQL when `SIGNET_TEST_STORE=postgres`
/// (deploy/test.sh runs the CA's suite both ways: one matrix, the same
/// tests).
pub fn on_postgres() -> bool {
    match std::env::var("SIGNET_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("embedded") | Err(_) => false,
        Ok(other) => panic!("SIGNET_TEST_STORE={other:?}: embedded or postgres"),
    }
}

/// For a test whose subject is the embedded store's files (edited,
/// restored, copied): true, after saying so, when the suite runs on
/// PostgreSQL, where the same attacks are made on the database
/// (src/store/tests.rs runs every store test on both backends).
pub fn embedded_store_only(what: &str) -> bool {
    if on_postgres() {
        eprintln!("skipped in the PostgreSQL run, as it concerns the embedded store: {what}");
        return true;
    }
    false
}

/// The shipped example configuration with test paths and the given key types.
pub fn example_config(hsm: &SoftHsm, keys: [&str; 4]) -> String {
    let example = include_str!("../../../deploy/signet-ca.example.toml");
    let mut text = hsm
        .ca_config_from(example)
        .replace("rp_id = \"ca.example.com\"", "rp_id = \"localhost\"")
        .replace(
            "origin = \"https://ca.example.com\"",
            &format!("origin = \"{TEST_ORIGIN}\""),
        )
        .replace(
            "attestation_roots = [\"/usr/share/signet/yubico-fido-roots.pem\"]",
            &format!(
                "attestation_roots = [\"{}\"]",
                hsm.dir().join(FIDO_ROOTS).display()
            ),
        )
        .replace(
            "yubico = true",
            &format!(
                "yubico = false\nroots = [\"{}\"]",
                hsm.dir().join(PIV_ROOTS).display()
            ),
        );
    for (name, value) in ["ssh_user_ca", "ssh_host_ca", "x509_ca", "log_key"]
        .iter()
        .zip(keys)
    {
        let default = if *name == "log_key" {
            "ed25519"
        } else {
            "ecdsa-p256"
        };
        text = text.replace(
            &format!("{name} = \"{default}\""),
            &format!("{name} = \"{value}\""),
        );
    }
    text
}

/// The WebAuthn origin of test configurations (rp id `localhost`).
pub const TEST_ORIGIN: &str = "https://localhost:8441";
/// The files (in the CA's directory) holding the roots security keys' and
/// YubiKeys' attestations must chain to. Until a test writes its own, each
/// holds a fresh root nothing chains to.
pub const FIDO_ROOTS: &str = "fido-roots.pem";
/// See [`FIDO_ROOTS`].
pub const PIV_ROOTS: &str = "piv-roots.pem";

impl Ca {
    /// A fresh token and configuration; `init` not yet run.
    pub fn new(label: &str, keys: [&str; 4]) -> Self {
        let hsm = SoftHsm::create(label);
        let config = hsm.dir().join("signet-ca.toml");
        let mut text = example_config(&hsm, keys);
        let pg = on_postgres().then(|| {
            let mut pg = Postgres::start();
            let db = pg.create_database();
            text.push_str(&format!(
                "\n[store]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\n",
                pg.url(&db),
                pg.password_file().display()
            ));
            pg
        });
        std::fs::write(&config, text).unwrap();
        for file in [FIDO_ROOTS, PIV_ROOTS] {
            let root = signet_firmware_tests::attest::AttestationRoot::create().unwrap();
            std::fs::write(hsm.dir().join(file), root.cert_pem().unwrap()).unwrap();
        }
        Self { hsm, config, pg }
    }

    /// A fresh CA with the example's key types, initialised.
    pub fn initialised(label: &str) -> Self {
        let ca = Self::new(label, ["ecdsa-p256", "ecdsa-p256", "ecdsa-p256", "ed25519"]);
        ca.ok(&["init"]);
        ca
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet-ca"));
        cmd.env("SOFTHSM2_CONF", self.hsm.conf())
            .arg("--config")
            .arg(&self.config);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
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

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Exports a CA public key into a file and returns its path.
    pub fn export_to_file(&self, key: &str) -> PathBuf {
        let text = self.ok(&["export", key]);
        self.write(&format!("{key}.export"), &text)
    }

    /// A fresh client key pair (ssh-keygen); returns the private key path.
    pub fn client_key(&self, name: &str, key_type: &str) -> PathBuf {
        let path = self.path(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", key_type, "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        path
    }

    /// Signs an SSH user certificate for `key` and writes it next to it as `<key>-cert.pub`.
    pub fn sign_user(&self, key: &Path, principals: &[&str], ttl: &str) -> PathBuf {
        let mut args = vec!["sign", "ssh-user", "--user", "alice", "--ttl", ttl];
        for p in principals {
            args.extend(["--principal", p]);
        }
        let public = format!("{}.pub", key.display());
        args.extend(["--public-key", &public]);
        let cert = self.ok(&args);
        let path = PathBuf::from(format!("{}-cert.pub", key.display()));
        std::fs::write(&path, cert).unwrap();
        path
    }

    /// The log index the next issuance would get (from a `--json` issuance).
    pub fn sign_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["sign", "--json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ok(&full)).unwrap()
    }
}

/// A running `signet-ca serve`, killed on drop.
pub struct Daemon {
    child: std::process::Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Daemon {
    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it as an init system does (SIGTERM, a graceful stop) and
    /// waits for it; returns how it ended.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        // In-flight requests get 10 s to drain; a daemon that outlives
        // three times that ignored the signal.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not stop on SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ca {
    /// Issues an OpenSSH user certificate for each user (principal root).
    pub fn issue_users(&self, users: &[&str], public_key: &Path) -> Vec<String> {
        let public = public_key.to_str().unwrap();
        users
            .iter()
            .map(|user| {
                self.ok(&[
                    "sign",
                    "ssh-user",
                    "--user",
                    user,
                    "--principal",
                    "root",
                    "--ttl",
                    "1h",
                    "--public-key",
                    public,
                ])
            })
            .collect()
    }

    /// Starts `signet-ca serve` on a free loopback port and waits until it answers.
    pub fn serve(&self) -> Daemon {
        self.serve_with(&self.config)
    }

    /// Starts `signet-ca serve` with another configuration file (e.g. a
    /// copy of the data directory) on this CA's token.
    pub fn serve_with(&self, config: &Path) -> Daemon {
        self.serve_logging(config, None)
    }

    /// Starts `signet-ca serve` with its stderr (the daemon's log) written
    /// to `log` when given.
    pub fn serve_logging(&self, config: &Path, log: Option<&Path>) -> Daemon {
        self.serve_on(config, &self.hsm.conf(), log)
    }

    /// Starts `signet-ca serve` on the token(s) of another SoftHSM2
    /// configuration (a replica host's copy of the token, [`Ca::token_copy`]).
    pub fn serve_on(&self, config: &Path, softhsm_conf: &Path, log: Option<&Path>) -> Daemon {
        let port = signet_testkit::free_port();
        let text = std::fs::read_to_string(config).unwrap();
        std::fs::write(
            config,
            text.replace(
                "listen = \"127.0.0.1:8441\"",
                &format!("listen = \"127.0.0.1:{port}\""),
            ),
        )
        .unwrap();
        // Tied to the test process: killed by the kernel if the test dies
        // without dropping the daemon.
        let child = signet_testkit::child::spawn_tied(
            env!("CARGO_BIN_EXE_signet-ca"),
            &["--config".as_ref(), config.as_os_str(), "serve".as_ref()],
            |command| {
                command.env("SOFTHSM2_CONF", softhsm_conf);
                if let Some(log) = log {
                    command.stderr(std::fs::File::create(log).unwrap());
                }
            },
        )
        .unwrap();
        let daemon = Daemon { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not come up"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        daemon
    }
}

impl Ca {
    /// A copy of the CA's token (same keys, its own high-water mark), as
    /// each replica host holds: returns its SoftHSM2 configuration.
    pub fn token_copy(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(self.hsm.dir().join("tokens"))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        conf
    }
}

/// A real OpenSSH client login; returns (success, stdout, stderr).
pub fn ssh_login(
    port: u16,
    user: &str,
    key: &Path,
    cert: &Path,
    known_hosts: Option<(&Path, &str)>,
) -> (bool, String, String) {
    let mut cmd = Command::new("ssh");
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=5",
    ])
    .arg("-o")
    .arg(format!("IdentityFile={}", key.display()))
    .arg("-o")
    .arg(format!("CertificateFile={}", cert.display()))
    .args(["-p", &port.to_string()]);
    match known_hosts {
        Some((file, alias)) => {
            cmd.arg("-o")
                .arg(format!("UserKnownHostsFile={}", file.display()))
                .args(["-o", "StrictHostKeyChecking=yes", "-o"])
                .arg(format!("HostKeyAlias={alias}"));
        }
        None => {
            cmd.args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ]);
        }
    }
    let out = cmd
        .arg(format!("{user}@127.0.0.1"))
        .arg("echo signet-login-ok")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The user the tests run as (the login sshd must allow).
pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A static mirror of a log export: plain HTTP from `python3 -m
/// http.server` on a loopback port, as any web server would serve the
/// tiles. Killed on drop, and with the test process.
pub fn static_mirror(dir: &Path) -> Daemon {
    let port = signet_testkit::free_port();
    let child = signet_testkit::child::spawn_tied(
        "python3",
        &[
            "-m".as_ref(),
            "http.server".as_ref(),
            "--bind".as_ref(),
            "127.0.0.1".as_ref(),
            "--directory".as_ref(),
            dir.as_os_str(),
            port.to_string().as_ref(),
        ],
        |command| {
            command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        },
    )
    .unwrap();
    let daemon = Daemon { child, port };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the mirror did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    daemon
}
