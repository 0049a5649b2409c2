//! The node-side check: sshd runs `signet-node principals` as its
//! `AuthorizedPrincipalsCommand` for every certificate login, and it prints
//! the certificate's principals only if the certificate proves that it is
//! in Signet's log, in a checkpoint the configured witnesses cosigned.
//!
//! No network, no clock, no HSM: the proof travels inside the certificate
//! (`signet_log::certificate`), and the node holds only the log's key and
//! the witness policy ([`NodeConfig`]). Any failure prints nothing, so sshd
//! refuses the login (fail closed), and writes one line saying why
//! ([`NodeError`]). See `docs/node.md`.

#![deny(missing_docs)]

mod config;
mod error;
pub mod join;

pub use config::NodeConfig;
pub use error::{NodeError, Result};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use signet_log::certificate::{ssh_certificate_from_bytes, verify_ssh_certificate};
use ssh_key::certificate::CertType;

/// Largest `%k` accepted (base64 of a certificate with a proof of a few
/// KiB; far below what sshd itself would send).
const MAX_CERT_BASE64_LEN: usize = 64 * 1024;

/// The principals sshd may match the target user against, for the
/// certificate `cert_base64` (sshd's `%k`) of key type `key_type` (`%t`),
/// offered for login as `user` (`%u`).
///
/// Refuses unless the certificate is an OpenSSH *user* certificate of
/// that type, carrying a proof of logging that verifies against `config`,
/// whose entry names exactly its principals.
pub fn principals(
    config: &NodeConfig,
    user: &str,
    key_type: &str,
    cert_base64: &str,
) -> Result<Vec<String>> {
    if cert_base64.len() > MAX_CERT_BASE64_LEN {
        return Err(NodeError::NotACertificate("longer than 64 KiB".into()));
    }
    let blob = STANDARD
        .decode(cert_base64.trim())
        .map_err(|_| NodeError::NotACertificate("not base64".into()))?;
    let cert =
        ssh_certificate_from_bytes(&blob).map_err(|e| NodeError::NotACertificate(e.to_string()))?;
    let refused = |reason: String| NodeError::Refused {
        key_id: cert.key_id().to_owned(),
        serial: cert.serial(),
        user: user.to_owned(),
        reason,
    };
    let actual_type = cert.algorithm().to_certificate_type();
    if key_type != actual_type {
        return Err(refused(format!(
            "sshd named the key type {key_type:?}, the certificate is {actual_type:?}"
        )));
    }
    if cert.cert_type() != CertType::User {
        return Err(refused("a host certificate, not a user certificate".into()));
    }
    let verified =
        verify_ssh_certificate(&cert, &config.trust).map_err(|e| refused(e.to_string()))?;
    // The contents check made the entry's principals the certificate's.
    Ok(verified.entry.principals)
}
