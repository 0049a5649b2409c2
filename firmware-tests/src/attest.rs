//! PIV attestation: the emulator's attestation root, the per-device `f9`
//! certificate it issues, and the per-slot attestation certificates the `f9`
//! key issues with Yubico's extensions.
//!
//! The root is a test root that Signet creates (or that a test hands in);
//! it is never Yubico's. Verifiers under test must be configured to trust it,
//! exactly as they are configured with Yubico's roots in production.

use crate::keys::PrivateKey;
use crate::{Error, Result};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Encode, EncodePem};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use spki::SubjectPublicKeyInfoOwned;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::Certificate;

/// Yubico's OID arc for PIV attestation extensions.
pub const OID_FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
/// Serial number extension (DER INTEGER inside the extension value).
pub const OID_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
/// PIN and touch policy extension (two raw bytes).
pub const OID_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
/// Form factor extension (one raw byte).
pub const OID_FORM_FACTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");

/// File names inside the `--attestation-root` directory.
pub const ROOT_KEY_FILE: &str = "attestation-root.key.pem";
/// The root certificate (PEM) a verifier is told to trust.
pub const ROOT_CERT_FILE: &str = "attestation-root.pem";

fn cert_err(e: impl std::fmt::Display) -> Error {
    Error::Crypto(e.to_string())
}

/// A profile with a fixed issuer and subject and a given list of extensions.
struct FixedProfile {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

fn ext(oid: ObjectIdentifier, critical: bool, value: Vec<u8>) -> Result<Extension> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).map_err(cert_err)?,
    })
}

fn ca_extension() -> Result<Extension> {
    let bc = x509_cert::ext::pkix::BasicConstraints {
        ca: true,
        path_len_constraint: None,
    };
    ext(
        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
        true,
        bc.to_der().map_err(cert_err)?,
    )
}

/// The key usage extension (critical), as verifiers such as webauthn-rs
/// require on CA and attestation certificates.
fn key_usage(usages: der::flagset::FlagSet<x509_cert::ext::pkix::KeyUsages>) -> Result<Extension> {
    ext(
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
        true,
        x509_cert::ext::pkix::KeyUsage(usages)
            .to_der()
            .map_err(cert_err)?,
    )
}

fn ca_key_usage() -> Result<Extension> {
    use x509_cert::ext::pkix::KeyUsages;
    key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
}

fn random_serial() -> SerialNumber {
    SerialNumber::generate(&mut rand::rng())
}

fn build(
    profile: FixedProfile,
    validity: Validity,
    spki: SubjectPublicKeyInfoOwned,
    signer: &SigningKey,
) -> Result<Vec<u8>> {
    let builder =
        CertificateBuilder::new(profile, random_serial(), validity, spki).map_err(cert_err)?;
    let cert = builder.build::<_, DerSignature>(signer).map_err(cert_err)?;
    cert.to_der().map_err(cert_err)
}

fn spki_of(key: &SigningKey) -> Result<SubjectPublicKeyInfoOwned> {
    SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).map_err(cert_err)
}

/// The attestation root: a P-256 CA key and its self-signed certificate.
#[derive(Clone)]
pub struct AttestationRoot {
    key: SigningKey,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for AttestationRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationRoot").finish_non_exhaustive()
    }
}

impl AttestationRoot {
    /// Creates a fresh root (valid 20 years).
    pub fn create() -> Result<Self> {
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let name = Name::from_str("CN=Signet Test PIV Attestation Root,O=Signet,C=US")
            .map_err(cert_err)?;
        let profile = FixedProfile {
            issuer: name.clone(),
            subject: name,
            extensions: vec![ca_extension()?, ca_key_usage()?],
        };
        let validity =
            Validity::from_now(Duration::from_secs(20 * 365 * 86400)).map_err(cert_err)?;
        let cert_der = build(profile, validity, spki_of(&key)?, &key)?;
        Ok(Self { key, cert_der })
    }

    /// Loads the root from `dir`, creating and saving one if the directory
    /// holds none yet.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let key_path = dir.join(ROOT_KEY_FILE);
        let cert_path = dir.join(ROOT_CERT_FILE);
        if key_path.exists() && cert_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path)
                .map_err(|e| Error::io(format!("reading {}", key_path.display()), e))?;
            let key = SigningKey::from_pkcs8_pem(&key_pem).map_err(|e| Error::Invalid {
                what: "attestation root key",
                path: key_path.clone(),
                detail: e.to_string(),
            })?;
            let cert_pem = std::fs::read_to_string(&cert_path)
                .map_err(|e| Error::io(format!("reading {}", cert_path.display()), e))?;
            let cert =
                <Certificate as der::DecodePem>::from_pem(cert_pem.as_bytes()).map_err(|e| {
                    Error::Invalid {
                        what: "attestation root certificate",
                        path: cert_path.clone(),
                        detail: e.to_string(),
                    }
                })?;
            return Ok(Self {
                key,
                cert_der: cert.to_der().map_err(cert_err)?,
            });
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let root = Self::create()?;
        let key_pem = root.key.to_pkcs8_pem(LineEnding::LF).map_err(cert_err)?;
        std::fs::write(&key_path, key_pem.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", key_path.display()), e))?;
        std::fs::write(&cert_path, root.cert_pem()?)
            .map_err(|e| Error::io(format!("writing {}", cert_path.display()), e))?;
        Ok(root)
    }

    /// The root certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The root certificate, PEM.
    pub fn cert_pem(&self) -> Result<String> {
        Certificate::from_der(&self.cert_der)
            .map_err(cert_err)?
            .to_pem(LineEnding::LF)
            .map_err(cert_err)
    }

    fn subject(&self) -> Result<Name> {
        Ok(Certificate::from_der(&self.cert_der)
            .map_err(cert_err)?
            .tbs_certificate()
            .subject()
            .clone())
    }

    /// Issues a device's `f9` attestation CA certificate for `f9_key`.
    pub fn issue_device_ca(&self, f9_key: &SigningKey, serial: u32) -> Result<Vec<u8>> {
        let subject = Name::from_str(&format!(
            "CN=Signet Virtual YubiKey PIV Attestation {serial},O=Signet,C=US"
        ))
        .map_err(cert_err)?;
        let profile = FixedProfile {
            issuer: self.subject()?,
            subject,
            extensions: vec![ca_extension()?, ca_key_usage()?],
        };
        let validity =
            Validity::from_now(Duration::from_secs(20 * 365 * 86400)).map_err(cert_err)?;
        build(profile, validity, spki_of(f9_key)?, &self.key)
    }
}

/// The FIDO extension carrying the authenticator's AAGUID
/// (`id-fido-gen-ce-aaguid`, an OCTET STRING inside the extension value).
pub const OID_FIDO_AAGUID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4");

impl AttestationRoot {
    /// Issues the FIDO2 applet's attestation certificate for `key`: an
    /// end-entity certificate as "packed" attestation requires (version 3,
    /// `OU=Authenticator Attestation`, CA false, the AAGUID extension),
    /// signed directly by this root so that verifiers trust the root alone.
    pub fn issue_fido_attestation(
        &self,
        key: &SigningKey,
        aaguid: [u8; 16],
        serial: u32,
    ) -> Result<Vec<u8>> {
        let subject = Name::from_str(&format!(
            "CN=Signet Virtual YubiKey FIDO Attestation {serial},\
             OU=Authenticator Attestation,O=Signet,C=US"
        ))
        .map_err(cert_err)?;
        let not_ca = x509_cert::ext::pkix::BasicConstraints {
            ca: false,
            path_len_constraint: None,
        };
        let aaguid = OctetString::new(aaguid.to_vec()).map_err(cert_err)?;
        let profile = FixedProfile {
            issuer: self.subject()?,
            subject,
            extensions: vec![
                ext(
                    const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                    true,
                    not_ca.to_der().map_err(cert_err)?,
                )?,
                ext(OID_FIDO_AAGUID, false, aaguid.to_der().map_err(cert_err)?)?,
                key_usage(x509_cert::ext::pkix::KeyUsages::DigitalSignature.into())?,
            ],
        };
        let validity =
            Validity::from_now(Duration::from_secs(20 * 365 * 86400)).map_err(cert_err)?;
        build(profile, validity, spki_of(key)?, &self.key)
    }
}

/// What a slot attestation certificate states about the key and the device.
#[derive(Debug, Clone, Copy)]
pub struct AttestedFacts {
    /// Slot byte (`9a`, `9c`, …) for the subject name.
    pub slot: u8,
    /// Firmware version.
    pub firmware: [u8; 3],
    /// Device serial.
    pub serial: u32,
    /// PIN policy byte (1 never, 2 once, 3 always).
    pub pin_policy: u8,
    /// Touch policy byte (1 never, 2 always, 3 cached).
    pub touch_policy: u8,
    /// Form factor byte (e.g. `0x01` USB-A keychain).
    pub form_factor: u8,
}

/// Issues the attestation certificate for a slot's key, signed by the
/// device's `f9` key; the validity is the `f9` certificate's, as on a real key.
pub fn attest_slot(
    f9_key: &SigningKey,
    f9_cert_der: &[u8],
    key: &PrivateKey,
    facts: AttestedFacts,
) -> Result<Vec<u8>> {
    let f9_cert = Certificate::from_der(f9_cert_der).map_err(cert_err)?;
    let subject = Name::from_str(&format!("CN=YubiKey PIV Attestation {:02x}", facts.slot))
        .map_err(cert_err)?;
    let extensions = vec![
        ext(OID_FIRMWARE, false, facts.firmware.to_vec())?,
        ext(OID_SERIAL, false, facts.serial.to_der().map_err(cert_err)?)?,
        ext(
            OID_POLICY,
            false,
            vec![facts.pin_policy, facts.touch_policy],
        )?,
        ext(OID_FORM_FACTOR, false, vec![facts.form_factor])?,
    ];
    let profile = FixedProfile {
        issuer: f9_cert.tbs_certificate().subject().clone(),
        subject,
        extensions,
    };
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.spki_der()?).map_err(cert_err)?;
    let validity = *f9_cert.tbs_certificate().validity();
    build(profile, validity, spki, f9_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;

    fn verify(child_der: &[u8], issuer_der: &[u8]) {
        let child = Certificate::from_der(child_der).unwrap();
        let issuer = Certificate::from_der(issuer_der).unwrap();
        let spki = issuer.tbs_certificate().subject_public_key_info();
        let vk =
            p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.as_bytes().unwrap())
                .unwrap();
        let sig =
            p256::ecdsa::DerSignature::from_bytes(child.signature().as_bytes().unwrap()).unwrap();
        let tbs = child.tbs_certificate().to_der().unwrap();
        vk.verify(&tbs, &sig).unwrap();
        assert_eq!(
            child.tbs_certificate().issuer(),
            issuer.tbs_certificate().subject()
        );
    }

    #[test]
    fn chain_verifies() {
        let root = AttestationRoot::create().unwrap();
        let f9 = SigningKey::generate_from_rng(&mut rand::rng());
        let f9_cert = root.issue_device_ca(&f9, 1234).unwrap();
        verify(&f9_cert, root.cert_der());
        verify(root.cert_der(), root.cert_der());
        let key = PrivateKey::generate(crate::keys::Algorithm::P256).unwrap();
        let facts = AttestedFacts {
            slot: 0x9a,
            firmware: [5, 4, 3],
            serial: 1234,
            pin_policy: 2,
            touch_policy: 3,
            form_factor: 1,
        };
        let leaf = attest_slot(&f9, &f9_cert, &key, facts).unwrap();
        verify(&leaf, &f9_cert);
        let cert = Certificate::from_der(&leaf).unwrap();
        let exts = cert.tbs_certificate().extensions().unwrap();
        let fw = exts.iter().find(|e| e.extn_id == OID_FIRMWARE).unwrap();
        assert_eq!(fw.extn_value.as_bytes(), [5, 4, 3]);
    }

    #[test]
    fn root_persists() {
        let dir = tempfile::tempdir().unwrap();
        let a = AttestationRoot::load_or_create(dir.path()).unwrap();
        let b = AttestationRoot::load_or_create(dir.path()).unwrap();
        assert_eq!(a.cert_der(), b.cert_der());
    }
}
