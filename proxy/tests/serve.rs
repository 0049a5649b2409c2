//! `signet-proxy serve` against real peers (see `common`): OpenSSH `ssh`
//! through the proxy to a loopback `sshd`, each tunnel decided by the
//! CA's live feed. A session runs a command; every refusal tells its
//! reason (a reply line for the feed's decisions, the TLS alert for a
//! certificate the handshake rejects); `signet-ca lock --user` closes an
//! open session, and the delay is printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{count_in, not_after, unix_now, wait_count, wait_exit, Env, OUTSIDE_LOGIN};

#[test]
fn ssh_through_the_proxy_is_decided_by_the_feed_and_cut_by_a_lock() {
    let env = Env::start();

    // A session runs a command through the proxy.
    let out = env.ssh("web-1", "echo through-the-proxy").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("through-the-proxy"),
        "ssh: {}\nproxy log:\n{}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.proxy_logs(),
        env.sshd.log()
    );
    let log = wait_count(&env.proxy_log(), "\"event\":\"accept\"", 1);
    assert!(log.contains("\"user\":\"alice\""), "{log}");

    // A node outside the role: refused with the reason, before any SSH.
    let (reply, _) = env.raw_tunnel(
        Some(&env.x509),
        "signet-ssh/1",
        &Env::preamble("db-1", &env.login),
    );
    assert!(
        reply.starts_with("signet-ssh/1 refused node_not_allowed:"),
        "{reply}"
    );
    println!("refused: {}", reply.trim());

    // No client certificate: refused with the reason.
    let (reply, _) = env.raw_tunnel(None, "signet-ssh/1", &Env::preamble("web-1", &env.login));
    assert!(
        reply.starts_with("signet-ssh/1 refused no_certificate:"),
        "{reply}"
    );

    // An open session, then the lock: the proxy closes it.
    let mut session = env.open_session(env.ssh("web-1", "echo ready; exec sleep 60"));
    let locked = Instant::now();
    env.ca
        .ok(&["lock", "--user", "alice", "--reason", "offboarded"]);
    let lock_command = locked.elapsed();
    let status = wait_exit(&mut session, Duration::from_secs(30), "the locked session");
    let delay = locked.elapsed();
    println!(
        "lock to session closed: {} ms ({} ms of it the signet-ca lock command)",
        delay.as_millis(),
        lock_command.as_millis()
    );
    assert!(!status.success());
    // The issue asks for 1 s; the bound here is generous for a loaded machine.
    assert!(delay < Duration::from_secs(5), "{delay:?}");
    let log = wait_count(&env.proxy_log(), "\"event\":\"cut\"", 1);
    assert!(log.contains("user_locked"), "{log}");

    // A new session is refused while locked, with the lock's reason.
    let out = env.ssh("web-1", "echo nope").output().unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("nope"));
    let (reply, _) = env.raw_tunnel(
        Some(&env.x509),
        "signet-ssh/1",
        &Env::preamble("web-1", &env.login),
    );
    assert!(
        reply.starts_with("signet-ssh/1 refused user_locked: user alice is locked: offboarded"),
        "{reply}"
    );
    // Unlocked, she is back.
    env.ca.ok(&["unlock", "--user", "alice"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = env.ssh("web-1", "echo back").output().unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("back") {
            break;
        }
        assert!(Instant::now() < deadline, "still refused after unlock");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_refusal_tells_its_reason() {
    let env = Env::start();
    let tunnel = |cert: Option<&std::path::Path>, node: &str, login: &str| {
        env.raw_tunnel(cert, "signet-ssh/1", &Env::preamble(node, login))
    };

    // The feed's decisions: one reply line with a stable code and words.
    for (node, login, expect) in [
        (
            "db-1",
            env.login.as_str(),
            "node_not_allowed: none of your roles allows the node db-1",
        ),
        (
            "web-1",
            OUTSIDE_LOGIN,
            "login_not_allowed: none of your roles allows the login \"mallory\" on web-1",
        ),
        (
            "nowhere-1",
            env.login.as_str(),
            "unknown_node: no node named \"nowhere-1\"",
        ),
    ] {
        let (reply, _) = tunnel(Some(&env.x509), node, login);
        assert_eq!(reply, format!("signet-ssh/1 refused {expect}\n"));
    }
    let (reply, _) = tunnel(None, "web-1", &env.login);
    assert!(
        reply.starts_with(
            "signet-ssh/1 refused no_certificate: a client certificate from the CA is required"
        ),
        "{reply}"
    );

    // Certificates the TLS handshake rejects (the short one made sure
    // to be past its end): the alert is the reason,
    // the proxy logs the detail; no reply line, no tunnel.
    let expired_at = not_after(&env.expired_x509);
    while unix_now() <= expired_at {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (reply, err) = tunnel(Some(&env.foreign_x509), "web-1", &env.login);
    assert_eq!(reply, "", "{err}");
    assert!(err.contains("unknown ca"), "{err}");
    let (reply, err) = tunnel(Some(&env.expired_x509), "web-1", &env.login);
    assert_eq!(reply, "", "{err}");
    assert!(err.contains("certificate expired"), "{err}");
    let log = wait_count(&env.proxy_log(), "\"code\":\"tls\"", 2);
    assert!(log.contains("UnknownIssuer"), "{log}");
    assert!(log.contains("xpired"), "{log}");

    // And through real ssh: each of these fails, never reaching sshd.
    let accepted = count_in(&env.proxy_log(), "\"event\":\"accept\"");
    for cert in [&env.foreign_x509, &env.expired_x509] {
        let out = env
            .ssh_with_cert(cert, "web-1", "echo nope")
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(!String::from_utf8_lossy(&out.stdout).contains("nope"));
    }
    let out = env.ssh("db-1", "echo nope").output().unwrap();
    assert!(!out.status.success());
    assert_eq!(count_in(&env.proxy_log(), "\"event\":\"accept\""), accepted);

    // A locked user (bob, on the same key): refused with the lock's reason,
    // while alice is not.
    env.ca
        .ok(&["lock", "--user", "bob", "--reason", "on leave"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (reply, _) = tunnel(Some(&env.bob_x509), "web-1", &env.login);
        if reply == "signet-ssh/1 refused user_locked: user bob is locked: on leave\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bob not refused as locked: {reply}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = env.ssh("web-1", "echo alice-still-in").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("alice-still-in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every refusal is a structured event with its code.
    let log = std::fs::read_to_string(env.proxy_log()).unwrap();
    for code in [
        "node_not_allowed",
        "login_not_allowed",
        "unknown_node",
        "no_certificate",
        "user_locked",
    ] {
        assert!(
            log.contains(&format!("\"code\":\"{code}\"")),
            "no refusal event {code}:\n{log}"
        );
    }
}
