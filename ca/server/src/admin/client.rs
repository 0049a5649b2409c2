//! The admin commands' side of the socket (blocking, one request).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{AdminRequest, AdminResponse, MAX_REQUEST};
use crate::{Error, Result};

/// Whether a daemon answered.
#[derive(Debug)]
pub enum Reached {
    /// The running daemon performed the request.
    Answered(AdminResponse),
    /// No daemon listens on the socket: open the store directly.
    NoDaemon,
}

/// Sends one request to the daemon on `socket`.
pub fn send(socket: &Path, request: &AdminRequest) -> Result<Reached> {
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(Reached::NoDaemon)
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::bad(
                "serve.admin_socket",
                format!(
                    "{}: permission denied (admin commands need root, the CA's user, or serve.admin_group)",
                    socket.display()
                ),
            ))
        }
        Err(e) => {
            return Err(Error::Store(format!(
                "cannot reach the daemon on {}: {e}",
                socket.display()
            )))
        }
    };
    let io = |e: std::io::Error| Error::Store(format!("admin socket {}: {e}", socket.display()));
    // Admin actions wait for the HSM and a durable log entry; a minute is
    // far beyond either.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(io)?;
    let mut line = serde_json::to_vec(request).map_err(|e| Error::Store(e.to_string()))?;
    line.push(b'\n');
    // A daemon that refuses this peer answers without reading the
    // request: a request larger than the socket's buffer then meets a
    // closed socket, and the refusal is still there to read.
    let sent = stream
        .write_all(&line)
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write));
    let unsent = match sent {
        Ok(()) => None,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Some(e)
        }
        Err(e) => return Err(io(e)),
    };
    let mut answer = Vec::new();
    let read = BufReader::new(stream.take(MAX_REQUEST as u64)).read_until(b'\n', &mut answer);
    match (read, unsent) {
        (Ok(_), _) if !answer.is_empty() => {}
        (_, Some(e)) | (Err(e), None) => return Err(io(e)),
        (Ok(_), None) => {}
    }
    let response: AdminResponse = serde_json::from_slice(&answer)
        .map_err(|e| Error::Store(format!("the daemon's answer does not parse ({e})")))?;
    Ok(Reached::Answered(response))
}
