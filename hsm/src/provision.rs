//! Initialising a fresh token: label, SO PIN and user PIN, set through the
//! PKCS#11 API so that no PIN ever passes through a command line.
//!
//! Meant for software tokens and first-time setup; production HSMs are
//! usually initialised with their vendor's ceremony tools instead.

use std::path::Path;

use cryptoki::context::Pkcs11;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

use crate::token::load_module;
use crate::{Error, Pin, Result};

/// Initialises the first uninitialised slot of `module` as a token named
/// `label`, with `so_pin` for the security officer and `user_pin` for the
/// CA. Refuses if a token with that label already exists.
pub fn initialize_token(module: &Path, label: &str, so_pin: &Pin, user_pin: &Pin) -> Result<u64> {
    let ctx = load_module(module)?;
    let trim = |s: &str| s.trim_end_matches([' ', '\0']).to_owned();
    let mut free = None;
    for slot in ctx.get_slots_with_token()? {
        let info = ctx.get_token_info(slot)?;
        if info.token_initialized() {
            if trim(info.label()) == label {
                return Err(Error::TokenExists(label.to_owned()));
            }
        } else if free.is_none() {
            free = Some(slot);
        }
    }
    let slot = free.ok_or(Error::NoFreeSlot)?;
    let so = AuthPin::from(so_pin.expose());
    ctx.init_token(slot, &so, label)?;
    let slot = find_initialised(&ctx, label)?;
    let session = ctx.open_rw_session(slot)?;
    session.login(UserType::So, Some(&so))?;
    session.init_pin(&AuthPin::from(user_pin.expose()))?;
    session.logout()?;
    Ok(slot.id())
}

/// What a PKCS#11 module says it is (`CK_INFO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// `manufacturerID`, e.g. `SoftHSM`, `OpenSC Project`.
    pub manufacturer: String,
    /// `libraryDescription`.
    pub description: String,
}

impl ModuleInfo {
    /// Whether the module is SoftHSM2 (manufacturer `SoftHSM`).
    pub fn is_softhsm(&self) -> bool {
        self.manufacturer == "SoftHSM"
    }
}

/// Loads `module` and reads what it says it is.
pub fn module_info(module: &Path) -> Result<ModuleInfo> {
    let ctx = load_module(module)?;
    let info = ctx.get_library_info()?;
    let trim = |s: &str| s.trim_end_matches([' ', '\0']).to_owned();
    Ok(ModuleInfo {
        manufacturer: trim(info.manufacturer_id()),
        description: trim(info.library_description()),
    })
}

/// As [`initialize_token`], for throw-away tokens (tests, the qualification
/// program): refuses with [`Error::NotSoftHsm`] unless the module says it is
/// SoftHSM2, so a variable pointing at a real HSM's module can never get a
/// slot of that HSM initialised by a test.
pub fn initialize_softhsm_token(
    module: &Path,
    label: &str,
    so_pin: &Pin,
    user_pin: &Pin,
) -> Result<u64> {
    let info = module_info(module)?;
    if !info.is_softhsm() {
        return Err(Error::NotSoftHsm {
            module: module.to_path_buf(),
            manufacturer: info.manufacturer,
        });
    }
    initialize_token(module, label, so_pin, user_pin)
}

fn find_initialised(ctx: &Pkcs11, label: &str) -> Result<cryptoki::slot::Slot> {
    for slot in ctx.get_slots_with_token()? {
        let info = ctx.get_token_info(slot)?;
        if info.token_initialized() && info.label().trim_end_matches([' ', '\0']) == label {
            return Ok(slot);
        }
    }
    Err(Error::TokenNotFound {
        wanted: format!("token label {label:?} after initialisation"),
        present: "none".into(),
    })
}
