//! Adapters that let certificate builders sign with a device key through the
//! `signature::Signer` family, so the builders never know which device signs.
//!
//! Every backend ([`Pkcs11Key`], and the PIV slot key with the `piv`
//! feature) implements [`SigningBackend`] and returns signatures in one raw
//! form (r‖s for ECDSA, as PKCS#11 does); these adapters convert them to
//! what each format wants: SSH mpint pairs for OpenSSH, DER `Ecdsa-Sig-Value`
//! for X.509.

use der::asn1::BitString;
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg};

use crate::{Error, KeyRef, PublicKey, Reply, Result, RsaHash, Token};

mod sealed {
    pub trait Sealed {}
}

/// A key that signs: a PKCS#11 token key ([`Pkcs11Key`]) or, with the `piv`
/// feature, a key in a YubiKey PIV slot. Implemented by this crate's
/// backends only.
///
/// The signature comes back in raw form:
/// - ECDSA: r‖s (64 bytes for P-256, 96 for P-384) over SHA-256 / SHA-384
///   of the message;
/// - Ed25519: the 64-byte signature of the message;
/// - RSA: PKCS#1 v1.5 over `rsa_hash` of the message.
pub trait SigningBackend: sealed::Sealed + Clone + Send + Sync + std::fmt::Debug + 'static {
    /// The public half of the key.
    fn public_key(&self) -> &PublicKey;

    /// Queues a signature over `message` and returns at once; the device
    /// call happens on the backend's worker thread.
    fn sign_raw(&self, message: &[u8], rsa_hash: RsaHash) -> Reply<Vec<u8>>;
}

/// A key on a PKCS#11 token, with the token that holds it.
#[derive(Debug, Clone)]
pub struct Pkcs11Key {
    token: Token,
    key: KeyRef,
}

impl Pkcs11Key {
    /// Pairs a token with one of its keys.
    pub fn new(token: Token, key: KeyRef) -> Self {
        Self { token, key }
    }

    /// The token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The key.
    pub fn key(&self) -> &KeyRef {
        &self.key
    }
}

impl sealed::Sealed for Pkcs11Key {}

impl SigningBackend for Pkcs11Key {
    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    fn sign_raw(&self, message: &[u8], rsa_hash: RsaHash) -> Reply<Vec<u8>> {
        self.token.sign(&self.key, message, rsa_hash)
    }
}

#[cfg(feature = "piv")]
impl sealed::Sealed for crate::piv::PivKey {}

/// The signature scheme a public key implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa { size: usize },
}

impl Scheme {
    fn of(public: &PublicKey) -> Self {
        use rsa::traits::PublicKeyParts;
        match public {
            PublicKey::EcdsaP256(_) => Self::EcdsaP256,
            PublicKey::EcdsaP384(_) => Self::EcdsaP384,
            PublicKey::Ed25519(_) => Self::Ed25519,
            PublicKey::Rsa(key) => Self::Rsa { size: key.size() },
        }
    }

    fn check_len(self, raw: &[u8]) -> Result<()> {
        let expected = match self {
            Self::EcdsaP256 | Self::Ed25519 => 64,
            Self::EcdsaP384 => 96,
            Self::Rsa { size } => size,
        };
        if raw.len() == expected {
            Ok(())
        } else {
            Err(Error::MalformedTokenData("signature (wrong length)"))
        }
    }
}

/// Converts a raw signature into an OpenSSH signature (RSA: rsa-sha2-512).
fn to_ssh_signature(public: &PublicKey, raw: Vec<u8>) -> Result<ssh_key::Signature> {
    let scheme = Scheme::of(public);
    scheme.check_len(&raw)?;
    let bad = || Error::MalformedTokenData("signature");
    match scheme {
        Scheme::EcdsaP256 => {
            let sig = p256::ecdsa::Signature::from_slice(&raw).map_err(|_| bad())?;
            ssh_key::Signature::try_from(sig).map_err(|_| bad())
        }
        Scheme::EcdsaP384 => {
            let sig = p384::ecdsa::Signature::from_slice(&raw).map_err(|_| bad())?;
            ssh_key::Signature::try_from(sig).map_err(|_| bad())
        }
        Scheme::Ed25519 => ssh_key::Signature::new(Algorithm::Ed25519, raw).map_err(|_| bad()),
        Scheme::Rsa { .. } => ssh_key::Signature::new(
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            raw,
        )
        .map_err(|_| bad()),
    }
}

/// Converts a raw signature into the value of an X.509 signature BIT STRING.
fn to_x509_signature(public: &PublicKey, raw: Vec<u8>) -> Result<X509Signature> {
    let scheme = Scheme::of(public);
    scheme.check_len(&raw)?;
    let bad = |_| Error::MalformedTokenData("signature");
    Ok(X509Signature(match scheme {
        Scheme::EcdsaP256 => p256::ecdsa::Signature::from_slice(&raw)
            .map_err(bad)?
            .to_der()
            .as_bytes()
            .to_vec(),
        Scheme::EcdsaP384 => p384::ecdsa::Signature::from_slice(&raw)
            .map_err(bad)?
            .to_der()
            .as_bytes()
            .to_vec(),
        Scheme::Ed25519 | Scheme::Rsa { .. } => raw,
    }))
}

/// Signs OpenSSH certificates with a device key. RSA keys sign with
/// rsa-sha2-512.
#[derive(Debug, Clone)]
pub struct SshSigner<B = Pkcs11Key> {
    backend: B,
    key_data: KeyData,
}

impl SshSigner<Pkcs11Key> {
    /// Wraps a token key for OpenSSH signing.
    pub fn new(token: Token, key: KeyRef) -> Result<Self> {
        Self::with_backend(Pkcs11Key::new(token, key))
    }
}

impl<B: SigningBackend> SshSigner<B> {
    /// Wraps any backend's key for OpenSSH signing.
    pub fn with_backend(backend: B) -> Result<Self> {
        let key_data = backend.public_key().to_ssh()?;
        Ok(Self { backend, key_data })
    }

    /// The CA public key as OpenSSH key data.
    pub fn key_data(&self) -> &KeyData {
        &self.key_data
    }

    /// The key that signs.
    pub fn backend(&self) -> &B {
        &self.backend
    }
}

impl<B: SigningBackend> signature::Signer<ssh_key::Signature> for SshSigner<B> {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<ssh_key::Signature, signature::Error> {
        self.backend
            .sign_raw(msg, RsaHash::Sha512)
            .wait()
            .and_then(|raw| to_ssh_signature(self.backend.public_key(), raw))
            .map_err(signature::Error::from_source)
    }
}

impl<B> From<&SshSigner<B>> for KeyData {
    fn from(signer: &SshSigner<B>) -> KeyData {
        signer.key_data.clone()
    }
}

/// The CA public key as the X.509 builder wants it.
#[derive(Debug, Clone)]
pub struct X509VerifyingKey(PublicKey);

impl spki::EncodePublicKey for X509VerifyingKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        let der_bytes = self
            .0
            .to_spki_der()
            .map_err(|_| spki::Error::KeyMalformed)?;
        der::Document::try_from(der_bytes).map_err(spki::Error::from)
    }
}

/// An X.509 signature value, already in its final DER form.
#[derive(Debug, Clone)]
pub struct X509Signature(Vec<u8>);

impl X509Signature {
    /// The signature bytes as they go into the BIT STRING.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl spki::SignatureBitStringEncoding for X509Signature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

/// Signs X.509 certificates with a device key: ecdsa-with-SHA256/384,
/// Ed25519, or sha256WithRSAEncryption.
#[derive(Debug, Clone)]
pub struct X509Signer<B = Pkcs11Key> {
    backend: B,
}

impl X509Signer<Pkcs11Key> {
    /// Wraps a token key for X.509 signing.
    pub fn new(token: Token, key: KeyRef) -> Self {
        Self::with_backend(Pkcs11Key::new(token, key))
    }

    /// The token key being signed with.
    pub fn key(&self) -> &KeyRef {
        self.backend.key()
    }
}

impl<B: SigningBackend> X509Signer<B> {
    /// Wraps any backend's key for X.509 signing.
    pub fn with_backend(backend: B) -> Self {
        Self { backend }
    }

    /// The key that signs.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The public half of the signing key (the issuer's key).
    pub fn public_key(&self) -> &PublicKey {
        self.backend.public_key()
    }
}

impl<B: SigningBackend> signature::Keypair for X509Signer<B> {
    type VerifyingKey = X509VerifyingKey;

    fn verifying_key(&self) -> X509VerifyingKey {
        X509VerifyingKey(self.backend.public_key().clone())
    }
}

impl<B: SigningBackend> spki::DynSignatureAlgorithmIdentifier for X509Signer<B> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
        const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
        const ED25519: &str = "1.3.101.112";
        const RSA_SHA256: &str = "1.2.840.113549.1.1.11";
        let (oid, null_params) = match Scheme::of(self.backend.public_key()) {
            Scheme::EcdsaP256 => (ECDSA_SHA256, false),
            Scheme::EcdsaP384 => (ECDSA_SHA384, false),
            Scheme::Ed25519 => (ED25519, false),
            Scheme::Rsa { .. } => (RSA_SHA256, true),
        };
        Ok(AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(oid),
            // RFC 4055: sha*WithRSAEncryption carries an explicit NULL.
            parameters: null_params.then(der::asn1::Any::null),
        })
    }
}

impl<B: SigningBackend> signature::Signer<X509Signature> for X509Signer<B> {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<X509Signature, signature::Error> {
        self.backend
            .sign_raw(msg, RsaHash::Sha256)
            .wait()
            .and_then(|raw| to_x509_signature(self.backend.public_key(), raw))
            .map_err(signature::Error::from_source)
    }
}
