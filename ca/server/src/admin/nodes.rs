//! The admin requests about the proxy's world: nodes applied from git and
//! listed, PIV devices locked and unlocked.

use std::fmt::Write as _;
use std::time::Duration;

use signet_log::entry::Actor;
use signet_policy::{Inventory, InventoryDiff, Node};

use super::{AdminRequest, AdminResponse};
use crate::touch::Service;
use crate::Result;

/// Performs a node or device request (the other requests are not sent here).
pub(super) fn handle(
    service: &Service,
    request: AdminRequest,
    actor: Actor,
) -> Result<AdminResponse> {
    match request {
        AdminRequest::ApplyNodes { changes, dry_run } => {
            let mut desired = Inventory::new();
            for change in &changes {
                desired.apply(change);
            }
            if dry_run {
                Ok(diff(&service.nodes_diff(&desired), &[], true))
            } else {
                service
                    .apply_nodes(&desired, actor)
                    .map(|(d, indices)| diff(&d, &indices, false))
            }
        }
        AdminRequest::ListNodes => Ok(list(&service.list_nodes())),
        AdminRequest::InviteProxy { name, ttl_seconds } => service
            .invite_proxy(&name, Duration::from_secs(ttl_seconds), actor)
            .map(|t| {
                let until = humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_secs(t.expires_at),
                );
                AdminResponse::ok(
                    format!("{}\n", t.token),
                    format!(
                        "Join token for proxy {} until {until} (log entry {}); only its hash is logged. \
                         Hand it to `signet-proxy join` in a file or the environment, never on a command line.",
                        t.name, t.log_index
                    ),
                    serde_json::to_value(&t).unwrap_or(serde_json::Value::Null),
                )
            }),
        AdminRequest::InviteNode { name, ttl_seconds } => service
            .invite_node(&name, Duration::from_secs(ttl_seconds), actor)
            .map(|t| {
                let until = humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_secs(t.expires_at),
                );
                AdminResponse::ok(
                    format!("{}\n", t.token),
                    format!(
                        "Join token for node {} until {until} (log entry {}); only its hash is logged and stored. \
                         On the node, hand it to `signet-node join` in a file (--token-file) or the \
                         environment (SIGNET_NODE_JOIN_TOKEN), never on a command line.",
                        t.node, t.log_index
                    ),
                    serde_json::to_value(&t).unwrap_or(serde_json::Value::Null),
                )
            }),
        AdminRequest::ProxyView => {
            let view = service.proxy_view();
            let json = serde_json::to_value(&view).unwrap_or(serde_json::Value::Null);
            let text = serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
            Ok(AdminResponse::ok(text, String::new(), json))
        }
        AdminRequest::LockDevice {
            serial,
            reason,
            ttl_seconds,
        } => service
            .lock_device(serial, &reason, ttl_seconds.map(Duration::from_secs), actor)
            .map(|index| {
                super::render::done(&format!("Locked the device with serial {serial}"), index)
            }),
        AdminRequest::UnlockDevice { serial, reason } => {
            service.unlock_device(serial, &reason, actor).map(|index| {
                super::render::done(&format!("Unlocked the device with serial {serial}"), index)
            })
        }
        _ => Err(crate::Error::Store("not a node or device request".into())),
    }
}

fn diff(diff: &InventoryDiff, indices: &[u64], dry_run: bool) -> AdminResponse {
    let text = diff.to_string();
    let note = if diff.is_empty() {
        "The nodes in force already match these files.".to_owned()
    } else if dry_run {
        format!("Dry run: {} change(s) not applied.", diff.changes.len())
    } else {
        format!(
            "Applied {} change(s), each a log entry ({}).",
            indices.len(),
            indices
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut value = serde_json::to_value(diff).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("applied".into(), (!dry_run).into());
        map.insert("log_index".into(), indices.into());
    }
    AdminResponse::ok(text, note, value)
}

fn list(nodes: &[Node]) -> AdminResponse {
    let mut text = String::new();
    let _ = writeln!(text, "{:<24} {:<32} LABELS", "NODE", "ADDRESS");
    for node in nodes {
        let labels: Vec<String> = node
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            text,
            "{:<24} {:<32} {}",
            node.name,
            node.address,
            labels.join(",")
        );
    }
    AdminResponse::ok(
        text,
        String::new(),
        serde_json::to_value(nodes).unwrap_or(serde_json::Value::Null),
    )
}
