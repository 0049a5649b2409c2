#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Test daemons never outlive their test: stopped on drop, and killed by the
//! kernel when the test process dies without dropping them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use signet_testkit::Sshd;

const HELPER_ENV: &str = "SIGNET_TESTKIT_DAEMON_HELPER";

/// Whether `pid` is a live process (a zombie waiting for its reaper is not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Waits up to 10 s for `pid` to be gone.
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn sshd_listens_and_is_stopped_and_reaped_on_drop() {
    let sshd = Sshd::start("", None);
    let pid = sshd.pid();
    let port = sshd.port();
    assert!(alive(pid));
    std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The foreground daemon is our child, not a daemonised grandchild.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: u32 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, std::process::id());
    drop(sshd);
    // Reaped by the drop: no process, not even a zombie.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// Run by the test below in a process of its own, which it then kills.
#[test]
#[ignore = "helper: started by a_killed_test_takes_its_sshd_with_it"]
fn helper_start_sshd_and_wait_to_be_killed() {
    assert!(
        std::env::var_os(HELPER_ENV).is_some(),
        "run only as a helper"
    );
    let sshd = Sshd::start("", None);
    println!("SSHD_PID={}", sshd.pid());
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_killed_test_takes_its_sshd_with_it() {
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_start_sshd_and_wait_to_be_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = helper.stdout.take().unwrap();
    let pid: u32 = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest prints the test's name before the helper's own output.
        .find_map(|line| {
            line.split_once("SSHD_PID=")
                .map(|(_, p)| p.trim().parse().unwrap())
        })
        .expect("the helper reports its sshd");
    assert!(alive(pid));
    // SIGKILL: no destructor runs in the helper.
    helper.kill().unwrap();
    helper.wait().unwrap();
    assert!(
        gone(pid),
        "sshd {pid} outlived the test process that started it"
    );
}
