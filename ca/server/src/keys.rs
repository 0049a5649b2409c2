//! The CA's four keys, their labels on the token, and the key ceremony
//! (`signet-ca init`).

use std::fmt;

use signet_hsm::{KeyAlgorithm, KeyRef, PublicKey, Token};

use crate::config::Config;
use crate::{Error, Result};

/// The role of a CA key. Each role is a separate key on the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// Signs OpenSSH user certificates.
    SshUserCa,
    /// Signs OpenSSH host certificates.
    SshHostCa,
    /// Signs X.509 certificates.
    X509Ca,
    /// Signs log checkpoints.
    LogKey,
}

impl KeyRole {
    /// All roles, in ceremony order.
    pub const ALL: [KeyRole; 4] = [Self::SshUserCa, Self::SshHostCa, Self::X509Ca, Self::LogKey];

    /// The name used on the command line (`signet-ca export ssh-user-ca`).
    pub fn name(self) -> &'static str {
        match self {
            Self::SshUserCa => "ssh-user-ca",
            Self::SshHostCa => "ssh-host-ca",
            Self::X509Ca => "x509-ca",
            Self::LogKey => "log-key",
        }
    }

    /// The key's name in the configuration (`[keys]`, `[piv.slots]`).
    pub fn config_name(self) -> &'static str {
        match self {
            Self::SshUserCa => "ssh_user_ca",
            Self::SshHostCa => "ssh_host_ca",
            Self::X509Ca => "x509_ca",
            Self::LogKey => "log_key",
        }
    }

    /// The `CKA_LABEL` of the key pair on the token.
    pub fn label(self) -> String {
        format!("signet-{}", self.name())
    }

    /// The key type the configuration asks for. An unset log key type is
    /// Ed25519 where the token can do it, else ECDSA P-256 (both sign C2SP
    /// notes; the same token always gives the same answer).
    pub fn algorithm(self, config: &Config, token: &Token) -> KeyAlgorithm {
        match self {
            Self::SshUserCa => config.keys.ssh_user_ca,
            Self::SshHostCa => config.keys.ssh_host_ca,
            Self::X509Ca => config.keys.x509_ca,
            Self::LogKey => config.keys.log_key.unwrap_or_else(|| {
                if token.capabilities().check(KeyAlgorithm::Ed25519).is_ok() {
                    KeyAlgorithm::Ed25519
                } else {
                    KeyAlgorithm::EcdsaP256
                }
            }),
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyRole {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!("unknown key {s:?}; expected ssh-user-ca, ssh-host-ca, x509-ca or log-key")
            })
    }
}

/// What `init` did with one key.
#[derive(Debug, Clone)]
pub struct CeremonyResult {
    /// The role.
    pub role: KeyRole,
    /// The key type.
    pub algorithm: KeyAlgorithm,
    /// The public half.
    pub public_key: PublicKey,
    /// Where the key lives: its label on a PKCS#11 token, its slot on a
    /// YubiKey.
    pub location: String,
    /// True if it was generated now, false if it already existed.
    pub generated: bool,
    /// On a YubiKey, the checked attestation of the key: the slot's
    /// certificate (signed by the card's `f9` key) and the `f9` certificate.
    pub attestation: Option<signet_hsm::piv::PivAttestation>,
}

/// Generates every missing CA key inside the token and keeps existing ones.
/// Checks that the token can do every configured type before generating
/// anything, so a refused configuration leaves the token untouched.
pub fn ceremony(token: &Token, config: &Config) -> Result<Vec<CeremonyResult>> {
    for role in KeyRole::ALL {
        token.capabilities().check(role.algorithm(config, token))?;
    }
    let mut existing = Vec::new();
    for role in KeyRole::ALL {
        existing.push(token.find_key(&role.label(), role.algorithm(config, token))?);
    }
    let mut results = Vec::new();
    for (role, found) in KeyRole::ALL.into_iter().zip(existing) {
        let (key, generated) = match found {
            Some(key) => (key, false),
            None => (
                token.generate_key(&role.label(), role.algorithm(config, token))?,
                true,
            ),
        };
        results.push(CeremonyResult {
            role,
            algorithm: key.algorithm(),
            public_key: key.public_key().clone(),
            location: format!("label {}", key.label()),
            generated,
            attestation: None,
        });
    }
    Ok(results)
}

/// Finds an existing CA key, or explains that `init` has not run.
pub fn load(token: &Token, config: &Config, role: KeyRole) -> Result<KeyRef> {
    token
        .find_key(&role.label(), role.algorithm(config, token))?
        .ok_or_else(|| Error::NotInitialised(format!("no {role} key on the token")))
}

/// What the log says about a CA key: the `subject` of its key-rotation
/// entry, naming the role, the key type and the key's fingerprint.
pub fn key_entry_subject(result: &CeremonyResult) -> Result<String> {
    Ok(format!(
        "{} {} {}",
        result.role.name(),
        result.algorithm.name(),
        result.public_key.ssh_fingerprint()?
    ))
}
