//! The renewal configuration `join` writes and `renew --config` reads:
//! where the CA is, and each host key with its certificate. No secret: the
//! host keys stay in their own files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{file_err, JoinError};

/// `/etc/signet/node-renew.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewConfig {
    /// The CA's base URL.
    pub ca: String,
    /// The CA's X.509 root (PEM).
    pub ca_root: PathBuf,
    /// The node's name at the CA.
    pub node: String,
    /// The `TrustedUserCAKeys` file (rewritten at each renewal).
    pub user_ca_file: PathBuf,
    /// The host keys and their certificates.
    pub host_key: Vec<RenewHostKey>,
}

/// One host key and where its certificate lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewHostKey {
    /// The private key (signs the renewal).
    pub key: PathBuf,
    /// Its certificate.
    pub certificate: PathBuf,
}

impl RenewConfig {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<Self, JoinError> {
        let text = std::fs::read_to_string(path).map_err(file_err(path))?;
        let config: Self = toml::from_str(&text).map_err(|e| JoinError::File {
            path: path.to_path_buf(),
            reason: e.to_string().replace('\n', " "),
        })?;
        if config.host_key.is_empty() || config.host_key.len() > signet_api::nodes::MAX_HOST_KEYS {
            return Err(JoinError::File {
                path: path.to_path_buf(),
                reason: format!(
                    "host_key: 1 to {} entries",
                    signet_api::nodes::MAX_HOST_KEYS
                ),
            });
        }
        Ok(config)
    }

    /// The file's text.
    pub fn to_toml(&self) -> Result<String, JoinError> {
        let body = toml::to_string(self).map_err(|e| JoinError::Answer(e.to_string()))?;
        Ok(format!(
            "# Written by signet-node join; read by signet-node renew --config.\n{body}"
        ))
    }
}
