//! Does the certificate in an entry say what the entry says?
//!
//! The entry's summary fields (serial, validity, principals, key
//! fingerprint, subject) are what auditors search and read; the certificate
//! bytes are what servers trust. A CA that logged one thing and issued
//! another would be caught by the SHA-256 only if the auditor also reads
//! the certificate, so this parses it (OpenSSH with `ssh-key`, X.509 with
//! `x509-cert`) and compares field by field.

use der::Decode;
use ssh_key::certificate::CertType;

use super::{Entry, EntryKind, IssuedCertificate};
use crate::{EntryError, Result};

fn mismatch(field: &'static str) -> crate::Error {
    EntryError::CertificateMismatch(field).into()
}

/// Checks an issuing entry's certificate against its fields. Entries of
/// other kinds pass.
///
/// OpenSSH: certificate type matches the kind; serial, validity,
/// principals (same list, same order) and the certified key's SHA-256
/// fingerprint equal the entry's. X.509: serial, validity and the certified
/// key's fingerprint (of its OpenSSH encoding, as for OpenSSH entries) equal
/// the entry's, and when the entry names a subject, the certificate's CN is
/// that subject.
pub fn check_certificate_contents(entry: &Entry) -> Result<()> {
    let Some(cert) = &entry.certificate else {
        return Ok(());
    };
    match entry.kind {
        EntryKind::SshUserCert => check_ssh(entry, cert, CertType::User),
        EntryKind::SshHostCert => check_ssh(entry, cert, CertType::Host),
        EntryKind::X509Cert => check_x509(entry, cert),
        _ => Ok(()),
    }
}

fn check_ssh(entry: &Entry, cert: &IssuedCertificate, cert_type: CertType) -> Result<()> {
    let parsed = ssh_key::Certificate::from_bytes(&cert.bytes.0)
        .map_err(|_| mismatch("certificate (not an OpenSSH certificate)"))?;
    if parsed.cert_type() != cert_type {
        return Err(mismatch("kind (certificate type)"));
    }
    if parsed.serial().to_string() != cert.serial {
        return Err(mismatch("certificate.serial"));
    }
    if parsed.valid_after() != cert.not_before {
        return Err(mismatch("certificate.not_before"));
    }
    if parsed.valid_before() != cert.not_after {
        return Err(mismatch("certificate.not_after"));
    }
    if parsed.valid_principals() != entry.principals.as_slice() {
        return Err(mismatch("principals"));
    }
    let fingerprint = parsed
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    if fingerprint != cert.public_key_fingerprint {
        return Err(mismatch("certificate.public_key_fingerprint"));
    }
    Ok(())
}

fn check_x509(entry: &Entry, cert: &IssuedCertificate) -> Result<()> {
    let parsed = x509_cert::Certificate::from_der(&cert.bytes.0)
        .map_err(|_| mismatch("certificate (not a DER X.509 certificate)"))?;
    let tbs = parsed.tbs_certificate();
    let serial = tbs.serial_number().as_bytes();
    let first = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    let serial_hex: String = serial[first..].iter().map(|b| format!("{b:02x}")).collect();
    if serial_hex.trim_start_matches('0') != cert.serial.trim_start_matches('0') {
        return Err(mismatch("certificate.serial"));
    }
    let unix = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
    if unix(&tbs.validity().not_before) != cert.not_before {
        return Err(mismatch("certificate.not_before"));
    }
    if unix(&tbs.validity().not_after) != cert.not_after {
        return Err(mismatch("certificate.not_after"));
    }
    if x509_key_fingerprint(&parsed)? != cert.public_key_fingerprint {
        return Err(mismatch("certificate.public_key_fingerprint"));
    }
    if let Some(subject) = &entry.subject {
        let expected = format!("CN={subject}");
        if tbs.subject().to_string() != expected {
            return Err(mismatch("subject (certificate CN)"));
        }
    }
    Ok(())
}

/// The OpenSSH fingerprint (`SHA256:…`) of the key an X.509 certificate
/// certifies: the same fingerprint `ssh-keygen -l` prints for that key, so
/// entries name keys the same way whatever the certificate format.
/// Ed25519, ECDSA P-256/P-384/P-521 and RSA keys; other types are a mismatch.
pub fn x509_key_fingerprint(cert: &x509_cert::Certificate) -> Result<String> {
    use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, RsaPublicKey};
    const ED25519: &str = "1.3.101.112";
    const EC: &str = "1.2.840.10045.2.1";
    const RSA: &str = "1.2.840.113549.1.1.1";
    let spki = cert.tbs_certificate().subject_public_key_info();
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| mismatch("certificate (public key is not whole bytes)"))?;
    let unsupported = || mismatch("certificate (public key type)");
    let key = match spki.algorithm.oid.to_string().as_str() {
        ED25519 => KeyData::Ed25519(Ed25519PublicKey(
            bits.try_into().map_err(|_| unsupported())?,
        )),
        EC => KeyData::Ecdsa(EcdsaPublicKey::from_sec1_bytes(bits).map_err(|_| unsupported())?),
        RSA => {
            use der::Reader as _;
            let mut reader = der::SliceReader::new(bits).map_err(|_| unsupported())?;
            let (n, e) = reader
                .sequence(|r| {
                    let n = der::asn1::UintRef::decode(r)?;
                    let e = der::asn1::UintRef::decode(r)?;
                    Ok::<_, der::Error>((n, e))
                })
                .map_err(|_| unsupported())?;
            let e = ssh_key::Mpint::from_positive_bytes(e.as_bytes());
            let n = ssh_key::Mpint::from_positive_bytes(n.as_bytes());
            KeyData::Rsa(RsaPublicKey::new(e, n).map_err(|_| unsupported())?)
        }
        _ => return Err(unsupported()),
    };
    Ok(key.fingerprint(ssh_key::HashAlg::Sha256).to_string())
}
