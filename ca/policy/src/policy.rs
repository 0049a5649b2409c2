//! The policy: every role and user, by name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::authorize::{AccessRequest, Grant, Refusal};
use crate::diff::{Change, PolicyDiff};
use crate::error::Result;
use crate::model::{HardwareKey, Role, User};

/// Every role and user, by name. Built by [`Policy::load`] or
/// [`Policy::parse`] from YAML (checked throughout: every user's roles
/// exist), or by replaying [`Change`]s with [`Policy::apply`].
///
/// Serializes (for `--json` listings) as `{"roles":{name:role},"users":{name:user}}`,
/// each role and user in the form of its [`Change`] record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub(crate) roles: BTreeMap<String, Role>,
    pub(crate) users: BTreeMap<String, User>,
}

impl Policy {
    /// An empty policy: the CA's state before its first `roles apply`.
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Loads every file named and every `*.yaml` / `*.yml` file under every
    /// directory named (sorted by path; subdirectories too, except hidden
    /// ones such as `.git`). Names must be unique across all of them, and
    /// every user's roles must be defined in one of them.
    ///
    /// Refuses an empty list of paths and a directory holding no role file:
    /// applying an empty policy would remove every role and user.
    pub fn load(paths: &[PathBuf]) -> Result<Policy> {
        crate::load::load(paths)
    }

    /// Parses one YAML text (any number of documents). `source` names it
    /// in errors, usually the file name.
    pub fn parse(source: &str, text: &str) -> Result<Policy> {
        let mut builder = crate::parse::Builder::default();
        builder.add(source, text)?;
        builder.finish()
    }

    /// The roles, by name.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    /// The users, by name.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// The role of this name.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// The user of this name.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// The roles a user holds that exist (none for an unknown user).
    pub fn roles_of<'a>(&'a self, user: &str) -> impl Iterator<Item = &'a Role> + 'a {
        self.users
            .get(user)
            .into_iter()
            .flat_map(|u| u.roles.iter())
            .filter_map(|name| self.roles.get(name))
    }

    /// What applying `new` over this policy changes: one [`Change`] per
    /// role or user added, changed or removed. See [`PolicyDiff`] for the
    /// order, which keeps every intermediate state consistent.
    pub fn diff(&self, new: &Policy) -> PolicyDiff {
        crate::diff::diff(self, new)
    }

    /// Applies one recorded change. Infallible on purpose: the CA replays
    /// its log with this, and a change in the log has been checked when it
    /// was decoded (see [`Change`]'s JSON form).
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::PutRole(role) => {
                self.roles.insert(role.name.clone(), role.clone());
            }
            Change::RemoveRole(name) => {
                self.roles.remove(name);
            }
            Change::PutUser(user) => {
                self.users.insert(user.name.clone(), user.clone());
            }
            Change::RemoveUser(name) => {
                self.users.remove(name);
            }
        }
    }

    /// Decides a certificate request by `user`; the rules are in
    /// [`crate::authorize`].
    pub fn authorize(
        &self,
        user: &str,
        request: &AccessRequest,
    ) -> std::result::Result<Grant, Refusal> {
        if !self.users.contains_key(user) {
            return Err(Refusal::NoSuchUser);
        }
        let roles: Vec<&Role> = self.roles_of(user).collect();
        if roles.is_empty() {
            return Err(Refusal::NoRoles);
        }
        if request.principals.is_empty() {
            return Err(Refusal::NoPrincipals);
        }
        for principal in &request.principals {
            if !roles.iter().any(|r| r.allows_login(principal)) {
                return Err(Refusal::PrincipalNotAllowed(principal.clone()));
            }
        }
        let contributing: Vec<&Role> = roles
            .into_iter()
            .filter(|r| request.principals.iter().any(|p| r.allows_login(p)))
            .collect();
        let mut max_ttl = Duration::MAX;
        let mut required = HardwareKey::None;
        let mut session_mfa = false;
        for role in &contributing {
            max_ttl = max_ttl.min(role.options.max_session_ttl);
            required = required.max(role.options.hardware_key);
            session_mfa |= role.options.session_mfa;
        }
        if request.ttl > max_ttl {
            return Err(Refusal::TtlTooLong { max: max_ttl });
        }
        if !required.satisfied_by(request.key) {
            return Err(Refusal::HardwareKeyTooWeak { required });
        }
        let mut names: Vec<String> = contributing.iter().map(|r| r.name.clone()).collect();
        names.sort();
        Ok(Grant {
            roles: names,
            max_ttl,
            required,
            session_mfa,
        })
    }
}
