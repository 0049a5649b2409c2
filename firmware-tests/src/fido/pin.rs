//! PIN/UV auth protocols 1 and 2 (CTAP 2.1 §6.5.6, §6.5.7): the card's
//! key-agreement key, the shared secret with the platform, and the
//! pinUvAuthToken with its permissions.
//!
//! Protocol 1: shared secret SHA-256(Z); AES-256-CBC with a zero IV; HMAC
//! truncated to 16 bytes. Protocol 2: HKDF-SHA-256 gives separate HMAC and
//! AES keys; a random IV is prepended; full 32-byte HMACs.

use super::cbor::{Map, Value};
use super::credential::cose_ec2;
use super::status::Status;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use p256::elliptic_curve::Generate;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// COSE algorithm of the key-agreement key (ECDH-ES + HKDF-256).
pub const ECDH_ES_HKDF_256: i64 = -25;

/// Permission: makeCredential.
pub const PERM_MC: u8 = 0x01;
/// Permission: getAssertion.
pub const PERM_GA: u8 = 0x02;

/// A supported PIN/UV auth protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Protocol 1 (CTAP 2.0).
    One,
    /// Protocol 2 (CTAP 2.1, FIPS-friendly).
    Two,
}

impl Protocol {
    /// From the request's `pinUvAuthProtocol`; `INVALID_PARAMETER` otherwise.
    pub fn from_number(n: i64) -> Result<Self, Status> {
        match n {
            1 => Ok(Self::One),
            2 => Ok(Self::Two),
            _ => Err(Status::InvalidParameter),
        }
    }

    /// Whether `param` is the right MAC of `message` under `key`.
    pub fn verify(self, key: &[u8], message: &[u8], param: &[u8]) -> bool {
        let mac = hmac_sha256(key, &[message]);
        let expected = match self {
            Self::One => &mac[..16],
            Self::Two => &mac[..],
        };
        param.len() == expected.len() && bool::from(param.ct_eq(expected))
    }

    /// The MAC of `message` under `key`, as a platform computes it.
    pub fn authenticate(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        let mac = hmac_sha256(key, &[message]);
        match self {
            Self::One => mac[..16].to_vec(),
            Self::Two => mac.to_vec(),
        }
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of every length; the error arm is unreachable.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

type Enc = cbc::Encryptor<aes::Aes256>;
type Dec = cbc::Decryptor<aes::Aes256>;

/// The secret shared with one platform for one request.
pub struct SharedSecret {
    protocol: Protocol,
    hmac_key: Zeroizing<[u8; 32]>,
    aes_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedSecret({:?})", self.protocol)
    }
}

impl SharedSecret {
    /// Derives the shared secret from the ECDH x-coordinate `z`.
    pub fn derive(protocol: Protocol, z: &[u8]) -> Self {
        match protocol {
            Protocol::One => {
                let k: [u8; 32] = Sha256::digest(z).into();
                Self {
                    protocol,
                    hmac_key: Zeroizing::new(k),
                    aes_key: Zeroizing::new(k),
                }
            }
            Protocol::Two => {
                let hk = hkdf::Hkdf::<Sha256>::new(Some(&[0u8; 32]), z);
                let mut hmac_key = Zeroizing::new([0u8; 32]);
                let mut aes_key = Zeroizing::new([0u8; 32]);
                // 32 bytes is far below HKDF-SHA-256's 8160-byte limit.
                let _ = hk.expand(b"CTAP2 HMAC key", hmac_key.as_mut());
                let _ = hk.expand(b"CTAP2 AES key", aes_key.as_mut());
                Self {
                    protocol,
                    hmac_key,
                    aes_key,
                }
            }
        }
    }

    /// The protocol this secret belongs to.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Whether `param` authenticates `message` under this secret.
    pub fn verify(&self, message: &[u8], param: &[u8]) -> bool {
        self.protocol.verify(self.hmac_key.as_ref(), message, param)
    }

    /// The platform's side of [`SharedSecret::verify`].
    pub fn authenticate(&self, message: &[u8]) -> Vec<u8> {
        self.protocol.authenticate(self.hmac_key.as_ref(), message)
    }

    /// Encrypts whole blocks (PIN tokens are 32 bytes).
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut iv = [0u8; 16];
        if self.protocol == Protocol::Two {
            rand::rng().fill_bytes(&mut iv);
        }
        let mut buf = plaintext.to_vec();
        let len = buf.len();
        let ct = Enc::new((&*self.aes_key).into(), (&iv).into())
            .encrypt_padded::<NoPadding>(&mut buf, len)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        match self.protocol {
            Protocol::One => ct,
            Protocol::Two => [iv.as_slice(), &ct].concat(),
        }
    }

    /// Decrypts; `INVALID_PARAMETER` for lengths that are not whole blocks.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Status> {
        let (iv, body) = match self.protocol {
            Protocol::One => ([0u8; 16], ciphertext),
            Protocol::Two => {
                let (iv, body) = ciphertext
                    .split_first_chunk::<16>()
                    .ok_or(Status::InvalidParameter)?;
                (*iv, body)
            }
        };
        if body.is_empty() || body.len() % 16 != 0 {
            return Err(Status::InvalidParameter);
        }
        let mut buf = Zeroizing::new(body.to_vec());
        let len = Dec::new((&*self.aes_key).into(), (&iv).into())
            .decrypt_padded::<NoPadding>(buf.as_mut())
            .map(|pt| pt.len())
            .map_err(|_| Status::InvalidParameter)?;
        buf.truncate(len);
        Ok(buf)
    }
}

/// How long an issued pinUvAuthToken stays usable without being used
/// (CTAP 2.1 §6.5.2.1, the "initial usage time limit": at most 30 s). Each
/// use restarts this window (the rolling timer).
pub const INITIAL_USAGE_TIME_LIMIT: Duration = Duration::from_secs(30);

/// The longest a pinUvAuthToken lives however often it is used (CTAP 2.1's
/// "max usage time period", 10 minutes): silent (`up = false`) assertions,
/// which leave the token's permissions, cannot stretch it further.
pub const MAX_USAGE_TIME_PERIOD: Duration = Duration::from_secs(600);

/// The card's per-power-cycle PIN/UV auth state.
pub struct PinSession {
    key: p256::SecretKey,
    token: Zeroizing<[u8; 32]>,
    /// Permissions of the current token (0 = no token in use).
    permissions: u8,
    /// The PIN/UV auth protocol the token was issued under; it is verified
    /// with that protocol only.
    protocol: Protocol,
    /// The RP the token is bound to, once it has one.
    rp_id: Option<String>,
    /// When the token was issued (the max usage time period runs from here).
    issued_at: Instant,
    /// When the token was issued or last used (the rolling usage timer).
    last_used: Instant,
    /// Wrong PINs in a row since power-up (3 = blocked until power cycle).
    pub consecutive_failures: u8,
}

impl std::fmt::Debug for PinSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinSession")
            .field("permissions", &self.permissions)
            .field("consecutive_failures", &self.consecutive_failures)
            .finish_non_exhaustive()
    }
}

impl Default for PinSession {
    fn default() -> Self {
        Self::new()
    }
}

impl PinSession {
    /// Power-up: a fresh key-agreement key and token, no permissions.
    pub fn new() -> Self {
        let mut token = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(token.as_mut());
        Self {
            key: p256::SecretKey::generate_from_rng(&mut rand::rng()),
            token,
            permissions: 0,
            protocol: Protocol::Two,
            rp_id: None,
            issued_at: Instant::now(),
            last_used: Instant::now(),
            consecutive_failures: 0,
        }
    }

    /// A new key-agreement key (after a wrong PIN, as the spec asks).
    pub fn regenerate_key(&mut self) {
        self.key = p256::SecretKey::generate_from_rng(&mut rand::rng());
    }

    /// The key-agreement public key as a COSE_Key.
    pub fn key_agreement(&self) -> Value {
        let point = p256::ecdsa::VerifyingKey::from(self.key.public_key()).to_sec1_point(false);
        cose_ec2(ECDH_ES_HKDF_256, &point.to_bytes())
    }

    /// ECDH with the platform's COSE key; `INVALID_PARAMETER` for a key
    /// that is not a P-256 point.
    pub fn shared_secret(
        &self,
        protocol: Protocol,
        platform: &Value,
    ) -> Result<SharedSecret, Status> {
        let point = cose_p256_point(platform)?;
        let public =
            p256::PublicKey::from_sec1_bytes(&point).map_err(|_| Status::InvalidParameter)?;
        let z = p256::ecdh::diffie_hellman(self.key.to_nonzero_scalar(), public.as_affine());
        Ok(SharedSecret::derive(
            protocol,
            z.raw_secret_bytes().as_slice(),
        ))
    }

    /// Issues a new token under `protocol` with `permissions` (bound to
    /// `rp_id` if given) at `now` and returns it; every earlier token is
    /// void.
    pub fn issue_token(
        &mut self,
        protocol: Protocol,
        permissions: u8,
        rp_id: Option<String>,
        now: Instant,
    ) -> Zeroizing<[u8; 32]> {
        rand::rng().fill_bytes(self.token.as_mut());
        self.protocol = protocol;
        self.permissions = permissions;
        self.rp_id = rp_id;
        self.issued_at = now;
        self.last_used = now;
        self.token.clone()
    }

    /// Voids the current token (PIN change, reset, usage timer expiry).
    pub fn revoke_token(&mut self) {
        rand::rng().fill_bytes(self.token.as_mut());
        self.permissions = 0;
        self.rp_id = None;
    }

    /// Checks `param` over `message` with the current token at `now`: the
    /// request's protocol must be the token's, the usage timer must not
    /// have run out, the permission must be there and the RP must match
    /// (binding the token on first use). A good check restarts the rolling
    /// usage timer.
    pub fn check_token(
        &mut self,
        protocol: Protocol,
        message: &[u8],
        param: &[u8],
        permission: u8,
        rp_id: &str,
        now: Instant,
    ) -> Result<(), Status> {
        if self.permissions != 0
            && (now.saturating_duration_since(self.last_used) > INITIAL_USAGE_TIME_LIMIT
                || now.saturating_duration_since(self.issued_at) > MAX_USAGE_TIME_PERIOD)
        {
            // The usage timer ran out: the token is gone for good, as if
            // stopUsingPinUvAuthToken had run when it expired.
            self.revoke_token();
        }
        if self.permissions == 0
            || protocol != self.protocol
            || !self.protocol.verify(self.token.as_ref(), message, param)
        {
            return Err(Status::PinAuthInvalid);
        }
        if self.permissions & permission == 0 {
            return Err(Status::PinAuthInvalid);
        }
        match &self.rp_id {
            Some(bound) if bound != rp_id => return Err(Status::PinAuthInvalid),
            Some(_) => {}
            None => self.rp_id = Some(rp_id.to_string()),
        }
        self.last_used = now;
        Ok(())
    }

    /// After a makeCredential or getAssertion used the token with user
    /// presence: as on a CTAP 2.1 key, its permissions are spent.
    pub fn token_used(&mut self) {
        self.permissions = 0;
    }
}

/// The uncompressed SEC1 point of a COSE EC2 P-256 key.
fn cose_p256_point(value: &Value) -> Result<Vec<u8>, Status> {
    let map = Map::of(value)?;
    if map.int(1)? != Some(2) || map.int(-1)? != Some(1) {
        return Err(Status::InvalidParameter);
    }
    let x = map.bytes(-2)?.ok_or(Status::MissingParameter)?;
    let y = map.bytes(-3)?.ok_or(Status::MissingParameter)?;
    if x.len() != 32 || y.len() != 32 {
        return Err(Status::InvalidParameter);
    }
    Ok([&[0x04][..], x, y].concat())
}

/// The platform's half of a key agreement, for tests and benchmarks: an
/// ephemeral key, its COSE form, and the shared secret with the card.
pub fn platform_agree(
    protocol: Protocol,
    card_key: &Value,
) -> Result<(Value, SharedSecret), Status> {
    let point = cose_p256_point(card_key)?;
    let card = p256::PublicKey::from_sec1_bytes(&point).map_err(|_| Status::InvalidParameter)?;
    let mine = p256::SecretKey::generate_from_rng(&mut rand::rng());
    let z = p256::ecdh::diffie_hellman(mine.to_nonzero_scalar(), card.as_affine());
    let public = p256::ecdsa::VerifyingKey::from(mine.public_key()).to_sec1_point(false);
    let cose = cose_ec2(ECDH_ES_HKDF_256, &public.to_bytes());
    Ok((
        cose,
        SharedSecret::derive(protocol, z.raw_secret_bytes().as_slice()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fido::cbor;

    #[test]
    fn both_sides_agree_and_round_trip() {
        for protocol in [Protocol::One, Protocol::Two] {
            let card = PinSession::new();
            let (platform_key, platform) = platform_agree(protocol, &card.key_agreement()).unwrap();
            let shared = card.shared_secret(protocol, &platform_key).unwrap();
            let block = [9u8; 64];
            let ct = platform.encrypt(&block);
            assert_eq!(ct.len(), if protocol == Protocol::One { 64 } else { 80 });
            assert_eq!(shared.decrypt(&ct).unwrap().as_slice(), block);
            let mac = platform.authenticate(b"hello");
            assert!(shared.verify(b"hello", &mac));
            assert!(!shared.verify(b"hellO", &mac));
            assert!(!shared.verify(b"hello", &mac[..mac.len() - 1]));
            assert_eq!(
                shared.decrypt(&ct[..ct.len() - 1]).err(),
                Some(Status::InvalidParameter)
            );
        }
    }

    #[test]
    fn bad_platform_keys() {
        let card = PinSession::new();
        let not_on_curve = cbor::int_map(vec![
            (1, cbor::int(2)),
            (3, cbor::int(-25)),
            (-1, cbor::int(1)),
            (-2, cbor::bytes(&[1; 32])),
            (-3, cbor::bytes(&[2; 32])),
        ]);
        assert_eq!(
            card.shared_secret(Protocol::Two, &not_on_curve).err(),
            Some(Status::InvalidParameter)
        );
        assert_eq!(
            card.shared_secret(Protocol::Two, &cbor::int(3)).err(),
            Some(Status::CborUnexpectedType)
        );
    }

    #[test]
    fn token_permissions_and_rp_binding() {
        let mut s = PinSession::new();
        let now = Instant::now();
        let token = s.issue_token(Protocol::Two, PERM_GA, None, now);
        let mac = Protocol::Two.authenticate(token.as_ref(), b"cdh");
        assert_eq!(
            s.check_token(Protocol::Two, b"cdh", &mac, PERM_MC, "a.example", now),
            Err(Status::PinAuthInvalid)
        );
        s.check_token(Protocol::Two, b"cdh", &mac, PERM_GA, "a.example", now)
            .unwrap();
        assert_eq!(
            s.check_token(Protocol::Two, b"cdh", &mac, PERM_GA, "b.example", now),
            Err(Status::PinAuthInvalid)
        );
        s.token_used();
        assert_eq!(
            s.check_token(Protocol::Two, b"cdh", &mac, PERM_GA, "a.example", now),
            Err(Status::PinAuthInvalid)
        );
    }

    #[test]
    fn a_token_is_verified_only_under_the_protocol_it_was_issued_under() {
        let now = Instant::now();
        for (issued, other) in [
            (Protocol::Two, Protocol::One),
            (Protocol::One, Protocol::Two),
        ] {
            let mut s = PinSession::new();
            let token = s.issue_token(issued, PERM_GA, None, now);
            // The attack: a protocol-2 token presented with a 16-byte
            // protocol-1 MAC (or the other way round).
            let forged = other.authenticate(token.as_ref(), b"cdh");
            assert_eq!(
                s.check_token(other, b"cdh", &forged, PERM_GA, "a.example", now),
                Err(Status::PinAuthInvalid)
            );
            // Even a MAC of the right protocol is refused when the request
            // names another protocol.
            let right = issued.authenticate(token.as_ref(), b"cdh");
            assert_eq!(
                s.check_token(other, b"cdh", &right, PERM_GA, "a.example", now),
                Err(Status::PinAuthInvalid)
            );
            s.check_token(issued, b"cdh", &right, PERM_GA, "a.example", now)
                .unwrap();
        }
    }

    #[test]
    fn an_unused_token_expires_after_the_initial_usage_time_limit() {
        let start = Instant::now();
        let mut s = PinSession::new();
        let token = s.issue_token(Protocol::Two, PERM_GA, None, start);
        let mac = Protocol::Two.authenticate(token.as_ref(), b"cdh");
        let late = start + INITIAL_USAGE_TIME_LIMIT + Duration::from_secs(1);
        assert_eq!(
            s.check_token(Protocol::Two, b"cdh", &mac, PERM_GA, "a.example", late),
            Err(Status::PinAuthInvalid)
        );
        // Expired means gone: going back in time does not revive it.
        assert_eq!(
            s.check_token(Protocol::Two, b"cdh", &mac, PERM_GA, "a.example", start),
            Err(Status::PinAuthInvalid)
        );
    }

    #[test]
    fn uses_without_presence_cannot_keep_a_token_alive_past_the_max_period() {
        let start = Instant::now();
        let mut s = PinSession::new();
        let token = s.issue_token(Protocol::Two, PERM_GA, None, start);
        let mac = Protocol::Two.authenticate(token.as_ref(), b"cdh");
        // Used every 20 s (as silent up=false assertions would), each use
        // restarts the rolling timer, but never past the max usage period.
        let step = Duration::from_secs(20);
        let mut now = start;
        while now + step - start <= MAX_USAGE_TIME_PERIOD {
            now += step;
            s.check_token(Protocol::Two, b"cdh", &mac, PERM_GA, "a.example", now)
                .unwrap();
        }
        now += step;
        assert_eq!(
            s.check_token(Protocol::Two, b"cdh", &mac, PERM_GA, "a.example", now),
            Err(Status::PinAuthInvalid)
        );
    }
}
