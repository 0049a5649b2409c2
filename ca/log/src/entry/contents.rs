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
/// fingerprint equal the entry's. X.509: serial and validity equal the
/// entry's, and when the entry names a subject, the certificate's CN is
/// that subject. (The X.509 key fingerprint is not recomputed here: that
/// needs the key's OpenSSH encoding; the certificate hash still binds it.)
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
    if let Some(subject) = &entry.subject {
        let expected = format!("CN={subject}");
        if tbs.subject().to_string() != expected {
            return Err(mismatch("subject (certificate CN)"));
        }
    }
    Ok(())
}
