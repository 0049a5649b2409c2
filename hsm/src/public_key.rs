//! Public halves of keys: reading them from token attributes and encoding
//! them for OpenSSH and X.509.

use der::Decode;
use spki::EncodePublicKey;
use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, RsaPublicKey};

use crate::{Error, KeyAlgorithm, Result};

/// A public key of one of the types Signet signs with or for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// ECDSA P-256.
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// ECDSA P-384.
    EcdsaP384(p384::ecdsa::VerifyingKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// RSA (any size; CA keys are 3072 or 4096 bits).
    Rsa(rsa::RsaPublicKey),
}

impl PublicKey {
    /// Reads an EC or Edwards public key from the token's `CKA_EC_POINT`.
    ///
    /// PKCS#11 says the point is DER-wrapped in an OCTET STRING; some tokens
    /// return it bare, so both are accepted, nothing else.
    pub fn from_ec_point(algorithm: KeyAlgorithm, ec_point: &[u8]) -> Result<Self> {
        let unwrapped = der::asn1::OctetString::from_der(ec_point).ok();
        let point = unwrapped.as_ref().map(|o| o.as_bytes()).unwrap_or(ec_point);
        let bad = || Error::MalformedTokenData("EC point");
        match algorithm {
            KeyAlgorithm::EcdsaP256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map(Self::EcdsaP256)
                .map_err(|_| bad()),
            KeyAlgorithm::EcdsaP384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map(Self::EcdsaP384)
                .map_err(|_| bad()),
            KeyAlgorithm::Ed25519 => {
                let bytes: [u8; 32] = point.try_into().map_err(|_| bad())?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map(Self::Ed25519)
                    .map_err(|_| bad())
            }
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => Err(bad()),
        }
    }

    /// Reads an RSA public key from `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`.
    pub fn from_rsa_parts(modulus: &[u8], exponent: &[u8]) -> Result<Self> {
        let n = rsa::BoxedUint::from_be_slice_vartime(modulus);
        let e = rsa::BoxedUint::from_be_slice_vartime(exponent);
        rsa::RsaPublicKey::new(n, e)
            .map(Self::Rsa)
            .map_err(|_| Error::MalformedTokenData("RSA public key"))
    }

    /// Parses a DER SubjectPublicKeyInfo of a supported type.
    pub fn from_spki_der(der_bytes: &[u8]) -> Result<Self> {
        use spki::DecodePublicKey;
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der_bytes)
            .map_err(|e| Error::Encoding(format!("not a SubjectPublicKeyInfo: {e}")))?;
        let oid = spki.algorithm.oid;
        let unsupported = || Error::Encoding(format!("unsupported public key algorithm {oid}"));
        if oid == const_oids::EC_PUBLIC_KEY {
            if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(der_bytes) {
                return Ok(Self::EcdsaP256(key));
            }
            if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(der_bytes) {
                return Ok(Self::EcdsaP384(key));
            }
            return Err(Error::Encoding(
                "EC public key is not on P-256 or P-384".into(),
            ));
        }
        if oid == const_oids::ED25519 {
            return ed25519_dalek::VerifyingKey::from_public_key_der(der_bytes)
                .map(Self::Ed25519)
                .map_err(|e| Error::Encoding(format!("bad Ed25519 key: {e}")));
        }
        if oid == const_oids::RSA_ENCRYPTION {
            return rsa::RsaPublicKey::from_public_key_der(der_bytes)
                .map(Self::Rsa)
                .map_err(|e| Error::Encoding(format!("bad RSA key: {e}")));
        }
        Err(unsupported())
    }

    /// Converts an OpenSSH public key of a supported type.
    pub fn from_ssh(key: &KeyData) -> Result<Self> {
        let bad = |what: &str| Error::Encoding(format!("bad {what} key"));
        match key {
            KeyData::Ecdsa(ec @ EcdsaPublicKey::NistP256(_)) => {
                p256::ecdsa::VerifyingKey::try_from(ec)
                    .map(Self::EcdsaP256)
                    .map_err(|_| bad("ECDSA P-256"))
            }
            KeyData::Ecdsa(ec @ EcdsaPublicKey::NistP384(_)) => {
                p384::ecdsa::VerifyingKey::try_from(ec)
                    .map(Self::EcdsaP384)
                    .map_err(|_| bad("ECDSA P-384"))
            }
            KeyData::Ed25519(ed) => ed25519_dalek::VerifyingKey::try_from(ed)
                .map(Self::Ed25519)
                .map_err(|_| bad("Ed25519")),
            KeyData::Rsa(r) => rsa::RsaPublicKey::try_from(r)
                .map(Self::Rsa)
                .map_err(|_| bad("RSA")),
            other => Err(Error::Encoding(format!(
                "unsupported key type {}",
                other.algorithm()
            ))),
        }
    }

    /// The CA key type this key would be, if it is one.
    pub fn ca_algorithm(&self) -> Option<KeyAlgorithm> {
        use rsa::traits::PublicKeyParts;
        match self {
            Self::EcdsaP256(_) => Some(KeyAlgorithm::EcdsaP256),
            Self::EcdsaP384(_) => Some(KeyAlgorithm::EcdsaP384),
            Self::Ed25519(_) => Some(KeyAlgorithm::Ed25519),
            Self::Rsa(key) => match key.size() * 8 {
                3072 => Some(KeyAlgorithm::Rsa3072),
                4096 => Some(KeyAlgorithm::Rsa4096),
                _ => None,
            },
        }
    }

    /// A short human description: `ECDSA P-256`, `RSA-2048`, ….
    pub fn describe(&self) -> String {
        use rsa::traits::PublicKeyParts;
        match self {
            Self::EcdsaP256(_) => "ECDSA P-256".into(),
            Self::EcdsaP384(_) => "ECDSA P-384".into(),
            Self::Ed25519(_) => "Ed25519".into(),
            Self::Rsa(key) => format!("RSA-{}", key.size() * 8),
        }
    }

    /// DER SubjectPublicKeyInfo, as it goes into an X.509 certificate.
    pub fn to_spki_der(&self) -> Result<Vec<u8>> {
        let doc = match self {
            Self::EcdsaP256(k) => k.to_public_key_der(),
            Self::EcdsaP384(k) => k.to_public_key_der(),
            Self::Ed25519(k) => k.to_public_key_der(),
            Self::Rsa(k) => k.to_public_key_der(),
        }
        .map_err(|e| Error::Encoding(e.to_string()))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// PEM SubjectPublicKeyInfo.
    pub fn to_spki_pem(&self) -> Result<String> {
        let der_bytes = self.to_spki_der()?;
        der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &der_bytes)
            .map_err(|e| Error::Encoding(e.to_string()))
    }

    /// The key as OpenSSH key data.
    pub fn to_ssh(&self) -> Result<KeyData> {
        Ok(match self {
            Self::EcdsaP256(k) => KeyData::Ecdsa(EcdsaPublicKey::from(k)),
            Self::EcdsaP384(k) => KeyData::Ecdsa(EcdsaPublicKey::from(k)),
            Self::Ed25519(k) => KeyData::Ed25519(Ed25519PublicKey::from(k)),
            Self::Rsa(k) => {
                KeyData::Rsa(RsaPublicKey::try_from(k).map_err(|e| Error::Encoding(e.to_string()))?)
            }
        })
    }

    /// The OpenSSH fingerprint (`SHA256:…`), as `ssh-keygen -l` prints it.
    pub fn ssh_fingerprint(&self) -> Result<String> {
        Ok(self
            .to_ssh()?
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string())
    }

    /// An OpenSSH public key line (`<type> <base64> <comment>`).
    pub fn to_openssh_line(&self, comment: &str) -> Result<String> {
        let key = ssh_key::PublicKey::new(self.to_ssh()?, comment);
        key.to_openssh().map_err(|e| Error::Encoding(e.to_string()))
    }
}

/// OIDs of the public key algorithms Signet accepts.
mod const_oids {
    use spki::ObjectIdentifier;
    pub(super) const EC_PUBLIC_KEY: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    pub(super) const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
    pub(super) const RSA_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
}
