//! Admin results, rendered once for people and once for scripts.

use std::fmt::Write as _;

use signet_policy::PolicyDiff;

use super::AdminResponse;
use crate::touch::{InviteLink, UserView};

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn time(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
        .to_string()
}

pub(super) fn invite(invite: &InviteLink) -> AdminResponse {
    AdminResponse::ok(
        format!("{}\n", invite.link),
        format!(
            "Invite for {} until {} (log entry {}). The link enrolls a security key for {}: hand it to them only.",
            invite.user,
            time(invite.expires_at),
            invite.log_index,
            invite.user
        ),
        json(invite),
    )
}

pub(super) fn users(users: &[UserView]) -> AdminResponse {
    let mut text = String::new();
    let _ = writeln!(text, "{:<24} {:<30} {:>4}  STATUS", "USER", "ROLES", "KEYS");
    for user in users {
        let status = match (&user.locked, user.in_policy) {
            (Some(lock), _) => format!("locked: {}", lock.reason),
            (None, false) => "not in the roles".to_owned(),
            (None, true) => "active".to_owned(),
        };
        let _ = writeln!(
            text,
            "{:<24} {:<30} {:>4}  {status}",
            user.name,
            user.roles.join(","),
            user.credentials.len()
        );
    }
    AdminResponse::ok(text, String::new(), json(&users))
}

pub(super) fn user(user: &UserView) -> AdminResponse {
    let mut text = String::new();
    let _ = writeln!(text, "user:   {}", user.name);
    let _ = writeln!(
        text,
        "roles:  {}",
        if user.in_policy {
            user.roles.join(", ")
        } else {
            "(not in the applied roles)".into()
        }
    );
    match &user.locked {
        Some(lock) => {
            let until = lock.until.map(time).unwrap_or_else(|| "unlocked".into());
            let _ = writeln!(
                text,
                "locked: {} (since {}, until {until})",
                lock.reason,
                time(lock.since)
            );
        }
        None => {
            let _ = writeln!(text, "locked: no");
        }
    }
    let _ = writeln!(text, "security keys: {}", user.credentials.len());
    for key in &user.credentials {
        let _ = writeln!(text, "  - id:          {}", key.id);
        let _ = writeln!(text, "    aaguid:      {}", key.aaguid);
        let _ = writeln!(text, "    attestation: {}", key.attestation_format);
        let _ = writeln!(
            text,
            "    enrolled:    {} (log entry {})",
            time(key.enrolled_at),
            key.enrolled_log_index
        );
        let _ = writeln!(text, "    counter:     {}", key.sign_count);
        if let Some(used) = key.last_used {
            let _ = writeln!(text, "    last used:   {}", time(used));
        }
    }
    AdminResponse::ok(text, String::new(), json(user))
}

pub(super) fn done(what: &str, index: u64) -> AdminResponse {
    AdminResponse::ok(
        format!("{what} (log entry {index}).\n"),
        String::new(),
        serde_json::json!({ "log_index": index }),
    )
}

pub(super) fn policy(diff: &PolicyDiff, indices: &[u64], dry_run: bool) -> AdminResponse {
    let mut text = diff.to_string();
    let note = if diff.is_empty() {
        "The roles in force already match these files.".to_owned()
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
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut value = json(diff);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("applied".into(), (!dry_run).into());
        map.insert("log_index".into(), json(&indices));
    }
    AdminResponse::ok(text, note, value)
}
