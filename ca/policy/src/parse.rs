//! The YAML tree to roles and users, every error with file, line, column and field.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Invalid, Location, PolicyError, Result};
use crate::model::{check_wildcard, Allow, HardwareKey, Role, RoleOptions, User};
use crate::policy::Policy;
use crate::rules;
use crate::yaml::{self, Mark, Node, Value};

/// Largest role file.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Collects documents from any number of files, then checks what needs
/// all of them (every user's roles exist).
#[derive(Default)]
pub(crate) struct Builder {
    roles: BTreeMap<String, (Role, Location)>,
    users: BTreeMap<String, (User, Location)>,
    /// Every role a user names, where it names it: checked in [`Builder::finish`].
    references: Vec<(String, String, Location)>,
}

/// One file being read: its name for errors.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a str,
}

impl Source<'_> {
    pub(crate) fn location(&self, mark: Mark) -> Location {
        Location {
            file: self.file.to_owned(),
            line: mark.line,
            column: mark.column,
        }
    }

    pub(crate) fn error(&self, mark: Mark, field: &str, message: impl Into<String>) -> PolicyError {
        PolicyError::Invalid(Box::new(Invalid {
            location: self.location(mark),
            field: field.to_owned(),
            message: message.into(),
        }))
    }

    /// A map's entries, any keys.
    pub(crate) fn entries<'n>(&self, node: &'n Node, field: &str) -> Result<&'n [(Node, Node)]> {
        match &node.value {
            Value::Map(entries) => Ok(entries),
            _ => Err(self.error(
                node.mark,
                field,
                format!("expected a map, found {}", describe(node)),
            )),
        }
    }

    /// A map's entries, refusing keys not in `allowed`.
    pub(crate) fn map<'n>(
        &self,
        node: &'n Node,
        field: &str,
        allowed: &[&str],
    ) -> Result<Fields<'n>> {
        let entries = self.entries(node, field)?;
        for (key, _) in entries {
            let name = key.key_text();
            if !allowed.contains(&name) {
                return Err(self.error(
                    key.mark,
                    &join(field, name),
                    format!(
                        "unknown field {}, expected one of {}",
                        rules::shown(name),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(Fields {
            mark: node.mark,
            entries,
        })
    }

    pub(crate) fn required<'n>(
        &self,
        fields: &Fields<'n>,
        parent: &str,
        name: &str,
    ) -> Result<&'n Node> {
        fields.get(name).ok_or_else(|| {
            self.error(
                fields.mark,
                &join(parent, name),
                format!("missing field {name:?}"),
            )
        })
    }

    /// A scalar meant as text: quoted, or plain and not a null, boolean or number.
    pub(crate) fn text<'n>(&self, node: &'n Node, field: &str) -> Result<&'n str> {
        match &node.value {
            Value::Scalar { text, plain } => {
                if *plain {
                    if let Some(kind) = yaml::non_string_type(text) {
                        return Err(self.error(
                            node.mark,
                            field,
                            format!(
                                "expected text, found {kind}; quote it if you mean the text {}",
                                rules::shown(text)
                            ),
                        ));
                    }
                }
                Ok(text)
            }
            _ => Err(self.error(
                node.mark,
                field,
                format!("expected text, found {}", describe(node)),
            )),
        }
    }

    pub(crate) fn list<'n>(&self, node: &'n Node, field: &str) -> Result<&'n [Node]> {
        match &node.value {
            Value::Seq(items) if items.len() > rules::MAX_LIST_LEN => Err(self.error(
                node.mark,
                field,
                format!("at most {} entries", rules::MAX_LIST_LEN),
            )),
            Value::Seq(items) => Ok(items),
            _ => Err(self.error(
                node.mark,
                field,
                format!(
                    "expected a list, found {} (write [] for none)",
                    describe(node)
                ),
            )),
        }
    }

    /// A list of unique texts, each passing `check`, sorted.
    pub(crate) fn texts(
        &self,
        node: &Node,
        field: &str,
        check: fn(&str) -> std::result::Result<(), String>,
    ) -> Result<(Vec<String>, Vec<Location>)> {
        let items = self.list(node, field)?;
        let mut out = Vec::with_capacity(items.len());
        let mut locations = Vec::with_capacity(items.len());
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{field}[{i}]");
            let value = self.text(item, &path)?;
            check(value).map_err(|m| self.error(item.mark, &path, m))?;
            if !seen.insert(value) {
                return Err(self.error(
                    item.mark,
                    &path,
                    format!("{} is listed twice", rules::shown(value)),
                ));
            }
            out.push(value.to_owned());
            locations.push(self.location(item.mark));
        }
        Ok((out, locations))
    }

    pub(crate) fn bool(&self, node: &Node, field: &str) -> Result<bool> {
        match &node.value {
            Value::Scalar { text, plain: true }
                if matches!(text.as_str(), "true" | "True" | "TRUE") =>
            {
                Ok(true)
            }
            Value::Scalar { text, plain: true }
                if matches!(text.as_str(), "false" | "False" | "FALSE") =>
            {
                Ok(false)
            }
            _ => Err(self.error(
                node.mark,
                field,
                format!("expected true or false, found {}", describe(node)),
            )),
        }
    }
}

/// A map's entries, after [`Source::map`] refused unknown keys.
pub(crate) struct Fields<'n> {
    mark: Mark,
    entries: &'n [(Node, Node)],
}

impl<'n> Fields<'n> {
    pub(crate) fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.key_text() == name)
            .map(|(_, v)| v)
    }
}

pub(crate) fn join(parent: &str, name: &str) -> String {
    let name = rules::key_segment(name);
    if parent.is_empty() {
        name
    } else {
        format!("{parent}.{name}")
    }
}

/// A node's kind and, for a scalar, its text, for "expected …, found …".
pub(crate) fn describe(node: &Node) -> String {
    match &node.value {
        Value::Scalar { text, plain: true } if yaml::is_null(text) => "nothing".into(),
        Value::Scalar { text, .. } => rules::shown(text),
        Value::Seq(_) => "a list".into(),
        Value::Map(_) => "a map".into(),
    }
}

const ROLE_FIELDS: &[&str] = &["kind", "name", "allow", "options"];
const ALLOW_FIELDS: &[&str] = &["logins", "node_labels"];
const OPTION_FIELDS: &[&str] = &["max_session_ttl", "hardware_key", "session_mfa"];
const USER_FIELDS: &[&str] = &["kind", "name", "roles"];

impl Builder {
    /// Reads every document of one file.
    pub(crate) fn add(&mut self, file: &str, text: &str) -> Result<()> {
        let src = Source { file };
        if text.len() > MAX_FILE_BYTES {
            return Err(src.error(
                Mark { line: 1, column: 1 },
                "",
                format!("larger than {} bytes", MAX_FILE_BYTES),
            ));
        }
        let docs = yaml::documents(text).map_err(|e| src.error(e.mark, &e.field, e.message))?;
        for doc in &docs {
            self.document(&src, doc)?;
        }
        Ok(())
    }

    fn document(&mut self, src: &Source<'_>, doc: &Node) -> Result<()> {
        let Value::Map(entries) = &doc.value else {
            return Err(src.error(
                doc.mark,
                "",
                format!(
                    "expected a document with kind: role or kind: user, found {}",
                    describe(doc)
                ),
            ));
        };
        // Find `kind` first: it decides which fields are known.
        let kind_node = entries
            .iter()
            .find(|(k, _)| k.key_text() == "kind")
            .map(|(_, v)| v);
        let Some(kind_node) = kind_node else {
            return Err(src.error(doc.mark, "kind", "missing field \"kind\" (role or user)"));
        };
        match src.text(kind_node, "kind")? {
            "role" => self.role(src, doc),
            "user" => self.user(src, doc),
            "node" => Err(src.error(
                kind_node.mark,
                "kind",
                "a node is applied with `signet-ca nodes apply`, not with the roles: keep nodes in their own files",
            )),
            other => Err(src.error(
                kind_node.mark,
                "kind",
                format!(
                    "unknown kind {}, expected one of role, user",
                    rules::shown(other)
                ),
            )),
        }
    }

    fn role(&mut self, src: &Source<'_>, doc: &Node) -> Result<()> {
        let fields = src.map(doc, "", ROLE_FIELDS)?;
        let name_node = src.required(&fields, "", "name")?;
        let name = src.text(name_node, "name")?;
        rules::check_name(name).map_err(|m| src.error(name_node.mark, "name", m))?;

        let allow_node = src.required(&fields, "", "allow")?;
        let allow = src.map(allow_node, "allow", ALLOW_FIELDS)?;
        let logins_node = src.required(&allow, "allow", "logins")?;
        let (logins, _) = src.texts(logins_node, "allow.logins", rules::check_login)?;
        let mut node_labels = BTreeMap::new();
        if let Some(labels_node) = allow.get("node_labels") {
            let labels = src.entries(labels_node, "allow.node_labels")?;
            if labels.len() > rules::MAX_LIST_LEN {
                return Err(src.error(
                    labels_node.mark,
                    "allow.node_labels",
                    format!("at most {} label keys", rules::MAX_LIST_LEN),
                ));
            }
            for (key_node, values_node) in labels {
                let key = key_node.key_text();
                let field = join("allow.node_labels", key);
                rules::check_label_key(key).map_err(|m| src.error(key_node.mark, &field, m))?;
                let (values, _) = src.texts(values_node, &field, rules::check_label_value)?;
                if values.is_empty() {
                    return Err(src.error(
                        values_node.mark,
                        &field,
                        "list at least one value (* for any)",
                    ));
                }
                node_labels.insert(key.to_owned(), values);
            }
            check_wildcard(&node_labels)
                .map_err(|m| src.error(labels_node.mark, "allow.node_labels", m))?;
        }

        let options_node = src.required(&fields, "", "options")?;
        let options = src.map(options_node, "options", OPTION_FIELDS)?;
        let ttl_node = src.required(&options, "options", "max_session_ttl")?;
        let ttl_field = "options.max_session_ttl";
        let max_session_ttl = match &ttl_node.value {
            Value::Scalar { text, .. } if !ttl_node.is_null() => {
                rules::parse_ttl(text).map_err(|m| src.error(ttl_node.mark, ttl_field, m))?
            }
            _ => {
                return Err(src.error(
                    ttl_node.mark,
                    ttl_field,
                    format!("expected a duration like 8h, found {}", describe(ttl_node)),
                ))
            }
        };
        let key_node = src.required(&options, "options", "hardware_key")?;
        let hardware_key: HardwareKey = src
            .text(key_node, "options.hardware_key")?
            .parse()
            .map_err(|m: String| src.error(key_node.mark, "options.hardware_key", m))?;
        let mfa_node = src.required(&options, "options", "session_mfa")?;
        let session_mfa = src.bool(mfa_node, "options.session_mfa")?;

        let role = Role {
            name: name.to_owned(),
            allow: Allow {
                logins,
                node_labels,
            },
            options: RoleOptions {
                max_session_ttl,
                hardware_key,
                session_mfa,
            },
        }
        .canonical()
        // Every rule was checked above with its own location; this is the backstop.
        .map_err(|e| src.error(doc.mark, &e.field, e.message))?;

        let here = src.location(name_node.mark);
        if let Some((_, first)) = self.roles.get(name) {
            return Err(src.error(
                name_node.mark,
                "name",
                format!("role {name:?} is already defined at {first}"),
            ));
        }
        self.roles.insert(name.to_owned(), (role, here));
        Ok(())
    }

    fn user(&mut self, src: &Source<'_>, doc: &Node) -> Result<()> {
        let fields = src.map(doc, "", USER_FIELDS)?;
        let name_node = src.required(&fields, "", "name")?;
        let name = src.text(name_node, "name")?;
        rules::check_name(name).map_err(|m| src.error(name_node.mark, "name", m))?;
        let roles_node = src.required(&fields, "", "roles")?;
        let (roles, locations) = src.texts(roles_node, "roles", rules::check_name)?;
        let here = src.location(name_node.mark);
        if let Some((_, first)) = self.users.get(name) {
            return Err(src.error(
                name_node.mark,
                "name",
                format!("user {name:?} is already defined at {first}"),
            ));
        }
        for (i, (role, location)) in roles.iter().zip(locations).enumerate() {
            self.references
                .push((format!("roles[{i}]"), role.clone(), location));
        }
        let user = User {
            name: name.to_owned(),
            roles,
        }
        .canonical()
        .map_err(|e| src.error(doc.mark, &e.field, e.message))?;
        self.users.insert(name.to_owned(), (user, here));
        Ok(())
    }

    /// Checks that every role a user names is defined, then hands over the policy.
    pub(crate) fn finish(self) -> Result<Policy> {
        for (field, role, location) in &self.references {
            if !self.roles.contains_key(role) {
                return Err(PolicyError::Invalid(Box::new(Invalid {
                    location: location.clone(),
                    field: field.clone(),
                    message: format!("no role {role:?} is defined"),
                })));
            }
        }
        Ok(Policy {
            roles: self.roles.into_iter().map(|(k, (r, _))| (k, r)).collect(),
            users: self.users.into_iter().map(|(k, (u, _))| (k, u)).collect(),
        })
    }
}
