//! Certificate profiles as data: what each kind of certificate contains.
//! Issuance code reads these; it does not branch on the kind.

use std::time::Duration;

use ssh_key::certificate::CertType;

/// How far `valid_after` / `notBefore` is set in the past, so a client whose
/// clock is a little behind still accepts a certificate issued just now.
pub const CLOCK_SKEW_BACKDATE: Duration = Duration::from_secs(5 * 60);

/// An OpenSSH certificate profile.
#[derive(Debug, Clone, Copy)]
pub struct SshProfile {
    /// User or host certificate.
    pub cert_type: CertType,
    /// Extensions granted (names only; all have empty data).
    pub extensions: &'static [&'static str],
    /// What the key id calls the subject: `user` or `host`.
    pub subject_label: &'static str,
}

/// User certificates: the permissions `ssh-keygen -s` grants by default, so a
/// certificate login behaves like a plain key login.
pub const SSH_USER: SshProfile = SshProfile {
    cert_type: CertType::User,
    extensions: &[
        "permit-X11-forwarding",
        "permit-agent-forwarding",
        "permit-port-forwarding",
        "permit-pty",
        "permit-user-rc",
    ],
    subject_label: "user",
};

/// Host certificates carry no extensions.
pub const SSH_HOST: SshProfile = SshProfile {
    cert_type: CertType::Host,
    extensions: &[],
    subject_label: "host",
};

impl SshProfile {
    /// The key id: names the subject and the serial, so sshd's log line
    /// (`Accepted publickey … ID user=alice serial=…`) leads to the log entry.
    pub fn key_id(&self, subject: &str, serial: u64) -> String {
        format!("{}={subject} serial={serial}", self.subject_label)
    }
}

/// The X.509 client certificate profile (docs/x509-profile.md).
pub mod x509_client {
    /// Path pattern of the SAN URI naming the user: `signet://<trust domain>/user/<name>`.
    pub fn user_uri(trust_domain: &str, user: &str) -> String {
        format!("signet://{trust_domain}/user/{user}")
    }

    /// A role that allowed the issuance: `signet://<trust domain>/role/<name>`.
    pub fn role_uri(trust_domain: &str, role: &str) -> String {
        format!("signet://{trust_domain}/role/{role}")
    }

    /// The attested YubiKey holding the key: `signet://<trust domain>/device/<serial>`.
    pub fn device_uri(trust_domain: &str, serial: u32) -> String {
        format!("signet://{trust_domain}/device/{serial}")
    }

    /// The attested PIN and touch policy of the key:
    /// `signet://<trust domain>/key-policy/pin-<policy>.touch-<policy>`.
    pub fn key_policy_uri(trust_domain: &str, device: &signet_log::entry::PivDevice) -> String {
        format!(
            "signet://{trust_domain}/key-policy/{}",
            device.key_policy_name()
        )
    }
}

/// The OpenSSH extension carrying the attested device and key policy:
/// `serial=<n> pin-policy=<p> touch-policy=<t>` (docs/ssh-profile.md).
pub const SSH_DEVICE_EXTENSION: &str = signet_log::entry::SSH_DEVICE_EXTENSION;

/// The X.509 root is a CA for end-entity certificates only (pathLen 0).
pub const X509_ROOT_PATH_LEN: u8 = 0;
