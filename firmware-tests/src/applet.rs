//! The PIV applet of a YubiKey 5 as a state machine over APDUs: bytes in,
//! bytes out. Its only I/O is saving the state file after a change, when it
//! was given one. [`Applet::process`] is what the card's dispatch
//! ([`crate::card`]), unit tests and the fuzz target call.
//!
//! Behaviour follows NIST SP 800-73-4 and Yubico's PIV extensions as a real
//! key shows them to the `yubikey` crate, yubico-piv-tool and ykcs11:
//! retry counters that block, PIN/touch policies enforced on every use,
//! management-key mutual authentication, attestation by the `f9` key, and
//! the status words a real key answers with, also for malformed input.

use crate::apdu::{Command, Response, StatusWord};
use crate::attest::{self, AttestedFacts};
use crate::keys::{Algorithm, MgmAlgorithm, MgmKey, PrivateKey};
use crate::state::{self, CardState, Origin, PinPolicy, Slot, TouchPolicy};
use crate::tlv::{self, Tlv};
use crate::touch::TouchControl;
use rand::Rng;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The PIV application identifier (prefix; hosts may send the full PIX).
pub const PIV_AID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];

/// The YubiKey management applet's identifier: selecting it leaves PIV,
/// which drops PIV's PIN and management-key authentication.
pub const MGMT_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];

/// The ATR of a YubiKey 5 NFC (offers T=1, which the `yubikey` crate requires).
pub const ATR: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

/// How long a cached touch stays valid.
pub const TOUCH_CACHE: Duration = Duration::from_secs(15);

/// Largest data object the applet stores (as on a YubiKey 5).
pub const MAX_OBJECT: usize = 3063;

/// Upper bound on the data gathered by command chaining.
const MAX_CHAIN: usize = 8192;

/// Largest response chunk before `61xx` chaining.
const CHUNK: usize = 256;

/// Objects SP 800-73-4 protects with the PIN: fingerprints, facial image,
/// printed information, iris images.
fn needs_pin_to_read(id: u32) -> bool {
    matches!(id, 0x5F_C103 | 0x5F_C108 | 0x5F_C109 | 0x5F_C121)
}

/// Key references that can hold an asymmetric key.
pub fn is_key_slot(slot: u8) -> bool {
    matches!(slot, 0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95)
}

/// Data objects a host may write: the PIV `5FC1xx` objects and Yubico's
/// `5FFFxx` range.
fn is_writable_object(id: u32) -> bool {
    matches!(id, 0x5F_C101..=0x5F_C123 | 0x5F_FF00..=0x5F_FF15)
}

#[derive(Debug)]
enum MgmChallenge {
    /// The card sent an encrypted witness; this is the plaintext.
    Witness(Vec<u8>),
    /// The card sent this challenge (one-way authentication).
    Challenge(Vec<u8>),
}

#[derive(Debug)]
struct Chain {
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
}

/// What the card forgets on reset or power-off.
#[derive(Debug, Default)]
struct Session {
    pin_verified: bool,
    /// Set by a successful VERIFY, consumed by one PIN-always operation.
    pin_fresh: bool,
    mgm_authenticated: bool,
    mgm_challenge: Option<MgmChallenge>,
    chain: Option<Chain>,
    /// Response bytes not yet fetched with GET RESPONSE.
    pending: Vec<u8>,
    /// The management applet is selected (PIV answers again after SELECT).
    mgmt_selected: bool,
    last_touch: Option<Instant>,
}

/// The virtual PIV applet.
#[derive(Debug)]
pub struct Applet {
    state: CardState,
    state_path: Option<PathBuf>,
    touch: TouchControl,
    session: Session,
    dirty: bool,
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    rand::rng().fill_bytes(&mut out);
    out
}

/// Result of a handler: a response or an error status word.
type Reply = Result<Response, StatusWord>;

impl Applet {
    /// An applet over `state`; with `state_path`, every change is saved there.
    pub fn new(state: CardState, state_path: Option<PathBuf>, touch: TouchControl) -> Self {
        Self {
            state,
            state_path,
            touch,
            session: Session::default(),
            dirty: false,
        }
    }

    /// The persistent state (for tests and the state file).
    pub fn state(&self) -> &CardState {
        &self.state
    }

    /// The touch sensor.
    pub fn touch_control(&self) -> &TouchControl {
        &self.touch
    }

    /// Card reset or power cycle: PIN verification, management-key
    /// authentication and any chained data are forgotten, as on a real key.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Processes one command APDU and returns the response APDU (data + SW).
    /// Never panics, whatever the input.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let response = match Command::parse(apdu) {
            Ok(cmd) => self.handle(cmd),
            Err(sw) => {
                self.session.chain = None;
                Response::status(sw)
            }
        };
        if self.dirty {
            self.dirty = false;
            if let Some(path) = &self.state_path {
                if let Err(e) = self.state.save(path) {
                    // The card cannot report this through PC/SC; the operator
                    // sees it on stderr and the in-memory state stays right.
                    eprintln!("virtual-yubikey: saving state failed: {e}");
                }
            }
        }
        response.to_bytes()
    }

    fn handle(&mut self, cmd: Command) -> Response {
        if cmd.ins == 0xC0 {
            return self.get_response();
        }
        self.session.pending.clear();
        if cmd.cla & !Command::CLA_CHAINING != 0 {
            self.session.chain = None;
            return StatusWord::CLA_NOT_SUPPORTED.into();
        }
        let cmd = match self.chain(cmd) {
            Ok(Some(cmd)) => cmd,
            Ok(None) => return Response::status(StatusWord::OK),
            Err(sw) => return sw.into(),
        };
        let reply = self.dispatch(&cmd);
        let response = reply.unwrap_or_else(Response::status);
        // An extended Le lets the whole answer go in one response; otherwise
        // (no Le, as the `yubikey` crate sends, or a short Le) 256-byte chunks.
        let limit = cmd.le.filter(|le| *le > CHUNK).unwrap_or(CHUNK);
        self.chunk(response, limit)
    }

    /// Gathers chained commands; returns the complete command when the
    /// final link arrives.
    fn chain(&mut self, cmd: Command) -> Result<Option<Command>, StatusWord> {
        let same = |c: &Chain| c.ins == cmd.ins && c.p1 == cmd.p1 && c.p2 == cmd.p2;
        if cmd.is_chained() {
            match &mut self.session.chain {
                Some(chain) if same(chain) => chain.data.extend_from_slice(&cmd.data),
                _ => {
                    self.session.chain = Some(Chain {
                        ins: cmd.ins,
                        p1: cmd.p1,
                        p2: cmd.p2,
                        data: cmd.data,
                    })
                }
            }
            if self
                .session
                .chain
                .as_ref()
                .is_some_and(|c| c.data.len() > MAX_CHAIN)
            {
                self.session.chain = None;
                return Err(StatusWord::WRONG_LENGTH);
            }
            return Ok(None);
        }
        match self.session.chain.take() {
            Some(mut chain) if same(&chain) => {
                chain.data.extend_from_slice(&cmd.data);
                if chain.data.len() > MAX_CHAIN {
                    return Err(StatusWord::WRONG_LENGTH);
                }
                Ok(Some(Command {
                    data: chain.data,
                    ..cmd
                }))
            }
            Some(_) => Err(StatusWord::LAST_COMMAND_EXPECTED),
            None => Ok(Some(cmd)),
        }
    }

    /// Splits a response longer than `limit` into chunks announced with
    /// `61xx`, the rest fetched with GET RESPONSE.
    fn chunk(&mut self, mut response: Response, limit: usize) -> Response {
        if response.data.len() <= limit {
            return response;
        }
        let rest = response.data.split_off(limit);
        let sw = StatusWord::bytes_remaining(rest.len());
        self.session.pending = rest;
        Response {
            data: response.data,
            sw: if response.sw == StatusWord::OK {
                sw
            } else {
                response.sw
            },
        }
    }

    fn get_response(&mut self) -> Response {
        if self.session.pending.is_empty() {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        }
        let take = self.session.pending.len().min(CHUNK);
        let rest = self.session.pending.split_off(take);
        let data = std::mem::replace(&mut self.session.pending, rest);
        let sw = if self.session.pending.is_empty() {
            StatusWord::OK
        } else {
            StatusWord::bytes_remaining(self.session.pending.len())
        };
        Response { data, sw }
    }

    fn dispatch(&mut self, cmd: &Command) -> Reply {
        if self.session.mgmt_selected && cmd.ins != 0xA4 {
            // Only the PIV applet is emulated; the management applet knows
            // none of its commands here.
            return Err(StatusWord::INS_NOT_SUPPORTED);
        }
        match cmd.ins {
            0xA4 => self.select(cmd),
            0xFD => Ok(Response::ok(self.state.info.firmware.to_vec())),
            0xF8 => Ok(Response::ok(self.state.info.serial.to_be_bytes().to_vec())),
            0x20 => self.verify(cmd),
            0x24 => self.change_reference(cmd),
            0x2C => self.reset_retry_counter(cmd),
            0xFA => self.set_pin_retries(cmd),
            0xFB => self.reset_applet(),
            0x87 => self.general_authenticate(cmd),
            0xFF => self.set_management_key(cmd),
            0x47 => self.generate(cmd),
            0xFE => self.import(cmd),
            0xCB => self.get_data(cmd),
            0xDB => self.put_data(cmd),
            0xF9 => self.attest(cmd),
            0xF7 => self.metadata(cmd),
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0x04 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        if cmd.data.starts_with(&MGMT_AID) {
            // Leaving PIV: its security status is gone, as on a real key
            // (the `yubikey` crate's `deauthenticate` relies on this).
            self.session = Session {
                mgmt_selected: true,
                ..Session::default()
            };
            let [major, minor, patch] = self.state.info.firmware;
            return Ok(Response::ok(
                format!("{major}.{minor}.{patch}").into_bytes(),
            ));
        }
        if cmd.data.len() < PIV_AID.len() || !cmd.data.starts_with(&PIV_AID) {
            return Err(StatusWord::NOT_FOUND);
        }
        self.session.mgmt_selected = false;
        // (Re)selecting the applet drops PIN verification: hosts rely on this
        // to read the retry counter (an empty VERIFY answers 9000 while
        // verified), as libykpiv and the `yubikey` crate do.
        self.session.pin_verified = false;
        self.session.pin_fresh = false;
        // Application property template: PIX, and the coexistent tag
        // allocation authority (the PIV AID), as a YubiKey answers.
        let mut apt = tlv::encode(0x4F, &[0x00, 0x00, 0x10, 0x00, 0x01, 0x00]);
        apt.extend(tlv::encode(0x79, &tlv::encode(0x4F, &PIV_AID)));
        Ok(Response::ok(tlv::encode(0x61, &apt)))
    }

    // ---- PIN and PUK -----------------------------------------------------

    fn verify(&mut self, cmd: &Command) -> Reply {
        if cmd.p2 != 0x80 {
            return Err(StatusWord::REFERENCE_NOT_FOUND);
        }
        match cmd.p1 {
            0xFF if cmd.data.is_empty() => {
                self.session.pin_verified = false;
                self.session.pin_fresh = false;
                return Ok(Response::status(StatusWord::OK));
            }
            0x00 => {}
            _ => return Err(StatusWord::INCORRECT_P1P2),
        }
        let pin = &mut self.state.pin;
        if cmd.data.is_empty() {
            // Status query: no try is spent.
            return if pin.left == 0 {
                Err(StatusWord::AUTH_BLOCKED)
            } else if self.session.pin_verified {
                Ok(Response::status(StatusWord::OK))
            } else {
                Err(StatusWord::retries_left(pin.left))
            };
        }
        if cmd.data.len() != 8 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        if pin.left == 0 {
            return Err(StatusWord::AUTH_BLOCKED);
        }
        self.dirty = true;
        if bool::from(cmd.data.as_slice().ct_eq(pin.value.as_slice())) {
            pin.left = pin.max;
            self.session.pin_verified = true;
            self.session.pin_fresh = true;
            Ok(Response::status(StatusWord::OK))
        } else {
            pin.left -= 1;
            self.session.pin_verified = false;
            self.session.pin_fresh = false;
            Err(StatusWord::retries_left(pin.left))
        }
    }

    /// Checks `given` against the PIN (`0x80`) or PUK (`0x81`), counting a
    /// failure.
    fn check_reference(&mut self, which: u8, given: &[u8]) -> Result<(), StatusWord> {
        let secret = if which == 0x80 {
            &mut self.state.pin
        } else {
            &mut self.state.puk
        };
        if secret.left == 0 {
            return Err(StatusWord::AUTH_BLOCKED);
        }
        self.dirty = true;
        if bool::from(given.ct_eq(secret.value.as_slice())) {
            secret.left = secret.max;
            Ok(())
        } else {
            secret.left -= 1;
            if which == 0x80 {
                self.session.pin_verified = false;
            }
            Err(StatusWord::retries_left(secret.left))
        }
    }

    /// A new PIN/PUK: 6–8 bytes, `FF`-padded.
    fn valid_new_value(value: &[u8]) -> bool {
        let len = value.iter().position(|b| *b == 0xFF).unwrap_or(value.len());
        len >= 6 && value[len..].iter().all(|b| *b == 0xFF)
    }

    fn change_reference(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 || !matches!(cmd.p2, 0x80 | 0x81) {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        if cmd.data.len() != 16 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let (old, new) = cmd.data.split_at(8);
        self.check_reference(cmd.p2, old)?;
        if !Self::valid_new_value(new) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let default = if cmd.p2 == 0x80 {
            state::DEFAULT_PIN
        } else {
            state::DEFAULT_PUK
        };
        let secret = if cmd.p2 == 0x80 {
            &mut self.state.pin
        } else {
            &mut self.state.puk
        };
        secret.value.copy_from_slice(new);
        secret.is_default = state::pad8(default).is_some_and(|d| d.as_slice() == new);
        Ok(Response::status(StatusWord::OK))
    }

    fn reset_retry_counter(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 || cmd.p2 != 0x80 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        if cmd.data.len() != 16 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let (puk, new_pin) = cmd.data.split_at(8);
        self.check_reference(0x81, puk)?;
        if !Self::valid_new_value(new_pin) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let pin = &mut self.state.pin;
        pin.value.copy_from_slice(new_pin);
        pin.left = pin.max;
        pin.is_default = state::pad8(state::DEFAULT_PIN).is_some_and(|d| d.as_slice() == new_pin);
        Ok(Response::status(StatusWord::OK))
    }

    fn set_pin_retries(&mut self, cmd: &Command) -> Reply {
        if !self.session.mgm_authenticated || !self.session.pin_verified {
            return Err(StatusWord::SECURITY_STATUS);
        }
        if cmd.p1 == 0 || cmd.p2 == 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        // As on a real key, PIN and PUK go back to their factory values.
        let reset = |value: &[u8], max: u8| state::Secret {
            value: state::pad8(value).unwrap_or_default(),
            max,
            left: max,
            is_default: true,
        };
        self.state.pin = reset(state::DEFAULT_PIN, cmd.p1);
        self.state.puk = reset(state::DEFAULT_PUK, cmd.p2);
        self.dirty = true;
        Ok(Response::status(StatusWord::OK))
    }

    fn reset_applet(&mut self) -> Reply {
        if self.state.pin.left != 0 || self.state.puk.left != 0 {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        self.state.reset();
        self.session = Session::default();
        self.dirty = true;
        Ok(Response::status(StatusWord::OK))
    }

    // ---- touch -----------------------------------------------------------

    fn require_touch(&mut self, cached: bool) -> Result<(), StatusWord> {
        if cached
            && self
                .session
                .last_touch
                .is_some_and(|t| t.elapsed() < TOUCH_CACHE)
        {
            return Ok(());
        }
        if self.touch.request() {
            self.session.last_touch = Some(Instant::now());
            Ok(())
        } else {
            Err(StatusWord::SECURITY_STATUS)
        }
    }

    // ---- management key and key operations ------------------------------

    fn general_authenticate(&mut self, cmd: &Command) -> Reply {
        let outer = Tlv::decode_single(&cmd.data).map_err(|_| StatusWord::INCORRECT_DATA)?;
        if outer.tag != 0x7C {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let inner = Tlv::decode_all(outer.value).map_err(|_| StatusWord::INCORRECT_DATA)?;
        if cmd.p2 == 0x9B {
            self.mgm_authenticate(cmd.p1, &inner)
        } else {
            self.key_operation(cmd.p1, cmd.p2, &inner)
        }
    }

    fn mgm_authenticate(&mut self, alg: u8, inner: &[Tlv<'_>]) -> Reply {
        let previous = self.session.mgm_challenge.take();
        let key = self.state.mgm.clone();
        if MgmAlgorithm::from_byte(alg) != Some(key.algorithm) {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let block = key.algorithm.block_len();
        let witness = tlv::find(inner, 0x80);
        let challenge = tlv::find(inner, 0x81);
        let response = tlv::find(inner, 0x82);
        match (witness, challenge, response) {
            // Step 1 of mutual authentication: the host asks for a witness.
            (Some([]), None, None) => {
                if key.touch {
                    self.require_touch(false)?;
                }
                let plain = random_bytes(block);
                let encrypted = key.encrypt_block(&plain)?;
                self.session.mgm_challenge = Some(MgmChallenge::Witness(plain));
                Ok(Response::ok(tlv::encode(
                    0x7C,
                    &tlv::encode(0x80, &encrypted),
                )))
            }
            // Step 2: decrypted witness + host challenge.
            (Some(w), Some(c), None) if !w.is_empty() => {
                let Some(MgmChallenge::Witness(plain)) = previous else {
                    return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
                };
                if c.len() != block || !bool::from(w.ct_eq(plain.as_slice())) {
                    self.session.mgm_authenticated = false;
                    return Err(StatusWord::SECURITY_STATUS);
                }
                self.session.mgm_authenticated = true;
                let answer = key.encrypt_block(c)?;
                Ok(Response::ok(tlv::encode(0x7C, &tlv::encode(0x82, &answer))))
            }
            // One-way authentication, step 1: the host asks for a challenge.
            (None, Some([]), None) => {
                if key.touch {
                    self.require_touch(false)?;
                }
                let plain = random_bytes(block);
                self.session.mgm_challenge = Some(MgmChallenge::Challenge(plain.clone()));
                Ok(Response::ok(tlv::encode(0x7C, &tlv::encode(0x81, &plain))))
            }
            // One-way, step 2: the host's encryption of the challenge.
            (None, None, Some(r)) if !r.is_empty() => {
                let Some(MgmChallenge::Challenge(plain)) = previous else {
                    return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
                };
                let expected = key.encrypt_block(&plain)?;
                if !bool::from(r.ct_eq(expected.as_slice())) {
                    self.session.mgm_authenticated = false;
                    return Err(StatusWord::SECURITY_STATUS);
                }
                self.session.mgm_authenticated = true;
                Ok(Response::status(StatusWord::OK))
            }
            _ => Err(StatusWord::INCORRECT_DATA),
        }
    }

    fn key_operation(&mut self, alg: u8, slot_id: u8, inner: &[Tlv<'_>]) -> Reply {
        if !is_key_slot(slot_id) {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let (pin_policy, touch_policy, key_alg) = match self.state.slots.get(&slot_id) {
            Some(slot) => (slot.pin_policy, slot.touch_policy, slot.key.algorithm()),
            None => return Err(StatusWord::NOT_FOUND),
        };
        if key_alg.to_byte() != alg {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        if tlv::find(inner, 0x82) != Some(&[]) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let (input, agree) = match (tlv::find(inner, 0x81), tlv::find(inner, 0x85)) {
            (Some(c), None) => (c, false),
            (None, Some(p)) => (p, true),
            _ => return Err(StatusWord::INCORRECT_DATA),
        };
        let pin_ok = match pin_policy {
            PinPolicy::Never => true,
            PinPolicy::Once => self.session.pin_verified,
            PinPolicy::Always => self.session.pin_verified && self.session.pin_fresh,
        };
        if !pin_ok {
            return Err(StatusWord::SECURITY_STATUS);
        }
        match touch_policy {
            TouchPolicy::Never => {}
            TouchPolicy::Always => self.require_touch(false)?,
            TouchPolicy::Cached => self.require_touch(true)?,
        }
        if pin_policy == PinPolicy::Always {
            self.session.pin_fresh = false;
        }
        let slot = self
            .state
            .slots
            .get(&slot_id)
            .ok_or(StatusWord::NOT_FOUND)?;
        let out = if agree {
            if matches!(
                key_alg,
                Algorithm::P256 | Algorithm::P384 | Algorithm::X25519
            ) {
                slot.key.agree_or_decrypt(input)?
            } else {
                return Err(StatusWord::INCORRECT_DATA);
            }
        } else if key_alg == Algorithm::X25519 {
            return Err(StatusWord::INCORRECT_DATA);
        } else {
            slot.key.sign(input)?
        };
        Ok(Response::ok(tlv::encode(0x7C, &tlv::encode(0x82, &out))))
    }

    fn require_mgm(&self) -> Result<(), StatusWord> {
        if self.session.mgm_authenticated {
            Ok(())
        } else {
            Err(StatusWord::SECURITY_STATUS)
        }
    }

    fn set_management_key(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0xFF || !matches!(cmd.p2, 0xFF | 0xFE) {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        self.require_mgm()?;
        let [alg, 0x9B, len, key @ ..] = cmd.data.as_slice() else {
            return Err(StatusWord::INCORRECT_DATA);
        };
        let alg = MgmAlgorithm::from_byte(*alg).ok_or(StatusWord::INCORRECT_DATA)?;
        if alg != MgmAlgorithm::TripleDes && !self.state.info.at_least([5, 4, 0]) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        if usize::from(*len) != key.len() {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let key = MgmKey::new(alg, key, cmd.p2 == 0xFE).ok_or(StatusWord::INCORRECT_DATA)?;
        self.state.mgm = key;
        self.dirty = true;
        Ok(Response::status(StatusWord::OK))
    }

    fn algorithm_supported(&self, alg: Algorithm) -> bool {
        !alg.needs_5_7() || self.state.info.at_least([5, 7, 0])
    }

    fn policies(&self, slot: u8, tlvs: &[Tlv<'_>]) -> Result<(PinPolicy, TouchPolicy), StatusWord> {
        let byte = |tag| match tlv::find(tlvs, tag) {
            None => Ok(0),
            Some([b]) => Ok(*b),
            Some(_) => Err(StatusWord::INCORRECT_DATA),
        };
        let pin = match byte(0xAA)? {
            0 => PinPolicy::default_for(slot),
            b => PinPolicy::from_byte(b).ok_or(StatusWord::INCORRECT_DATA)?,
        };
        let touch = match byte(0xAB)? {
            0 => TouchPolicy::Never,
            b => TouchPolicy::from_byte(b).ok_or(StatusWord::INCORRECT_DATA)?,
        };
        Ok((pin, touch))
    }

    fn generate(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        if !is_key_slot(cmd.p2) {
            return Err(StatusWord::WRONG_P1P2);
        }
        self.require_mgm()?;
        let outer = Tlv::decode_single(&cmd.data).map_err(|_| StatusWord::INCORRECT_DATA)?;
        if outer.tag != 0xAC {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let inner = Tlv::decode_all(outer.value).map_err(|_| StatusWord::INCORRECT_DATA)?;
        let alg = match tlv::find(&inner, 0x80) {
            Some([b]) => Algorithm::from_byte(*b).ok_or(StatusWord::INCORRECT_DATA)?,
            _ => return Err(StatusWord::INCORRECT_DATA),
        };
        if !self.algorithm_supported(alg) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let (pin_policy, touch_policy) = self.policies(cmd.p2, &inner)?;
        let key = PrivateKey::generate(alg).map_err(|_| StatusWord::UNKNOWN)?;
        let public = tlv::encode(0x7F49, &key.public_tlvs());
        self.state.slots.insert(
            cmd.p2,
            Slot {
                key,
                pin_policy,
                touch_policy,
                origin: Origin::Generated,
            },
        );
        self.dirty = true;
        Ok(Response::ok(public))
    }

    fn import(&mut self, cmd: &Command) -> Reply {
        if !is_key_slot(cmd.p2) {
            return Err(StatusWord::WRONG_P1P2);
        }
        self.require_mgm()?;
        let alg = Algorithm::from_byte(cmd.p1).ok_or(StatusWord::INCORRECT_P1P2)?;
        if !self.algorithm_supported(alg) {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let tlvs = Tlv::decode_all(&cmd.data).map_err(|_| StatusWord::INCORRECT_DATA)?;
        let (pin_policy, touch_policy) = self.policies(cmd.p2, &tlvs)?;
        let key = PrivateKey::import(alg, &tlvs)?;
        self.state.slots.insert(
            cmd.p2,
            Slot {
                key,
                pin_policy,
                touch_policy,
                origin: Origin::Imported,
            },
        );
        self.dirty = true;
        Ok(Response::status(StatusWord::OK))
    }

    // ---- data objects ----------------------------------------------------

    fn object_id(tag: &[u8]) -> Result<u32, StatusWord> {
        if tag.is_empty() || tag.len() > 3 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        Ok(tag.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    }

    fn get_data(&mut self, cmd: &Command) -> Reply {
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let tag = Tlv::decode_single(&cmd.data).map_err(|_| StatusWord::INCORRECT_DATA)?;
        if tag.tag != 0x5C {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let id = Self::object_id(tag.value)?;
        if id == 0x7E {
            // Discovery object: PIV AID and PIN usage policy (PIV PIN only).
            let mut value = tlv::encode(0x4F, &[0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0]);
            value.extend(tlv::encode(0x5F2F, &[0x40, 0x00]));
            return Ok(Response::ok(tlv::encode(0x7E, &value)));
        }
        if needs_pin_to_read(id) && !self.session.pin_verified {
            return Err(StatusWord::SECURITY_STATUS);
        }
        match self.state.objects.get(&id) {
            Some(value) => Ok(Response::ok(tlv::encode(0x53, value))),
            None => Err(StatusWord::NOT_FOUND),
        }
    }

    fn put_data(&mut self, cmd: &Command) -> Reply {
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        self.require_mgm()?;
        let (tag, rest) = Tlv::decode(&cmd.data).map_err(|_| StatusWord::INCORRECT_DATA)?;
        if tag.tag != 0x5C {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let id = Self::object_id(tag.value)?;
        if !is_writable_object(id) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let value = Tlv::decode_single(rest).map_err(|_| StatusWord::INCORRECT_DATA)?;
        if value.tag != 0x53 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        if value.value.len() > MAX_OBJECT {
            return Err(StatusWord::NOT_ENOUGH_MEMORY);
        }
        if value.value.is_empty() {
            self.state.objects.remove(&id);
        } else {
            self.state.objects.insert(id, value.value.to_vec());
        }
        self.dirty = true;
        Ok(Response::status(StatusWord::OK))
    }

    // ---- attestation and metadata ---------------------------------------

    fn attest(&mut self, cmd: &Command) -> Reply {
        if cmd.p2 != 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        if !is_key_slot(cmd.p1) {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let slot = self
            .state
            .slots
            .get(&cmd.p1)
            .ok_or(StatusWord::REFERENCE_NOT_FOUND)?;
        if slot.origin == Origin::Imported {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let f9_cert = self
            .state
            .f9_cert_der()
            .ok_or(StatusWord::REFERENCE_NOT_FOUND)?;
        let facts = AttestedFacts {
            slot: cmd.p1,
            firmware: self.state.info.firmware,
            serial: self.state.info.serial,
            pin_policy: slot.pin_policy.to_byte(),
            touch_policy: slot.touch_policy.to_byte(),
            form_factor: self.state.info.form_factor,
        };
        let der = attest::attest_slot(&self.state.f9_key, &f9_cert, &slot.key, facts)
            .map_err(|_| StatusWord::UNKNOWN)?;
        Ok(Response::ok(der))
    }

    fn metadata(&mut self, cmd: &Command) -> Reply {
        if !self.state.info.at_least([5, 3, 0]) {
            return Err(StatusWord::INS_NOT_SUPPORTED);
        }
        if cmd.p1 != 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let mut out = Vec::new();
        match cmd.p2 {
            0x80 | 0x81 => {
                let s = if cmd.p2 == 0x80 {
                    &self.state.pin
                } else {
                    &self.state.puk
                };
                out.extend(tlv::encode(0x01, &[0xFF]));
                out.extend(tlv::encode(0x05, &[u8::from(s.is_default)]));
                out.extend(tlv::encode(0x06, &[s.max, s.left]));
            }
            0x9B => {
                let m = &self.state.mgm;
                out.extend(tlv::encode(0x01, &[m.algorithm.to_byte()]));
                out.extend(tlv::encode(0x02, &[0x00, if m.touch { 2 } else { 1 }]));
                out.extend(tlv::encode(0x05, &[u8::from(m.is_default())]));
            }
            0xF9 => {
                let key = PrivateKey::P256(Box::new(self.state.f9_key.clone()));
                out.extend(tlv::encode(0x01, &[Algorithm::P256.to_byte()]));
                out.extend(tlv::encode(0x02, &[1, 1]));
                out.extend(tlv::encode(0x03, &[2]));
                out.extend(tlv::encode(0x04, &key.public_tlvs()));
            }
            slot if is_key_slot(slot) => {
                let s = self
                    .state
                    .slots
                    .get(&slot)
                    .ok_or(StatusWord::REFERENCE_NOT_FOUND)?;
                out.extend(tlv::encode(0x01, &[s.key.algorithm().to_byte()]));
                out.extend(tlv::encode(
                    0x02,
                    &[s.pin_policy.to_byte(), s.touch_policy.to_byte()],
                ));
                let origin = match s.origin {
                    Origin::Generated => 1,
                    Origin::Imported => 2,
                };
                out.extend(tlv::encode(0x03, &[origin]));
                out.extend(tlv::encode(0x04, &s.key.public_tlvs()));
            }
            _ => return Err(StatusWord::REFERENCE_NOT_FOUND),
        }
        Ok(Response::ok(out))
    }
}

#[cfg(test)]
#[path = "applet_tests.rs"]
mod tests;
