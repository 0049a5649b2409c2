//! X.509 precertificates and the log-proof extension.
//!
//! The precertificate is the DER `TBSCertificate` without the log-proof
//! extension. The CA appends that extension last among the extensions (see
//! [`LogProofProfile`]), so removing it from the final certificate's TBS and
//! re-encoding gives back the precertificate's bytes exactly; a certificate
//! where that is not so is refused, not repaired.
//!
//! The extension is non-critical, so relying parties that know nothing of
//! Signet's log accept the certificate as before. Its `extnValue` holds the
//! DER of a `UTF8String` with the proof text.

use der::asn1::{OctetString, Utf8StringRef};
use der::{Decode, Encode};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use super::proof::CertificateProof;
use crate::error::ProofError;
use crate::Result;

/// The log-proof extension's OID: `1.3.6.1.4.1.32473.138392655.1`.
///
/// A placeholder until Signet has its own IANA Private Enterprise Number:
/// 32473 is the PEN RFC 5612 reserves for documentation, and `138392655`
/// is the first 28 bits (`0x83fb24f`) of a random UUID
/// (`83fb24fe-c97e-40c3-bda0-2b8ca583bcaa`, Python's `uuid.uuid4()`), so it
/// does not collide with other documentation examples. It is not the
/// UUID's own `2.25.<uuid>` OID (ITU-T X.667) on purpose: an arc of 128
/// bits makes a certificate unreadable to `x509-cert` (const-oid arcs are
/// 32-bit), Go's `crypto/x509` and pyca/cryptography (38 and later), so a
/// relying party that never heard of Signet could not even parse it.
/// `docs/log-format.md` records the choice.
pub const X509_PROOF_OID: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.138392655.1");

fn not_reducible(why: &'static str) -> crate::Error {
    ProofError::NotReducible(why).into()
}

/// The non-critical log-proof extension holding `proof`.
pub fn x509_proof_extension(proof: &CertificateProof) -> Result<Extension> {
    let text = proof.encode();
    let value = Utf8StringRef::new(&text)
        .and_then(|s| s.to_der())
        .and_then(OctetString::new)
        .map_err(|_| ProofError::Malformed("proof text does not fit a UTF8String"))?;
    Ok(Extension {
        extn_id: X509_PROOF_OID,
        critical: false,
        extn_value: value,
    })
}

/// A certificate profile with the log-proof extension appended after the
/// inner profile's extensions: what the CA builds the final certificate
/// with, after logging the precertificate its inner profile alone makes.
///
/// ```text
/// precertificate = CertificateBuilder::new(profile, serial, validity, spki)?.finalize(&signer)?
///   … log it, wait for the cosigned checkpoint, make the proof …
/// certificate = CertificateBuilder::new(LogProofProfile::new(profile, &proof)?, serial, validity, spki)?
///                   .build(&signer)?
/// ```
///
/// (`finalize` returns the DER TBS without signing anything.) The inner
/// profile must make the same extensions both times; the CA checks the
/// result with [`x509_precertificate`] before releasing it.
#[derive(Debug, Clone)]
pub struct LogProofProfile<P> {
    inner: P,
    extension: Extension,
}

impl<P: BuilderProfile> LogProofProfile<P> {
    /// `inner` with the log-proof extension for `proof` last.
    pub fn new(inner: P, proof: &CertificateProof) -> Result<Self> {
        Ok(Self {
            inner,
            extension: x509_proof_extension(proof)?,
        })
    }
}

impl<P: BuilderProfile> BuilderProfile for LogProofProfile<P> {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.inner.get_issuer(subject)
    }

    fn get_subject(&self) -> Name {
        self.inner.get_subject()
    }

    fn build_extensions(
        &self,
        spk: x509_cert::spki::SubjectPublicKeyInfoRef<'_>,
        issuer_spk: x509_cert::spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut extensions = self.inner.build_extensions(spk, issuer_spk, tbs)?;
        extensions.push(self.extension.clone());
        Ok(extensions)
    }
}

/// Parses a DER certificate that must re-encode to exactly its bytes.
fn strict_certificate(cert_der: &[u8]) -> Result<x509_cert::Certificate> {
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|_| not_reducible("not a DER X.509 certificate"))?;
    if cert.to_der().ok().as_deref() != Some(cert_der) {
        return Err(not_reducible("the certificate is not in its DER encoding"));
    }
    Ok(cert)
}

/// The log-proof extensions of a TBS.
fn proof_extensions(tbs: &TbsCertificate) -> impl Iterator<Item = (usize, &Extension)> {
    tbs.extensions()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, e)| e.extn_id == X509_PROOF_OID)
}

/// The proof text in a DER certificate's log-proof extension.
///
/// Fails with [`ProofError::NoProof`] when there is none, and if the
/// extension is repeated, critical, or not a `UTF8String`.
pub fn x509_proof_text(cert_der: &[u8]) -> Result<String> {
    let cert = strict_certificate(cert_der)?;
    let tbs = cert.tbs_certificate();
    let mut found = proof_extensions(tbs);
    let Some((_, ext)) = found.next() else {
        return Err(ProofError::NoProof("X.509 log-proof").into());
    };
    if found.next().is_some() {
        return Err(not_reducible("the log-proof extension is repeated"));
    }
    if ext.critical {
        return Err(not_reducible("the log-proof extension is critical"));
    }
    let text = Utf8StringRef::from_der(ext.extn_value.as_bytes())
        .map_err(|_| ProofError::Malformed("extension value is not a DER UTF8String"))?;
    Ok(text.as_str().to_owned())
}

/// The precertificate of a DER X.509 certificate: its TBS without the
/// log-proof extension, re-encoded.
///
/// Refuses a certificate that is not in its exact DER encoding, or whose
/// log-proof extension is missing, repeated, critical, not the last
/// extension, or the only one (a Signet certificate always has others).
pub fn x509_precertificate(cert_der: &[u8]) -> Result<Vec<u8>> {
    let cert = strict_certificate(cert_der)?;
    let tbs = cert.tbs_certificate();
    let positions: Vec<usize> = proof_extensions(tbs).map(|(i, _)| i).collect();
    let extensions = tbs.extensions().map_or(&[][..], |e| e.as_slice());
    match positions.as_slice() {
        [] => return Err(ProofError::NoProof("X.509 log-proof").into()),
        [i] if *i + 1 == extensions.len() => {}
        [_] => return Err(not_reducible("the log-proof extension is not the last one")),
        _ => return Err(not_reducible("the log-proof extension is repeated")),
    }
    if extensions.last().is_some_and(|e| e.critical) {
        return Err(not_reducible("the log-proof extension is critical"));
    }
    if extensions.len() < 2 {
        return Err(not_reducible(
            "the log-proof extension is the only extension",
        ));
    }
    let tbs_der = tbs
        .to_der()
        .map_err(|_| not_reducible("the certificate does not encode"))?;
    let precertificate = without_last_extension(&tbs_der)
        .map_err(|_| not_reducible("the TBS does not split into its fields"))?;
    // What is left must be a TBS with the other extensions, unchanged.
    let parsed = TbsCertificate::from_der(&precertificate)
        .map_err(|_| not_reducible("the TBS without the proof does not parse"))?;
    let left = parsed.extensions().map_or(&[][..], |e| e.as_slice());
    if left != &extensions[..extensions.len() - 1]
        || parsed.to_der().ok().as_deref() != Some(precertificate.as_slice())
    {
        return Err(not_reducible(
            "the TBS without the proof is not the rest of it",
        ));
    }
    Ok(precertificate)
}

/// A TBS's DER with the last extension cut out and the three enclosing
/// lengths (extensions, `[3]`, TBS) written anew. The field types are not
/// decoded here; the caller parses the result.
fn without_last_extension(tbs_der: &[u8]) -> der::Result<Vec<u8>> {
    use der::asn1::AnyRef;
    use der::{Reader as _, SliceReader, Tag, TagNumber, Tagged as _};
    fn children(value: &[u8]) -> der::Result<Vec<AnyRef<'_>>> {
        let mut reader = SliceReader::new(value)?;
        let mut out = Vec::new();
        while !reader.is_finished() {
            out.push(AnyRef::decode(&mut reader)?);
        }
        Ok(out)
    }
    fn encode_all(items: &[AnyRef<'_>]) -> der::Result<Vec<u8>> {
        let mut out = Vec::new();
        for item in items {
            item.encode_to_vec(&mut out)?;
        }
        Ok(out)
    }
    let wrong = || der::Error::from(der::ErrorKind::Failed);
    let tbs = AnyRef::from_der(tbs_der)?;
    let mut fields = children(tbs.value())?;
    let explicit = fields.pop().ok_or_else(wrong)?;
    let extensions_tag = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber(3),
    };
    if tbs.tag() != Tag::Sequence || explicit.tag() != extensions_tag {
        return Err(wrong());
    }
    let sequence = AnyRef::from_der(explicit.value())?;
    let mut extensions = children(sequence.value())?;
    extensions.pop().ok_or_else(wrong)?;
    let inner = encode_all(&extensions)?;
    let sequence = AnyRef::new(Tag::Sequence, &inner)?.to_der()?;
    fields.push(AnyRef::new(extensions_tag, &sequence)?);
    let body = encode_all(&fields)?;
    AnyRef::new(Tag::Sequence, &body)?.to_der()
}

/// Parses an X.509 precertificate (a log entry's bytes): a DER
/// `TBSCertificate` in its exact encoding, without a log-proof extension.
/// The error names what is wrong, for the contents check.
pub(crate) fn parse_x509_precertificate(
    bytes: &[u8],
) -> std::result::Result<TbsCertificate, &'static str> {
    let tbs = TbsCertificate::from_der(bytes)
        .map_err(|_| "certificate (not a DER X.509 precertificate)")?;
    if tbs.to_der().ok().as_deref() != Some(bytes) {
        return Err("certificate (a precertificate not in its DER encoding)");
    }
    if proof_extensions(&tbs).next().is_some() {
        return Err("certificate (a precertificate holding a log proof)");
    }
    Ok(tbs)
}

/// Whether a parsed full certificate carries a log-proof extension (which
/// a full-form entry's certificate must not: its proof would be of another
/// entry).
pub(crate) fn has_proof_extension(tbs: &TbsCertificate) -> bool {
    proof_extensions(tbs).next().is_some()
}
