//! Attestation certificates: their keys, their signatures (checked with
//! ring), the §8.2.1 requirements on a packed attestation certificate, and
//! the path from the leaf to a configured root.
//!
//! Validity periods are not checked, on purpose: an attestation
//! certificate says where a key was made, which stays true after the
//! certificate expires (batch certificates routinely outlive their
//! validity in the field), and this crate has no clock.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::Certificate;

use crate::error::{Result, WebauthnError};

/// Most certificates accepted in an `x5c` (leaf and intermediates).
pub(crate) const MAX_CHAIN: usize = 5;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
/// `id-fido-gen-ce-aaguid`: the AAGUID in an attestation certificate.
pub(crate) const ID_FIDO_GEN_CE_AAGUID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4");

/// Extensions a certificate may mark critical and still be understood.
const UNDERSTOOD_CRITICAL: [ObjectIdentifier; 4] = [
    const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
    const_oid::db::rfc5280::ID_CE_KEY_USAGE,
    const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
    const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
];

/// The kind of a certificate's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    P256,
    P384,
    Ed25519,
    Rsa,
}

/// Parses one DER certificate from an `x5c`.
pub(crate) fn parse(der: &[u8]) -> Result<Certificate> {
    Certificate::from_der(der)
        .map_err(|_| WebauthnError::AttestationCertificateInvalid("not a DER X.509 certificate"))
}

/// The kind of `cert`'s key, and the key as ring takes it.
pub(crate) fn public_key(cert: &Certificate) -> Result<(KeyKind, &[u8])> {
    let spki = cert.tbs_certificate().subject_public_key_info();
    let bits =
        spki.subject_public_key
            .as_bytes()
            .ok_or(WebauthnError::AttestationCertificateInvalid(
                "the public key is not a whole number of bytes",
            ))?;
    let oid = spki.algorithm.oid;
    let kind = if oid == ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        match curve {
            Some(c) if c == SECP256R1 => KeyKind::P256,
            Some(c) if c == SECP384R1 => KeyKind::P384,
            _ => {
                return Err(WebauthnError::AttestationCertificateInvalid(
                    "unsupported curve",
                ))
            }
        }
    } else if oid == ID_ED25519 {
        KeyKind::Ed25519
    } else if oid == RSA_ENCRYPTION {
        KeyKind::Rsa
    } else {
        return Err(WebauthnError::AttestationCertificateInvalid(
            "unsupported public key type",
        ));
    };
    Ok((kind, bits))
}

/// The ring algorithm for a WebAuthn statement signature of COSE `alg`
/// made with a certificate key of `kind`.
pub(crate) fn statement_algorithm(
    alg: i64,
    kind: KeyKind,
) -> Option<&'static dyn VerificationAlgorithm> {
    use crate::cose::{EDDSA, ES256, ES384, RS256};
    Some(match (alg, kind) {
        (ES256, KeyKind::P256) => &signature::ECDSA_P256_SHA256_ASN1,
        (ES384, KeyKind::P384) => &signature::ECDSA_P384_SHA384_ASN1,
        (EDDSA, KeyKind::Ed25519) => &signature::ED25519,
        (RS256, KeyKind::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA256,
        _ => return None,
    })
}

/// Whether `cert`'s key signed `message` with `sig` (COSE `alg`).
pub(crate) fn verify_statement(
    cert: &Certificate,
    alg: i64,
    message: &[u8],
    sig: &[u8],
) -> Result<()> {
    let (kind, key) = public_key(cert)?;
    let algorithm =
        statement_algorithm(alg, kind).ok_or(WebauthnError::AttestationCertificateInvalid(
            "its key does not match the statement's algorithm",
        ))?;
    UnparsedPublicKey::new(algorithm, key)
        .verify(message, sig)
        .map_err(|_| WebauthnError::AttestationSignatureInvalid)
}

/// Whether `issuer`'s key signed `cert`.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return false;
    }
    let Ok((kind, key)) = public_key(issuer) else {
        return false;
    };
    let oid = cert.signature_algorithm().oid;
    let algorithm: &dyn VerificationAlgorithm = match kind {
        KeyKind::P256 if oid == ECDSA_WITH_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
        KeyKind::P256 if oid == ECDSA_WITH_SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
        KeyKind::P384 if oid == ECDSA_WITH_SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
        KeyKind::P384 if oid == ECDSA_WITH_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
        KeyKind::Ed25519 if oid == ID_ED25519 => &signature::ED25519,
        KeyKind::Rsa if oid == SHA256_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
        KeyKind::Rsa if oid == SHA384_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA384,
        KeyKind::Rsa if oid == SHA512_WITH_RSA => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return false,
    };
    // The outer algorithm must be the one the signed part names.
    if cert.tbs_certificate().signature() != cert.signature_algorithm() {
        return false;
    }
    let (Ok(tbs), Some(sig)) = (cert.tbs_certificate().to_der(), cert.signature().as_bytes())
    else {
        return false;
    };
    UnparsedPublicKey::new(algorithm, key)
        .verify(&tbs, sig)
        .is_ok()
}

/// Refuses a certificate with a critical extension this crate does not
/// understand (RFC 5280 §4.2).
fn check_critical(cert: &Certificate) -> Result<()> {
    let unknown = cert
        .tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .any(|e| e.critical && !UNDERSTOOD_CRITICAL.contains(&e.extn_id));
    if unknown {
        return Err(WebauthnError::AttestationCertificateInvalid(
            "it has a critical extension that is not understood",
        ));
    }
    Ok(())
}

/// Basic constraints' CA flag (absent: not a CA).
fn is_ca(cert: &Certificate) -> Result<bool> {
    match cert.tbs_certificate().get_extension::<BasicConstraints>() {
        Ok(None) => Ok(false),
        Ok(Some((_, bc))) => Ok(bc.ca),
        Err(_) => Err(WebauthnError::AttestationCertificateInvalid(
            "malformed or repeated basic constraints",
        )),
    }
}

/// The requirements on a packed attestation certificate (WebAuthn
/// §8.2.1): X.509 v3; subject C, O, CN present and OU "Authenticator
/// Attestation"; not a CA; its AAGUID extension, if any, not critical and
/// equal to the authenticator data's.
pub(crate) fn check_packed_leaf(cert: &Certificate, aaguid: &[u8; 16]) -> Result<()> {
    let bad = WebauthnError::AttestationCertificateInvalid;
    let tbs = cert.tbs_certificate();
    if tbs.version() != Version::V3 {
        return Err(bad("it is not an X.509 version 3 certificate"));
    }
    let subject = tbs.subject();
    let ou = subject.organization_unit().ok().flatten();
    if ou.as_ref().map(|ou| ou.value()).as_deref() != Some("Authenticator Attestation") {
        return Err(bad("its subject OU is not \"Authenticator Attestation\""));
    }
    if !matches!(subject.country(), Ok(Some(_)))
        || !matches!(subject.organization(), Ok(Some(_)))
        || !matches!(subject.common_name(), Ok(Some(_)))
    {
        return Err(bad("its subject lacks C, O or CN"));
    }
    if is_ca(cert)? {
        return Err(bad("it is a CA certificate"));
    }
    check_critical(cert)?;
    let mut aaguid_exts = tbs
        .extensions()
        .into_iter()
        .flatten()
        .filter(|e| e.extn_id == ID_FIDO_GEN_CE_AAGUID);
    if let Some(ext) = aaguid_exts.next() {
        if aaguid_exts.next().is_some() || ext.critical {
            return Err(bad("its AAGUID extension is critical or repeated"));
        }
        let inner = der::asn1::OctetString::from_der(ext.extn_value.as_bytes())
            .map_err(|_| bad("its AAGUID extension is malformed"))?;
        if inner.as_bytes() != aaguid {
            return Err(bad("its AAGUID differs from the authenticator's"));
        }
    }
    Ok(())
}

/// Whether `x5c` (leaf first) leads to one of `roots`: each certificate
/// signed by the next, every issuer below the root a CA, and the last one
/// issued by a root (or being one).
pub(crate) fn chains_to_root(x5c: &[Certificate], roots: &[Certificate]) -> Result<bool> {
    let Some((leaf, rest)) = x5c.split_first() else {
        return Ok(false);
    };
    check_critical(leaf)?;
    let mut current = leaf;
    let mut remaining = rest.iter();
    loop {
        if roots
            .iter()
            .any(|root| root == current || signed_by(current, root))
        {
            return Ok(true);
        }
        let Some(issuer) = remaining.next() else {
            return Ok(false);
        };
        check_critical(issuer)?;
        if !is_ca(issuer)? || !signed_by(current, issuer) {
            return Ok(false);
        }
        current = issuer;
    }
}
