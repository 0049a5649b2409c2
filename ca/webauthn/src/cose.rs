//! COSE_Key (RFC 9052/9053) public keys and signature verification with
//! ring.

use ciborium::Value;
use ring::signature::{self, UnparsedPublicKey};

use crate::cbor;
use crate::error::{Result, WebauthnError};

/// COSE algorithm ES256: ECDSA P-256 with SHA-256.
pub const ES256: i64 = -7;
/// COSE algorithm EdDSA (Ed25519 here).
pub const EDDSA: i64 = -8;
/// COSE algorithm ES384: ECDSA P-384 with SHA-384.
pub const ES384: i64 = -35;
/// COSE algorithm RS256: RSASSA-PKCS1-v1_5 with SHA-256.
pub const RS256: i64 = -257;

/// The algorithms offered at registration (and so accepted there).
pub(crate) const OFFERED: [i64; 2] = [ES256, EDDSA];

/// A parsed credential public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Uncompressed SEC1 point, 65 bytes.
    P256(Vec<u8>),
    /// Uncompressed SEC1 point, 97 bytes.
    P384(Vec<u8>),
    Ed25519([u8; 32]),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

/// A COSE key with its algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CoseKey {
    pub(crate) alg: i64,
    pub(crate) key: PublicKey,
}

const KTY: i64 = 1;
const ALG: i64 = 3;
const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const KTY_RSA: i64 = 3;
const CRV_P256: i64 = 1;
const CRV_P384: i64 = 2;
const CRV_ED25519: i64 = 6;

impl CoseKey {
    /// Parses a COSE_Key from its CBOR value and checks that the key is
    /// valid for its algorithm (a point on the curve, a usable RSA key).
    pub(crate) fn from_value(value: &Value) -> Result<Self> {
        let bad = || WebauthnError::InvalidCoseKey;
        let map = cbor::int_map(value).ok_or_else(bad)?;
        let int = |label: i64| -> Result<i64> {
            map.get(&label)
                .and_then(|v| cbor::as_i64(v))
                .ok_or_else(bad)
        };
        let bytes = |label: i64| -> Result<&[u8]> {
            map.get(&label)
                .and_then(|v| v.as_bytes())
                .map(Vec::as_slice)
                .ok_or_else(bad)
        };
        let kty = int(KTY)?;
        let alg = int(ALG)?;
        let key = match (kty, alg) {
            (KTY_EC2, ES256) | (KTY_EC2, ES384) => {
                let (crv, len) = if alg == ES256 {
                    (CRV_P256, 32)
                } else {
                    (CRV_P384, 48)
                };
                if int(-1)? != crv {
                    return Err(bad());
                }
                let (x, y) = (bytes(-2)?, bytes(-3)?);
                if x.len() != len || y.len() != len {
                    return Err(bad());
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                if alg == ES256 {
                    p256::PublicKey::from_sec1_bytes(&point).map_err(|_| bad())?;
                    PublicKey::P256(point)
                } else {
                    p384::PublicKey::from_sec1_bytes(&point).map_err(|_| bad())?;
                    PublicKey::P384(point)
                }
            }
            (KTY_OKP, EDDSA) => {
                if int(-1)? != CRV_ED25519 {
                    return Err(bad());
                }
                let x: [u8; 32] = bytes(-2)?.try_into().map_err(|_| bad())?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| bad())?;
                if key.is_weak() {
                    return Err(bad());
                }
                PublicKey::Ed25519(x)
            }
            (KTY_RSA, RS256) => {
                let n = strip_leading_zeros(bytes(-1)?);
                let e = strip_leading_zeros(bytes(-2)?);
                // ring verifies 2048- to 8192-bit keys; refuse others now
                // rather than at every assertion.
                if !(256..=1024).contains(&n.len()) || e.is_empty() || e.len() > 4 {
                    return Err(bad());
                }
                PublicKey::Rsa {
                    n: n.to_vec(),
                    e: e.to_vec(),
                }
            }
            _ => return Err(bad()),
        };
        Ok(Self { alg, key })
    }

    /// Parses a COSE_Key from exactly `bytes`.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let value = cbor::from_slice_exact(bytes).ok_or(WebauthnError::InvalidCoseKey)?;
        Self::from_value(&value)
    }

    /// Whether `sig` is this key's signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match &self.key {
            PublicKey::P256(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
                    .verify(message, sig)
                    .is_ok()
            }
            PublicKey::P384(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_ASN1, point)
                    .verify(message, sig)
                    .is_ok()
            }
            PublicKey::Ed25519(x) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok(),
            PublicKey::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
        }
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}
