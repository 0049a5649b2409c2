//! The platform side of CTAP2 over ISO 7816, as small as tests and the
//! benchmark need: SELECT, NFCCTAP_MSG with short-APDU chaining and `61xx`
//! collection, and the clientPIN steps (key agreement, setPIN, changePIN,
//! pinUvAuthToken). It drives the applet in-process (unit tests, the
//! property test) or a card through PC/SC (the conformance tests), through
//! any `FnMut(&[u8]) -> Vec<u8>` APDU transport.
//!
//! It is deliberately not a general client: the independent clients the
//! applet is tested against are python-fido2 and webauthn-authenticator-rs.

use super::cbor::{self, Map, Value};
use super::pin::{platform_agree, Protocol, SharedSecret};
use super::status::Status;
use super::FIDO_AID;
use crate::apdu::{Response, StatusWord};
use sha2::{Digest, Sha256};

/// Why a CTAP exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The card answered with this status word instead of `9000`.
    #[error("the card answered {0}")]
    Apdu(StatusWord),
    /// The authenticator answered with this CTAP status byte.
    #[error("CTAP status {0:02X}")]
    Ctap(u8),
    /// The answer was not what CTAP2 promises.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
}

impl From<Status> for ClientError {
    fn from(s: Status) -> Self {
        Self::Ctap(s.to_byte())
    }
}

impl ClientError {
    /// Whether this is the CTAP status `status`.
    pub fn is(&self, status: Status) -> bool {
        *self == Self::Ctap(status.to_byte())
    }
}

/// A CTAP2 client over an APDU transport.
pub struct CtapClient<T> {
    transport: T,
}

impl<T> std::fmt::Debug for CtapClient<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CtapClient")
    }
}

/// The parts of a makeCredential answer tests look at.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Authenticator data.
    pub auth_data: Vec<u8>,
    /// The new credential's ID.
    pub credential_id: Vec<u8>,
    /// The attestation statement (`fmt` is always "packed").
    pub att_stmt: Value,
}

impl<T: FnMut(&[u8]) -> Vec<u8>> CtapClient<T> {
    /// A client over `transport` (no SELECT sent yet).
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    /// Sends one APDU, collecting `61xx` chunks.
    pub fn apdu(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ClientError> {
        let mut response = Response::parse(&(self.transport)(apdu))
            .ok_or(ClientError::Malformed("short response"))?;
        let mut data = std::mem::take(&mut response.data);
        while response.sw.0 >> 8 == 0x61 {
            let le = (response.sw.0 & 0xFF) as u8;
            response = Response::parse(&(self.transport)(&[0x00, 0xC0, 0x00, 0x00, le]))
                .ok_or(ClientError::Malformed("short response"))?;
            data.append(&mut response.data);
        }
        if response.sw != StatusWord::OK {
            return Err(ClientError::Apdu(response.sw));
        }
        Ok(data)
    }

    /// SELECTs the FIDO applet; returns its version string.
    pub fn select(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, FIDO_AID.len() as u8];
        apdu.extend_from_slice(&FIDO_AID);
        self.apdu(&apdu)
    }

    /// Sends a raw CTAP message (command byte + CBOR) in short chained
    /// NFCCTAP_MSG APDUs; returns the raw answer (status byte + CBOR).
    pub fn raw(&mut self, message: &[u8]) -> Result<Vec<u8>, ClientError> {
        let mut chunks = message.chunks(240).peekable();
        if chunks.peek().is_none() {
            return self.apdu(&[0x80, 0x10, 0x00, 0x00, 0x00]);
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let mut apdu = vec![if last { 0x80 } else { 0x90 }, 0x10, 0x00, 0x00];
            apdu.push(chunk.len() as u8);
            apdu.extend_from_slice(chunk);
            if last {
                apdu.push(0x00);
                return self.apdu(&apdu);
            }
            self.apdu(&apdu)?;
        }
        Err(ClientError::Malformed("empty message"))
    }

    /// Sends a CTAP command; the CBOR answer, or the error status.
    pub fn call(
        &mut self,
        command: u8,
        params: Option<&Value>,
    ) -> Result<Option<Value>, ClientError> {
        let mut message = vec![command];
        if let Some(params) = params {
            message.extend(cbor::encode(params));
        }
        let answer = self.raw(&message)?;
        match answer.split_first() {
            Some((0, [])) => Ok(None),
            Some((0, body)) => Ok(Some(
                cbor::decode(body).map_err(|_| ClientError::Malformed("CBOR"))?,
            )),
            Some((status, _)) => Err(ClientError::Ctap(*status)),
            None => Err(ClientError::Malformed("empty CTAP answer")),
        }
    }

    /// authenticatorGetInfo.
    pub fn get_info(&mut self) -> Result<Value, ClientError> {
        self.call(0x04, None)?
            .ok_or(ClientError::Malformed("getInfo without body"))
    }

    /// clientPIN getPINRetries.
    pub fn pin_retries(&mut self) -> Result<i64, ClientError> {
        let answer = self.call(
            0x06,
            Some(&cbor::int_map(vec![(1, cbor::int(2)), (2, cbor::int(1))])),
        )?;
        let answer = answer.ok_or(ClientError::Malformed("no retries"))?;
        Map::of(&answer)?
            .int(3)?
            .ok_or(ClientError::Malformed("no retries"))
    }

    fn agree(&mut self, protocol: Protocol) -> Result<(Value, SharedSecret), ClientError> {
        let number = match protocol {
            Protocol::One => 1,
            Protocol::Two => 2,
        };
        let answer = self
            .call(
                0x06,
                Some(&cbor::int_map(vec![
                    (1, cbor::int(number)),
                    (2, cbor::int(2)),
                ])),
            )?
            .ok_or(ClientError::Malformed("no key agreement"))?;
        let map = Map::of(&answer)?;
        let key = map
            .get(1)
            .ok_or(ClientError::Malformed("no key agreement"))?;
        Ok(platform_agree(protocol, key)?)
    }

    fn protocol_number(protocol: Protocol) -> i64 {
        match protocol {
            Protocol::One => 1,
            Protocol::Two => 2,
        }
    }

    fn padded(pin: &str) -> [u8; 64] {
        let mut padded = [0u8; 64];
        let len = pin.len().min(64);
        padded[..len].copy_from_slice(&pin.as_bytes()[..len]);
        padded
    }

    fn pin_hash(pin: &str) -> [u8; 16] {
        let digest = Sha256::digest(pin.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        out
    }

    /// clientPIN setPIN.
    pub fn set_pin(&mut self, protocol: Protocol, pin: &str) -> Result<(), ClientError> {
        let (key, shared) = self.agree(protocol)?;
        let new_pin_enc = shared.encrypt(&Self::padded(pin));
        let param = shared.authenticate(&new_pin_enc);
        self.call(
            0x06,
            Some(&cbor::int_map(vec![
                (1, cbor::int(Self::protocol_number(protocol))),
                (2, cbor::int(3)),
                (3, key),
                (4, Value::Bytes(param)),
                (5, Value::Bytes(new_pin_enc)),
            ])),
        )?;
        Ok(())
    }

    /// clientPIN changePIN.
    pub fn change_pin(
        &mut self,
        protocol: Protocol,
        old: &str,
        new: &str,
    ) -> Result<(), ClientError> {
        let (key, shared) = self.agree(protocol)?;
        let new_pin_enc = shared.encrypt(&Self::padded(new));
        let pin_hash_enc = shared.encrypt(&Self::pin_hash(old));
        let param = shared.authenticate(&[new_pin_enc.as_slice(), &pin_hash_enc].concat());
        self.call(
            0x06,
            Some(&cbor::int_map(vec![
                (1, cbor::int(Self::protocol_number(protocol))),
                (2, cbor::int(4)),
                (3, key),
                (4, Value::Bytes(param)),
                (5, Value::Bytes(new_pin_enc)),
                (6, Value::Bytes(pin_hash_enc)),
            ])),
        )?;
        Ok(())
    }

    /// clientPIN getPinUvAuthTokenUsingPinWithPermissions (`0x09`), or
    /// getPinToken (`0x05`) when `permissions` is `None`. Returns the token.
    pub fn pin_token(
        &mut self,
        protocol: Protocol,
        pin: &str,
        permissions: Option<(u8, &str)>,
    ) -> Result<Vec<u8>, ClientError> {
        let (key, shared) = self.agree(protocol)?;
        let pin_hash_enc = shared.encrypt(&Self::pin_hash(pin));
        let mut params = vec![
            (1, cbor::int(Self::protocol_number(protocol))),
            (2, cbor::int(if permissions.is_some() { 9 } else { 5 })),
            (3, key),
            (6, Value::Bytes(pin_hash_enc)),
        ];
        if let Some((perms, rp_id)) = permissions {
            params.push((9, cbor::int(i64::from(perms))));
            params.push((10, cbor::text(rp_id)));
        }
        let answer = self
            .call(0x06, Some(&cbor::int_map(params)))?
            .ok_or(ClientError::Malformed("no token"))?;
        let encrypted = Map::of(&answer)?
            .bytes(2)?
            .ok_or(ClientError::Malformed("no token"))?;
        Ok(shared.decrypt(encrypted)?.to_vec())
    }

    /// authenticatorMakeCredential for `rp_id`, optionally discoverable and
    /// with a pinUvAuthParam made from `token`.
    pub fn make_credential(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
        alg: i64,
        rk: bool,
        token: Option<(Protocol, &[u8])>,
    ) -> Result<Registration, ClientError> {
        let mut params = vec![
            (1, cbor::bytes(client_data_hash)),
            (2, cbor::text_map(vec![("id", cbor::text(rp_id))])),
            (
                3,
                cbor::text_map(vec![
                    ("id", cbor::bytes(b"user-1")),
                    ("name", cbor::text("alice")),
                ]),
            ),
            (
                4,
                Value::Array(vec![cbor::text_map(vec![
                    ("alg", cbor::int(alg)),
                    ("type", cbor::text("public-key")),
                ])]),
            ),
        ];
        if rk {
            params.push((7, cbor::text_map(vec![("rk", Value::Bool(true))])));
        }
        if let Some((protocol, token)) = token {
            params.push((
                8,
                Value::Bytes(protocol.authenticate(token, client_data_hash)),
            ));
            params.push((9, cbor::int(Self::protocol_number(protocol))));
        }
        let answer = self
            .call(0x01, Some(&cbor::int_map(params)))?
            .ok_or(ClientError::Malformed("no attestation"))?;
        let map = Map::of(&answer)?;
        let auth_data = map
            .bytes(2)?
            .ok_or(ClientError::Malformed("no authData"))?
            .to_vec();
        let id_len = auth_data
            .get(53..55)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or(ClientError::Malformed("authData too short"))?;
        let credential_id = auth_data
            .get(55..55 + id_len)
            .ok_or(ClientError::Malformed("authData too short"))?
            .to_vec();
        let att_stmt = map
            .get(3)
            .cloned()
            .ok_or(ClientError::Malformed("no attStmt"))?;
        Ok(Registration {
            auth_data,
            credential_id,
            att_stmt,
        })
    }

    /// authenticatorGetAssertion with an allow list of `credential_id`
    /// (none: discoverable credentials). Returns the answer map.
    pub fn get_assertion(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
        credential_id: Option<&[u8]>,
        token: Option<(Protocol, &[u8])>,
    ) -> Result<Value, ClientError> {
        let mut params = vec![(1, cbor::text(rp_id)), (2, cbor::bytes(client_data_hash))];
        if let Some(id) = credential_id {
            params.push((
                3,
                Value::Array(vec![cbor::text_map(vec![
                    ("id", cbor::bytes(id)),
                    ("type", cbor::text("public-key")),
                ])]),
            ));
        }
        if let Some((protocol, token)) = token {
            params.push((
                6,
                Value::Bytes(protocol.authenticate(token, client_data_hash)),
            ));
            params.push((7, cbor::int(Self::protocol_number(protocol))));
        }
        self.call(0x02, Some(&cbor::int_map(params)))?
            .ok_or(ClientError::Malformed("no assertion"))
    }
}
