//! Where the agent lives: a private runtime directory, its socket, and a
//! lock file so that two agents never serve (and remove) the same socket.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::server::current_uid;
use super::AgentError;

/// The agent's files under `$XDG_RUNTIME_DIR/signet/` (or
/// `/tmp/signet-<uid>/` when there is no runtime directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPaths {
    /// The directory, mode 0700, owned by us.
    pub dir: PathBuf,
    /// The socket, mode 0600.
    pub socket: PathBuf,
    /// The lock and pid file.
    pub lock: PathBuf,
    /// The daemon's log.
    pub log: PathBuf,
}

impl AgentPaths {
    /// The paths for this user, from the environment.
    pub fn from_env() -> Result<Self, AgentError> {
        let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            Some(runtime) => PathBuf::from(runtime).join("signet"),
            None => {
                let uid =
                    current_uid().map_err(|e| AgentError::Io("reading /proc/self".into(), e))?;
                std::env::temp_dir().join(format!("signet-{uid}"))
            }
        };
        Ok(Self::in_dir(dir))
    }

    /// The paths inside `dir`.
    pub fn in_dir(dir: PathBuf) -> Self {
        Self {
            socket: dir.join("agent.sock"),
            lock: dir.join("agent.pid"),
            log: dir.join("agent.log"),
            dir,
        }
    }

    /// Creates the directory (0700) if needed and checks that it is ours and
    /// private: a socket in a directory someone else controls could be
    /// swapped under us.
    pub fn prepare(&self) -> Result<(), AgentError> {
        let io = |e| AgentError::Io(self.dir.display().to_string(), e);
        match DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let meta = std::fs::symlink_metadata(&self.dir).map_err(io)?;
        let uid = current_uid().map_err(io)?;
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
            return Err(AgentError::UnsafeDir(self.dir.clone()));
        }
        Ok(())
    }

    /// Takes the lock, or says which agent holds it.
    pub fn lock(&self) -> Result<AgentLock, AgentError> {
        let io = |e| AgentError::Io(self.lock.display().to_string(), e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(AgentError::AlreadyRunning {
                    pid: pid.trim().to_string(),
                    socket: self.socket.clone(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(AgentLock { _file: file })
    }

    /// Binds the socket (mode 0600), replacing a stale one. Call with the
    /// lock held: the old socket belongs to an agent that is gone.
    pub fn bind(&self, _lock: &AgentLock) -> Result<UnixListener, AgentError> {
        let io = |e| AgentError::Io(self.socket.display().to_string(), e);
        match std::fs::remove_file(&self.socket) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let listener = UnixListener::bind(&self.socket).map_err(io)?;
        std::fs::set_permissions(&self.socket, Permissions::from_mode(0o600)).map_err(io)?;
        Ok(listener)
    }
}

/// Held while an agent serves; released when the process ends.
#[derive(Debug)]
pub struct AgentLock {
    _file: File,
}

/// Whether something answers on `socket` (a running agent).
pub fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}
