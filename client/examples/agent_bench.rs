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
//! With `--card`, a third path: the agent signing on the virtual YubiKey
//! behind a private pcscd (a key generated in slot 9a, PIN policy once,
//! touch policy never, the PIN from a file), opened for every signature as
//! `signet agent` does. Needs root, pcscd and vsmartcard-vpcd.
//!
//!   cargo run --release -p signet --example agent_bench -- [ROUNDS] [--card]
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let with_card = args.iter().any(|a| a == "--card");
    let rounds: usize = args
        .iter()
        .find(|a| *a != "--card")
        .map(|a| a.parse().expect("ROUNDS is a number"))
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    ok(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path("ca")));
    // ssh-key 0.7 rc refuses a few of the ECDSA keys ssh-keygen writes
    // (`Encoding(Length)`, about once in a few hundred): make another.
    for _ in 0..10 {
        let _ = std::fs::remove_file(path("user"));
        let _ = std::fs::remove_file(path("user.pub"));
        ok(Command::new("ssh-keygen")
            .args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f"])
            .arg(path("user")));
        if ssh_key::PrivateKey::read_openssh_file(path("user")).is_ok() {
            break;
        }
    }
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
        &format!("TrustedUserCAKeys {}\n", path("ca.pub").display()),
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
    let card = with_card.then(|| card_agent(dir.path(), &user));
    let card_auth = card.as_ref().map(|(_, _, socket)| {
        vec![
            "-o".to_string(),
            format!("IdentityAgent={}", socket.display()),
            "-o".into(),
            "IdentityFile=none".into(),
        ]
    });
    // Warm up every path (page cache, sshd's first fork).
    ssh(sshd.port(), &user, &plain);
    ssh(sshd.port(), &user, &agent_auth);
    if let Some(auth) = &card_auth {
        ssh(sshd.port(), &user, auth);
    }
    let (mut with_file, mut with_agent, mut with_card) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        with_file.push(ssh(sshd.port(), &user, &plain));
        with_agent.push(ssh(sshd.port(), &user, &agent_auth));
        if let Some(auth) = &card_auth {
            with_card.push(ssh(sshd.port(), &user, auth));
        }
    }
    drop(agent);
    drop(card);
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
    if !with_card.is_empty() {
        with_card.sort();
        let c50 = quantile(&with_card, 0.5);
        println!(
            "  agent on the virtual YubiKey: median {:7.2} ms   p90 {:7.2} ms",
            ms(c50),
            ms(quantile(&with_card, 0.9))
        );
        println!(
            "  ratio card agent/file (medians): {:.3}",
            c50.as_secs_f64() / f50.as_secs_f64()
        );
    }
}

/// An agent signing on the virtual YubiKey, with a certificate for the
/// card's key from the same CA: (the card, the agent, its socket).
fn card_agent(
    dir: &Path,
    user: &str,
) -> (
    signet_firmware_tests::harness::VirtualYubiKey,
    signet::agent::AgentHandle,
    std::path::PathBuf,
) {
    use signet::card::{Card, KeyAlgorithm, KeyPinPolicy, KeyTouchPolicy, Pin};
    use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};
    use std::os::unix::fs::PermissionsExt as _;

    let key = VirtualYubiKey::start(VirtualKeyOptions::default()).unwrap();
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, "123456\n").unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Read by the agent's card key at every signature.
    std::env::set_var("SIGNET_PIN_FILE", &pin_file);
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
    let verifying = {
        use p256::pkcs8::DecodePublicKey as _;
        p256::ecdsa::VerifyingKey::from_public_key_der(&slot.spki_der).unwrap()
    };
    let public = ssh_key::PublicKey::new(
        ssh_key::public::KeyData::Ecdsa(ssh_key::public::EcdsaPublicKey::from(&verifying)),
        "slot 9a",
    );
    std::fs::write(dir.join("card.pub"), public.to_openssh().unwrap()).unwrap();
    ok(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(dir.join("ca"))
        .args(["-I", "bench-card", "-n", user, "-V", "-5m:+1h"])
        .arg(dir.join("card.pub")));
    let paths = AgentPaths::in_dir(dir.join("card-agent"));
    paths.prepare().unwrap();
    let lock = paths.lock().unwrap();
    let listener = paths.bind(&lock).unwrap();
    let quiet: signet::agent::Log = Arc::new(|_: &str| {});
    let signer = Arc::new(signet::agent::card::CardKey::new(
        Some(key.serial()),
        Arc::clone(&quiet),
    ));
    let handle = Agent::new(dir.join("card-cert.pub"), user, signer, quiet)
        .unwrap()
        .spawn(listener)
        .unwrap();
    (key, handle, paths.socket)
}
