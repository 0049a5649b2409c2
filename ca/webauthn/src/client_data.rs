//! Collected client data (WebAuthn §5.8.1): what the browser or client
//! says about the ceremony — its type, the challenge, the origin.

use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::{Result, WebauthnError};
use crate::rp::RelyingParty;

/// Largest clientDataJSON accepted.
pub(crate) const MAX_CLIENT_DATA: usize = 4096;

/// The members the relying party checks; clients may add others
/// (WebAuthn reserves the right), which are ignored. `tokenBinding` is
/// ignored: Token Binding is dead and no client sends a usable one.
#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    type_: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
}

/// Checks clientDataJSON for a ceremony of `expected_type` over
/// `challenge` at one of `rp`'s origins.
pub(crate) fn check(
    json: &[u8],
    expected_type: &'static str,
    challenge: &[u8; 32],
    rp: &RelyingParty,
) -> Result<()> {
    if json.len() > MAX_CLIENT_DATA {
        return Err(WebauthnError::FieldTooLarge {
            field: "clientDataJSON",
            max: MAX_CLIENT_DATA,
        });
    }
    let data: ClientData =
        serde_json::from_slice(json).map_err(|_| WebauthnError::InvalidClientData)?;
    if data.type_ != expected_type {
        return Err(WebauthnError::WrongCeremonyType {
            expected: expected_type,
        });
    }
    let received = crate::b64::decode(&data.challenge).ok_or(WebauthnError::InvalidBase64 {
        field: "clientDataJSON.challenge",
    })?;
    if received.len() != challenge.len() || !bool::from(received.ct_eq(challenge)) {
        return Err(WebauthnError::ChallengeMismatch);
    }
    if !rp.allows_origin(&data.origin) {
        return Err(WebauthnError::OriginNotAllowed(printable(&data.origin)));
    }
    if data.cross_origin == Some(true) {
        return Err(WebauthnError::CrossOrigin);
    }
    Ok(())
}

/// A client-supplied string made safe for a message: quoted, escaped,
/// at most 100 characters.
fn printable(text: &str) -> String {
    let short: String = text.chars().take(100).collect();
    if short.len() < text.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}
