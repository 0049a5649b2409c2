//! Adapters that let certificate builders sign with a token key through the
//! `signature::Signer` family, so the builders never know which device signs.
//!
//! The token returns signatures in PKCS#11 form (raw r‖s for ECDSA); these
//! adapters convert them to what each format wants: SSH mpint pairs for
//! OpenSSH, DER `Ecdsa-Sig-Value` for X.509.

use der::asn1::BitString;
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg};

use crate::{Error, KeyAlgorithm, KeyRef, PublicKey, Result, RsaHash, Token};

fn check_len(algorithm: KeyAlgorithm, public: &PublicKey, raw: &[u8]) -> Result<()> {
    use rsa::traits::PublicKeyParts;
    let expected = match (algorithm, public) {
        (KeyAlgorithm::EcdsaP256, _) => 64,
        (KeyAlgorithm::EcdsaP384, _) => 96,
        (KeyAlgorithm::Ed25519, _) => 64,
        (_, PublicKey::Rsa(key)) => key.size(),
        _ => return Err(Error::MalformedTokenData("signature for a mismatched key")),
    };
    if raw.len() == expected {
        Ok(())
    } else {
        Err(Error::MalformedTokenData("signature (wrong length)"))
    }
}

/// Signs OpenSSH certificates with a token key. RSA keys sign with
/// rsa-sha2-512.
#[derive(Debug, Clone)]
pub struct SshSigner {
    token: Token,
    key: KeyRef,
    key_data: KeyData,
}

impl SshSigner {
    /// Wraps a token key for OpenSSH signing.
    pub fn new(token: Token, key: KeyRef) -> Result<Self> {
        let key_data = key.public_key().to_ssh()?;
        Ok(Self {
            token,
            key,
            key_data,
        })
    }

    /// The CA public key as OpenSSH key data.
    pub fn key_data(&self) -> &KeyData {
        &self.key_data
    }

    /// Converts a raw token signature into an OpenSSH signature.
    fn to_ssh_signature(&self, raw: Vec<u8>) -> Result<ssh_key::Signature> {
        let algorithm = self.key.algorithm();
        check_len(algorithm, self.key.public_key(), &raw)?;
        let bad = |_| Error::MalformedTokenData("signature");
        match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let sig = p256::ecdsa::Signature::from_slice(&raw).map_err(bad)?;
                ssh_key::Signature::try_from(sig)
                    .map_err(|_| Error::MalformedTokenData("signature"))
            }
            KeyAlgorithm::EcdsaP384 => {
                let sig = p384::ecdsa::Signature::from_slice(&raw).map_err(bad)?;
                ssh_key::Signature::try_from(sig)
                    .map_err(|_| Error::MalformedTokenData("signature"))
            }
            KeyAlgorithm::Ed25519 => ssh_key::Signature::new(Algorithm::Ed25519, raw)
                .map_err(|_| Error::MalformedTokenData("signature")),
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => ssh_key::Signature::new(
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                raw,
            )
            .map_err(|_| Error::MalformedTokenData("signature")),
        }
    }
}

impl signature::Signer<ssh_key::Signature> for SshSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<ssh_key::Signature, signature::Error> {
        self.token
            .sign(&self.key, msg, RsaHash::Sha512)
            .wait()
            .and_then(|raw| self.to_ssh_signature(raw))
            .map_err(signature::Error::from_source)
    }
}

impl From<&SshSigner> for KeyData {
    fn from(signer: &SshSigner) -> KeyData {
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

/// Signs X.509 certificates with a token key: ecdsa-with-SHA256/384,
/// Ed25519, or sha256WithRSAEncryption.
#[derive(Debug, Clone)]
pub struct X509Signer {
    token: Token,
    key: KeyRef,
}

impl X509Signer {
    /// Wraps a token key for X.509 signing.
    pub fn new(token: Token, key: KeyRef) -> Self {
        Self { token, key }
    }

    /// The key being signed with.
    pub fn key(&self) -> &KeyRef {
        &self.key
    }

    fn to_x509_signature(&self, raw: Vec<u8>) -> Result<X509Signature> {
        let algorithm = self.key.algorithm();
        check_len(algorithm, self.key.public_key(), &raw)?;
        let bad = |_| Error::MalformedTokenData("signature");
        Ok(X509Signature(match algorithm {
            KeyAlgorithm::EcdsaP256 => p256::ecdsa::Signature::from_slice(&raw)
                .map_err(bad)?
                .to_der()
                .as_bytes()
                .to_vec(),
            KeyAlgorithm::EcdsaP384 => p384::ecdsa::Signature::from_slice(&raw)
                .map_err(bad)?
                .to_der()
                .as_bytes()
                .to_vec(),
            KeyAlgorithm::Ed25519 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => raw,
        }))
    }
}

impl signature::Keypair for X509Signer {
    type VerifyingKey = X509VerifyingKey;

    fn verifying_key(&self) -> X509VerifyingKey {
        X509VerifyingKey(self.key.public_key().clone())
    }
}

impl spki::DynSignatureAlgorithmIdentifier for X509Signer {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
        const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
        const ED25519: &str = "1.3.101.112";
        const RSA_SHA256: &str = "1.2.840.113549.1.1.11";
        let (oid, null_params) = match self.key.algorithm() {
            KeyAlgorithm::EcdsaP256 => (ECDSA_SHA256, false),
            KeyAlgorithm::EcdsaP384 => (ECDSA_SHA384, false),
            KeyAlgorithm::Ed25519 => (ED25519, false),
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => (RSA_SHA256, true),
        };
        Ok(AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(oid),
            // RFC 4055: sha*WithRSAEncryption carries an explicit NULL.
            parameters: null_params.then(der::asn1::Any::null),
        })
    }
}

impl signature::Signer<X509Signature> for X509Signer {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<X509Signature, signature::Error> {
        self.token
            .sign(&self.key, msg, RsaHash::Sha256)
            .wait()
            .and_then(|raw| self.to_x509_signature(raw))
            .map_err(signature::Error::from_source)
    }
}
