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
