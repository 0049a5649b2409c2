//! The rules every name, login, label and duration obeys, whether it comes
//! from a YAML file or from a change record in the log.
//!
//! They are narrow on purpose: role and user names end up in log entries and
//! messages, logins in sshd's principal matching, labels in the proxy's
//! decisions. Everything outside these rules is refused, never cleaned up.

use std::time::Duration;

/// Longest role or user name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest label key.
pub const MAX_LABEL_KEY_LEN: usize = 128;
/// Longest label value.
pub const MAX_LABEL_VALUE_LEN: usize = 256;
/// Longest `max_session_ttl`: 30 days.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most logins, label keys, values per key, or roles per user.
pub const MAX_LIST_LEN: usize = 256;

/// The wildcard: as a label key with the single value `*` it allows every
/// node; as a label value it allows any value of that key.
pub const WILDCARD: &str = "*";

/// A value as shown in an error: quoted, escaped, at most 40 characters.
pub(crate) fn shown(value: &str) -> String {
    let mut out: String = value.chars().take(40).collect();
    if out.len() < value.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// A map key as a segment of a field path: as written, cut at 40 characters.
pub(crate) fn key_segment(key: &str) -> String {
    let mut out: String = key.chars().take(40).collect();
    if out.len() < key.len() {
        out.push('…');
    }
    out
}

/// A role or user name: 1–64 characters from `A–Z a–z 0–9 . _ - @`,
/// starting with a letter or digit (the CA's rule for user names, so a name
/// accepted here is accepted in a certificate request).
pub fn check_name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().count() > MAX_NAME_LEN {
        return Err(format!(
            "{} is longer than {MAX_NAME_LEN} characters",
            shown(value)
        ));
    }
    let first_ok = value.starts_with(|c: char| c.is_ascii_alphanumeric());
    let all_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !first_ok || !all_ok {
        return Err(format!(
            "{} is not allowed: use letters, digits, '.', '_', '-', '@', starting with a letter or digit",
            shown(value)
        ));
    }
    Ok(())
}

/// A unix login: `[a-z_][a-z0-9_.-]{0,31}`, the portable subset of what
/// `useradd` accepts (no upper case, no trailing `$`), so sshd matches a
/// certificate principal to exactly one account.
pub fn check_login(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    let len = value.chars().count();
    let first_ok = value.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
    let all_ok = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    if len > 32 || !first_ok || !all_ok {
        return Err(format!(
            "{} is not a unix login: 1-32 characters from a-z 0-9 _ . -, starting with a-z or _",
            shown(value)
        ));
    }
    Ok(())
}

/// A label key: 1–128 characters from `A–Z a–z 0–9 . _ - / :`, or `*`.
pub fn check_label_key(value: &str) -> Result<(), String> {
    if value == WILDCARD {
        return Ok(());
    }
    if value.is_empty() {
        return Err("a label key must not be empty".into());
    }
    let all_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':'));
    if value.chars().count() > MAX_LABEL_KEY_LEN || !all_ok {
        return Err(format!(
            "label key {} is not allowed: 1-{MAX_LABEL_KEY_LEN} characters from letters, digits, '.', '_', '-', '/', ':'",
            shown(value)
        ));
    }
    Ok(())
}

/// A label value: 1–256 characters, no control characters, no leading or
/// trailing space; `*` allows any value.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("a label value must not be empty".into());
    }
    if value.chars().count() > MAX_LABEL_VALUE_LEN {
        return Err(format!(
            "label value is longer than {MAX_LABEL_VALUE_LEN} characters"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "label value {} holds a control character",
            shown(value)
        ));
    }
    if value.trim() != value {
        return Err(format!(
            "label value {} starts or ends with white space",
            shown(value)
        ));
    }
    Ok(())
}

/// A session TTL: whole seconds, more than zero, at most [`MAX_TTL`].
pub fn check_ttl(value: Duration) -> Result<(), String> {
    if value.is_zero() {
        return Err("must be more than zero".into());
    }
    if value.subsec_nanos() != 0 {
        return Err("must be a whole number of seconds".into());
    }
    if value > MAX_TTL {
        return Err(format!(
            "{} is longer than the most allowed, {}",
            humantime::format_duration(value),
            humantime::format_duration(MAX_TTL)
        ));
    }
    Ok(())
}

/// Parses a duration such as `8h`, `30m`, `1h 30m` or `7days` and checks it
/// with [`check_ttl`].
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    // humantime accepts arbitrarily long strings of terms; a duration has a few.
    if text.len() > 64 {
        return Err("a duration is at most 64 characters".into());
    }
    let value = humantime::parse_duration(text).map_err(|e| {
        format!(
            "{} is not a duration ({e}); write it like 8h, 30m or 1h 30m",
            shown(text)
        )
    })?;
    check_ttl(value)?;
    Ok(value)
}

/// Longest node address (`host:port`).
pub const MAX_ADDRESS_LEN: usize = 261;

/// A node's address as the proxy dials it: `host:port`, where host is a DNS
/// name (letters, digits, `-`, dot-separated labels of 1–63 characters, at
/// most 253 in all), an IPv4 address, or an IPv6 address in brackets
/// (`[2001:db8::1]:22`); port 1–65535 in plain decimal. Narrow so that the
/// address means one thing to every resolver and in every log line.
pub fn check_address(value: &str) -> Result<(), String> {
    let help = "write it as host:port (e.g. web-1.internal:22, 10.0.0.5:22, [2001:db8::5]:22)";
    if value.len() > MAX_ADDRESS_LEN {
        return Err(format!("{} is too long; {help}", shown(value)));
    }
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err(format!("{} has no port; {help}", shown(value)));
    };
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && !port.starts_with('0')
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    if !port_ok {
        return Err(format!(
            "port {} is not a number from 1 to 65535; {help}",
            shown(port)
        ));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("{} is not an IPv6 address", shown(inner)));
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let labels_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    // A name of digits and dots only would be read as a malformed IPv4 address.
    let numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !labels_ok || numeric {
        return Err(format!(
            "host {} is not a DNS name, an IPv4 address or a bracketed IPv6 address; {help}",
            shown(host)
        ));
    }
    Ok(())
}

/// A node's label: the key as [`check_label_key`] and the value as
/// [`check_label_value`], but neither may be the wildcard `*`, which only
/// roles use.
pub fn check_node_label(key: &str, value: &str) -> Result<(), String> {
    if key == WILDCARD || value == WILDCARD {
        return Err("\"*\" is a wildcard for roles; a node's labels are plain values".into());
    }
    check_label_key(key)?;
    check_label_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["alice", "prod-sre", "a", "alice@example.com", "A.b_c-d"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "a b", "a\u{0}", "é", &"a".repeat(65), "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn logins() {
        for ok in ["root", "_svc", "ubuntu", "a1.b-c_d", &"a".repeat(32)] {
            assert!(check_login(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Root",
            "1root",
            "-x",
            "a b",
            "a$",
            &"a".repeat(33),
            "ro\not",
            "*",
        ] {
            assert!(check_login(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn labels() {
        assert!(check_label_key("*").is_ok());
        assert!(check_label_key("k8s.io/zone").is_ok());
        assert!(check_label_key("").is_err());
        assert!(check_label_key("a b").is_err());
        assert!(check_label_value("eu west 1").is_ok());
        assert!(check_label_value("").is_err());
        assert!(check_label_value(" x").is_err());
        assert!(check_label_value("a\tb").is_err());
        assert!(check_label_value("a\u{7f}").is_err());
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_ttl("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("30days"), Ok(MAX_TTL));
        assert!(parse_ttl("30days 1s").is_err());
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("500ms").is_err());
        assert!(parse_ttl("8").is_err());
        assert!(parse_ttl("forever").is_err());
        assert!(parse_ttl("99999999999999999999999h").is_err());
    }

    #[test]
    fn addresses() {
        for ok in [
            "web-1:22",
            "web-1.internal.example:2222",
            "10.0.0.5:22",
            "[2001:db8::5]:22",
            "[::1]:65535",
            "a:1",
        ] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "web-1",
            "web-1:",
            "web-1:0",
            "web-1:65536",
            "web-1:022",
            "web-1:+22",
            ":22",
            "2001:db8::5:22",
            "[2001:db8::zz]:22",
            "-web:22",
            "web-:22",
            "we b:22",
            "web..x:22",
            "10.0.0.300:22",
            "1.2.3:22",
            "web/1:22",
            "web\n:22",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
        assert!(check_address(&format!("{}:22", "a".repeat(300))).is_err());
    }

    #[test]
    fn node_labels_have_no_wildcards() {
        assert!(check_node_label("env", "prod").is_ok());
        assert!(check_node_label("*", "prod").is_err());
        assert!(check_node_label("env", "*").is_err());
        assert!(check_node_label("env", " prod").is_err());
        assert!(check_node_label("e v", "prod").is_err());
    }
}
