//! The CTAP2 authenticator: one CTAP message in (command byte + CBOR), one
//! response out (status byte + CBOR), no I/O. The NFC framing around it is
//! in [`super::nfc`]; what it remembers is in [`super::state`].
//!
//! Commands: authenticatorMakeCredential (`01`), authenticatorGetAssertion
//! (`02`), authenticatorGetInfo (`04`), authenticatorClientPIN (`06`),
//! authenticatorReset (`07`), authenticatorGetNextAssertion (`08`) and
//! authenticatorSelection (`0B`), following CTAP 2.1 §6.

use super::cbor::{self, Map, Value};
use super::clock::{Clock, SystemClock};
use super::credential::{self, Alg, CredentialKey};
use super::pin::{PinSession, Protocol, PERM_GA, PERM_MC};
use super::state::{FidoState, Resident, MAX_RESIDENT, MIN_PIN_LENGTH, PIN_RETRIES};
use super::status::Status;
use crate::touch::{PendingTouch, TouchControl, TouchOutcome};
use p256::ecdsa::signature::Signer;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Largest CTAP message accepted (getInfo `maxMsgSize`, as a YubiKey 5).
pub const MAX_MSG_SIZE: usize = 1200;

/// authenticatorReset is only allowed this soon after power-up.
pub const RESET_WINDOW: Duration = Duration::from_secs(10);

/// How long the credentials of a getAssertion stay available to
/// authenticatorGetNextAssertion after the last of those two commands
/// (CTAP 2.1 §6.3: 30 seconds).
pub const NEXT_ASSERTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Most wrong PINs in a row before a power cycle is needed.
pub const MAX_CONSECUTIVE_PIN_FAILURES: u8 = 3;

/// Longest user handle (CTAP 2.1: 64 bytes).
const MAX_USER_ID: usize = 64;

/// Firmware version reported in getInfo.
const FIRMWARE_VERSION: i64 = 0x05_07_01;

const CMD_MAKE_CREDENTIAL: u8 = 0x01;
const CMD_GET_ASSERTION: u8 = 0x02;
const CMD_GET_INFO: u8 = 0x04;
const CMD_CLIENT_PIN: u8 = 0x06;
const CMD_RESET: u8 = 0x07;
const CMD_GET_NEXT_ASSERTION: u8 = 0x08;
const CMD_SELECTION: u8 = 0x0B;

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

/// How this command may collect user presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Block until the touch is given, refused or timed out.
    Block,
    /// Do not wait: if the touch is not immediately there, hand back a
    /// [`PendingTouch`] so the framing layer can answer "still waiting".
    Defer,
    /// The touch for this command was already collected.
    Granted,
    /// The touch was collected and used by this command.
    Used,
}

/// The result of one CTAP message.
#[derive(Debug)]
pub enum Outcome {
    /// The response: status byte, then CBOR.
    Done(Vec<u8>),
    /// The command waits for a touch (only with [`Presence::Defer`]).
    NeedsTouch(PendingTouch),
}

enum Fail {
    Status(Status),
    Touch(PendingTouch),
}

impl From<Status> for Fail {
    fn from(s: Status) -> Self {
        Self::Status(s)
    }
}

type Reply = Result<Option<Value>, Fail>;

/// Credentials still to be returned by authenticatorGetNextAssertion.
struct NextAssertions {
    rp_id_hash: [u8; 32],
    client_data_hash: Vec<u8>,
    flags: u8,
    uv: bool,
    remaining: VecDeque<Resident>,
    /// When getAssertion or the last getNextAssertion answered.
    last_call: Instant,
}

/// The CTAP2 authenticator of the virtual key.
pub struct Authenticator {
    state: Arc<Mutex<FidoState>>,
    state_path: Option<PathBuf>,
    touch: TouchControl,
    clock: Arc<dyn Clock>,
    pin: PinSession,
    powered_at: Instant,
    next: Option<NextAssertions>,
    dirty: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("state_path", &self.state_path)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<FidoState>) -> MutexGuard<'_, FidoState> {
    // A poisoned lock means a test thread panicked holding it; the state
    // itself is still consistent (every change is a plain field write).
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// An optional boolean option from an options map.
fn option(opts: Option<Map<'_>>, name: &str) -> Result<Option<bool>, Status> {
    opts.and_then(|m| m.get_text(name))
        .map(cbor::as_bool)
        .transpose()
}

impl Authenticator {
    /// An authenticator over `state`, saving it to `state_path` after
    /// every change.
    pub fn new(
        state: Arc<Mutex<FidoState>>,
        state_path: Option<PathBuf>,
        touch: TouchControl,
    ) -> Self {
        Self {
            state,
            state_path,
            touch,
            clock: Arc::new(SystemClock),
            pin: PinSession::new(),
            powered_at: Instant::now(),
            next: None,
            dirty: false,
        }
    }

    /// Replaces the clock the usage timers run on (tests move a
    /// [`super::clock::ManualClock`] instead of sleeping). Counts as a
    /// power cycle, so that no timer straddles two clocks.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
        self.power_cycle();
    }

    /// Power cycle: a new key agreement key, no token, the per-boot PIN
    /// failure count cleared, the reset window opens again.
    pub fn power_cycle(&mut self) {
        self.pin = PinSession::new();
        self.powered_at = self.clock.now();
        self.next = None;
    }

    /// The touch sensor.
    pub fn touch_control(&self) -> &TouchControl {
        &self.touch
    }

    /// Processes one CTAP message. Never panics, whatever the input.
    pub fn handle(&mut self, message: &[u8], presence: Presence) -> Outcome {
        let shared = self.state.clone();
        let mut state = lock(&shared);
        let mut result = self.dispatch(&mut state, message, presence);
        if self.dirty {
            self.dirty = false;
            if self.persist(&state).is_err() {
                // What the answer depends on (a signature counter, a new
                // PIN, a credential) did not reach the disk: the command
                // fails rather than hand out something a restart forgets.
                result = Err(Status::Other.into());
            }
        }
        match result {
            Ok(None) => Outcome::Done(vec![Status::Ok.to_byte()]),
            Ok(Some(value)) => {
                let mut out = vec![Status::Ok.to_byte()];
                out.extend(cbor::encode(&value));
                Outcome::Done(out)
            }
            Err(Fail::Status(status)) => Outcome::Done(vec![status.to_byte()]),
            Err(Fail::Touch(pending)) => Outcome::NeedsTouch(pending),
        }
    }

    /// Writes the state file now, if there is one.
    fn persist(&self, st: &FidoState) -> Result<(), Status> {
        let Some(path) = &self.state_path else {
            return Ok(());
        };
        st.save(path).map_err(|e| {
            // CTAP has only a status byte for this; the operator sees why.
            eprintln!("virtual-yubikey: saving FIDO state failed: {e}");
            Status::Other
        })
    }

    fn dispatch(&mut self, st: &mut FidoState, message: &[u8], mut presence: Presence) -> Reply {
        let Some((&command, body)) = message.split_first() else {
            return Err(Status::InvalidLength.into());
        };
        if message.len() > MAX_MSG_SIZE {
            return Err(Status::RequestTooLarge.into());
        }
        if command != CMD_GET_NEXT_ASSERTION {
            self.next = None;
        }
        let params = if body.is_empty() {
            None
        } else {
            Some(cbor::decode(body)?)
        };
        let needs_params = |p: Option<Value>| p.ok_or(Status::MissingParameter);
        let no_params = |p: &Option<Value>| {
            if p.is_some() {
                Err(Status::InvalidLength)
            } else {
                Ok(())
            }
        };
        match command {
            CMD_GET_INFO => {
                no_params(&params)?;
                Ok(Some(self.get_info(st)))
            }
            CMD_MAKE_CREDENTIAL => {
                let params = needs_params(params)?;
                self.make_credential(st, &params, &mut presence)
            }
            CMD_GET_ASSERTION => {
                let params = needs_params(params)?;
                self.get_assertion(st, &params, &mut presence)
            }
            CMD_GET_NEXT_ASSERTION => {
                no_params(&params)?;
                self.get_next_assertion(st)
            }
            CMD_CLIENT_PIN => {
                let params = needs_params(params)?;
                self.client_pin(st, &params)
            }
            CMD_RESET => {
                no_params(&params)?;
                self.reset(st, &mut presence)
            }
            CMD_SELECTION => {
                no_params(&params)?;
                self.user_presence(&mut presence)?;
                Ok(None)
            }
            _ => Err(Status::InvalidCommand.into()),
        }
    }

    /// Collects user presence (a touch) once per command.
    fn user_presence(&mut self, presence: &mut Presence) -> Result<(), Fail> {
        let outcome = match *presence {
            Presence::Granted => {
                *presence = Presence::Used;
                return Ok(());
            }
            Presence::Block | Presence::Used => self.touch.request_outcome(),
            Presence::Defer => {
                let pending = self.touch.begin();
                match self.touch.wait(&pending, Duration::ZERO) {
                    Some(outcome) => outcome,
                    None => return Err(Fail::Touch(pending)),
                }
            }
        };
        match outcome {
            TouchOutcome::Approved => {
                *presence = Presence::Used;
                Ok(())
            }
            TouchOutcome::Denied => Err(Status::OperationDenied.into()),
            TouchOutcome::TimedOut => Err(Status::UserActionTimeout.into()),
        }
    }

    // ---- getInfo ---------------------------------------------------------

    fn get_info(&self, st: &FidoState) -> Value {
        let options = cbor::text_map(vec![
            ("rk", Value::Bool(true)),
            ("up", Value::Bool(true)),
            ("plat", Value::Bool(false)),
            ("clientPin", Value::Bool(st.pin_hash.is_some())),
            ("pinUvAuthToken", Value::Bool(true)),
            ("makeCredUvNotRqd", Value::Bool(true)),
        ]);
        let algorithm = |alg: i64| {
            cbor::text_map(vec![
                ("alg", cbor::int(alg)),
                ("type", cbor::text("public-key")),
            ])
        };
        cbor::int_map(vec![
            (
                0x01,
                Value::Array(vec![cbor::text("FIDO_2_0"), cbor::text("FIDO_2_1")]),
            ),
            (0x02, Value::Array(vec![cbor::text("credProtect")])),
            (0x03, cbor::bytes(&st.aaguid)),
            (0x04, options),
            (0x05, cbor::int(MAX_MSG_SIZE as i64)),
            (0x06, Value::Array(vec![cbor::int(2), cbor::int(1)])),
            (0x07, cbor::int(8)),
            (0x08, cbor::int(credential::ID_LEN as i64)),
            (
                0x09,
                Value::Array(vec![cbor::text("nfc"), cbor::text("usb")]),
            ),
            (
                0x0A,
                Value::Array(vec![
                    algorithm(credential::ES256),
                    algorithm(credential::EDDSA),
                ]),
            ),
            (0x0C, Value::Bool(false)),
            (0x0D, cbor::int(MIN_PIN_LENGTH as i64)),
            (0x0E, cbor::int(FIRMWARE_VERSION)),
            (
                0x14,
                cbor::int(MAX_RESIDENT.saturating_sub(st.residents.len()) as i64),
            ),
        ])
    }

    // ---- pinUvAuthParam checks shared by makeCredential / getAssertion ---

    /// Handles the zero-length pinUvAuthParam probe and the protocol
    /// parameter; returns the protocol to verify a real param with.
    fn pin_uv_prelude(
        &mut self,
        st: &FidoState,
        param: Option<&[u8]>,
        protocol: Option<i64>,
        presence: &mut Presence,
    ) -> Result<Option<Protocol>, Fail> {
        let Some(param) = param else {
            return Ok(None);
        };
        if param.is_empty() {
            // "Which authenticator?": a touch, then whether a PIN exists.
            self.user_presence(presence)?;
            return Err(if st.pin_hash.is_some() {
                Status::PinInvalid
            } else {
                Status::PinNotSet
            }
            .into());
        }
        let protocol = protocol.ok_or(Status::MissingParameter)?;
        Ok(Some(Protocol::from_number(protocol)?))
    }

    // ---- makeCredential --------------------------------------------------

    fn make_credential(
        &mut self,
        st: &mut FidoState,
        params: &Value,
        presence: &mut Presence,
    ) -> Reply {
        let m = Map::of(params)?;
        let client_data_hash = m.req_bytes(0x01)?;
        let rp = m.map(0x02)?.ok_or(Status::MissingParameter)?;
        let rp_id = rp.text_at("id")?.ok_or(Status::MissingParameter)?;
        rp.text_at("name")?;
        let user = m.map(0x03)?.ok_or(Status::MissingParameter)?;
        let user_id = user
            .get_text("id")
            .map(cbor::as_bytes)
            .transpose()?
            .ok_or(Status::MissingParameter)?;
        if user_id.len() > MAX_USER_ID {
            return Err(Status::InvalidLength.into());
        }
        let user_name = user.text_at("name")?;
        let display_name = user.text_at("displayName")?;
        let cred_params = m.array(0x04)?.ok_or(Status::MissingParameter)?;
        let mut alg = None;
        for item in cred_params {
            let p = Map::of(item)?;
            let kind = p.text_at("type")?.ok_or(Status::MissingParameter)?;
            let number = p
                .get_text("alg")
                .map(cbor::as_int)
                .transpose()?
                .ok_or(Status::MissingParameter)?;
            if alg.is_none() && kind == "public-key" {
                alg = Alg::from_cose(number);
            }
        }
        let alg = alg.ok_or(Status::UnsupportedAlgorithm)?;
        let exclude = m.array(0x05)?.unwrap_or_default();
        let exclude = exclude
            .iter()
            .map(credential::descriptor)
            .collect::<Result<Vec<_>, _>>()?;
        let extensions = m.map(0x06)?;
        let cred_protect = match extensions.and_then(|e| e.get_text("credProtect")) {
            None => None,
            Some(v) => match cbor::as_int(v)? {
                level @ 1..=3 => Some(level as u8),
                _ => return Err(Status::InvalidParameter.into()),
            },
        };
        let options = m.map(0x07)?;
        let rk = option(options, "rk")?.unwrap_or(false);
        if option(options, "up")? == Some(false) || option(options, "uv")? == Some(true) {
            return Err(Status::InvalidOption.into());
        }
        let param = m.bytes(0x08)?;
        let protocol = self.pin_uv_prelude(st, param, m.int(0x09)?, presence)?;
        if m.get(0x0A).is_some() {
            // Enterprise attestation is not offered (getInfo has no "ep").
            return Err(Status::InvalidParameter.into());
        }

        let uv = match (param, protocol) {
            (Some(param), Some(protocol)) => {
                let now = self.clock.now();
                self.pin
                    .check_token(protocol, client_data_hash, param, PERM_MC, rp_id, now)?;
                true
            }
            _ => {
                // makeCredUvNotRqd: only discoverable credentials need UV
                // once a PIN is set.
                if st.pin_hash.is_some() && rk {
                    return Err(Status::PuatRequired.into());
                }
                false
            }
        };

        let rp_id_hash = sha256(rp_id.as_bytes());
        for (kind, id) in &exclude {
            if *kind != "public-key" {
                continue;
            }
            let Some((facts, _)) = credential::open(&st.master, id, &rp_id_hash) else {
                continue;
            };
            if facts.discoverable && !st.residents.iter().any(|r| r.id == *id) {
                continue;
            }
            if facts.cred_protect == 3 && !uv {
                continue;
            }
            self.user_presence(presence)?;
            return Err(Status::CredentialExcluded.into());
        }

        self.user_presence(presence)?;

        let replaces = |r: &Resident| r.rp_id == rp_id && r.user_id == user_id;
        if rk && !st.residents.iter().any(replaces) && st.residents.len() >= MAX_RESIDENT {
            return Err(Status::KeyStoreFull.into());
        }
        let level = cred_protect.unwrap_or(1);
        let (id, key) = credential::create(&st.master, &rp_id_hash, alg, level, rk);
        if rk {
            st.residents.retain(|r| !replaces(r));
            st.residents.push(Resident {
                rp_id: rp_id.to_string(),
                id: id.clone(),
                user_id: user_id.to_vec(),
                user_name: user_name.map(str::to_string),
                display_name: display_name.map(str::to_string),
            });
        }
        // Never back to 0: relying parties read a counter that goes back as a
        // cloned key. A real key stops at the top as well.
        st.sign_count = st.sign_count.saturating_add(1);
        self.dirty = true;
        if uv {
            self.pin.token_used();
        }

        let mut flags = FLAG_UP | FLAG_AT;
        if uv {
            flags |= FLAG_UV;
        }
        let ext_out = cred_protect
            .map(|level| cbor::text_map(vec![("credProtect", cbor::int(i64::from(level)))]));
        if ext_out.is_some() {
            flags |= FLAG_ED;
        }
        let mut auth_data = rp_id_hash.to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&st.sign_count.to_be_bytes());
        auth_data.extend_from_slice(&st.aaguid);
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend(cbor::encode(&key.cose_public()));
        if let Some(ext) = &ext_out {
            auth_data.extend(cbor::encode(ext));
        }

        let signed = [auth_data.as_slice(), client_data_hash].concat();
        let sig: p256::ecdsa::DerSignature = st.attestation_key.sign(&signed);
        let att_stmt = cbor::text_map(vec![
            ("alg", cbor::int(credential::ES256)),
            ("sig", cbor::bytes(sig.as_bytes())),
            ("x5c", Value::Array(vec![cbor::bytes(&st.attestation_cert)])),
        ]);
        Ok(Some(cbor::int_map(vec![
            (0x01, cbor::text("packed")),
            (0x02, Value::Bytes(auth_data)),
            (0x03, att_stmt),
        ])))
    }

    // ---- getAssertion ----------------------------------------------------

    fn get_assertion(
        &mut self,
        st: &mut FidoState,
        params: &Value,
        presence: &mut Presence,
    ) -> Reply {
        let m = Map::of(params)?;
        let rp_id = m.text(0x01)?.ok_or(Status::MissingParameter)?;
        let client_data_hash = m.req_bytes(0x02)?;
        let allow = m.array(0x03)?;
        let allow = allow
            .map(|list| {
                list.iter()
                    .map(credential::descriptor)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        m.map(0x04)?;
        let options = m.map(0x05)?;
        if option(options, "rk")?.is_some() {
            return Err(Status::UnsupportedOption.into());
        }
        if option(options, "uv")? == Some(true) {
            return Err(Status::InvalidOption.into());
        }
        let up = option(options, "up")?.unwrap_or(true);
        let param = m.bytes(0x06)?;
        let protocol = self.pin_uv_prelude(st, param, m.int(0x07)?, presence)?;
        let uv = match (param, protocol) {
            (Some(param), Some(protocol)) => {
                let now = self.clock.now();
                self.pin
                    .check_token(protocol, client_data_hash, param, PERM_GA, rp_id, now)?;
                true
            }
            _ => false,
        };

        let rp_id_hash = sha256(rp_id.as_bytes());
        // (credential ID, resident entry if discoverable)
        let mut found: Vec<(Vec<u8>, Option<Resident>)> = Vec::new();
        // An empty allow list means "discover", as if it were absent.
        let from_allow_list = allow.as_ref().is_some_and(|a| !a.is_empty());
        if let Some(allow) = allow.filter(|a| !a.is_empty()) {
            for (kind, id) in allow {
                if kind != "public-key" {
                    continue;
                }
                let Some((facts, _)) = credential::open(&st.master, id, &rp_id_hash) else {
                    continue;
                };
                let resident = st.residents.iter().find(|r| r.id == id).cloned();
                if facts.discoverable && resident.is_none() {
                    continue;
                }
                if facts.cred_protect == 3 && !uv {
                    continue;
                }
                found.push((id.to_vec(), resident));
                break;
            }
        } else {
            for r in st.residents.iter().rev().filter(|r| r.rp_id == rp_id) {
                let Some((facts, _)) = credential::open(&st.master, &r.id, &rp_id_hash) else {
                    continue;
                };
                if facts.cred_protect >= 2 && !uv {
                    continue;
                }
                found.push((r.id.clone(), Some(r.clone())));
            }
        }
        if found.is_empty() {
            return Err(Status::NoCredentials.into());
        }
        if up {
            self.user_presence(presence)?;
            // A token used with user presence is spent; a silent probe
            // (up = false, as clients pre-flight allow lists) leaves it,
            // for as long as its usage timer allows (see `pin`).
            if uv {
                self.pin.token_used();
            }
        }
        let mut flags = 0;
        if up {
            flags |= FLAG_UP;
        }
        if uv {
            flags |= FLAG_UV;
        }
        let count = found.len();
        let mut found = found.into_iter();
        let Some((id, resident)) = found.next() else {
            return Err(Status::NoCredentials.into());
        };
        let mut response = self.assertion(
            st,
            &rp_id_hash,
            client_data_hash,
            flags,
            uv,
            &id,
            resident.as_ref(),
        )?;
        if !from_allow_list && count > 1 {
            if let Value::Map(entries) = &mut response {
                entries.push((cbor::int(0x05), cbor::int(count as i64)));
            }
            self.next = Some(NextAssertions {
                rp_id_hash,
                client_data_hash: client_data_hash.to_vec(),
                flags,
                uv,
                remaining: found.filter_map(|(_, r)| r).collect(),
                last_call: self.clock.now(),
            });
        }
        Ok(Some(response))
    }

    fn get_next_assertion(&mut self, st: &mut FidoState) -> Reply {
        let Some(mut next) = self.next.take() else {
            return Err(Status::NotAllowed.into());
        };
        let now = self.clock.now();
        if now.saturating_duration_since(next.last_call) > NEXT_ASSERTION_TIMEOUT {
            // Too late: the list is dropped (already taken), for good.
            return Err(Status::NotAllowed.into());
        }
        next.last_call = now;
        let Some(resident) = next.remaining.pop_front() else {
            return Err(Status::NotAllowed.into());
        };
        let response = self.assertion(
            st,
            &next.rp_id_hash,
            &next.client_data_hash,
            next.flags,
            next.uv,
            &resident.id,
            Some(&resident),
        )?;
        if !next.remaining.is_empty() {
            self.next = Some(next);
        }
        Ok(Some(response))
    }

    /// Signs one assertion and bumps the signature counter.
    #[allow(clippy::too_many_arguments)]
    fn assertion(
        &mut self,
        st: &mut FidoState,
        rp_id_hash: &[u8; 32],
        client_data_hash: &[u8],
        flags: u8,
        uv: bool,
        id: &[u8],
        resident: Option<&Resident>,
    ) -> Result<Value, Fail> {
        let key: CredentialKey = credential::open(&st.master, id, rp_id_hash)
            .map(|(_, key)| key)
            .ok_or(Status::Other)?;
        // Never back to 0: relying parties read a counter that goes back as a
        // cloned key. A real key stops at the top as well.
        st.sign_count = st.sign_count.saturating_add(1);
        self.dirty = true;
        let mut auth_data = rp_id_hash.to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&st.sign_count.to_be_bytes());
        let signature = key.sign(&[auth_data.as_slice(), client_data_hash].concat());
        let mut entries = vec![
            (
                0x01,
                cbor::text_map(vec![
                    ("id", cbor::bytes(id)),
                    ("type", cbor::text("public-key")),
                ]),
            ),
            (0x02, Value::Bytes(auth_data)),
            (0x03, Value::Bytes(signature)),
        ];
        if let Some(r) = resident {
            let mut user = vec![("id", cbor::bytes(&r.user_id))];
            if uv {
                if let Some(name) = &r.user_name {
                    user.push(("name", cbor::text(name)));
                }
                if let Some(name) = &r.display_name {
                    user.push(("displayName", cbor::text(name)));
                }
            }
            entries.push((0x04, cbor::text_map(user)));
        }
        Ok(cbor::int_map(entries))
    }

    // ---- clientPIN -------------------------------------------------------

    fn client_pin(&mut self, st: &mut FidoState, params: &Value) -> Reply {
        let m = Map::of(params)?;
        let protocol = m.int(0x01)?;
        let sub = m.int(0x02)?.ok_or(Status::MissingParameter)?;
        if sub == 0x01 {
            // getPINRetries: no protocol needed.
            let blocked = self.pin.consecutive_failures >= MAX_CONSECUTIVE_PIN_FAILURES;
            return Ok(Some(cbor::int_map(vec![
                (0x03, cbor::int(i64::from(st.pin_retries))),
                (0x04, Value::Bool(blocked)),
            ])));
        }
        if !matches!(sub, 0x02..=0x05 | 0x09) {
            return Err(Status::InvalidSubcommand.into());
        }
        let protocol = Protocol::from_number(protocol.ok_or(Status::MissingParameter)?)?;
        match sub {
            0x02 => Ok(Some(cbor::int_map(vec![(0x01, self.pin.key_agreement())]))),
            0x03 => self.set_pin(st, &m, protocol),
            0x04 => self.change_pin(st, &m, protocol),
            _ => self.get_pin_token(st, &m, protocol, sub == 0x09),
        }
    }

    fn set_pin(&mut self, st: &mut FidoState, m: &Map<'_>, protocol: Protocol) -> Reply {
        let key = m.get(0x03).ok_or(Status::MissingParameter)?;
        let param = m.req_bytes(0x04)?;
        let new_pin_enc = m.req_bytes(0x05)?;
        if st.pin_hash.is_some() {
            return Err(Status::PinAuthInvalid.into());
        }
        let shared = self.pin.shared_secret(protocol, key)?;
        if !shared.verify(new_pin_enc, param) {
            return Err(Status::PinAuthInvalid.into());
        }
        let hash = new_pin_hash(&shared, new_pin_enc)?;
        st.pin_hash = Some(hash);
        st.pin_retries = PIN_RETRIES;
        self.dirty = true;
        Ok(None)
    }

    fn change_pin(&mut self, st: &mut FidoState, m: &Map<'_>, protocol: Protocol) -> Reply {
        let key = m.get(0x03).ok_or(Status::MissingParameter)?;
        let param = m.req_bytes(0x04)?;
        let new_pin_enc = m.req_bytes(0x05)?;
        let pin_hash_enc = m.req_bytes(0x06)?;
        self.pin_usable(st)?;
        let shared = self.pin.shared_secret(protocol, key)?;
        if !shared.verify(&[new_pin_enc, pin_hash_enc].concat(), param) {
            return Err(Status::PinAuthInvalid.into());
        }
        self.check_pin(st, &shared, pin_hash_enc)?;
        let hash = new_pin_hash(&shared, new_pin_enc)?;
        st.pin_hash = Some(hash);
        self.pin.revoke_token();
        Ok(None)
    }

    fn get_pin_token(
        &mut self,
        st: &mut FidoState,
        m: &Map<'_>,
        protocol: Protocol,
        with_permissions: bool,
    ) -> Reply {
        let key = m.get(0x03).ok_or(Status::MissingParameter)?;
        let pin_hash_enc = m.req_bytes(0x06)?;
        let (permissions, rp_id) = if with_permissions {
            let permissions = m.int(0x09)?.ok_or(Status::MissingParameter)?;
            let rp_id = m.text(0x0A)?;
            let permissions = u8::try_from(permissions).map_err(|_| Status::InvalidParameter)?;
            if permissions == 0 {
                return Err(Status::InvalidParameter.into());
            }
            if permissions & !(PERM_MC | PERM_GA) != 0 {
                // Credential management, bio enrolment, large blobs and
                // authenticatorConfig are not offered.
                return Err(Status::UnauthorizedPermission.into());
            }
            if rp_id.is_none() {
                return Err(Status::MissingParameter.into());
            }
            (permissions, rp_id.map(str::to_string))
        } else {
            if m.get(0x09).is_some() || m.get(0x0A).is_some() {
                return Err(Status::InvalidParameter.into());
            }
            (PERM_MC | PERM_GA, None)
        };
        self.pin_usable(st)?;
        let shared = self.pin.shared_secret(protocol, key)?;
        self.check_pin(st, &shared, pin_hash_enc)?;
        let now = self.clock.now();
        let token = self.pin.issue_token(protocol, permissions, rp_id, now);
        Ok(Some(cbor::int_map(vec![(
            0x02,
            Value::Bytes(shared.encrypt(token.as_ref())),
        )])))
    }

    /// A PIN is set, not blocked, and not blocked for this power cycle.
    fn pin_usable(&self, st: &FidoState) -> Result<(), Status> {
        if st.pin_hash.is_none() {
            return Err(Status::PinNotSet);
        }
        if st.pin_retries == 0 {
            return Err(Status::PinBlocked);
        }
        if self.pin.consecutive_failures >= MAX_CONSECUTIVE_PIN_FAILURES {
            return Err(Status::PinAuthBlocked);
        }
        Ok(())
    }

    /// Checks the encrypted PIN hash. The try is counted and written to
    /// the state file before the comparison, as the spec requires: cutting
    /// the power after a wrong guess cannot win the try back, and if the
    /// count cannot be saved the PIN is not compared at all.
    fn check_pin(
        &mut self,
        st: &mut FidoState,
        shared: &super::pin::SharedSecret,
        pin_hash_enc: &[u8],
    ) -> Result<(), Status> {
        // The lower count stays in memory even if the save fails: a failed
        // save never gives a try back.
        st.pin_retries = st.pin_retries.saturating_sub(1);
        self.persist(st)?;
        self.dirty = true;
        let given = shared.decrypt(pin_hash_enc)?;
        let matches = st.pin_hash.as_ref().is_some_and(|stored| {
            given.len() == 16 && bool::from(given.as_slice().ct_eq(stored.as_ref()))
        });
        if !matches {
            self.pin.regenerate_key();
            self.pin.consecutive_failures = self.pin.consecutive_failures.saturating_add(1);
            return Err(if st.pin_retries == 0 {
                Status::PinBlocked
            } else if self.pin.consecutive_failures >= MAX_CONSECUTIVE_PIN_FAILURES {
                Status::PinAuthBlocked
            } else {
                Status::PinInvalid
            });
        }
        st.pin_retries = PIN_RETRIES;
        self.pin.consecutive_failures = 0;
        Ok(())
    }

    // ---- reset -----------------------------------------------------------

    fn reset(&mut self, st: &mut FidoState, presence: &mut Presence) -> Reply {
        // The window is checked when the request arrives, not after the touch.
        if *presence != Presence::Granted
            && self.clock.now().saturating_duration_since(self.powered_at) > RESET_WINDOW
        {
            return Err(Status::NotAllowed.into());
        }
        self.user_presence(presence)?;
        st.reset();
        self.pin = PinSession::new();
        self.dirty = true;
        Ok(None)
    }
}

/// Decrypts a newPinEnc, checks the PIN policy and returns the PIN's hash.
fn new_pin_hash(
    shared: &super::pin::SharedSecret,
    new_pin_enc: &[u8],
) -> Result<Zeroizing<[u8; 16]>, Status> {
    let padded = shared.decrypt(new_pin_enc)?;
    if padded.len() != 64 {
        return Err(Status::InvalidParameter);
    }
    let len = padded.iter().position(|b| *b == 0).unwrap_or(padded.len());
    if len == padded.len() || padded[len..].iter().any(|b| *b != 0) {
        return Err(Status::PinPolicyViolation);
    }
    let pin = std::str::from_utf8(&padded[..len]).map_err(|_| Status::PinPolicyViolation)?;
    if pin.chars().count() < MIN_PIN_LENGTH {
        return Err(Status::PinPolicyViolation);
    }
    let digest = Zeroizing::new(sha256(pin.as_bytes()));
    let mut hash = Zeroizing::new([0u8; 16]);
    hash.copy_from_slice(&digest[..16]);
    Ok(hash)
}

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
