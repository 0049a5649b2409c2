//! The relying party: its id, the origins it serves, and how much user
//! verification it asks for.

use serde::{Deserialize, Serialize};

use crate::error::{Result, WebauthnError};

/// How strongly the relying party asks the authenticator to verify the
/// user (PIN or biometric), as WebAuthn's `userVerification` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserVerification {
    /// Verification must happen; responses without the UV flag are refused.
    Required,
    /// Verify if the authenticator can; the flag is recorded, not required.
    Preferred,
    /// Do not verify (touch only).
    Discouraged,
}

impl UserVerification {
    /// The WebAuthn spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Preferred => "preferred",
            Self::Discouraged => "discouraged",
        }
    }
}

/// The relying party Signet's CA is: what browsers and clients must have
/// talked to for a response to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The relying party id: a domain that is the host of every origin or
    /// a parent domain of it (e.g. `signet.example.com`, or `localhost`).
    pub rp_id: String,
    /// The name the browser shows during registration.
    pub rp_name: String,
    /// The web origins ceremonies may run on, in their serialised form
    /// (`https://host[:port]`, no path; default ports dropped).
    pub origins: Vec<String>,
    /// The user verification asked for at registration and, at least,
    /// at every assertion.
    pub user_verification: UserVerification,
}

impl RelyingParty {
    /// Checks and normalises a relying-party configuration: every origin
    /// `https://host[:port]` (plain `http` only for `localhost`, which
    /// browsers treat as secure), no IP addresses, and `rp_id` equal to
    /// each origin's host or a parent domain of it. A single-label
    /// `rp_id` other than `localhost` is refused (it would be a top-level
    /// domain; this crate has no public-suffix list, so keep `rp_id` a
    /// domain you control).
    pub fn new(
        rp_id: &str,
        rp_name: &str,
        origins: &[&str],
        user_verification: UserVerification,
    ) -> Result<Self> {
        let bad = |m: String| Err(WebauthnError::InvalidRelyingParty(m));
        let rp_id = rp_id.to_ascii_lowercase();
        if !is_dns_name(&rp_id) {
            return bad(format!("rp_id {rp_id:?} is not a domain name"));
        }
        if !rp_id.contains('.') && rp_id != "localhost" {
            return bad(format!(
                "rp_id {rp_id:?} is a single label; use the CA's domain name (or localhost)"
            ));
        }
        if rp_name.trim().is_empty() || rp_name.len() > 64 {
            return bad("rp_name must be 1 to 64 bytes".into());
        }
        if origins.is_empty() {
            return bad("at least one origin is needed".into());
        }
        let mut normalised = Vec::with_capacity(origins.len());
        for origin in origins {
            let parsed = Origin::parse(origin).map_err(|why| {
                WebauthnError::InvalidRelyingParty(format!("origin {origin:?}: {why}"))
            })?;
            if parsed.scheme == "http" && parsed.host != "localhost" {
                return bad(format!(
                    "origin {origin:?}: only https origins (or http://localhost) are secure contexts"
                ));
            }
            if !(parsed.host == rp_id || parsed.host.ends_with(&format!(".{rp_id}"))) {
                return bad(format!(
                    "origin {origin:?}: rp_id {rp_id:?} is neither its host nor a parent domain of it"
                ));
            }
            normalised.push(parsed.serialise());
        }
        Ok(Self {
            rp_id,
            rp_name: rp_name.to_string(),
            origins: normalised,
            user_verification,
        })
    }

    /// Whether `origin` (from client data) is one of ours.
    pub(crate) fn allows_origin(&self, origin: &str) -> bool {
        match Origin::parse(origin) {
            Ok(o) => {
                let o = o.serialise();
                self.origins.contains(&o)
            }
            Err(_) => false,
        }
    }
}

/// A web origin: scheme, host and port.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// Parses `scheme://host[:port]` with at most a trailing `/`.
    fn parse(text: &str) -> std::result::Result<Self, &'static str> {
        if text.len() > 256 {
            return Err("longer than 256 bytes");
        }
        let (scheme, rest) = text.split_once("://").ok_or("not scheme://host[:port]")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err("the scheme must be https (or http for localhost)");
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err("an origin has no path, query, fragment or user info");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => {
                let port: u16 = port.parse().map_err(|_| "the port is not a number")?;
                if port == 0 {
                    return Err("port 0");
                }
                (host, Some(port))
            }
            None => (rest, None),
        };
        let host = host.to_ascii_lowercase();
        if !is_dns_name(&host) {
            return Err("the host is not a domain name (IP addresses are not allowed)");
        }
        let default = if scheme == "https" { 443 } else { 80 };
        Ok(Self {
            scheme,
            host,
            port: port.filter(|p| *p != default),
        })
    }

    fn serialise(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

/// A lower-case DNS name of letters, digits and hyphens, not all-numeric
/// in its last label (so no IPv4 address passes).
fn is_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_checked() {
        let rp = RelyingParty::new(
            "Example.COM",
            "Signet",
            &["https://CA.example.com:443/", "https://example.com:8443"],
            UserVerification::Preferred,
        )
        .unwrap();
        assert_eq!(rp.rp_id, "example.com");
        assert_eq!(
            rp.origins,
            ["https://ca.example.com", "https://example.com:8443"]
        );
        assert!(rp.allows_origin("https://ca.example.com"));
        assert!(rp.allows_origin("https://ca.example.com:443"));
        assert!(!rp.allows_origin("http://ca.example.com"));
        assert!(!rp.allows_origin("https://evil.example.com"));
        assert!(!rp.allows_origin("https://example.com"));
        assert!(!rp.allows_origin("https://ca.example.com/path"));

        let local = RelyingParty::new(
            "localhost",
            "Signet",
            &["http://localhost:8080"],
            UserVerification::Required,
        )
        .unwrap();
        assert!(local.allows_origin("http://localhost:8080"));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let uv = UserVerification::Preferred;
        for (rp_id, origins) in [
            ("example.com", &["http://example.com"][..]),
            ("example.com", &["https://other.com"][..]),
            ("example.com", &["https://notexample.com"][..]),
            ("ca.example.com", &["https://example.com"][..]),
            ("com", &["https://example.com"][..]),
            ("127.0.0.1", &["https://127.0.0.1"][..]),
            ("example.com", &["https://example.com/path"][..]),
            ("example.com", &["example.com"][..]),
            ("example.com", &["https://example.com:0"][..]),
            ("example.com", &["https://user@example.com"][..]),
            ("example.com", &[][..]),
        ] {
            assert!(
                matches!(
                    RelyingParty::new(rp_id, "Signet", origins, uv),
                    Err(WebauthnError::InvalidRelyingParty(_))
                ),
                "{rp_id} {origins:?}"
            );
        }
    }
}
