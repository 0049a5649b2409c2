//! What the client checks itself, never taking the CA's (or a proxy's)
//! word for it:
//!
//! - before the touch: the `request_sha256` the CA answered is the hash of
//!   the request this client sent, and the WebAuthn challenge commits to it
//!   (docs/api.md), so the touch authorizes exactly this request;
//! - after: both certificates certify the card's key, and each `log` proof
//!   shows the certificate is in the log — the entry records exactly the
//!   certificate received (as its precertificate: the certificate without
//!   the proof it carries), its leaf hash is included in the tree of the
//!   checkpoint, and the checkpoint is signed by the pinned log key; and the
//!   proof each certificate carries inside verifies too, since nodes will
//!   check it before every login.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use der::{Decode as _, Encode as _};
use signet_api::certs::{challenge, BeginRequest, BeginResponse, FinishResponse};
use signet_api::log::LogProof;
use signet_log::checkpoint::open_checkpoint;
use signet_log::entry::Entry;
use signet_log::merkle::{leaf_hash, verify_inclusion, Hash};
use signet_log::note::{VerifierKey, VerifierSet};

use super::LoginError;

fn refused(what: impl Into<String>) -> LoginError {
    LoginError::NotProven(what.into())
}

/// Checks the begin answer against the request sent. Returns the challenge.
pub fn check_begin(request: &BeginRequest, begun: &BeginResponse) -> Result<[u8; 32], LoginError> {
    let ours = request.sha256();
    if begun.request_sha256.0 != ours {
        return Err(LoginError::Tampered(
            "the CA's request_sha256 is not the hash of the request this client sent: someone between here and the CA changed the request".into(),
        ));
    }
    let nonce: [u8; 32] =
        begun
            .nonce
            .0
            .as_slice()
            .try_into()
            .map_err(|_| LoginError::CaAnswer {
                what: "/v1/certs/begin".into(),
                detail: "the nonce is not 32 bytes".into(),
            })?;
    let expected = challenge(&ours, &nonce);
    if begun.webauthn.public_key.challenge != expected {
        return Err(LoginError::Tampered(
            "the WebAuthn challenge does not commit to this request; no touch was asked for".into(),
        ));
    }
    Ok(expected)
}

/// What the finish answer says, once checked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verified {
    /// The OpenSSH certificate line.
    pub ssh_certificate: String,
    /// The X.509 certificate, DER.
    #[serde(skip)]
    pub x509_der: Vec<u8>,
    /// The X.509 certificate, PEM.
    #[serde(skip)]
    pub x509_pem: String,
    /// The principals in the SSH certificate.
    pub principals: Vec<String>,
    /// Validity of the SSH certificate, unix seconds.
    pub not_before: u64,
    /// See `not_before`.
    pub not_after: u64,
    /// Log index of the SSH certificate's entry.
    pub ssh_log_index: u64,
    /// Log index of the X.509 certificate's entry.
    pub x509_log_index: u64,
    /// The size of the checkpoint that proved them.
    pub checkpoint_size: u64,
}

/// The EC point (SEC1) of a DER SubjectPublicKeyInfo.
fn spki_point(spki_der: &[u8]) -> Result<Vec<u8>, LoginError> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| LoginError::Internal(format!("the card's public key does not parse: {e}")))?;
    Ok(spki.subject_public_key.raw_bytes().to_vec())
}

/// Checks the finish answer: certificates for `spki_der`, each provably
/// logged under `log_key`.
pub fn check_finish(
    finish: &FinishResponse,
    spki_der: &[u8],
    log_key: &VerifierKey,
) -> Result<Verified, LoginError> {
    let point = spki_point(spki_der)?;

    // The SSH certificate: for the card's key, and its blob is what was logged.
    let line = finish.ssh.certificate.trim();
    let cert = ssh_key::Certificate::from_openssh(line)
        .map_err(|e| refused(format!("the SSH certificate does not parse: {e}")))?;
    if cert.cert_type() != ssh_key::certificate::CertType::User {
        return Err(refused("the SSH certificate is not a user certificate"));
    }
    let ssh_point = match cert.public_key() {
        ssh_key::public::KeyData::Ecdsa(key) => key.as_sec1_bytes().to_vec(),
        _ => return Err(refused("the SSH certificate is not for an ECDSA key")),
    };
    if ssh_point != point {
        return Err(refused(
            "the SSH certificate is for another key than the one in slot 9a",
        ));
    }
    let blob = line
        .split_whitespace()
        .nth(1)
        .and_then(|b64| STANDARD.decode(b64).ok())
        .ok_or_else(|| refused("the SSH certificate line has no base64 blob"))?;
    let ssh_index = check_logged(&finish.ssh.log, &blob, log_key, "SSH")?;
    // The proof the certificate carries is what nodes check before a login.
    signet_log::certificate::verify_ssh_certificate(&cert, &carried_trust(log_key))
        .map_err(|e| refused(format!("the SSH certificate's own log proof: {e}")))?;

    // The X.509 certificate: for the card's key, its DER is what was logged.
    let (label, x509_der) = der::pem::decode_vec(finish.x509.certificate_pem.as_bytes())
        .map_err(|e| refused(format!("the X.509 certificate is not PEM: {e}")))?;
    if label != "CERTIFICATE" {
        return Err(refused("the X.509 PEM is not a CERTIFICATE"));
    }
    let x509 = x509_cert::Certificate::from_der(&x509_der)
        .map_err(|e| refused(format!("the X.509 certificate does not parse: {e}")))?;
    let x509_spki = x509
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| refused(format!("the X.509 certificate's key: {e}")))?;
    if x509_spki != spki_der {
        return Err(refused(
            "the X.509 certificate is for another key than the one in slot 9a",
        ));
    }
    let x509_index = check_logged(&finish.x509.log, &x509_der, log_key, "X.509")?;
    signet_log::certificate::verify_x509_certificate(&x509_der, &carried_trust(log_key))
        .map_err(|e| refused(format!("the X.509 certificate's own log proof: {e}")))?;

    Ok(Verified {
        ssh_certificate: line.to_owned(),
        x509_pem: finish.x509.certificate_pem.clone(),
        x509_der,
        principals: cert.valid_principals().to_vec(),
        not_before: cert.valid_after(),
        not_after: cert.valid_before(),
        ssh_log_index: ssh_index,
        x509_log_index: x509_index,
        checkpoint_size: checkpoint_size(&finish.ssh.log).unwrap_or(0),
    })
}

/// The trust the carried proofs are checked under here: the pinned log
/// key. (Nodes add their witness policy; the client has none to pin.)
fn carried_trust(log_key: &VerifierKey) -> signet_log::certificate::LogTrust {
    signet_log::certificate::LogTrust {
        log_key: log_key.clone(),
        witnesses: signet_log::witness::WitnessPolicy::none(),
    }
}

fn checkpoint_size(log: &LogProof) -> Option<u64> {
    let note = signet_log::note::Note::parse(log.checkpoint.as_bytes()).ok()?;
    signet_log::checkpoint::Checkpoint::parse(note.text())
        .ok()
        .map(|c| c.size())
}

/// Checks one log proof for `certificate`; returns the index.
fn check_logged(
    log: &LogProof,
    certificate: &[u8],
    log_key: &VerifierKey,
    which: &str,
) -> Result<u64, LoginError> {
    let entry = Entry::from_bytes(&log.entry.0).map_err(|e| {
        refused(format!(
            "the {which} certificate's log entry does not parse: {e}"
        ))
    })?;
    entry
        .certificate
        .as_ref()
        .ok_or_else(|| refused(format!("the {which} log entry records no certificate")))?;
    // The entry records the certificate (or its precertificate: the
    // certificate without the proof it carries).
    signet_log::certificate::certificate_matches_entry(certificate, &entry).map_err(|e| {
        refused(format!(
            "the {which} log entry records another certificate than the one received ({e})"
        ))
    })?;
    let set =
        VerifierSet::new(vec![log_key.clone()]).map_err(|e| LoginError::Internal(e.to_string()))?;
    let opened = open_checkpoint(log.checkpoint.as_bytes(), log_key.name(), &set).map_err(|e| {
        refused(format!(
            "the checkpoint proving the {which} certificate is not signed by the pinned log key {}+{} ({e})",
            log_key.name(),
            log_key.key_id()
        ))
    })?;
    opened.note.require(log_key).map_err(|e| {
        refused(format!(
            "the checkpoint lacks the pinned log key's signature ({e})"
        ))
    })?;
    let proof: Vec<Hash> = log
        .inclusion_proof
        .iter()
        .map(|h| h.0.as_slice().try_into())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            refused(format!(
                "the {which} inclusion proof holds a hash that is not 32 bytes"
            ))
        })?;
    let leaf = leaf_hash(&log.entry.0);
    let checkpoint = &opened.checkpoint;
    verify_inclusion(
        &leaf,
        log.index,
        checkpoint.size(),
        &proof,
        checkpoint.root(),
    )
    .map_err(|e| {
        refused(format!(
            "the {which} certificate's inclusion proof does not lead to the signed checkpoint ({e})"
        ))
    })?;
    Ok(log.index)
}
