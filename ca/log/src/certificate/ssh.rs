//! OpenSSH precertificates and the `log-proof@signet` extension.
//!
//! An OpenSSH CA signs every field of the certificate up to and including
//! the signature key (PROTOCOL.certkeys); the certificate is those bytes
//! followed by the signature. The precertificate is exactly what the CA
//! signs for the certificate *without* the proof extension: the same nonce,
//! key, serial, type, key id, principals, validity, critical options and
//! extensions (less the proof), the same (empty) reserved field and the same
//! signature key.
//!
//! No wire parser is written here: [`SshCertificateFields`] rebuilds an
//! `ssh_key` certificate builder from the fields and asks it to sign with a
//! [`Recorder`], which keeps the message it is asked to sign (that message is
//! the precertificate) and refuses to sign. A verifier first rebuilds the
//! whole certificate that way and checks the message against the
//! certificate's own bytes, so a field `ssh-key` reads differently from how
//! it writes it cannot slip through.

use std::cell::RefCell;
use std::collections::BTreeMap;

use ssh_key::certificate::{Builder, CertType};
use ssh_key::encoding::Encode as _;
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, Certificate, Signature};

use super::proof::CertificateProof;
use crate::error::ProofError;
use crate::Result;

/// The OpenSSH certificate extension that carries the proof of logging. An
/// extension, never a critical option: OpenSSH ignores extensions it does
/// not know, so the certificate works where nothing checks the proof.
pub const SSH_PROOF_EXTENSION: &str = "log-proof@signet";

fn not_reducible(why: &'static str) -> crate::Error {
    ProofError::NotReducible(why).into()
}

/// The fields of an OpenSSH certificate that the CA signs, except the
/// signature key (the CA's), as the CA fills in its certificate builder.
///
/// The CA makes one of these, logs [`SshCertificateFields::precertificate`],
/// and once the entry is in a cosigned checkpoint signs
/// [`SshCertificateFields::builder`] with the proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCertificateFields {
    /// The CA's random nonce (16 or 32 bytes).
    pub nonce: Vec<u8>,
    /// The certified key.
    pub public_key: KeyData,
    /// Serial number.
    pub serial: u64,
    /// User or host certificate.
    pub cert_type: CertType,
    /// Key id.
    pub key_id: String,
    /// Principals, in order; empty means every name (OpenSSH's "golden
    /// ticket", which no Signet entry may describe).
    pub valid_principals: Vec<String>,
    /// Validity start, unix seconds.
    pub valid_after: u64,
    /// Validity end, unix seconds.
    pub valid_before: u64,
    /// Critical options.
    pub critical_options: BTreeMap<String, String>,
    /// Extensions, without [`SSH_PROOF_EXTENSION`].
    pub extensions: BTreeMap<String, String>,
}

impl SshCertificateFields {
    /// The fields of `cert`, without its proof extension (if any).
    pub fn from_certificate(cert: &Certificate) -> Self {
        let mut extensions: BTreeMap<String, String> = cert.extensions().0.clone();
        extensions.remove(SSH_PROOF_EXTENSION);
        Self {
            nonce: cert.nonce().to_vec(),
            public_key: cert.public_key().clone(),
            serial: cert.serial(),
            cert_type: cert.cert_type(),
            key_id: cert.key_id().to_owned(),
            valid_principals: cert.valid_principals().to_vec(),
            valid_after: cert.valid_after(),
            valid_before: cert.valid_before(),
            critical_options: cert.critical_options().0.clone(),
            extensions,
        }
    }

    /// A certificate builder holding these fields and, with `proof`, the
    /// proof extension: what the CA signs for the final certificate.
    ///
    /// Fails if the fields already hold a proof extension, or put one in
    /// the critical options.
    pub fn builder(&self, proof: Option<&CertificateProof>) -> Result<Builder> {
        if self.extensions.contains_key(SSH_PROOF_EXTENSION)
            || self.critical_options.contains_key(SSH_PROOF_EXTENSION)
        {
            return Err(not_reducible("log-proof@signet among the fields to sign"));
        }
        let bad = |_| not_reducible("the fields do not make a certificate");
        let mut b = Builder::new(
            self.nonce.clone(),
            self.public_key.clone(),
            self.valid_after,
            self.valid_before,
        )
        .map_err(bad)?;
        b.serial(self.serial).map_err(bad)?;
        b.cert_type(self.cert_type).map_err(bad)?;
        b.key_id(self.key_id.clone()).map_err(bad)?;
        if self.valid_principals.is_empty() {
            b.all_principals_valid().map_err(bad)?;
        }
        for p in &self.valid_principals {
            b.valid_principal(p.clone()).map_err(bad)?;
        }
        for (name, value) in &self.critical_options {
            b.critical_option(name.clone(), value.clone())
                .map_err(bad)?;
        }
        for (name, value) in &self.extensions {
            b.extension(name.clone(), value.clone()).map_err(bad)?;
        }
        if let Some(proof) = proof {
            b.extension(SSH_PROOF_EXTENSION, proof.encode())
                .map_err(bad)?;
        }
        Ok(b)
    }

    /// The precertificate: the bytes an OpenSSH CA with public key
    /// `ca_key` signs for a certificate of these fields without a proof.
    pub fn precertificate(&self, ca_key: &KeyData) -> Result<Vec<u8>> {
        signed_message(self.builder(None)?, ca_key)
    }
}

/// A "signer" that keeps the message it is asked to sign and signs nothing:
/// the message an OpenSSH certificate builder hands its signer is the
/// certificate without its signature.
struct Recorder {
    public_key: KeyData,
    message: RefCell<Option<Vec<u8>>>,
}

impl signature::Signer<Signature> for Recorder {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Signature, signature::Error> {
        *self.message.borrow_mut() = Some(msg.to_vec());
        // Refusing ends the build here: nothing is signed, nothing checked.
        Err(signature::Error::new())
    }
}

impl From<&Recorder> for KeyData {
    fn from(r: &Recorder) -> Self {
        r.public_key.clone()
    }
}

/// What `builder` would have `ca_key` sign.
fn signed_message(builder: Builder, ca_key: &KeyData) -> Result<Vec<u8>> {
    let recorder = Recorder {
        public_key: ca_key.clone(),
        message: RefCell::new(None),
    };
    // The build fails by design (the recorder signs nothing); only the
    // recorded message matters. Without one, the builder refused the fields.
    let _ = builder.sign(&recorder);
    recorder
        .message
        .into_inner()
        .ok_or_else(|| not_reducible("the fields do not make a certificate"))
}

/// The precertificate of an OpenSSH certificate: what its CA signed, less
/// the `log-proof@signet` extension.
///
/// Checks first that rebuilding the certificate from its parsed fields
/// gives back exactly the bytes its CA signed, so the precertificate
/// describes this certificate and nothing `ssh-key` reads loosely; and
/// refuses a proof in a critical option (OpenSSH would refuse the
/// certificate anyway). `cert` must be the certificate as sshd read it:
/// for a wire blob use [`ssh_certificate_from_bytes`], which also refuses
/// a blob that does not re-encode to itself.
pub fn ssh_precertificate(cert: &Certificate) -> Result<Vec<u8>> {
    if cert.critical_options().contains_key(SSH_PROOF_EXTENSION) {
        return Err(not_reducible("log-proof@signet is a critical option"));
    }
    let encoded = cert
        .to_bytes()
        .map_err(|_| not_reducible("the certificate does not encode"))?;
    let signature_len = cert
        .signature()
        .encoded_len_prefixed()
        .map_err(|_| not_reducible("the certificate does not encode"))?;
    let signed = encoded
        .len()
        .checked_sub(signature_len)
        .and_then(|n| encoded.get(..n))
        .ok_or_else(|| not_reducible("the certificate does not encode"))?;
    let mut fields = SshCertificateFields::from_certificate(cert);
    let proof = cert.extensions().get(SSH_PROOF_EXTENSION).cloned();
    // Rebuild the whole certificate, proof included, and compare.
    let mut builder = fields.builder(None)?;
    if let Some(proof) = &proof {
        builder
            .extension(SSH_PROOF_EXTENSION, proof.clone())
            .map_err(|_| not_reducible("the fields do not make a certificate"))?;
    }
    if signed_message(builder, cert.signature_key())? != signed {
        return Err(not_reducible(
            "rebuilding the certificate from its fields gives other bytes",
        ));
    }
    fields.extensions.remove(SSH_PROOF_EXTENSION);
    fields.precertificate(cert.signature_key())
}

/// Parses an OpenSSH certificate blob (the binary form sshd passes as
/// `%k`, base64-decoded) and refuses one that does not re-encode to the
/// same bytes: sshd checked the CA's signature over the bytes it received,
/// so every check here must be about those bytes.
pub fn ssh_certificate_from_bytes(blob: &[u8]) -> Result<Certificate> {
    let cert =
        Certificate::from_bytes(blob).map_err(|_| not_reducible("not an OpenSSH certificate"))?;
    if cert.to_bytes().ok().as_deref() != Some(blob) {
        return Err(not_reducible(
            "the certificate is not in its canonical encoding",
        ));
    }
    Ok(cert)
}

/// The proof text in an OpenSSH certificate's extension, if any.
pub fn ssh_proof_text(cert: &Certificate) -> Option<&str> {
    cert.extensions()
        .get(SSH_PROOF_EXTENSION)
        .map(String::as_str)
}

/// Parses an OpenSSH precertificate (a log entry's bytes): the bytes are
/// completed with a placeholder signature and read as a certificate, and
/// must be exactly what that certificate's fields make, without a proof
/// extension. The returned certificate's signature is the placeholder:
/// never verify it. The error names what is wrong, for the contents check.
pub(crate) fn parse_ssh_precertificate(
    bytes: &[u8],
) -> std::result::Result<Certificate, &'static str> {
    const NOT: &str = "certificate (not an OpenSSH precertificate)";
    let placeholder = Signature::new(Algorithm::Ed25519, [0u8; 64]).map_err(|_| NOT)?;
    let mut blob = bytes.to_vec();
    placeholder.encode_prefixed(&mut blob).map_err(|_| NOT)?;
    let cert = Certificate::from_bytes(&blob).map_err(|_| NOT)?;
    if cert.extensions().contains_key(SSH_PROOF_EXTENSION)
        || cert.critical_options().contains_key(SSH_PROOF_EXTENSION)
    {
        return Err("certificate (a precertificate holding a log proof)");
    }
    let rebuilt = SshCertificateFields::from_certificate(&cert)
        .precertificate(cert.signature_key())
        .map_err(|_| NOT)?;
    if rebuilt != bytes {
        return Err("certificate (a precertificate not in its canonical encoding)");
    }
    Ok(cert)
}
