//! `signet proxy ssh` and `signet config` end to end, all real peers: the
//! `signet-ca serve` daemon on SoftHSM2 with its proxy listener, a joined
//! `signet-proxy serve`, a loopback `sshd` trusting the CA's user key as
//! the node `web-1` (and `db-1`, outside the role), the virtual YubiKey
//! behind a private pcscd holding the key and certificates from a real
//! `signet enroll` and `signet login` (both through the proxy's one port,
//! which forwards the CA's API), `signet agent` for the SSH side, and
//! OpenSSH's `ssh` and `scp` reading the block `signet config` printed
//! (`ssh -F`), so the ProxyCommand is `signet proxy ssh %r@%h:%p` and the
//! TLS client signature is made on the card.
//!
//! Needs what client/tests/login.rs needs, and `signet-proxy` built next to
//! `signet` (`cargo build --all-features -p signet-ca -p signet-proxy`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};
use signet_testkit::Sshd;

#[path = "support/ca.rs"]
mod support;
use support::{current_user, Ca, Trust};
#[path = "support/proxy.rs"]
mod proxy_support;
use proxy_support::Proxy;

const PIN: &str = "123456";

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
        let dir = tempfile::Builder::new()
            .prefix("signet-proxy-ssh-")
            .tempdir()
            .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
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

    /// The environment every command of the engineer's gets (ssh passes
    /// it on to the ProxyCommand).
    fn env(&self, cmd: &mut Command) {
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_RUNTIME_DIR", self.path("runtime"))
            .env("SIGNET_PIN_FILE", self.path("pin"))
            .env_remove("SIGNET_FIDO_PIN_FILE")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY");
    }

    fn signet(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
        cmd.args(args).stdin(Stdio::null());
        self.env(&mut cmd);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.signet(args).output().unwrap();
        assert!(
            out.status.success(),
            "signet {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ssh -F <signet config's block> NODE COMMAND`.
    fn ssh(&self, node: &str, command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(self.path("ssh_config"))
            .arg(node)
            .arg(command)
            .stdin(Stdio::null());
        self.env(&mut cmd);
        cmd
    }
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Everything running, the engineer logged in, `signet config` written.
struct World {
    // Drop order: the agent, the proxy, the CA, sshd, the card.
    _agent: signet_testkit::child::Daemon,
    proxy: Proxy,
    ca: Ca,
    sshd: Sshd,
    home: Home,
    key: VirtualYubiKey,
    login: String,
}

fn world() -> World {
    let key = VirtualYubiKey::start(VirtualKeyOptions::default()).unwrap_or_else(|e| {
        panic!("the virtual YubiKey did not start ({e}); it needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them)")
    });
    key.fido().set_pin(PIN).unwrap();
    let home = Home::new(&key);
    let login = current_user();

    // The CA, trusting the virtual key's attestation, with its proxy
    // listener; the nodes: web-1 (env dev: the dev role's) and db-1
    // (staging: no role of alice's), both this sshd.
    // The proxy's port first: logins go through the proxy, so the CA
    // takes its origin for WebAuthn.
    let proxy_port = signet_testkit::free_port();
    let mut ca = Ca::new(
        bin_dir(),
        Trust::Root(&key.root().cert_pem().unwrap()),
        &format!("https://localhost:{proxy_port}"),
    );
    let user_ca = ca.path("user-ca.pub");
    std::fs::write(&user_ca, ca.ok(&["export", "ssh-user-ca"])).unwrap();
    let sshd = Sshd::start(
        &format!(
            "TrustedUserCAKeys {}\nAuthorizedKeysFile none\nSubsystem sftp internal-sftp",
            user_ca.display()
        ),
        None,
    );
    let nodes = ca.path("nodes.yaml");
    std::fs::write(
        &nodes,
        format!(
            "kind: node\nname: web-1\naddress: 127.0.0.1:{port}\nlabels: {{ env: dev }}\n---\n\
             kind: node\nname: db-1\naddress: 127.0.0.1:{port}\nlabels: {{ env: staging }}\n",
            port = sshd.port()
        ),
    )
    .unwrap();
    ca.ok(&["nodes", "apply", nodes.to_str().unwrap()]);
    ca.enable_proxy_listener();
    ca.serve();
    let root = ca.path("ca-root.pem");
    std::fs::write(&root, ca.ok(&["export", "x509-ca"])).unwrap();
    let proxy = Proxy::join_and_serve_on(&ca, bin_dir(), "edge-1", proxy_port);

    // The engineer, through the proxy's one port as the design has it:
    // enroll with the invite (its link rewritten to the proxy's address),
    // log in (the key generated in slot 9a, PIN once, touch always; the
    // certificates from the CA through the proxy), which also remembers
    // the proxy for the tunnels.
    let link = ca.ok(&["users", "invite", "alice", "--ttl", "10m"]);
    let link = link.trim().replace(
        &format!("https://localhost:{}/", ca.port),
        &format!("https://localhost:{proxy_port}/"),
    );
    assert!(
        link.starts_with(&format!("https://localhost:{proxy_port}/enroll/")),
        "{link}"
    );
    home.ok(&["enroll", &link, "--ca-cert", root.to_str().unwrap()]);
    home.ok(&[
        "login",
        "--proxy",
        &format!("localhost:{proxy_port}"),
        "--user",
        "alice",
        "--ca-cert",
        root.to_str().unwrap(),
        "--principal",
        &login,
    ]);
    let profile = std::fs::read_to_string(home.path("config/signet/profile.toml")).unwrap();
    assert!(
        profile.contains(&format!("proxy = \"localhost:{proxy_port}\"")),
        "{profile}"
    );
    // The agent in the foreground, tied to this test (it dies with it).
    let agent = signet_testkit::child::Daemon::new(
        signet_testkit::child::spawn_tied(env!("CARGO_BIN_EXE_signet"), &["agent".as_ref()], |c| {
            home.env(c);
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(home.path("runtime/agent.log")).unwrap());
        })
        .unwrap(),
    );
    let socket = home.path("runtime/signet/agent.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "signet agent did not come up: {}",
            std::fs::read_to_string(home.path("runtime/agent.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The block for ~/.ssh/config, after this test's own host key
    // settings (sshd's host key has no certificate: first match wins).
    let block = home.ok(&["config", "--hosts", "web-1,db-1"]);
    assert!(
        block.contains(&format!("Signet proxy localhost:{proxy_port},")),
        "{block}"
    );
    std::fs::write(
        home.path("ssh_config"),
        format!(
            "Host *\n    BatchMode yes\n    StrictHostKeyChecking no\n    \
             UserKnownHostsFile /dev/null\n    LogLevel ERROR\n    ConnectTimeout 30\n\n{block}"
        ),
    )
    .unwrap();
    World {
        _agent: agent,
        proxy,
        ca,
        sshd,
        home,
        key,
        login,
    }
}

impl World {
    fn logs(&self) -> String {
        format!(
            "proxy log:\n{}\nsshd log:\n{}\nagent log:\n{}",
            self.proxy.log(),
            self.sshd.log(),
            std::fs::read_to_string(self.home.path("runtime/agent.log")).unwrap_or_default()
        )
    }

    fn ssh_ok(&self, node: &str, command: &str) -> Output {
        let out = self.home.ssh(node, command).output().unwrap();
        assert!(
            out.status.success(),
            "ssh {node} {command}: {}\n{}",
            text(&out.stderr),
            self.logs()
        );
        // Nothing in the generated block makes ssh complain.
        assert!(
            !text(&out.stderr).contains("Load key"),
            "{}",
            text(&out.stderr)
        );
        out
    }

    /// `signet proxy ssh TARGET` run by hand, stdin from `input`.
    fn tunnel(&self, target: &str, extra: &[&str], input: &[u8]) -> Output {
        let mut cmd = self.home.signet(&["proxy", "ssh", target]);
        cmd.args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, &input);
        });
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        out
    }
}

#[test]
fn plain_ssh_through_signet_config_and_every_refusal() {
    let w = world();
    let block = std::fs::read_to_string(w.home.path("ssh_config")).unwrap();
    assert!(block.contains("Host web-1 db-1\n"), "{block}");
    assert!(
        block.contains(&format!(
            "    ProxyCommand {} proxy ssh %r@%h:%p\n",
            env!("CARGO_BIN_EXE_signet")
        )),
        "{block}"
    );

    // A session: the TLS client signature on the card (a touch), the SSH
    // signature through the agent (on the card too).
    let out = w.ssh_ok("web-1", "echo through-signet-proxy");
    assert_eq!(text(&out.stdout).trim(), "through-signet-proxy");
    assert!(
        text(&out.stderr).contains(&format!(
            "Touch your YubiKey (serial {}) to open the tunnel",
            w.key.serial()
        )),
        "{}",
        text(&out.stderr)
    );
    let log = w.proxy.wait_for("\"event\":\"accept\"", 1);
    assert!(log.contains("\"user\":\"alice\""), "{log}");

    // Bulk both ways, and the ends of input: scp up and down, 8 MiB.
    let data: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let local = w.home.path("bulk.bin");
    std::fs::write(&local, &data).unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("bulk.bin");
    let scp = |from: String, to: String| {
        let mut cmd = Command::new("scp");
        cmd.arg("-q")
            .arg("-F")
            .arg(w.home.path("ssh_config"))
            .arg(from)
            .arg(to)
            .stdin(Stdio::null());
        w.home.env(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "scp: {}\n{}",
            text(&out.stderr),
            w.logs()
        );
    };
    scp(
        local.display().to_string(),
        format!("web-1:{}", remote.display()),
    );
    assert!(
        std::fs::read(&remote).unwrap() == data,
        "scp up changed the bytes"
    );
    let back = w.home.path("back.bin");
    scp(
        format!("web-1:{}", remote.display()),
        back.display().to_string(),
    );
    assert!(
        std::fs::read(&back).unwrap() == data,
        "scp down changed the bytes"
    );
    // stdin to the node's command ends, and its answer still comes back.
    let mut cmd = w.home.ssh("web-1", "sha256sum");
    let out = cmd
        .stdin(std::fs::File::open(&local).unwrap())
        .output()
        .unwrap();
    let expected = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&data))
    };
    assert!(
        text(&out.stdout).starts_with(&expected),
        "{}",
        text(&out.stderr)
    );

    // git over ssh through the proxy: clone, commit, push, clone again.
    let git = |dir: &Path, args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.current_dir(dir)
            .args([
                "-c",
                "user.name=alice",
                "-c",
                "user.email=alice@example.com",
            ])
            .args(args)
            .env(
                "GIT_SSH_COMMAND",
                format!("ssh -F {}", w.home.path("ssh_config").display()),
            )
            .stdin(Stdio::null());
        w.home.env(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}\n{}",
            text(&out.stderr),
            w.logs()
        );
    };
    let bare = remote_dir.path().join("repo.git");
    git(
        remote_dir.path(),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
    );
    let url = format!("web-1:{}", bare.display());
    let work = w.home.path("work");
    git(
        w.home.dir.path(),
        &["clone", "-q", &url, work.to_str().unwrap()],
    );
    std::fs::write(work.join("README"), "through the proxy\n").unwrap();
    git(&work, &["add", "README"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(&work, &["push", "-q", "origin", "HEAD"]);
    let again = w.home.path("again");
    git(
        w.home.dir.path(),
        &["clone", "-q", &url, again.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read_to_string(again.join("README")).unwrap(),
        "through the proxy\n"
    );

    // By hand, half-closed: our end of input reaches sshd (which answers
    // its banner and ends), its end closes our stdout, exit 0.
    let out = w.tunnel(
        &format!("{}@web-1:22", w.login),
        &[],
        b"SSH-2.0-half-close-test\r\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("SSH-2.0-OpenSSH"),
        "{:?}",
        text(&out.stdout)
    );

    // A node outside alice's roles: ssh fails, the reason on stderr.
    let out = w.home.ssh("db-1", "echo nope").output().unwrap();
    assert!(!out.status.success());
    assert!(!text(&out.stdout).contains("nope"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("signet: error: the Signet proxy refused")
            && stderr.contains("(node_not_allowed)"),
        "{stderr}"
    );
    // By hand: one line, exit 6, nothing on stdout.
    let out = w.tunnel(&format!("{}@db-1:22", w.login), &[], b"SSH-2.0-x\r\n");
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let lines: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("Touch your YubiKey"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("node_not_allowed"), "{lines:?}");
    // A login outside the roles.
    let out = w.tunnel("mallory@web-1:22", &[], b"");
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("login_not_allowed"),
        "{}",
        text(&out.stderr)
    );
    // A node the inventory does not have.
    let out = w.tunnel(&format!("{}@nowhere:22", w.login), &[], b"");
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));

    // Bad targets never reach the proxy.
    let accepted = w.proxy.count("\"event\":\"accept\"");
    let refused = w.proxy.count("\"event\":\"refuse\"");
    for bad in [
        "web-1",
        "root@web-1:0",
        "root@web-1 login=x:22",
        "@web-1:22",
    ] {
        let out = w.tunnel(bad, &[], b"");
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out.stderr));
    }
    assert_eq!(w.proxy.count("\"event\":\"refuse\""), refused);

    // No card: a clear error, exit 4, nothing sent.
    let mut cmd = w
        .home
        .signet(&["proxy", "ssh", &format!("{}@web-1:22", w.login)]);
    cmd.env("PCSCLITE_CSOCK_NAME", w.home.path("no-pcscd.comm"));
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "the YubiKey with serial {} is not present (no YubiKey is)",
            w.key.serial()
        )),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.proxy.count("\"event\":\"refuse\""), refused);

    // A wrong PIN: the card refuses to sign the handshake, said as the
    // card's error with the tries left (exit 4); the proxy opens nothing.
    let wrong = w.home.path("wrong-pin");
    std::fs::write(&wrong, "654321\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut cmd = w
        .home
        .signet(&["proxy", "ssh", &format!("{}@web-1:22", w.login)]);
    cmd.env("SIGNET_PIN_FILE", &wrong);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("wrong PIN: 2 tries left"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("654321"));
    assert_eq!(w.proxy.count("\"event\":\"accept\""), accepted);
    // Nobody touches the card: the handshake's signature fails, exit 4.
    w.key
        .touch()
        .set_mode(signet_firmware_tests::touch::TouchMode::Deny);
    let out = w.tunnel(&format!("{}@web-1:22", w.login), &[], b"");
    w.key
        .touch()
        .set_mode(signet_firmware_tests::touch::TouchMode::Approve);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Touch your YubiKey")
            && text(&out.stderr).contains("was not touched in time"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.proxy.count("\"event\":\"accept\""), accepted);
    // A slow touch (12 s, the card waits 15 s) still opens the session:
    // the proxy's handshake allows 30 s by default.
    w.key
        .touch()
        .set_mode(signet_firmware_tests::touch::TouchMode::Delay(
            Duration::from_secs(12),
        ));
    let slow = std::time::Instant::now();
    w.ssh_ok("web-1", "true");
    assert!(slow.elapsed() >= Duration::from_secs(12));
    w.key
        .touch()
        .set_mode(signet_firmware_tests::touch::TouchMode::Approve);
    // The right PIN again (the card's counter back to 3).
    w.ssh_ok("web-1", "true");
    let accepted = w.proxy.count("\"event\":\"accept\"");

    // Another CA's root pinned: the proxy's certificate is not trusted, the
    // tunnel refused before a byte of SSH leaves (exit 5), by ssh too.
    let profile_path = w.home.path("config/signet/profile.toml");
    let profile = std::fs::read_to_string(&profile_path).unwrap();
    let other_root = w.home.path("other-root.pem");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=another CA",
            "-keyout",
        ])
        .arg(w.home.path("other-root.key"))
        .arg("-out")
        .arg(&other_root)
        .output()
        .unwrap();
    assert!(made.status.success());
    let pinned = profile
        .lines()
        .find(|l| l.starts_with("ca_root = "))
        .unwrap()
        .to_owned();
    std::fs::write(
        &profile_path,
        profile.replace(
            &pinned,
            &format!("ca_root = {:?}", other_root.display().to_string()),
        ),
    )
    .unwrap();
    let out = w.tunnel(
        &format!("{}@web-1:22", w.login),
        &[],
        b"SSH-2.0-should-not-pass\r\n",
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not trusted")
            && text(&out.stderr).contains("does not chain to the pinned CA root"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let out = w.home.ssh("web-1", "echo nope").output().unwrap();
    assert!(!out.status.success() && !text(&out.stdout).contains("nope"));
    assert!(
        text(&out.stderr).contains("is not trusted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.proxy.count("\"event\":\"accept\""), accepted);
    std::fs::write(&profile_path, &profile).unwrap();

    // A client certificate for the card's key from that other CA: the
    // proxy refuses it at the TLS layer, said as such (exit 6).
    let stored = w.home.path("state/signet/x509-cert.pem");
    let issued = std::fs::read(&stored).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            text(&out.stderr)
        );
        out.stdout
    };
    let p = |name: &str| w.home.path(name).to_str().unwrap().to_owned();
    let card_key = openssl(&["x509", "-pubkey", "-noout", "-in", stored.to_str().unwrap()]);
    std::fs::write(w.home.path("card-key.pem"), card_key).unwrap();
    std::fs::write(
        w.home.path("forged.ext"),
        "extendedKeyUsage=clientAuth\nsubjectAltName=URI:signet://example.com/user/alice\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-new",
        "-subj",
        "/CN=alice",
        "-force_pubkey",
        &p("card-key.pem"),
        "-CA",
        &p("other-root.pem"),
        "-CAkey",
        &p("other-root.key"),
        "-days",
        "1",
        "-extfile",
        &p("forged.ext"),
        "-out",
        &p("forged.pem"),
    ]);
    std::fs::copy(w.home.path("forged.pem"), &stored).unwrap();
    let out = w.tunnel(&format!("{}@web-1:22", w.login), &[], b"");
    std::fs::write(&stored, &issued).unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refused your certificate (TLS alert"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.proxy.count("\"event\":\"accept\""), accepted);

    // The proxy's certificate names localhost only: reached as 127.0.0.1,
    // it is refused for its name (hostname verification is on).
    let out = w.tunnel(
        &format!("{}@web-1:22", w.login),
        &["--proxy", &format!("127.0.0.1:{}", w.proxy.port)],
        b"SSH-2.0-should-not-pass\r\n",
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("its certificate is not for the name 127.0.0.1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.proxy.count("\"event\":\"accept\""), accepted);

    // An open session, then a lock: the tunnel is cut, and the
    // ProxyCommand says so.
    let mut session = w
        .home
        .ssh("web-1", "echo open; sleep 60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 5];
    session
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(&first, b"open\n");
    let locked = Instant::now();
    w.ca.ok(&["lock", "--user", "alice", "--reason", "offboarded"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while session.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = session.kill();
            panic!("the session outlived the lock\n{}", w.logs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("lock to ssh ended: {} ms", locked.elapsed().as_millis());
    let out = session.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the tunnel to web-1 was cut"),
        "{}",
        text(&out.stderr)
    );
    // Locked: refused with the reason.
    let out = w.tunnel(&format!("{}@web-1:22", w.login), &[], b"");
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("locked"),
        "{}",
        text(&out.stderr)
    );

    // Logged out: no certificate for the card's key, said before any
    // connection (exit 2).
    w.home.ok(&["logout"]);
    let refused = w.proxy.count("\"event\":\"refuse\"");
    let out = w.tunnel(&format!("{}@web-1:22", w.login), &[], b"");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "no Signet certificate for the key in slot 9a of YubiKey {}: run `signet login`",
            w.key.serial()
        )),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.proxy.count("\"event\":\"refuse\""), refused);
}

/// `signet config` without a card or a CA: the block, its JSON, the proxy
/// remembered, bad input refused; real ssh reads the block (`ssh -G`).
#[test]
fn signet_config_prints_the_proxy_block() {
    let dir = tempfile::tempdir().unwrap();
    let signet = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(args)
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("XDG_RUNTIME_DIR", dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{}",
            text(&out.stderr)
        );
        out
    };
    // No profile, no proxy: the agent lines only, and how to add the rest.
    let out = signet(&["config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let block = text(&out.stdout);
    assert!(
        block.contains("Host *\n") && !block.contains("ProxyCommand"),
        "{block}"
    );
    assert!(block.contains("signet config --proxy HOST:PORT"), "{block}");

    // --proxy: remembered in the profile, the ProxyCommand in the block.
    let out = signet(&[
        "config",
        "--proxy",
        "localhost:8443",
        "--hosts",
        "web-* !db-9,*.internal",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let block = text(&out.stdout);
    assert!(block.contains("Host web-* !db-9 *.internal\n"), "{block}");
    let command = format!("{} proxy ssh %r@%h:%p", env!("CARGO_BIN_EXE_signet"));
    assert!(
        block.contains(&format!("    ProxyCommand {command}\n")),
        "{block}"
    );
    assert!(block.contains("Signet proxy localhost:8443"), "{block}");
    let profile = std::fs::read_to_string(dir.path().join("config/signet/profile.toml")).unwrap();
    assert!(profile.contains("proxy = \"localhost:8443\""), "{profile}");
    // OpenSSH reads it: the ProxyCommand for the hosts named, not others.
    let config = dir.path().join("ssh_config");
    std::fs::write(&config, &block).unwrap();
    let ssh_g = |host: &str| {
        let out = Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(&config)
            .arg(format!("root@{host}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let web = ssh_g("web-1");
    assert!(web.contains(&format!("proxycommand {command}")), "{web}");
    assert!(web.contains("identityagent"), "{web}");
    assert!(!ssh_g("db-9").contains("proxycommand"));
    assert!(!ssh_g("github.com").contains("proxycommand"));

    // --json: the same, for programs.
    let out = signet(&["config", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["proxy"], "localhost:8443");
    assert_eq!(json["hosts"], serde_json::json!(["*"]));
    assert_eq!(json["proxy_command"], command);
    assert!(json["ssh_config"]
        .as_str()
        .unwrap()
        .contains("ProxyCommand"));

    // Bad input: refused, nothing remembered.
    for args in [
        &["config", "--hosts", "web-1\n    ProxyCommand evil"][..],
        &["config", "--hosts", ""],
        &["config", "--hosts", "a#b"],
        &["config", "--proxy", "localhost:0"],
        &["config", "--proxy", "http://localhost:80"],
    ] {
        let out = signet(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
    let after = std::fs::read_to_string(dir.path().join("config/signet/profile.toml")).unwrap();
    assert_eq!(after, profile);
}

/// Connection set-up time, and bulk throughput both ways of ssh through
/// `signet proxy ssh` and the proxy, against ssh straight to the same sshd
/// and through an OpenSSH bastion (`ProxyJump` via a second loopback sshd
/// trusting the same CA): the client as engineers run it, its TLS client
/// signature made on the card. 256 MiB per transfer, set-up included,
/// rounds interleaved (direct, proxy, bastion) so a neighbour's burst hits
/// every path alike; medians. Prints the numbers; asserts nothing about
/// speed. docs/BENCHMARKS.md records them.
#[test]
#[ignore = "a measurement: cargo nextest run -p signet --all-features --test proxy_ssh --run-ignored only --no-capture"]
fn throughput_through_the_proxy_against_direct() {
    let w = world();
    let user_ca = w.ca.path("user-ca.pub");
    let bastion = Sshd::start(&format!("TrustedUserCAKeys {}", user_ca.display()), None);
    let config = w.home.path("ssh_config");
    let mut text_config = std::fs::read_to_string(&config).unwrap();
    let agent = w.home.path("runtime/signet/agent.sock");
    text_config.push_str(&format!(
        "\nHost direct\n    HostName 127.0.0.1\n    Port {node}\n    IdentityAgent \"{agent}\"\n\
         Host bastion\n    HostName 127.0.0.1\n    Port {bastion}\n    IdentityAgent \"{agent}\"\n\
         Host via-bastion\n    HostName 127.0.0.1\n    Port {node}\n    ProxyJump bastion\n    IdentityAgent \"{agent}\"\n",
        node = w.sshd.port(),
        bastion = bastion.port(),
        agent = agent.display(),
    ));
    std::fs::write(&config, text_config).unwrap();
    const MIB: u64 = 256;
    const ROUNDS: usize = 5;
    const PATHS: [(&str, &str); 3] = [
        ("direct", "direct"),
        ("signet proxy ssh", "web-1"),
        ("bastion -J", "via-bastion"),
    ];
    let once = |host: &str, script: &str| {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(
                script
                    .replace("HOST", host)
                    .replace("CONFIG", config.to_str().unwrap()),
            )
            .stdin(Stdio::null());
        w.home.env(&mut cmd);
        let start = Instant::now();
        let out = cmd.output().unwrap();
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "{script} ({host}): {}\n{}",
            text(&out.stderr),
            w.logs()
        );
        MIB as f64 / took.as_secs_f64()
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let up = format!("head -c {MIB}M /dev/zero | ssh -F CONFIG HOST 'cat > /dev/null'");
    let down = format!("ssh -F CONFIG HOST 'head -c {MIB}M /dev/zero' > /dev/null");
    // Connection set-up: ssh HOST true (TLS with the card's signature, the
    // preamble, then SSH with the agent's), median of 5.
    let setup = |host: &str| {
        let mut times: Vec<Duration> = (0..5)
            .map(|_| {
                let start = Instant::now();
                w.ssh_ok(host, "true");
                start.elapsed()
            })
            .collect();
        times.sort();
        times[2]
    };
    let (direct, proxied, jumped) = (setup("direct"), setup("web-1"), setup("via-bastion"));
    println!(
        "ssh HOST true, median of 5: direct {} ms, through signet proxy ssh {} ms, through the bastion {} ms",
        direct.as_millis(),
        proxied.as_millis(),
        jumped.as_millis()
    );
    for (what, script) in [("upload", &up), ("download", &down)] {
        let mut runs = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (i, (_, host)) in PATHS.iter().enumerate() {
                runs[i].push(once(host, script));
            }
        }
        let [direct, proxied, jumped] = runs.map(median);
        println!("{what}, {MIB} MiB, median of {ROUNDS}:");
        println!("  direct            {direct:6.1} MiB/s");
        println!(
            "  signet proxy ssh  {proxied:6.1} MiB/s = {:.3} x direct",
            proxied / direct
        );
        println!(
            "  bastion -J        {jumped:6.1} MiB/s = {:.3} x direct",
            jumped / direct
        );
        println!("  proxy / bastion   {:.3}", proxied / jumped);
    }
}
