//! Certificate signatures, checked with ring.
//!
//! Accepted: RSA PKCS#1 v1.5 with SHA-256/384/512 (Yubico's roots, their
//! intermediates and the f9 certificates are RSA-2048; Attestation Root 1
//! signs itself with SHA-512), and ECDSA over P-256 or P-384 with SHA-256 or
//! SHA-384 (test roots, devices with EC attestation keys). Everything else —
//! RSA-PSS, SHA-1, Ed25519, RSA keys under 2048 bits — is refused.

use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1,
    SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use const_oid::ObjectIdentifier;
use der::asn1::ObjectIdentifier as Oid;
use der::{Any, Tag, Tagged};
use ring::signature::{self as ring_sig, UnparsedPublicKey, VerificationAlgorithm};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// Why a signature could not be checked or did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigError {
    /// The algorithm (or the issuer key type) is not accepted.
    Unsupported,
    /// The signature is wrong.
    Invalid,
}

/// RSA signature algorithms carry NULL parameters (or, rarely, none).
fn rsa_params_ok(alg: &AlgorithmIdentifierOwned) -> bool {
    match &alg.parameters {
        None => true,
        Some(p) => p.tag() == Tag::Null && p.value().is_empty(),
    }
}

/// The named curve of an EC public key.
fn ec_curve(spki: &SubjectPublicKeyInfoOwned) -> Option<ObjectIdentifier> {
    let params: &Any = spki.algorithm.parameters.as_ref()?;
    params.decode_as::<Oid>().ok()
}

fn algorithm(
    sig_alg: &AlgorithmIdentifierOwned,
    issuer: &SubjectPublicKeyInfoOwned,
) -> Result<&'static dyn VerificationAlgorithm, SigError> {
    let key_oid = issuer.algorithm.oid;
    let oid = sig_alg.oid;
    if key_oid == RSA_ENCRYPTION {
        if !rsa_params_ok(sig_alg) {
            return Err(SigError::Unsupported);
        }
        return match oid {
            o if o == SHA_256_WITH_RSA_ENCRYPTION => Ok(&ring_sig::RSA_PKCS1_2048_8192_SHA256),
            o if o == SHA_384_WITH_RSA_ENCRYPTION => Ok(&ring_sig::RSA_PKCS1_2048_8192_SHA384),
            o if o == SHA_512_WITH_RSA_ENCRYPTION => Ok(&ring_sig::RSA_PKCS1_2048_8192_SHA512),
            _ => Err(SigError::Unsupported),
        };
    }
    if key_oid == ID_EC_PUBLIC_KEY {
        // ECDSA signature algorithms have absent parameters (RFC 5758).
        if sig_alg.parameters.is_some() {
            return Err(SigError::Unsupported);
        }
        let curve = ec_curve(issuer).ok_or(SigError::Unsupported)?;
        return match (curve, oid) {
            (c, o) if c == SECP_256_R_1 && o == ECDSA_WITH_SHA_256 => {
                Ok(&ring_sig::ECDSA_P256_SHA256_ASN1)
            }
            (c, o) if c == SECP_256_R_1 && o == ECDSA_WITH_SHA_384 => {
                Ok(&ring_sig::ECDSA_P256_SHA384_ASN1)
            }
            (c, o) if c == SECP_384_R_1 && o == ECDSA_WITH_SHA_256 => {
                Ok(&ring_sig::ECDSA_P384_SHA256_ASN1)
            }
            (c, o) if c == SECP_384_R_1 && o == ECDSA_WITH_SHA_384 => {
                Ok(&ring_sig::ECDSA_P384_SHA384_ASN1)
            }
            _ => Err(SigError::Unsupported),
        };
    }
    Err(SigError::Unsupported)
}

/// Checks that `signature` over `message` was made with `issuer`'s key
/// using `sig_alg`.
pub(crate) fn verify(
    sig_alg: &AlgorithmIdentifierOwned,
    issuer: &SubjectPublicKeyInfoOwned,
    message: &[u8],
    signature: &der::asn1::BitString,
) -> Result<(), SigError> {
    let alg = algorithm(sig_alg, issuer)?;
    // RSAPublicKey DER for RSA, the uncompressed point for EC: what ring wants.
    let key = issuer
        .subject_public_key
        .as_bytes()
        .ok_or(SigError::Unsupported)?;
    let sig = signature.as_bytes().ok_or(SigError::Invalid)?;
    UnparsedPublicKey::new(alg, key)
        .verify(message, sig)
        .map_err(|_| SigError::Invalid)
}
