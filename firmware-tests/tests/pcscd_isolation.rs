#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The private pcscd: served from a mount namespace or, where none can be
//! made, socket-activated at a private path; refused with one clear line
//! where neither is safe; and never left running by a test that dies.
//! Each test sets variables of its own process (nextest: one per process).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use signet_firmware_tests::harness::{
    isolation, other_pcscd, DeviceLock, Isolation, Pcscd, VirtualKeyOptions, VirtualYubiKey,
    ISOLATION_ENV,
};

const HELPER_ENV: &str = "SIGNET_PCSCD_DEATH_HELPER";

#[test]
fn socket_activated_pcscd_serves_the_card_and_leaves_run_pcscd_alone() {
    std::env::set_var(ISOLATION_ENV, "socket");
    if let Some(other) = other_pcscd() {
        // Not safe here: the harness must say so in one line.
        let err = isolation().unwrap_err().to_string();
        assert!(
            err.contains("another pcscd") && !err.contains('\n'),
            "{other}: {err}"
        );
        return;
    }
    assert_eq!(isolation().unwrap(), Isolation::SocketActivation);
    let key = VirtualYubiKey::start(VirtualKeyOptions::default()).unwrap();
    assert_eq!(key.pcscd().isolation(), Isolation::SocketActivation);
    // The card answers through the private socket.
    let yk = yubikey::YubiKey::open_by_serial(yubikey::Serial(key.serial())).unwrap();
    assert_eq!(yk.serial().0, key.serial());
    // The shared socket path was never used.
    assert!(!std::path::Path::new("/run/pcscd/pcscd.comm").exists());
    drop(yk);
    drop(key);
    // pcscd removed its pid file on the way out.
    assert!(other_pcscd().is_none());
}

#[test]
fn no_safe_pcscd_is_one_clear_line() {
    std::env::set_var(ISOLATION_ENV, "socket");
    // Another pcscd at the shared path: stand in for it while no device
    // test can start one (the device lock), unless a real one is there.
    let _lock = DeviceLock::acquire().unwrap();
    let stand_in = if other_pcscd().is_none() {
        std::fs::create_dir_all("/run/pcscd").unwrap();
        let _ = std::fs::remove_file("/run/pcscd/pcscd.comm");
        Some(std::os::unix::net::UnixListener::bind("/run/pcscd/pcscd.comm").unwrap())
    } else {
        None
    };
    let err = isolation().unwrap_err().to_string();
    if stand_in.is_some() {
        let _ = std::fs::remove_file("/run/pcscd/pcscd.comm");
    }
    assert!(
        err.contains("the device tests need a pcscd of their own")
            && err.contains("another pcscd is running"),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
    // Pcscd::start answers the same line instead of starting anything.
    drop(stand_in);
    let started = Pcscd::start().unwrap_err().to_string();
    assert_eq!(started, err);
}

/// Whether `pid` is a live process (a zombie waiting for its reaper is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// Live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .filter(|pid| alive(*pid))
        .collect()
}

#[test]
#[ignore = "helper: started by a_killed_test_takes_its_pcscd_with_it"]
fn helper_start_pcscd_and_wait_to_be_killed() {
    assert!(
        std::env::var_os(HELPER_ENV).is_some(),
        "run only as a helper"
    );
    let pcscd = Pcscd::start().unwrap();
    println!("PCSCD_DIR={}", pcscd.dir().display());
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_killed_test_takes_its_pcscd_with_it() {
    // The helper's pcscd is a device-test pcscd: take our turn for it.
    let _lock = DeviceLock::acquire().unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_start_pcscd_and_wait_to_be_killed",
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
    let dir = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest prints the test's name before the helper's own output.
        .find_map(|line| {
            line.split_once("PCSCD_DIR=")
                .map(|(_, d)| d.trim().to_owned())
        })
        .expect("the helper reports its pcscd");
    let started = processes_mentioning(&dir);
    // The watchdog shell and pcscd itself.
    assert!(started.len() >= 2, "{started:?}");
    helper.kill().unwrap();
    helper.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !processes_mentioning(&dir).is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        processes_mentioning(&dir),
        Vec::<u32>::new(),
        "pcscd outlived the test process that started it"
    );
}
