//! Questions asked of a verified log: search filters, times, and the JSON
//! form of an entry for `search --json` and `export --format jsonl`.

use serde_json::{Map, Value};
use signet_log::entry::{Actor, Entry, EntryKind, ENTRY_VERSION};
use signet_log::merkle::Hash;

use super::error::{AuditError, Result};
use super::verify::kind_name;

/// Every entry kind, by name.
pub const KINDS: &[(&str, EntryKind)] = &[
    ("ssh-user-cert", EntryKind::SshUserCert),
    ("ssh-host-cert", EntryKind::SshHostCert),
    ("x509-cert", EntryKind::X509Cert),
    ("admin-sign", EntryKind::AdminSign),
    ("enrollment", EntryKind::Enrollment),
    ("key-removal", EntryKind::KeyRemoval),
    ("role-change", EntryKind::RoleChange),
    ("lock", EntryKind::Lock),
    ("unlock", EntryKind::Unlock),
    ("key-rotation", EntryKind::KeyRotation),
    ("invite", EntryKind::Invite),
];

/// Parses a kind name (`ssh-user-cert`, `lock`, …).
pub fn parse_kind(name: &str) -> Result<EntryKind> {
    KINDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
            AuditError::bad_input(format!(
                "unknown kind {name:?}; kinds are: {}",
                names.join(", ")
            ))
        })
}

/// What `signet audit search` looks for. Every given condition must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The entry grants this principal.
    pub principal: Option<String>,
    /// The entry is by or about this user: the actor's user name or unix
    /// user, or the entry's subject.
    pub user: Option<String>,
    /// Entry time at or after this (unix seconds).
    pub since: Option<u64>,
    /// Entry time at or before this (unix seconds).
    pub until: Option<u64>,
    /// The entry is of one of these kinds (any, if empty).
    pub kinds: Vec<EntryKind>,
}

impl Filter {
    /// Whether `entry` matches.
    pub fn matches(&self, entry: &Entry) -> bool {
        if let Some(p) = &self.principal {
            if !entry.principals.iter().any(|x| x == p) {
                return false;
            }
        }
        if let Some(u) = &self.user {
            let actor = match &entry.actor {
                Actor::User { name, .. } => Some(name.as_str()),
                Actor::LocalAdmin { unix_user } => Some(unix_user.as_str()),
                _ => None,
            };
            if actor != Some(u.as_str()) && entry.subject.as_deref() != Some(u.as_str()) {
                return false;
            }
        }
        if self.since.is_some_and(|s| entry.time < s) || self.until.is_some_and(|u| entry.time > u)
        {
            return false;
        }
        self.kinds.is_empty() || self.kinds.contains(&entry.kind)
    }
}

/// An entry as one JSON object: `index`, `leaf_hash` (hex), `time_rfc3339`,
/// and every field of the entry as the log stores it (`version` included).
pub fn entry_json(index: u64, leaf: &Hash, entry: &Entry) -> Result<Value> {
    let fields = serde_json::to_value(entry)
        .map_err(|e| AuditError::bad_input(format!("entry {index}: {e}")))?;
    let mut out = Map::new();
    out.insert("index".into(), Value::from(index));
    out.insert("leaf_hash".into(), Value::from(hex::encode(leaf)));
    out.insert("time_rfc3339".into(), Value::from(format_time(entry.time)));
    out.insert("version".into(), Value::from(ENTRY_VERSION));
    if let Value::Object(map) = fields {
        out.extend(map);
    }
    Ok(Value::Object(out))
}

/// A one-line human summary of an entry.
pub fn entry_line(index: u64, entry: &Entry) -> String {
    let actor = match &entry.actor {
        Actor::User { name, .. } => format!("user {name}"),
        Actor::LocalAdmin { unix_user } => format!("local-admin {unix_user}"),
        other => format!("{other:?}"),
    };
    let mut line = format!(
        "{index}\t{}\t{}\t{actor}",
        format_time(entry.time),
        kind_name(entry.kind)
    );
    if let Some(s) = &entry.subject {
        line.push_str(&format!("\tsubject={s}"));
    }
    if !entry.principals.is_empty() {
        line.push_str(&format!("\tprincipals={}", entry.principals.join(",")));
    }
    if !entry.roles.is_empty() {
        line.push_str(&format!("\troles={}", entry.roles.join(",")));
    }
    if let Some(c) = &entry.certificate {
        line.push_str(&format!(
            "\tserial={}\tvalid={}..{}",
            c.serial,
            format_time(c.not_before),
            format_time(c.not_after)
        ));
    }
    line
}

/// Parses `--since`/`--until`: unix seconds, or RFC 3339
/// (`2026-11-23T08:00:00Z`, `2026-11-23T09:00:00+01:00`, fractions ignored).
pub fn parse_time(s: &str) -> Result<u64> {
    let bad = || {
        AuditError::bad_input(format!(
            "time {s:?}: expected unix seconds or RFC 3339 such as 2026-11-23T08:00:00Z"
        ))
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad());
    }
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| num_in(s, r);
    let sep_ok = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !sep_ok {
        return Err(bad());
    }
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60
    {
        return Err(bad());
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return Err(bad());
            }
            let (Some(oh), Some(om)) = (num_in(rest, 1..3), num_in(rest, 4..6)) else {
                return Err(bad());
            };
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if rb[0] == b'-' {
                -o
            } else {
                o
            }
        }
    };
    let t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec.min(59) - offset;
    u64::try_from(t).map_err(|_| bad())
}

fn num_in(s: &str, r: std::ops::Range<usize>) -> Option<i64> {
    let part = s.get(r)?;
    if part.bytes().all(|c| c.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Unix seconds as RFC 3339 UTC, e.g. `2026-11-23T08:00:00Z`.
pub fn format_time(t: u64) -> String {
    let days = i64::try_from(t / 86400).unwrap_or(i64::MAX / 2);
    let secs = t % 86400;
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("0").unwrap(), 0);
        assert_eq!(parse_time("1763856100").unwrap(), 1763856100);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("2025-11-23T00:01:40Z").unwrap(), 1763856100);
        assert_eq!(parse_time("2025-11-23T01:01:40+01:00").unwrap(), 1763856100);
        assert_eq!(
            parse_time("2025-11-22T23:01:40.123-01:00").unwrap(),
            1763856100
        );
        assert_eq!(parse_time("2024-02-29T12:00:00Z").unwrap(), 1709208000);
        for bad in [
            "",
            "-1",
            "yesterday",
            "2025-11-23",
            "2025-11-23T00:01:40",
            "2025-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2025-11-23T24:00:00Z",
            "2025-11-23T00:00:00+1:00",
            "1969-12-31T23:59:59Z",
            "2025-11-23T00:00:00.Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        for t in [0, 1763856100, 1709208000, 4102444800, 253402300799] {
            assert_eq!(parse_time(&format_time(t)).unwrap(), t, "{t}");
        }
        assert_eq!(format_time(1763856100), "2025-11-23T00:01:40Z");
        // Any u64 an entry may hold formats without overflow.
        assert!(format_time(u64::MAX).ends_with("T07:00:15Z"));
    }
}
