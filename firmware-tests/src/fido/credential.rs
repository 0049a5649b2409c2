//! Credentials: their IDs, their keys, their COSE public keys and signatures.
//!
//! No private key ever leaves the card, not even wrapped. A credential ID is
//! `version ‖ algorithm ‖ credProtect ‖ discoverable ‖ nonce(16) ‖ tag(16)`,
//! where the tag is an HMAC-SHA-256 under the card's master secret over the
//! rest and the RP ID hash. The private key is derived from the same secret,
//! the nonce and the RP ID hash, so an ID is only usable on this card and for
//! the RP it was made for, and a reset (new master secret) voids them all.

use super::cbor::{self, Value};
use super::status::Status;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Signer;
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// COSE algorithm ES256 (ECDSA P-256 with SHA-256).
pub const ES256: i64 = -7;
/// COSE algorithm EdDSA (Ed25519 here).
pub const EDDSA: i64 = -8;

/// Length of a credential ID.
pub const ID_LEN: usize = 4 + 16 + 16;

const VERSION: u8 = 1;
const TAG_LABEL: &[u8] = b"signet-fido credential id";
const KEY_LABEL: &[u8] = b"signet-fido credential key";

/// A credential's signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// ES256.
    Es256,
    /// EdDSA over Ed25519.
    EdDsa,
}

impl Alg {
    /// From a COSE algorithm number, if supported.
    pub fn from_cose(alg: i64) -> Option<Self> {
        match alg {
            ES256 => Some(Self::Es256),
            EDDSA => Some(Self::EdDsa),
            _ => None,
        }
    }

    /// The COSE algorithm number.
    pub fn cose(self) -> i64 {
        match self {
            Self::Es256 => ES256,
            Self::EdDsa => EDDSA,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Es256 => 1,
            Self::EdDsa => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Es256),
            2 => Some(Self::EdDsa),
            _ => None,
        }
    }
}

/// What a valid credential ID says about its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdFacts {
    /// Signature algorithm.
    pub alg: Alg,
    /// credProtect level (1 to 3).
    pub cred_protect: u8,
    /// Whether it was made discoverable (resident).
    pub discoverable: bool,
}

fn hmac(secret: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length, so a 32-byte key is always accepted.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A credential's private key.
pub enum CredentialKey {
    /// ES256.
    Es256(p256::ecdsa::SigningKey),
    /// EdDSA.
    EdDsa(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialKey(..)")
    }
}

impl CredentialKey {
    fn derive(master: &[u8; 32], id: &[u8], rp_id_hash: &[u8; 32]) -> Option<Self> {
        let alg = Alg::from_code(*id.get(1)?)?;
        let seed = Zeroizing::new(hmac(master, &[KEY_LABEL, &id[..20], rp_id_hash]));
        match alg {
            // A seed ≥ the group order has probability ~2⁻³²; creation then
            // picks another nonce, so every issued ID derives a valid key.
            Alg::Es256 => p256::ecdsa::SigningKey::from_slice(seed.as_ref())
                .ok()
                .map(Self::Es256),
            Alg::EdDsa => Some(Self::EdDsa(ed25519_dalek::SigningKey::from_bytes(&seed))),
        }
    }

    /// The COSE_Key of the public key (CTAP2 canonical when encoded).
    pub fn cose_public(&self) -> Value {
        match self {
            Self::Es256(key) => {
                let point = key.verifying_key().to_sec1_point(false).to_bytes();
                cose_ec2(ES256, &point)
            }
            Self::EdDsa(key) => cbor::int_map(vec![
                (1, cbor::int(1)),
                (3, cbor::int(EDDSA)),
                (-1, cbor::int(6)),
                (-2, cbor::bytes(key.verifying_key().as_bytes())),
            ]),
        }
    }

    /// Signs `message`: a DER ECDSA signature or a raw Ed25519 one.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Es256(key) => {
                let sig: p256::ecdsa::DerSignature = key.sign(message);
                sig.as_bytes().to_vec()
            }
            Self::EdDsa(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(message).to_bytes().to_vec()
            }
        }
    }
}

/// A COSE EC2 P-256 key from an uncompressed SEC1 point (`04 ‖ x ‖ y`).
pub fn cose_ec2(alg: i64, sec1: &[u8]) -> Value {
    let (x, y) = match sec1 {
        [0x04, xy @ ..] if xy.len() == 64 => xy.split_at(32),
        _ => (&[][..], &[][..]),
    };
    cbor::int_map(vec![
        (1, cbor::int(2)),
        (3, cbor::int(alg)),
        (-1, cbor::int(1)),
        (-2, cbor::bytes(x)),
        (-3, cbor::bytes(y)),
    ])
}

/// Makes a new credential ID and its key for `rp_id_hash`.
pub fn create(
    master: &[u8; 32],
    rp_id_hash: &[u8; 32],
    alg: Alg,
    cred_protect: u8,
    discoverable: bool,
) -> (Vec<u8>, CredentialKey) {
    loop {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let mut id = vec![VERSION, alg.code(), cred_protect, u8::from(discoverable)];
        id.extend_from_slice(&nonce);
        let tag = hmac(master, &[TAG_LABEL, &id, rp_id_hash]);
        id.extend_from_slice(&tag[..16]);
        if let Some(key) = CredentialKey::derive(master, &id, rp_id_hash) {
            return (id, key);
        }
    }
}

/// Checks that `id` was made by this card for `rp_id_hash` and returns
/// what it says and its key; `None` for anything else.
pub fn open(
    master: &[u8; 32],
    id: &[u8],
    rp_id_hash: &[u8; 32],
) -> Option<(IdFacts, CredentialKey)> {
    if id.len() != ID_LEN || id[0] != VERSION {
        return None;
    }
    let (body, tag) = id.split_at(ID_LEN - 16);
    let expected = hmac(master, &[TAG_LABEL, body, rp_id_hash]);
    if !bool::from(tag.ct_eq(&expected[..16])) {
        return None;
    }
    let facts = IdFacts {
        alg: Alg::from_code(id[1])?,
        cred_protect: match id[2] {
            level @ 1..=3 => level,
            _ => return None,
        },
        discoverable: id[3] == 1,
    };
    Some((facts, CredentialKey::derive(master, id, rp_id_hash)?))
}

/// Extracts `(type, id)` from a PublicKeyCredentialDescriptor.
pub fn descriptor(value: &Value) -> Result<(&str, &[u8]), Status> {
    let map = cbor::Map::of(value)?;
    let kind = map.text_at("type")?.ok_or(Status::MissingParameter)?;
    let id = map
        .get_text("id")
        .map(cbor::as_bytes)
        .transpose()?
        .ok_or(Status::MissingParameter)?;
    Ok((kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn ids_bind_card_and_rp() {
        let master = [7u8; 32];
        let rp = [1u8; 32];
        for alg in [Alg::Es256, Alg::EdDsa] {
            let (id, key) = create(&master, &rp, alg, 2, true);
            let (facts, again) = open(&master, &id, &rp).unwrap();
            assert_eq!(
                facts,
                IdFacts {
                    alg,
                    cred_protect: 2,
                    discoverable: true
                }
            );
            assert_eq!(
                cbor::encode(&key.cose_public()),
                cbor::encode(&again.cose_public())
            );
            assert!(open(&master, &id, &[2u8; 32]).is_none(), "other RP");
            assert!(open(&[8u8; 32], &id, &rp).is_none(), "other card");
            let mut flipped = id.clone();
            flipped[2] = 3; // raising credProtect breaks the tag
            assert!(open(&master, &flipped, &rp).is_none());
            assert!(open(&master, &id[..ID_LEN - 1], &rp).is_none());
        }
    }

    #[test]
    fn signatures_verify() {
        let (_, key) = create(&[1; 32], &[2; 32], Alg::Es256, 1, false);
        let CredentialKey::Es256(sk) = &key else {
            panic!()
        };
        let sig = p256::ecdsa::DerSignature::from_bytes(&key.sign(b"msg")).unwrap();
        sk.verifying_key().verify(b"msg", &sig).unwrap();
        let (_, key) = create(&[1; 32], &[2; 32], Alg::EdDsa, 1, false);
        let CredentialKey::EdDsa(sk) = &key else {
            panic!()
        };
        let sig = ed25519_dalek::Signature::from_slice(&key.sign(b"msg")).unwrap();
        sk.verifying_key().verify(b"msg", &sig).unwrap();
    }
}
