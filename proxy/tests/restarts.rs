//! Tunnels across restarts and time: the CA restarted under an open
//! session (the proxy keeps its view, reconnects, and a lock made after
//! the restart still cuts); the proxy restarted mid-session (the client's
//! ssh fails promptly, a new ssh works); a tunnel closes when its client
//! certificate expires.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{count_in, not_after, unix_now, wait_count, wait_exit, Env};

#[test]
fn a_ca_restart_keeps_sessions_and_locks_after_it_still_cut() {
    let mut env = Env::start();
    let mut session = env.open_session(env.ssh("web-1", "echo ready; exec sleep 120"));
    let views = count_in(&env.proxy_log(), "new view from the CA");

    env.stop_ca();
    wait_count(&env.proxy_log(), "CA feed interrupted", 1);
    // The proxy keeps the last view: the open session and new ones go on.
    let out = env
        .ssh("web-1", "echo while-the-ca-is-down")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("while-the-ca-is-down"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        session.try_wait().unwrap().is_none(),
        "the session ended with the CA"
    );

    env.start_ca();
    // Reconnected: a fresh snapshot.
    wait_count(&env.proxy_log(), "new view from the CA", views + 1);
    let locked = Instant::now();
    env.ca
        .ok(&["lock", "--user", "alice", "--reason", "after the restart"]);
    let status = wait_exit(&mut session, Duration::from_secs(30), "the locked session");
    println!(
        "after a CA restart, lock to session closed: {} ms",
        locked.elapsed().as_millis()
    );
    assert!(!status.success());
    let log = wait_count(&env.proxy_log(), "\"event\":\"cut\"", 1);
    assert!(log.contains("after the restart"), "{log}");
}

#[test]
fn a_proxy_restart_fails_the_session_cleanly_and_a_new_one_works() {
    let mut env = Env::start();
    let mut session = env.open_session(env.ssh("web-1", "echo ready; exec sleep 120"));
    let killed = Instant::now();
    env.stop_proxy();
    let status = wait_exit(
        &mut session,
        Duration::from_secs(10),
        "ssh after the proxy died",
    );
    println!(
        "proxy killed to client ssh exited: {} ms",
        killed.elapsed().as_millis()
    );
    assert_eq!(status.code(), Some(255), "ssh's connection error status");
    let out = session.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panic"), "{stderr}");

    // While it is down: ssh fails at once, it does not hang.
    let started = Instant::now();
    let out = env.ssh("web-1", "echo nope").output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(started.elapsed() < Duration::from_secs(10));

    env.start_proxy();
    let out = env.ssh("web-1", "echo after-the-restart").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("after-the-restart"),
        "{}\nproxy log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.proxy_logs()
    );
}

#[test]
fn a_tunnel_closes_when_its_certificate_expires() {
    let mut env = Env::start();
    // A short certificate, issued while the daemon is stopped (it holds
    // the store); the proxy carries on with its view meanwhile.
    env.stop_ca();
    let short = env.ca.issue_x509("alice", "user", "short", "15s");
    env.start_ca();
    let end = not_after(&short);
    let mut session =
        env.open_session(env.ssh_with_cert(&short, "web-1", "echo ready; exec sleep 120"));
    assert!(
        unix_now() < end,
        "the certificate ended before the session opened"
    );
    let status = wait_exit(
        &mut session,
        Duration::from_secs(40),
        "the session past its certificate",
    );
    let closed = unix_now();
    println!(
        "certificate end to session closed: {} s (notAfter {end}, closed {closed})",
        closed as i64 - end as i64
    );
    assert!(!status.success());
    assert!(closed >= end, "closed before the certificate's end");
    assert!(
        closed <= end + 5,
        "closed {} s after the certificate's end",
        closed - end
    );
    let log = wait_count(&env.proxy_log(), "\"event\":\"cut\"", 1);
    assert!(log.contains("certificate_expired"), "{log}");
    // The long certificate is unaffected.
    let out = env.ssh("web-1", "echo still-fine").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("still-fine"));
}
