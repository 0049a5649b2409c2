//! Reading the certificate given to `signet audit prove --cert FILE`.
//!
//! The bytes that matter are the ones an entry's `certificate.sha256`
//! covers: for OpenSSH, the certificate blob (the base64 field of a
//! `…-cert.pub` line); for X.509, the DER (from PEM, or a raw DER file).

use sha2::{Digest, Sha256};

use super::error::{AuditError, Result};

/// Largest certificate file read.
const MAX_CERT_FILE: u64 = 1024 * 1024;

/// What kind of certificate a file held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertFormat {
    /// An OpenSSH certificate.
    OpenSsh,
    /// An X.509 certificate.
    X509,
}

/// A certificate's bytes and their SHA-256.
#[derive(Debug, Clone)]
pub struct CertBytes {
    /// Which format.
    pub format: CertFormat,
    /// The bytes the log records.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`.
    pub sha256: [u8; 32],
}

/// Reads a certificate file.
pub fn read(path: &std::path::Path) -> Result<CertBytes> {
    let name = path.display();
    let raw = super::localfile::read_regular(path, MAX_CERT_FILE)
        .map_err(|e| AuditError::bad_input(format!("--cert {name}: {e}")))?;
    parse(&raw).map_err(|e| AuditError::bad_input(format!("--cert {name}: {e}")))
}

/// Parses certificate file contents.
pub fn parse(raw: &[u8]) -> Result<CertBytes> {
    let (format, bytes) = if raw.first() == Some(&0x30) {
        (CertFormat::X509, raw.to_vec())
    } else {
        let text = std::str::from_utf8(raw).map_err(|_| {
            AuditError::bad_input("not an OpenSSH certificate, a PEM certificate or DER")
        })?;
        if text.contains("-----BEGIN") {
            let (label, der) = super::pem::first_block(text)?;
            if label != "CERTIFICATE" {
                return Err(AuditError::bad_input(format!(
                    "PEM label is {label:?}, expected \"CERTIFICATE\""
                )));
            }
            (CertFormat::X509, der)
        } else {
            (CertFormat::OpenSsh, parse_openssh(text)?)
        }
    };
    let sha256 = Sha256::digest(&bytes).into();
    Ok(CertBytes {
        format,
        bytes,
        sha256,
    })
}

/// The blob of `<type> <base64> [comment]`, checking that the blob names the same type.
fn parse_openssh(text: &str) -> Result<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| AuditError::bad_input("empty file"))?;
    let mut fields = line.split_whitespace();
    let (Some(ty), Some(b64)) = (fields.next(), fields.next()) else {
        return Err(AuditError::bad_input(
            "expected an OpenSSH certificate line: <type> <base64> [comment]",
        ));
    };
    if !ty.ends_with("-cert-v01@openssh.com") {
        return Err(AuditError::bad_input(format!(
            "{ty:?} is not an OpenSSH certificate type (give the …-cert.pub file)"
        )));
    }
    let blob = STANDARD
        .decode(b64)
        .map_err(|_| AuditError::bad_input("the certificate is not valid base64"))?;
    let inner = blob
        .split_first_chunk::<4>()
        .and_then(|(len, rest)| rest.get(..u32::from_be_bytes(*len) as usize));
    if inner != Some(ty.as_bytes()) {
        return Err(AuditError::bad_input(
            "the certificate blob does not start with its type name",
        ));
    }
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssh_lines() {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        let ty = "ssh-ed25519-cert-v01@openssh.com";
        let mut blob = (ty.len() as u32).to_be_bytes().to_vec();
        blob.extend_from_slice(ty.as_bytes());
        blob.extend_from_slice(b"rest");
        let line = format!("{ty} {} alice\n", STANDARD.encode(&blob));
        let c = parse(line.as_bytes()).unwrap();
        assert_eq!(c.format, CertFormat::OpenSsh);
        assert_eq!(c.bytes, blob);
        let wrong = format!("ssh-rsa-cert-v01@openssh.com {}", STANDARD.encode(&blob));
        assert!(parse(wrong.as_bytes()).is_err());
        assert!(parse(b"ssh-ed25519 AAAA").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());
        assert!(parse(format!("{ty} !!!").as_bytes()).is_err());
        assert!(parse(format!("{ty} AAAA").as_bytes()).is_err());
    }
}
