//! The daemon's side of the admin socket.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use signet_log::entry::Actor;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{handle, AdminRequest, AdminResponse, MAX_REQUEST};
use crate::touch::Service;
use crate::{Error, Result};

/// Who may use the socket besides root and the daemon's own user.
#[derive(Debug, Clone)]
struct Allowed {
    own_uid: u32,
    group: Option<String>,
}

/// The gid of a group and its listed members, from /etc/group.
fn group_entry(name: &str) -> Result<(u32, Vec<String>)> {
    let groups = std::fs::read_to_string("/etc/group")
        .map_err(|e| Error::bad("serve.admin_group", format!("cannot read /etc/group: {e}")))?;
    groups
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != name {
                return None;
            }
            let gid = fields.nth(1)?.parse().ok()?;
            let members = fields
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
            Some((gid, members))
        })
        .ok_or_else(|| Error::bad("serve.admin_group", format!("no group {name:?}")))
}

fn group_id(name: &str) -> Result<u32> {
    group_entry(name).map(|(gid, _)| gid)
}

/// The primary gid of a uid, from /etc/passwd.
fn primary_gid(uid: u32) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2)? == &uid.to_string().as_str())
            .then(|| fields.get(3)?.parse().ok())
            .flatten()
    })
}

/// Whether the peer belongs to the admin group: by its credentials' gid,
/// by the group database (primary group or listed member; read at each
/// connection, so a removal takes effect at once), or by its process's
/// supplementary groups where /proc shows them.
fn in_admin_group(group: &str, uid: u32, gid: u32, pid: Option<i32>, name: Option<&str>) -> bool {
    let Ok((admin_gid, members)) = group_entry(group) else {
        return false;
    };
    gid == admin_gid
        || primary_gid(uid) == Some(admin_gid)
        || name.is_some_and(|n| members.iter().any(|m| m == n))
        || pid.is_some_and(|pid| groups_of(pid).contains(&admin_gid))
}

/// The user name of a uid, from /etc/passwd (for the log entry's actor).
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid.to_string()).then(|| name.to_owned())
    })
}

/// The supplementary groups of a process, from /proc.
fn groups_of(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("Groups:").map(|rest| {
                    rest.split_whitespace()
                        .filter_map(|g| g.parse().ok())
                        .collect()
                })
            })
        })
        .unwrap_or_default()
}

/// Binds the socket: refuses if a daemon already answers on it, replaces
/// a stale socket file, never anything else; mode 0660, group
/// `serve.admin_group` when set.
pub fn bind(path: &Path, group: Option<&str>) -> Result<(UnixListener, SocketFile)> {
    let bad = |reason: String| Error::bad("serve.admin_socket", reason);
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(bad(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(bad(format!(
                "another signet-ca daemon answers on {}",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    if let Some(group) = group {
        std::os::unix::fs::chown(path, None, Some(group_id(group)?))
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    }
    Ok((listener, SocketFile(path.to_path_buf())))
}

/// Removes the socket file when the daemon stops.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Answers admin requests until the listener closes.
pub async fn serve(
    listener: UnixListener,
    service: Arc<Service>,
    group: Option<String>,
) -> Result<()> {
    let own_uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| Error::Store(format!("cannot read /proc/self: {e}")))?;
    if let Some(name) = &group {
        group_id(name)?;
    }
    let allowed = Allowed { own_uid, group };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let service = service.clone();
        let allowed = allowed.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, service, allowed).await {
                tracing::warn!(event = "admin_socket_error", error = %e, "admin connection failed");
            }
        });
    }
}

async fn connection(
    mut stream: UnixStream,
    service: Arc<Service>,
    allowed: Allowed,
) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    let uid = cred.uid();
    let name = user_name(uid);
    let permitted = uid == 0
        || uid == allowed.own_uid
        || allowed.group.as_deref().is_some_and(|group| {
            in_admin_group(group, uid, cred.gid(), cred.pid(), name.as_deref())
        });
    if !permitted {
        tracing::warn!(event = "admin_refused", uid, user = ?name, "admin socket: peer not allowed");
        let response = AdminResponse::error(
            2,
            "not allowed: admin commands need root, the CA's user, or serve.admin_group".into(),
        );
        return reply(&mut stream, &response).await;
    }
    let mut line = Vec::new();
    let (read, mut write) = stream.split();
    BufReader::new(read.take(MAX_REQUEST as u64 + 1))
        .read_until(b'\n', &mut line)
        .await?;
    let response = match serde_json::from_slice::<AdminRequest>(&line) {
        Err(e) => AdminResponse::error(2, format!("the admin request does not parse: {e}")),
        Ok(request) => {
            let actor = Actor::LocalAdmin {
                unix_user: match &name {
                    Some(name) => format!("{name} (uid {uid})"),
                    None => format!("uid {uid}"),
                },
            };
            tracing::info!(event = "admin_request", uid, user = ?name, op = request.op(), "admin request");
            match tokio::task::spawn_blocking(move || handle(&service, request, actor)).await {
                Ok(response) => response,
                Err(_) => {
                    AdminResponse::error(1, "the admin request failed inside the daemon".into())
                }
            }
        }
    };
    let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

async fn reply(stream: &mut UnixStream, response: &AdminResponse) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(response).unwrap_or_default();
    bytes.push(b'\n');
    stream.write_all(&bytes).await?;
    stream.shutdown().await
}
