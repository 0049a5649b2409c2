//! ssh connection setup through `signet agent` vs the same ssh with a plain
//! key file, in one run (docs/BENCHMARKS.md).
//!
//! One loopback sshd trusting a CA made here with ssh-keygen; one ECDSA
//! P-256 key (the type slot 9a holds) with a certificate from that CA. Each
//! round runs `ssh … true` twice, interleaved: once with the key and
//! certificate files (`-i`, no agent), once through the Signet agent (this
//! process, the key in memory, so the agent's own cost is what differs).
//! Prints the median and p90 of each, and the ratio of the medians.
//!
//!   cargo run --release -p signet --example agent_bench -- [ROUNDS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signet::agent::{Agent, AgentPaths, SoftKey};

fn ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ssh(port: u16, user: &str, auth: &[String]) -> Duration {
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

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUNDS is a number"))
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    ok(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path("ca")));
    ok(Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f"])
        .arg(path("user")));
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    ok(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(path("ca"))
        .args(["-I", "bench", "-n", &user, "-V", "-5m:+1h"])
        .arg(path("user.pub")));
    let sshd = signet_testkit::Sshd::start(
        &format!(
            "TrustedUserCAKeys {}\nLogLevel ERROR\n",
            path("ca.pub").display()
        ),
        None,
    );

    let paths = AgentPaths::in_dir(path("agent"));
    paths.prepare().unwrap();
    let lock = paths.lock().unwrap();
    let listener = paths.bind(&lock).unwrap();
    let key = Arc::new(SoftKey::new(
        ssh_key::PrivateKey::read_openssh_file(path("user")).unwrap(),
    ));
    let quiet: signet::agent::Log = Arc::new(|_: &str| {});
    let agent = Agent::new(path("user-cert.pub"), &user, key, quiet)
        .unwrap()
        .spawn(listener)
        .unwrap();

    let file_auth = |p: &Path| {
        vec![
            "-o".into(),
            "IdentityAgent=none".into(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-i".into(),
            p.display().to_string(),
        ]
    };
    let agent_auth = vec![
        "-o".into(),
        format!("IdentityAgent={}", paths.socket.display()),
        "-o".into(),
        "IdentityFile=none".into(),
    ];
    let plain = file_auth(&path("user"));
    // Warm up both paths (page cache, sshd's first fork).
    ssh(sshd.port(), &user, &plain);
    ssh(sshd.port(), &user, &agent_auth);
    let (mut with_file, mut with_agent) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        with_file.push(ssh(sshd.port(), &user, &plain));
        with_agent.push(ssh(sshd.port(), &user, &agent_auth));
    }
    drop(agent);
    with_file.sort();
    with_agent.sort();
    let (f50, a50) = (quantile(&with_file, 0.5), quantile(&with_agent, 0.5));
    println!("ssh connection setup (connect, key exchange, certificate auth, `true`), {rounds} rounds interleaved, loopback sshd:");
    println!(
        "  key file (-i, no agent):     median {:7.2} ms   p90 {:7.2} ms",
        ms(f50),
        ms(quantile(&with_file, 0.9))
    );
    println!(
        "  through the Signet agent:    median {:7.2} ms   p90 {:7.2} ms",
        ms(a50),
        ms(quantile(&with_agent, 0.9))
    );
    println!(
        "  ratio agent/file (medians):  {:.3}",
        a50.as_secs_f64() / f50.as_secs_f64()
    );
}
