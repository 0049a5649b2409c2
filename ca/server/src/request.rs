//! Parsing what a requester hands in: public keys, names, principals and
//! validity. Everything from outside becomes a typed value here or is
//! refused with the field named.

use std::time::Duration;

use signet_hsm::PublicKey;
use ssh_key::public::KeyData;

use crate::{Error, Result};

/// The longest public key file accepted.
const MAX_KEY_FILE: usize = 16 * 1024;
/// The most principals one certificate may carry.
pub const MAX_PRINCIPALS: usize = 64;

/// A public key to certify, in both encodings the CA needs.
#[derive(Debug, Clone)]
pub struct SubjectKey {
    ssh: KeyData,
    /// `None` for key types X.509 cannot carry (FIDO `sk-` keys).
    x509: Option<PublicKey>,
}

impl SubjectKey {
    /// Parses an OpenSSH public key line or a PEM SubjectPublicKeyInfo.
    /// Refuses private keys, certificates, DSA and RSA below 2048 bits.
    pub fn parse(text: &[u8], field: &'static str) -> Result<Self> {
        if text.len() > MAX_KEY_FILE {
            return Err(Error::bad(field, "file is too large for a public key"));
        }
        let text = std::str::from_utf8(text).map_err(|_| Error::bad(field, "not a text file"))?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Error::bad(field, "the file is empty"));
        }
        if trimmed.contains("PRIVATE KEY") {
            return Err(Error::bad(
                field,
                "this is a private key; give the public key (.pub) instead",
            ));
        }
        if trimmed.starts_with("-----BEGIN PUBLIC KEY-----") {
            let (label, der_bytes) = der::pem::decode_vec(trimmed.as_bytes())
                .map_err(|e| Error::bad(field, format!("bad PEM: {e}")))?;
            if label != "PUBLIC KEY" {
                return Err(Error::bad(field, format!("unexpected PEM label {label}")));
            }
            let key = PublicKey::from_spki_der(&der_bytes)
                .map_err(|e| Error::bad(field, e.to_string()))?;
            return Self::from_public_key(key, field);
        }
        if trimmed.lines().count() != 1 {
            return Err(Error::bad(field, "expected one OpenSSH public key line"));
        }
        if trimmed.contains("-cert-v01@openssh.com") {
            return Err(Error::bad(
                field,
                "this is a certificate; give the plain public key",
            ));
        }
        let parsed = ssh_key::PublicKey::from_openssh(trimmed).map_err(|e| {
            Error::bad(
                field,
                format!("not an OpenSSH public key or PEM public key ({e})"),
            )
        })?;
        let ssh = parsed.key_data().clone();
        match &ssh {
            KeyData::SkEcdsaSha2NistP256(_) | KeyData::SkEd25519(_) => Ok(Self { ssh, x509: None }),
            other => {
                let key =
                    PublicKey::from_ssh(other).map_err(|e| Error::bad(field, e.to_string()))?;
                Self::from_public_key(key, field)
            }
        }
    }

    /// A key already parsed (an attested PIV key's SubjectPublicKeyInfo).
    pub fn from_public_key(key: PublicKey, field: &'static str) -> Result<Self> {
        if let PublicKey::Rsa(rsa_key) = &key {
            use rsa::traits::PublicKeyParts;
            let bits = rsa_key.size() * 8;
            if bits < 2048 {
                return Err(Error::bad(
                    field,
                    format!("RSA-{bits} is too weak; at least 2048 bits"),
                ));
            }
        }
        let ssh = key.to_ssh().map_err(|e| Error::bad(field, e.to_string()))?;
        Ok(Self {
            ssh,
            x509: Some(key),
        })
    }

    /// The key for an OpenSSH certificate.
    pub fn ssh(&self) -> &KeyData {
        &self.ssh
    }

    /// The key for an X.509 certificate, or a request error naming `field`.
    pub fn x509(&self, field: &'static str) -> Result<&PublicKey> {
        self.x509.as_ref().ok_or_else(|| {
            Error::bad(
                field,
                "FIDO (sk-) keys cannot be put in an X.509 certificate",
            )
        })
    }

    /// OpenSSH fingerprint (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        self.ssh.fingerprint(ssh_key::HashAlg::Sha256).to_string()
    }
}

/// Checks a user name, login or host name: 1–64 characters from
/// `A–Z a–z 0–9 . _ - @`, starting with a letter or digit. Narrow on
/// purpose: these names end up in sshd's principal matching, in X.509 names
/// and URIs, and in logs.
pub fn checked_name(value: &str, field: &'static str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::bad(field, "must not be empty"));
    }
    if value.len() > 64 {
        return Err(Error::bad(field, "at most 64 characters"));
    }
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let all_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !first_ok || !all_ok {
        return Err(Error::bad(
            field,
            format!("{value:?} is not allowed: use letters, digits, '.', '_', '-', '@', starting with a letter or digit"),
        ));
    }
    Ok(value.to_owned())
}

/// Checks a list of principals: at least one, each a valid name, no duplicates.
pub fn checked_principals(values: &[String], field: &'static str) -> Result<Vec<String>> {
    if values.is_empty() {
        return Err(Error::bad(field, "at least one is required"));
    }
    if values.len() > MAX_PRINCIPALS {
        return Err(Error::bad(field, format!("at most {MAX_PRINCIPALS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let name = checked_name(value, field)?;
        if out.contains(&name) {
            return Err(Error::bad(field, format!("{name:?} is given twice")));
        }
        out.push(name);
    }
    Ok(out)
}

/// Parses a TTL such as `8h` or `30m`: positive, at most `max`.
pub fn checked_ttl(text: &str, max: Duration, field: &'static str) -> Result<Duration> {
    let ttl = humantime::parse_duration(text.trim()).map_err(|e| {
        Error::bad(
            field,
            format!("{text:?} is not a duration like 30m, 8h or 7d ({e})"),
        )
    })?;
    if ttl.is_zero() {
        return Err(Error::bad(field, "must be greater than zero"));
    }
    if ttl > max {
        return Err(Error::Policy(format!(
            "{field} {} is above the maximum of {} for this certificate kind",
            humantime::format_duration(ttl),
            humantime::format_duration(max)
        )));
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_injection_characters() {
        for bad in [
            "",
            "root,admin",
            "a b",
            "-rf",
            "alice\n",
            "x*",
            "é",
            "a=b",
            &"a".repeat(65),
        ] {
            assert!(checked_name(bad, "--user").is_err(), "{bad:?}");
        }
        assert_eq!(
            checked_name("alice.smith@corp", "--user").unwrap(),
            "alice.smith@corp"
        );
    }

    #[test]
    fn principals_need_one_and_no_duplicates() {
        assert!(checked_principals(&[], "--principal").is_err());
        assert!(checked_principals(&["a".into(), "a".into()], "--principal").is_err());
        assert_eq!(
            checked_principals(&["root".into()], "--principal").unwrap(),
            ["root"]
        );
    }

    #[test]
    fn ttl_bounds() {
        let max = Duration::from_secs(8 * 3600);
        assert!(matches!(
            checked_ttl("0s", max, "--ttl"),
            Err(Error::BadRequest { .. })
        ));
        assert!(matches!(
            checked_ttl("-1h", max, "--ttl"),
            Err(Error::BadRequest { .. })
        ));
        assert!(matches!(
            checked_ttl("9h", max, "--ttl"),
            Err(Error::Policy(_))
        ));
        assert_eq!(checked_ttl("8h", max, "--ttl").unwrap(), max);
    }

    #[test]
    fn key_files_that_are_not_public_keys_are_refused() {
        let cases: [&[u8]; 6] = [
            b"",
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
            b"ssh-ed25519 AAAAnotbase64!!",
            b"ssh-ed25519-cert-v01@openssh.com AAAA x",
            b"\xff\xfe",
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ];
        for case in cases {
            let err = SubjectKey::parse(case, "--public-key").unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::BadRequest {
                        field: "--public-key",
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn ed25519_openssh_key_parses_for_both_formats() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF3pmztnLx/vadXQ0fCYydshpmgxp6t7TQ0xOs4/GHw6 alice@laptop";
        let key = SubjectKey::parse(line.as_bytes(), "--public-key").unwrap();
        assert!(key.fingerprint().starts_with("SHA256:"));
        assert!(key.x509("--public-key").is_ok());
    }
}
