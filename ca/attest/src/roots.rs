//! Trust anchors for device attestation, and the published intermediates
//! that a device does not carry.

use crate::cert::{Cert, CertError};
use crate::error::AttestError;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Largest roots file [`DeviceRoots::from_pem_file`] reads.
const MAX_ROOTS_FILE: u64 = 1024 * 1024;

/// Yubico's PIV attestation PKI as published, pinned by SHA-256 of the DER.
/// `(file contents, fingerprint, is a root)`; see `roots/README.md`.
const YUBICO: [(&str, &str, bool); 6] = [
    (
        include_str!("../roots/yubico-piv-root-ca-serial-263751.pem"),
        "63ece914e54dd87915f34033c85af4c0696ba1512f8add66ced738331207b546",
        true,
    ),
    (
        include_str!("../roots/yubico-attestation-root-1.pem"),
        "62760c6a6ef91679f454c8902b80fd009825b3f25da90f1fbace2ec6586cd5a8",
        true,
    ),
    (
        include_str!("../roots/yubico-attestation-intermediate-a-1.pem"),
        "4698a1d3389c3ec60016c216250f1d0439922832d65142327436376dc2942b55",
        false,
    ),
    (
        include_str!("../roots/yubico-attestation-intermediate-b-1.pem"),
        "d4cc3f456fdaf4e7812a21aab1dfe9d8e27d24e2fd2d6f21c9940109f0daa754",
        false,
    ),
    (
        include_str!("../roots/yubico-piv-attestation-a-1.pem"),
        "6de693f05376f5d8ca29069261e1c8626c75d503bd2edbfd75354cad1f722870",
        false,
    ),
    (
        include_str!("../roots/yubico-piv-attestation-b-1.pem"),
        "2d55b7998f4e42569d6d8fa382b6dc77d1dacf07358b19701163892922b17052",
        false,
    ),
    // "Yubico PIV Attestation B2 1" (SHA-256 0c90b7d1…a440) is published by
    // Yubico too but could not be obtained for this release: see roots/README.md.
];

/// Trust anchors for device attestation: the roots a chain must end at,
/// and CA certificates that may complete a chain between the device's f9
/// certificate and a root (Yubico does not put its newer intermediates on
/// the device, so the verifier has to know them).
#[derive(Debug, Clone, Default)]
pub struct DeviceRoots {
    pub(crate) anchors: Vec<Cert>,
    pub(crate) intermediates: Vec<Cert>,
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// The certificates of the `CERTIFICATE` blocks in `pem`, in order. Text
/// outside the blocks (comments, `openssl x509 -text` output) is ignored,
/// as RFC 7468 allows; each block is decoded by `der`'s PEM decoder.
fn parse_pem(pem: &str) -> Result<Vec<Cert>, AttestError> {
    let mut certs = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start..];
        let end = block.find(END).ok_or_else(|| {
            AttestError::InvalidRoots(format!(
                "certificate {}: no END CERTIFICATE line",
                certs.len() + 1
            ))
        })? + END.len();
        let n = certs.len() + 1;
        let (label, der) = der::pem::decode_vec(&block.as_bytes()[..end])
            .map_err(|e| AttestError::InvalidRoots(format!("certificate {n}: bad PEM ({e})")))?;
        if label != "CERTIFICATE" {
            return Err(AttestError::InvalidRoots(format!(
                "certificate {n}: a {label} block"
            )));
        }
        let cert = Cert::parse(&der).map_err(|e| {
            let why = match e {
                CertError::TooLarge => "it is too large",
                CertError::Malformed => "it is not a valid X.509 certificate",
                CertError::DuplicateExtension => "it has an extension twice",
            };
            AttestError::InvalidRoots(format!("certificate {n}: {why}"))
        })?;
        certs.push(cert);
        rest = &block[end..];
    }
    if certs.is_empty() {
        return Err(AttestError::InvalidRoots(
            "no CERTIFICATE block found".to_string(),
        ));
    }
    Ok(certs)
}

impl DeviceRoots {
    /// The Yubico PIV attestation roots shipped with Signet: "Yubico PIV
    /// Root CA Serial 263751" (firmware before 5.7.4) and "Yubico
    /// Attestation Root 1" (firmware 5.7.4 and later), with the published
    /// intermediates that lead from the newer devices' f9 certificates to it.
    /// Each file is checked against its pinned SHA-256 fingerprint.
    pub fn yubico() -> Result<Self, AttestError> {
        let mut roots = Self::default();
        for (pem, fingerprint, is_root) in YUBICO {
            for cert in parse_pem(pem)? {
                if hex::encode(Sha256::digest(&cert.der)) != fingerprint {
                    return Err(AttestError::InvalidRoots(
                        "a shipped Yubico certificate does not match its pinned fingerprint"
                            .to_string(),
                    ));
                }
                roots.push(cert, is_root);
            }
        }
        Ok(roots)
    }

    /// Trust anchors from one or more PEM `CERTIFICATE` blocks. Every
    /// certificate given is trusted as a root: a chain that reaches it
    /// (or a certificate with its subject and key) is accepted.
    pub fn from_pem(pem: &str) -> Result<Self, AttestError> {
        let mut roots = Self::default();
        for cert in parse_pem(pem)? {
            roots.push(cert, true);
        }
        Ok(roots)
    }

    /// As [`DeviceRoots::from_pem`], reading the file at `path` (at most 1 MiB).
    pub fn from_pem_file(path: &Path) -> Result<Self, AttestError> {
        let read = || -> std::io::Result<String> {
            use std::io::Read;
            let file = std::fs::File::open(path)?;
            if !file.metadata()?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            let mut text = String::new();
            file.take(MAX_ROOTS_FILE + 1).read_to_string(&mut text)?;
            if text.len() as u64 > MAX_ROOTS_FILE {
                return Err(std::io::Error::other("larger than 1 MiB"));
            }
            Ok(text)
        };
        let text = read()
            .map_err(|e| AttestError::InvalidRoots(format!("reading {}: {e}", path.display())))?;
        Self::from_pem(&text)
            .map_err(|e| AttestError::InvalidRoots(format!("{}: {e}", path.display())))
    }

    /// Adds CA certificates that may complete a chain above the f9
    /// certificate but are not trusted by themselves: a chain through them
    /// must still end at a root.
    pub fn add_intermediates_pem(&mut self, pem: &str) -> Result<(), AttestError> {
        for cert in parse_pem(pem)? {
            self.push(cert, false);
        }
        Ok(())
    }

    /// Adds the roots and intermediates of `other`.
    pub fn extend(&mut self, other: DeviceRoots) {
        for cert in other.anchors {
            self.push(cert, true);
        }
        for cert in other.intermediates {
            self.push(cert, false);
        }
    }

    /// Whether no root is configured (every chain would be refused).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The subjects of the roots, for logs and `--help` output.
    pub fn root_subjects(&self) -> Vec<String> {
        self.anchors
            .iter()
            .map(|c| c.cert.tbs_certificate().subject().to_string())
            .collect()
    }

    /// The roots as PEM, e.g. to show an operator what is trusted.
    pub fn roots_pem(&self) -> Result<String, AttestError> {
        let mut out = String::new();
        for c in &self.anchors {
            let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &c.der)
                .map_err(|e| AttestError::InvalidRoots(e.to_string()))?;
            out.push_str(&pem);
        }
        Ok(out)
    }

    fn push(&mut self, cert: Cert, is_root: bool) {
        let list = if is_root {
            &mut self.anchors
        } else {
            &mut self.intermediates
        };
        if !list.iter().any(|c| c.der == cert.der) {
            list.push(cert);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = include_str!("../roots/yubico-piv-root-ca-serial-263751.pem");

    #[test]
    fn explanatory_text_around_blocks_is_ignored() {
        let text = format!("# Yubico's legacy root\n{ROOT}\nsubject=CN = ...\n{ROOT}# end\n");
        let roots = DeviceRoots::from_pem(&text).unwrap();
        // The same certificate twice is one root.
        assert_eq!(roots.anchors.len(), 1);
        assert_eq!(
            hex::encode(Sha256::digest(&roots.anchors[0].der)),
            "63ece914e54dd87915f34033c85af4c0696ba1512f8add66ced738331207b546"
        );
        // And it round-trips through roots_pem.
        let again = DeviceRoots::from_pem(&roots.roots_pem().unwrap()).unwrap();
        assert_eq!(again.anchors[0].der, roots.anchors[0].der);
    }

    #[test]
    fn broken_blocks_are_refused_with_their_number() {
        let unterminated = format!("{ROOT}{}", &ROOT[..200]);
        let err = DeviceRoots::from_pem(&unterminated).unwrap_err();
        assert!(err.to_string().contains("certificate 2"), "{err}");
        let key = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = DeviceRoots::from_pem(key).unwrap_err();
        assert!(err.to_string().contains("certificate 1"), "{err}");
        assert!(DeviceRoots::from_pem("no pem here").is_err());
    }

    #[test]
    fn the_pinned_files_match_their_fingerprints() {
        for (pem, fingerprint, _) in YUBICO {
            let certs = parse_pem(pem).unwrap();
            assert_eq!(certs.len(), 1);
            assert_eq!(hex::encode(Sha256::digest(&certs[0].der)), fingerprint);
        }
    }
}
