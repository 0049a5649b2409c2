//! A tiny HTTP/1.1 file server on 127.0.0.1, in a thread, serving a tile
//! directory under `/log/` — honestly or in one of several broken ways.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How the server answers requests for `tile/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serve the files as they are.
    Honest,
    /// Serve deterministic junk of the right length for tiles.
    Garbage,
    /// Serve the first half of every tile (with a matching Content-Length).
    Truncated,
    /// Announce the full length, send half, close the connection.
    CutOff,
    /// Answer every tile request with 500.
    ServerError,
    /// Answer every tile request with an enormous Content-Length and stream zeros.
    Huge,
}

/// How the server answers a request for a file `dir` does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// 404, as a log does.
    NotFound,
    /// 500: the server is failing, which says nothing about the log.
    ServerError,
    /// Close the connection without an answer.
    Drop,
}

/// Starts a server for `dir`; returns the URL prefix of the log (`http://127.0.0.1:P/log/`).
pub fn serve(dir: &Path, mode: Mode) -> String {
    serve_with(dir, mode, None, Missing::NotFound)
}

/// Holds a client between reading the checkpoint and reading the tiles, so
/// a test can run something else exactly then.
#[derive(Default)]
pub struct Hold {
    /// (a tile was asked for, tiles may be served)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

/// Longest a held request or a waiting test waits, so nothing hangs forever.
const HOLD_LIMIT: Duration = Duration::from_secs(120);

impl Hold {
    /// Waits until the client asked for its first tile.
    pub fn wait_for_tile_request(&self) {
        let guard = self.state.lock().unwrap();
        let (guard, timeout) = self
            .changed
            .wait_timeout_while(guard, HOLD_LIMIT, |s| !s.0)
            .unwrap();
        assert!(
            guard.0 && !timeout.timed_out(),
            "the client never asked for a tile"
        );
    }

    /// Lets every held and later tile request through.
    pub fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }

    fn tile_requested(&self) {
        let mut guard = self.state.lock().unwrap();
        guard.0 = true;
        self.changed.notify_all();
        let _ = self
            .changed
            .wait_timeout_while(guard, HOLD_LIMIT, |s| !s.1)
            .unwrap();
    }
}

/// Serves `dir` honestly, but holds every tile request until
/// [`Hold::release`]; the checkpoint is served at once.
pub fn serve_held(dir: &Path) -> (String, Arc<Hold>) {
    serve_held_missing(dir, Missing::NotFound)
}

/// As [`serve_held`], answering requests for files `dir` lacks as `missing` says.
pub fn serve_held_missing(dir: &Path, missing: Missing) -> (String, Arc<Hold>) {
    let hold = Arc::new(Hold::default());
    (
        serve_with(dir, Mode::Honest, Some(hold.clone()), missing),
        hold,
    )
}

fn serve_with(dir: &Path, mode: Mode, hold: Option<Arc<Hold>>, missing: Missing) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let dir = dir.clone();
            let hold = hold.clone();
            std::thread::spawn(move || {
                let _ = handle(stream, &dir, mode, hold.as_deref(), missing);
            });
        }
    });
    format!("http://{addr}/log/")
}

fn handle(
    stream: TcpStream,
    dir: &Path,
    mode: Mode,
    hold: Option<&Hold>,
    missing: Missing,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let Some(rel) = path.strip_prefix("/log/") else {
            respond(&mut out, 404, b"not found")?;
            continue;
        };
        if rel.contains("..") {
            respond(&mut out, 400, b"bad path")?;
            continue;
        }
        if let (Some(hold), true) = (hold, rel.starts_with("tile/")) {
            hold.tile_requested();
        }
        let file = dir.join(rel);
        let Ok(body) = std::fs::read(&file) else {
            match missing {
                Missing::NotFound => respond(&mut out, 404, b"not found")?,
                Missing::ServerError => respond(&mut out, 500, b"internal error")?,
                Missing::Drop => return Ok(()),
            }
            continue;
        };
        if !rel.starts_with("tile/") || mode == Mode::Honest {
            respond(&mut out, 200, &body)?;
            continue;
        }
        match mode {
            Mode::Honest => unreachable!(),
            Mode::Garbage => {
                let junk: Vec<u8> = (0..body.len()).map(|i| (i * 31 % 251) as u8).collect();
                respond(&mut out, 200, &junk)?;
            }
            Mode::Truncated => respond(&mut out, 200, &body[..body.len() / 2])?,
            Mode::CutOff => {
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )?;
                out.write_all(&body[..body.len() / 2])?;
                out.flush()?;
                return Ok(());
            }
            Mode::ServerError => respond(&mut out, 500, b"internal error")?,
            Mode::Huge => {
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\nConnection: close\r\n\r\n"
                )?;
                let zeros = vec![0u8; 64 * 1024];
                // Stop after 64 MiB whatever happens: bounded, like every test loop.
                for _ in 0..1024 {
                    if out.write_all(&zeros).is_err() {
                        break;
                    }
                }
                return Ok(());
            }
        }
    }
}

fn respond(out: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        400 => "Bad Request",
        _ => "Internal Server Error",
    };
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
        body.len()
    )?;
    out.write_all(body)?;
    out.flush()
}
