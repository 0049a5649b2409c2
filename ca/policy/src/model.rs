//! Roles and users, the checks they pass, and their JSON form in the log.
//!
//! A [`Role`] or [`User`] that exists has passed the checks of
//! [`crate::rules`], whether it was read from YAML or from a change record:
//! deserializing one from JSON checks it too and puts its lists in order,
//! so a log entry can neither smuggle in a login the YAML parser would
//! refuse nor make two equal roles compare different.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use signet_log::entry::{PinPolicy, TouchPolicy};

use crate::error::RuleError;
use crate::rules::{self, WILDCARD};

/// A role: which logins on which nodes, and what the key and session must be.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RoleRecord")]
pub struct Role {
    /// Its name, unique among roles.
    pub name: String,
    /// What it allows.
    pub allow: Allow,
    /// The conditions it sets.
    pub options: RoleOptions,
}

/// What a role allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// The unix logins (certificate principals) it allows, sorted.
    pub logins: Vec<String>,
    /// The nodes it allows, by label: a node is allowed when, for every key
    /// here, the node has that label with one of the listed values (`*`
    /// allowing any value). `{"*": ["*"]}` allows every node; an empty map
    /// allows none. Values sorted.
    pub node_labels: BTreeMap<String, Vec<String>>,
}

/// The conditions a role sets on certificates and sessions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleOptions {
    /// Longest certificate (and session) the role allows. In JSON: integer seconds.
    #[serde(with = "seconds")]
    pub max_session_ttl: Duration,
    /// What the certified key must be, by its PIV attestation.
    pub hardware_key: HardwareKey,
    /// Whether every connection through the proxy needs a fresh touch.
    pub session_mfa: bool,
}

/// What a role demands of the key it certifies, proven by the key's PIV
/// attestation. Ordered by strength: a key satisfying one level satisfies
/// every weaker one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum HardwareKey {
    /// Any key; no attestation needed.
    #[default]
    None,
    /// A key generated on a genuine device (attested), any PIN or touch policy.
    Attested,
    /// An attested key whose touch policy is `always` or `cached`.
    Touch,
    /// An attested key whose touch policy is `always` or `cached` and whose
    /// PIN policy is `once` or `always`.
    TouchAndPin,
}

impl HardwareKey {
    /// Every level, weakest first.
    pub const ALL: [HardwareKey; 4] = [
        HardwareKey::None,
        HardwareKey::Attested,
        HardwareKey::Touch,
        HardwareKey::TouchAndPin,
    ];

    /// The name used in YAML and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Attested => "attested",
            Self::Touch => "touch",
            Self::TouchAndPin => "touch_and_pin",
        }
    }

    /// Whether a key meets this level. `key` is the PIN and touch policy
    /// from the key's verified attestation, `None` for a key without one.
    /// Policies this crate does not know (the log's enums may grow) satisfy
    /// nothing beyond `attested`.
    pub fn satisfied_by(self, key: Option<(PinPolicy, TouchPolicy)>) -> bool {
        let touch = |t: TouchPolicy| matches!(t, TouchPolicy::Always | TouchPolicy::Cached);
        let pin = |p: PinPolicy| matches!(p, PinPolicy::Once | PinPolicy::Always);
        match (self, key) {
            (Self::None, _) => true,
            (_, None) => false,
            (Self::Attested, Some(_)) => true,
            (Self::Touch, Some((_, t))) => touch(t),
            (Self::TouchAndPin, Some((p, t))) => touch(t) && pin(p),
        }
    }
}

impl fmt::Display for HardwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HardwareKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown value {}, expected one of none, attested, touch, touch_and_pin",
                    rules::shown(s)
                )
            })
    }
}

impl Role {
    /// Whether this role allows `login` (exact match; there are no wildcard logins).
    pub fn allows_login(&self, login: &str) -> bool {
        self.allow.allows_login(login)
    }

    /// Whether this role allows a node with these labels (see [`Allow::node_labels`]).
    pub fn allows_node(&self, labels: &BTreeMap<String, String>) -> bool {
        self.allow.allows_node(labels)
    }
}

impl Allow {
    /// Whether `login` is allowed (exact match; there are no wildcard
    /// logins). The access proxy asks this of the roles in the CA's feed.
    pub fn allows_login(&self, login: &str) -> bool {
        self.logins.iter().any(|l| l == login)
    }

    /// Whether a node with these labels is allowed (see [`Allow::node_labels`]).
    pub fn allows_node(&self, labels: &BTreeMap<String, String>) -> bool {
        let wanted = &self.node_labels;
        if wanted.is_empty() {
            return false;
        }
        if let Some(values) = wanted.get(WILDCARD) {
            // Checked: `*` is then the only key and `*` its only value.
            return values.len() == 1 && values[0] == WILDCARD && wanted.len() == 1;
        }
        wanted.iter().all(|(key, values)| {
            labels
                .get(key)
                .is_some_and(|have| values.iter().any(|v| v == WILDCARD || v == have))
        })
    }
}

impl Role {
    /// Checks the role against [`crate::rules`] and puts its lists in order.
    /// Refuses duplicates rather than dropping them: a duplicate in a file is
    /// most likely a typo for something else.
    pub fn canonical(mut self) -> Result<Role, RuleError> {
        rules::check_name(&self.name).map_err(|m| RuleError::new("name", m))?;
        sorted_unique(&mut self.allow.logins, "allow.logins", rules::check_login)?;
        if self.allow.node_labels.len() > rules::MAX_LIST_LEN {
            return Err(RuleError::new(
                "allow.node_labels",
                format!("at most {} label keys", rules::MAX_LIST_LEN),
            ));
        }
        for (key, values) in &mut self.allow.node_labels {
            let field = format!("allow.node_labels.{}", rules::key_segment(key));
            rules::check_label_key(key).map_err(|m| RuleError::new(&field, m))?;
            sorted_unique(values, &field, rules::check_label_value)?;
            if values.is_empty() {
                return Err(RuleError::new(field, "list at least one value (* for any)"));
            }
        }
        check_wildcard(&self.allow.node_labels)
            .map_err(|m| RuleError::new("allow.node_labels", m))?;
        rules::check_ttl(self.options.max_session_ttl)
            .map_err(|m| RuleError::new("options.max_session_ttl", m))?;
        Ok(self)
    }
}

/// The `*` label key must stand alone with the single value `*`: anything
/// else would be ambiguous.
pub(crate) fn check_wildcard(labels: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
    if let Some(values) = labels.get(WILDCARD) {
        if labels.len() != 1 || values.len() != 1 || values[0] != WILDCARD {
            return Err(
                "the key \"*\" allows every node: it must be the only key, with the single value \"*\""
                    .into(),
            );
        }
    }
    Ok(())
}

/// A user and the roles it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "UserRecord")]
pub struct User {
    /// Its name, unique among users; the name it enrolls and asks for certificates under.
    pub name: String,
    /// The names of its roles, sorted. May be empty: the user then gets nothing.
    pub roles: Vec<String>,
}

impl User {
    /// Checks the user against [`crate::rules`] and puts its roles in order.
    pub fn canonical(mut self) -> Result<User, RuleError> {
        rules::check_name(&self.name).map_err(|m| RuleError::new("name", m))?;
        sorted_unique(&mut self.roles, "roles", rules::check_name)?;
        Ok(self)
    }
}

/// Checks every item, refuses duplicates and overlong lists, sorts.
fn sorted_unique(
    items: &mut [String],
    field: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<(), RuleError> {
    if items.len() > rules::MAX_LIST_LEN {
        return Err(RuleError::new(
            field,
            format!("at most {} entries", rules::MAX_LIST_LEN),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        check(item).map_err(|m| RuleError::new(format!("{field}[{i}]"), m))?;
        if !seen.insert(item.as_str()) {
            return Err(RuleError::new(
                format!("{field}[{i}]"),
                format!("{} is listed twice", rules::shown(item)),
            ));
        }
    }
    items.sort();
    Ok(())
}

/// The JSON shape of a role, before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleRecord {
    name: String,
    allow: Allow,
    options: RoleOptions,
}

impl TryFrom<RoleRecord> for Role {
    type Error = RuleError;

    fn try_from(r: RoleRecord) -> Result<Role, RuleError> {
        Role {
            name: r.name,
            allow: r.allow,
            options: r.options,
        }
        .canonical()
    }
}

/// The JSON shape of a user, before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRecord {
    name: String,
    roles: Vec<String>,
}

impl TryFrom<UserRecord> for User {
    type Error = RuleError;

    fn try_from(r: UserRecord) -> Result<User, RuleError> {
        User {
            name: r.name,
            roles: r.roles,
        }
        .canonical()
    }
}

/// Durations as integer seconds in JSON: no floats, one spelling per value.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        // Sub-second parts are refused by the checks, so nothing is lost.
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(labels: &[(&str, &[&str])]) -> Role {
        Role {
            name: "r".into(),
            allow: Allow {
                logins: vec!["root".into()],
                node_labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                    .collect(),
            },
            options: RoleOptions {
                max_session_ttl: Duration::from_secs(3600),
                hardware_key: HardwareKey::Touch,
                session_mfa: false,
            },
        }
    }

    fn node(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn node_labels() {
        let r = role(&[("env", &["prod", "staging"]), ("team", &["sre"])]);
        assert!(r.allows_node(&node(&[("env", "prod"), ("team", "sre"), ("x", "y")])));
        assert!(r.allows_node(&node(&[("env", "staging"), ("team", "sre")])));
        assert!(!r.allows_node(&node(&[("env", "dev"), ("team", "sre")])));
        assert!(!r.allows_node(&node(&[("env", "prod")])));
        assert!(!r.allows_node(&node(&[])));

        let any_env = role(&[("env", &["*"])]);
        assert!(any_env.allows_node(&node(&[("env", "whatever")])));
        assert!(!any_env.allows_node(&node(&[("team", "sre")])));

        let every = role(&[("*", &["*"])]);
        assert!(every.allows_node(&node(&[])));
        assert!(every.allows_node(&node(&[("env", "prod")])));

        let none = role(&[]);
        assert!(!none.allows_node(&node(&[("env", "prod")])));
    }

    #[test]
    fn wildcard_must_stand_alone() {
        assert!(role(&[("*", &["*"]), ("env", &["prod"])])
            .canonical()
            .is_err());
        assert!(role(&[("*", &["prod"])]).canonical().is_err());
        assert!(role(&[("*", &["*"])]).canonical().is_ok());
    }

    #[test]
    fn hardware_key_levels() {
        use PinPolicy as P;
        use TouchPolicy as T;
        let keys = [
            None,
            Some((P::Never, T::Never)),
            Some((P::Once, T::Never)),
            Some((P::Never, T::Cached)),
            Some((P::Never, T::Always)),
            Some((P::Once, T::Cached)),
            Some((P::Always, T::Always)),
        ];
        let expect = |level: HardwareKey| -> Vec<bool> {
            keys.iter().map(|k| level.satisfied_by(*k)).collect()
        };
        assert_eq!(expect(HardwareKey::None), [true; 7]);
        assert_eq!(
            expect(HardwareKey::Attested),
            [false, true, true, true, true, true, true]
        );
        assert_eq!(
            expect(HardwareKey::Touch),
            [false, false, false, true, true, true, true]
        );
        assert_eq!(
            expect(HardwareKey::TouchAndPin),
            [false, false, false, false, false, true, true]
        );
        // Ordered by strength, and each level implies the weaker ones.
        for (i, a) in HardwareKey::ALL.iter().enumerate() {
            for b in &HardwareKey::ALL[..i] {
                assert!(b < a);
                for k in keys {
                    assert!(!a.satisfied_by(k) || b.satisfied_by(k));
                }
            }
        }
    }

    #[test]
    fn hardware_key_names() {
        for k in HardwareKey::ALL {
            assert_eq!(k.as_str().parse::<HardwareKey>(), Ok(k));
        }
        assert!("Touch".parse::<HardwareKey>().is_err());
    }
}
