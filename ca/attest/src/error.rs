//! The one error type of the crate.
//!
//! Messages are shown to the client that sent the chain: they say which
//! certificate (by its position in the chain, 0 = the slot attestation
//! certificate) is wrong and how, and nothing else.

/// Why an attestation chain (or a root list) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// No certificate was given.
    #[error("the attestation chain is empty: send the slot attestation certificate and the device's f9 certificate")]
    EmptyChain,
    /// Only the slot certificate was given.
    #[error("the attestation chain has only the slot certificate: add the device's f9 attestation certificate")]
    MissingDeviceCertificate,
    /// More certificates than any YubiKey chain has.
    #[error("the attestation chain has {len} certificates; at most {max} are accepted")]
    ChainTooLong {
        /// Certificates given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A certificate larger than any attestation certificate is.
    #[error("certificate {position} of the attestation chain is {len} bytes; at most {max} are accepted")]
    CertificateTooLarge {
        /// Position in the chain.
        position: usize,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a DER X.509 certificate.
    #[error("certificate {position} of the attestation chain is not a DER X.509 certificate")]
    Malformed {
        /// Position in the chain.
        position: usize,
    },
    /// A signature or key algorithm that is not accepted.
    #[error("certificate {position} of the attestation chain uses an unsupported algorithm (accepted: RSA PKCS#1 v1.5 with SHA-256/384/512, ECDSA P-256/P-384 with SHA-256/384)")]
    UnsupportedAlgorithm {
        /// Position in the chain.
        position: usize,
    },
    /// The issuer name does not match the next certificate's subject.
    #[error("certificate {position} of the attestation chain was not issued by the certificate after it (issuer and subject names differ)")]
    IssuerMismatch {
        /// Position in the chain.
        position: usize,
    },
    /// The signature does not verify with the issuer's key.
    #[error("the signature of certificate {position} of the attestation chain does not verify with its issuer's key")]
    BadSignature {
        /// Position in the chain.
        position: usize,
    },
    /// The certificate's validity ended before now.
    #[error("certificate {position} of the attestation chain has expired")]
    Expired {
        /// Position in the chain.
        position: usize,
    },
    /// The certificate's validity starts after now.
    #[error("certificate {position} of the attestation chain is not valid yet")]
    NotYetValid {
        /// Position in the chain.
        position: usize,
    },
    /// A certificate above the device certificate is not a CA.
    #[error("certificate {position} of the attestation chain signs another certificate but is not a CA (basicConstraints or keyUsage)")]
    NotCa {
        /// Position in the chain.
        position: usize,
    },
    /// An intermediate's path length constraint is exceeded.
    #[error("certificate {position} of the attestation chain allows fewer intermediates below it than the chain has")]
    PathLengthExceeded {
        /// Position in the chain.
        position: usize,
    },
    /// The slot attestation certificate claims to be a CA.
    #[error("the slot attestation certificate (position 0) is a CA certificate; a YubiKey never issues one")]
    SlotCertificateIsCa,
    /// A critical extension this verifier does not understand.
    #[error("certificate {position} of the attestation chain has a critical extension that is not understood")]
    UnknownCriticalExtension {
        /// Position in the chain.
        position: usize,
    },
    /// An extension appears twice in one certificate.
    #[error("certificate {position} of the attestation chain has an extension twice")]
    DuplicateExtension {
        /// Position in the chain.
        position: usize,
    },
    /// The chain does not end at a configured device root.
    #[error("the attestation chain does not lead to a trusted device root (is this a genuine YubiKey, and is its root configured?)")]
    UnknownRoot,
    /// A Yubico attestation extension is absent from the slot certificate.
    #[error("the slot attestation certificate has no {name} extension (OID {oid})")]
    MissingExtension {
        /// What the extension states.
        name: &'static str,
        /// Its OID.
        oid: &'static str,
    },
    /// A Yubico attestation extension could not be read.
    #[error("the slot attestation certificate's {name} extension (OID {oid}) is malformed")]
    MalformedExtension {
        /// What the extension states.
        name: &'static str,
        /// Its OID.
        oid: &'static str,
    },
    /// A policy value Signet does not accept.
    #[error("the slot attestation certificate states {what} {value} ({meaning}), which Signet does not accept")]
    UnsupportedPolicy {
        /// Which policy.
        what: &'static str,
        /// The byte the device wrote.
        value: u8,
        /// What the value means.
        meaning: &'static str,
    },
    /// A root list could not be read.
    #[error("device roots: {0}")]
    InvalidRoots(String),
}
