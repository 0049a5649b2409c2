//! The FIDO applet's ISO 7816 framing, as CTAP 2.1 §11.3 (NFC) describes it:
//! SELECT by AID answers `FIDO_2_0`; NFCCTAP_MSG (`80 10`) carries one CTAP
//! message; commands longer than a short APDU come extended or chained
//! (CLA `90`); long answers go out in `61xx` chunks fetched with GET
//! RESPONSE (`00 C0`), or whole after an extended Le.
//!
//! When the client sets P1 bit `80` on NFCCTAP_MSG it can poll: a command
//! waiting for a touch answers `9100` with the status byte UPNEEDED, and
//! NFCCTAP_GETRESPONSE (`80 11`) asks again, or cancels with P1 `11`
//! (then CTAP2_ERR_KEEPALIVE_CANCEL). Without that bit the command blocks
//! until the touch is given, refused or timed out. Never panics.

use super::authenticator::{Authenticator, Outcome, Presence};
use super::status::Status;
use crate::apdu::{Command, Response, StatusWord};
use crate::touch::{PendingTouch, TouchOutcome};
use std::time::Duration;

/// The FIDO applet's AID.
pub const FIDO_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01];

/// `9100`: still processing (NFCCTAP_GETRESPONSE keep-alive).
pub const SW_UPDATE: StatusWord = StatusWord(0x9100);

/// Keep-alive status: waiting for the user's touch.
const STATUS_UPNEEDED: u8 = 0x02;

/// How long one GETRESPONSE poll may wait for the touch before answering.
const POLL: Duration = Duration::from_millis(100);

/// Largest command gathered by chaining or sent extended.
const MAX_CHAIN: usize = 4096;

/// Largest response chunk before `61xx` chaining.
const CHUNK: usize = 256;

const INS_NFCCTAP_MSG: u8 = 0x10;
const INS_NFCCTAP_GETRESPONSE: u8 = 0x11;
const INS_GET_RESPONSE: u8 = 0xC0;
const INS_SELECT: u8 = 0xA4;

/// A CTAP command waiting for a touch.
struct Deferred {
    message: Vec<u8>,
    touch: PendingTouch,
}

/// The FIDO applet: APDUs in, APDUs out.
pub struct FidoApplet {
    auth: Authenticator,
    chain: Option<Vec<u8>>,
    pending: Vec<u8>,
    deferred: Option<Deferred>,
}

impl std::fmt::Debug for FidoApplet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FidoApplet")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl FidoApplet {
    /// The applet around `auth`.
    pub fn new(auth: Authenticator) -> Self {
        Self {
            auth,
            chain: None,
            pending: Vec::new(),
            deferred: None,
        }
    }

    /// The CTAP2 authenticator behind the framing.
    pub fn authenticator(&mut self) -> &mut Authenticator {
        &mut self.auth
    }

    /// Power cycle (vpcd power off/on/reset).
    pub fn reset(&mut self) {
        self.auth.power_cycle();
        self.clear();
    }

    fn clear(&mut self) {
        self.chain = None;
        self.pending.clear();
        self.deferred = None;
    }

    /// Processes one command APDU; returns the response APDU.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let response = match Command::parse(apdu) {
            Ok(cmd) => self.handle(cmd),
            Err(sw) => {
                self.chain = None;
                Response::status(sw)
            }
        };
        response.to_bytes()
    }

    fn handle(&mut self, cmd: Command) -> Response {
        let cla = cmd.cla & !Command::CLA_CHAINING;
        match (cla, cmd.ins) {
            // Clients send GET RESPONSE with the ISO class or with the
            // NFCCTAP class of the command it continues; keys accept both.
            (0x00 | 0x80, INS_GET_RESPONSE) => return self.get_response(),
            (0x00, INS_SELECT) => {
                self.clear();
                return self.select(&cmd);
            }
            (0x80, INS_NFCCTAP_MSG) => {}
            (0x80, INS_NFCCTAP_GETRESPONSE) => {
                self.pending.clear();
                return self.poll(&cmd);
            }
            (0x00 | 0x80, _) => {
                self.clear();
                return StatusWord::INS_NOT_SUPPORTED.into();
            }
            _ => {
                self.clear();
                return StatusWord::CLA_NOT_SUPPORTED.into();
            }
        }
        self.pending.clear();
        self.deferred = None;
        if !matches!(cmd.p1, 0x00 | 0x80) || cmd.p2 != 0x00 {
            self.chain = None;
            return StatusWord::INCORRECT_P1P2.into();
        }
        if cmd.is_chained() {
            let chain = self.chain.get_or_insert_with(Vec::new);
            chain.extend_from_slice(&cmd.data);
            if chain.len() > MAX_CHAIN {
                self.chain = None;
                return StatusWord::WRONG_LENGTH.into();
            }
            return StatusWord::OK.into();
        }
        let mut message = self.chain.take().unwrap_or_default();
        message.extend_from_slice(&cmd.data);
        if message.len() > MAX_CHAIN {
            return StatusWord::WRONG_LENGTH.into();
        }
        let presence = if cmd.p1 & 0x80 != 0 {
            Presence::Defer
        } else {
            Presence::Block
        };
        let outcome = self.auth.handle(&message, presence);
        self.answer(outcome, message, cmd.le)
    }

    fn select(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0x04 {
            return StatusWord::INCORRECT_P1P2.into();
        }
        if !cmd.data.starts_with(&FIDO_AID) {
            return StatusWord::NOT_FOUND.into();
        }
        Response::ok(b"FIDO_2_0".to_vec())
    }

    fn answer(&mut self, outcome: Outcome, message: Vec<u8>, le: Option<usize>) -> Response {
        match outcome {
            Outcome::Done(data) => self.chunk(data, le),
            Outcome::NeedsTouch(touch) => {
                self.deferred = Some(Deferred { message, touch });
                Response {
                    data: vec![STATUS_UPNEEDED],
                    sw: SW_UPDATE,
                }
            }
        }
    }

    /// NFCCTAP_GETRESPONSE: the touch came, was refused, timed out, was
    /// cancelled, or is still awaited.
    fn poll(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != 0 || !matches!(cmd.p1, 0x00 | 0x11) {
            return StatusWord::INCORRECT_P1P2.into();
        }
        let Some(deferred) = self.deferred.take() else {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        };
        if cmd.p1 == 0x11 {
            return self.chunk(vec![Status::KeepaliveCancel.to_byte()], cmd.le);
        }
        let touch = self.auth.touch_control().clone();
        match touch.wait(&deferred.touch, POLL) {
            None => {
                self.deferred = Some(deferred);
                Response {
                    data: vec![STATUS_UPNEEDED],
                    sw: SW_UPDATE,
                }
            }
            Some(TouchOutcome::Approved) => {
                let outcome = self.auth.handle(&deferred.message, Presence::Granted);
                self.answer(outcome, deferred.message, cmd.le)
            }
            Some(TouchOutcome::Denied) => {
                self.chunk(vec![Status::OperationDenied.to_byte()], cmd.le)
            }
            Some(TouchOutcome::TimedOut) => {
                self.chunk(vec![Status::UserActionTimeout.to_byte()], cmd.le)
            }
        }
    }

    /// The whole answer after an extended Le, else 256-byte chunks.
    fn chunk(&mut self, mut data: Vec<u8>, le: Option<usize>) -> Response {
        let limit = le.filter(|le| *le > CHUNK).unwrap_or(CHUNK);
        if data.len() <= limit {
            return Response::ok(data);
        }
        self.pending = data.split_off(limit);
        Response {
            data,
            sw: StatusWord::bytes_remaining(self.pending.len()),
        }
    }

    fn get_response(&mut self) -> Response {
        if self.pending.is_empty() {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        }
        let take = self.pending.len().min(CHUNK);
        let rest = self.pending.split_off(take);
        let data = std::mem::replace(&mut self.pending, rest);
        let sw = if self.pending.is_empty() {
            StatusWord::OK
        } else {
            StatusWord::bytes_remaining(self.pending.len())
        };
        Response { data, sw }
    }
}
