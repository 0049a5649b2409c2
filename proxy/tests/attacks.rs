//! Hostile clients against the real proxy: wrong or missing ALPN, garbage
//! and oversized preambles, bytes trickled (slowloris) before and after
//! the TLS handshake, connections that say nothing (half-open), plain
//! text where TLS is expected, and more than 32 connections from one
//! source. Each is closed cleanly within the proxy's timeouts, and the
//! proxy still serves a real ssh session afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{wait_count, wait_exit, Env};

/// The proxy's bounds here (the configured handshake_timeout,
/// serve::PREAMBLE_TIMEOUT) are 10 s; a closed connection must come within
/// this.
const CLOSED_WITHIN: Duration = Duration::from_secs(20);

/// Reads until the proxy closes the connection; returns what it sent and
/// how long that took. Panics if it stays open past [`CLOSED_WITHIN`].
fn until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(CLOSED_WITHIN)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
        }
    }
    (got, started.elapsed())
}

fn connect(env: &Env) -> TcpStream {
    TcpStream::connect(("127.0.0.1", env.proxy_port)).unwrap()
}

/// `openssl s_client` with alice's certificate and ALPN signet-ssh/1,
/// its stdin fed by `feed` (which may sleep between writes); returns the
/// reply and how long until the proxy closed.
fn tls_client(
    env: &Env,
    feed: impl FnOnce(&mut std::process::ChildStdin) + Send + 'static,
) -> (String, Duration) {
    let started = Instant::now();
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-no_ign_eof",
            "-nocommands",
            "-alpn",
            "signet-ssh/1",
            "-cert",
        ])
        .arg(&env.x509)
        .arg("-key")
        .arg(&env.key)
        .arg("-connect")
        .arg(format!("127.0.0.1:{}", env.proxy_port))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        feed(&mut stdin);
        // Held open: the proxy, not the client's EOF, must end it.
        std::thread::sleep(CLOSED_WITHIN + Duration::from_secs(5));
        drop(stdin);
    });
    wait_exit(&mut client, CLOSED_WITHIN, "a hostile TLS client");
    let elapsed = started.elapsed();
    drop(feeder);
    let mut out = String::new();
    client
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (out, elapsed)
}

fn assert_ssh_works(env: &Env, what: &str) {
    let out = env.ssh("web-1", "echo still-serving").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("still-serving"),
        "after {what}: {}\nproxy log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.proxy_logs()
    );
}

#[test]
fn hostile_clients_are_closed_cleanly_within_the_timeouts() {
    let env = Env::start();
    let login = env.login.clone();

    // ALPN: an unknown protocol fails the handshake; a preamble without
    // ALPN is not a tunnel (no ALPN is the web side, which answers HTTP),
    // never an open tunnel.
    let (reply, err) = env.raw_tunnel(Some(&env.x509), "bogus/9", &Env::preamble("web-1", &login));
    assert_eq!(reply, "");
    assert!(err.contains("no application protocol"), "{err}");
    let (reply, _) = env.raw_tunnel(Some(&env.x509), "", &Env::preamble("web-1", &login));
    assert!(!reply.contains("signet-ssh/1"), "{reply}");
    assert!(!std::fs::read_to_string(env.proxy_log())
        .unwrap()
        .contains("\"event\":\"accept\""));

    // Preambles: garbage and oversized lines are refused with the reason.
    for (line, expect) in [
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "bad_preamble: malformed preamble",
        ),
        (
            b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec(),
            "bad_preamble: malformed preamble",
        ),
        (
            b"signet-ssh/2 node=web-1 login=x\n".to_vec(),
            "bad_preamble: unsupported preamble version",
        ),
        (
            b"signet-ssh/1 node=web-1\0 login=x\n".to_vec(),
            "bad_preamble: malformed preamble: not printable ASCII",
        ),
        (
            b"signet-ssh/1 node=../../etc login=x\n".to_vec(),
            "bad_preamble: malformed preamble: node:",
        ),
        (
            vec![b'a'; 1 << 20],
            "bad_preamble: the preamble is longer than 256 bytes",
        ),
        (
            format!("signet-ssh/1 node={} login=x\n", "a".repeat(300)).into_bytes(),
            "bad_preamble: the preamble is longer than 256 bytes",
        ),
        ((0..=255u8).cycle().take(4096).collect(), "bad_preamble:"),
    ] {
        let (reply, err) = env.raw_tunnel(Some(&env.x509), "signet-ssh/1", &line);
        assert!(
            reply.starts_with(&format!("signet-ssh/1 refused {expect}")),
            "{:?}: {reply:?} {err}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        );
        assert_eq!(reply.lines().count(), 1, "{reply:?}");
    }

    // Half-open after the handshake: nothing sent, refused at the
    // preamble's deadline.
    let (reply, took) = tls_client(&env, |_| {});
    println!("silent TLS client closed after {} ms", took.as_millis());
    assert_eq!(
        reply,
        "signet-ssh/1 refused preamble_timeout: no preamble in time\n"
    );
    assert!(took >= Duration::from_secs(9), "{took:?}");

    // Slowloris after the handshake: a byte every 300 ms never buys more
    // than the preamble's deadline.
    let line = Env::preamble("web-1", &login);
    let (reply, took) = tls_client(&env, move |stdin| {
        for b in line {
            if stdin.write_all(&[b]).and_then(|()| stdin.flush()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    println!("trickled preamble closed after {} ms", took.as_millis());
    assert_eq!(
        reply,
        "signet-ssh/1 refused preamble_timeout: no preamble in time\n"
    );

    // Below TLS: a silent connection, one trickling bytes, plain text.
    let opened = Instant::now();
    let mut silent = connect(&env);
    let mut trickle = connect(&env);
    let trickler = {
        let mut stream = trickle.try_clone().unwrap();
        std::thread::spawn(move || {
            // A TLS record header and then one byte at a time.
            for b in [0x16u8, 0x03, 0x01, 0x40, 0x00]
                .into_iter()
                .chain(std::iter::repeat(0x01))
            {
                if stream.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let (got, _) = until_closed(&mut silent);
    println!(
        "silent TCP connection closed after {} ms",
        opened.elapsed().as_millis()
    );
    assert!(got.is_empty());
    let (got, _) = until_closed(&mut trickle);
    println!(
        "trickled handshake closed after {} ms",
        opened.elapsed().as_millis()
    );
    assert!(got.is_empty(), "{got:?}");
    trickler.join().unwrap();
    let mut plain = connect(&env);
    plain.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n").unwrap();
    let (_, took) = until_closed(&mut plain);
    assert!(took < Duration::from_secs(5), "plain text held {took:?}");
    wait_count(&env.proxy_log(), "\"code\":\"tls_timeout\"", 2);

    assert_ssh_works(&env, "the hostile clients");
}

#[test]
fn one_source_holds_at_most_32_connections() {
    let env = Env::start();
    // 32 connections that say nothing hold every slot of 127.0.0.1.
    let held: Vec<TcpStream> = (0..32).map(|_| connect(&env)).collect();
    std::thread::sleep(Duration::from_millis(300));
    // The 33rd is closed at once, long before any timeout.
    let mut extra = connect(&env);
    let (got, took) = until_closed(&mut extra);
    assert!(got.is_empty());
    assert!(took < Duration::from_secs(5), "the 33rd was held {took:?}");
    wait_count(&env.proxy_log(), "too_many_connections", 1);
    // So is ssh.
    let out = env.ssh("web-1", "echo nope").output().unwrap();
    assert!(!out.status.success());
    // Slots come back when connections end.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = env.ssh("web-1", "echo slots-back").output().unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("slots-back") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots not freed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Open tunnels count too: 32 live sessions, then the 33rd is refused.
    let sessions: Vec<_> = (0..32)
        .map(|_| env.open_session(env.ssh("web-1", "echo ready; exec sleep 60")))
        .collect();
    let out = env.ssh("web-1", "echo nope").output().unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("nope"));
    for mut s in sessions {
        let _ = s.kill();
        let _ = s.wait();
    }
}

/// CPU seconds the process has used (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[test]
fn out_of_descriptors_the_proxy_pauses_instead_of_spinning() {
    let env = Env::start();
    let pid = env.proxy_pid();
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    // A few descriptors to spare, then a flood that takes them all: every
    // further accept fails while connections wait in the backlog.
    let limit = open_fds + 8;
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let original = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .to_owned();
    let prlimit = |soft: &str| {
        common::run_ok(
            Command::new("prlimit")
                .arg("--pid")
                .arg(pid.to_string())
                .arg(format!("--nofile={soft}:")),
        )
    };
    prlimit(&limit.to_string());
    let flood: Vec<TcpStream> = (0..24).map(|_| connect(&env)).collect();
    wait_count(&env.proxy_log(), "\"event\":\"accept_failed\"", 1);
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_seconds(pid) - before;
    println!("proxy CPU while out of descriptors: {used:.2} s in 3 s");
    assert!(
        used < 1.0,
        "the accept loop spun: {used:.2} s of CPU in 3 s"
    );
    drop(flood);
    prlimit(&original);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = env.ssh("web-1", "echo recovered").output().unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("recovered") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not serving after the flood: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
