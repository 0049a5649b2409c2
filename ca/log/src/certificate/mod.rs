//! Certificates that prove they were logged.
//!
//! An entry must commit to its certificate, so a certificate cannot carry
//! a proof of its own entry. As in Certificate Transparency (RFC 6962
//! §3.1), the CA logs the *precertificate* — the certificate's signed
//! contents without the proof — and, once the entry is in a checkpoint the
//! witnesses cosigned, signs the final certificate with one more extension
//! holding the proof: the entry's index, the entry without its certificate
//! bytes, the inclusion proof and the cosigned checkpoint
//! ([`CertificateProof`], `signet-cert-proof/v1`).
//!
//! A relying party checks it offline, against the log's key and a witness
//! policy ([`LogTrust`]): [`verify_ssh_certificate`] (the node-side check
//! sshd runs) and [`verify_x509_certificate`]. They derive the
//! precertificate from the certificate, put it back into the entry, check
//! that the entry says what the certificate says, hash the leaf and check
//! its inclusion in the cosigned checkpoint. Neither checks the CA's
//! signature on the certificate itself: that is the relying party's own
//! check (sshd's `TrustedUserCAKeys`, a TLS stack's chain validation), made
//! before these run.
//!
//! The encodings are in `docs/log-format.md` ("Precertificates and proofs
//! in certificates"). The CA side: [`SshCertificateFields`] (OpenSSH) and
//! [`LogProofProfile`] (X.509).

mod proof;
mod ssh;
mod x509;

pub use proof::{CertificateProof, MAX_INCLUSION_HASHES, MAX_PROOF_LEN, PROOF_HEADER};
pub use ssh::{
    ssh_certificate_from_bytes, ssh_precertificate, ssh_proof_text, SshCertificateFields,
    SSH_PROOF_EXTENSION,
};
pub use x509::{
    x509_precertificate, x509_proof_extension, x509_proof_text, LogProofProfile, X509_PROOF_OID,
};

pub(crate) use ssh::parse_ssh_precertificate;
pub(crate) use x509::{has_proof_extension, parse_x509_precertificate};

use sha2::{Digest, Sha256};

use crate::entry::{check_certificate_contents, CertificateForm, Entry, EntryKind};
use crate::error::{EntryError, NoteError, ProofError, WitnessError};
use crate::merkle::verify_inclusion;
use crate::note::VerifierKey;
use crate::witness::WitnessPolicy;
use crate::{Error, Result};

/// What a relying party trusts: the log's key and the witness policy its
/// checkpoints must meet.
#[derive(Debug, Clone)]
pub struct LogTrust {
    /// The log's checkpoint key; its name is the log's origin.
    pub log_key: VerifierKey,
    /// Which witnesses must have cosigned.
    pub witnesses: WitnessPolicy,
}

/// A certificate whose proof verified: what the log says about it.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    /// The entry's index in the log.
    pub index: u64,
    /// The logged entry (with the precertificate as its bytes).
    pub entry: Entry,
    /// The size of the cosigned checkpoint the proof is against.
    pub checkpoint_size: u64,
    /// The witnesses (names from the policy) whose cosignatures verified.
    pub cosigners: Vec<String>,
}

/// Checks that an OpenSSH certificate is logged, with the proof it carries.
///
/// `cert` must be the certificate as its relying party read it (for a wire
/// blob, parse it with [`ssh_certificate_from_bytes`]). Every refusal is a
/// [`ProofError`] naming the reason. The CA's signature is not checked here.
pub fn verify_ssh_certificate(
    cert: &ssh_key::Certificate,
    trust: &LogTrust,
) -> Result<VerifiedCertificate> {
    let text = ssh_proof_text(cert).ok_or(ProofError::NoProof(SSH_PROOF_EXTENSION))?;
    let precertificate = ssh_precertificate(cert)?;
    verify_precertificate(&precertificate, text.as_bytes(), trust)
}

/// Checks that a DER X.509 certificate is logged, with the proof its
/// log-proof extension carries. As [`verify_ssh_certificate`]; the chain to
/// the CA's root is not checked here.
pub fn verify_x509_certificate(cert_der: &[u8], trust: &LogTrust) -> Result<VerifiedCertificate> {
    let text = x509_proof_text(cert_der)?;
    let precertificate = x509_precertificate(cert_der)?;
    verify_precertificate(&precertificate, text.as_bytes(), trust)
}

/// The common part: the proof text against a certificate's precertificate.
fn verify_precertificate(
    precertificate: &[u8],
    proof_text: &[u8],
    trust: &LogTrust,
) -> Result<VerifiedCertificate> {
    let proof = CertificateProof::parse(proof_text)?;
    let cosigned = trust
        .witnesses
        .verify_checkpoint(proof.checkpoint_note.as_bytes(), &trust.log_key)
        .map_err(|e| checkpoint_refusal(e, &trust.log_key))?;
    let entry = Entry::from_detached_bytes(proof.entry_without_bytes.as_bytes(), precertificate)
        .map_err(|e| -> Error {
            match e {
                Error::Entry(EntryError::BadField("certificate.sha256")) => {
                    ProofError::OtherEntry.into()
                }
                _ => ProofError::Malformed("entry line (not a valid log entry)").into(),
            }
        })?;
    let certificate = entry
        .certificate
        .as_ref()
        .ok_or(ProofError::Malformed("entry line (no certificate)"))?;
    if certificate.form != CertificateForm::Precertificate {
        return Err(ProofError::NotPrecertificateEntry.into());
    }
    check_certificate_contents(&entry).map_err(contents_refusal)?;
    let leaf = entry.leaf_hash()?;
    verify_inclusion(
        &leaf,
        proof.index,
        cosigned.size(),
        &proof.inclusion,
        cosigned.root(),
    )
    .map_err(|e| match e {
        Error::Merkle(m) => ProofError::Inclusion(m).into(),
        other => other,
    })?;
    Ok(VerifiedCertificate {
        index: proof.index,
        entry,
        checkpoint_size: cosigned.size(),
        cosigners: cosigned
            .cosignatures()
            .iter()
            .map(|c| c.witness.clone())
            .collect(),
    })
}

/// The reason a checkpoint is refused, in this module's terms.
fn checkpoint_refusal(e: Error, log_key: &VerifierKey) -> Error {
    let not_signed = |reason: String| ProofError::NotSignedByLog {
        key: log_key.name().to_owned(),
        reason,
    };
    match e {
        Error::Witness(w @ WitnessError::ThresholdNotMet { .. }) => {
            ProofError::WitnessPolicyNotMet(w.to_string()).into()
        }
        Error::Witness(WitnessError::BadCosignature { witness, .. }) => {
            ProofError::BadCosignature { witness }.into()
        }
        Error::Note(NoteError::BadSignature(_)) => {
            not_signed("its signature is invalid".into()).into()
        }
        Error::Note(NoteError::MissingSignature(_)) => {
            not_signed("no signature by that key".into()).into()
        }
        Error::Checkpoint(crate::CheckpointError::WrongOrigin { got, .. }) => {
            not_signed(format!("it is a checkpoint of {got:?}")).into()
        }
        Error::Note(_) | Error::Checkpoint(_) => ProofError::Malformed("checkpoint note").into(),
        other => other,
    }
}

fn contents_refusal(e: Error) -> Error {
    match e {
        Error::Entry(EntryError::CertificateMismatch(field)) => {
            ProofError::ContentsMismatch(field).into()
        }
        other => other,
    }
}

/// Whether a final certificate is the one an entry records, for an
/// auditor looking a certificate up in the log.
///
/// For a full-form entry the bytes must be the entry's; for a
/// precertificate entry the certificate's precertificate (OpenSSH wire
/// blob or X.509 DER, told apart by the entry's kind, or for other kinds by
/// the DER SEQUENCE tag 0x30) must be the entry's bytes. Either way the
/// entry's fields must say what the certificate says
/// ([`check_certificate_contents`]). The proof inside the certificate is
/// not checked: the auditor holds the log itself.
pub fn certificate_matches_entry(certificate: &[u8], entry: &Entry) -> Result<()> {
    let recorded = entry
        .certificate
        .as_ref()
        .ok_or(ProofError::ContentsMismatch(
            "certificate (the entry records none)",
        ))?;
    let same = match recorded.form {
        CertificateForm::Full => certificate == recorded.bytes.0.as_slice(),
        CertificateForm::Precertificate => {
            let x509 = match entry.kind {
                EntryKind::SshUserCert | EntryKind::SshHostCert => false,
                EntryKind::X509Cert => true,
                _ => certificate.first() == Some(&0x30),
            };
            let precertificate = if x509 {
                x509_precertificate(certificate)?
            } else {
                ssh_precertificate(&ssh_certificate_from_bytes(certificate)?)?
            };
            precertificate == recorded.bytes.0
        }
    };
    let digest: [u8; 32] = Sha256::digest(&recorded.bytes.0).into();
    if !same || digest != recorded.sha256.0 {
        return Err(ProofError::OtherEntry.into());
    }
    check_certificate_contents(entry).map_err(contents_refusal)
}
