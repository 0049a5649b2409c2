//! What `roles apply` changes, as records for the log and as a diff for people.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::RuleError;
use crate::model::{Role, User};
use crate::policy::Policy;
use crate::rules;

/// One change to the policy: what the CA records in one log entry and
/// replays with [`Policy::apply`].
///
/// The JSON form is small and has one spelling per value: externally tagged
/// (`{"put_role":{…}}`, `{"remove_user":"alice"}`), durations in integer
/// seconds, lists sorted, maps sorted by key. Decoding checks everything the
/// YAML parser checks (names, logins, labels, TTL bounds) and refuses
/// unknown fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "ChangeRecord")]
pub enum Change {
    /// Adds a role or replaces the role of that name.
    PutRole(Role),
    /// Removes the role of that name.
    RemoveRole(String),
    /// Adds a user or replaces the user of that name.
    PutUser(User),
    /// Removes the user of that name.
    RemoveUser(String),
}

impl Change {
    /// Whether this is about a role or a user.
    pub fn kind(&self) -> Kind {
        match self {
            Self::PutRole(_) | Self::RemoveRole(_) => Kind::Role,
            Self::PutUser(_) | Self::RemoveUser(_) => Kind::User,
        }
    }

    /// The name of the role or user changed.
    pub fn name(&self) -> &str {
        match self {
            Self::PutRole(r) => &r.name,
            Self::PutUser(u) => &u.name,
            Self::RemoveRole(n) | Self::RemoveUser(n) => n,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ChangeRecord {
    PutRole(Role),
    RemoveRole(String),
    PutUser(User),
    RemoveUser(String),
}

impl TryFrom<ChangeRecord> for Change {
    type Error = RuleError;

    fn try_from(r: ChangeRecord) -> Result<Change, RuleError> {
        let check = |n: &str| rules::check_name(n).map_err(|m| RuleError::new("name", m));
        Ok(match r {
            ChangeRecord::PutRole(role) => Change::PutRole(role),
            ChangeRecord::PutUser(user) => Change::PutUser(user),
            ChangeRecord::RemoveRole(name) => {
                check(&name)?;
                Change::RemoveRole(name)
            }
            ChangeRecord::RemoveUser(name) => {
                check(&name)?;
                Change::RemoveUser(name)
            }
        })
    }
}

/// Role or user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A role.
    Role,
    /// A user.
    User,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Role => "role",
            Self::User => "user",
        })
    }
}

/// Added, changed or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// New.
    Added,
    /// Existed, now different.
    Changed,
    /// Gone.
    Removed,
}

impl Action {
    /// The mark in the human diff: `+`, `~` or `-`.
    pub fn mark(self) -> char {
        match self {
            Self::Added => '+',
            Self::Changed => '~',
            Self::Removed => '-',
        }
    }
}

/// One field that differs, its values as shown to people (`[root, ubuntu]`,
/// `8h`, `touch`). `old` is `None` for a field that was not there (an added
/// role, a new label key), `new` for one that is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The field's path, as in YAML (`options.max_session_ttl`, `allow.node_labels.env`).
    pub field: String,
    /// Its value before.
    pub old: Option<String>,
    /// Its value after.
    pub new: Option<String>,
}

/// What one [`Change`] does, for people: which role or user, and which fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeDetail {
    /// Added, changed or removed.
    pub action: Action,
    /// Role or user.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The fields that differ (every field of an added one; none of a removed one).
    pub fields: Vec<FieldChange>,
}

/// What applying a new policy over the current one changes.
///
/// `changes` are in the order to apply them, chosen so that every state in
/// between is consistent (no user ever holds a role that does not exist):
/// roles added or changed, then users added or changed, then users removed,
/// then roles removed; by name within each group. `details[i]` describes
/// `changes[i]`.
///
/// `Display` is the human diff `roles apply` prints; `Serialize` gives
/// `{"changes":[{"action","kind","name","fields","change"}]}` for `--json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyDiff {
    /// The changes, in the order to apply them.
    pub changes: Vec<Change>,
    /// One description per change, in the same order.
    pub details: Vec<ChangeDetail>,
}

impl PolicyDiff {
    /// Whether the two policies are the same.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn push(&mut self, change: Change, action: Action, fields: Vec<FieldChange>) {
        self.details.push(ChangeDetail {
            action,
            kind: change.kind(),
            name: change.name().to_owned(),
            fields,
        });
        self.changes.push(change);
    }
}

pub(crate) fn diff(old: &Policy, new: &Policy) -> PolicyDiff {
    let mut out = PolicyDiff::default();
    for (name, role) in &new.roles {
        match old.roles.get(name) {
            None => out.push(
                Change::PutRole(role.clone()),
                Action::Added,
                role_fields(None, role),
            ),
            Some(before) if before != role => out.push(
                Change::PutRole(role.clone()),
                Action::Changed,
                role_fields(Some(before), role),
            ),
            Some(_) => {}
        }
    }
    for (name, user) in &new.users {
        match old.users.get(name) {
            None => out.push(
                Change::PutUser(user.clone()),
                Action::Added,
                user_fields(None, user),
            ),
            Some(before) if before != user => out.push(
                Change::PutUser(user.clone()),
                Action::Changed,
                user_fields(Some(before), user),
            ),
            Some(_) => {}
        }
    }
    for name in old.users.keys().filter(|n| !new.users.contains_key(*n)) {
        out.push(
            Change::RemoveUser(name.clone()),
            Action::Removed,
            Vec::new(),
        );
    }
    for name in old.roles.keys().filter(|n| !new.roles.contains_key(*n)) {
        out.push(
            Change::RemoveRole(name.clone()),
            Action::Removed,
            Vec::new(),
        );
    }
    out
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn field(out: &mut Vec<FieldChange>, name: &str, old: Option<String>, new: Option<String>) {
    if old != new {
        out.push(FieldChange {
            field: name.to_owned(),
            old,
            new,
        });
    }
}

fn role_fields(old: Option<&Role>, new: &Role) -> Vec<FieldChange> {
    let mut out = Vec::new();
    field(
        &mut out,
        "allow.logins",
        old.map(|r| list(&r.allow.logins)),
        Some(list(&new.allow.logins)),
    );
    let empty = BTreeMap::new();
    let old_labels = old.map_or(&empty, |r| &r.allow.node_labels);
    let keys: BTreeSet<&String> = old_labels
        .keys()
        .chain(new.allow.node_labels.keys())
        .collect();
    for key in keys {
        field(
            &mut out,
            &format!("allow.node_labels.{key}"),
            old_labels.get(key).map(|v| list(v)),
            new.allow.node_labels.get(key).map(|v| list(v)),
        );
    }
    let o = old.map(|r| &r.options);
    let n = &new.options;
    field(
        &mut out,
        "options.max_session_ttl",
        o.map(|o| humantime::format_duration(o.max_session_ttl).to_string()),
        Some(humantime::format_duration(n.max_session_ttl).to_string()),
    );
    field(
        &mut out,
        "options.hardware_key",
        o.map(|o| o.hardware_key.to_string()),
        Some(n.hardware_key.to_string()),
    );
    field(
        &mut out,
        "options.session_mfa",
        o.map(|o| o.session_mfa.to_string()),
        Some(n.session_mfa.to_string()),
    );
    out
}

fn user_fields(old: Option<&User>, new: &User) -> Vec<FieldChange> {
    let mut out = Vec::new();
    field(
        &mut out,
        "roles",
        old.map(|u| list(&u.roles)),
        Some(list(&new.roles)),
    );
    out
}

impl fmt::Display for PolicyDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no changes");
        }
        for d in &self.details {
            writeln!(f, "{} {} {}", d.action.mark(), d.kind, d.name)?;
            for c in &d.fields {
                match (d.action, &c.old, &c.new) {
                    (Action::Added, _, Some(new)) => writeln!(f, "    {}: {new}", c.field)?,
                    (_, old, new) => writeln!(
                        f,
                        "    {}: {} -> {}",
                        c.field,
                        old.as_deref().unwrap_or("(none)"),
                        new.as_deref().unwrap_or("(none)")
                    )?,
                }
            }
        }
        Ok(())
    }
}

impl Serialize for PolicyDiff {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            #[serde(flatten)]
            detail: &'a ChangeDetail,
            change: &'a Change,
        }
        #[derive(Serialize)]
        struct Out<'a> {
            changes: Vec<Entry<'a>>,
        }
        Out {
            changes: self
                .details
                .iter()
                .zip(&self.changes)
                .map(|(detail, change)| Entry { detail, change })
                .collect(),
        }
        .serialize(s)
    }
}
