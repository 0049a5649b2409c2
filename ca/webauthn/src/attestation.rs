//! Attestation statements (WebAuthn §8): the authenticator's proof of
//! what made the new key — "packed" (§8.2), "fido-u2f" (§8.6) and "none"
//! (§8.7) — checked against the trust store.

use std::collections::BTreeMap;

use ciborium::Value;
use x509_cert::Certificate;

use crate::auth_data::AttestedCredential;
use crate::cbor;
use crate::cose::{CoseKey, PublicKey};
use crate::error::{Result, WebauthnError};
use crate::trust::{spki_sha256, AttestationTrust};
use crate::x509;

/// Largest attestation object accepted.
pub(crate) const MAX_ATTESTATION_OBJECT: usize = 16 * 1024;
/// Largest attestation signature (an RSA-8192 signature is 1024 bytes).
pub(crate) const MAX_SIGNATURE: usize = 1024;

/// The attestation object: format, statement, authenticator data.
pub(crate) struct AttestationObject {
    pub(crate) fmt: String,
    pub(crate) att_stmt: Value,
    pub(crate) auth_data: Vec<u8>,
}

/// Parses the CBOR attestation object.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<AttestationObject> {
    let bad = || WebauthnError::InvalidCbor {
        what: "attestationObject",
    };
    if bytes.len() > MAX_ATTESTATION_OBJECT {
        return Err(WebauthnError::FieldTooLarge {
            field: "attestationObject",
            max: MAX_ATTESTATION_OBJECT,
        });
    }
    let value = cbor::from_slice_exact(bytes).ok_or_else(bad)?;
    let map = cbor::text_map(&value).ok_or_else(bad)?;
    // CTAP2 clients that pass the authenticator's response through also
    // carry its unsigned members (webauthn-authenticator-rs writes
    // "eppAtt" and "largeBlobKey"); they are ignored. Anything else is not
    // an attestation object.
    let known = |k: &str| {
        matches!(
            k,
            "fmt"
                | "attStmt"
                | "authData"
                | "epAtt"
                | "eppAtt"
                | "largeBlobKey"
                | "unsignedExtensionOutputs"
        )
    };
    if !map.keys().all(|k| known(k)) {
        return Err(bad());
    }
    let fmt = map.get("fmt").and_then(|v| v.as_text()).ok_or_else(bad)?;
    let att_stmt = map.get("attStmt").ok_or_else(bad)?;
    let auth_data = map
        .get("authData")
        .and_then(|v| v.as_bytes())
        .ok_or_else(bad)?;
    Ok(AttestationObject {
        fmt: fmt.to_string(),
        att_stmt: (*att_stmt).clone(),
        auth_data: auth_data.clone(),
    })
}

/// The statement's members, by name.
fn statement(value: &Value) -> Result<BTreeMap<&str, &Value>> {
    cbor::text_map(value).ok_or(WebauthnError::InvalidCbor {
        what: "attestation statement",
    })
}

fn bad_statement() -> WebauthnError {
    WebauthnError::InvalidCbor {
        what: "attestation statement",
    }
}

/// Verifies the attestation statement of `object` for `credential`, whose
/// authenticator data is `object.auth_data`, over `client_data_hash`.
pub(crate) fn verify(
    object: &AttestationObject,
    rp_id_hash: &[u8],
    credential: &AttestedCredential<'_>,
    client_data_hash: &[u8; 32],
    trust: &AttestationTrust,
) -> Result<()> {
    let stmt = statement(&object.att_stmt)?;
    match object.fmt.as_str() {
        "none" => {
            if !stmt.is_empty() {
                return Err(bad_statement());
            }
            if !trust.allows_none() {
                return Err(WebauthnError::AttestationNotProvided(
                    "attestation \"none\"",
                ));
            }
            Ok(())
        }
        "packed" => verify_packed(&stmt, object, credential, client_data_hash, trust),
        "fido-u2f" => verify_u2f(&stmt, rp_id_hash, credential, client_data_hash, trust),
        other => Err(WebauthnError::UnsupportedAttestationFormat(
            other.chars().take(32).collect(),
        )),
    }
}

fn signature<'a>(stmt: &BTreeMap<&str, &'a Value>) -> Result<&'a [u8]> {
    let sig = stmt
        .get("sig")
        .and_then(|v| v.as_bytes())
        .ok_or_else(bad_statement)?;
    if sig.len() > MAX_SIGNATURE {
        return Err(WebauthnError::FieldTooLarge {
            field: "attestation signature",
            max: MAX_SIGNATURE,
        });
    }
    Ok(sig)
}

fn certificates(value: &Value) -> Result<Vec<Certificate>> {
    let list = value.as_array().ok_or_else(bad_statement)?;
    if list.is_empty() {
        return Err(bad_statement());
    }
    if list.len() > x509::MAX_CHAIN {
        return Err(WebauthnError::AttestationCertificateInvalid(
            "the chain is longer than 5 certificates",
        ));
    }
    list.iter()
        .map(|v| {
            v.as_bytes()
                .ok_or_else(bad_statement)
                .and_then(|der| x509::parse(der))
        })
        .collect()
}

/// Trusted when the leaf's key is pinned or the chain reaches a root.
fn check_trust(x5c: &[Certificate], trust: &AttestationTrust) -> Result<()> {
    let Some(leaf) = x5c.first() else {
        return Err(bad_statement());
    };
    if trust.is_pinned(&spki_sha256(leaf)?) || x509::chains_to_root(x5c, trust.roots())? {
        Ok(())
    } else {
        Err(WebauthnError::AttestationUntrusted)
    }
}

fn verify_packed(
    stmt: &BTreeMap<&str, &Value>,
    object: &AttestationObject,
    credential: &AttestedCredential<'_>,
    client_data_hash: &[u8; 32],
    trust: &AttestationTrust,
) -> Result<()> {
    if stmt.keys().any(|k| !matches!(*k, "alg" | "sig" | "x5c")) {
        // ecdaaKeyId (ECDAA was withdrawn from WebAuthn) or junk.
        return Err(bad_statement());
    }
    let alg = stmt
        .get("alg")
        .and_then(|v| cbor::as_i64(v))
        .ok_or_else(bad_statement)?;
    let sig = signature(stmt)?;
    let mut signed = Vec::with_capacity(object.auth_data.len() + 32);
    signed.extend_from_slice(&object.auth_data);
    signed.extend_from_slice(client_data_hash);
    match stmt.get("x5c") {
        Some(x5c) => {
            let x5c = certificates(x5c)?;
            let leaf = &x5c[0];
            x509::verify_statement(leaf, alg, &signed, sig)?;
            x509::check_packed_leaf(leaf, &credential.aaguid)?;
            check_trust(&x5c, trust)
        }
        None => {
            // Self attestation: signed by the credential key itself, so it
            // proves possession and nothing about the maker.
            if !trust.allows_none() {
                return Err(WebauthnError::AttestationNotProvided("self attestation"));
            }
            if alg != credential.public_key.alg {
                return Err(bad_statement());
            }
            if credential.public_key.verify(&signed, sig) {
                Ok(())
            } else {
                Err(WebauthnError::AttestationSignatureInvalid)
            }
        }
    }
}

fn verify_u2f(
    stmt: &BTreeMap<&str, &Value>,
    rp_id_hash: &[u8],
    credential: &AttestedCredential<'_>,
    client_data_hash: &[u8; 32],
    trust: &AttestationTrust,
) -> Result<()> {
    if stmt.keys().any(|k| !matches!(*k, "sig" | "x5c")) {
        return Err(bad_statement());
    }
    let sig = signature(stmt)?;
    let x5c = certificates(stmt.get("x5c").ok_or_else(bad_statement)?)?;
    if x5c.len() != 1 {
        return Err(WebauthnError::AttestationCertificateInvalid(
            "fido-u2f carries exactly one certificate",
        ));
    }
    // U2F keys are P-256 only.
    let CoseKey {
        key: PublicKey::P256(point),
        ..
    } = &credential.public_key
    else {
        return Err(WebauthnError::InvalidCoseKey);
    };
    let mut signed = Vec::with_capacity(1 + 32 + 32 + credential.credential_id.len() + 65);
    signed.push(0x00);
    signed.extend_from_slice(rp_id_hash);
    signed.extend_from_slice(client_data_hash);
    signed.extend_from_slice(credential.credential_id);
    signed.extend_from_slice(point);
    x509::verify_statement(&x5c[0], crate::cose::ES256, &signed, sig)?;
    check_trust(&x5c, trust)
}
