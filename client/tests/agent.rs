//! `signet agent` against the real OpenSSH tools: `ssh-add -L` lists the
//! certificate, `ssh` logs into a loopback sshd that trusts a CA made here
//! with `ssh-keygen`, an expired certificate is refused with a message that
//! says to run `signet login`, another uid is refused, and malformed
//! messages close the connection while the agent keeps serving.
//!
//! The agent runs in this process with an in-memory key ([`SoftKey`]) for
//! the protocol tests, and as the `signet` binary for the daemon tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use signet::agent::{Agent, AgentHandle, AgentPaths, Log, SoftKey};
use signet_testkit::Sshd;

/// A scratch directory with a CA, a user key and a certificate for it.
struct Keys {
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    out
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An ECDSA P-256 key pair by ssh-keygen at `path` (and `path.pub`) that
/// ssh-key reads: ssh-key 0.7 rc refuses a few of the keys ssh-keygen
/// writes (`Encoding(Length)` on reading the private key, seen about once in
/// a few hundred), so such a key is made again.
fn ecdsa_key(path: &Path) {
    for _ in 0..10 {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(path.with_extension("pub"));
        ok(Command::new("ssh-keygen")
            .args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f"])
            .arg(path));
        if ssh_key::PrivateKey::read_openssh_file(path).is_ok() {
            return;
        }
    }
    panic!("ssh-key could not read 10 ECDSA keys from ssh-keygen in a row");
}

fn current_user() -> String {
    ok(Command::new("id").arg("-un")).trim().to_string()
}

impl Keys {
    /// An Ed25519 CA, an ECDSA P-256 user key (as slot 9a holds), and a
    /// certificate for the current user valid over `validity` (ssh-keygen -V).
    fn new(validity: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("signet-agent-")
            .tempdir()
            .unwrap();
        let keys = Self { dir };
        ok(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test CA", "-f"])
            .arg(keys.path("ca")));
        ecdsa_key(&keys.path("user"));
        keys.issue(validity);
        keys
    }

    fn issue(&self, validity: &str) {
        let user = current_user();
        ok(Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(self.path("ca"))
            .args(["-I", "alice@signet", "-n", &user, "-V", validity])
            .arg(self.path("user.pub")));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cert(&self) -> PathBuf {
        self.path("user-cert.pub")
    }

    fn soft_key(&self) -> Arc<SoftKey> {
        Arc::new(SoftKey::new(
            ssh_key::PrivateKey::read_openssh_file(self.path("user")).unwrap(),
        ))
    }
}

/// The agent's log lines, kept for assertions.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn log(&self) -> Log {
        let lines = self.0.clone();
        Arc::new(move |line: &str| {
            eprintln!("agent: {line}");
            lines.lock().unwrap().push(line.to_string());
        })
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// An agent in this process on a socket in its own private directory.
struct Running {
    _handle: AgentHandle,
    socket: PathBuf,
    lines: Lines,
    _dir: tempfile::TempDir,
}

fn start_agent(keys: &Keys) -> Running {
    let dir = tempfile::Builder::new()
        .prefix("signet-agent-run-")
        .tempdir()
        .unwrap();
    let paths = AgentPaths::in_dir(dir.path().join("signet"));
    paths.prepare().unwrap();
    let lock = paths.lock().unwrap();
    let listener = paths.bind(&lock).unwrap();
    // The lock is the binary's business; in-process agents each have their own directory.
    drop(lock);
    serve(keys, listener, paths.socket, dir)
}

fn serve(keys: &Keys, listener: UnixListener, socket: PathBuf, dir: tempfile::TempDir) -> Running {
    let lines = Lines::default();
    let agent = Agent::new(keys.cert(), "alice", keys.soft_key(), lines.log()).unwrap();
    Running {
        _handle: agent.spawn(listener).unwrap(),
        socket,
        lines,
        _dir: dir,
    }
}

fn ssh_add_list(socket: &Path) -> Output {
    run(Command::new("ssh-add")
        .arg("-L")
        .env("SSH_AUTH_SOCK", socket)
        .stdin(Stdio::null()))
}

/// The key type and base64 of an OpenSSH public key or certificate line.
fn key_words(line: &str) -> (String, String) {
    let mut words = line.split_whitespace();
    (
        words.next().unwrap().to_string(),
        words.next().unwrap().to_string(),
    )
}

/// sshd trusting the test's CA; the current user may log in with a certificate only.
fn sshd_for(keys: &Keys) -> Sshd {
    Sshd::start(
        &format!("TrustedUserCAKeys {}\n", keys.path("ca.pub").display()),
        None,
    )
}

fn ssh_through(socket: &Path, sshd: &Sshd) -> Output {
    run(Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentityFile=none",
        ])
        .arg("-o")
        .arg(format!("IdentityAgent={}", socket.display()))
        .args(["-p", &sshd.port().to_string()])
        .arg(format!("{}@127.0.0.1", current_user()))
        .arg("echo signet-agent-ok")
        .stdin(Stdio::null()))
}

#[test]
fn ssh_add_lists_the_certificate_and_nothing_else() {
    let keys = Keys::new("-5m:+1h");
    let agent = start_agent(&keys);
    let out = ssh_add_list(&agent.socket);
    assert!(out.status.success(), "{out:?}\n{}", agent.lines.text());
    let listed = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    let cert = std::fs::read_to_string(keys.cert()).unwrap();
    assert_eq!(key_words(lines[0]), key_words(&cert));
    assert!(lines[0].starts_with("ecdsa-sha2-nistp256-cert-v01@openssh.com "));
    assert!(lines[0].ends_with(" signet alice"), "{}", lines[0]);
}

#[test]
fn ssh_logs_in_through_the_agent_with_the_certificate() {
    let keys = Keys::new("-5m:+1h");
    let agent = start_agent(&keys);
    let sshd = sshd_for(&keys);
    let out = ssh_through(&agent.socket, &sshd);
    assert!(
        out.status.success(),
        "ssh failed: {}\nagent:\n{}\nsshd:\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.lines.text(),
        sshd.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "signet-agent-ok"
    );
    // sshd accepted the certificate (not some other key), and ssh bound the
    // agent connection to the host with a signature the agent verified.
    assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
    assert!(sshd.log().contains("ID alice@signet"), "{}", sshd.log());
    let log = agent.lines.text();
    assert!(
        log.contains("connection bound to host key SHA256:"),
        "{log}"
    );
    assert!(log.contains("signing with the Signet key"), "{log}");
}

#[test]
fn a_certificate_from_another_ca_is_listed_but_sshd_refuses_it() {
    // The agent does not judge the CA; sshd does. The test can fail: a
    // server trusting any certificate would let this in.
    let keys = Keys::new("-5m:+1h");
    let other = Keys::new("-5m:+1h");
    let agent = start_agent(&keys);
    let sshd = sshd_for(&other);
    let out = ssh_through(&agent.socket, &sshd);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
}

#[test]
fn an_expired_certificate_is_not_offered_and_the_log_says_run_signet_login() {
    let keys = Keys::new("20200101:20200102");
    let agent = start_agent(&keys);
    let out = ssh_add_list(&agent.socket);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no identities"),
        "{out:?}"
    );
    let sshd = sshd_for(&keys);
    let out = ssh_through(&agent.socket, &sshd);
    assert!(
        !out.status.success(),
        "ssh logged in with an expired certificate"
    );
    let log = agent.lines.text();
    assert!(
        log.contains("your Signet certificate expired at 2020-01-02T")
            && log.contains("run `signet login`"),
        "{log}"
    );
    // A client that asks for a signature anyway (it knew the blob) is refused.
    let cert = ssh_key::Certificate::read_file(&keys.cert()).unwrap();
    let mut client = UnixStream::connect(&agent.socket).unwrap();
    let reply = exchange(
        &mut client,
        &sign_request(&cert.to_bytes().unwrap(), b"data", 0),
    );
    assert_eq!(reply.as_deref(), Some(&[5u8][..]));
    assert!(agent
        .lines
        .text()
        .contains("signature refused: your Signet certificate expired at 2020-01-02T"));
}

#[test]
fn a_renewed_certificate_is_offered_without_a_restart() {
    let keys = Keys::new("20200101:20200102");
    let agent = start_agent(&keys);
    assert!(!ssh_add_list(&agent.socket).status.success());
    keys.issue("-5m:+1h");
    let out = ssh_add_list(&agent.socket);
    assert!(out.status.success(), "{out:?}");
}

// --- The raw protocol -------------------------------------------------------

fn string(bytes: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(bytes);
    v
}

fn framed(body: &[u8]) -> Vec<u8> {
    string(body)
}

fn sign_request(key: &[u8], data: &[u8], flags: u32) -> Vec<u8> {
    let mut body = vec![13];
    body.extend(string(key));
    body.extend(string(data));
    body.extend(flags.to_be_bytes());
    framed(&body)
}

/// Sends raw bytes and reads one reply body; `None` when the agent closed
/// the connection instead.
fn exchange(client: &mut UnixStream, bytes: &[u8]) -> Option<Vec<u8>> {
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    if client.write_all(bytes).is_err() {
        return None;
    }
    let mut prefix = [0u8; 4];
    client.read_exact(&mut prefix).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    client.read_exact(&mut body).ok()?;
    Some(body)
}

fn still_serving(agent: &Running) {
    let out = ssh_add_list(&agent.socket);
    assert!(out.status.success(), "the agent stopped serving: {out:?}");
}

#[test]
fn malformed_messages_close_the_connection_and_the_agent_keeps_serving() {
    let keys = Keys::new("-5m:+1h");
    let agent = start_agent(&keys);
    let cert = ssh_key::Certificate::read_file(&keys.cert()).unwrap();
    let blob = cert.to_bytes().unwrap();
    let mut over_long = vec![13];
    over_long.extend(0xffff_fff0u32.to_be_bytes());
    let mut trailing = sign_request(&blob, b"data", 0);
    trailing.push(0);
    let len = u32::from_be_bytes(trailing[..4].try_into().unwrap()) + 1;
    trailing[..4].copy_from_slice(&len.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero length", vec![0, 0, 0, 0]),
        ("over 256 KiB", (256 * 1024 + 1u32).to_be_bytes().to_vec()),
        ("4 GiB", vec![0xff; 4]),
        ("a string longer than its message", framed(&over_long)),
        ("a truncated sign request", framed(&[13, 0, 0, 0, 3, b'k'])),
        ("trailing bytes", trailing),
        ("identities with a body", framed(&[11, 0])),
        ("a truncated session-bind", {
            let mut b = vec![27];
            b.extend(string(b"session-bind@openssh.com"));
            b.extend(string(b"hostkey"));
            framed(&b)
        }),
    ];
    for (what, bytes) in cases {
        let mut client = UnixStream::connect(&agent.socket).unwrap();
        assert_eq!(exchange(&mut client, &bytes), None, "{what}: not closed");
        still_serving(&agent);
    }
    // A message that says more than it sends, then hangs up: closed, serving.
    let mut client = UnixStream::connect(&agent.socket).unwrap();
    client.write_all(&[0, 0, 1, 0, 11]).unwrap();
    drop(client);
    still_serving(&agent);
    assert!(agent.lines.text().contains("connection closed"));
}

#[test]
fn what_the_agent_does_not_do_it_refuses() {
    let keys = Keys::new("-5m:+1h");
    let agent = start_agent(&keys);
    let mut client = UnixStream::connect(&agent.socket).unwrap();
    let failure = Some(vec![5u8]);
    // ADD_IDENTITY, REMOVE_ALL_IDENTITIES, LOCK, an unknown number: failure,
    // and the connection stays open.
    for body in [
        &[17u8, 0, 0, 0, 0][..],
        &[19],
        &[22, 0, 0, 0, 1, b'x'],
        &[200],
    ] {
        assert_eq!(exchange(&mut client, &framed(body)), failure, "{body:?}");
    }
    // An extension it does not know.
    let mut query = vec![27];
    query.extend(string(b"query"));
    assert_eq!(exchange(&mut client, &framed(&query)), failure);
    // A key it does not hold (the other key of a second set), and the bare
    // key of a different certificate.
    let other = Keys::new("-5m:+1h");
    let other_cert = ssh_key::Certificate::read_file(&other.cert()).unwrap();
    assert_eq!(
        exchange(
            &mut client,
            &sign_request(&other_cert.to_bytes().unwrap(), b"x", 0)
        ),
        failure
    );
    // session-bind whose signature is not the host's over the session id.
    let host =
        ssh_key::PrivateKey::from_openssh(std::fs::read_to_string(other.path("ca")).unwrap())
            .unwrap();
    let mut bind = vec![27];
    bind.extend(string(b"session-bind@openssh.com"));
    bind.extend(string(&host.public_key().to_bytes().unwrap()));
    bind.extend(string(b"session id"));
    let wrong: ssh_key::Signature = signature::Signer::sign(&host, b"another session");
    bind.extend(string(&Vec::<u8>::try_from(wrong).unwrap()));
    bind.push(0);
    assert_eq!(exchange(&mut client, &framed(&bind)), failure);
    assert!(agent
        .lines
        .text()
        .contains("the host's signature over the session does not verify"));
    // The right signature binds, and then only that session's data is signed.
    let mut bind = vec![27];
    bind.extend(string(b"session-bind@openssh.com"));
    bind.extend(string(&host.public_key().to_bytes().unwrap()));
    bind.extend(string(b"session id"));
    let right: ssh_key::Signature = signature::Signer::sign(&host, b"session id");
    bind.extend(string(&Vec::<u8>::try_from(right).unwrap()));
    bind.push(0);
    assert_eq!(exchange(&mut client, &framed(&bind)), Some(vec![6u8]));
    let cert = ssh_key::Certificate::read_file(&keys.cert()).unwrap();
    let blob = cert.to_bytes().unwrap();
    let mut for_other_session = string(b"another session");
    for_other_session.extend(b"rest of a userauth request");
    assert_eq!(
        exchange(&mut client, &sign_request(&blob, &for_other_session, 0)),
        failure
    );
    let mut for_this_session = string(b"session id");
    for_this_session.extend(b"rest of a userauth request");
    let reply = exchange(&mut client, &sign_request(&blob, &for_this_session, 0)).unwrap();
    assert_eq!(reply[0], 14, "{reply:?}");
    // The signature verifies with the certificate's key over that data.
    let sig = ssh_key::Signature::try_from(&reply[5..]).unwrap();
    signature::Verifier::verify(cert.public_key(), &for_this_session, &sig).unwrap();
    // A forwarded connection is bound hop by hop: a client on the far host
    // that does not bind its own session still gets its signature.
    let mut forwarded = UnixStream::connect(&agent.socket).unwrap();
    let last = bind.len() - 1;
    bind[last] = 1;
    assert_eq!(exchange(&mut forwarded, &framed(&bind)), Some(vec![6u8]));
    let reply = exchange(&mut forwarded, &sign_request(&blob, &for_other_session, 0)).unwrap();
    assert_eq!(reply[0], 14, "{reply:?}");
    assert!(agent.lines.text().contains("(forwarded)"));
}

#[test]
fn a_client_of_another_uid_is_refused() {
    if current_user() != "root" {
        eprintln!("skipped: needs root to run a client as another uid (setpriv --reuid)");
        return;
    }
    let keys = Keys::new("-5m:+1h");
    // Through the agent's own directory: the other user cannot even reach
    // the socket (0700 directory).
    let agent = start_agent(&keys);
    let other_uid = |socket: &Path| {
        run(Command::new("setpriv")
            .args([
                "--reuid=65533",
                "--regid=65533",
                "--clear-groups",
                "ssh-add",
                "-L",
            ])
            .env("SSH_AUTH_SOCK", socket)
            .stdin(Stdio::null()))
    };
    let out = other_uid(&agent.socket);
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("cert-v01"));
    // A socket anyone can reach (as a misconfigured forwarding might leave
    // it): the agent itself refuses the other uid by its peer credentials.
    let open = tempfile::Builder::new()
        .prefix("signet-agent-open-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = open.path().join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let exposed = serve(&keys, listener, socket.clone(), open);
    let out = other_uid(&socket);
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("cert-v01"));
    assert!(
        exposed
            .lines
            .text()
            .contains("refused a client running as uid 65533"),
        "{}",
        exposed.lines.text()
    );
    // The owner still gets the certificate there.
    still_serving(&exposed);
}

#[test]
fn the_runtime_directory_must_be_private_and_ours() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("signet");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = AgentPaths::in_dir(open.clone()).prepare().unwrap_err();
    assert!(err.to_string().contains("mode 0700"), "{err}");
    // A symlink to a private directory is not the directory.
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    assert!(AgentPaths::in_dir(link).prepare().is_err());
    // A fresh one is made 0700.
    let fresh = AgentPaths::in_dir(dir.path().join("fresh"));
    fresh.prepare().unwrap();
    let mode = std::fs::metadata(&fresh.dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

// --- The binary -------------------------------------------------------------

/// Environment for the `signet` binary: its own XDG directories.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("signet-agent-home-")
            .tempdir()
            .unwrap();
        for sub in ["config", "state", "runtime"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::set_permissions(
            dir.path().join("runtime"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        Self { dir }
    }

    fn signet(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
        cmd.env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("runtime"))
            .env_remove("SIGNET_PIN_FILE")
            .stdin(Stdio::null());
        cmd
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("state/signet/ssh-cert.pub")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("runtime/signet/agent.sock")
    }

    fn install_cert(&self, keys: &Keys) {
        std::fs::create_dir_all(self.cert_path().parent().unwrap()).unwrap();
        std::fs::copy(keys.cert(), self.cert_path()).unwrap();
    }
}

/// Kills a daemon the test started (by its pid) when dropped.
struct Kill(String);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.0).status();
    }
}

fn pid_of(eval: &str) -> String {
    eval.lines()
        .find_map(|l| l.strip_prefix("SSH_AGENT_PID="))
        .and_then(|l| l.split(';').next())
        .unwrap()
        .to_string()
}

#[test]
fn signet_agent_daemon_prints_the_socket_and_says_when_the_certificate_expired() {
    let home = Home::new();
    let keys = Keys::new("20200101:20200102");
    home.install_cert(&keys);
    let out = run(home.signet().args(["agent", "--daemon"]));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let _kill = Kill(pid_of(&stdout));
    assert!(
        stdout.starts_with(&format!(
            "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;\n",
            home.socket().display()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("your Signet certificate expired at 2020-01-02T")
            && stderr.contains("run `signet login`"),
        "{stderr}"
    );
    // The socket is 0600 in a 0700 directory.
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        std::fs::metadata(home.socket()).unwrap().mode() & 0o777,
        0o600
    );
    // It offers nothing, and its log says why.
    let listed = ssh_add_list(&home.socket());
    assert!(!listed.status.success());
    let log = std::fs::read_to_string(home.dir.path().join("runtime/signet/agent.log")).unwrap();
    assert!(
        log.contains("no identity offered: your Signet certificate expired"),
        "{log}"
    );
    // A second --daemon finds the first; a second foreground agent refuses.
    let again = run(home.signet().args(["agent", "--daemon"]));
    assert!(again.status.success());
    assert_eq!(
        pid_of(&String::from_utf8_lossy(&again.stdout)),
        pid_of(&stdout)
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));
    let fight = run(home.signet().arg("agent"));
    assert_eq!(fight.status.code(), Some(3), "{fight:?}");
    assert!(String::from_utf8_lossy(&fight.stderr).contains("another signet agent is running"));
    // After a login (a fresh certificate in the profile) it is offered.
    keys.issue("-5m:+1h");
    home.install_cert(&keys);
    let listed = ssh_add_list(&home.socket());
    assert!(listed.status.success(), "{listed:?}");
}

#[test]
fn signet_config_and_signet_ssh_name_the_agent() {
    let home = Home::new();
    let out = run(home.signet().arg("config"));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Host *\n"), "{text}");
    assert!(
        text.contains(&format!("IdentityAgent \"{}\"", home.socket().display())),
        "{text}"
    );
    // The agent offers the certificate; a CertificateFile beside it would
    // make ssh try to load a private key from the certificate's file.
    assert!(!text.contains("CertificateFile"), "{text}");
    assert!(!text.contains("@cert-authority"));
    // With the host CA in the profile: a known_hosts file with its
    // @cert-authority line, named in the block.
    let keys = Keys::new("-5m:+1h");
    let config_dir = home.dir.path().join("config/signet");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::copy(keys.path("ca.pub"), config_dir.join("ssh-host-ca.pub")).unwrap();
    let text = ok(home.signet().arg("config"));
    let known_hosts = config_dir.join("known_hosts");
    assert!(text.contains(&format!(
        "UserKnownHostsFile ~/.ssh/known_hosts \"{}\"",
        known_hosts.display()
    )));
    let line = std::fs::read_to_string(&known_hosts).unwrap();
    let ca = std::fs::read_to_string(keys.path("ca.pub")).unwrap();
    assert!(line.starts_with("@cert-authority * ssh-ed25519 "), "{line}");
    assert_eq!(
        key_words(&line[line.find("ssh-ed25519").unwrap()..]),
        key_words(&ca)
    );
    // A malformed host CA file is an error, not a silent skip.
    std::fs::write(config_dir.join("ssh-host-ca.pub"), "not a key\n").unwrap();
    let bad = run(home.signet().arg("config"));
    assert!(!bad.status.success());

    // signet ssh starts the agent when it does not run and hands ssh the
    // options: `ssh -G` prints the configuration it would use.
    std::fs::remove_file(config_dir.join("ssh-host-ca.pub")).unwrap();
    let out = run(home
        .signet()
        .args(["ssh", "-G", "-F", "/dev/null", "example.invalid"]));
    let _kill = std::fs::read_to_string(home.dir.path().join("runtime/signet/agent.pid"))
        .ok()
        .map(|pid| Kill(pid.trim().to_string()));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(_kill.is_some());
    assert!(
        stdout.contains(&format!("identityagent {}", home.socket().display())),
        "{stdout}"
    );
    assert!(!stdout.contains("certificatefile"), "{stdout}");
    assert!(UnixStream::connect(home.socket()).is_ok());
}

// --- The real card path -----------------------------------------------------

/// The whole path as an engineer runs it: a key generated in slot 9a of the
/// virtual YubiKey (behind a private pcscd) with touch policy "always", an
/// SSH certificate for it from a CA made here, stored where the profile
/// says; `signet agent --daemon` serves it; ssh logs in, the card signs
/// (opened for the signature, released after) and the agent's log asks for
/// the touch. Needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them).
#[test]
fn ssh_logs_in_with_a_key_on_the_virtual_yubikey() {
    use signet::card::{Card, KeyAlgorithm, KeyPinPolicy, KeyTouchPolicy, Pin};
    use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};

    let key = VirtualYubiKey::start(VirtualKeyOptions::default()).unwrap_or_else(|e| {
        panic!("the virtual YubiKey did not start ({e}); it needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them)")
    });
    let home = Home::new();
    let pin_file = home.dir.path().join("pin");
    std::fs::write(&pin_file, "123456\n").unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pin = Pin::from_file(&pin_file).unwrap();

    // Slot 9a: a P-256 key that needs the PIN once and a touch every time.
    let card = Card::open(Some(key.serial())).unwrap();
    let slot = card
        .generate_9a(
            Some(&pin),
            KeyAlgorithm::P256,
            KeyPinPolicy::Once,
            KeyTouchPolicy::Always,
        )
        .unwrap();
    let verifying = {
        use p256::pkcs8::DecodePublicKey as _;
        p256::ecdsa::VerifyingKey::from_public_key_der(&slot.spki_der).unwrap()
    };
    let public = ssh_key::PublicKey::new(
        ssh_key::public::KeyData::Ecdsa(ssh_key::public::EcdsaPublicKey::from(&verifying)),
        "slot 9a",
    );
    // A CA and a certificate for the card's key, by ssh-keygen.
    let keys = Keys::new("-5m:+1h");
    std::fs::write(keys.path("card.pub"), public.to_openssh().unwrap()).unwrap();
    ok(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(keys.path("ca"))
        .args(["-I", "alice@card", "-n", &current_user(), "-V", "-5m:+1h"])
        .arg(keys.path("card.pub")));
    std::fs::create_dir_all(home.cert_path().parent().unwrap()).unwrap();
    std::fs::copy(keys.path("card-cert.pub"), home.cert_path()).unwrap();
    signet::profile::Profile {
        ca_url: "https://ca.invalid".into(),
        user: "alice".into(),
        serial: Some(key.serial()),
        ..Default::default()
    }
    .save_to(&home.dir.path().join("config/signet/profile.toml"))
    .unwrap();

    let out = run(home
        .signet()
        .args(["agent", "--daemon"])
        .env("SIGNET_PIN_FILE", &pin_file)
        .envs(key.pcscd().envs()));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _kill = Kill(pid_of(&stdout));
    let listed = ok(Command::new("ssh-add")
        .arg("-L")
        .env("SSH_AUTH_SOCK", home.socket()));
    assert!(listed.trim_end().ends_with(" signet alice"), "{listed}");

    let sshd = sshd_for(&keys);
    let log_path = home.dir.path().join("runtime/signet/agent.log");
    let out = ssh_through(&home.socket(), &sshd);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        out.status.success(),
        "ssh failed: {}\nagent:\n{log}\nsshd:\n{}\npcscd:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sshd.log(),
        key.pcscd().log_tail()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "signet-agent-ok"
    );
    assert!(sshd.log().contains("ID alice@card"), "{}", sshd.log());
    assert!(
        log.contains(&format!("Touch your YubiKey (serial {})", key.serial())),
        "{log}"
    );
    // Between signatures the card is free for other programs.
    assert!(Card::open(Some(key.serial()))
        .unwrap()
        .slot_9a()
        .unwrap()
        .is_some());

    // A card whose slot 9a holds another key than the certificate's: the
    // agent refuses to sign and says why; ssh is refused.
    card.generate_9a(
        Some(&pin),
        KeyAlgorithm::P256,
        KeyPinPolicy::Once,
        KeyTouchPolicy::Never,
    )
    .unwrap();
    let out = ssh_through(&home.socket(), &sshd);
    assert!(!out.status.success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("the certificate is for another key than the one this agent signs with"),
        "{log}"
    );
}

#[test]
fn without_a_pin_source_the_card_signature_fails_with_a_reason() {
    use signet::card::{Card, KeyAlgorithm, KeyPinPolicy, KeyTouchPolicy, Pin};
    use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};

    let key = VirtualYubiKey::start(VirtualKeyOptions::default()).unwrap_or_else(|e| {
        panic!("the virtual YubiKey did not start ({e}); it needs pcscd and vsmartcard-vpcd")
    });
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, "123456\n").unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pin = Pin::from_file(&pin_file).unwrap();
    let card = Card::open(Some(key.serial())).unwrap();
    let slot = card
        .generate_9a(
            Some(&pin),
            KeyAlgorithm::P256,
            KeyPinPolicy::Once,
            KeyTouchPolicy::Never,
        )
        .unwrap();
    let public = {
        use p256::pkcs8::DecodePublicKey as _;
        let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&slot.spki_der).unwrap();
        ssh_key::public::KeyData::Ecdsa(ssh_key::public::EcdsaPublicKey::from(&vk))
    };
    // This process's environment: nextest runs each test in its own process.
    std::env::remove_var("SIGNET_PIN_FILE");
    let lines = Lines::default();
    let card_key = signet::agent::card::CardKey::new(Some(key.serial()), lines.log());
    let err = signet::agent::AgentKey::sign(&card_key, &public, b"data", None).unwrap_err();
    assert!(err.to_string().contains("needs the PIN"), "{err}");
    assert!(err.to_string().contains("SIGNET_PIN_FILE"), "{err}");
    // With the PIN file it signs, and the signature verifies.
    std::env::set_var("SIGNET_PIN_FILE", &pin_file);
    let sig = signet::agent::AgentKey::sign(&card_key, &public, b"data", None).unwrap();
    signature::Verifier::verify(&public, b"data", &sig).unwrap();
}
