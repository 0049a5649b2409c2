//! A throw-away OpenSSH server on a loopback port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
    dir: tempfile::TempDir,
    port: u16,
    pid: Option<u32>,
}

impl Sshd {
    /// Starts `/usr/sbin/sshd` on 127.0.0.1 with `extra_config` appended to a
    /// minimal configuration (no PAM, no passwords, no authorized_keys
    /// unless `extra_config` says otherwise). `host_key` is a private key
    /// file to use; `None` makes a fresh Ed25519 one.
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
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                     StrictModes no\nPermitRootLogin yes\nAuthorizedKeysFile none\nLogLevel VERBOSE\n{extra_config}\n",
                    host_key.display(),
                    pid_file.display()
                ),
            )
            .unwrap();
            let log = dir.path().join("sshd.log");
            let status = Command::new("/usr/sbin/sshd")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .status()
                .unwrap();
            assert!(status.success(), "sshd refused its configuration");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(pid) = std::fs::read_to_string(&pid_file) {
                    if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                        return Self {
                            dir,
                            port,
                            pid: pid.trim().parse().ok(),
                        };
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("sshd did not come up on port {port} (attempt {attempt})");
        }
        panic!("sshd would not start");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
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

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}
