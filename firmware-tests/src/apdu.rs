//! Command and response APDUs (ISO 7816-4) as a PIV card sees them.
//!
//! The parser accepts every encoding a host may legally send — short and
//! extended Lc/Le, a bare `Lc = 00` as the `yubikey` crate sends it — and turns
//! anything else into the status word a real card answers with. It never
//! panics, whatever the input: it is the first thing the emulator does with
//! bytes from the wire, and it is fuzzed (`fuzz/fuzz_targets/apdu.rs`).

use std::fmt;

/// A two-byte ISO 7816 status word (`SW1 SW2`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `9000`: success.
    pub const OK: Self = Self(0x9000);
    /// `6700`: wrong length (Lc/Le inconsistent with the command).
    pub const WRONG_LENGTH: Self = Self(0x6700);
    /// `6883`: the last command of a chain was expected.
    pub const LAST_COMMAND_EXPECTED: Self = Self(0x6883);
    /// `6982`: security status not satisfied (PIN, management key or touch missing).
    pub const SECURITY_STATUS: Self = Self(0x6982);
    /// `6983`: authentication method blocked (PIN or PUK retries exhausted).
    pub const AUTH_BLOCKED: Self = Self(0x6983);
    /// `6984`: referenced data invalidated.
    pub const DATA_INVALID: Self = Self(0x6984);
    /// `6985`: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    /// `6A80`: incorrect parameters in the command data field.
    pub const INCORRECT_DATA: Self = Self(0x6A80);
    /// `6A81`: function not supported.
    pub const FUNCTION_NOT_SUPPORTED: Self = Self(0x6A81);
    /// `6A82`: file or application not found.
    pub const NOT_FOUND: Self = Self(0x6A82);
    /// `6A84`: not enough memory.
    pub const NOT_ENOUGH_MEMORY: Self = Self(0x6A84);
    /// `6A86`: incorrect P1 or P2.
    pub const INCORRECT_P1P2: Self = Self(0x6A86);
    /// `6A88`: referenced data not found.
    pub const REFERENCE_NOT_FOUND: Self = Self(0x6A88);
    /// `6B00`: wrong parameters P1-P2 (the YubiKey's answer for a bad key slot).
    pub const WRONG_P1P2: Self = Self(0x6B00);
    /// `6D00`: instruction not supported.
    pub const INS_NOT_SUPPORTED: Self = Self(0x6D00);
    /// `6E00`: class not supported.
    pub const CLA_NOT_SUPPORTED: Self = Self(0x6E00);
    /// `6F00`: no precise diagnosis (internal error).
    pub const UNKNOWN: Self = Self(0x6F00);

    /// `63Cx`: verification failed, `x` tries left (capped at 15).
    pub fn retries_left(tries: u8) -> Self {
        Self(0x63C0 | u16::from(tries.min(15)))
    }

    /// `61xx`: more response bytes are waiting for GET RESPONSE (`00` = 256 or more).
    pub fn bytes_remaining(remaining: usize) -> Self {
        Self(
            0x6100
                | if remaining > 0xFF {
                    0
                } else {
                    remaining as u16
                },
        )
    }

    /// The two bytes as sent on the wire.
    pub fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SW {:04X}", self.0)
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// A parsed command APDU.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte; bit `0x10` marks "more of this command follows" (chaining).
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// First parameter byte.
    pub p1: u8,
    /// Second parameter byte.
    pub p2: u8,
    /// Command data (empty when there is no Lc or `Lc = 00`).
    pub data: Vec<u8>,
    /// Expected response length, if the host sent an Le (`256`/`65536` for `00`).
    pub le: Option<usize>,
}

impl fmt::Debug for Command {
    // Command data may hold a PIN or key material: show only its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "APDU {:02X} {:02X} {:02X} {:02X} ({} data bytes, Le {:?})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

impl Command {
    /// Class bit that marks a chained command (ISO 7816-4 §5.1.1).
    pub const CLA_CHAINING: u8 = 0x10;

    /// Parses one command APDU, or says which status word the card answers.
    pub fn parse(bytes: &[u8]) -> Result<Self, StatusWord> {
        let (header, body) = match bytes.split_first_chunk::<4>() {
            Some(split) => split,
            None => return Err(StatusWord::WRONG_LENGTH),
        };
        let [cla, ins, p1, p2] = *header;
        let (data, le) = parse_body(body)?;
        Ok(Self {
            cla,
            ins,
            p1,
            p2,
            data: data.to_vec(),
            le,
        })
    }

    /// Whether this is a non-final link of a command chain.
    pub fn is_chained(&self) -> bool {
        self.cla & Self::CLA_CHAINING != 0
    }

    /// Encodes this command (short form when it fits, extended otherwise).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        let extended = self.data.len() > 255 || self.le.is_some_and(|le| le > 256);
        if extended {
            out.push(0);
            if !self.data.is_empty() {
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                out.extend_from_slice(&((le & 0xFFFF) as u16).to_be_bytes());
            }
        } else {
            if !self.data.is_empty() {
                out.push(self.data.len() as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = self.le {
                out.push((le & 0xFF) as u8);
            }
        }
        out
    }
}

/// Splits the APDU body (after the 4 header bytes) into data and Le.
fn parse_body(body: &[u8]) -> Result<(&[u8], Option<usize>), StatusWord> {
    match body {
        // Case 1: header only.
        [] => Ok((&[], None)),
        // Case 2 short, or a bare `Lc = 00` (what the `yubikey` crate sends for
        // commands without data): both mean "no data".
        [le] => Ok((&[], Some(short_le(*le)))),
        // Extended form: a zero byte, then two length bytes.
        [0, rest @ ..] if rest.len() >= 2 => {
            let (len, rest) = rest.split_at(2);
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            if rest.is_empty() {
                // Case 2 extended: the two bytes are Le.
                return Ok((&[], Some(extended_le(len))));
            }
            if len == 0 {
                return Err(StatusWord::WRONG_LENGTH);
            }
            match rest.len().checked_sub(len) {
                Some(0) => Ok((rest, None)),
                Some(2) => {
                    let (data, le) = rest.split_at(len);
                    let le = usize::from(u16::from_be_bytes([le[0], le[1]]));
                    Ok((data, Some(extended_le(le))))
                }
                _ => Err(StatusWord::WRONG_LENGTH),
            }
        }
        // Short form with data: Lc, data, optional one-byte Le.
        [lc, rest @ ..] => {
            let len = usize::from(*lc);
            if len == 0 {
                return Err(StatusWord::WRONG_LENGTH);
            }
            match rest.len().checked_sub(len) {
                Some(0) => Ok((rest, None)),
                Some(1) => Ok((&rest[..len], rest.last().map(|le| short_le(*le)))),
                _ => Err(StatusWord::WRONG_LENGTH),
            }
        }
    }
}

fn short_le(le: u8) -> usize {
    if le == 0 {
        256
    } else {
        usize::from(le)
    }
}

fn extended_le(le: usize) -> usize {
    if le == 0 {
        65536
    } else {
        le
    }
}

/// A response APDU: data followed by the status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data (may be empty).
    pub data: Vec<u8>,
    /// Status word.
    pub sw: StatusWord,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} + {} data bytes", self.sw, self.data.len())
    }
}

impl Response {
    /// A response with data and `9000`.
    pub fn ok(data: Vec<u8>) -> Self {
        Self {
            data,
            sw: StatusWord::OK,
        }
    }

    /// A bare status word.
    pub fn status(sw: StatusWord) -> Self {
        Self {
            data: Vec::new(),
            sw,
        }
    }

    /// Wire encoding: data then SW1 SW2.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }

    /// Parses a response (data + SW); `None` when shorter than two bytes.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let (data, sw) = bytes.split_last_chunk::<2>()?;
        Some(Self {
            data: data.to_vec(),
            sw: StatusWord(u16::from_be_bytes(*sw)),
        })
    }
}

impl From<StatusWord> for Response {
    fn from(sw: StatusWord) -> Self {
        Self::status(sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_only_and_bare_lc() {
        let c = Command::parse(&[0, 0xFD, 0, 0]).unwrap();
        assert!(c.data.is_empty() && c.le.is_none());
        let c = Command::parse(&[0, 0xFD, 0, 0, 0]).unwrap();
        assert!(c.data.is_empty());
        assert_eq!(c.le, Some(256));
    }

    #[test]
    fn short_with_and_without_le() {
        let c = Command::parse(&[0, 0xA4, 4, 0, 2, 0xAA, 0xBB]).unwrap();
        assert_eq!(c.data, [0xAA, 0xBB]);
        assert_eq!(c.le, None);
        let c = Command::parse(&[0, 0xA4, 4, 0, 2, 0xAA, 0xBB, 0]).unwrap();
        assert_eq!(c.le, Some(256));
        assert_eq!(
            Command::parse(&[0, 0xA4, 4, 0, 3, 0xAA, 0xBB]),
            Err(StatusWord::WRONG_LENGTH)
        );
        assert_eq!(
            Command::parse(&[0, 0xA4, 4, 0, 1, 0xAA, 0xBB, 0xCC]),
            Err(StatusWord::WRONG_LENGTH)
        );
    }

    #[test]
    fn extended() {
        let mut apdu = vec![0, 0xDB, 0x3F, 0xFF, 0, 0x01, 0x2C];
        apdu.extend(std::iter::repeat_n(7u8, 300));
        let c = Command::parse(&apdu).unwrap();
        assert_eq!(c.data.len(), 300);
        assert_eq!(c.to_bytes(), apdu);
        apdu.extend([0, 0]);
        assert_eq!(Command::parse(&apdu).unwrap().le, Some(65536));
        assert_eq!(
            Command::parse(&[0, 0xCB, 0x3F, 0xFF, 0, 0x10, 0x00])
                .unwrap()
                .le,
            Some(0x1000)
        );
    }

    #[test]
    fn too_short() {
        for n in 0..4 {
            assert_eq!(
                Command::parse(&[0u8; 4][..n]),
                Err(StatusWord::WRONG_LENGTH)
            );
        }
    }

    #[test]
    fn round_trip_short() {
        let c = Command {
            cla: 0x10,
            ins: 0x87,
            p1: 0x11,
            p2: 0x9a,
            data: vec![1, 2, 3],
            le: Some(256),
        };
        assert!(c.is_chained());
        assert_eq!(Command::parse(&c.to_bytes()).unwrap(), c);
    }
}
