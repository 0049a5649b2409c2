//! The card side of vsmartcard's `vpcd` protocol: the virtual card is a TCP
//! client of pcscd's vpcd driver.
//!
//! Every message, both ways, is a 2-byte big-endian length and a payload.
//! One-byte payloads from the driver are control messages (`00` power off,
//! `01` power on, `02` reset, `04` "send your ATR"); anything longer is a
//! command APDU, answered with the response APDU. Closing the socket is card
//! removal; reconnecting is insertion.
//!
//! Timing: vpcd sends length and payload in two `send()` calls; with delayed
//! ACKs on our side each exchange would stall ~40 ms. The loop sets
//! `TCP_NODELAY` and re-arms `TCP_QUICKACK` after every read.

use crate::applet::ATR;
use crate::card::VirtualCard;
use crate::{Error, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The vpcd driver's default port for its first slot (`0x8C7B`).
pub const DEFAULT_PORT: u16 = 35963;

/// How often blocked reads wake up to look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// Why a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// pcscd closed the socket (restart or shutdown).
    PeerClosed,
    /// We were asked to stop.
    Stopped,
}

/// Reads exactly `buf.len()` bytes, waking every [`POLL`] to check `stop`.
/// `Ok(false)` means the peer closed the connection or we stopped.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                filled += n;
                // Re-arm quick ACKs: the kernel drops back to delayed ACKs.
                let _ = socket2::SockRef::from(&*stream).set_tcp_quickack(true);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn send_frame(stream: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(payload.len())
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, "frame too long"))?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

/// Serves one connection until pcscd closes it or `stop` is set.
fn serve(
    stream: &mut TcpStream,
    card: &mut VirtualCard,
    stop: &AtomicBool,
) -> std::io::Result<Ended> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    let _ = socket2::SockRef::from(&*stream).set_tcp_quickack(true);
    loop {
        let mut len = [0u8; 2];
        if !read_full(stream, &mut len, stop)? {
            return Ok(if stop.load(Ordering::Relaxed) {
                Ended::Stopped
            } else {
                Ended::PeerClosed
            });
        }
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if !read_full(stream, &mut payload, stop)? {
            return Ok(Ended::Stopped);
        }
        match payload.as_slice() {
            // Power off, power on, reset: the card forgets its session.
            [0x00] | [0x01] | [0x02] => card.reset(),
            [0x04] => send_frame(stream, &ATR)?,
            [_] => {}
            apdu => {
                let response = card.process(apdu);
                send_frame(stream, &response)?;
            }
        }
    }
}

/// Runs the card against the vpcd driver at `addr` until `stop` is set,
/// reconnecting whenever pcscd drops the connection or is not up yet.
pub fn run(addr: SocketAddr, card: &mut VirtualCard, stop: &AtomicBool) -> Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => s,
            Err(_) => {
                std::thread::sleep(POLL);
                continue;
            }
        };
        card.reset();
        match serve(&mut stream, card, stop) {
            Ok(Ended::Stopped) => break,
            Ok(Ended::PeerClosed) => std::thread::sleep(POLL),
            Err(e) if stop.load(Ordering::Relaxed) => {
                return Err(Error::io("vpcd connection", e));
            }
            // pcscd went away mid-exchange: reconnect like a re-inserted card.
            Err(_) => std::thread::sleep(POLL),
        }
    }
    Ok(())
}

/// A virtual card running in a background thread; dropping it removes the
/// card (closes the socket) and joins the thread.
#[derive(Debug)]
pub struct RunningCard {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<VirtualCard>>,
}

impl RunningCard {
    /// Starts serving `card` to the vpcd driver at `addr`.
    pub fn spawn(mut card: VirtualCard, addr: SocketAddr) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("virtual-yubikey".into())
            .spawn(move || {
                if let Err(e) = run(addr, &mut card, &flag) {
                    eprintln!("virtual-yubikey: {e}");
                }
                card
            })
            .map_err(|e| Error::io("spawning the card thread", e))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Removes the card and returns it (with its state).
    pub fn stop(mut self) -> Option<VirtualCard> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for RunningCard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applet::Applet;
    use crate::attest::AttestationRoot;
    use crate::state::{CardState, DeviceInfo};
    use crate::touch::TouchControl;
    use std::net::TcpListener;

    fn recv(s: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).unwrap();
        buf
    }

    #[test]
    fn speaks_vpcd_framing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let root = AttestationRoot::create().unwrap();
        let info = DeviceInfo {
            serial: 7,
            firmware: [5, 4, 3],
            form_factor: 1,
        };
        let applet = Applet::new(
            CardState::new(info, &root).unwrap(),
            None,
            TouchControl::new(),
        );
        let (fido, _) = crate::fido::build(&root, 7, None, TouchControl::new()).unwrap();
        let card = RunningCard::spawn(VirtualCard::new(applet, fido), addr).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        // The driver sends length and payload separately, as vpcd does.
        s.write_all(&[0, 1]).unwrap();
        s.write_all(&[0x04]).unwrap();
        assert_eq!(recv(&mut s), ATR);
        s.write_all(&[0, 1, 0x01]).unwrap();
        s.write_all(&[0, 5, 0, 0xF8, 0, 0, 0]).unwrap();
        assert_eq!(recv(&mut s), [0, 0, 0, 7, 0x90, 0]);
        // The FIDO applet answers on the same card once selected.
        let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
        select.extend_from_slice(&crate::fido::FIDO_AID);
        s.write_all(&(select.len() as u16).to_be_bytes()).unwrap();
        s.write_all(&select).unwrap();
        assert_eq!(recv(&mut s), b"FIDO_2_0\x90\x00");
        let card = card.stop().unwrap();
        assert_eq!(card.piv().state().info.serial, 7);
    }
}
