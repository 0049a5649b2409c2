//! `signet-node join` and `signet-node renew`: the node's host
//! certificates from the CA.
//!
//! Join trades a one-time token (`signet-ca nodes invite`; from a file or
//! the environment, never the command line) and the node's host public
//! keys for one host certificate per key, then writes, each atomically: the
//! certificates next to the keys (`<key>-cert.pub`, or in `--out-dir`), the
//! CA's user key for `TrustedUserCAKeys`, a drop-in sshd_config snippet,
//! and the renewal configuration. Renew signs a renewal with each host key
//! and replaces the certificates when a third of their validity is left.
//!
//! The CA is reached over HTTPS checked against the CA root given (no
//! other trust anchor). Only this part of signet-node uses the network;
//! `principals` (sshd's command) never does.

mod client;
mod files;
mod renew_config;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};
use signet_api::nodes::{
    renewal_message, HostRenewal, NodeCertificates, NodeJoinRequest, NodeRenewRequest,
    NODE_JOIN_PATH, NODE_RENEW_PATH, RENEWAL_NAMESPACE,
};

pub use renew_config::{RenewConfig, RenewHostKey};

/// The environment variable the join token may come from.
pub const TOKEN_ENV: &str = "SIGNET_NODE_JOIN_TOKEN";

/// The host keys `join` certifies when none is named: those of these that exist.
pub const DEFAULT_HOST_KEYS: [&str; 3] = [
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_rsa_key",
];

/// Why a join or renewal failed. One line each.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// No token in the file or the environment.
    #[error(
        "no join token: pass --token-file FILE or set {TOKEN_ENV} (from `signet-ca nodes invite`)"
    )]
    NoToken,
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A host key or certificate cannot be used.
    #[error("{path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The command line is not usable.
    #[error("{0}")]
    Usage(String),
    /// The CA could not be reached, or refused (its code and message).
    #[error("the CA at {url}: {message}")]
    Ca {
        /// Where.
        url: String,
        /// Its error code (`invite_invalid`, `not_allowed`, …) or `unreachable`.
        code: String,
        /// What it said, or why it could not be asked.
        message: String,
    },
    /// The CA answered something that does not fit the request.
    #[error("the CA's answer: {0}")]
    Answer(String),
}

pub(crate) fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> JoinError + '_ {
    move |e| JoinError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// What `join` is told.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// The CA's base URL (`https://ca.example:8443`).
    pub ca: String,
    /// The CA's X.509 root (PEM), the only trust anchor for TLS.
    pub ca_root: PathBuf,
    /// The file holding the token; `None`: the environment.
    pub token_file: Option<PathBuf>,
    /// The host private keys (their `.pub` files are sent).
    pub host_keys: Vec<PathBuf>,
    /// Where the certificates go (default: next to each key).
    pub out_dir: Option<PathBuf>,
    /// The sshd_config drop-in to write.
    pub sshd_config_snippet: PathBuf,
    /// The file for `TrustedUserCAKeys`.
    pub user_ca_file: PathBuf,
    /// The renewal configuration to write (what `renew --config` reads).
    pub renew_config: PathBuf,
    /// The node check's configuration, named in the snippet.
    pub node_config: PathBuf,
    /// The binary sshd runs as `AuthorizedPrincipalsCommand`.
    pub principals_command: PathBuf,
    /// The user sshd runs it as.
    pub principals_user: String,
}

/// One certificate written.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenCertificate {
    /// The host key it certifies.
    pub host_key: PathBuf,
    /// Where it was written.
    pub path: PathBuf,
    /// Its serial.
    pub serial: String,
    /// When it expires, unix seconds.
    pub not_after: u64,
    /// Its log index at the CA.
    pub log_index: u64,
}

/// What `join` or `renew` did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The node's name at the CA.
    pub node: String,
    /// The principals its certificates name.
    pub principals: Vec<String>,
    /// The certificates written (empty: `renew` found nothing due).
    pub certificates: Vec<WrittenCertificate>,
    /// The `TrustedUserCAKeys` file.
    pub user_ca_file: PathBuf,
    /// The sshd_config drop-in (join only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sshd_config_snippet: Option<PathBuf>,
    /// The renewal configuration (join only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_config: Option<PathBuf>,
    /// The line clients put in known_hosts to trust the CA's host certificates.
    pub known_hosts_line: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads the token: the file named, else the environment.
fn token(file: Option<&Path>) -> Result<String, JoinError> {
    let raw = match file {
        Some(path) => std::fs::read_to_string(path).map_err(file_err(path))?,
        None => std::env::var(TOKEN_ENV).map_err(|_| JoinError::NoToken)?,
    };
    let token = raw.trim().to_owned();
    if token.is_empty() {
        return Err(JoinError::NoToken);
    }
    Ok(token)
}

/// `<key>-cert.pub`, beside the key or in `out_dir`: where OpenSSH looks
/// for a key's certificate.
pub fn certificate_path(host_key: &Path, out_dir: Option<&Path>) -> PathBuf {
    let mut name = host_key.file_name().unwrap_or_default().to_owned();
    name.push("-cert.pub");
    match out_dir {
        Some(dir) => dir.join(name),
        None => host_key.with_file_name(name),
    }
}

fn public_key_line(host_key: &Path) -> Result<String, JoinError> {
    let mut name = host_key.as_os_str().to_owned();
    name.push(".pub");
    let path = PathBuf::from(name);
    let text = std::fs::read_to_string(&path).map_err(file_err(&path))?;
    let key = ssh_key::PublicKey::from_openssh(text.trim()).map_err(|e| JoinError::Key {
        path: path.clone(),
        reason: format!("not an OpenSSH public key: {e}"),
    })?;
    key.to_openssh().map_err(|e| JoinError::Key {
        path,
        reason: e.to_string(),
    })
}

/// The known_hosts line that trusts the CA's host certificates.
pub fn known_hosts_line(host_ca: &str) -> String {
    format!("@cert-authority * {}", host_ca.trim())
}

/// The drop-in sshd_config: the host keys and their certificates, the
/// CA's user key, and the node check as `AuthorizedPrincipalsCommand`.
pub fn sshd_snippet(options: &JoinOptions, node: &str, certs: &[WrittenCertificate]) -> String {
    let mut text = format!(
        "# Written by signet-node join for node {node}; its certificates are renewed by\n\
         # signet-node renew (deploy/signet-node-renew.timer). See docs/node.md.\n"
    );
    for cert in certs {
        text.push_str(&format!("HostKey {}\n", cert.host_key.display()));
    }
    for cert in certs {
        text.push_str(&format!("HostCertificate {}\n", cert.path.display()));
    }
    text.push_str(&format!(
        "TrustedUserCAKeys {}\n\
         AuthorizedPrincipalsCommand {} principals --config {} %u %t %k\n\
         AuthorizedPrincipalsCommandUser {}\n",
        options.user_ca_file.display(),
        options.principals_command.display(),
        options.node_config.display(),
        options.principals_user
    ));
    text
}

/// Checks the CA's answer against what was asked: one certificate per
/// key, each a host certificate for that key naming the node.
fn check_answer(answer: &NodeCertificates, keys: &[String]) -> Result<(), JoinError> {
    if answer.certificates.len() != keys.len() {
        return Err(JoinError::Answer(format!(
            "{} certificates for {} host keys",
            answer.certificates.len(),
            keys.len()
        )));
    }
    let host_ca = ssh_key::PublicKey::from_openssh(answer.host_ca.trim())
        .map_err(|e| JoinError::Answer(format!("the host CA: {e}")))?
        .fingerprint(ssh_key::HashAlg::Sha256);
    for (cert, key) in answer.certificates.iter().zip(keys) {
        let parsed = ssh_key::Certificate::from_openssh(cert.certificate.trim())
            .map_err(|e| JoinError::Answer(format!("not an OpenSSH certificate: {e}")))?;
        // Signed by the host CA clients will trust, and valid now.
        parsed.validate_at(now(), [&host_ca]).map_err(|_| {
            JoinError::Answer("a certificate that does not verify against the host CA".into())
        })?;
        let key =
            ssh_key::PublicKey::from_openssh(key).map_err(|e| JoinError::Answer(e.to_string()))?;
        if parsed.public_key() != key.key_data()
            || parsed.cert_type() != ssh_key::certificate::CertType::Host
            || parsed.valid_principals().first() != Some(&answer.node)
        {
            return Err(JoinError::Answer(
                "a certificate for another key, kind or node".into(),
            ));
        }
    }
    for line in [&answer.user_ca, &answer.host_ca] {
        ssh_key::PublicKey::from_openssh(line.trim())
            .map_err(|e| JoinError::Answer(format!("a CA key: {e}")))?;
    }
    Ok(())
}

/// Writes the certificates (and the user CA file) atomically.
fn write_certificates(
    answer: &NodeCertificates,
    keys: &[(PathBuf, PathBuf)],
    user_ca_file: &Path,
) -> Result<Vec<WrittenCertificate>, JoinError> {
    let mut written = Vec::with_capacity(keys.len());
    for (cert, (key, path)) in answer.certificates.iter().zip(keys) {
        files::replace(
            path,
            format!("{}\n", cert.certificate.trim()).as_bytes(),
            0o644,
        )?;
        written.push(WrittenCertificate {
            host_key: key.clone(),
            path: path.clone(),
            serial: cert.serial.clone(),
            not_after: cert.not_after,
            log_index: cert.log_index,
        });
    }
    files::replace(
        user_ca_file,
        format!("{}\n", answer.user_ca.trim()).as_bytes(),
        0o644,
    )?;
    Ok(written)
}

/// Joins: fetches the host certificates and writes every file.
pub fn join(options: &JoinOptions) -> Result<Outcome, JoinError> {
    if options.host_keys.is_empty() {
        return Err(JoinError::Usage(
            "no host key: pass --host-key PATH (none of the default /etc/ssh keys exists)".into(),
        ));
    }
    let token = token(options.token_file.as_deref())?;
    let lines = options
        .host_keys
        .iter()
        .map(|k| public_key_line(k))
        .collect::<Result<Vec<_>, _>>()?;
    let ca = client::Ca::new(&options.ca, &options.ca_root)?;
    let answer: NodeCertificates = ca.post(
        NODE_JOIN_PATH,
        &NodeJoinRequest {
            token,
            host_keys: lines.clone(),
        },
    )?;
    check_answer(&answer, &lines)?;
    let paths: Vec<(PathBuf, PathBuf)> = options
        .host_keys
        .iter()
        .map(|k| (k.clone(), certificate_path(k, options.out_dir.as_deref())))
        .collect();
    let certificates = write_certificates(&answer, &paths, &options.user_ca_file)?;
    files::replace(
        &options.sshd_config_snippet,
        sshd_snippet(options, &answer.node, &certificates).as_bytes(),
        0o644,
    )?;
    let renew = RenewConfig {
        ca: options.ca.clone(),
        ca_root: options.ca_root.clone(),
        node: answer.node.clone(),
        user_ca_file: options.user_ca_file.clone(),
        host_key: paths
            .iter()
            .map(|(key, certificate)| RenewHostKey {
                key: key.clone(),
                certificate: certificate.clone(),
            })
            .collect(),
    };
    files::replace(&options.renew_config, renew.to_toml()?.as_bytes(), 0o644)?;
    Ok(Outcome {
        node: answer.node,
        principals: answer.principals,
        certificates,
        user_ca_file: options.user_ca_file.clone(),
        sshd_config_snippet: Some(options.sshd_config_snippet.clone()),
        renew_config: Some(options.renew_config.clone()),
        known_hosts_line: known_hosts_line(&answer.host_ca),
    })
}

/// Whether a certificate is due: less than a third of its validity left
/// (or already expired).
fn due(cert: &ssh_key::Certificate, at: u64) -> bool {
    let total = cert.valid_before().saturating_sub(cert.valid_after());
    cert.valid_before().saturating_sub(at) < total / 3 + 1
}

/// Renews the certificates when due (or always with `force`): signs a
/// renewal with each host key and writes what the CA answers.
pub fn renew(config: &RenewConfig, force: bool) -> Result<Outcome, JoinError> {
    let at = now();
    let mut certs = Vec::with_capacity(config.host_key.len());
    for entry in &config.host_key {
        let text =
            std::fs::read_to_string(&entry.certificate).map_err(file_err(&entry.certificate))?;
        let cert = ssh_key::Certificate::from_openssh(text.trim()).map_err(|e| JoinError::Key {
            path: entry.certificate.clone(),
            reason: format!("not an OpenSSH certificate: {e}"),
        })?;
        certs.push(cert);
    }
    if !force && !certs.iter().any(|c| due(c, at)) {
        let host_ca = certs
            .first()
            .map(|c| ssh_key::PublicKey::new(c.signature_key().clone(), ""))
            .and_then(|k| k.to_openssh().ok())
            .unwrap_or_default();
        return Ok(Outcome {
            node: config.node.clone(),
            principals: certs
                .first()
                .map(|c| c.valid_principals().to_vec())
                .unwrap_or_default(),
            certificates: Vec::new(),
            user_ca_file: config.user_ca_file.clone(),
            sshd_config_snippet: None,
            renew_config: None,
            known_hosts_line: known_hosts_line(&host_ca),
        });
    }
    let mut renewals = Vec::with_capacity(certs.len());
    let mut lines = Vec::with_capacity(certs.len());
    for (entry, cert) in config.host_key.iter().zip(&certs) {
        let key =
            ssh_key::PrivateKey::read_openssh_file(&entry.key).map_err(|e| JoinError::Key {
                path: entry.key.clone(),
                reason: format!("cannot read the host private key: {e}"),
            })?;
        if key.is_encrypted() {
            return Err(JoinError::Key {
                path: entry.key.clone(),
                reason: "the host key is encrypted".into(),
            });
        }
        if key.public_key().key_data() != cert.public_key() {
            return Err(JoinError::Key {
                path: entry.certificate.clone(),
                reason: format!("does not certify {}", entry.key.display()),
            });
        }
        let blob = cert.to_bytes().map_err(|e| JoinError::Key {
            path: entry.certificate.clone(),
            reason: e.to_string(),
        })?;
        let message = renewal_message(at, &Sha256::digest(&blob).into());
        let signature = key
            .sign(RENEWAL_NAMESPACE, ssh_key::HashAlg::Sha512, &message)
            .and_then(|s| s.to_pem(ssh_key::LineEnding::LF))
            .map_err(|e| JoinError::Key {
                path: entry.key.clone(),
                reason: format!("cannot sign the renewal: {e}"),
            })?;
        let certificate = cert.to_openssh().map_err(|e| JoinError::Key {
            path: entry.certificate.clone(),
            reason: e.to_string(),
        })?;
        lines.push(
            key.public_key()
                .to_openssh()
                .map_err(|e| JoinError::Answer(e.to_string()))?,
        );
        renewals.push(HostRenewal {
            certificate,
            signature,
        });
    }
    let ca = client::Ca::new(&config.ca, &config.ca_root)?;
    let answer: NodeCertificates =
        ca.post(NODE_RENEW_PATH, &NodeRenewRequest { time: at, renewals })?;
    check_answer(&answer, &lines)?;
    let paths: Vec<(PathBuf, PathBuf)> = config
        .host_key
        .iter()
        .map(|h| (h.key.clone(), h.certificate.clone()))
        .collect();
    let certificates = write_certificates(&answer, &paths, &config.user_ca_file)?;
    Ok(Outcome {
        node: answer.node,
        principals: answer.principals,
        certificates,
        user_ca_file: config.user_ca_file.clone(),
        sshd_config_snippet: None,
        renew_config: None,
        known_hosts_line: known_hosts_line(&answer.host_ca),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_go_beside_the_key_or_into_the_out_dir() {
        let key = Path::new("/etc/ssh/ssh_host_ed25519_key");
        assert_eq!(
            certificate_path(key, None),
            Path::new("/etc/ssh/ssh_host_ed25519_key-cert.pub")
        );
        assert_eq!(
            certificate_path(key, Some(Path::new("/var/lib/signet-node"))),
            Path::new("/var/lib/signet-node/ssh_host_ed25519_key-cert.pub")
        );
    }

    #[test]
    fn the_token_comes_from_the_file_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  abc\n").unwrap();
        assert_eq!(token(Some(&file)).unwrap(), "abc");
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(token(Some(&file)), Err(JoinError::NoToken)));
    }
}
