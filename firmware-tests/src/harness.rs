//! Test harness: a private `pcscd` with a vpcd reader named like a YubiKey,
//! and a virtual card plugged into it.
//!
//! Isolation. Debian's pcscd 1.9.9 ignores `PCSCLITE_CSOCK_NAME` for its own
//! socket (only libpcsclite clients honour it) and always uses
//! `/run/pcscd/pcscd.comm`. The harness therefore starts pcscd in a private
//! mount namespace (`unshare --mount`, plus `--map-root-user` when not root)
//! where a per-process directory is bind-mounted over `/run/pcscd`; clients
//! — this process, the `yubikey` crate, ykcs11, yubico-piv-tool, opensc —
//! reach it through `PCSCLITE_CSOCK_NAME=<dir>/pcscd.comm`. The system pcscd
//! and other test runs are neither seen nor disturbed. The vpcd driver
//! listens on a free TCP port pair chosen per run.
//!
//! Where no mount namespace can be made (a container or chroot without
//! `CAP_SYS_ADMIN` or user namespaces), the harness falls back to systemd
//! socket activation, which Debian's pcscd supports: a small Perl program
//! (perl-base is always installed) binds the listening socket at the same
//! private path and execs pcscd with it as fd 3 (`LISTEN_FDS=1`), so the
//! socket is still private. pcscd then still writes and, on exit, removes
//! `/run/pcscd/pcscd.pid`, so this is only done when no other pcscd is
//! running; otherwise every device test fails with one line saying what the
//! machine lacks. Device tests are never skipped for this. See
//! [`isolation`] and [`ISOLATION_ENV`].
//!
//! Everything is stopped on `Drop` (also when a test panics). pcscd runs in
//! the foreground under a watchdog shell that stops it on `Drop` and when
//! this test process disappears without running `Drop`, and pcscd itself
//! runs under `setpriv --pdeathsig TERM`, so it also stops if the shell is
//! killed. Tests that use a device take turns through a cross-process file
//! lock ([`DeviceLock`]), because nextest runs each test in its own process.

use crate::applet::Applet;
use crate::attest::AttestationRoot;
use crate::card::{build_card, VirtualCard};
use crate::fido::FidoControl;
use crate::state::{CardState, DeviceInfo};
use crate::touch::TouchControl;
use crate::vpcd::RunningCard;
use crate::{Error, Result};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The reader name ykcs11 (needs a "Yubico" prefix) and yubico-piv-tool
/// (matches "Yubikey") accept; pcscd appends " 00 00".
pub const READER_NAME: &str = "Yubico YubiKey OTP+FIDO+CCID";

/// The vpcd driver shipped by Debian's `vsmartcard-vpcd`.
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

/// The environment variable libpcsclite clients read for the socket path.
pub const SOCKET_ENV: &str = "PCSCLITE_CSOCK_NAME";

/// Set to `1` to run pcscd with `--debug --apdu` (logs PINs: tests only).
pub const DEBUG_ENV: &str = "SIGNET_PCSCD_DEBUG";

fn harness_err(msg: impl Into<String>) -> Error {
    Error::Harness(msg.into())
}

/// Exclusive use of "the device" across processes and threads.
#[derive(Debug)]
pub struct DeviceLock {
    _file: File,
}

impl DeviceLock {
    /// Blocks until no other test holds the lock.
    pub fn acquire() -> Result<Self> {
        let path = std::env::temp_dir().join("signet-device-tests.lock");
        // flock(2) works on a read-only descriptor too, so a lock file
        // created by another user (root in CI) can still be shared.
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path))
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        file.lock()
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(Self { _file: file })
    }
}

/// The directory bind-mounted over `/run/pcscd` for this process's pcscd.
pub fn socket_dir() -> PathBuf {
    std::env::temp_dir().join(format!("signet-pcsc-{}", std::process::id()))
}

/// The pcscd socket clients of this process use.
pub fn socket_path() -> PathBuf {
    socket_dir().join("pcscd.comm")
}

/// Points this process's libpcsclite at the private pcscd. libpcsclite reads
/// the variable once, so the path is fixed per process and reused by every
/// pcscd this process starts (one at a time).
pub fn use_private_pcscd() {
    static SET: OnceLock<()> = OnceLock::new();
    SET.get_or_init(|| {
        // Set once, before this process makes any PC/SC call.
        std::env::set_var(SOCKET_ENV, socket_path());
    });
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Finds a port `p` with `p + 1` also free (vpcd listens on both).
fn free_port_pair() -> Result<u16> {
    for _ in 0..50 {
        let a = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
            .map_err(|e| Error::io("finding a free port", e))?;
        let port = a
            .local_addr()
            .map_err(|e| Error::io("local addr", e))?
            .port();
        if port == u16::MAX {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::UNSPECIFIED, port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(harness_err("no free TCP port pair for vpcd"))
}

/// Set to `namespace` or `socket` to choose how the private pcscd is kept
/// apart ([`Isolation`]); unset, the harness uses a mount namespace where the
/// machine allows one and socket activation otherwise.
pub const ISOLATION_ENV: &str = "SIGNET_PCSCD_ISOLATION";

/// How the test's pcscd is kept apart from any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A private mount namespace with the socket directory bind-mounted over
    /// `/run/pcscd`: nothing outside is touched.
    MountNamespace,
    /// systemd socket activation with a private socket path; pcscd still
    /// writes `/run/pcscd/pcscd.pid`, so only when no other pcscd runs.
    SocketActivation,
}

/// Binds the listening socket named by the first argument, makes it fd 3
/// and execs the rest of the arguments with `LISTEN_FDS=1` and
/// `LISTEN_PID` = its own pid (exec keeps the pid), as systemd would.
const SOCKET_ACTIVATOR: &str = r#"use strict; use Socket; use POSIX (); use Fcntl;
my $path = shift @ARGV;
socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die "socket: $!\n";
unlink $path;
bind($s, pack_sockaddr_un($path)) or die "bind $path: $!\n";
listen($s, 64) or die "listen: $!\n";
if (fileno($s) != 3) { defined POSIX::dup2(fileno($s), 3) or die "dup2: $!\n"; }
else { fcntl($s, F_SETFD, 0) or die "fcntl: $!\n"; }
$ENV{LISTEN_FDS} = 1; $ENV{LISTEN_PID} = $$;
exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n";"#;

/// Whether a private mount namespace can be made here (asked once per
/// process); the error is what `unshare` said.
fn namespaces_work() -> std::result::Result<(), String> {
    let mut cmd = Command::new("unshare");
    if !is_root() {
        cmd.arg("--map-root-user");
    }
    let out = cmd
        .args(["--mount", "--propagation", "private", "true"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("unshare cannot run ({e}; package util-linux)"))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    Err(said
        .lines()
        .next()
        .unwrap_or("unshare failed")
        .trim()
        .to_owned())
}

/// Another pcscd on this machine, if any (`/run/pcscd/pcscd.pid` naming a live
/// process, or a socket that answers at `/run/pcscd/pcscd.comm`).
pub fn other_pcscd() -> Option<String> {
    if let Ok(pid) = std::fs::read_to_string("/run/pcscd/pcscd.pid") {
        let pid = pid.trim();
        if !pid.is_empty() && Path::new(&format!("/proc/{pid}")).exists() {
            return Some(format!("pid {pid} in /run/pcscd/pcscd.pid"));
        }
    }
    if std::os::unix::net::UnixStream::connect("/run/pcscd/pcscd.comm").is_ok() {
        return Some("one answers at /run/pcscd/pcscd.comm".into());
    }
    None
}

fn choose_isolation() -> std::result::Result<Isolation, String> {
    let forced = std::env::var(ISOLATION_ENV).ok();
    let namespaces = match forced.as_deref() {
        Some("socket") => Err("not asked for".to_owned()),
        Some("namespace") | None => namespaces_work(),
        Some(other) => {
            return Err(format!(
                "{ISOLATION_ENV}={other:?} is not one of \"namespace\", \"socket\""
            ))
        }
    };
    let unshare_said = match namespaces {
        Ok(()) => return Ok(Isolation::MountNamespace),
        Err(said) if forced.as_deref() == Some("namespace") => {
            return Err(format!(
                "{ISOLATION_ENV}=namespace, but no private mount namespace can be made here (unshare: {said})"
            ))
        }
        Err(said) => said,
    };
    if let Some(other) = other_pcscd() {
        return Err(format!(
            "the device tests need a pcscd of their own, and this machine can give none: \
             private mount namespaces are refused (unshare: {unshare_said}) and another pcscd \
             is running ({other}), which a second one would disturb; allow unshare (root with \
             CAP_SYS_ADMIN, or unprivileged user namespaces) or stop that pcscd"
        ));
    }
    if !Path::new("/usr/bin/perl").exists() {
        return Err(format!(
            "the device tests need a pcscd of their own: private mount namespaces are refused \
             (unshare: {unshare_said}) and the socket-activation fallback needs /usr/bin/perl (package perl-base)"
        ));
    }
    Ok(Isolation::SocketActivation)
}

/// How this process's pcscd is kept apart (decided once per process), or
/// one line saying what the machine lacks.
pub fn isolation() -> Result<Isolation> {
    static CHOSEN: OnceLock<std::result::Result<Isolation, String>> = OnceLock::new();
    CHOSEN
        .get_or_init(choose_isolation)
        .clone()
        .map_err(harness_err)
}

/// A private pcscd with one vpcd reader entry (two slots).
#[derive(Debug)]
pub struct Pcscd {
    child: Child,
    port: u16,
    conf: tempfile::TempDir,
    log: PathBuf,
    isolation: Isolation,
}

impl Pcscd {
    /// Starts pcscd (in its own mount namespace, or socket-activated where
    /// none can be made: see [`isolation`]) and waits for its socket.
    pub fn start() -> Result<Self> {
        if !Path::new(VPCD_DRIVER).exists() {
            return Err(harness_err(format!(
                "{VPCD_DRIVER} missing: install the Debian package vsmartcard-vpcd"
            )));
        }
        let isolation = isolation()?;
        use_private_pcscd();
        let port = free_port_pair()?;
        let conf = tempfile::Builder::new()
            .prefix("signet-pcscd-")
            .tempdir()
            .map_err(|e| Error::io("creating pcscd config dir", e))?;
        let readers = conf.path().join("reader.conf.d");
        std::fs::create_dir_all(&readers).map_err(|e| Error::io("creating reader.conf.d", e))?;
        let entry = format!(
            "FRIENDLYNAME \"{READER_NAME}\"\nDEVICENAME   /dev/null:0x{port:04X}\n\
             LIBPATH      {VPCD_DRIVER}\nCHANNELID    0x{port:04X}\n"
        );
        std::fs::write(readers.join("vpcd"), entry)
            .map_err(|e| Error::io("writing the vpcd reader entry", e))?;

        let run_dir = socket_dir();
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| Error::io(format!("creating {}", run_dir.display()), e))?;
        for stale in ["pcscd.comm", "pcscd.pid"] {
            let _ = std::fs::remove_file(run_dir.join(stale));
        }
        // The mount point must exist in the parent namespace; a
        // socket-activated pcscd writes its pid file there.
        if std::fs::create_dir_all("/run/pcscd").is_err() && !Path::new("/run/pcscd").is_dir() {
            return Err(harness_err(
                "/run/pcscd does not exist and cannot be created (run as root or create it)",
            ));
        }
        let log = conf.path().join("pcscd.log");
        let log_file = File::create(&log).map_err(|e| Error::io("creating pcscd log", e))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| Error::io("cloning pcscd log handle", e))?;
        let debug = std::env::var(DEBUG_ENV).is_ok_and(|v| v == "1");
        // The shell stays as pcscd's parent and watchdog: it stops pcscd on
        // SIGTERM (our Drop) and also when this test process disappears
        // without running Drop (killed by a test-runner timeout); pcscd gets
        // SIGTERM from the kernel if the shell itself is killed.
        let debug_flags = if debug { "--debug --apdu" } else { "" };
        let (prepare, launch) = match isolation {
            Isolation::MountNamespace => (
                "mount --bind \"$0\" /run/pcscd || exit 1",
                format!("setpriv --pdeathsig TERM pcscd --foreground {debug_flags} -c \"$1\""),
            ),
            Isolation::SocketActivation => (
                ":",
                format!(
                    "setpriv --pdeathsig TERM perl -e \"$3\" \"$0/pcscd.comm\" \
                     pcscd --foreground {debug_flags} -c \"$1\""
                ),
            ),
        };
        let script = format!(
            "{prepare}\n\
             {launch} & p=$!\n\
             trap 'kill $p 2>/dev/null; wait $p; exit 0' TERM INT\n\
             while kill -0 \"$2\" 2>/dev/null && kill -0 $p 2>/dev/null; do sleep 0.2; done\n\
             kill $p 2>/dev/null; wait $p"
        );
        let mut cmd = match isolation {
            Isolation::MountNamespace => {
                let mut cmd = Command::new("unshare");
                if !is_root() {
                    cmd.arg("--map-root-user");
                }
                cmd.args(["--mount", "--propagation", "private", "sh"]);
                cmd
            }
            Isolation::SocketActivation => Command::new("sh"),
        };
        cmd.args(["-c", &script])
            .arg(&run_dir)
            .arg(&readers)
            .arg(std::process::id().to_string())
            .arg(SOCKET_ACTIVATOR)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let child = cmd
            .spawn()
            .map_err(|e| Error::io("starting unshare/pcscd (util-linux, pcscd)", e))?;
        let mut pcscd = Self {
            child,
            port,
            conf,
            log,
            isolation,
        };
        pcscd.wait_for_socket()?;
        Ok(pcscd)
    }

    fn wait_for_socket(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let socket = socket_path();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(harness_err(format!(
                    "pcscd exited ({status}) during start-up: {}",
                    self.log_tail()
                )));
            }
            if socket.exists() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(harness_err(format!(
            "pcscd socket {} did not appear: {}",
            socket.display(),
            self.log_tail()
        )))
    }

    /// How this pcscd is kept apart from others.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The last lines of pcscd's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Where the vpcd driver waits for card `slot` (0 or 1).
    pub fn vpcd_addr(&self, slot: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port + slot))
    }

    /// Environment for child processes (tools) that must use this pcscd.
    pub fn envs(&self) -> Vec<(String, PathBuf)> {
        vec![(SOCKET_ENV.to_string(), socket_path())]
    }

    /// The private configuration directory (holds the log).
    pub fn dir(&self) -> &Path {
        self.conf.path()
    }

    /// `opensc-tool -l` against this pcscd.
    pub fn list_readers(&self) -> Result<String> {
        let out = Command::new("opensc-tool")
            .arg("-l")
            .env(SOCKET_ENV, socket_path())
            .output()
            .map_err(|e| Error::io("running opensc-tool -l (package opensc)", e))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits until `opensc-tool -l` shows exactly `n` readers named like a
    /// YubiKey holding a card (`0` waits for a removal to be noticed).
    pub fn wait_for_cards(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.list_readers()?;
            let present = last
                .lines()
                .filter(|l| l.contains(READER_NAME) && l.split_whitespace().nth(1) == Some("Yes"))
                .count();
            if present == n {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(harness_err(format!(
            "card not seen by opensc-tool -l within {timeout:?}:\n{last}\npcscd log:\n{}",
            self.log_tail()
        )))
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        // SIGTERM to the watchdog shell, which stops pcscd cleanly.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for file in ["pcscd.comm", "pcscd.pid"] {
            let _ = std::fs::remove_file(socket_dir().join(file));
        }
        // Only succeeds once empty; the next pcscd of this process recreates it.
        let _ = std::fs::remove_dir(socket_dir());
    }
}

/// How to build a virtual key for a test.
#[derive(Debug, Clone)]
pub struct VirtualKeyOptions {
    /// Serial number.
    pub serial: u32,
    /// Firmware version.
    pub firmware: [u8; 3],
    /// Attestation root; a fresh one when `None`.
    pub root: Option<AttestationRoot>,
    /// Persist the card state here (loaded if it exists).
    pub state_file: Option<PathBuf>,
}

impl Default for VirtualKeyOptions {
    fn default() -> Self {
        Self {
            serial: 13_371_337,
            firmware: [5, 4, 3],
            root: None,
            state_file: None,
        }
    }
}

/// A running virtual YubiKey behind a private pcscd. Field order is drop
/// order: card out, then pcscd down, then the lock released.
#[derive(Debug)]
pub struct VirtualYubiKey {
    card: Option<RunningCard>,
    /// A second key in the reader's other slot, if one was added.
    second: Option<RunningCard>,
    pcscd: Pcscd,
    touch: TouchControl,
    /// PIN state and credentials of the card's FIDO applet.
    fido: FidoControl,
    root: AttestationRoot,
    serial: u32,
    _lock: DeviceLock,
}

/// Builds the applet for `opts` (fresh or from its state file).
pub fn build_applet(
    opts: &VirtualKeyOptions,
    root: &AttestationRoot,
    touch: TouchControl,
) -> Result<Applet> {
    let state = match &opts.state_file {
        Some(path) if path.exists() => CardState::load(path)?,
        _ => {
            let info = DeviceInfo {
                serial: opts.serial,
                firmware: opts.firmware,
                form_factor: 1,
            };
            let state = CardState::new(info, root)?;
            if let Some(path) = &opts.state_file {
                state.save(path)?;
            }
            state
        }
    };
    Ok(Applet::new(state, opts.state_file.clone(), touch))
}

impl VirtualYubiKey {
    /// Takes the device lock, starts pcscd and the card, and waits until
    /// `opensc-tool -l` sees it.
    pub fn start(opts: VirtualKeyOptions) -> Result<Self> {
        let lock = DeviceLock::acquire()?;
        let root = match opts.root.clone() {
            Some(root) => root,
            None => AttestationRoot::create()?,
        };
        let touch = TouchControl::new();
        let (card, fido) = build_card(&opts, &root, touch.clone())?;
        let serial = card.piv().state().info.serial;
        let pcscd = Pcscd::start()?;
        let card = RunningCard::spawn(card, pcscd.vpcd_addr(0))?;
        pcscd.wait_for_cards(1, Duration::from_secs(15))?;
        Ok(Self {
            card: Some(card),
            second: None,
            pcscd,
            touch,
            fido,
            root,
            serial,
            _lock: lock,
        })
    }

    /// The card's serial number.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The touch sensor (one for both applets, as on a real key).
    pub fn touch(&self) -> &TouchControl {
        &self.touch
    }

    /// The FIDO applet's PIN state, counters and credentials.
    pub fn fido(&self) -> &FidoControl {
        &self.fido
    }

    /// The attestation root the card's `f9` certificate chains to.
    pub fn root(&self) -> &AttestationRoot {
        &self.root
    }

    /// The private pcscd.
    pub fn pcscd(&self) -> &Pcscd {
        &self.pcscd
    }

    /// Pulls the card out, waits until pcscd notices, and returns it
    /// (state included).
    pub fn remove(&mut self) -> Result<Option<VirtualCard>> {
        let applet = self.card.take().and_then(RunningCard::stop);
        self.pcscd
            .wait_for_cards(self.cards(), Duration::from_secs(15))?;
        Ok(applet)
    }

    /// Plugs a card in (after [`VirtualYubiKey::remove`]) and waits for it.
    pub fn insert(&mut self, card: VirtualCard) -> Result<()> {
        self.card = Some(RunningCard::spawn(card, self.pcscd.vpcd_addr(0))?);
        self.pcscd
            .wait_for_cards(self.cards(), Duration::from_secs(15))
    }

    /// Plugs a second key into the reader's other slot (one pcscd vpcd
    /// entry serves two), e.g. to test that hosts pick a key by serial.
    /// Its attestation chains to the same root. Returns its touch sensor.
    pub fn add_second(&mut self, opts: VirtualKeyOptions) -> Result<TouchControl> {
        if self.second.is_some() {
            return Err(harness_err("the reader's second slot is taken"));
        }
        let touch = TouchControl::new();
        let (card, _) = build_card(&opts, &self.root, touch.clone())?;
        self.second = Some(RunningCard::spawn(card, self.pcscd.vpcd_addr(1))?);
        self.pcscd
            .wait_for_cards(self.cards(), Duration::from_secs(15))?;
        Ok(touch)
    }

    fn cards(&self) -> usize {
        usize::from(self.card.is_some()) + usize::from(self.second.is_some())
    }
}
