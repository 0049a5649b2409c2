//! Verifier keys (`<name>+<hex key id>+<base64(type ‖ public key)>`), key ids,
//! and the set of keys a verifier trusts.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::DecodePublicKey as _;
use sha2::{Digest, Sha256};

use crate::error::{NoteError, Result};

/// The 4-byte key id that starts every signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Signature types this crate verifies, with their signed-note identifier bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureType {
    /// `0x01`: Ed25519.
    Ed25519,
    /// `0x02`: ECDSA over SHA-256, P-256 only here.
    EcdsaP256Sha256,
    /// `0x04`: a C2SP tlog-cosignature `cosignature/v1` Ed25519 key (a
    /// witness): it signs a timestamp and the note text, not the text alone.
    CosignatureV1,
}

impl SignatureType {
    /// The identifier byte.
    pub fn id(self) -> u8 {
        match self {
            Self::Ed25519 => 0x01,
            Self::EcdsaP256Sha256 => 0x02,
            Self::CosignatureV1 => 0x04,
        }
    }
}

#[derive(Clone)]
enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256 {
        key: p256::ecdsa::VerifyingKey,
        spki_der: Vec<u8>,
    },
    CosignatureV1(ed25519_dalek::VerifyingKey),
}

/// A trusted public key with its note name and key id.
#[derive(Clone)]
pub struct VerifierKey {
    name: String,
    id: KeyId,
    key: PublicKey,
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VerifierKey")
            .field(&self.to_string())
            .finish()
    }
}

/// Checks a key name: non-empty, no whitespace, no `+`, no control characters.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(NoteError::BadKeyName.into());
    }
    Ok(())
}

fn first4(digest: &[u8]) -> KeyId {
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest[..4]);
    KeyId(id)
}

impl VerifierKey {
    /// An Ed25519 verifier key, with the key id the spec recommends.
    pub fn ed25519(name: &str, public_key: &[u8; 32]) -> Result<Self> {
        check_name(name)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
            .map_err(|_| NoteError::BadVerifierKey)?;
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update([b'\n', SignatureType::Ed25519.id()]);
        h.update(public_key);
        Ok(Self {
            name: name.to_owned(),
            id: first4(&h.finalize()),
            key: PublicKey::Ed25519(key),
        })
    }

    /// A `cosignature/v1` (witness) key: Ed25519, signature type `0x04`, key id
    /// `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]` as C2SP tlog-cosignature
    /// requires.
    pub fn cosignature_v1(name: &str, public_key: &[u8; 32]) -> Result<Self> {
        check_name(name)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
            .map_err(|_| NoteError::BadVerifierKey)?;
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update([b'\n', SignatureType::CosignatureV1.id()]);
        h.update(public_key);
        Ok(Self {
            name: name.to_owned(),
            id: first4(&h.finalize()),
            key: PublicKey::CosignatureV1(key),
        })
    }

    /// An ECDSA P-256 verifier key from its DER SubjectPublicKeyInfo; the key id
    /// is `SHA-256(spki_der)[:4]`, as for signature type `0x02`.
    pub fn ecdsa_p256(name: &str, spki_der: &[u8]) -> Result<Self> {
        check_name(name)?;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
            .map_err(|_| NoteError::BadVerifierKey)?;
        Ok(Self {
            name: name.to_owned(),
            id: first4(&Sha256::digest(spki_der)),
            key: PublicKey::EcdsaP256 {
                key,
                spki_der: spki_der.to_vec(),
            },
        })
    }

    /// Parses the text form `<name>+<hex key id>+<base64(type ‖ key)>`.
    ///
    /// The key id must be the one computed from the name and key.
    pub fn parse(vkey: &str) -> Result<Self> {
        let bad = NoteError::BadVerifierKey;
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad.into());
        };
        if id_hex.len() != 8
            || !id_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad.into());
        }
        let raw = STANDARD.decode(b64).map_err(|_| bad.clone())?;
        let (&ty, material) = raw.split_first().ok_or(bad.clone())?;
        let key = match ty {
            0x01 => {
                let pk: &[u8; 32] = material.try_into().map_err(|_| bad.clone())?;
                Self::ed25519(name, pk)?
            }
            0x02 => Self::ecdsa_p256(name, material)?,
            0x04 => {
                let pk: &[u8; 32] = material.try_into().map_err(|_| bad.clone())?;
                Self::cosignature_v1(name, pk)?
            }
            other => return Err(NoteError::UnsupportedKeyType(other).into()),
        };
        if key.id.to_string() != id_hex {
            return Err(NoteError::KeyIdMismatch.into());
        }
        Ok(key)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// The signature type.
    pub fn signature_type(&self) -> SignatureType {
        match self.key {
            PublicKey::Ed25519(_) => SignatureType::Ed25519,
            PublicKey::EcdsaP256 { .. } => SignatureType::EcdsaP256Sha256,
            PublicKey::CosignatureV1(_) => SignatureType::CosignatureV1,
        }
    }

    /// The public key material as the vkey encodes it (after the type byte):
    /// the 32-byte Ed25519 key, or the P-256 SubjectPublicKeyInfo.
    pub fn key_material(&self) -> &[u8] {
        match &self.key {
            PublicKey::Ed25519(k) | PublicKey::CosignatureV1(k) => k.as_bytes(),
            PublicKey::EcdsaP256 { spki_der, .. } => spki_der,
        }
    }

    /// Whether `signature` is this key's valid signature of `msg`.
    ///
    /// Ed25519 is checked with `verify_strict` (RFC 8032 plus rejection of
    /// small-order keys and points), which no honest signer ever fails.
    /// ECDSA takes the ASN.1 DER form only. For a `cosignature/v1` key,
    /// `signature` is the 72-byte timestamped signature and `msg` the
    /// cosigned note text (see [`super::cosignature`]).
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            PublicKey::Ed25519(k) => match ed25519_dalek::Signature::from_slice(signature) {
                Ok(sig) => k.verify_strict(msg, &sig).is_ok(),
                Err(_) => false,
            },
            PublicKey::EcdsaP256 { key, .. } => match p256::ecdsa::Signature::from_der(signature) {
                Ok(sig) => key.verify(msg, &sig).is_ok(),
                Err(_) => false,
            },
            PublicKey::CosignatureV1(k) => {
                super::cosignature::verify_v1(k, msg, signature).is_some()
            }
        }
    }
}

impl fmt::Display for VerifierKey {
    /// The vkey text form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![self.signature_type().id()];
        raw.extend_from_slice(self.key_material());
        write!(f, "{}+{}+{}", self.name, self.id, STANDARD.encode(raw))
    }
}

/// The keys a verifier trusts. No two may share both name and key id.
#[derive(Debug, Clone, Default)]
pub struct VerifierSet {
    keys: Vec<VerifierKey>,
}

impl VerifierSet {
    /// A set of trusted keys; fails if two keys share name and key id, since a
    /// signature could not then be attributed to one of them.
    pub fn new(keys: Vec<VerifierKey>) -> Result<Self> {
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.name == k.name && o.id == k.id) {
                return Err(NoteError::DuplicateVerifier(k.name.clone()).into());
            }
        }
        Ok(Self { keys })
    }

    /// The key with this name and key id, if trusted.
    pub fn get(&self, name: &str, id: KeyId) -> Option<&VerifierKey> {
        self.keys.iter().find(|k| k.name == name && k.id == id)
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[VerifierKey] {
        &self.keys
    }
}
