//! Which authenticators the CA believes: attestation roots, pinned
//! attestation keys, and whether unattested keys are acceptable at all.

use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::error::{Result, WebauthnError};

/// The attestation trust store. Empty by default: nothing is trusted, so
/// every registration is refused until roots or pins are configured.
#[derive(Clone, Default)]
pub struct AttestationTrust {
    roots: Vec<Certificate>,
    spki_sha256_pins: Vec<[u8; 32]>,
    allow_none: bool,
}

impl std::fmt::Debug for AttestationTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationTrust")
            .field(
                "roots",
                &self
                    .roots
                    .iter()
                    .map(|c| c.tbs_certificate().subject().to_string())
                    .collect::<Vec<_>>(),
            )
            .field(
                "spki_sha256_pins",
                &self
                    .spki_sha256_pins
                    .iter()
                    .map(hex::encode)
                    .collect::<Vec<_>>(),
            )
            .field("allow_none", &self.allow_none)
            .finish()
    }
}

impl AttestationTrust {
    /// A trust store as configured: PEM files' contents holding root
    /// certificates (one or more `CERTIFICATE` blocks each), SPKI pins
    /// (hex SHA-256 of an attestation certificate's
    /// SubjectPublicKeyInfo, see [`spki_sha256_of_certificate`]) and the
    /// explicit opt-in for keys without a verifiable attestation
    /// (attestation "none" and packed self attestation).
    pub fn from_config(
        roots_pem: &[&str],
        spki_sha256_hex: &[&str],
        allow_none: bool,
    ) -> Result<Self> {
        let mut trust = Self::default();
        for pem in roots_pem {
            trust.add_roots_pem(pem)?;
        }
        for pin in spki_sha256_hex {
            trust.add_spki_pin_hex(pin)?;
        }
        trust.set_allow_none(allow_none);
        Ok(trust)
    }

    /// Adds every certificate in `pem` as a root.
    pub fn add_roots_pem(&mut self, pem: &str) -> Result<()> {
        let certs = Certificate::load_pem_chain(pem.as_bytes())
            .map_err(|e| WebauthnError::InvalidTrustConfig(format!("attestation root PEM: {e}")))?;
        if certs.is_empty() {
            return Err(WebauthnError::InvalidTrustConfig(
                "attestation root PEM holds no certificate".into(),
            ));
        }
        self.roots.extend(certs);
        Ok(())
    }

    /// Adds a DER root certificate.
    pub fn add_root_der(&mut self, der: &[u8]) -> Result<()> {
        let cert = Certificate::from_der(der).map_err(|e| {
            WebauthnError::InvalidTrustConfig(format!("attestation root certificate: {e}"))
        })?;
        self.roots.push(cert);
        Ok(())
    }

    /// Pins an attestation key by the hex SHA-256 of its certificate's
    /// SubjectPublicKeyInfo (colons and spaces allowed between bytes).
    pub fn add_spki_pin_hex(&mut self, pin: &str) -> Result<()> {
        let clean: String = pin.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        let bytes = hex::decode(&clean)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        match bytes {
            Some(pin) => {
                self.add_spki_pin(pin);
                Ok(())
            }
            None => Err(WebauthnError::InvalidTrustConfig(format!(
                "SPKI pin {pin:?} is not 64 hex digits (a SHA-256)"
            ))),
        }
    }

    /// Pins an attestation key by the SHA-256 of its SubjectPublicKeyInfo.
    pub fn add_spki_pin(&mut self, pin: [u8; 32]) {
        self.spki_sha256_pins.push(pin);
    }

    /// Accepts (or not) keys whose attestation proves nothing about their
    /// maker: format "none" and packed self attestation.
    pub fn set_allow_none(&mut self, allow: bool) {
        self.allow_none = allow;
    }

    /// Whether unattested keys are accepted.
    pub fn allows_none(&self) -> bool {
        self.allow_none
    }

    pub(crate) fn roots(&self) -> &[Certificate] {
        &self.roots
    }

    pub(crate) fn is_pinned(&self, spki_sha256: &[u8; 32]) -> bool {
        self.spki_sha256_pins.iter().any(|p| p == spki_sha256)
    }
}

/// The SPKI pin of a DER certificate: SHA-256 of its
/// SubjectPublicKeyInfo, what [`AttestationTrust::add_spki_pin`] takes.
pub fn spki_sha256_of_certificate(der: &[u8]) -> Result<[u8; 32]> {
    let cert = Certificate::from_der(der)
        .map_err(|_| WebauthnError::AttestationCertificateInvalid("not a DER X.509 certificate"))?;
    spki_sha256(&cert)
}

pub(crate) fn spki_sha256(cert: &Certificate) -> Result<[u8; 32]> {
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|_| WebauthnError::AttestationCertificateInvalid("unencodable public key"))?;
    Ok(Sha256::digest(&spki).into())
}
