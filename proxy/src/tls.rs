//! The proxy's TLS identity on its public port, and its renewal.
//!
//! Engineers' clients check the proxy as any TLS server: its certificate
//! must chain to the CA's X.509 root and name the host they dialled. So
//! the proxy shows its *server* certificate (issued by the CA for the same
//! key as its client certificate, naming `public_names`), never its client
//! certificate. Both are renewed together at half their lifetime by the
//! running proxy (`signet-proxy renew` does the same by hand); the new
//! pair is taken for the next handshake without a restart, and the feed
//! uses it at its next connection.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::ring::sign::any_ecdsa_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use crate::config::Config;
use crate::preamble::ALPN_SSH;

/// ALPN of the CA's API forwarded on the same port.
pub const ALPN_HTTP: &[u8] = b"http/1.1";

/// Why the TLS identity cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file is missing or unreadable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The files do not make a usable identity.
    #[error("{0}")]
    Invalid(String),
}

fn pem_der(path: &Path) -> Result<Vec<u8>, TlsError> {
    let file = |message: String| TlsError::File {
        path: path.display().to_string(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| file(e.to_string()))?;
    der::pem::decode_vec(&pem)
        .map(|(_, der)| der)
        .map_err(|e| file(e.to_string()))
}

/// The validity of a DER certificate, unix seconds.
pub fn validity(der_bytes: &[u8]) -> Option<(u64, u64)> {
    use der::Decode as _;
    let cert = x509_cert::Certificate::from_der(der_bytes).ok()?;
    let v = cert.tbs_certificate().validity();
    let unix = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    Some((
        unix(v.not_before.to_system_time()),
        unix(v.not_after.to_system_time()),
    ))
}

/// The proxy's files as read at one moment.
pub struct Identity {
    /// The CA's X.509 root (DER).
    pub root: Vec<u8>,
    /// The client certificate (DER): the trust domain and the renewal time
    /// come from it.
    pub client_cert: Vec<u8>,
    /// What the TLS port shows.
    pub certified: Arc<CertifiedKey>,
}

impl Identity {
    /// Reads the key, the server certificate and the root; the server
    /// certificate must be for the key (a renewal interrupted between the
    /// files is reported, not served).
    pub fn load(config: &Config) -> Result<Identity, TlsError> {
        let root = pem_der(&config.ca.root)?;
        let key = pem_der(&config.identity.key)?;
        let client_cert = pem_der(&config.identity.certificate)?;
        let server_path = config.identity.server_certificate_path();
        if config.public_names.is_empty() {
            return Err(TlsError::Invalid(
                "public_names: the names clients reach this proxy by are needed for its \
                 server certificate"
                    .into(),
            ));
        }
        let server = pem_der(&server_path).map_err(|e| {
            TlsError::Invalid(format!(
                "{e} (the server certificate comes with `signet-proxy join` or `renew` \
                 when public_names is set)"
            ))
        })?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
        let signing = any_ecdsa_type(&key)
            .map_err(|e| TlsError::Invalid(format!("{}: {e}", config.identity.key.display())))?;
        let certified = CertifiedKey::new(
            vec![
                CertificateDer::from(server),
                CertificateDer::from(root.clone()),
            ],
            signing,
        );
        certified.keys_match().map_err(|_| {
            TlsError::Invalid(format!(
                "{} is not for the key {} (an interrupted renewal? run `signet-proxy renew`)",
                server_path.display(),
                config.identity.key.display()
            ))
        })?;
        Ok(Identity {
            root,
            client_cert,
            certified: Arc::new(certified),
        })
    }
}

/// Hands rustls the current server certificate; [`Resolver::replace`]
/// swaps it after a renewal.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    /// Starts with `certified`.
    pub fn new(certified: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(certified),
        })
    }

    /// Takes a new certificate for the next handshakes.
    pub fn replace(&self, certified: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = certified;
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// The public port's TLS: TLS 1.3, the resolver's certificate, client
/// certificates optional at this layer (a tunnel without one is refused
/// in words; the API needs none) but verified against `root` when given;
/// ALPN `signet-ssh/1` or `http/1.1`.
pub fn server_config(
    root: &[u8],
    resolver: Arc<Resolver>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.to_vec()))
        .map_err(|e| TlsError::Invalid(format!("ca.root as a trust anchor: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN_SSH.to_vec(), ALPN_HTTP.to_vec()];
    Ok(Arc::new(config))
}

/// When a certificate is renewed: half way from when it was obtained
/// (`issued`: the later of its file's time and its start, since the CA
/// backdates the start for clock skew) to its end.
pub fn renewal_due(issued: u64, not_after: u64) -> u64 {
    issued + not_after.saturating_sub(issued) / 2
}

/// The shortest wait between two renewals, whatever the certificates say.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

/// How long to wait after a failed renewal: a minute, or less when the
/// certificate ends sooner.
pub const RETRY: Duration = Duration::from_secs(60);

/// Renews the pair half way through its life, for as long as the process runs:
/// [`crate::join::renew`], then the new server certificate into `resolver`.
/// Each outcome goes to `report` (`Ok(not_after)` or the error's words).
pub fn renew_forever(
    config: &Config,
    resolver: &Resolver,
    report: &dyn Fn(Result<u64, String>),
) -> ! {
    loop {
        let path = &config.identity.certificate;
        let written = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let due = std::fs::read(path)
            .ok()
            .and_then(|pem| der::pem::decode_vec(&pem).ok().map(|(_, der)| der))
            .and_then(|der| validity(&der))
            .map(|(not_before, not_after)| renewal_due(not_before.max(written), not_after));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match due {
            Some(due) if due > now => {
                // Wake at least every minute, so a clock step is noticed.
                std::thread::sleep(Duration::from_secs((due - now).min(60)));
                continue;
            }
            _ => {}
        }
        let outcome = crate::join::renew(config)
            .map_err(|e| e.to_string())
            .and_then(|done| {
                Identity::load(config)
                    .map(|identity| {
                        resolver.replace(identity.certified);
                        done.not_after
                    })
                    .map_err(|e| e.to_string())
            });
        let failed = outcome.is_err();
        report(outcome);
        std::thread::sleep(if failed { RETRY } else { MIN_INTERVAL });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_at_half_life() {
        assert_eq!(renewal_due(1000, 1000 + 8 * 3600), 1000 + 4 * 3600);
        assert_eq!(renewal_due(10, 5), 10);
        // Backdated by five minutes, valid 30 s from its writing: not at once.
        let written = 1_000_000;
        assert_eq!(
            renewal_due((written - 300).max(written), written + 30),
            written + 15
        );
        assert_eq!(validity(b"not a certificate"), None);
    }
}
