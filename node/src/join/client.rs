//! The CA over HTTPS: TLS checked against the configured CA root only,
//! JSON in and out, the CA's typed errors kept.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{file_err, JoinError};

/// Largest answer read (a few certificates).
const MAX_ANSWER: u64 = 1 << 20;

pub(super) struct Ca {
    base: String,
    agent: ureq::Agent,
}

impl Ca {
    pub(super) fn new(base: &str, root_pem: &Path) -> Result<Self, JoinError> {
        if !base.starts_with("https://") {
            return Err(JoinError::Usage(format!(
                "--ca {base:?}: the CA is reached over https:// only"
            )));
        }
        let pem = std::fs::read(root_pem).map_err(file_err(root_pem))?;
        let root = ureq::tls::Certificate::from_pem(&pem).map_err(|e| JoinError::Key {
            path: root_pem.to_path_buf(),
            reason: format!("not a PEM certificate: {e}"),
        })?;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![
                root.to_owned()
            ])))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            agent,
        })
    }

    /// POSTs `body` as JSON to `path`; the answer, or the CA's refusal.
    pub(super) fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, JoinError> {
        let url = format!("{}{path}", self.base);
        let failed = |code: &str, message: String| JoinError::Ca {
            url: url.clone(),
            code: code.to_owned(),
            message,
        };
        let body = serde_json::to_vec(body).map_err(|e| failed("internal", e.to_string()))?;
        let mut response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(&body[..])
            .map_err(|e| failed("unreachable", e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| failed("unreachable", e.to_string()))?;
        if status != 200 {
            return Err(match serde_json::from_str::<signet_api::ApiError>(&text) {
                Ok(e) => failed(
                    e.code.as_str(),
                    format!("{} ({}, HTTP {status})", e.message, e.code),
                ),
                Err(_) => failed("http", format!("HTTP {status}")),
            });
        }
        serde_json::from_str(&text).map_err(|e| JoinError::Answer(e.to_string()))
    }
}
