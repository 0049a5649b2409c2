//! Directories sshd accepts commands and files from.

/// A temporary directory for files sshd runs or reads with its "safe path"
/// rule (an `AuthorizedPrincipalsCommand` and what it reads): every
/// directory above it must be owned by root and writable by nobody else,
/// which rules out anything below `/tmp` — where a clone of the repository
/// (and so the target directory) may well live. Tries the target
/// directory's tmp first, then `/run` and `/var/lib`; the directory itself
/// is made 0755 so the unprivileged user sshd runs the command as can read it.
pub fn root_only_tempdir(prefix: &str, target_tmp: &std::path::Path) -> tempfile::TempDir {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let safe = |base: &std::path::Path| {
        base.ancestors().all(|dir| {
            std::fs::metadata(dir)
                .map(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0)
                .unwrap_or(false)
        })
    };
    let candidates = [
        target_tmp,
        std::path::Path::new("/run"),
        std::path::Path::new("/var/lib"),
    ];
    let base = candidates.into_iter().find(|b| safe(b)).unwrap_or_else(|| {
        panic!(
            "no directory whose parents are all root-owned and not group- or world-writable \
             among {candidates:?}: sshd would refuse the command (run the tests as root)"
        )
    });
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .unwrap_or_else(|e| panic!("cannot make a directory in {}: {e}", base.display()));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.path().display()));
    dir
}
