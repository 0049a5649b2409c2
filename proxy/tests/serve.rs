//! `signet-proxy serve` against real peers: the CA daemon (`signet-ca` on
//! SoftHSM2) streaming its feed to a joined proxy, a loopback `sshd`
//! trusting the CA's user key as the node, and OpenSSH's `ssh` reaching it
//! through the proxy with `openssl s_client` as its ProxyCommand (the
//! X.509 client certificate for TLS, the SSH certificate for sshd, one
//! file key). A session runs a command; a node outside the role is refused
//! with its reason; `signet-ca lock --user` closes an open session.
//!
//! Needs `signet-ca` and `signet-proxy` built in this target directory
//! (`cargo build -p signet-ca -p signet-proxy`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use signet_testkit::child::{spawn_tied, Daemon};
use signet_testkit::Sshd;
use signet_testkit::{free_port, softhsm_module, SoftHsm};

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo build -p {name}`",
        path.display()
    );
    path
}

struct Ca {
    hsm: SoftHsm,
    config: PathBuf,
}

impl Ca {
    fn path(&self, name: &str) -> PathBuf {
        self.hsm.dir().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(binary("signet-ca"))
            .env("SOFTHSM2_CONF", self.hsm.conf())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "signet-ca {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn wait_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for(file: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn current_user() -> String {
    run_ok(Command::new("id").arg("-un")).trim().to_owned()
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

/// The CA on a fresh token, initialised, with its roles applied.
fn ca(login: &str) -> Ca {
    let hsm = SoftHsm::create("proxy-serve");
    let dir = hsm.dir().to_owned();
    let fido = self_signed(&dir, "fido-roots");
    let piv = self_signed(&dir, "piv-roots");
    let config = include_str!("../../deploy/signet-ca.example.toml")
        .replace(
            "data_dir = \"/var/lib/signet\"",
            &format!("data_dir = \"{}\"", dir.join("data").display()),
        )
        .replace(
            "module = \"/usr/lib/softhsm/libsofthsm2.so\"",
            &format!("module = \"{}\"", softhsm_module().display()),
        )
        .replace(
            "token_label = \"signet-ca\"",
            &format!("token_label = \"{}\"", hsm.label()),
        )
        .replace(
            "pin_file = \"/etc/signet/hsm-pin\"",
            &format!("pin_file = \"{}\"", hsm.pin_file().display()),
        )
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
         kind: user\nname: alice\nroles: [sre]\n"
    );
    let roles = ca.write("roles.yaml", &roles);
    ca.ok(&["roles", "apply", roles.to_str().unwrap()]);
    ca
}

fn set_serve(config: &Path, key: &str, value: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let commented = format!("# {key} = ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&commented))
        .unwrap()
        .to_owned();
    std::fs::write(config, text.replace(&line, &format!("{key} = {value:?}"))).unwrap();
}

/// The tunnel client: the preamble, then stdin, through TLS with ALPN
/// signet-ssh/1 and the user's certificate.
fn tunnel_command(proxy_port: u16, node: &str, login: &str, cert: &Path, key: &Path) -> String {
    format!(
        "bash -c 'exec openssl s_client -quiet -no_ign_eof -alpn signet-ssh/1 -cert {} -key {} \
         -connect 127.0.0.1:{proxy_port} 2>/dev/null \
         < <(printf \"signet-ssh/1 node={node} login={login}\\n\"; exec cat)'",
        cert.display(),
        key.display()
    )
}

#[test]
#[ignore = "on a clean CI machine the session opened for the lock test ended before printing; \
            under investigation — run with `cargo test -p signet-proxy --test serve -- --ignored`"]
fn ssh_through_the_proxy_is_decided_by_the_feed_and_cut_by_a_lock() {
    let login = current_user();
    // The CA first (its user key is what sshd trusts), sshd on the port
    // the inventory names.
    let ca = ca(&login);
    let user_ca = ca.write("ssh-user-ca.pub", &ca.ok(&["export", "ssh-user-ca"]));
    let sshd = Sshd::start(&format!("TrustedUserCAKeys {}", user_ca.display()), None);
    let sshd_port = sshd.port();
    let nodes = format!(
        "kind: node\nname: web-1\naddress: 127.0.0.1:{sshd_port}\nlabels: {{ env: prod }}\n---\n\
         kind: node\nname: db-1\naddress: 127.0.0.1:{sshd_port}\nlabels: {{ env: staging }}\n"
    );
    let nodes = ca.write("nodes.yaml", &nodes);
    ca.ok(&["nodes", "apply", nodes.to_str().unwrap()]);

    // One file key: its X.509 certificate for the proxy, its SSH
    // certificate for sshd (issued before the daemon holds the store).
    let key = ca.path("user");
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
            .arg(ca.path("user.pub.pem")),
    );
    let x509 = ca.write(
        "user.pem",
        &ca.ok(&[
            "sign",
            "x509-client",
            "--user",
            "alice",
            "--ttl",
            "1h",
            "--public-key",
            ca.path("user.pub.pem").to_str().unwrap(),
        ]),
    );
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
    // The CA daemon with its proxy listener.
    let feed_port = free_port();
    set_serve(
        &ca.config,
        "proxy_listen",
        &format!("127.0.0.1:{feed_port}"),
    );
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
    let _ca_daemon = Daemon::new(
        spawn_tied(
            binary("signet-ca").to_str().unwrap(),
            &["--config".as_ref(), ca.config.as_os_str(), "serve".as_ref()],
            |c| {
                c.env("SOFTHSM2_CONF", ca.hsm.conf())
                    .stderr(std::fs::File::create(ca.path("ca.log")).unwrap());
            },
        )
        .unwrap(),
    );
    wait_port(ca_port, "signet-ca serve", &ca.path("ca.log"));
    wait_port(feed_port, "the proxy listener", &ca.path("ca.log"));

    // The proxy joins, then serves.
    ca.write("root.pem", &ca.ok(&["export", "x509-ca"]));
    let token = ca.ok(&["proxies", "invite", "--name", "edge-1"]);
    ca.write("join-token", &token);
    let proxy_port = free_port();
    let config = include_str!("../../deploy/proxy.example.toml")
        .replace("0.0.0.0:443", &format!("127.0.0.1:{proxy_port}"))
        .replace(
            "https://ca.internal.example:8441",
            &format!("https://localhost:{ca_port}"),
        )
        .replace(
            "https://ca.internal.example:8442",
            &format!("https://localhost:{feed_port}"),
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
    let proxy_config = ca.write("proxy.toml", &config);
    run_ok(
        Command::new(binary("signet-proxy"))
            .args(["join", "--config"])
            .arg(&proxy_config)
            .env_remove("SIGNET_PROXY_JOIN_TOKEN"),
    );
    let proxy_log = ca.path("proxy.log");
    let _proxy = Daemon::new(
        spawn_tied(
            binary("signet-proxy").to_str().unwrap(),
            &[
                "serve".as_ref(),
                "--config".as_ref(),
                proxy_config.as_os_str(),
            ],
            |c| {
                c.stderr(std::fs::File::create(&proxy_log).unwrap());
            },
        )
        .unwrap(),
    );
    wait_port(proxy_port, "signet-proxy serve", &proxy_log);
    wait_for(&proxy_log, "new view from the CA");

    let ssh = |node: &str, command: &str| {
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!("IdentityFile={}", key.display()))
        .arg("-o")
        .arg(format!("CertificateFile={}", ssh_cert.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .arg("-o")
        .arg(format!(
            "ProxyCommand={}",
            tunnel_command(proxy_port, node, &login, &x509, &key)
        ))
        .arg(format!("{login}@{node}"))
        .arg(command);
        cmd
    };

    // A session runs a command through the proxy.
    let out = ssh("web-1", "echo through-the-proxy").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("through-the-proxy"),
        "ssh: {}\nproxy log:\n{}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&proxy_log).unwrap_or_default(),
        sshd.log()
    );
    wait_for(&proxy_log, "\"event\":\"accept\"");

    // A node outside the role: refused, with the reason, before any SSH.
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-alpn", "signet-ssh/1", "-cert"])
        .arg(&x509)
        .arg("-key")
        .arg(&key)
        .arg("-connect")
        .arg(format!("127.0.0.1:{proxy_port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    client
        .stdin
        .take()
        .unwrap()
        .write_all(format!("signet-ssh/1 node=db-1 login={login}\n").as_bytes())
        .unwrap();
    let out = client.wait_with_output().unwrap();
    let reply = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        reply.starts_with("signet-ssh/1 refused node_not_allowed:"),
        "{reply}"
    );
    println!("refused: {}", reply.trim());

    // No client certificate: refused with the reason.
    let mut bare = Command::new("openssl")
        .args(["s_client", "-quiet", "-alpn", "signet-ssh/1", "-connect"])
        .arg(format!("127.0.0.1:{proxy_port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    bare.stdin
        .take()
        .unwrap()
        .write_all(format!("signet-ssh/1 node=web-1 login={login}\n").as_bytes())
        .unwrap();
    let out = bare.wait_with_output().unwrap();
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(
        reply.starts_with("signet-ssh/1 refused no_certificate:"),
        "{reply}"
    );

    // An open session, then the lock: the proxy closes it.
    let mut session = ssh("web-1", "echo open; sleep 60")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 5];
    std::io::Read::read_exact(session.stdout.as_mut().unwrap(), &mut first).unwrap();
    assert_eq!(&first, b"open\n");
    let locked = Instant::now();
    ca.ok(&["lock", "--user", "alice", "--reason", "offboarded"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = session.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = session.kill();
            panic!(
                "the session outlived the lock; proxy log:\n{}",
                std::fs::read_to_string(&proxy_log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let delay = locked.elapsed();
    println!(
        "lock to session closed: {} ms (signet-ca lock included)",
        delay.as_millis()
    );
    assert!(!status.success());
    assert!(delay < Duration::from_secs(10), "{delay:?}");
    let log = wait_for(&proxy_log, "\"event\":\"cut\"");
    assert!(log.contains("user_locked"), "{log}");

    // And a new session is refused while locked.
    let out = ssh("web-1", "echo nope").output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("nope"));
}
