//! X.509: the self-signed root and client certificates, built with
//! `x509-cert`'s builder and signed by the token through `X509Signer`.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use der::asn1::Ia5String;
use der::{Decode, Encode, EncodePem};
use signet_hsm::{PublicKey, SigningBackend, X509Signature, X509Signer};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use crate::profile::{self, CLOCK_SKEW_BACKDATE};
use crate::{Error, Result};

fn cert_err(e: impl std::fmt::Display) -> Error {
    Error::Certificate(e.to_string())
}

/// A name with one CN (and optionally one O). The values are checked before
/// (config, user names) to hold no RFC 4514 special characters.
pub fn name(common_name: &str, organization: Option<&str>) -> Result<Name> {
    let text = match organization {
        Some(org) => format!("CN={common_name},O={org}"),
        None => format!("CN={common_name}"),
    };
    Name::from_str(&text).map_err(cert_err)
}

/// A random positive 128-bit serial number (RFC 5280: at most 20 octets,
/// positive; unpredictable, so nobody can guess the next one).
pub fn random_serial() -> Result<(SerialNumber, String)> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(cert_err)?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x40; // never a leading zero: the encoding is always 16 octets
    let serial = SerialNumber::new(&bytes).map_err(cert_err)?;
    Ok((serial, hex::encode(bytes)))
}

/// A serial number as entries record it: lowercase hex of its octets,
/// without the leading zero octet DER adds to keep it positive.
pub fn serial_hex(serial: &SerialNumber) -> String {
    let bytes = serial.as_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    hex::encode(&bytes[first..])
}

/// A serial number in the log's form for any certificate, including one
/// the CA did not make (a YubiKey's attestation): [`serial_hex`] without
/// leading zero digits, as entries require.
pub fn log_serial(serial: &SerialNumber) -> String {
    serial_hex(serial).trim_start_matches('0').to_owned()
}

fn validity(not_before: SystemTime, not_after: SystemTime) -> Result<Validity> {
    Ok(Validity::new(
        Time::try_from(not_before).map_err(cert_err)?,
        Time::try_from(not_after).map_err(cert_err)?,
    ))
}

fn spki_of(key: &PublicKey) -> Result<SubjectPublicKeyInfoOwned> {
    let der_bytes = key.to_spki_der()?;
    SubjectPublicKeyInfoOwned::from_der(&der_bytes).map_err(cert_err)
}

/// Profile of the root: CA:TRUE with pathLen 0, keyCertSign and cRLSign,
/// SKI and AKI (equal, self-signed).
struct RootProfile {
    subject: Name,
}

impl BuilderProfile for RootProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    // Each extension is built seeing the ones before it, so `vec![]` cannot be used.
    #[allow(clippy::vec_init_then_push)]
    fn build_extensions(
        &self,
        spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        let mut exts: Vec<Extension> = Vec::new();
        exts.push(
            BasicConstraints {
                ca: true,
                path_len_constraint: Some(profile::X509_ROOT_PATH_LEN),
            }
            .to_extension(tbs.subject(), &exts)?,
        );
        exts.push(
            KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
                .to_extension(tbs.subject(), &exts)?,
        );
        exts.push(ski.to_extension(tbs.subject(), &exts)?);
        exts.push(
            AuthorityKeyIdentifier {
                key_identifier: Some(ski.0.clone()),
                ..Default::default()
            }
            .to_extension(tbs.subject(), &exts)?,
        );
        Ok(exts)
    }
}

/// Profile of an end-entity certificate: CA:FALSE, digitalSignature, one
/// EKU (clientAuth for users, serverAuth for the daemon's TLS), the given
/// subjectAltNames, SKI, AKI = the root's SKI.
#[derive(Clone)]
struct LeafProfile {
    issuer: Name,
    subject: Name,
    extended_key_usage: const_oid::ObjectIdentifier,
    names: Vec<GeneralName>,
}

impl BuilderProfile for LeafProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    // Each extension is built seeing the ones before it, so `vec![]` cannot be used.
    #[allow(clippy::vec_init_then_push)]
    fn build_extensions(
        &self,
        spk: spki::SubjectPublicKeyInfoRef<'_>,
        issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut exts: Vec<Extension> = Vec::new();
        exts.push(
            BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }
            .to_extension(tbs.subject(), &exts)?,
        );
        exts.push(KeyUsage(KeyUsages::DigitalSignature.into()).to_extension(tbs.subject(), &exts)?);
        exts.push(
            ExtendedKeyUsage(vec![self.extended_key_usage]).to_extension(tbs.subject(), &exts)?,
        );
        exts.push(SubjectAltName(self.names.clone()).to_extension(tbs.subject(), &exts)?);
        exts.push(SubjectKeyIdentifier::try_from(spk)?.to_extension(tbs.subject(), &exts)?);
        let issuer_ski = SubjectKeyIdentifier::try_from(issuer_spk)?;
        exts.push(
            AuthorityKeyIdentifier {
                key_identifier: Some(issuer_ski.0),
                ..Default::default()
            }
            .to_extension(tbs.subject(), &exts)?,
        );
        Ok(exts)
    }
}

fn build<P: BuilderProfile, B: SigningBackend>(
    profile: P,
    serial: SerialNumber,
    validity: Validity,
    subject_key: &PublicKey,
    signer: &X509Signer<B>,
) -> Result<Certificate> {
    let builder = CertificateBuilder::new(profile, serial, validity, spki_of(subject_key)?)
        .map_err(cert_err)?;
    let signer = crate::authority::KeepHsmError::new(signer);
    builder
        .build::<_, X509Signature>(&signer)
        .map_err(|e| signer.failure_or(cert_err(e)))
}

/// Creates the self-signed root over the token's X.509 CA key.
pub fn create_root<B: SigningBackend>(
    signer: &X509Signer<B>,
    common_name: &str,
    organization: &str,
    lifetime: Duration,
) -> Result<Certificate> {
    let now = SystemTime::now();
    let (serial, _) = random_serial()?;
    build(
        RootProfile {
            subject: name(common_name, Some(organization))?,
        },
        serial,
        validity(now - CLOCK_SKEW_BACKDATE, now + lifetime)?,
        signer.public_key(),
        signer,
    )
}

/// What a client certificate is for.
pub struct ClientCertSpec<'a> {
    /// The user it names (CN and SAN URI).
    pub user: &'a str,
    /// The key it certifies.
    pub public_key: &'a PublicKey,
    /// Validity start (already backdated).
    pub not_before: SystemTime,
    /// Validity end (already capped at the root's end).
    pub not_after: SystemTime,
    /// Authority of the SAN URI.
    pub trust_domain: &'a str,
    /// Roles that allowed the issuance (a SAN URI each).
    pub roles: &'a [String],
    /// The attested YubiKey holding the key (SAN URIs for the device and
    /// the key's PIN and touch policy).
    pub device: Option<&'a signet_log::entry::PivDevice>,
}

/// Issues a client certificate under `root` and returns its DER.
pub fn issue_client<B: SigningBackend>(
    signer: &X509Signer<B>,
    root: &Certificate,
    spec: &ClientCertSpec<'_>,
    serial: SerialNumber,
) -> Result<Vec<u8>> {
    let cert = build(
        client_profile(root, spec)?,
        serial,
        validity(spec.not_before, spec.not_after)?,
        spec.public_key,
        signer,
    )?;
    cert.to_der().map_err(cert_err)
}

/// The precertificate of a client certificate (what the log records before
/// it is signed): the DER TBSCertificate [`issue_client_with_proof`] signs,
/// without the log-proof extension. Nothing is signed.
pub fn client_precertificate<B: SigningBackend>(
    signer: &X509Signer<B>,
    root: &Certificate,
    spec: &ClientCertSpec<'_>,
    serial: SerialNumber,
) -> Result<Vec<u8>> {
    let mut builder = CertificateBuilder::new(
        client_profile(root, spec)?,
        serial,
        validity(spec.not_before, spec.not_after)?,
        spki_of(spec.public_key)?,
    )
    .map_err(cert_err)?;
    builder.finalize(signer).map_err(cert_err)
}

/// Issues the client certificate whose precertificate was logged, with the
/// proof of that logging as its last extension.
pub fn issue_client_with_proof<B: SigningBackend>(
    signer: &X509Signer<B>,
    root: &Certificate,
    spec: &ClientCertSpec<'_>,
    serial: SerialNumber,
    proof: &signet_log::certificate::CertificateProof,
) -> Result<Vec<u8>> {
    let profile =
        signet_log::certificate::LogProofProfile::new(client_profile(root, spec)?, proof)?;
    let cert = build(
        profile,
        serial,
        validity(spec.not_before, spec.not_after)?,
        spec.public_key,
        signer,
    )?;
    cert.to_der().map_err(cert_err)
}

fn client_profile(root: &Certificate, spec: &ClientCertSpec<'_>) -> Result<LeafProfile> {
    let mut names = Vec::new();
    for uri in client_uris(spec) {
        names.push(GeneralName::UniformResourceIdentifier(
            Ia5String::new(&uri).map_err(cert_err)?,
        ));
    }
    Ok(LeafProfile {
        issuer: root.tbs_certificate().subject().clone(),
        subject: name(spec.user, None)?,
        extended_key_usage: ID_KP_CLIENT_AUTH,
        names,
    })
}

fn client_uris(spec: &ClientCertSpec<'_>) -> Vec<String> {
    use profile::x509_client as uris;
    let mut names = vec![uris::user_uri(spec.trust_domain, spec.user)];
    for role in spec.roles {
        names.push(uris::role_uri(spec.trust_domain, role));
    }
    if let Some(device) = spec.device {
        names.push(uris::device_uri(spec.trust_domain, device.serial));
        names.push(uris::key_policy_uri(spec.trust_domain, device));
    }
    names
}

/// A TLS server name: a DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerName {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(std::net::IpAddr),
}

impl std::fmt::Display for ServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Issues the CA daemon's TLS server certificate (CN = the first name) and
/// returns its DER.
pub fn issue_server<B: SigningBackend>(
    signer: &X509Signer<B>,
    root: &Certificate,
    names: &[ServerName],
    public_key: &PublicKey,
    not_before: SystemTime,
    not_after: SystemTime,
    serial: SerialNumber,
) -> Result<Vec<u8>> {
    let first = names
        .first()
        .ok_or_else(|| Error::bad("serve.names", "needs at least one name"))?;
    let mut general = Vec::with_capacity(names.len());
    for name in names {
        general.push(match name {
            ServerName::Dns(dns) => GeneralName::DnsName(Ia5String::new(dns).map_err(cert_err)?),
            ServerName::Ip(ip) => {
                let bytes = match ip {
                    std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                    std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                GeneralName::IpAddress(der::asn1::OctetString::new(bytes).map_err(cert_err)?)
            }
        });
    }
    let profile = LeafProfile {
        issuer: root.tbs_certificate().subject().clone(),
        subject: name(&first.to_string(), None)?,
        extended_key_usage: ID_KP_SERVER_AUTH,
        names: general,
    };
    let cert = build(
        profile,
        serial,
        validity(not_before, not_after)?,
        public_key,
        signer,
    )?;
    cert.to_der().map_err(cert_err)
}

/// PEM of a certificate.
pub fn to_pem(cert: &Certificate) -> Result<String> {
    cert.to_pem(der::pem::LineEnding::LF).map_err(cert_err)
}

/// PEM of DER certificate bytes.
pub fn der_to_pem(der_bytes: &[u8]) -> Result<String> {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der_bytes).map_err(cert_err)
}

/// Parses a PEM certificate (the root in the data dir).
pub fn from_pem(text: &str) -> Result<Certificate> {
    use der::DecodePem;
    Certificate::from_pem(text).map_err(cert_err)
}

/// The subject public key of a certificate, in the HSM layer's type.
pub fn public_key_of(cert: &Certificate) -> Result<PublicKey> {
    let der_bytes = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(cert_err)?;
    Ok(PublicKey::from_spki_der(&der_bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_serials_have_no_leading_zero_digit() {
        for (octets, expected) in [
            (&[0x0a, 0xbc][..], "abc"),
            (&[0x00, 0x8f, 0x01][..], "8f01"),
            (&[0x40, 0x00][..], "4000"),
            (&[0x01][..], "1"),
        ] {
            let serial = SerialNumber::new(octets).unwrap();
            assert_eq!(log_serial(&serial), expected);
        }
    }
}
