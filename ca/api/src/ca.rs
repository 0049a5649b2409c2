//! `GET /v1/ca`: what a client pins at its first login — the log's origin
//! and verifier key, the CA's X.509 root, and its SSH host CA.

use serde::{Deserialize, Serialize};

/// The log a client checks every issuance against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaLog {
    /// The checkpoint origin line.
    pub origin: String,
    /// The log key as a C2SP signed-note verifier key (`<name>+<id>+<base64>`).
    pub vkey: String,
}

/// The body of `GET /v1/ca`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaInfo {
    /// The signing log.
    pub log: CaLog,
    /// The CA's X.509 root certificate (PEM): the TLS root and the issuer
    /// of client certificates.
    pub x509_root_pem: String,
    /// The CA's SSH host CA (an OpenSSH public key line), for the
    /// `@cert-authority` line clients trust hosts by.
    pub ssh_host_ca: String,
}
