//! Key material held by the virtual card: the asymmetric slot keys and the
//! symmetric management key, with exactly the operations the PIV applet
//! performs on them (raw RSA, ECDSA over a host-computed digest, ECDH,
//! Ed25519, X25519, block encryption for the management-key challenge).

use crate::apdu::StatusWord;
use crate::tlv;
use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use p256::elliptic_curve::Generate;
use rand::Rng;
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use signature::hazmat::PrehashSigner;
use spki::EncodePublicKey;
use zeroize::Zeroizing;

/// PIV asymmetric algorithm identifiers (the `80` tag / P1 byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// RSA-1024 (`06`).
    Rsa1024,
    /// RSA-2048 (`07`).
    Rsa2048,
    /// RSA-3072 (`05`, firmware 5.7).
    Rsa3072,
    /// RSA-4096 (`16`, firmware 5.7).
    Rsa4096,
    /// ECC P-256 (`11`).
    P256,
    /// ECC P-384 (`14`).
    P384,
    /// Ed25519 (`E0`, firmware 5.7).
    Ed25519,
    /// X25519 (`E1`, firmware 5.7).
    X25519,
}

impl Algorithm {
    /// Parses the algorithm byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x06 => Self::Rsa1024,
            0x07 => Self::Rsa2048,
            0x05 => Self::Rsa3072,
            0x16 => Self::Rsa4096,
            0x11 => Self::P256,
            0x14 => Self::P384,
            0xE0 => Self::Ed25519,
            0xE1 => Self::X25519,
            _ => return None,
        })
    }

    /// The algorithm byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Rsa1024 => 0x06,
            Self::Rsa2048 => 0x07,
            Self::Rsa3072 => 0x05,
            Self::Rsa4096 => 0x16,
            Self::P256 => 0x11,
            Self::P384 => 0x14,
            Self::Ed25519 => 0xE0,
            Self::X25519 => 0xE1,
        }
    }

    /// Whether the algorithm first appeared in firmware 5.7.
    pub fn needs_5_7(self) -> bool {
        matches!(
            self,
            Self::Rsa3072 | Self::Rsa4096 | Self::Ed25519 | Self::X25519
        )
    }

    fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa1024 => Some(1024),
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }
}

/// A private key in a PIV slot.
#[derive(Clone)]
pub enum PrivateKey {
    /// RSA of any supported size.
    Rsa(Box<RsaPrivateKey>),
    /// NIST P-256 (a signing key keeps its public key: no point
    /// multiplication per signature).
    P256(Box<p256::ecdsa::SigningKey>),
    /// NIST P-384.
    P384(Box<p384::ecdsa::SigningKey>),
    /// Ed25519 (seed).
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// X25519 (scalar).
    X25519(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?})", self.algorithm())
    }
}

fn crypto_err(e: impl std::fmt::Display) -> crate::Error {
    crate::Error::Crypto(e.to_string())
}

impl PrivateKey {
    /// Generates a fresh key on the "chip".
    pub fn generate(alg: Algorithm) -> crate::Result<Self> {
        let mut rng = rand::rng();
        Ok(match alg {
            Algorithm::P256 => Self::P256(Box::new(p256::ecdsa::SigningKey::generate_from_rng(
                &mut rng,
            ))),
            Algorithm::P384 => Self::P384(Box::new(p384::ecdsa::SigningKey::generate_from_rng(
                &mut rng,
            ))),
            Algorithm::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(seed.as_mut());
                Self::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            Algorithm::X25519 => {
                let mut k = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(k.as_mut());
                Self::X25519(k)
            }
            rsa_alg => {
                let bits = rsa_alg.rsa_bits().ok_or_else(|| crypto_err("not RSA"))?;
                Self::Rsa(Box::new(
                    RsaPrivateKey::new(&mut rng, bits).map_err(crypto_err)?,
                ))
            }
        })
    }

    /// Builds a key from IMPORT ASYMMETRIC KEY data (tags `01`–`05` for RSA
    /// CRT parameters, `06` EC scalar, `07` Ed25519 seed, `08` X25519 key).
    pub fn import(alg: Algorithm, tlvs: &[tlv::Tlv<'_>]) -> Result<Self, StatusWord> {
        let get = |tag| tlv::find(tlvs, tag).ok_or(StatusWord::INCORRECT_DATA);
        let bad = |_| StatusWord::INCORRECT_DATA;
        Ok(match alg {
            Algorithm::P256 => Self::P256(Box::new(
                p256::ecdsa::SigningKey::from_slice(get(0x06)?).map_err(bad)?,
            )),
            Algorithm::P384 => Self::P384(Box::new(
                p384::ecdsa::SigningKey::from_slice(get(0x06)?).map_err(bad)?,
            )),
            Algorithm::Ed25519 => {
                let seed: [u8; 32] = get(0x07)?
                    .try_into()
                    .map_err(|_| StatusWord::INCORRECT_DATA)?;
                Self::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            Algorithm::X25519 => {
                let k: [u8; 32] = get(0x08)?
                    .try_into()
                    .map_err(|_| StatusWord::INCORRECT_DATA)?;
                Self::X25519(Zeroizing::new(k))
            }
            rsa_alg => {
                let bits = rsa_alg.rsa_bits().ok_or(StatusWord::INCORRECT_DATA)?;
                let p = BoxedUint::from_be_slice_vartime(get(0x01)?);
                let q = BoxedUint::from_be_slice_vartime(get(0x02)?);
                let key = RsaPrivateKey::from_p_q(p, q, BoxedUint::from(65537u32))
                    .map_err(|_| StatusWord::INCORRECT_DATA)?;
                if key.size() * 8 != bits {
                    return Err(StatusWord::INCORRECT_DATA);
                }
                Self::Rsa(Box::new(key))
            }
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Rsa(k) => match k.size() * 8 {
                1024 => Algorithm::Rsa1024,
                3072 => Algorithm::Rsa3072,
                4096 => Algorithm::Rsa4096,
                _ => Algorithm::Rsa2048,
            },
            Self::P256(_) => Algorithm::P256,
            Self::P384(_) => Algorithm::P384,
            Self::Ed25519(_) => Algorithm::Ed25519,
            Self::X25519(_) => Algorithm::X25519,
        }
    }

    /// The public key as the card returns it inside `7F49`: `86 <point>` for
    /// EC and the 25519 curves, `81 <modulus> 82 <exponent>` for RSA.
    pub fn public_tlvs(&self) -> Vec<u8> {
        match self {
            Self::Rsa(k) => {
                let mut out = tlv::encode(0x81, &k.n_bytes());
                out.extend(tlv::encode(0x82, &k.e_bytes()));
                out
            }
            Self::P256(k) => tlv::encode(0x86, &k.verifying_key().to_sec1_point(false).to_bytes()),
            Self::P384(k) => tlv::encode(0x86, &k.verifying_key().to_sec1_point(false).to_bytes()),
            Self::Ed25519(k) => tlv::encode(0x86, k.verifying_key().as_bytes()),
            Self::X25519(k) => {
                let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(**k));
                tlv::encode(0x86, public.as_bytes())
            }
        }
    }

    /// DER SubjectPublicKeyInfo (for attestation certificates).
    pub fn spki_der(&self) -> crate::Result<Vec<u8>> {
        let doc = match self {
            Self::Rsa(k) => RsaPublicKey::from(k.as_ref()).to_public_key_der(),
            Self::P256(k) => k.verifying_key().to_public_key_der(),
            Self::P384(k) => k.verifying_key().to_public_key_der(),
            Self::Ed25519(k) => k.verifying_key().to_public_key_der(),
            Self::X25519(k) => {
                let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(**k));
                let spki = spki::SubjectPublicKeyInfoOwned {
                    algorithm: spki::AlgorithmIdentifierOwned {
                        oid: const_oid::ObjectIdentifier::new_unwrap("1.3.101.110"),
                        parameters: None,
                    },
                    subject_public_key: der::asn1::BitString::from_bytes(public.as_bytes())
                        .map_err(crypto_err)?,
                };
                return der::Encode::to_der(&spki).map_err(crypto_err);
            }
        };
        Ok(doc.map_err(crypto_err)?.as_bytes().to_vec())
    }

    /// The private operation behind GENERAL AUTHENTICATE `81` (challenge):
    /// raw RSA on a host-padded block, ECDSA over a host-computed digest
    /// (DER signature out), or Ed25519 over the whole message.
    pub fn sign(&self, input: &[u8]) -> Result<Vec<u8>, StatusWord> {
        match self {
            Self::Rsa(k) => rsa_raw(k, input),
            Self::P256(k) => {
                let digest = fit_digest(input, 32)?;
                let sig: p256::ecdsa::Signature = k
                    .sign_prehash(&digest)
                    .map_err(|_| StatusWord::INCORRECT_DATA)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Self::P384(k) => {
                let digest = fit_digest(input, 48)?;
                let sig: p384::ecdsa::Signature = k
                    .sign_prehash(&digest)
                    .map_err(|_| StatusWord::INCORRECT_DATA)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Self::Ed25519(k) => {
                let sig: ed25519_dalek::Signature = signature::Signer::sign(k.as_ref(), input);
                Ok(sig.to_bytes().to_vec())
            }
            Self::X25519(_) => Err(StatusWord::INCORRECT_DATA),
        }
    }

    /// RSA decryption (raw) or key agreement with a peer public key (`85`).
    pub fn agree_or_decrypt(&self, input: &[u8]) -> Result<Vec<u8>, StatusWord> {
        match self {
            Self::Rsa(k) => rsa_raw(k, input),
            Self::P256(k) => {
                let peer = p256::PublicKey::from_sec1_bytes(input)
                    .map_err(|_| StatusWord::INCORRECT_DATA)?;
                let shared = p256::ecdh::diffie_hellman(k.as_nonzero_scalar(), peer.as_affine());
                Ok(shared.raw_secret_bytes().to_vec())
            }
            Self::P384(k) => {
                let peer = p384::PublicKey::from_sec1_bytes(input)
                    .map_err(|_| StatusWord::INCORRECT_DATA)?;
                let shared = p384::ecdh::diffie_hellman(k.as_nonzero_scalar(), peer.as_affine());
                Ok(shared.raw_secret_bytes().to_vec())
            }
            Self::X25519(k) => {
                let peer: [u8; 32] = input.try_into().map_err(|_| StatusWord::INCORRECT_DATA)?;
                let secret = x25519_dalek::StaticSecret::from(**k);
                let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
                Ok(shared.as_bytes().to_vec())
            }
            Self::Ed25519(_) => Err(StatusWord::INCORRECT_DATA),
        }
    }

    /// Serialisable form (hex of PKCS#8 for RSA, raw secret bytes otherwise).
    pub fn to_stored(&self) -> crate::Result<StoredSecret> {
        let secret = match self {
            Self::Rsa(k) => {
                let doc =
                    rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(k.as_ref()).map_err(crypto_err)?;
                hex::encode(doc.as_bytes())
            }
            Self::P256(k) => hex::encode(k.to_bytes()),
            Self::P384(k) => hex::encode(k.to_bytes()),
            Self::Ed25519(k) => hex::encode(k.to_bytes()),
            Self::X25519(k) => hex::encode(k.as_ref()),
        };
        Ok(StoredSecret {
            algorithm: self.algorithm(),
            secret,
        })
    }

    /// Inverse of [`PrivateKey::to_stored`].
    pub fn from_stored(stored: &StoredSecret) -> crate::Result<Self> {
        let bytes = Zeroizing::new(hex::decode(&stored.secret).map_err(crypto_err)?);
        let arr32 = || -> crate::Result<[u8; 32]> {
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| crypto_err("bad key length"))
        };
        Ok(match stored.algorithm {
            Algorithm::P256 => Self::P256(Box::new(
                p256::ecdsa::SigningKey::from_slice(&bytes).map_err(crypto_err)?,
            )),
            Algorithm::P384 => Self::P384(Box::new(
                p384::ecdsa::SigningKey::from_slice(&bytes).map_err(crypto_err)?,
            )),
            Algorithm::Ed25519 => {
                Self::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&arr32()?)))
            }
            Algorithm::X25519 => Self::X25519(Zeroizing::new(arr32()?)),
            _ => Self::Rsa(Box::new(
                rsa::pkcs8::DecodePrivateKey::from_pkcs8_der(&bytes).map_err(crypto_err)?,
            )),
        })
    }
}

/// A private key as written to the state file (a test device: keys are
/// stored in the clear on purpose).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSecret {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Hex-encoded secret.
    pub secret: String,
}

/// Left-pads a short digest with zeros (as the YubiKey does) and rejects one
/// longer than the curve's field.
fn fit_digest(input: &[u8], field: usize) -> Result<Vec<u8>, StatusWord> {
    if input.is_empty() || input.len() > field {
        return Err(StatusWord::INCORRECT_DATA);
    }
    let mut out = vec![0u8; field - input.len()];
    out.extend_from_slice(input);
    Ok(out)
}

/// Raw RSA private operation; the input must be exactly the modulus length
/// and smaller than the modulus.
fn rsa_raw(key: &RsaPrivateKey, input: &[u8]) -> Result<Vec<u8>, StatusWord> {
    if input.len() != key.size() {
        return Err(StatusWord::WRONG_LENGTH);
    }
    let c = BoxedUint::from_be_slice(input, key.n().as_ref().bits_precision())
        .map_err(|_| StatusWord::INCORRECT_DATA)?;
    let m = rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut rand::rng()), &c)
        .map_err(|_| StatusWord::INCORRECT_DATA)?;
    let bytes = m.to_be_bytes();
    // Left-pad to the modulus length (the integer may be shorter).
    let mut out = vec![0u8; key.size().saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes[bytes.len().saturating_sub(key.size())..]);
    Ok(out)
}

/// Management-key algorithms (the P1 byte of GENERAL AUTHENTICATE on `9B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MgmAlgorithm {
    /// Triple-DES (`03`), 24-byte key.
    TripleDes,
    /// AES-128 (`08`).
    Aes128,
    /// AES-192 (`0A`), the default from firmware 5.7.
    Aes192,
    /// AES-256 (`0C`).
    Aes256,
}

impl MgmAlgorithm {
    /// Parses the algorithm byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x03 => Self::TripleDes,
            0x08 => Self::Aes128,
            0x0A => Self::Aes192,
            0x0C => Self::Aes256,
            _ => return None,
        })
    }

    /// The algorithm byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::TripleDes => 0x03,
            Self::Aes128 => 0x08,
            Self::Aes192 => 0x0A,
            Self::Aes256 => 0x0C,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::TripleDes | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }

    /// Cipher block length (= challenge length) in bytes.
    pub fn block_len(self) -> usize {
        match self {
            Self::TripleDes => 8,
            _ => 16,
        }
    }
}

/// The well-known default management key `010203040506070801020304050607080102030405060708`.
pub const DEFAULT_MGM_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

/// A management key: algorithm and secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct MgmKey {
    /// Algorithm.
    pub algorithm: MgmAlgorithm,
    /// Hex-encoded key.
    key: String,
    /// Whether using the key needs a touch (SET MANAGEMENT KEY P2 `FE`).
    pub touch: bool,
}

impl std::fmt::Debug for MgmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MgmKey({:?}, touch: {})", self.algorithm, self.touch)
    }
}

impl MgmKey {
    /// A key of `algorithm`; `None` when the length does not fit.
    pub fn new(algorithm: MgmAlgorithm, key: &[u8], touch: bool) -> Option<Self> {
        (key.len() == algorithm.key_len()).then(|| Self {
            algorithm,
            key: hex::encode(key),
            touch,
        })
    }

    /// The factory key for a firmware: 3DES before 5.7, AES-192 from 5.7 on
    /// (same bytes).
    pub fn factory(aes_default: bool) -> Self {
        Self {
            algorithm: if aes_default {
                MgmAlgorithm::Aes192
            } else {
                MgmAlgorithm::TripleDes
            },
            key: hex::encode(DEFAULT_MGM_KEY),
            touch: false,
        }
    }

    /// Whether this is still the factory key.
    pub fn is_default(&self) -> bool {
        self.key == hex::encode(DEFAULT_MGM_KEY)
    }

    fn bytes(&self) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
        hex::decode(&self.key)
            .map(Zeroizing::new)
            .map_err(|_| StatusWord::UNKNOWN)
    }

    /// Encrypts one block (ECB) — the card's half of the challenge-response.
    pub fn encrypt_block(&self, block: &[u8]) -> Result<Vec<u8>, StatusWord> {
        self.crypt(block, true)
    }

    /// Decrypts one block.
    pub fn decrypt_block(&self, block: &[u8]) -> Result<Vec<u8>, StatusWord> {
        self.crypt(block, false)
    }

    fn crypt(&self, block: &[u8], encrypt: bool) -> Result<Vec<u8>, StatusWord> {
        if block.len() != self.algorithm.block_len() {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let key = self.bytes()?;
        let mut out = block.to_vec();
        macro_rules! run {
            ($c:ty) => {{
                let c = <$c>::new_from_slice(&key).map_err(|_| StatusWord::UNKNOWN)?;
                let b = out
                    .as_mut_slice()
                    .try_into()
                    .map_err(|_| StatusWord::UNKNOWN)?;
                if encrypt {
                    c.encrypt_block(b)
                } else {
                    c.decrypt_block(b)
                }
            }};
        }
        match self.algorithm {
            MgmAlgorithm::TripleDes => run!(des::TdesEde3),
            MgmAlgorithm::Aes128 => run!(aes::Aes128),
            MgmAlgorithm::Aes192 => run!(aes::Aes192),
            MgmAlgorithm::Aes256 => run!(aes::Aes256),
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mgm_round_trip() {
        for alg in [
            MgmAlgorithm::TripleDes,
            MgmAlgorithm::Aes128,
            MgmAlgorithm::Aes192,
            MgmAlgorithm::Aes256,
        ] {
            let key = MgmKey::new(alg, &vec![7u8; alg.key_len()], false).unwrap();
            let block = vec![9u8; alg.block_len()];
            let enc = key.encrypt_block(&block).unwrap();
            assert_ne!(enc, block);
            assert_eq!(key.decrypt_block(&enc).unwrap(), block);
            assert!(key.encrypt_block(&[0u8; 3]).is_err());
        }
    }

    #[test]
    fn stored_round_trip_and_sign() {
        for alg in [
            Algorithm::P256,
            Algorithm::P384,
            Algorithm::Ed25519,
            Algorithm::X25519,
        ] {
            let k = PrivateKey::generate(alg).unwrap();
            let back = PrivateKey::from_stored(&k.to_stored().unwrap()).unwrap();
            assert_eq!(k.public_tlvs(), back.public_tlvs());
            assert!(k.spki_der().is_ok());
        }
        let k = PrivateKey::generate(Algorithm::P256).unwrap();
        assert!(k.sign(&[1u8; 32]).is_ok());
        assert!(k.sign(&[1u8; 20]).is_ok());
        assert_eq!(k.sign(&[1u8; 33]), Err(StatusWord::INCORRECT_DATA));
        assert_eq!(
            k.agree_or_decrypt(&[4u8; 65]),
            Err(StatusWord::INCORRECT_DATA)
        );
    }
}
