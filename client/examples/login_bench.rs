//! `signet login` end to end, and ssh through `signet agent` vs a plain key
//! file, in one run (docs/BENCHMARKS.md).
//!
//! Real processes throughout: `signet-ca serve` on SoftHSM2, the virtual
//! YubiKey (PIV + FIDO2) behind a private pcscd with its touch approved at
//! once, the `signet` binary, a loopback sshd.
//!
//! 1. **Login**: the time from starting `signet login` to its exit after
//!    both certificates are verified and stored (slot 9a and the profile):
//!    TLS to the CA, `GET /v1/ca`, the card (PIN, metadata, attestation),
//!    begin, the touch over CTAP2/PC/SC, finish (two HSM signatures, the log
//!    append and checkpoint), the proofs checked, the certificate written to
//!    the card. The first login (key generation, pinning) is shown apart.
//! 2. **ssh**: one sshd trusting both the Signet user CA and a CA made with
//!    ssh-keygen; each round runs `ssh … true` once with a key file and its
//!    certificate (`-i`, no agent) and once through `signet agent --daemon`
//!    signing on the virtual card with the login's certificate (PIN policy
//!    once from a file, touch policy always, approved at once), interleaved.
//!
//! Build the binaries first (the example runs them from its own target
//! directory), then run, as root (private pcscd):
//!
//!   cargo build --release -p signet -p signet-ca
//!   cargo run --release -p signet --example login_bench -- [LOGINS] [SSH_ROUNDS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};

#[path = "../tests/support/ca.rs"]
mod support;
use support::{current_user, Ca, Trust};

const PIN: &str = "123456";

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let median = quantile(&times, 0.5);
    println!(
        "  {name:<34} median {:8.1} ms   p90 {:8.1} ms   min {:8.1} ms   (n={})",
        ms(median),
        ms(quantile(&times, 0.9)),
        ms(times[0]),
        times.len()
    );
    median
}

/// The engineer's machine: XDG directories, the PIN file, pcscd's sockets.
struct Home {
    dir: tempfile::TempDir,
    envs: Vec<(String, PathBuf)>,
    signet: PathBuf,
}

impl Home {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.signet);
        command
            .args(args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("SIGNET_PIN_FILE", self.dir.path().join("pin"))
            .stdin(Stdio::null());
        command
    }

    /// Runs signet and returns how long it took; panics if it failed.
    fn timed(&self, args: &[&str]) -> (Duration, String) {
        let started = Instant::now();
        let out = self.command(args).output().unwrap();
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "signet {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (took, String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn ssh(port: u16, user: &str, auth: &[String], envs: &[(String, PathBuf)]) -> Duration {
    let start = Instant::now();
    let out = Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(auth)
        .args(["-p", &port.to_string()])
        .arg(format!("{user}@127.0.0.1"))
        .arg("true")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "ssh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The agent this bench started, stopped by the pid it printed when the
/// bench ends (or fails).
struct StopOnDrop(u32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
    }
}

fn ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let logins: usize = args.first().map_or(20, |a| a.parse().expect("LOGINS"));
    let rounds: usize = args.get(1).map_or(40, |a| a.parse().expect("SSH_ROUNDS"));
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/examples/login_bench → target/<profile>/
    let bin_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let signet = bin_dir.join("signet");
    assert!(
        signet.exists() && bin_dir.join("signet-ca").exists(),
        "build the binaries first: cargo build --release -p signet -p signet-ca"
    );

    let key = VirtualYubiKey::start(VirtualKeyOptions::default())
        .expect("the virtual YubiKey (root, pcscd and vsmartcard-vpcd)");
    key.fido().set_pin(PIN).unwrap();
    let home = Home {
        dir: tempfile::tempdir().unwrap(),
        envs: key.pcscd().envs(),
        signet,
    };
    let pin_file = home.dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let mut ca = Ca::new(
        &bin_dir,
        Trust::Root(&key.root().cert_pem().unwrap()),
        "https://localhost:1",
    );
    // The per-user limit (20 calls a minute) is for people, not a bench.
    let config = std::fs::read_to_string(&ca.config).unwrap();
    std::fs::write(
        &ca.config,
        config.replace("per_user_per_minute = 20", "per_user_per_minute = 100000"),
    )
    .unwrap();
    let root = ca.path("ca-root.pem");
    std::fs::write(&root, ca.ok(&["export", "x509-ca"])).unwrap();
    ca.serve();
    let root = root.to_str().unwrap().to_owned();
    let link = ca.ok(&["users", "invite", "alice", "--ttl", "10m"]);
    home.timed(&["enroll", link.trim(), "--ca-cert", &root]);
    let user = current_user();
    let proxy = format!("localhost:{}", ca.port);

    // The first login: a key generated in slot 9a, the log key pinned.
    let (first, _) = home.timed(&[
        "login",
        "--proxy",
        &proxy,
        "--user",
        "alice",
        "--ca-cert",
        &root,
        "--principal",
        &user,
        "--json",
    ]);
    let mut again = Vec::new();
    for _ in 0..logins {
        again.push(home.timed(&["login", "--json"]).0);
    }

    // ssh: sshd trusting the Signet user CA and a key-file CA.
    let dir = home.dir.path();
    ok(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.join("file-ca")));
    ok(Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f"])
        .arg(dir.join("user")));
    ok(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(dir.join("file-ca"))
        .args(["-I", "bench", "-n", &user, "-V", "-5m:+1h"])
        .arg(dir.join("user.pub")));
    let trusted = format!(
        "{}{}",
        ca.ok(&["export", "ssh-user-ca"]),
        std::fs::read_to_string(dir.join("file-ca.pub")).unwrap()
    );
    std::fs::write(dir.join("trusted-cas.pub"), trusted).unwrap();
    let sshd = signet_testkit::Sshd::start(
        &format!(
            "TrustedUserCAKeys {}\n",
            dir.join("trusted-cas.pub").display()
        ),
        None,
    );
    let (_, eval) = home.timed(&["agent", "--daemon"]);
    let socket = eval
        .split(';')
        .find_map(|part| part.trim().strip_prefix("SSH_AUTH_SOCK="))
        .expect("signet agent --daemon prints SSH_AUTH_SOCK=…")
        .trim_matches('\'')
        .to_owned();
    let _agent = eval
        .split(';')
        .find_map(|part| part.trim().strip_prefix("SSH_AGENT_PID="))
        .and_then(|p| p.trim().parse().ok())
        .map(StopOnDrop);
    let plain = vec![
        "-o".to_string(),
        "IdentityAgent=none".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-i".into(),
        dir.join("user").display().to_string(),
    ];
    let through_agent = vec![
        "-o".to_string(),
        format!("IdentityAgent={socket}"),
        "-o".into(),
        "IdentityFile=none".into(),
    ];
    let no_env = Vec::new();
    // Warm up both paths.
    ssh(sshd.port(), &user, &plain, &no_env);
    ssh(sshd.port(), &user, &through_agent, &no_env);
    let (mut with_file, mut with_agent) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        with_file.push(ssh(sshd.port(), &user, &plain, &no_env));
        with_agent.push(ssh(sshd.port(), &user, &through_agent, &no_env));
    }

    println!("signet login, start to certificates stored (virtual YubiKey, touch approved at once, SoftHSM2 CA on loopback):");
    println!("  first login (key generated, pins)  {:8.1} ms", ms(first));
    summary("login (key present)", again);
    println!("ssh connection setup (connect, key exchange, certificate auth, `true`), {rounds} rounds interleaved, loopback sshd:");
    let f50 = summary("key file (-i, no agent)", with_file);
    let a50 = summary("signet agent, virtual YubiKey", with_agent);
    println!(
        "  ratio agent/file (medians):        {:.3}",
        a50.as_secs_f64() / f50.as_secs_f64()
    );
}
