//! The node's configuration: the log's key and the witness policy.
//!
//! ```toml
//! log_key = "ca.example.com/signet-log+1a2b3c4d+AQ…"
//!
//! [witnesses]
//! threshold = 1
//! [[witnesses.witness]]
//! name = "witness-a"
//! vkey = "witness-a+5e6f7a8b+BA…"
//! ```
//!
//! The file decides which certificates log in, so it is refused unless
//! only its owner (root, or the user the command runs as) can change it,
//! and the same for every directory above it — the rule sshd applies to
//! the command itself.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use signet_log::certificate::LogTrust;
use signet_log::note::{SignatureType, VerifierKey};
use signet_log::witness::WitnessPolicy;

use crate::error::{NodeError, Result};

/// Largest configuration file read (a policy of 32 witnesses is ~5 KiB).
const MAX_CONFIG_LEN: u64 = 64 * 1024;

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    log_key: String,
    witnesses: WitnessPolicy,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// What certificates' proofs are checked against.
    pub trust: LogTrust,
}

fn config_error(path: &Path, reason: impl Into<String>) -> NodeError {
    NodeError::Config {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl NodeConfig {
    /// Reads and checks the file at `path`: its permissions first, then
    /// its contents.
    pub fn load(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| config_error(path, format!("cannot open: {e}")))?;
        // The checks are on the file that was opened, not on a name that
        // might be swapped in between.
        let meta = file
            .metadata()
            .map_err(|e| config_error(path, format!("cannot stat: {e}")))?;
        check_safe(path, &meta, "file")?;
        check_parents(path)?;
        if !meta.is_file() {
            return Err(config_error(path, "not a regular file"));
        }
        if meta.len() > MAX_CONFIG_LEN {
            return Err(config_error(path, "longer than 64 KiB"));
        }
        let mut text = String::new();
        file.by_ref()
            .take(MAX_CONFIG_LEN)
            .read_to_string(&mut text)
            .map_err(|e| config_error(path, format!("cannot read as UTF-8 text: {e}")))?;
        Self::parse(&text).map_err(|reason| config_error(path, reason))
    }

    /// Parses the TOML text; the error names the field.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message says which key and where; keep it on one line.
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })?;
        let log_key =
            VerifierKey::parse(raw.log_key.trim()).map_err(|e| format!("log_key: {e}"))?;
        if log_key.signature_type() == SignatureType::CosignatureV1 {
            return Err(
                "log_key: is a witness's cosignature/v1 key, not the log's checkpoint key".into(),
            );
        }
        Ok(Self {
            trust: LogTrust {
                log_key,
                witnesses: raw.witnesses,
            },
        })
    }
}

/// The effective user id, from `/proc/self` (owned by the process's
/// effective user); `None` where /proc is not mounted.
fn effective_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Owned by root or by the user running the check, and not writable by
/// group or others — sshd's rule for the files its commands depend on.
fn check_safe(path: &Path, meta: &std::fs::Metadata, what: &str) -> Result<()> {
    let uid = meta.uid();
    let me = effective_uid();
    if uid != 0 && Some(uid) != me {
        return Err(NodeError::UnsafeConfig {
            path: path.to_path_buf(),
            reason: format!(
                "{what} is owned by uid {uid}; it must be owned by root or by the user running signet-node"
            ),
        });
    }
    let mode = meta.mode();
    // A directory others may write to is fine only with the sticky bit
    // (like /tmp): nobody else can then rename or remove what is in it.
    let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_dir {
        return Err(NodeError::UnsafeConfig {
            path: path.to_path_buf(),
            reason: format!(
                "{what} is writable by {} (mode {:04o}); make it writable by its owner only",
                if mode & 0o002 != 0 {
                    "others"
                } else {
                    "its group"
                },
                mode & 0o7777
            ),
        });
    }
    Ok(())
}

/// Every directory above the file passes [`check_safe`].
fn check_parents(path: &Path) -> Result<()> {
    let absolute: PathBuf = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| config_error(path, format!("cannot resolve the path: {e}")))?
            .join(path)
    };
    for dir in absolute.ancestors().skip(1) {
        let meta = std::fs::metadata(dir)
            .map_err(|e| config_error(path, format!("cannot stat {}: {e}", dir.display())))?;
        check_safe(dir, &meta, "directory")?;
    }
    Ok(())
}
