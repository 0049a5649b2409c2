//! Bytes both ways between ssh (our stdin and stdout) and the TLS tunnel,
//! on two threads sharing one rustls connection.
//!
//! - upstream (a thread): stdin → TLS. At stdin's end: close_notify, then
//!   TCP half-close (FIN), so the node's sshd sees the end of input while
//!   its answer still flows back.
//! - downstream (the calling thread): TLS → stdout. At the proxy's clean
//!   end (close_notify): stdout is closed, so ssh sees the end while its
//!   own input may still flow up. An end without close_notify, or a broken
//!   connection, is a cut: said on stderr, with its own exit status.
//!
//! Records leave in the order rustls made them: a thread takes the socket's
//! write lock before it lets go of the connection, and never the other way
//! round, so the two locks cannot deadlock; neither is held across a read
//! of stdin or of the socket, and the connection's lock never across a
//! blocking write.

use std::fs::File;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::ClientConnection;

/// How long the proxy has to end its side once ours ended.
const LINGER: Duration = Duration::from_secs(30);

/// How the tunnel ended.
#[derive(Debug)]
pub(super) enum Ending {
    /// Both sides ended cleanly (or ssh went away).
    Clean,
    /// The proxy ended without close_notify, or the connection broke.
    Cut(String),
    /// stdin or stdout could not be set up.
    Local(String),
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A thread that panicked left the connection in whatever state; the
    // other one finds out from rustls on its next call.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// stdout as a file of our own: the descriptor is duplicated and /dev/null
/// put on fd 1, so dropping the returned file really closes the pipe ssh
/// reads (and a stray print cannot land in the SSH stream).
fn take_stdout() -> std::io::Result<File> {
    let ours = std::io::stdout().as_fd().try_clone_to_owned()?;
    let null = File::options().write(true).open("/dev/null")?;
    rustix::stdio::dup2_stdout(&null)?;
    Ok(File::from(ours))
}

fn take_stdin() -> std::io::Result<File> {
    Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?))
}

/// Copies until both sides ended; `first` is what came with the proxy's
/// answer (the start of the node's stream).
pub(super) fn run(conn: ClientConnection, tcp: TcpStream, first: Vec<u8>) -> Ending {
    let (mut out, input) = match (take_stdout(), take_stdin()) {
        (Ok(out), Ok(input)) => (out, input),
        (Err(e), _) | (_, Err(e)) => return Ending::Local(format!("stdin/stdout: {e}")),
    };
    let setup = tcp
        .set_read_timeout(None)
        .and_then(|()| tcp.set_write_timeout(None))
        .and_then(|()| tcp.try_clone());
    let mut reader = match setup {
        Ok(reader) => reader,
        Err(e) => return Ending::Local(format!("the socket: {e}")),
    };
    if out.write_all(&first).is_err() {
        // ssh is gone already.
        return Ending::Clean;
    }
    let conn = Arc::new(Mutex::new(conn));
    let socket = Arc::new(Mutex::new(tcp));
    let sent_end = Arc::new(AtomicBool::new(false));
    let upstream = {
        let (conn, socket, sent_end) = (conn.clone(), socket.clone(), sent_end.clone());
        std::thread::spawn(move || upstream(input, &conn, &socket, &sent_end))
    };
    let ending = downstream(&mut reader, &mut out, &conn, &socket, &sent_end);
    if !matches!(ending, Ending::Clean) {
        // ssh ends at our stdout's end and takes this process with it: the
        // pipe stays open until the process exits, after the reason is on
        // stderr. (Forgetting a File only leaves its descriptor open.)
        std::mem::forget(out);
        return ending;
    }
    drop(out);
    // The node's side ended; ssh ends ours by closing stdin.
    let _ = upstream.join();
    ending
}

/// stdin → TLS, until stdin ends or the socket breaks.
fn upstream(
    mut input: File,
    conn: &Mutex<ClientConnection>,
    socket: &Mutex<TcpStream>,
    sent_end: &AtomicBool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        let (bytes, mut sock) = {
            let mut c = locked(conn);
            if n == 0 {
                c.send_close_notify();
            } else if c.writer().write_all(&buf[..n]).is_err() {
                return;
            }
            let mut bytes = Vec::new();
            while c.wants_write() {
                if c.write_tls(&mut bytes).is_err() {
                    return;
                }
            }
            (bytes, locked(socket))
        };
        if sock.write_all(&bytes).is_err() {
            return;
        }
        if n == 0 {
            let _ = sock.shutdown(Shutdown::Write);
            // The proxy now has LINGER to end its side.
            let _ = sock.set_read_timeout(Some(LINGER));
            sent_end.store(true, Ordering::SeqCst);
            return;
        }
    }
}

/// TLS → stdout, until the proxy's side ends.
fn downstream(
    reader: &mut TcpStream,
    out: &mut File,
    conn: &Mutex<ClientConnection>,
    socket: &Mutex<TcpStream>,
    sent_end: &AtomicBool,
) -> Ending {
    let mut buf = vec![0u8; 32 * 1024];
    let mut plain = vec![0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                    && sent_end.load(Ordering::SeqCst) =>
            {
                // Our side ended and the proxy did not end its side in time.
                return Ending::Clean;
            }
            Err(e) => return Ending::Cut(format!("the connection broke ({e})")),
        };
        let mut received = Vec::new();
        let mut closed = false;
        let mut failed = None;
        let (bytes, sock) = {
            let mut c = locked(conn);
            let mut rest = &buf[..n];
            loop {
                // An empty read tells rustls the socket ended.
                if let Err(e) = c.read_tls(&mut rest) {
                    failed = Some(format!("TLS: {e}"));
                    break;
                }
                if let Err(e) = c.process_new_packets() {
                    failed = Some(format!("TLS: {e}"));
                    break;
                }
                loop {
                    match c.reader().read(&mut plain) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(k) => received.extend_from_slice(&plain[..k]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            failed = Some(
                                "the proxy closed the connection without ending the tunnel (a lock, the certificate's end, or the proxy stopped)"
                                    .into(),
                            );
                            break;
                        }
                    }
                }
                if rest.is_empty() || closed || failed.is_some() {
                    break;
                }
            }
            // Alerts, key updates: sent in order with the other thread's records.
            let mut bytes = Vec::new();
            while c.wants_write() {
                if c.write_tls(&mut bytes).is_err() {
                    break;
                }
            }
            let sock = (!bytes.is_empty()).then(|| locked(socket));
            (bytes, sock)
        };
        if let Some(mut sock) = sock {
            let _ = sock.write_all(&bytes);
        }
        if !received.is_empty() && out.write_all(&received).is_err() {
            // ssh is gone: nobody reads what follows.
            return Ending::Clean;
        }
        if let Some(why) = failed {
            if sent_end.load(Ordering::SeqCst) {
                // ssh had ended its side: nothing was lost.
                return Ending::Clean;
            }
            return Ending::Cut(why);
        }
        if closed {
            return Ending::Clean;
        }
    }
}
