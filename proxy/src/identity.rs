//! Who a client certificate names. The TLS layer has already checked that
//! it chains to the CA's X.509 root and that the client holds its key; this
//! reads what the CA wrote into it: the user
//! (`signet://<trust domain>/user/<name>`, also the CN), the YubiKey that
//! holds the key (`…/device/<serial>`, when the key is attested), and the
//! validity.

use std::time::{SystemTime, UNIX_EPOCH};

use der::Decode as _;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

/// The identity a tunnel is decided and kept open under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user: String,
    /// The YubiKey holding the key, when the certificate names one.
    pub device: Option<u32>,
    /// Validity start, unix seconds.
    pub not_before: u64,
    /// Validity end, unix seconds: the tunnel closes then.
    pub not_after: u64,
}

/// Why a certificate names no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Not an X.509 certificate.
    #[error("the client certificate cannot be read")]
    Unreadable,
    /// No `…/user/<name>` URI of this trust domain, or more than one.
    #[error("the client certificate names no single user of this CA")]
    NoUser,
    /// Two device URIs, or one that is not a serial.
    #[error("the client certificate names its YubiKey ambiguously")]
    BadDevice,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Identity {
    /// Reads the identity from a DER certificate issued under `trust_domain`.
    pub fn from_certificate(der: &[u8], trust_domain: &str) -> Result<Identity, IdentityError> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|_| IdentityError::Unreadable)?;
        let tbs = cert.tbs_certificate();
        let validity = tbs.validity();
        let uris: Vec<String> = match tbs.get_extension::<SubjectAltName>() {
            Ok(Some((_, san))) => san
                .0
                .iter()
                .filter_map(|n| match n {
                    GeneralName::UniformResourceIdentifier(u) => Some(u.as_str().to_owned()),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(_) => return Err(IdentityError::Unreadable),
        };
        Self::from_uris(
            &uris,
            trust_domain,
            unix(validity.not_before.to_system_time()),
            unix(validity.not_after.to_system_time()),
        )
    }

    /// The identity from a certificate's SAN URIs and validity.
    pub fn from_uris(
        uris: &[String],
        trust_domain: &str,
        not_before: u64,
        not_after: u64,
    ) -> Result<Identity, IdentityError> {
        let user_prefix = format!("signet://{trust_domain}/user/");
        let device_prefix = format!("signet://{trust_domain}/device/");
        let users: Vec<&str> = uris
            .iter()
            .filter_map(|u| u.strip_prefix(&user_prefix))
            .collect();
        let [user] = users[..] else {
            return Err(IdentityError::NoUser);
        };
        signet_policy::rules::check_name(user).map_err(|_| IdentityError::NoUser)?;
        let devices: Vec<&str> = uris
            .iter()
            .filter_map(|u| u.strip_prefix(&device_prefix))
            .collect();
        let device = match devices[..] {
            [] => None,
            [serial] => {
                let parsed: u32 = serial.parse().map_err(|_| IdentityError::BadDevice)?;
                if parsed.to_string() != serial {
                    return Err(IdentityError::BadDevice);
                }
                Some(parsed)
            }
            _ => return Err(IdentityError::BadDevice),
        };
        Ok(Identity {
            user: user.to_owned(),
            device,
            not_before,
            not_after,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn users_and_devices() {
        let id = Identity::from_uris(
            &uris(&[
                "signet://example.com/user/alice",
                "signet://example.com/role/sre",
                "signet://example.com/device/12345",
                "signet://example.com/key-policy/pin-once.touch-always",
            ]),
            "example.com",
            1,
            2,
        )
        .unwrap();
        assert_eq!(id.user, "alice");
        assert_eq!(id.device, Some(12345));
        for (list, err) in [
            (
                &["signet://other.com/user/alice"][..],
                IdentityError::NoUser,
            ),
            (&[], IdentityError::NoUser),
            (
                &["signet://example.com/user/a", "signet://example.com/user/b"],
                IdentityError::NoUser,
            ),
            (&["signet://example.com/user/a b"], IdentityError::NoUser),
            (
                &[
                    "signet://example.com/user/a",
                    "signet://example.com/device/012",
                ],
                IdentityError::BadDevice,
            ),
            (
                &[
                    "signet://example.com/user/a",
                    "signet://example.com/device/1",
                    "signet://example.com/device/2",
                ],
                IdentityError::BadDevice,
            ),
            (
                &[
                    "signet://example.com/user/a",
                    "signet://example.com/device/x",
                ],
                IdentityError::BadDevice,
            ),
        ] {
            assert_eq!(
                Identity::from_uris(&uris(list), "example.com", 1, 2),
                Err(err),
                "{list:?}"
            );
        }
        assert_eq!(
            Identity::from_certificate(b"not a certificate", "example.com"),
            Err(IdentityError::Unreadable)
        );
    }
}
