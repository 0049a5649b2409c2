//! The log entry: what was issued or changed, when, by whom, for whom.
//!
//! An entry's bytes in the log are its canonical JSON encoding (see
//! `docs/log-format.md`): an object with sorted keys, no whitespace, integers
//! only, absent rather than empty optional fields, and `"version": 1`. There
//! is exactly one encoding per entry, and [`Entry::from_bytes`] accepts only
//! that one: it decodes, re-encodes, and rejects the input unless the bytes are
//! identical. So the leaf hash of an entry is a function of its meaning, and
//! nobody can log the same event twice under different hashes or smuggle
//! unread fields past an auditor.
//!
//! Unknown fields and unknown versions are rejected, not ignored: an auditor
//! running an old verifier must fail loudly on a log it cannot fully read.

mod canonical;
mod contents;
mod fields;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use contents::{
    check_certificate_contents, spki_fingerprint, x509_key_fingerprint, SSH_DEVICE_EXTENSION,
};
pub use fields::{Base64Bytes, Sha256Hex};

use crate::error::{EntryError, Result};
use crate::merkle::{leaf_hash, Hash};
use crate::tiles::MAX_ENTRY_LEN;

/// The entry format version this crate reads and writes.
pub const ENTRY_VERSION: u64 = 1;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EntryKind {
    /// An OpenSSH user certificate was issued.
    SshUserCert,
    /// An OpenSSH host certificate was issued.
    SshHostCert,
    /// An X.509 client or service certificate was issued.
    X509Cert,
    /// A certificate was issued by an admin directly (e.g. for a service).
    AdminSign,
    /// A user or device was enrolled.
    Enrollment,
    /// An enrolled key or device was removed.
    KeyRemoval,
    /// Roles were changed (applied from git).
    RoleChange,
    /// A user or device was locked.
    Lock,
    /// A user or device was unlocked.
    Unlock,
    /// A CA key was rotated.
    KeyRotation,
    /// A user was invited to enroll a security key.
    Invite,
}

impl EntryKind {
    /// Whether entries of this kind record an issued certificate.
    pub fn issues_certificate(self) -> bool {
        matches!(
            self,
            Self::SshUserCert | Self::SshHostCert | Self::X509Cert | Self::AdminSign
        )
    }
}

/// PIV PIN policy of the key, from its attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PinPolicy {
    /// No PIN needed.
    Never,
    /// PIN once per session.
    Once,
    /// PIN for every use.
    Always,
}

/// PIV touch policy of the key, from its attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TouchPolicy {
    /// No touch needed.
    Never,
    /// Touch for every use.
    Always,
    /// Touch, cached for 15 seconds.
    Cached,
}

impl PinPolicy {
    /// The word the log (and the certificates) use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Once => "once",
            Self::Always => "always",
        }
    }
}

impl TouchPolicy {
    /// The word the log (and the certificates) use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Always => "always",
            Self::Cached => "cached",
        }
    }
}

/// The attested hardware key the request came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivDevice {
    /// Device serial number, from the attestation certificate.
    pub serial: u32,
    /// PIN policy of the key.
    pub pin_policy: PinPolicy,
    /// Touch policy of the key.
    pub touch_policy: TouchPolicy,
}

/// Who caused the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Actor {
    /// An enrolled user, authenticated with WebAuthn.
    User {
        /// User name.
        name: String,
        /// The WebAuthn credential id that made the assertion.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        webauthn_credential_id: Option<Base64Bytes>,
        /// The attested PIV device holding the certified key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        piv_device: Option<PivDevice>,
        /// The security key's signature counter in that assertion: the CA
        /// refuses a later assertion whose counter does not move forward
        /// (a cloned key), and an auditor can check the same.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        webauthn_sign_count: Option<u64>,
    },
    /// An administrator on the CA host, identified by unix socket peer credentials.
    LocalAdmin {
        /// The unix user name.
        unix_user: String,
    },
}

/// The certificate an entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedCertificate {
    /// Serial number: decimal for OpenSSH (a `u64`), lowercase hex for X.509.
    pub serial: String,
    /// Fingerprint of the certified public key as OpenSSH prints it:
    /// `SHA256:` and unpadded base64 of the SHA-256 of the key blob.
    pub public_key_fingerprint: String,
    /// Start of validity, unix seconds.
    pub not_before: u64,
    /// End of validity, unix seconds.
    pub not_after: u64,
    /// SHA-256 of `bytes`.
    pub sha256: Sha256Hex,
    /// The certificate: the OpenSSH certificate blob or the X.509 DER; for
    /// a precertificate, what the CA signs without the proof extension
    /// (see [`CertificateForm`]).
    pub bytes: Base64Bytes,
    /// Which form `bytes` holds. Absent from the encoding for a full
    /// certificate, so entries written before precertificates existed keep
    /// their bytes and their leaf hashes.
    #[serde(default, skip_serializing_if = "CertificateForm::is_full")]
    pub form: CertificateForm,
}

/// What an [`IssuedCertificate`]'s `bytes` hold.
///
/// A certificate that carries the proof of its own logging cannot be
/// logged itself (the proof would have to contain its own hash), so, as in
/// Certificate Transparency (RFC 6962 §3.1), the log records the
/// *precertificate*: the certificate's signed contents without the proof
/// extension. The final certificate then carries the entry's index, the
/// inclusion proof and the cosigned checkpoint (`crate::certificate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CertificateForm {
    /// The whole signed certificate (not written in the encoding).
    #[default]
    Full,
    /// The precertificate: for OpenSSH, every field of the certificate up
    /// to and including the signature key (what the CA signs), without the
    /// `log-proof@signet` extension; for X.509, the DER `TBSCertificate`
    /// without the log-proof extension.
    Precertificate,
}

impl CertificateForm {
    /// Whether this is the full form, left out of the encoding.
    pub fn is_full(&self) -> bool {
        *self == Self::Full
    }
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// What happened.
    pub kind: EntryKind,
    /// When, in unix seconds (the CA's clock).
    pub time: u64,
    /// Who did it.
    pub actor: Actor,
    /// SHA-256 of the request that led to the entry (what the WebAuthn
    /// challenge committed to), if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<Sha256Hex>,
    /// What an admin action is about: a user, device, role or CA key name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Principals (SSH logins or host names) granted, in certificate order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    /// Roles that allowed the issuance, or that an admin action changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The issued certificate, for the kinds that issue one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<IssuedCertificate>,
    /// What an admin action changed, in full: the CA rebuilds its users,
    /// credentials, roles, invites and locks from these alone, so the state
    /// it acts on is exactly what the log shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

/// The content of an admin action. Each variant belongs to one entry kind
/// (see [`Change::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Change {
    /// An invite to enroll (kind `invite`). Only the token's hash is
    /// logged; the token itself is in the link the admin hands over.
    Invite {
        /// SHA-256 of the invite token.
        token_sha256: Sha256Hex,
        /// When the invite expires, unix seconds.
        expires: u64,
    },
    /// A registered security key (kind `enrollment`).
    Credential {
        /// The WebAuthn credential id.
        id: Base64Bytes,
        /// The credential's public key, COSE encoded.
        public_key_cose: Base64Bytes,
        /// Its COSE algorithm (-7 ES256, -8 EdDSA, …).
        algorithm: i64,
        /// The authenticator model's AAGUID (16 bytes).
        aaguid: Base64Bytes,
        /// The attestation statement format that was verified.
        attestation_format: String,
        /// The signature counter at registration.
        sign_count: u64,
        /// SHA-256 of the invite token that was spent.
        invite_sha256: Sha256Hex,
    },
    /// A security key removed (kind `key-removal`).
    CredentialRemoved {
        /// The WebAuthn credential id.
        id: Base64Bytes,
    },
    /// A change of roles or users (kind `role-change`), as the policy
    /// crate writes it: one role or user put or removed.
    Policy {
        /// The change.
        change: Value,
    },
    /// A user locked (kind `lock`).
    Lock {
        /// Why, for the user and the auditor.
        reason: String,
        /// When the lock ends by itself, unix seconds; absent: until unlocked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// A user unlocked (kind `unlock`): an admin lock and any lock from
    /// failed assertions end.
    Unlock {
        /// Why.
        reason: String,
    },
}

impl PivDevice {
    /// The value of the OpenSSH extension `piv-device@signet`:
    /// `serial=<n> pin-policy=<p> touch-policy=<t>` (docs/ssh-profile.md).
    pub fn ssh_extension_value(&self) -> String {
        format!(
            "serial={} pin-policy={} touch-policy={}",
            self.serial,
            self.pin_policy.as_str(),
            self.touch_policy.as_str()
        )
    }

    /// The name in an X.509 `key-policy` SAN URI: `pin-<p>.touch-<t>`.
    pub fn key_policy_name(&self) -> String {
        format!(
            "pin-{}.touch-{}",
            self.pin_policy.as_str(),
            self.touch_policy.as_str()
        )
    }
}

impl Change {
    /// The entry kind this change is recorded under.
    pub fn kind(&self) -> EntryKind {
        match self {
            Self::Invite { .. } => EntryKind::Invite,
            Self::Credential { .. } => EntryKind::Enrollment,
            Self::CredentialRemoved { .. } => EntryKind::KeyRemoval,
            Self::Policy { .. } => EntryKind::RoleChange,
            Self::Lock { .. } => EntryKind::Lock,
            Self::Unlock { .. } => EntryKind::Unlock,
        }
    }
}

impl Entry {
    /// The canonical encoding, the bytes that go into the log.
    ///
    /// Fails if the entry breaks a rule of the format (see [`Entry::check`]) or
    /// encodes to more than 65535 bytes.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        let mut value =
            serde_json::to_value(self).map_err(|e| EntryError::Invalid(e.to_string()))?;
        let Value::Object(map) = &mut value else {
            return Err(EntryError::Invalid("entry is not an object".into()).into());
        };
        map.insert("version".into(), Value::from(ENTRY_VERSION));
        let bytes = canonical::to_canonical(&value)?;
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(EntryError::TooLarge(bytes.len()).into());
        }
        Ok(bytes)
    }

    /// Decodes an entry, accepting only its canonical encoding of a known version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(EntryError::TooLarge(bytes.len()).into());
        }
        let mut value: Value =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Invalid(e.to_string()))?;
        let Value::Object(map) = &mut value else {
            return Err(EntryError::Invalid("entry is not an object".into()).into());
        };
        match map.remove("version") {
            Some(v) if v.as_u64() == Some(ENTRY_VERSION) => {}
            _ => return Err(EntryError::UnsupportedVersion.into()),
        }
        let entry: Entry =
            serde_json::from_value(value).map_err(|e| EntryError::Invalid(e.to_string()))?;
        if entry.to_canonical_bytes()? != bytes {
            return Err(EntryError::NonCanonical.into());
        }
        Ok(entry)
    }

    /// The canonical encoding with the certificate's `bytes` emptied
    /// (`"bytes":""`): what a certificate's proof of logging carries, since
    /// the certificate itself gives the bytes back (`crate::certificate`).
    ///
    /// Fails like [`Entry::to_canonical_bytes`], and if the entry records no
    /// certificate.
    pub fn to_detached_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        if self.certificate.is_none() {
            return Err(EntryError::BadField("certificate").into());
        }
        let mut value =
            serde_json::to_value(self).map_err(|e| EntryError::Invalid(e.to_string()))?;
        let Some(bytes) = value.pointer_mut("/certificate/bytes") else {
            return Err(EntryError::BadField("certificate").into());
        };
        *bytes = Value::from("");
        if let Value::Object(map) = &mut value {
            map.insert("version".into(), Value::from(ENTRY_VERSION));
        }
        canonical::to_canonical(&value).map_err(Into::into)
    }

    /// The entry whose detached encoding (see [`Entry::to_detached_bytes`])
    /// is `detached`, with `certificate` put back as its certificate bytes.
    ///
    /// As strict as [`Entry::from_bytes`]: the detached bytes must be the
    /// canonical detached encoding, with `"bytes":""`, and the whole entry
    /// must pass every rule, so a `sha256` that is not the hash of
    /// `certificate` fails with [`EntryError::BadField`]`("certificate.sha256")`.
    pub fn from_detached_bytes(detached: &[u8], certificate: &[u8]) -> Result<Self> {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        if detached.len() > MAX_ENTRY_LEN {
            return Err(EntryError::TooLarge(detached.len()).into());
        }
        let mut value: Value =
            serde_json::from_slice(detached).map_err(|e| EntryError::Invalid(e.to_string()))?;
        match value.pointer_mut("/certificate/bytes") {
            Some(bytes) if bytes.as_str() == Some("") => {
                *bytes = Value::from(STANDARD.encode(certificate));
            }
            _ => {
                return Err(EntryError::Invalid(
                    "a detached entry has a certificate with empty bytes".into(),
                )
                .into())
            }
        }
        let whole = canonical::to_canonical(&value)?;
        let entry = Self::from_bytes(&whole)?;
        if entry.to_detached_bytes()? != detached {
            return Err(EntryError::NonCanonical.into());
        }
        Ok(entry)
    }

    /// The entry's Merkle leaf hash, `SHA-256(0x00 ‖ canonical bytes)`.
    pub fn leaf_hash(&self) -> Result<Hash> {
        Ok(leaf_hash(&self.to_canonical_bytes()?))
    }

    /// Checks the rules the types alone do not enforce.
    ///
    /// - names, principals, roles and the subject are non-empty and hold no
    ///   control characters;
    /// - certificate-issuing kinds carry a certificate, other kinds may;
    /// - a certificate's serial is canonical decimal `u64` (OpenSSH kinds) or
    ///   lowercase hex without leading zeros, at most 40 digits (X.509), its
    ///   fingerprint is `SHA256:` and 43 characters of unpadded base64, its
    ///   validity is not empty, its bytes are non-empty and `sha256` is
    ///   their hash.
    pub fn check(&self) -> Result<()> {
        let field = |f: &'static str| -> crate::Error { EntryError::BadField(f).into() };
        match &self.actor {
            Actor::User { name, .. } if !plain(name) => return Err(field("actor.name")),
            Actor::LocalAdmin { unix_user } if !plain(unix_user) => {
                return Err(field("actor.unix_user"))
            }
            _ => {}
        }
        if self.subject.as_deref().is_some_and(|s| !plain(s)) {
            return Err(field("subject"));
        }
        if !self.principals.iter().all(|p| plain(p)) {
            return Err(field("principals"));
        }
        if !self.roles.iter().all(|r| plain(r)) {
            return Err(field("roles"));
        }
        if let Some(change) = &self.change {
            if change.kind() != self.kind {
                return Err(field("change (does not belong to the entry's kind)"));
            }
            let text_ok = match change {
                Change::Credential {
                    id,
                    public_key_cose,
                    aaguid,
                    attestation_format,
                    ..
                } => {
                    !id.0.is_empty()
                        && !public_key_cose.0.is_empty()
                        && aaguid.0.len() == 16
                        && plain(attestation_format)
                }
                Change::CredentialRemoved { id } => !id.0.is_empty(),
                Change::Lock { reason, .. } | Change::Unlock { reason } => plain(reason),
                Change::Policy { change } => change.is_object(),
                Change::Invite { .. } => true,
            };
            if !text_ok {
                return Err(field("change"));
            }
        } else if self.kind == EntryKind::Invite {
            return Err(field("change (an invite records its token hash)"));
        }
        match (&self.certificate, self.kind.issues_certificate()) {
            (None, true) => return Err(field("certificate")),
            (Some(c), _) => check_certificate(self.kind, c)?,
            (None, false) => {}
        }
        Ok(())
    }
}

fn plain(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_control)
}

fn check_certificate(kind: EntryKind, c: &IssuedCertificate) -> Result<()> {
    let field = |f: &'static str| -> crate::Error { EntryError::BadField(f).into() };
    let serial_ok = match kind {
        EntryKind::SshUserCert | EntryKind::SshHostCert => is_decimal_u64(&c.serial),
        EntryKind::X509Cert => is_x509_serial(&c.serial),
        _ => is_decimal_u64(&c.serial) || is_x509_serial(&c.serial),
    };
    if !serial_ok {
        return Err(field("certificate.serial"));
    }
    if !is_fingerprint(&c.public_key_fingerprint) {
        return Err(field("certificate.public_key_fingerprint"));
    }
    if c.not_before >= c.not_after {
        return Err(field("certificate.not_after"));
    }
    if c.bytes.0.is_empty() {
        return Err(field("certificate.bytes"));
    }
    let digest: [u8; 32] = Sha256::digest(&c.bytes.0).into();
    if digest != c.sha256.0 {
        return Err(field("certificate.sha256"));
    }
    Ok(())
}

fn is_decimal_u64(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
        && s.parse::<u64>().is_ok()
}

fn is_x509_serial(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && !s.starts_with('0')
        && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_fingerprint(s: &str) -> bool {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use base64::Engine as _;
    let Some(b64) = s.strip_prefix("SHA256:") else {
        return false;
    };
    b64.len() == 43 && STANDARD_NO_PAD.decode(b64).is_ok_and(|d| d.len() == 32)
}
