//! Reading a small local file named by the user (`--since`, `--key`,
//! `--cert`, `--tls-ca`) or kept by the auditor (the remembered
//! checkpoint) without trusting what is at that path: at most a bound is
//! read, and only a regular file is read at all.
//!
//! The file is opened with `O_NONBLOCK`, so a FIFO (or a device) at the path
//! does not make `open` wait for a writer, and its type is checked on the
//! opened descriptor (no race with a rename in between) before anything is
//! read.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Why a local file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalFileError {
    /// Opening or reading it failed (no such file, permissions, …).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// It is a FIFO, a device, a directory or a socket.
    #[error("not a regular file")]
    NotRegular,
    /// It holds more than the bound for its kind.
    #[error("larger than {limit} bytes, more than such a file holds")]
    TooLarge {
        /// The bound, in bytes.
        limit: u64,
    },
}

impl LocalFileError {
    /// Whether the file does not exist (for callers to whom that is no error).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Io(e) if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            )
        )
    }
}

/// Reads the regular file at `path` whole, refusing one of more than
/// `limit` bytes; never waits on a FIFO.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, LocalFileError> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(LocalFileError::NotRegular);
    }
    if meta.len() > limit {
        return Err(LocalFileError::TooLarge { limit });
    }
    // The file may grow after the size was read: read one byte more than
    // the bound to tell.
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(LocalFileError::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_regular_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_regular(&p, 5).unwrap(), b"hello");
    }

    #[test]
    fn refuses_a_file_over_the_bound() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello!").unwrap();
        assert!(matches!(
            read_regular(&p, 5),
            Err(LocalFileError::TooLarge { limit: 5 })
        ));
    }

    #[test]
    fn refuses_directories_and_devices() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_regular(d.path(), 1 << 20),
            Err(LocalFileError::NotRegular)
        ));
        // An endless device: refused before a byte is read.
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 1 << 20),
            Err(LocalFileError::NotRegular)
        ));
    }

    /// Makes a FIFO at `path` with mkfifo(1) (no unsafe code here).
    pub(crate) fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "mkfifo {}", path.display());
    }

    /// A FIFO with no writer is refused at once. Were `open` to wait for a
    /// writer, this test would not hang: after a generous while it becomes
    /// the writer itself (which frees the reader) and fails.
    #[test]
    fn refuses_a_fifo_without_waiting_for_a_writer() {
        use std::sync::mpsc;
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        mkfifo(&fifo);
        let (tx, rx) = mpsc::channel();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || tx.send(read_regular(&fifo, 1 << 20)).unwrap())
        };
        let result = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(r) => r,
            Err(_) => {
                drop(File::options().write(true).open(&fifo).unwrap());
                reader.join().unwrap();
                panic!("reading a FIFO waited for a writer");
            }
        };
        reader.join().unwrap();
        assert!(
            matches!(result, Err(LocalFileError::NotRegular)),
            "{result:?}"
        );
    }

    #[test]
    fn a_missing_file_is_told_apart() {
        let d = tempfile::tempdir().unwrap();
        let e = read_regular(&d.path().join("nope"), 10).unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let e = read_regular(&d.path().join("nope/deeper"), 10).unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }
}
