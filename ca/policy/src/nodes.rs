//! Nodes: the SSH servers the access proxy reaches, with their address and
//! labels, as YAML kept in git next to the roles.
//!
//! ```yaml
//! kind: node
//! name: web-1
//! address: web-1.internal:22
//! labels: { env: prod, team: sre }
//! ```
//!
//! `signet-ca nodes apply` loads a directory of these with
//! [`Inventory::load`], shows [`Inventory::diff`] against the CA's current
//! inventory, and records each [`NodeChange`] in the log; the CA rebuilds
//! the inventory with [`Inventory::apply`]. A role reaches a node when its
//! `allow.node_labels` match the node's labels ([`crate::Role::allows_node`]).
//!
//! Parsed like roles, with the same guarantees: every error names the file,
//! line, column and field; unknown fields and kinds, names defined twice,
//! anchors, aliases, tags and merge keys are refused. `labels` may be left
//! out (then only a role allowing every node, `{"*": ["*"]}`, reaches it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::diff::{Action, FieldChange};
use crate::error::{Location, Result, RuleError};
use crate::parse::{describe, join, Source, MAX_FILE_BYTES};
use crate::rules;
use crate::yaml::{self, Mark, Node as YamlNode, Value};

/// A node the proxy may connect to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "NodeRecord")]
pub struct Node {
    /// Its name, unique among nodes: what users name as the target (`ssh web-1`).
    pub name: String,
    /// Where the proxy dials it: `host:port` (see [`rules::check_address`]).
    pub address: String,
    /// Its labels, matched against the roles' `allow.node_labels`.
    pub labels: BTreeMap<String, String>,
}

impl Node {
    /// Checks the node against [`crate::rules`].
    pub fn canonical(self) -> std::result::Result<Node, RuleError> {
        rules::check_name(&self.name).map_err(|m| RuleError::new("name", m))?;
        rules::check_address(&self.address).map_err(|m| RuleError::new("address", m))?;
        if self.labels.len() > rules::MAX_LIST_LEN {
            return Err(RuleError::new(
                "labels",
                format!("at most {} labels", rules::MAX_LIST_LEN),
            ));
        }
        for (key, value) in &self.labels {
            rules::check_node_label(key, value)
                .map_err(|m| RuleError::new(format!("labels.{}", rules::key_segment(key)), m))?;
        }
        Ok(self)
    }

    /// The host and port of [`Node::address`] (brackets of an IPv6 address removed).
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.address.rsplit_once(':')?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Some((host, port.parse().ok()?))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeRecord {
    name: String,
    address: String,
    labels: BTreeMap<String, String>,
}

impl TryFrom<NodeRecord> for Node {
    type Error = RuleError;

    fn try_from(r: NodeRecord) -> std::result::Result<Node, RuleError> {
        Node {
            name: r.name,
            address: r.address,
            labels: r.labels,
        }
        .canonical()
    }
}

/// One change to the inventory: what the CA records in one log entry and
/// replays with [`Inventory::apply`]. JSON: `{"put_node":{…}}` or
/// `{"remove_node":"web-1"}`; decoding checks what the YAML parser checks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "NodeChangeRecord")]
pub enum NodeChange {
    /// Adds a node or replaces the node of that name.
    PutNode(Node),
    /// Removes the node of that name.
    RemoveNode(String),
}

impl NodeChange {
    /// The name of the node changed.
    pub fn name(&self) -> &str {
        match self {
            Self::PutNode(n) => &n.name,
            Self::RemoveNode(n) => n,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum NodeChangeRecord {
    PutNode(Node),
    RemoveNode(String),
}

impl TryFrom<NodeChangeRecord> for NodeChange {
    type Error = RuleError;

    fn try_from(r: NodeChangeRecord) -> std::result::Result<NodeChange, RuleError> {
        Ok(match r {
            NodeChangeRecord::PutNode(node) => NodeChange::PutNode(node),
            NodeChangeRecord::RemoveNode(name) => {
                rules::check_name(&name).map_err(|m| RuleError::new("name", m))?;
                NodeChange::RemoveNode(name)
            }
        })
    }
}

/// Every node, by name. Built by [`Inventory::load`] or [`Inventory::parse`]
/// from YAML, or by replaying [`NodeChange`]s with [`Inventory::apply`].
/// Serializes as `{"nodes":{name:node}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    nodes: BTreeMap<String, Node>,
}

impl Inventory {
    /// An empty inventory: the CA's state before its first `nodes apply`.
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// Loads every file named and every `*.yaml` / `*.yml` file under every
    /// directory named (as [`crate::Policy::load`] does). Names must be
    /// unique across all of them. Refuses an empty list of paths and a
    /// directory without node files: applying nothing would remove every node.
    pub fn load(paths: &[PathBuf]) -> Result<Inventory> {
        let mut builder = InventoryBuilder::default();
        crate::load::each_file(paths, |file, text| builder.add(file, text))?;
        Ok(builder.finish())
    }

    /// Parses one YAML text (any number of `kind: node` documents). `source`
    /// names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Inventory> {
        let mut builder = InventoryBuilder::default();
        builder.add(source, text)?;
        Ok(builder.finish())
    }

    /// The nodes, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// The node of this name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Applies one recorded change. Infallible: a change in the log was
    /// checked when it was decoded.
    pub fn apply(&mut self, change: &NodeChange) {
        match change {
            NodeChange::PutNode(node) => {
                self.nodes.insert(node.name.clone(), node.clone());
            }
            NodeChange::RemoveNode(name) => {
                self.nodes.remove(name);
            }
        }
    }

    /// What applying `new` over this inventory changes: nodes added or
    /// changed, then nodes removed, by name within each group.
    pub fn diff(&self, new: &Inventory) -> InventoryDiff {
        let mut out = InventoryDiff::default();
        for (name, node) in &new.nodes {
            match self.nodes.get(name) {
                None => out.push(
                    NodeChange::PutNode(node.clone()),
                    Action::Added,
                    node_fields(None, node),
                ),
                Some(before) if before != node => out.push(
                    NodeChange::PutNode(node.clone()),
                    Action::Changed,
                    node_fields(Some(before), node),
                ),
                Some(_) => {}
            }
        }
        for name in self.nodes.keys().filter(|n| !new.nodes.contains_key(*n)) {
            out.push(
                NodeChange::RemoveNode(name.clone()),
                Action::Removed,
                Vec::new(),
            );
        }
        out
    }
}

/// What one [`NodeChange`] does, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeChangeDetail {
    /// Added, changed or removed.
    pub action: Action,
    /// The node's name.
    pub name: String,
    /// The fields that differ (`address`, `labels.env`); every field of an
    /// added node, none of a removed one.
    pub fields: Vec<FieldChange>,
}

/// What applying a new inventory over the current one changes.
/// `details[i]` describes `changes[i]`. `Display` is the human diff `nodes
/// apply` prints; `Serialize` gives
/// `{"changes":[{"action","kind":"node","name","fields","change"}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryDiff {
    /// The changes, in the order to apply them.
    pub changes: Vec<NodeChange>,
    /// One description per change, in the same order.
    pub details: Vec<NodeChangeDetail>,
}

impl InventoryDiff {
    /// Whether the two inventories are the same.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn push(&mut self, change: NodeChange, action: Action, fields: Vec<FieldChange>) {
        self.details.push(NodeChangeDetail {
            action,
            name: change.name().to_owned(),
            fields,
        });
        self.changes.push(change);
    }
}

fn node_fields(old: Option<&Node>, new: &Node) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut field = |name: String, old: Option<String>, new: Option<String>| {
        if old != new {
            out.push(FieldChange {
                field: name,
                old,
                new,
            });
        }
    };
    field(
        "address".into(),
        old.map(|n| n.address.clone()),
        Some(new.address.clone()),
    );
    let empty = BTreeMap::new();
    let old_labels = old.map_or(&empty, |n| &n.labels);
    let keys: BTreeSet<&String> = old_labels.keys().chain(new.labels.keys()).collect();
    for key in keys {
        field(
            format!("labels.{key}"),
            old_labels.get(key).cloned(),
            new.labels.get(key).cloned(),
        );
    }
    out
}

impl fmt::Display for InventoryDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no changes");
        }
        for d in &self.details {
            writeln!(f, "{} node {}", d.action.mark(), d.name)?;
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

impl Serialize for InventoryDiff {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            action: Action,
            kind: &'static str,
            name: &'a str,
            fields: &'a [FieldChange],
            change: &'a NodeChange,
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
                .map(|(d, change)| Entry {
                    action: d.action,
                    kind: "node",
                    name: &d.name,
                    fields: &d.fields,
                    change,
                })
                .collect(),
        }
        .serialize(s)
    }
}

const NODE_FIELDS: &[&str] = &["kind", "name", "address", "labels"];

/// Collects nodes from any number of files.
#[derive(Default)]
struct InventoryBuilder {
    nodes: BTreeMap<String, (Node, Location)>,
}

impl InventoryBuilder {
    fn add(&mut self, file: &str, text: &str) -> Result<()> {
        let src = Source { file };
        if text.len() > MAX_FILE_BYTES {
            return Err(src.error(
                Mark { line: 1, column: 1 },
                "",
                format!("larger than {MAX_FILE_BYTES} bytes"),
            ));
        }
        let docs = yaml::documents(text).map_err(|e| src.error(e.mark, &e.field, e.message))?;
        for doc in &docs {
            self.document(&src, doc)?;
        }
        Ok(())
    }

    fn document(&mut self, src: &Source<'_>, doc: &YamlNode) -> Result<()> {
        let Value::Map(entries) = &doc.value else {
            return Err(src.error(
                doc.mark,
                "",
                format!(
                    "expected a document with kind: node, found {}",
                    describe(doc)
                ),
            ));
        };
        let Some(kind_node) = entries
            .iter()
            .find(|(k, _)| k.key_text() == "kind")
            .map(|(_, v)| v)
        else {
            return Err(src.error(doc.mark, "kind", "missing field \"kind\" (node)"));
        };
        match src.text(kind_node, "kind")? {
            "node" => {}
            "role" | "user" => {
                return Err(src.error(
                    kind_node.mark,
                    "kind",
                    "roles and users are applied with `signet-ca roles apply`, not with the nodes: keep them in their own files",
                ))
            }
            other => {
                return Err(src.error(
                    kind_node.mark,
                    "kind",
                    format!("unknown kind {}, expected node", rules::shown(other)),
                ))
            }
        }
        let fields = src.map(doc, "", NODE_FIELDS)?;
        let name_node = src.required(&fields, "", "name")?;
        let name = src.text(name_node, "name")?;
        rules::check_name(name).map_err(|m| src.error(name_node.mark, "name", m))?;
        let address_node = src.required(&fields, "", "address")?;
        let address = src.text(address_node, "address")?;
        rules::check_address(address).map_err(|m| src.error(address_node.mark, "address", m))?;
        let mut labels = BTreeMap::new();
        if let Some(labels_node) = fields.get("labels") {
            let entries = src.entries(labels_node, "labels")?;
            if entries.len() > rules::MAX_LIST_LEN {
                return Err(src.error(
                    labels_node.mark,
                    "labels",
                    format!("at most {} labels", rules::MAX_LIST_LEN),
                ));
            }
            for (key_node, value_node) in entries {
                let key = key_node.key_text();
                let field = join("labels", key);
                let value = src.text(value_node, &field)?;
                rules::check_node_label(key, value).map_err(|m| {
                    // A bad key is reported at the key, a bad value at the value.
                    let at = if rules::check_label_key(key).is_err() || key == rules::WILDCARD {
                        key_node.mark
                    } else {
                        value_node.mark
                    };
                    src.error(at, &field, m)
                })?;
                labels.insert(key.to_owned(), value.to_owned());
            }
        }
        let node = Node {
            name: name.to_owned(),
            address: address.to_owned(),
            labels,
        }
        .canonical()
        // Every rule was checked above with its own location; this is the backstop.
        .map_err(|e| src.error(doc.mark, &e.field, e.message))?;
        if let Some((_, first)) = self.nodes.get(name) {
            return Err(src.error(
                name_node.mark,
                "name",
                format!("node {name:?} is already defined at {first}"),
            ));
        }
        self.nodes
            .insert(name.to_owned(), (node, src.location(name_node.mark)));
        Ok(())
    }

    fn finish(self) -> Inventory {
        Inventory {
            nodes: self.nodes.into_iter().map(|(k, (n, _))| (k, n)).collect(),
        }
    }
}
