//! Roles and users as YAML kept in git: parsing with file and line,
//! evaluation, diffs.
//!
//! An administrator keeps a directory of YAML files (`kind: role` and
//! `kind: user` documents) in git; `signet-ca roles apply` loads it with
//! [`Policy::load`], shows [`Policy::diff`] against the CA's current state,
//! and records each [`Change`] in the log before it takes effect. The CA
//! rebuilds its state by replaying those changes with [`Policy::apply`], and
//! decides every certificate request with [`Policy::authorize`] (rules in
//! [`authorize`]); the access proxy asks [`Role::allows_node`] and
//! [`Role::allows_login`] per connection.
//!
//! ```yaml
//! kind: role
//! name: prod-sre
//! allow:
//!   logins: [root, ubuntu]
//!   node_labels: { env: [prod], team: [sre] }
//! options:
//!   max_session_ttl: 8h
//!   hardware_key: touch        # none | attested | touch | touch_and_pin
//!   session_mfa: true
//! ---
//! kind: user
//! name: alice
//! roles: [prod-sre]
//! ```
//!
//! Parsing fails closed: unknown fields and kinds, bad values, names defined
//! twice, users naming missing roles, anchors, aliases, tags and merge keys
//! are all errors, each naming the file, line, column and field
//! (`roles/prod.yaml:8:17: options.hardware_key: unknown value "toch", …`).
//! `allow.logins` and the three options are required; `allow.node_labels` may
//! be left out (then the role allows no node through the proxy). The
//! exact rules for names, logins, labels and durations are in [`rules`].
//!
//! Nodes (`kind: node`: name, `host:port` address, labels) live in their own
//! files and are applied with `signet-ca nodes apply`; see [`nodes`].
//!
//! A pure library: no network, no async; the only I/O is reading the files
//! [`Policy::load`] is given.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authorize;
mod diff;
mod error;
mod load;
mod model;
pub mod nodes;
mod parse;
mod policy;
pub mod rules;
mod yaml;

pub use authorize::{AccessRequest, Grant, Refusal};
pub use diff::{Action, Change, ChangeDetail, FieldChange, Kind, PolicyDiff};
pub use error::{Invalid, Location, PolicyError, Result, RuleError};
pub use load::{MAX_DIR_DEPTH, MAX_FILES};
pub use model::{Allow, HardwareKey, Role, RoleOptions, User};
pub use nodes::{Inventory, InventoryDiff, Node, NodeChange, NodeChangeDetail};
pub use parse::MAX_FILE_BYTES;
pub use policy::Policy;
pub use yaml::{MAX_DEPTH, MAX_NODES};
