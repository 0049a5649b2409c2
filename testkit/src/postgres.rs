//! A throw-away PostgreSQL server on a loopback port (Debian `postgresql`).
//!
//! `initdb` makes a cluster in a temporary directory; `postgres` runs in the
//! foreground as a child of the test under `setpriv --pdeathsig KILL`, so it
//! is killed when the fixture is dropped and by the kernel if the test
//! process dies first. It never touches the system instance: its own data
//! directory, its own port on 127.0.0.1, its Unix socket in its own
//! directory.
//!
//! PostgreSQL refuses to run as root. When the tests run as root, the
//! cluster belongs to the `postgres` system user (made by the Debian
//! package) and both `initdb` and the server run as that user: setpriv
//! changes the ids first and only then sets the parent-death signal (a
//! change of credentials clears it), so the server stays tied to the test.
//!
//! Connections over TCP need a password (SCRAM): the superuser `signet`'s
//! password is in [`Postgres::password_file`], as the CA's `password_file`
//! would hold it. The fixture's own administration (`createdb`) goes
//! through the Unix socket, which trusts local users.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::{spawn_tied, Daemon};
use crate::sshd::free_port;

/// Where Debian 12's `postgresql` package puts the server binaries.
const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The environment variable naming another PostgreSQL bin directory.
pub const BIN_ENV: &str = "SIGNET_TEST_POSTGRES_BIN";

/// The superuser the fixture creates.
pub const SUPERUSER: &str = "signet";

const SETPRIV: &str = "/usr/bin/setpriv";

/// The server's TLS certificate and key (PEM), for a cluster that accepts
/// only TLS connections over TCP.
#[derive(Clone)]
pub struct ServerTls {
    /// The certificate chain, leaf first.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

/// A running PostgreSQL cluster; stopped and removed on drop.
pub struct Postgres {
    // Field order is drop order: the server stops before its directory goes.
    daemon: Option<Daemon>,
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    /// `Some((uid, gid))` when the server runs as the `postgres` user.
    run_as: Option<(u32, u32)>,
    databases: u32,
}

/// The bin directory: [`BIN_ENV`], or Debian 12's.
pub fn postgres_bin() -> PathBuf {
    std::env::var_os(BIN_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN))
}

/// Whether a PostgreSQL server can be started here (the binaries exist).
pub fn postgres_available() -> bool {
    postgres_bin().join("postgres").exists()
}

fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file this process just made is its effective uid.
    let probe = tempfile::NamedTempFile::new().expect("a temporary file");
    probe.as_file().metadata().expect("its metadata").uid()
}

/// The `postgres` system user's ids, from /etc/passwd.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres") && fields.len() > 3)
                .then(|| (fields[2].parse().ok(), fields[3].parse().ok()))
                .and_then(|(u, g)| Some((u?, g?)))
        })
        .expect(
            "tests run as root and there is no `postgres` user: install Debian's postgresql package",
        )
}

impl Postgres {
    /// Starts a fresh cluster accepting plain and TLS-less connections on
    /// 127.0.0.1 (password required).
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a fresh cluster that accepts TCP connections only over TLS
    /// with this certificate (password still required).
    pub fn start_tls(tls: ServerTls) -> Self {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<ServerTls>) -> Self {
        let bin = postgres_bin();
        assert!(
            bin.join("postgres").exists(),
            "{} has no postgres: install Debian's postgresql package (or set {BIN_ENV})",
            bin.display()
        );
        let run_as = (effective_uid() == 0).then(postgres_user);
        let dir = tempfile::Builder::new()
            .prefix("signet-postgres-")
            .tempdir()
            .unwrap();
        let own = |path: &Path| {
            if let Some((uid, gid)) = run_as {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
            }
        };
        own(dir.path());
        let password: String = {
            use rand::RngExt;
            let mut rng = rand::rng();
            (0..24)
                .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                .collect()
        };
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        own(&password_file);
        let data = dir.path().join("data");
        let mut initdb = Self::command_as(run_as, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            .arg(format!("--pwfile={}", password_file.display()))
            .stdin(Stdio::null());
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = on\nmax_connections = 100\nlog_min_messages = warning\n",
            dir.path().display()
        );
        if let Some(tls) = &tls {
            let (cert, key) = (data.join("server.crt"), data.join("server.key"));
            std::fs::write(&cert, &tls.cert_pem).unwrap();
            std::fs::write(&key, &tls.key_pem).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            own(&cert);
            own(&key);
            config
                .push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256\n\
                 hostnossl all all 127.0.0.1/32 reject\n",
            )
            .unwrap();
        }
        std::fs::write(data.join("postgresql.auto.conf"), &config).unwrap();
        own(&data.join("postgresql.auto.conf"));
        own(&data.join("pg_hba.conf"));
        let mut pg = Self {
            daemon: None,
            dir,
            port: 0,
            bin,
            run_as,
            databases: 0,
        };
        for attempt in 0..5 {
            pg.port = free_port();
            if pg.try_start() {
                return pg;
            }
            eprintln!(
                "postgres could not listen on port {} (attempt {attempt}); retrying",
                pg.port
            );
        }
        panic!("postgres would not start on a free port in 5 attempts");
    }

    /// `program` run as the cluster's owner (through setpriv when root).
    fn command_as(run_as: Option<(u32, u32)>, program: &Path) -> Command {
        match run_as {
            Some((uid, gid)) => {
                let mut command = Command::new(SETPRIV);
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--"])
                    .arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// One start on `self.port`: up when it accepts connections, `false`
    /// if the port was taken (the child is killed and reaped then).
    fn try_start(&mut self) -> bool {
        let log = self.log_path();
        let _ = std::fs::remove_file(&log);
        let stderr = std::fs::File::create(&log).unwrap();
        let postgres = self.bin.join("postgres");
        let data = self.dir.path().join("data");
        let port = self.port.to_string();
        let server_args: Vec<&std::ffi::OsStr> = vec![
            "-D".as_ref(),
            data.as_os_str(),
            "-p".as_ref(),
            port.as_ref(),
        ];
        let child = match self.run_as {
            // setpriv changes the ids, then sets the parent-death signal
            // (set before, the change of credentials would clear it).
            Some((uid, gid)) => {
                let (uid, gid) = (format!("--reuid={uid}"), format!("--regid={gid}"));
                let mut args: Vec<&std::ffi::OsStr> = vec![
                    uid.as_ref(),
                    gid.as_ref(),
                    "--clear-groups".as_ref(),
                    "--pdeathsig".as_ref(),
                    "KILL".as_ref(),
                    "--".as_ref(),
                    postgres.as_os_str(),
                ];
                args.extend(server_args);
                spawn_tied(SETPRIV, &args, |command| {
                    command
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(stderr);
                })
            }
            None => spawn_tied(postgres.to_str().unwrap(), &server_args, |command| {
                command
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(stderr);
            }),
        }
        .expect("start postgres under setpriv (util-linux)");
        let mut daemon = Daemon::new(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(status) = daemon.exited() {
                if text.contains("Address already in use") || text.contains("could not bind") {
                    return false;
                }
                panic!("postgres exited ({status}) at start-up:\n{text}");
            }
            if text.contains("ready to accept connections") {
                self.daemon = Some(daemon);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "postgres did not accept connections on port {} within 30 s:\n{}",
            self.port,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server (fast shutdown: clients are disconnected), as an
    /// operator restarting the database would. [`Postgres::restart`] starts
    /// it again on the same port with the same data.
    pub fn stop(&mut self) {
        let Some(mut daemon) = self.daemon.take() else {
            return;
        };
        let out = Self::command_as(self.run_as, &self.bin.join("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w"])
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while daemon.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a stopped server again (same port, same data).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.try_start(),
            "postgres could not listen on its port {} again",
            self.port
        );
    }

    /// Makes a new, empty database and returns its name.
    pub fn create_database(&mut self) -> String {
        self.databases += 1;
        let name = format!("signet_test_{}", self.databases);
        let out = Command::new(self.bin.join("createdb"))
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", SUPERUSER, &name])
            .stdin(Stdio::null())
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        name
    }

    /// Runs SQL as the superuser through the Unix socket (`psql`), as an
    /// attacker with access to the database would; returns its output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                database,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a SQL script (many statements, e.g. a dump) as the superuser.
    pub fn psql_script(&self, database: &str, script: &str) {
        use std::io::Write;
        let mut child = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                database,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "psql script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_dump` of `database` (plain SQL); `data_only` leaves out the
    /// schema, as a backup restored into existing tables.
    pub fn dump(&self, database: &str, data_only: bool) -> String {
        let mut command = Command::new(self.bin.join("pg_dump"));
        command.arg("-h").arg(self.dir.path()).args([
            "-p",
            &self.port.to_string(),
            "-U",
            SUPERUSER,
            "-d",
            database,
        ]);
        if data_only {
            command.arg("--data-only");
        }
        let out = command.stdin(Stdio::null()).output().expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A new database holding a copy of `database` (schema and data).
    pub fn clone_database(&mut self, database: &str) -> String {
        let dump = self.dump(database, false);
        let copy = self.create_database();
        self.psql_script(&copy, &dump);
        copy
    }

    /// A connection URL for `database` (no password: that is in
    /// [`Postgres::password_file`]).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The file holding the superuser's password (one line).
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("password")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Daemon::id)
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_makes_databases_restarts_and_dies_with_its_fixture() {
        if !postgres_available() {
            panic!("install Debian's postgresql package to run this test");
        }
        let mut pg = Postgres::start();
        let db = pg.create_database();
        pg.psql(&db, "CREATE TABLE t (x int); INSERT INTO t VALUES (41)");
        assert_eq!(pg.psql(&db, "SELECT x + 1 FROM t").trim(), "42");
        let other = pg.create_database();
        assert_ne!(db, other);
        assert_eq!(
            pg.psql(
                &other,
                "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
            )
            .trim(),
            "0"
        );
        // Never the system instance: its own port and data directory.
        assert_ne!(pg.port(), 5432);
        let pid = pg.pid().unwrap();
        pg.restart();
        assert_eq!(pg.psql(&db, "SELECT x FROM t").trim(), "41", "{}", pg.log());
        assert_ne!(pg.pid(), Some(pid));
        let pid = pg.pid().unwrap();
        drop(pg);
        let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains("State:\tZ"),
            "postgres outlived its fixture: {state}"
        );
    }
}
