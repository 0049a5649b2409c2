//! Access proxies' TLS server certificates: engineers reach a proxy by its
//! public names and check its certificate against the CA's X.509 root and
//! those names. A proxy asks for its names when it joins or renews; the CA
//! issues a server certificate for the same key only when
//! `serve.proxy_names` lists every name asked for (a proxy, or a stolen
//! join token, cannot obtain a certificate for the CA's own names or any
//! other host). It is logged like the CA's own TLS certificate: an
//! `admin-sign` entry whose principals are the names, its actor naming the
//! proxy.

use std::collections::BTreeSet;

use signet_api::ErrorCode;
use signet_log::entry::Actor;

use super::{Refusal, Service};
use crate::x509::ServerName;

/// The most names one proxy certificate may carry.
pub(super) const MAX_PROXY_NAMES: usize = 32;

impl Service {
    /// The names a proxy asked for, checked against `serve.proxy_names`:
    /// each must be a DNS name or IP address listed there, none twice.
    // `Refusal` is the touch flow's one answer type, whatever its size.
    #[allow(clippy::result_large_err)]
    pub(super) fn proxy_public_names(
        &self,
        asked: &[String],
    ) -> std::result::Result<Vec<ServerName>, Refusal> {
        if asked.len() > MAX_PROXY_NAMES {
            return Err(Refusal::new(
                ErrorCode::MalformedRequest,
                "malformed",
                format!("public_names: at most {MAX_PROXY_NAMES} names"),
            ));
        }
        let names = crate::daemon_config::parse_server_names("public_names", asked)
            .map_err(|m| Refusal::new(ErrorCode::MalformedRequest, "malformed", m))?;
        let allowed: BTreeSet<String> = self
            .config
            .serve
            .proxy_server_names()
            .map_err(Refusal::internal)?
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut seen = BTreeSet::new();
        for name in &names {
            let text = name.to_string();
            if !seen.insert(text.clone()) {
                return Err(Refusal::new(
                    ErrorCode::MalformedRequest,
                    "malformed",
                    format!("public_names: {text} is named twice"),
                ));
            }
            if !allowed.contains(&text) {
                return Err(Refusal::new(
                    ErrorCode::NotAllowed,
                    "proxy_name_not_allowed",
                    format!(
                        "this CA does not allow proxies the name {text}; \
                         an administrator lists proxies' names in serve.proxy_names"
                    ),
                ));
            }
        }
        Ok(names)
    }

    /// Issues and logs a proxy's server certificate for `names` and the
    /// key in `public_key` (DER SubjectPublicKeyInfo), valid as long as its
    /// client certificate; returns it as PEM.
    // `Refusal` is the touch flow's one answer type, whatever its size.
    #[allow(clippy::result_large_err)]
    pub(super) fn issue_proxy_server_cert(
        &self,
        proxy: &str,
        names: &[ServerName],
        public_key: &[u8],
        actor: Actor,
    ) -> std::result::Result<String, Refusal> {
        let key = signet_hsm::PublicKey::from_spki_der(public_key).map_err(|e| {
            Refusal::new(
                ErrorCode::MalformedRequest,
                "malformed",
                format!("public_key: {e}"),
            )
        })?;
        let issued = self.authority.issue_server(
            names,
            key,
            self.config.issuance.x509_client_max_ttl,
            actor,
        )?;
        let crate::authority::IssuedCert::X509(der_bytes) = &issued.certificate else {
            return Err(Refusal::internal("expected an X.509 certificate"));
        };
        tracing::info!(
            event = "proxy_server_certificate",
            proxy,
            names = %names.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            log_index = issued.log_index,
            "access proxy server certificate issued and logged"
        );
        Ok(crate::x509::der_to_pem(der_bytes)?)
    }
}
