//! Path validation for a PIV attestation chain.

use crate::cert::{Cert, CertError};
use crate::error::AttestError;
use crate::roots::DeviceRoots;
use crate::signature::{self, SigError};
use crate::yubico;
use crate::AttestedKey;
use std::time::SystemTime;

/// Most certificates a client may send: slot, f9 and up to three above it
/// (Yubico's newer chain is slot, f9, PIV intermediate, attestation
/// intermediate, root).
pub const MAX_CHAIN_LEN: usize = 5;

/// Most certificates in a validated path, the root included, after the
/// configured intermediates have completed it.
const MAX_PATH_LEN: usize = 6;

/// A link that does not hold.
enum LinkError {
    Name,
    Signature(SigError),
}

/// Checks that `child` was issued and signed by `issuer`.
fn link(child: &Cert, issuer: &Cert) -> Result<(), LinkError> {
    if child.cert.tbs_certificate().issuer() != issuer.cert.tbs_certificate().subject() {
        return Err(LinkError::Name);
    }
    signature::verify(
        child.cert.signature_algorithm(),
        issuer.cert.tbs_certificate().subject_public_key_info(),
        &child.tbs,
        child.cert.signature(),
    )
    .map_err(LinkError::Signature)
}

fn link_error(position: usize, e: LinkError) -> AttestError {
    match e {
        LinkError::Name => AttestError::IssuerMismatch { position },
        LinkError::Signature(SigError::Unsupported) => {
            AttestError::UnsupportedAlgorithm { position }
        }
        LinkError::Signature(SigError::Invalid) => AttestError::BadSignature { position },
    }
}

fn check_validity(cert: &Cert, position: usize, now: SystemTime) -> Result<(), AttestError> {
    let validity = cert.cert.tbs_certificate().validity();
    if now < validity.not_before.to_system_time() {
        return Err(AttestError::NotYetValid { position });
    }
    if now > validity.not_after.to_system_time() {
        return Err(AttestError::Expired { position });
    }
    Ok(())
}

/// Critical extensions other than these make a certificate unusable
/// (RFC 5280 4.2).
fn check_critical(cert: &Cert, position: usize) -> Result<(), AttestError> {
    let understood = [
        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
    ];
    for ext in cert.extensions() {
        if ext.critical
            && !understood.contains(&ext.extn_id)
            && !(position == 0 && yubico::UNDERSTOOD.contains(&ext.extn_id))
        {
            return Err(AttestError::UnknownCriticalExtension { position });
        }
    }
    Ok(())
}

/// A certificate above f9 (an intermediate or the root) must be a CA that
/// may sign certificates, with room for the `below` intermediates under it.
fn check_ca(cert: &Cert, position: usize, below: usize) -> Result<(), AttestError> {
    let bc = cert
        .basic_constraints()
        .map_err(|()| AttestError::Malformed { position })?;
    let Some(bc) = bc.filter(|bc| bc.ca) else {
        return Err(AttestError::NotCa { position });
    };
    let ku = cert
        .key_usage()
        .map_err(|()| AttestError::Malformed { position })?;
    if ku.is_some_and(|ku| !ku.key_cert_sign()) {
        return Err(AttestError::NotCa { position });
    }
    if let Some(max) = bc.path_len_constraint {
        if below > usize::from(max) {
            return Err(AttestError::PathLengthExceeded { position });
        }
    }
    Ok(())
}

fn parse(position: usize, der: &[u8]) -> Result<Cert, AttestError> {
    Cert::parse(der).map_err(|e| match e {
        CertError::TooLarge => AttestError::CertificateTooLarge {
            position,
            len: der.len(),
            max: crate::cert::MAX_CERT_LEN,
        },
        CertError::Malformed => AttestError::Malformed { position },
        CertError::DuplicateExtension => AttestError::DuplicateExtension { position },
    })
}

/// Finds the certificate in `pool` that issued and signed `child`. A
/// candidate whose name matches but whose key did not make the signature is
/// not the issuer (another CA may bear the same name, as every virtual
/// YubiKey root does): the chain then leads to no trusted root. Only an
/// algorithm this crate cannot check is reported as such.
fn find_issuer<'a>(child: &Cert, pool: &'a [Cert]) -> Result<Option<&'a Cert>, LinkError> {
    let mut unsupported = false;
    for candidate in pool {
        match link(child, candidate) {
            Ok(()) => return Ok(Some(candidate)),
            Err(LinkError::Signature(SigError::Unsupported)) => unsupported = true,
            Err(_) => {}
        }
    }
    if unsupported {
        return Err(LinkError::Signature(SigError::Unsupported));
    }
    Ok(None)
}

pub(crate) fn verify(
    chain: &[Vec<u8>],
    roots: &DeviceRoots,
    now: SystemTime,
) -> Result<AttestedKey, AttestError> {
    match chain.len() {
        0 => return Err(AttestError::EmptyChain),
        1 => return Err(AttestError::MissingDeviceCertificate),
        len if len > MAX_CHAIN_LEN => {
            return Err(AttestError::ChainTooLong {
                len,
                max: MAX_CHAIN_LEN,
            })
        }
        _ => {}
    }
    let mut path = chain
        .iter()
        .enumerate()
        .map(|(i, der)| parse(i, der))
        .collect::<Result<Vec<_>, _>>()?;

    // The links the client sent.
    for i in 0..path.len() - 1 {
        link(&path[i], &path[i + 1]).map_err(|e| link_error(i, e))?;
    }

    // Up to a root: the last certificate sent may be a root itself, or be
    // issued by one, or by a configured intermediate that leads to one.
    let anchor: Cert = loop {
        let top_index = path.len() - 1;
        let top = &path[top_index];
        if let Some(root) = roots.anchors.iter().find(|r| r.same_entity(top)) {
            if top_index < 2 {
                // The slot or f9 certificate can never be a root.
                return Err(AttestError::UnknownRoot);
            }
            let root = root.clone();
            path.pop();
            break root;
        }
        match find_issuer(top, &roots.anchors) {
            Ok(Some(root)) => break root.clone(),
            Ok(None) => {}
            Err(e) => return Err(link_error(top_index, e)),
        }
        if top.is_self_issued() || path.len() >= MAX_PATH_LEN - 1 {
            return Err(AttestError::UnknownRoot);
        }
        match find_issuer(top, &roots.intermediates) {
            Ok(Some(next)) => {
                if path.iter().any(|c| c.der == next.der) {
                    return Err(AttestError::UnknownRoot);
                }
                let next = next.clone();
                path.push(next);
            }
            Ok(None) => return Err(AttestError::UnknownRoot),
            Err(e) => return Err(link_error(top_index, e)),
        }
    };

    // Validity of every certificate, the root included.
    for (i, cert) in path.iter().enumerate() {
        check_validity(cert, i, now)?;
        check_critical(cert, i)?;
    }
    check_validity(&anchor, path.len(), now)?;

    // The slot certificate is an end entity; f9 signs it whatever its
    // basicConstraints say (as Yubico's own tools accept); everything above
    // f9 is a CA with room for what is below it (f9 counts as one).
    let slot_bc = path[0]
        .basic_constraints()
        .map_err(|()| AttestError::Malformed { position: 0 })?;
    if slot_bc.is_some_and(|bc| bc.ca) {
        return Err(AttestError::SlotCertificateIsCa);
    }
    for (i, cert) in path.iter().enumerate().skip(2) {
        check_ca(cert, i, i - 1)?;
    }
    check_ca(&anchor, path.len(), path.len() - 1)?;

    let facts = yubico::facts(&path[0])?;
    Ok(AttestedKey {
        serial: facts.serial,
        pin_policy: facts.pin_policy,
        touch_policy: facts.touch_policy,
        firmware: facts.firmware,
        form_factor: facts.form_factor,
        public_key_spki_der: path[0].spki.clone(),
        root_subject: anchor.cert.tbs_certificate().subject().to_string(),
    })
}
