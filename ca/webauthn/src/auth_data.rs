//! Authenticator data (WebAuthn §6.1): what the security key itself
//! signs — the relying party id hash, flags, counter, and at registration
//! the new credential.

use crate::cbor;
use crate::cose::CoseKey;
use crate::error::{Result, WebauthnError};

/// Largest authenticator data accepted (attested credential data with a
/// maximal credential id and an RSA key fits; extensions are small).
pub(crate) const MAX_AUTH_DATA: usize = 4096;
/// Largest credential id (WebAuthn §5.8.3).
pub(crate) const MAX_CREDENTIAL_ID: usize = 1023;

pub(crate) const FLAG_UP: u8 = 0x01;
pub(crate) const FLAG_UV: u8 = 0x04;
pub(crate) const FLAG_BE: u8 = 0x08;
pub(crate) const FLAG_BS: u8 = 0x10;
pub(crate) const FLAG_AT: u8 = 0x40;
pub(crate) const FLAG_ED: u8 = 0x80;

/// The credential a registration creates.
#[derive(Debug)]
pub(crate) struct AttestedCredential<'a> {
    pub(crate) aaguid: [u8; 16],
    pub(crate) credential_id: &'a [u8],
    /// The COSE_Key exactly as encoded in the authenticator data.
    pub(crate) public_key_cose: &'a [u8],
    pub(crate) public_key: CoseKey,
}

/// Parsed authenticator data.
#[derive(Debug)]
pub(crate) struct AuthData<'a> {
    pub(crate) rp_id_hash: &'a [u8],
    pub(crate) flags: u8,
    pub(crate) sign_count: u32,
    pub(crate) attested: Option<AttestedCredential<'a>>,
}

impl AuthData<'_> {
    pub(crate) fn user_present(&self) -> bool {
        self.flags & FLAG_UP != 0
    }

    pub(crate) fn user_verified(&self) -> bool {
        self.flags & FLAG_UV != 0
    }
}

/// Parses authenticator data; every byte must be accounted for by the
/// flags (no trailing data).
pub(crate) fn parse(data: &[u8]) -> Result<AuthData<'_>> {
    let bad = WebauthnError::InvalidAuthenticatorData;
    if data.len() > MAX_AUTH_DATA {
        return Err(WebauthnError::FieldTooLarge {
            field: "authenticator data",
            max: MAX_AUTH_DATA,
        });
    }
    if data.len() < 37 {
        return Err(bad("shorter than 37 bytes"));
    }
    let (rp_id_hash, rest) = data.split_at(32);
    let flags = rest[0];
    let sign_count = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
    let mut rest = &rest[5..];
    if flags & FLAG_BS != 0 && flags & FLAG_BE == 0 {
        return Err(bad(
            "backup state set on a credential that cannot be backed up",
        ));
    }
    let attested = if flags & FLAG_AT != 0 {
        if rest.len() < 18 {
            return Err(bad("attested credential data is truncated"));
        }
        let mut aaguid = [0u8; 16];
        aaguid.copy_from_slice(&rest[..16]);
        let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        rest = &rest[18..];
        if id_len > MAX_CREDENTIAL_ID {
            return Err(WebauthnError::CredentialIdTooLong);
        }
        if id_len == 0 || rest.len() < id_len {
            return Err(bad("the credential id is empty or truncated"));
        }
        let (credential_id, after_id) = rest.split_at(id_len);
        let mut after_key = after_id;
        let key_value = cbor::take_one(&mut after_key).ok_or(WebauthnError::InvalidCoseKey)?;
        let key_len = after_id.len() - after_key.len();
        let public_key = CoseKey::from_value(&key_value)?;
        rest = after_key;
        Some(AttestedCredential {
            aaguid,
            credential_id,
            public_key_cose: &after_id[..key_len],
            public_key,
        })
    } else {
        None
    };
    if flags & FLAG_ED != 0 {
        let ext = cbor::take_one(&mut rest).ok_or(bad("extension data is not CBOR"))?;
        if ext.as_map().is_none() {
            return Err(bad("extension data is not a CBOR map"));
        }
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the data its flags announce"));
    }
    Ok(AuthData {
        rp_id_hash,
        flags,
        sign_count,
        attested,
    })
}
