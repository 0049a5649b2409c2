//! `signet-proxy join` and `renew`. Join: the proxy makes a P-256 key of its own, trades its
//! one-time token and the public key for a certificate at the CA
//! (`POST /v1/proxy/join`, TLS checked against the configured CA root
//! only), and writes both where `[identity]` says (the key 0600, created
//! fresh). The token comes from `join.token_file` or
//! `SIGNET_PROXY_JOIN_TOKEN`, never the command line, and is never logged.
//! Renew (before the certificate expires): a new key, and a certificate
//! for it from the CA's proxy listener, authenticated by the current pair.
//! Both also ask for a TLS server certificate for the same key naming
//! `public_names` (what engineers' clients check), written to
//! `identity.server_certificate`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use signet_api::proxy::{JoinRequest, JoinResponse, RenewRequest, JOIN_PATH, RENEW_PATH};
use signet_api::B64;

use crate::config::Config;

/// The environment variable the token may come from.
pub const TOKEN_ENV: &str = "SIGNET_PROXY_JOIN_TOKEN";

/// Why a join failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// No token in the file or the environment.
    #[error("no join token: set join.token_file or {TOKEN_ENV} (from `signet-ca proxies invite`)")]
    NoToken,
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA root is not a PEM certificate.
    #[error("ca.root: {0}")]
    Root(String),
    /// The key could not be made.
    #[error("cannot make the proxy's key: {0}")]
    Key(String),
    /// The CA could not be reached or refused.
    #[error("the CA at {url}: {message}")]
    Ca {
        /// Where.
        url: String,
        /// What it said, or why it could not be asked.
        message: String,
    },
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> JoinError + '_ {
    move |source| JoinError::File {
        path: path.display().to_string(),
        source,
    }
}

/// Reads the token: the file named, else the environment.
pub fn token(config: &Config) -> Result<String, JoinError> {
    let raw = match &config.join.token_file {
        Some(path) => std::fs::read_to_string(path).map_err(file_err(path))?,
        None => std::env::var(TOKEN_ENV).map_err(|_| JoinError::NoToken)?,
    };
    let token = raw.trim().to_owned();
    if token.is_empty() {
        return Err(JoinError::NoToken);
    }
    Ok(token)
}

/// A new P-256 key: its PKCS#8 DER and its SubjectPublicKeyInfo DER.
fn new_key() -> Result<(Vec<u8>, Vec<u8>), JoinError> {
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
        .map_err(|_| JoinError::Key("the random generator failed".into()))?;
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
        .map_err(|_| JoinError::Key("the new key does not read back".into()))?;
    let point = ring::signature::KeyPair::public_key(&pair)
        .as_ref()
        .to_vec();
    let public =
        p256::PublicKey::from_sec1_bytes(&point).map_err(|e| JoinError::Key(e.to_string()))?;
    let spki = p256::pkcs8::EncodePublicKey::to_public_key_der(&public)
        .map_err(|e| JoinError::Key(e.to_string()))?;
    Ok((pkcs8.as_ref().to_vec(), spki.as_bytes().to_vec()))
}

/// POSTs JSON to the CA over TLS checked against the configured root only
/// (with a client certificate for the proxy listener) and reads its answer.
fn post<T: serde::Serialize>(
    config: &Config,
    url: &str,
    body: &T,
    client: Option<ureq::tls::ClientCert>,
) -> Result<JoinResponse, JoinError> {
    let ca_err = |message: String| JoinError::Ca {
        url: url.to_owned(),
        message,
    };
    let root_pem = std::fs::read(&config.ca.root).map_err(file_err(&config.ca.root))?;
    let (_, root_der) =
        der::pem::decode_vec(&root_pem).map_err(|e| JoinError::Root(e.to_string()))?;
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![
            ureq::tls::Certificate::from_der(&root_der).to_owned(),
        ])))
        .client_cert(client)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let body = serde_json::to_vec(body).map_err(|e| ca_err(e.to_string()))?;
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(&body[..])
        .map_err(|e| ca_err(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| ca_err(e.to_string()))?;
    if status != 200 {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(ca_err(message));
    }
    serde_json::from_str(&text).map_err(|e| ca_err(e.to_string()))
}

fn key_pem(pkcs8: &[u8]) -> Result<String, JoinError> {
    der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, pkcs8)
        .map_err(|e| JoinError::Key(e.to_string()))
}

/// Joins: returns the CA's answer after writing the key and certificate.
pub fn join(config: &Config) -> Result<JoinResponse, JoinError> {
    let token = token(config)?;
    let (pkcs8, spki) = new_key()?;
    let url = format!("{}{JOIN_PATH}", config.ca.url.trim_end_matches('/'));
    let joined = post(
        config,
        &url,
        &JoinRequest {
            token,
            public_key: B64(spki),
            public_names: config.public_names.clone(),
        },
        None,
    )?;
    let server = server_pem(config, &url, &joined)?;
    write_new(&config.identity.key, key_pem(&pkcs8)?.as_bytes(), 0o600)?;
    write_new(
        &config.identity.certificate,
        joined.certificate_pem.as_bytes(),
        0o644,
    )?;
    if let Some(pem) = server {
        write_new(
            &config.identity.server_certificate_path(),
            pem.as_bytes(),
            0o644,
        )?;
    }
    Ok(joined)
}

/// Renews: a new key, and a certificate for it from the CA's proxy
/// listener, authenticated by the current key and certificate; both files
/// are replaced atomically (the old pair stays if anything fails).
pub fn renew(config: &Config) -> Result<JoinResponse, JoinError> {
    let key = &config.identity.key;
    let cert = &config.identity.certificate;
    let key_pem_now = std::fs::read(key).map_err(file_err(key))?;
    let cert_pem_now = std::fs::read(cert).map_err(file_err(cert))?;
    let client = ureq::tls::ClientCert::new_with_certs(
        &[ureq::tls::Certificate::from_pem(&cert_pem_now)
            .map_err(|e| JoinError::Key(format!("{}: {e}", cert.display())))?],
        ureq::tls::PrivateKey::from_pem(&key_pem_now)
            .map_err(|e| JoinError::Key(format!("{}: {e}", key.display())))?,
    );
    let (pkcs8, spki) = new_key()?;
    let url = format!("{}{RENEW_PATH}", config.ca.feed_url.trim_end_matches('/'));
    let renewed = post(
        config,
        &url,
        &RenewRequest {
            public_key: B64(spki),
            public_names: config.public_names.clone(),
        },
        Some(client),
    )?;
    let server = server_pem(config, &url, &renewed)?;
    // The key first: a crash between the two leaves a new key with the old
    // certificate, which the next renewal (or a join) repairs; never a
    // certificate without its key.
    replace(key, key_pem(&pkcs8)?.as_bytes(), 0o600)?;
    replace(cert, renewed.certificate_pem.as_bytes(), 0o644)?;
    if let Some(pem) = server {
        replace(
            &config.identity.server_certificate_path(),
            pem.as_bytes(),
            0o644,
        )?;
    }
    Ok(renewed)
}

/// The server certificate in the CA's answer: there exactly when
/// `public_names` asked for one.
fn server_pem(
    config: &Config,
    url: &str,
    answer: &JoinResponse,
) -> Result<Option<String>, JoinError> {
    match (
        &answer.server_certificate_pem,
        config.public_names.is_empty(),
    ) {
        (Some(pem), false) => Ok(Some(pem.clone())),
        (None, true) => Ok(None),
        (None, false) => Err(JoinError::Ca {
            url: url.to_owned(),
            message: "no server certificate for public_names in the answer".into(),
        }),
        (Some(_), true) => Err(JoinError::Ca {
            url: url.to_owned(),
            message: "a server certificate nobody asked for".into(),
        }),
    }
}

/// Replaces a file atomically: a new file beside it, synced, renamed over it.
fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), JoinError> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".new");
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, bytes, mode)?;
    std::fs::rename(&tmp, path).map_err(file_err(path))
}

/// Writes a file that must not exist yet (a second join must not silently
/// replace a working identity).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), JoinError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(file_err(path))?;
    file.write_all(bytes).map_err(file_err(path))?;
    file.sync_all().map_err(file_err(path))
}
