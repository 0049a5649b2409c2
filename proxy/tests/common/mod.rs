//! The real peers every end-to-end proxy test stands on, set up once here:
//! the CA daemon (`signet-ca` on SoftHSM2) with its proxy listener, a
//! joined `signet-proxy serve`, a loopback `sshd` trusting the CA's user
//! key as the nodes `web-1` (in the role) and `db-1` (outside it), and one
//! file key with an X.509 client certificate (for the proxy) and an SSH
//! certificate (for sshd). OpenSSH's `ssh` reaches the nodes through the
//! proxy with a small ProxyCommand script around `openssl s_client` (ALPN
//! `signet-ssh/1`, the preamble, then stdin).
//!
//! Needs `signet-ca` and `signet-proxy` built in this target directory
//! (`cargo build --all-features -p signet-ca -p signet-proxy`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use signet_testkit::child::{spawn_tied, Daemon};
use signet_testkit::{free_port, SoftHsm, Sshd};

/// A login no role allows.
pub const OUTSIDE_LOGIN: &str = "mallory";
/// The tests' proxies allow this long for a TLS handshake (the shipped
/// default is 30 s, room for a touch); the hostile clients wait it out.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A binary of this workspace, next to the test's own directory, or where
/// `SIGNET_BIN_<NAME>` says (`SIGNET_BIN_SIGNET_CA=target/debug/signet-ca`:
/// the benchmark needs only the proxy built for release).
pub fn binary(name: &str) -> PathBuf {
    let var = format!("SIGNET_BIN_{}", name.to_ascii_uppercase().replace('-', "_"));
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
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
        "{cmd:?}: {}",
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

/// How many times `needle` occurs in the file now.
pub fn count_in(file: &Path, needle: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Waits until `needle` occurs at least `n` times in the file; returns its text.
pub fn wait_count(file: &Path, needle: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.matches(needle).count() >= n {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not {n} times in {}:\n{text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a child to exit, at most `limit`; kills it and panics after.
pub fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A certificate's notAfter, unix seconds (openssl reads it, date converts).
pub fn not_after(cert: &Path) -> u64 {
    let out = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-enddate", "-in"])
            .arg(cert),
    );
    let date = out.trim().strip_prefix("notAfter=").unwrap();
    run_ok(Command::new("date").args(["-d", date, "+%s"]))
        .trim()
        .parse()
        .unwrap()
}

/// The CA's token, configuration and command line.
pub struct Ca {
    pub hsm: SoftHsm,
    pub config: PathBuf,
}

impl Ca {
    pub fn path(&self, name: &str) -> PathBuf {
        self.hsm.dir().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(binary("signet-ca"))
            .env("SOFTHSM2_CONF", self.hsm.conf())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "signet-ca {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// An X.509 client certificate for `user` and the key `name`
    /// (`name.pub.pem`), written to `name.pem`. Only while the daemon is
    /// stopped (it holds the store).
    pub fn issue_x509(&self, user: &str, key_name: &str, cert_name: &str, ttl: &str) -> PathBuf {
        let public = self.path(&format!("{key_name}.pub.pem"));
        let pem = self.ok(&[
            "sign",
            "x509-client",
            "--user",
            user,
            "--ttl",
            ttl,
            "--public-key",
            public.to_str().unwrap(),
        ]);
        self.write(&format!("{cert_name}.pem"), &pem)
    }

    fn set_serve(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let commented = format!("# {key} = ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&commented))
            .unwrap()
            .to_owned();
        std::fs::write(
            &self.config,
            text.replace(&line, &format!("{key} = {value:?}")),
        )
        .unwrap();
    }
}

fn self_signed(dir: &Path, name: &str, subject: &str) -> PathBuf {
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
            .args(["-subj", subject, "-days", "1"]),
    );
    out
}

/// An ECDSA P-256 file key: `name` (PEM, also what ssh reads), `name.pub`
/// (OpenSSH) and `name.pub.pem` (SubjectPublicKeyInfo).
fn file_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    run_ok(
        Command::new("ssh-keygen")
            .args([
                "-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "", "-f",
            ])
            .arg(&key),
    );
    run_ok(
        Command::new("openssl")
            .arg("ec")
            .arg("-in")
            .arg(&key)
            .arg("-pubout")
            .arg("-out")
            .arg(dir.join(format!("{name}.pub.pem"))),
    );
    key
}

/// The CA on a fresh token, initialised, roles applied: the role `sre`
/// allows `login` on nodes labelled env=prod; alice has it.
fn ca(login: &str) -> Ca {
    let hsm = SoftHsm::create("proxy-e2e");
    let dir = hsm.dir().to_owned();
    let fido = self_signed(&dir, "fido-roots", "/CN=unused-root");
    let piv = self_signed(&dir, "piv-roots", "/CN=unused-root");
    let config = hsm
        .ca_config_from(include_str!("../../../deploy/signet-ca.example.toml"))
        .replace("rp_id = \"ca.example.com\"", "rp_id = \"localhost\"")
        .replace(
            "origin = \"https://ca.example.com\"",
            "origin = \"https://localhost:8441\"",
        )
        .replace(
            "attestation_roots = [\"/usr/share/signet/yubico-fido-roots.pem\"]",
            &format!("attestation_roots = [\"{}\"]", fido.display()),
        )
        .replace(
            "yubico = true",
            &format!("yubico = false\nroots = [\"{}\"]", piv.display()),
        );
    let config_path = dir.join("signet-ca.toml");
    std::fs::write(&config_path, config).unwrap();
    let ca = Ca {
        hsm,
        config: config_path,
    };
    ca.ok(&["init"]);
    let roles = format!(
        "kind: role\nname: sre\nallow:\n  logins: [{login}]\n  node_labels: {{ env: [prod] }}\n\
         options: {{ max_session_ttl: 8h, hardware_key: touch, session_mfa: false }}\n---\n\
         kind: user\nname: alice\nroles: [sre]\n---\n\
         kind: user\nname: bob\nroles: [sre]\n"
    );
    let roles = ca.write("roles.yaml", &roles);
    ca.ok(&["roles", "apply", roles.to_str().unwrap()]);
    ca
}

/// Everything running: CA daemon, proxy, sshd; the user's keys and certificates.
pub struct Env {
    /// The unix login the role allows (whoever runs the tests: sshd
    /// runs commands as it).
    pub login: String,
    pub proxy_port: u16,
    pub ca_port: u16,
    pub feed_port: u16,
    /// The user's file key (TLS client key and SSH key).
    pub key: PathBuf,
    /// alice's X.509 client certificate, valid 1 h.
    pub x509: PathBuf,
    /// Her SSH certificate for `login`.
    pub ssh_cert: PathBuf,
    /// bob's X.509 client certificate on the same key (another user to lock).
    pub bob_x509: PathBuf,
    /// alice's certificate that was valid for 1 s at set-up (expired by the time it is used).
    pub expired_x509: PathBuf,
    /// A certificate naming alice in this trust domain, but from another CA.
    pub foreign_x509: PathBuf,
    /// The ssh client configuration (ProxyCommand through the proxy).
    pub ssh_config: PathBuf,
    /// The ProxyCommand script: `tunnel.sh CERT KEY NODE LOGIN`.
    pub tunnel: PathBuf,
    proxy_config: PathBuf,
    proxy_logs: usize,
    // Drop order: the daemons first, then sshd, then the token's directory.
    proxy: Option<Daemon>,
    ca_daemon: Option<Daemon>,
    pub sshd: Sshd,
    pub ca: Ca,
}

impl Env {
    /// The CA, its nodes, the user's credentials, the CA daemon and a
    /// joined proxy serving with the CA's first view.
    pub fn start() -> Env {
        Self::start_with("", "")
    }

    /// As [`Env::start`], with lines added to sshd's configuration and
    /// nodes (YAML documents, each starting with `---`) added to the inventory.
    pub fn start_with(sshd_extra: &str, extra_nodes: &str) -> Env {
        let login = run_ok(Command::new("id").arg("-un")).trim().to_owned();
        let ca = ca(&login);
        let user_ca = ca.write("ssh-user-ca.pub", &ca.ok(&["export", "ssh-user-ca"]));
        let sshd = Sshd::start(
            &format!(
                "TrustedUserCAKeys {}\nSubsystem sftp internal-sftp\n{sshd_extra}",
                user_ca.display()
            ),
            None,
        );
        let sshd_port = sshd.port();
        let nodes = format!(
            "kind: node\nname: web-1\naddress: 127.0.0.1:{sshd_port}\nlabels: {{ env: prod }}\n---\n\
             kind: node\nname: db-1\naddress: 127.0.0.1:{sshd_port}\nlabels: {{ env: staging }}\n\
             {extra_nodes}"
        );
        let nodes = ca.write("nodes.yaml", &nodes);
        ca.ok(&["nodes", "apply", nodes.to_str().unwrap()]);

        // Credentials, issued before the daemon holds the store.
        let dir = ca.hsm.dir().to_owned();
        let key = file_key(&dir, "user");
        let x509 = ca.issue_x509("alice", "user", "user", "1h");
        let bob_x509 = ca.issue_x509("bob", "user", "bob", "1h");
        let expired_x509 = ca.issue_x509("alice", "user", "expired", "1s");
        let ssh_cert = ca.write(
            "user-cert.pub",
            &ca.ok(&[
                "sign",
                "ssh-user",
                "--user",
                "alice",
                "--principal",
                &login,
                "--ttl",
                "1h",
                "--public-key",
                ca.path("user.pub").to_str().unwrap(),
            ]),
        );
        let foreign_x509 = foreign_certificate(&dir, &key);

        // The daemon with its proxy listener.
        let feed_port = free_port();
        ca.set_serve("proxy_listen", &format!("127.0.0.1:{feed_port}"));
        let ca_port = free_port();
        let text = std::fs::read_to_string(&ca.config).unwrap();
        std::fs::write(
            &ca.config,
            text.replace(
                "listen = \"127.0.0.1:8441\"",
                &format!("listen = \"127.0.0.1:{ca_port}\""),
            ),
        )
        .unwrap();
        ca.write("root.pem", &ca.ok(&["export", "x509-ca"]));

        let proxy_port = free_port();
        let tunnel = ca.write(
            "tunnel.sh",
            &format!(
                "#!/bin/bash\n\
                 # ProxyCommand: tunnel.sh CERT KEY NODE LOGIN — the signet-ssh/1\n\
                 # preamble, then ssh's bytes, through TLS with the client certificate.\n\
                 # -nocommands: with -no_ign_eof, s_client otherwise reads a Q, R, k or K\n\
                 # at the start of a read from stdin as a command (quit, renegotiate,\n\
                 # key update) and drops the bytes: about one read of SSH's in 64.\n\
                 exec openssl s_client -quiet -no_ign_eof -nocommands -alpn signet-ssh/1 \
                 -cert \"$1\" -key \"$2\" -connect 127.0.0.1:{proxy_port} 2>/dev/null \
                 < <(printf 'signet-ssh/1 node=%s login=%s\\n' \"$3\" \"$4\"; exec cat)\n"
            ),
        );
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tunnel, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let ssh_config = ca.write(
            "ssh_config",
            &format!(
                "Host *\n  User {login}\n  IdentityFile {key}\n  CertificateFile {cert}\n  \
                 IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking no\n  \
                 UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  \
                 ProxyCommand {tunnel} {x509} {key} %h %r\n",
                key = key.display(),
                cert = ssh_cert.display(),
                tunnel = tunnel.display(),
                x509 = x509.display(),
            ),
        );

        let mut env = Env {
            login,
            proxy_port,
            ca_port,
            feed_port,
            key,
            x509,
            ssh_cert,
            bob_x509,
            expired_x509,
            foreign_x509,
            ssh_config,
            tunnel,
            proxy_config: PathBuf::new(),
            proxy_logs: 0,
            proxy: None,
            ca_daemon: None,
            sshd,
            ca,
        };
        env.start_ca();
        env.join_proxy();
        env.start_proxy();
        env
    }

    /// The CA daemon's log.
    pub fn ca_log(&self) -> PathBuf {
        self.ca.path("ca.log")
    }

    /// Starts the CA daemon (appending to its log) and waits for both listeners.
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
                    self.ca.config.as_os_str(),
                    "serve".as_ref(),
                ],
                |c| {
                    c.env("SOFTHSM2_CONF", self.ca.hsm.conf())
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

    fn join_proxy(&mut self) {
        let token = self.ca.ok(&["proxies", "invite", "--name", "edge-1"]);
        self.ca.write("join-token", &token);
        let config = include_str!("../../../deploy/proxy.example.toml")
            .replace("0.0.0.0:443", &format!("127.0.0.1:{}", self.proxy_port))
            // The hostile clients' tests wait out this bound.
            .replace(
                "# handshake_timeout = \"30s\"",
                &format!("handshake_timeout = \"{}s\"", HANDSHAKE_TIMEOUT.as_secs()),
            )
            .replace(
                "https://ca.internal.example:8441",
                &format!("https://localhost:{}", self.ca_port),
            )
            .replace(
                "https://ca.internal.example:8442",
                &format!("https://localhost:{}", self.feed_port),
            )
            .replace(
                "/etc/signet/x509-ca.pem",
                self.ca.path("root.pem").to_str().unwrap(),
            )
            .replace(
                "/var/lib/signet-proxy/proxy.key",
                self.ca.path("proxy.key").to_str().unwrap(),
            )
            .replace(
                "/var/lib/signet-proxy/proxy.pem",
                self.ca.path("proxy.pem").to_str().unwrap(),
            )
            .replace(
                "/etc/signet/proxy-join-token",
                self.ca.path("join-token").to_str().unwrap(),
            );
        self.proxy_config = self.ca.write("proxy.toml", &config);
        run_ok(
            Command::new(binary("signet-proxy"))
                .args(["join", "--config"])
                .arg(&self.proxy_config)
                .env_remove("SIGNET_PROXY_JOIN_TOKEN"),
        );
    }

    /// The current proxy process's log (each start writes a new one).
    pub fn proxy_log(&self) -> PathBuf {
        self.ca.path(&format!("proxy-{}.log", self.proxy_logs))
    }

    /// Every proxy log so far, for failure messages.
    pub fn proxy_logs(&self) -> String {
        (1..=self.proxy_logs)
            .map(|i| {
                std::fs::read_to_string(self.ca.path(&format!("proxy-{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("--- restarted ---\n")
    }

    /// Starts `signet-proxy serve` and waits for its first view from the CA.
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
        let deadline = Instant::now() + Duration::from_secs(30);
        // Also until the port probe's connection has ended on the proxy's
        // side (a failed handshake), so it no longer holds one of
        // 127.0.0.1's connection slots when a test counts them.
        while count_in(&self.proxy_log(), "new view from the CA") == 0
            || count_in(&self.proxy_log(), "\"code\":\"tls\"") == 0
        {
            assert!(
                Instant::now() < deadline,
                "no view from the CA within 30 s; proxy log:\n{}\nCA log:\n{}",
                self.proxy_logs(),
                std::fs::read_to_string(self.ca_log()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops (SIGKILL) the proxy.
    pub fn stop_proxy(&mut self) {
        drop(self.proxy.take());
    }

    /// The proxy's process id.
    pub fn proxy_pid(&self) -> u32 {
        self.proxy.as_ref().unwrap().id()
    }

    /// `ssh -F ssh_config NODE COMMAND` through the proxy as alice; stdin
    /// from /dev/null unless the caller sets it.
    pub fn ssh(&self, node: &str, command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(&self.ssh_config)
            .arg(node)
            .arg(command)
            .stdin(Stdio::null());
        cmd
    }

    /// As [`Env::ssh`], with another X.509 certificate for the tunnel.
    pub fn ssh_with_cert(&self, cert: &Path, node: &str, command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(&self.ssh_config)
            .arg("-o")
            .arg(format!(
                "ProxyCommand={} {} {} %h %r",
                self.tunnel.display(),
                cert.display(),
                self.key.display()
            ))
            .arg(node)
            .arg(command)
            .stdin(Stdio::null());
        cmd
    }

    /// A session that prints `ready` and then sleeps: returns the running
    /// ssh once `ready` has arrived (so the tunnel is open end to end).
    pub fn open_session(&self, mut cmd: Command) -> Child {
        let mut session = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 6];
        if let Err(e) = session.stdout.as_mut().unwrap().read_exact(&mut first) {
            let _ = session.kill();
            let out = session.wait_with_output().unwrap();
            panic!(
                "the session ended before `ready` ({e}): {}\nproxy log:\n{}\nsshd log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.proxy_logs(),
                self.sshd.log()
            );
        }
        assert_eq!(&first, b"ready\n");
        session
    }

    /// One tunnel by hand (`openssl s_client`): the preamble line sent
    /// raw, the certificate given (or none); returns the proxy's reply
    /// (stdout) and openssl's stderr.
    pub fn raw_tunnel(&self, cert: Option<&Path>, alpn: &str, line: &[u8]) -> (String, String) {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-quiet", "-no_ign_eof", "-nocommands"]);
        if !alpn.is_empty() {
            cmd.args(["-alpn", alpn]);
        }
        if let Some(cert) = cert {
            cmd.arg("-cert").arg(cert).arg("-key").arg(&self.key);
        }
        let mut client = cmd
            .arg("-connect")
            .arg(format!("127.0.0.1:{}", self.proxy_port))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = client.stdin.take().unwrap();
        let _ = stdin.write_all(line);
        // Stdin stays open: the proxy, not the client's EOF, ends it.
        wait_exit(&mut client, Duration::from_secs(30), "openssl s_client");
        drop(stdin);
        let mut out = String::new();
        client
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        client
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (out, err)
    }

    /// The preamble for `node` and `login`.
    pub fn preamble(node: &str, login: &str) -> Vec<u8> {
        format!("signet-ssh/1 node={node} login={login}\n").into_bytes()
    }
}

/// A throw-away CA made with openssl, and a certificate from it for `key`
/// naming alice in this trust domain: same identity, wrong issuer.
fn foreign_certificate(dir: &Path, key: &Path) -> PathBuf {
    let root = self_signed(dir, "foreign-root", "/CN=Signet X.509 CA");
    let ext = dir.join("foreign.ext");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\nsubjectAltName=URI:signet://example.com/user/alice\n",
    )
    .unwrap();
    let csr = dir.join("foreign.csr");
    run_ok(
        Command::new("openssl")
            .args(["req", "-new", "-subj", "/CN=alice", "-key"])
            .arg(key)
            .arg("-out")
            .arg(&csr),
    );
    let out = dir.join("foreign.pem");
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "1", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&root)
            .arg("-CAkey")
            .arg(dir.join("foreign-root.key"))
            .args(["-CAcreateserial", "-extfile"])
            .arg(&ext)
            .arg("-out")
            .arg(&out),
    );
    out
}
