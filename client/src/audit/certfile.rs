//! Reading the certificate given to `signet audit prove --cert FILE`.
//!
//! The bytes that matter are the ones an entry's `certificate.sha256`
//! covers: for OpenSSH, the certificate blob (the base64 field of a
//! `…-cert.pub` line); for X.509, the DER (from PEM, or a raw DER file).
//!
//! A certificate that carries its proof of logging was logged as its
//! precertificate (the certificate without its signature and the proof, or
//! the TBS without the proof extension): its entry's SHA-256 is the
//! precertificate's, computed here too.

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
    /// SHA-256 of its precertificate, when it carries a proof of logging
    /// (a precertificate-form entry records this hash).
    pub precertificate_sha256: Option<[u8; 32]>,
    /// The proof of logging it carries (`log-proof@signet`, or the X.509
    /// log-proof extension), as text.
    pub proof: Option<String>,
}

impl CertBytes {
    /// Whether an entry recording `sha256` is for this certificate, in
    /// either form (full or precertificate).
    pub fn has_hash(&self, sha256: &[u8; 32]) -> bool {
        &self.sha256 == sha256 || self.precertificate_sha256.as_ref() == Some(sha256)
    }
}

/// The precertificate's SHA-256 and the proof text, for a certificate
/// that carries a proof; `(None, None)` for one that does not (or that
/// cannot be reduced to a precertificate: its full form is looked up then).
fn proof_parts(format: CertFormat, bytes: &[u8]) -> (Option<[u8; 32]>, Option<String>) {
    use signet_log::certificate as c;
    match format {
        CertFormat::OpenSsh => {
            let Ok(cert) = c::ssh_certificate_from_bytes(bytes) else {
                return (None, None);
            };
            let Some(proof) = c::ssh_proof_text(&cert).map(str::to_owned) else {
                return (None, None);
            };
            let pre = c::ssh_precertificate(&cert)
                .ok()
                .map(|p| Sha256::digest(&p).into());
            (pre, Some(proof))
        }
        CertFormat::X509 => {
            let Ok(proof) = c::x509_proof_text(bytes) else {
                return (None, None);
            };
            let pre = c::x509_precertificate(bytes)
                .ok()
                .map(|p| Sha256::digest(&p).into());
            (pre, Some(proof))
        }
    }
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
    let (precertificate_sha256, proof) = proof_parts(format, &bytes);
    Ok(CertBytes {
        format,
        bytes,
        sha256,
        precertificate_sha256,
        proof,
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
