//! The FIDO2 (CTAP 2.1) applet of the virtual YubiKey, over PC/SC.
//!
//! A real YubiKey 5 speaks FIDO over HID on USB and over ISO 7816 APDUs on
//! NFC; the virtual key offers the NFC form on the same card as the PIV
//! applet (selected by [`FIDO_AID`]), so a client's real CTAP2 code runs
//! against it through pcscd. Layers, one job each:
//!
//! | module | job |
//! | --- | --- |
//! | [`nfc`] | APDU framing: SELECT, NFCCTAP_MSG, chaining, `61xx`, GETRESPONSE keep-alive |
//! | [`authenticator`] | the CTAP2 commands, no I/O |
//! | [`cbor`] | strict CBOR decoding, CTAP2 canonical encoding |
//! | [`clock`] | the injectable clock of the token and assertion timers |
//! | [`credential`] | credential IDs, keys, COSE keys, signatures |
//! | [`pin`] | PIN/UV auth protocols 1 and 2, the pinUvAuthToken |
//! | [`state`] | what survives a power cycle, JSON persistence |
//! | [`status`] | CTAP status codes |
//!
//! Attestation is "packed", by a P-256 key whose certificate the
//! emulator's attestation root issues (see
//! [`crate::attest::AttestationRoot::issue_fido_attestation`]).

pub mod authenticator;
pub mod cbor;
pub mod client;
pub mod clock;
pub mod credential;
pub mod nfc;
pub mod pin;
pub mod state;
pub mod status;

pub use nfc::{FidoApplet, FIDO_AID};

use crate::attest::AttestationRoot;
use crate::touch::TouchControl;
use crate::Result;
use authenticator::Authenticator;
use sha2::{Digest, Sha256};
use state::{FidoState, PIN_RETRIES};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use zeroize::Zeroizing;

/// A handle on the FIDO applet's state from outside the card (tests, the
/// harness): read the PIN counters, preset a PIN, count credentials.
/// Clones share the same state.
#[derive(Debug, Clone)]
pub struct FidoControl {
    state: Arc<Mutex<FidoState>>,
    path: Option<PathBuf>,
}

impl FidoControl {
    fn lock(&self) -> MutexGuard<'_, FidoState> {
        // A poisoned lock means a test thread panicked holding it; the
        // state is plain data and still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// PIN retries left (8 when fresh, 0 when blocked).
    pub fn pin_retries(&self) -> u8 {
        self.lock().pin_retries
    }

    /// Whether a PIN is set.
    pub fn pin_is_set(&self) -> bool {
        self.lock().pin_hash.is_some()
    }

    /// Sets the PIN directly (as if a client had), with full retries.
    pub fn set_pin(&self, pin: &str) -> Result<()> {
        let digest = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(pin.as_bytes())));
        let mut hash = Zeroizing::new([0u8; 16]);
        hash.copy_from_slice(&digest[..16]);
        let mut state = self.lock();
        state.pin_hash = Some(hash);
        state.pin_retries = PIN_RETRIES;
        self.save(&state)
    }

    /// Sets the retry counter (e.g. to test blocking without 8 tries).
    pub fn set_pin_retries(&self, retries: u8) -> Result<()> {
        let mut state = self.lock();
        state.pin_retries = retries.min(PIN_RETRIES);
        self.save(&state)
    }

    /// The global signature counter.
    pub fn sign_count(&self) -> u32 {
        self.lock().sign_count
    }

    /// How many discoverable credentials the key holds.
    pub fn resident_count(&self) -> usize {
        self.lock().residents.len()
    }

    /// The attestation certificate (DER).
    pub fn attestation_cert(&self) -> Vec<u8> {
        self.lock().attestation_cert.clone()
    }

    fn save(&self, state: &FidoState) -> Result<()> {
        match &self.path {
            Some(path) => state.save(path),
            None => Ok(()),
        }
    }
}

/// Builds the FIDO applet: from `state_file` if it exists, else fresh
/// (and saved there). Returns the applet and its control handle.
pub fn build(
    root: &AttestationRoot,
    serial: u32,
    state_file: Option<&Path>,
    touch: TouchControl,
) -> Result<(FidoApplet, FidoControl)> {
    let state = match state_file {
        Some(path) if path.exists() => FidoState::load(path)?,
        _ => {
            let state = FidoState::new(root, serial)?;
            if let Some(path) = state_file {
                state.save(path)?;
            }
            state
        }
    };
    Ok(from_state(state, state_file, touch))
}

/// The FIDO applet over an existing `state` (saved to `state_file` after
/// every change, if given).
pub fn from_state(
    state: FidoState,
    state_file: Option<&Path>,
    touch: TouchControl,
) -> (FidoApplet, FidoControl) {
    let state = Arc::new(Mutex::new(state));
    let path = state_file.map(Path::to_path_buf);
    let control = FidoControl {
        state: state.clone(),
        path: path.clone(),
    };
    let applet = FidoApplet::new(Authenticator::new(state, path, touch));
    (applet, control)
}
