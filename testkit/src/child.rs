//! Daemons that die with the test.
//!
//! Test daemons (sshd, …) run in the foreground as children of the test
//! process, are killed and reaped when their fixture is dropped, and are
//! also killed by the kernel if the test process dies without dropping
//! them (a panic that aborts, a runner's timeout, SIGKILL).
//!
//! The last part uses `PR_SET_PDEATHSIG`, set by util-linux's `setpriv
//! --pdeathsig KILL` just before it execs the daemon (the workspace forbids
//! `unsafe`, so no `pre_exec` here). The kernel sends that signal when the
//! *thread* that forked the child ends, not only the process; so every
//! daemon is forked by one spawner thread that lives as long as the test
//! process, never by the test's own thread, which may end first.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

/// util-linux's setpriv (Debian: package util-linux, always installed).
const SETPRIV: &str = "/usr/bin/setpriv";

type Request = (Command, Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("signet-testkit-spawner".into())
            .spawn(move || {
                // Never returns while the process lives: the sender is in a static.
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the daemon spawner thread");
        Mutex::new(tx)
    })
}

/// Starts `program args…` as a child that the kernel kills (SIGKILL) when
/// this test process ends, however it ends. `configure` sets up the rest
/// (environment, stdio) on the command. The caller must kill and wait for
/// the child when done (see [`Daemon`]).
pub fn spawn_tied(
    program: &str,
    args: &[&std::ffi::OsStr],
    configure: impl FnOnce(&mut Command),
) -> io::Result<Child> {
    if !std::path::Path::new(SETPRIV).exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{SETPRIV} missing: install util-linux (test daemons run under setpriv --pdeathsig)"),
        ));
    }
    let mut command = Command::new(SETPRIV);
    command
        .args(["--pdeathsig", "KILL", "--", program])
        .args(args);
    configure(&mut command);
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send((command, tx))
        .map_err(|_| io::Error::other("the daemon spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("the daemon spawner thread is gone"))?
}

/// A child process that is killed and reaped when dropped.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
}

impl Daemon {
    /// Takes ownership of a started child.
    pub fn new(child: Child) -> Self {
        Self { child }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` if the child has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Already exited: kill fails harmlessly; wait reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
