//! One certificate of a chain: its DER, the exact bytes its signature
//! covers, and the parsed fields the checks read.

use der::{Decode, Encode, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::ext::Extension;
use x509_cert::Certificate;

/// Largest certificate accepted. YubiKey attestation certificates are under
/// 1.5 KiB even for RSA-4096 keys; Yubico's CA certificates under 1 KiB.
pub(crate) const MAX_CERT_LEN: usize = 8 * 1024;

/// A parsed certificate.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub(crate) der: Vec<u8>,
    /// The `tbsCertificate` exactly as it was encoded: what the signature
    /// covers (re-encoding could differ from the signed bytes).
    pub(crate) tbs: Vec<u8>,
    /// The subject public key info, DER (compared to match roots, returned
    /// for the slot certificate).
    pub(crate) spki: Vec<u8>,
    pub(crate) cert: Certificate,
}

/// Why a certificate could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertError {
    TooLarge,
    Malformed,
    DuplicateExtension,
}

impl Cert {
    pub(crate) fn parse(der: &[u8]) -> Result<Self, CertError> {
        if der.len() > MAX_CERT_LEN {
            return Err(CertError::TooLarge);
        }
        let cert = Certificate::from_der(der).map_err(|_| CertError::Malformed)?;
        let tbs = raw_tbs(der).map_err(|_| CertError::Malformed)?;
        // The signature algorithm inside the signed part must be the one the
        // signature claims (RFC 5280 4.1.1.2): otherwise an attacker could
        // choose which one the verifier uses.
        if cert.tbs_certificate().signature() != cert.signature_algorithm() {
            return Err(CertError::Malformed);
        }
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|_| CertError::Malformed)?;
        let parsed = Self {
            der: der.to_vec(),
            tbs: tbs.to_vec(),
            spki,
            cert,
        };
        let mut seen = Vec::new();
        for ext in parsed.extensions() {
            if seen.contains(&ext.extn_id) {
                return Err(CertError::DuplicateExtension);
            }
            seen.push(ext.extn_id);
        }
        Ok(parsed)
    }

    pub(crate) fn extensions(&self) -> &[Extension] {
        self.cert
            .tbs_certificate()
            .extensions()
            .map(|e| e.as_slice())
            .unwrap_or(&[])
    }

    pub(crate) fn extension(&self, oid: const_oid::ObjectIdentifier) -> Option<&Extension> {
        self.extensions().iter().find(|e| e.extn_id == oid)
    }

    /// basicConstraints: `None` when absent, `Err` when unreadable.
    pub(crate) fn basic_constraints(&self) -> Result<Option<BasicConstraints>, ()> {
        decode_ext(self, const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
    }

    /// keyUsage: `None` when absent, `Err` when unreadable.
    pub(crate) fn key_usage(&self) -> Result<Option<KeyUsage>, ()> {
        decode_ext(self, const_oid::db::rfc5280::ID_CE_KEY_USAGE)
    }

    /// Same subject and the same public key: the same CA, whichever
    /// certificate of it was sent.
    pub(crate) fn same_entity(&self, other: &Cert) -> bool {
        self.spki == other.spki
            && self.cert.tbs_certificate().subject() == other.cert.tbs_certificate().subject()
    }

    pub(crate) fn is_self_issued(&self) -> bool {
        let t = self.cert.tbs_certificate();
        t.subject() == t.issuer()
    }
}

fn decode_ext<T: for<'a> Decode<'a>>(
    cert: &Cert,
    oid: const_oid::ObjectIdentifier,
) -> Result<Option<T>, ()> {
    match cert.extension(oid) {
        None => Ok(None),
        Some(ext) => T::from_der(ext.extn_value.as_bytes())
            .map(Some)
            .map_err(|_| ()),
    }
}

/// The raw `tbsCertificate` TLV of a DER certificate.
fn raw_tbs(der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    let tbs = reader.sequence(|r| {
        let tbs = r.tlv_bytes()?;
        let rest = r.remaining_len();
        r.drain(rest)?;
        Ok::<_, der::Error>(tbs)
    })?;
    reader.finish()?;
    Ok(tbs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL_F9: &str = include_str!("../tests/data/yubikey-25515003/f9-device.pem");

    fn real_f9_der() -> Vec<u8> {
        use der::DecodePem;
        Certificate::from_pem(REAL_F9.as_bytes())
            .unwrap()
            .to_der()
            .unwrap()
    }

    #[test]
    fn the_signed_bytes_are_the_tbs_as_encoded() {
        let der = real_f9_der();
        let cert = Cert::parse(&der).unwrap();
        assert_eq!(
            cert.tbs,
            cert.cert.tbs_certificate().to_der().unwrap(),
            "a canonical certificate re-encodes to the same TBS"
        );
        assert!(der.windows(cert.tbs.len()).any(|w| w == cert.tbs));
        assert!(cert.basic_constraints().unwrap().unwrap().ca);
        assert!(cert.key_usage().unwrap().is_none());
    }

    #[test]
    fn trailing_truncated_and_oversized_input_is_refused() {
        let der = real_f9_der();
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(Cert::parse(&trailing).unwrap_err(), CertError::Malformed);
        assert_eq!(
            Cert::parse(&der[..der.len() - 1]).unwrap_err(),
            CertError::Malformed
        );
        assert_eq!(
            Cert::parse(&vec![0u8; MAX_CERT_LEN + 1]).unwrap_err(),
            CertError::TooLarge
        );
        assert!(raw_tbs(&[0x30, 0x00]).is_err());
        assert!(raw_tbs(&[]).is_err());
    }
}
