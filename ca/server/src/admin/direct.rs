//! Running an admin command: through the daemon when one answers on the
//! socket, else on the store directly (this process then holds it, and a
//! daemon started meanwhile waits for the lock).

use super::{handle, send, AdminRequest, AdminResponse, Reached};
use crate::ca_keys::CaKeys;
use crate::config::Config;
use crate::touch::Service;
use crate::Result;

/// Where the admin socket is.
pub fn socket_path(config: &Config) -> std::path::PathBuf {
    config
        .serve
        .admin_socket
        .clone()
        .unwrap_or_else(|| config.data_dir.join("admin.sock"))
}

/// Performs `request`: by the running daemon, or here when none runs.
/// `via_daemon` tells which.
pub fn run(config: &Config, request: AdminRequest) -> Result<(AdminResponse, bool)> {
    if let Reached::Answered(response) = send(&socket_path(config), &request)? {
        return Ok((response, true));
    }
    let keys = CaKeys::open(config)?;
    let (signer, mark) = keys.log_signer(config)?;
    let store = crate::store::configured::open(
        config,
        signer.clone(),
        signer.verifier().clone(),
        mark,
        crate::store::witnessing::from_config(config, signer.verifier())?,
        crate::store::configured::OpenKind::Existing,
    )?;
    let authority = keys.authority(config.clone(), store.clone())?;
    let service = Service::new(config.clone(), authority, store)?;
    Ok((
        handle(&service, request, crate::authority::local_admin()),
        false,
    ))
}
