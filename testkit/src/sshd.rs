//! A throw-away OpenSSH server on a loopback port.
//!
//! sshd runs in the foreground (`-D`) as a child of the test, under
//! `setpriv --pdeathsig KILL` (see [`crate::child`]): it is killed and
//! reaped when the fixture is dropped, and killed by the kernel if the test
//! process dies first. A start attempt that fails (the port was taken in
//! the meantime) is killed and reaped before the next one, so no attempt
//! leaves a daemon behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::{spawn_tied, Daemon};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `sshd` with its own host key, configuration and log; stopped on drop.
pub struct Sshd {
    // Field order is drop order: the daemon stops before its directory goes.
    daemon: Daemon,
    dir: tempfile::TempDir,
    port: u16,
}

enum Attempt {
    Up(Daemon),
    PortTaken,
}

/// The first keyword of each configuration line (lower case), up to the
/// first `Match` block.
fn keywords(config: &str) -> Vec<String> {
    config
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.split(|c: char| c.is_whitespace() || c == '=')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .take_while(|keyword| keyword != "match")
        .collect()
}

/// `extra` after the defaults it does not set itself: sshd takes the first
/// value of a keyword, so a default left in would win over the test's own.
fn compose_config(defaults: &str, extra: &str) -> String {
    let overridden = keywords(extra);
    let mut config: String = defaults
        .lines()
        .filter(|line| {
            keywords(line)
                .first()
                .is_none_or(|keyword| !overridden.contains(keyword))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    config.push_str(extra);
    config.push('\n');
    config
}

impl Sshd {
    /// Starts `/usr/sbin/sshd` on 127.0.0.1 with `extra_config` added to a
    /// minimal configuration (no PAM, no passwords, no authorized_keys,
    /// root may log in): a keyword `extra_config` sets (before any `Match`)
    /// replaces the default. `host_key` is a private key file to use;
    /// `None` makes a fresh Ed25519 one (`dir()/host_ed25519`).
    pub fn start(extra_config: &str, host_key: Option<&Path>) -> Self {
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::Builder::new()
            .prefix("signet-sshd-")
            .tempdir()
            .unwrap();
        let host_key = match host_key {
            Some(path) => path.to_path_buf(),
            None => {
                let path = dir.path().join("host_ed25519");
                let status = Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(&path)
                    .status()
                    .unwrap();
                assert!(status.success(), "ssh-keygen for the host key failed");
                path
            }
        };
        for attempt in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            let pid_file = dir.path().join("sshd.pid");
            let defaults = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 StrictModes no\nPermitRootLogin yes\nAuthorizedKeysFile none\nLogLevel VERBOSE\n",
                host_key.display(),
                pid_file.display()
            );
            std::fs::write(&config, compose_config(&defaults, extra_config)).unwrap();
            let log = dir.path().join("sshd.log");
            // A fresh log per attempt: readiness is read from it.
            let _ = std::fs::remove_file(&log);
            match Self::attempt(&config, &log, port) {
                Attempt::Up(daemon) => return Self { daemon, dir, port },
                Attempt::PortTaken => {
                    eprintln!("sshd could not listen on port {port} (attempt {attempt}); retrying")
                }
            }
        }
        panic!("sshd would not start on a free port in 5 attempts");
    }

    /// One start: sshd in the foreground, up when its log says it listens.
    /// A daemon that does not come up is killed and reaped here (dropped).
    fn attempt(config: &Path, log: &Path, port: u16) -> Attempt {
        // sshd's stderr goes to its log as well: that is where the
        // helpers it runs (AuthorizedPrincipalsCommand, …) write why they
        // refused, as they do into journald in production.
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = spawn_tied(
            "/usr/sbin/sshd",
            &[
                "-D".as_ref(),
                "-f".as_ref(),
                config.as_os_str(),
                "-E".as_ref(),
                log.as_os_str(),
            ],
            |command| {
                command.stdin(Stdio::null()).stderr(stderr);
            },
        )
        .expect("starting /usr/sbin/sshd (openssh-server) under setpriv (util-linux)");
        let mut daemon = Daemon::new(child);
        let listening = format!("Server listening on 127.0.0.1 port {port}.");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(status) = daemon.exited() {
                if text.contains("Address already in use")
                    || text.contains("Cannot bind any address")
                {
                    return Attempt::PortTaken;
                }
                panic!("sshd exited ({status}) at start-up:\n{text}");
            }
            if text.contains(&listening) {
                return Attempt::Up(daemon);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        panic!("sshd did not listen on port {port} within 10 s:\n{text}");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.daemon.id()
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// A scratch directory for the test (client keys, known_hosts…).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_own_keywords_replace_the_defaults() {
        let config = compose_config(
            "Port 1\nAuthorizedKeysFile none\nPermitRootLogin yes\n",
            "authorizedkeysfile /tmp/keys\nPermitRootLogin=prohibit-password\nMatch User x\n  Port 2",
        );
        assert_eq!(
            config,
            "Port 1\nauthorizedkeysfile /tmp/keys\nPermitRootLogin=prohibit-password\nMatch User x\n  Port 2\n"
        );
    }
}
