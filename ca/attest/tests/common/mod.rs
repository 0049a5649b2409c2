//! A small PKI for tests: roots, intermediates, f9 and slot certificates
//! built with x509-cert's builder, each field under the test's control, to
//! make the chains a verifier must refuse.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use der::asn1::OctetString;
use der::Encode;
use p256::elliptic_curve::Generate;
use spki::SubjectPublicKeyInfoOwned;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

pub use signet_attest::{OID_FIRMWARE, OID_FORM_FACTOR, OID_POLICY, OID_SERIAL};

const DAY: Duration = Duration::from_secs(86_400);

/// A signing key of one of the accepted kinds.
#[derive(Clone)]
pub enum Key {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl Key {
    pub fn p256() -> Self {
        Self::P256(p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng()))
    }

    pub fn p384() -> Self {
        Self::P384(p384::ecdsa::SigningKey::generate_from_rng(&mut rand::rng()))
    }

    pub fn spki(&self) -> SubjectPublicKeyInfoOwned {
        match self {
            Self::P256(k) => SubjectPublicKeyInfoOwned::from_key(k.verifying_key()).unwrap(),
            Self::P384(k) => SubjectPublicKeyInfoOwned::from_key(k.verifying_key()).unwrap(),
        }
    }
}

struct Profile {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for Profile {
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

pub fn ext(oid: const_oid::ObjectIdentifier, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).unwrap(),
    }
}

pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> Extension {
    let bc = BasicConstraints {
        ca,
        path_len_constraint: path_len,
    };
    ext(
        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
        true,
        bc.to_der().unwrap(),
    )
}

pub fn key_usage(usages: der::flagset::FlagSet<KeyUsages>) -> Extension {
    ext(
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
        true,
        KeyUsage(usages).to_der().unwrap(),
    )
}

pub fn ca_extensions(path_len: Option<u8>) -> Vec<Extension> {
    vec![
        basic_constraints(true, path_len),
        key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
    ]
}

/// Validity from `now - before` to `now + after`.
pub fn validity_around(now: SystemTime, before: Duration, after: Duration) -> Validity {
    Validity::new(
        Time::try_from(now - before).unwrap(),
        Time::try_from(now + after).unwrap(),
    )
}

pub fn long_validity() -> Validity {
    validity_around(SystemTime::now(), DAY, 3650 * DAY)
}

/// A certificate holder: its key, name and certificate.
#[derive(Clone)]
pub struct Ca {
    pub key: Key,
    pub name: Name,
    pub der: Vec<u8>,
}

/// What to put into a certificate.
pub struct Spec {
    pub subject: String,
    pub spki: SubjectPublicKeyInfoOwned,
    pub validity: Validity,
    pub extensions: Vec<Extension>,
    /// Overrides the issuer name (defaults to the issuer's subject).
    pub issuer_name: Option<Name>,
}

impl Spec {
    pub fn new(subject: &str, spki: SubjectPublicKeyInfoOwned, extensions: Vec<Extension>) -> Self {
        Self {
            subject: subject.to_string(),
            spki,
            validity: long_validity(),
            extensions,
            issuer_name: None,
        }
    }
}

pub fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// Signs `spec` with `signer`, naming `issuer` as the issuer.
pub fn issue(signer: &Key, issuer: &Name, spec: Spec) -> Vec<u8> {
    let profile = Profile {
        issuer: spec.issuer_name.unwrap_or_else(|| issuer.clone()),
        subject: name(&spec.subject),
        extensions: spec.extensions,
    };
    let serial = SerialNumber::generate(&mut rand::rng());
    let builder = CertificateBuilder::new(profile, serial, spec.validity, spec.spki).unwrap();
    let cert = match signer {
        Key::P256(k) => builder.build::<_, p256::ecdsa::DerSignature>(k).unwrap(),
        Key::P384(k) => builder.build::<_, p384::ecdsa::DerSignature>(k).unwrap(),
    };
    cert.to_der().unwrap()
}

impl Ca {
    /// A self-signed root.
    pub fn root(subject: &str, key: Key, extensions: Vec<Extension>, validity: Validity) -> Self {
        let n = name(subject);
        let mut spec = Spec::new(subject, key.spki(), extensions);
        spec.validity = validity;
        let der = issue(&key, &n, spec);
        Self { key, name: n, der }
    }

    /// A CA root valid for ten years.
    pub fn test_root() -> Self {
        Self::root(
            "CN=Test PIV Root,O=Signet Tests",
            Key::p256(),
            ca_extensions(Some(3)),
            long_validity(),
        )
    }

    /// A certificate for `key` issued by this CA, which becomes a holder.
    pub fn child(&self, key: Key, mut spec: Spec) -> Self {
        spec.spki = key.spki();
        let n = name(&spec.subject);
        let der = issue(&self.key, &self.name, spec);
        Self { key, name: n, der }
    }

    pub fn pem(&self) -> String {
        use der::{Decode, EncodePem};
        x509_cert::Certificate::from_der(&self.der)
            .unwrap()
            .to_pem(der::pem::LineEnding::LF)
            .unwrap()
    }

    /// The roots a verifier is configured with to trust this certificate.
    pub fn roots(&self) -> signet_attest::DeviceRoots {
        signet_attest::DeviceRoots::from_pem(&self.pem()).unwrap()
    }
}

/// Yubico's extensions as a YubiKey writes them.
pub fn yubico_extensions(serial: u32, pin: u8, touch: u8, form: Option<u8>) -> Vec<Extension> {
    let mut exts = vec![
        ext(OID_FIRMWARE, false, vec![5, 7, 4]),
        ext(OID_SERIAL, false, serial.to_der().unwrap()),
        ext(OID_POLICY, false, vec![pin, touch]),
    ];
    if let Some(f) = form {
        exts.push(ext(OID_FORM_FACTOR, false, vec![f]));
    }
    exts
}

/// A device: its f9 certificate (CA, pathlen 0, as on a YubiKey 5)
/// issued by `issuer`.
pub fn device(issuer: &Ca) -> Ca {
    issuer.child(
        Key::p256(),
        Spec::new(
            "CN=Yubico PIV Attestation",
            Key::p256().spki(),
            vec![basic_constraints(true, Some(0))],
        ),
    )
}

/// A slot certificate for a fresh P-256 key with the given extensions.
pub fn slot_with(f9: &Ca, extensions: Vec<Extension>) -> Vec<u8> {
    issue(
        &f9.key,
        &f9.name,
        Spec::new(
            "CN=YubiKey PIV Attestation 9a",
            Key::p256().spki(),
            extensions,
        ),
    )
}

/// A slot certificate with PIN once, touch always, USB-A keychain.
pub fn slot(f9: &Ca, serial: u32) -> Vec<u8> {
    slot_with(f9, yubico_extensions(serial, 2, 2, Some(1)))
}
