//! The daemon's TLS identity: a P-256 key made in memory at start (never
//! written anywhere), certified by the CA's own X.509 key in the HSM, the
//! certificate logged like any other. Half way through its lifetime a new
//! key and certificate replace them without a restart.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::ring::sign::any_ecdsa_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use signet_hsm::PublicKey;

use crate::touch::Service;
use crate::{Error, Result};

/// Hands rustls the current certificate; [`CertResolver::replace`] swaps it.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

impl CertResolver {
    fn replace(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = key;
    }
}

/// A new key and its logged certificate.
fn issue(service: &Service) -> Result<(Arc<CertifiedKey>, u64)> {
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
        .map_err(|_| Error::Certificate("cannot generate the TLS key".into()))?;
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
        .map_err(|_| Error::Certificate("cannot read the TLS key".into()))?;
    let point = ring::signature::KeyPair::public_key(&pair)
        .as_ref()
        .to_vec();
    let public = p256::PublicKey::from_sec1_bytes(&point)
        .map_err(|e| Error::Certificate(format!("TLS key: {e}")))?;
    let spki = p256::pkcs8::EncodePublicKey::to_public_key_der(&public)
        .map_err(|e| Error::Certificate(format!("TLS key: {e}")))?;
    let public = PublicKey::from_spki_der(spki.as_bytes())?;
    let config = service.config();
    let names = config
        .serve
        .server_names()
        .map_err(|reason| Error::bad("serve.names", reason))?;
    let issued = service.authority().issue_server(
        &names,
        public,
        config.serve.tls_lifetime,
        crate::authority::local_admin(),
    )?;
    let crate::authority::IssuedCert::X509(leaf) = &issued.certificate else {
        return Err(Error::Certificate("expected an X.509 certificate".into()));
    };
    let root = der::Encode::to_der(service.authority().root())
        .map_err(|e| Error::Certificate(e.to_string()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()));
    let signing = any_ecdsa_type(&key).map_err(|e| Error::Certificate(format!("TLS key: {e}")))?;
    let chain = vec![
        CertificateDer::from(leaf.clone()),
        CertificateDer::from(root),
    ];
    Ok((
        Arc::new(CertifiedKey::new(chain, signing)),
        issued.log_index,
    ))
}

/// The TLS configuration: TLS 1.3 only, HTTP/1.1, the current certificate.
pub fn server_config(service: &Service) -> Result<(Arc<rustls::ServerConfig>, Arc<CertResolver>)> {
    let (key, index) = issue(service)?;
    tracing::info!(
        event = "tls_certificate",
        log_index = index,
        "TLS certificate issued and logged"
    );
    let resolver = Arc::new(CertResolver {
        current: RwLock::new(key),
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Certificate(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), resolver))
}

/// Replaces the certificate every half lifetime; a failure is retried a
/// minute later and logged (the old certificate still has half its life).
pub async fn renew(service: Arc<Service>, resolver: Arc<CertResolver>) {
    let half = service.config().serve.tls_lifetime / 2;
    let mut wait = half;
    loop {
        tokio::time::sleep(wait).await;
        let service = service.clone();
        match tokio::task::spawn_blocking(move || issue(&service)).await {
            Ok(Ok((key, index))) => {
                resolver.replace(key);
                tracing::info!(
                    event = "tls_certificate",
                    log_index = index,
                    "TLS certificate renewed"
                );
                wait = half;
            }
            Ok(Err(e)) => {
                tracing::error!(event = "tls_renewal_failed", error = %e, "TLS certificate renewal failed; retrying in a minute");
                wait = Duration::from_secs(60);
            }
            Err(e) => {
                tracing::error!(event = "tls_renewal_failed", error = %e, "TLS renewal task failed");
                wait = Duration::from_secs(60);
            }
        }
    }
}
