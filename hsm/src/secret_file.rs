//! Reading a small secret (a PIN, a management key) from a file without
//! the classic traps.
//!
//! The file is opened once and everything is checked on that open handle:
//! - `O_NOFOLLOW`: a symbolic link in the last path component is refused,
//!   so nobody can point the name at another file between a check and the
//!   read (directories above it are the administrator's to protect);
//! - `O_NONBLOCK`: opening a FIFO does not wait for a writer, and the type
//!   check below refuses it (also devices, sockets, directories);
//! - the mode comes from `fstat` of the open file (`File::metadata`), not
//!   from the name, so what is checked is what is read: no group or other
//!   bits, like ssh with private keys;
//! - at most a small bound is read: a secret file that is larger is
//!   refused rather than read into memory.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

/// Why a secret file was refused. The text goes after the file's name in a
/// message; it never holds any of the file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretFileProblem {
    Missing,
    Symlink,
    Unreadable,
    NotRegular,
    Exposed,
    NotOwned,
    TooLarge,
}

/// The most a secret file may hold: PINs and management keys (64 hex
/// digits for AES-256) are far smaller; anything larger is not one.
pub(crate) const MAX_SECRET_FILE_LEN: usize = 256;

impl SecretFileProblem {
    /// What is wrong, to follow the file's name in a message.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Missing => "does not exist",
            Self::Symlink => {
                "is a symbolic link; secret files are never followed through links, name the file itself"
            }
            Self::Unreadable => "cannot be read",
            Self::NotRegular => "is not a regular file (a FIFO, socket, device or directory)",
            Self::Exposed => {
                "is accessible by group or others; make it readable by its owner only (chmod 600)"
            }
            Self::NotOwned => {
                "belongs to another user; a secret file must be owned by the user the CA runs as (as ssh insists for keys)"
            }
            Self::TooLarge => "is larger than 256 bytes, more than a PIN or key file can hold",
        }
    }
}

/// Opens `path` once, checks it on the open handle and reads it whole (at
/// most [`MAX_SECRET_FILE_LEN`] bytes). The bytes are zeroized when dropped.
pub(crate) fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretFileProblem> {
    let max = MAX_SECRET_FILE_LEN;
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ENOENT) => SecretFileProblem::Missing,
            // open(2) with O_NOFOLLOW answers ELOOP for a symbolic link.
            Some(libc::ELOOP) => SecretFileProblem::Symlink,
            _ => SecretFileProblem::Unreadable,
        })?;
    let meta = file.metadata().map_err(|_| SecretFileProblem::Unreadable)?;
    if !meta.is_file() {
        return Err(SecretFileProblem::NotRegular);
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(SecretFileProblem::Exposed);
    }
    // This process's effective uid, without unsafe FFI: /proc/self belongs
    // to it.
    let own_uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|_| SecretFileProblem::Unreadable)?;
    if meta.uid() != own_uid {
        return Err(SecretFileProblem::NotOwned);
    }
    if meta.len() > max as u64 {
        return Err(SecretFileProblem::TooLarge);
    }
    // Read one byte more than allowed: a file that grew after fstat is
    // still caught.
    let mut bytes = Zeroizing::new(Vec::with_capacity(max + 1));
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| SecretFileProblem::Unreadable)?;
    if bytes.len() > max {
        return Err(SecretFileProblem::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn owner_only(path: &Path) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn an_owner_only_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "123456\n").unwrap();
        owner_only(&path);
        assert_eq!(&*read_secret_file(&path).unwrap(), b"123456\n");
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused() {
        // Root can give the file away; other users cannot run this test.
        if std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            != 0
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "123456\n").unwrap();
        owner_only(&path);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        assert_eq!(read_secret_file(&path), Err(SecretFileProblem::NotOwned));
    }

    #[test]
    fn a_symlink_to_a_good_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "123456\n").unwrap();
        owner_only(&target);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_secret_file(&link), Err(SecretFileProblem::Symlink));
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Without O_NONBLOCK this open would block forever (no writer).
        assert_eq!(read_secret_file(&fifo), Err(SecretFileProblem::NotRegular));
    }

    #[test]
    fn group_or_world_access_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "123456\n").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o610] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                read_secret_file(&path),
                Err(SecretFileProblem::Exposed),
                "{mode:o}"
            );
        }
    }

    #[test]
    fn an_oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'1'; 257]).unwrap();
        owner_only(&path);
        assert_eq!(read_secret_file(&path), Err(SecretFileProblem::TooLarge));
        std::fs::write(&path, vec![b'1'; 256]).unwrap();
        assert_eq!(read_secret_file(&path).unwrap().len(), 256);
    }

    #[test]
    fn a_directory_and_a_missing_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            read_secret_file(dir.path()),
            Err(SecretFileProblem::NotRegular)
        );
        assert_eq!(
            read_secret_file(&dir.path().join("nope")),
            Err(SecretFileProblem::Missing)
        );
    }
}
