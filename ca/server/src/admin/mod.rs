//! Local administration: the admin commands (`users …`, `roles apply`) and
//! the unix socket they reach the running daemon on.
//!
//! The store has one writer, so while the daemon runs an admin command
//! sends its request over the socket (peer credentials checked: root, the
//! daemon's own user, or a member of `serve.admin_group`) and the daemon
//! performs it; when no daemon runs the command opens the store itself.
//! Either way the same [`handle`] performs it, as the same log entries.

mod client;
mod direct;
mod nodes;
mod protocol;
mod render;
mod server;

pub use client::{send, Reached};
pub use direct::{run, socket_path};
pub use protocol::{AdminRequest, AdminResponse, MAX_REQUEST};
pub use server::{bind, serve, SocketFile};

use std::time::Duration;

use signet_log::entry::Actor;
use signet_policy::Policy;

use crate::touch::Service;

/// Performs one admin request as `actor`.
pub fn handle(service: &Service, request: AdminRequest, actor: Actor) -> AdminResponse {
    let result = match request {
        AdminRequest::Invite { user, ttl_seconds } => service
            .invite(&user, Duration::from_secs(ttl_seconds), actor)
            .map(|invite| render::invite(&invite)),
        AdminRequest::ListUsers => Ok(render::users(&service.list_users())),
        AdminRequest::ShowUser { user } => match service.show_user(&user) {
            Some(view) => Ok(render::user(&view)),
            None => Err(crate::Error::bad(
                "NAME",
                format!("no user {user:?}: not in the applied roles and never enrolled"),
            )),
        },
        AdminRequest::RemoveKey {
            user,
            credential_id,
        } => service
            .remove_key(&user, &credential_id, actor)
            .map(|index| render::done(&format!("Removed the key from {user}"), index)),
        AdminRequest::Lock {
            user,
            reason,
            ttl_seconds,
        } => service
            .lock_user(&user, &reason, ttl_seconds.map(Duration::from_secs), actor)
            .map(|index| render::done(&format!("Locked {user}"), index)),
        AdminRequest::Unlock { user, reason } => service
            .unlock_user(&user, &reason, actor)
            .map(|index| render::done(&format!("Unlocked {user}"), index)),
        request @ (AdminRequest::ApplyNodes { .. }
        | AdminRequest::ListNodes
        | AdminRequest::ProxyView
        | AdminRequest::InviteProxy { .. }
        | AdminRequest::InviteNode { .. }
        | AdminRequest::LockDevice { .. }
        | AdminRequest::UnlockDevice { .. }) => nodes::handle(service, request, actor),
        AdminRequest::ApplyPolicy { changes, dry_run } => {
            let mut desired = Policy::new();
            for change in &changes {
                desired.apply(change);
            }
            if dry_run {
                Ok(render::policy(&service.policy_diff(&desired), &[], true))
            } else {
                service
                    .apply_policy(&desired, actor)
                    .map(|(diff, indices)| render::policy(&diff, &indices, false))
            }
        }
    };
    result.unwrap_or_else(|e| AdminResponse::error(e.exit_class() as u8, e.to_string()))
}
