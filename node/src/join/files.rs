//! Files written atomically: a new file beside the target, synced, renamed
//! over it, the directory synced; the old file stays if anything fails.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use super::{file_err, JoinError};

/// Replaces `path` with `bytes`, mode `mode`.
pub(super) fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), JoinError> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".signet-new-{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        // The mode asked for, whatever the umask.
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        file_err(path)(e)
    })
}
