//! The witness policy an auditor holds the log to (`--witnesses FILE`).
//!
//! The file is TOML with a `[witnesses]` table — the table the CA's and the
//! nodes' configurations hold (`threshold`, `[[witnesses.witness]]` with
//! `name`, `vkey` and, as the CA writes it, `url`, which is not used here).
//! A node's configuration file (`log_key` and `[witnesses]`) is accepted as
//! it is; its `log_key` must then be the key pinned with `--key`:
//!
//! ```toml
//! [witnesses]
//! threshold = 1
//! [[witnesses.witness]]
//! name = "witness-a.example"
//! vkey = "witness-a.example+5e6f7a8b+BA…"
//! ```
//!
//! A checkpoint meets the policy when the log key signed it and at least
//! `threshold` of the listed witnesses cosigned it (C2SP cosignature/v1): a
//! log the CA showed only to its auditors, or rolled back, would lack them.

use std::path::Path;

use serde::Deserialize;
use signet_log::note::VerifierKey;
use signet_log::witness::WitnessPolicy;

use super::error::{detail, AuditError, Result, VerifyFailure};

/// Largest policy file read (32 witnesses are about 5 KiB).
const MAX_POLICY_FILE: u64 = 64 * 1024;

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// A node configuration's log key, if the file is one.
    #[serde(default)]
    log_key: Option<String>,
    #[serde(default)]
    witnesses: Option<WitnessPolicy>,
}

/// A parsed `--witnesses` file.
#[derive(Debug, Clone)]
pub struct WitnessFile {
    /// The policy checkpoints must meet.
    pub policy: WitnessPolicy,
    /// The log key the file names (a node configuration), to be checked
    /// against the pinned one.
    pub log_key: Option<VerifierKey>,
}

impl WitnessFile {
    /// Reads `--witnesses FILE`.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display();
        let bytes = super::localfile::read_regular(path, MAX_POLICY_FILE)
            .map_err(|e| AuditError::bad_input(format!("--witnesses {name}: {e}")))?;
        Self::from_bytes(&bytes)
            .map_err(|e| AuditError::bad_input(format!("--witnesses {name}: {e}")))
    }

    /// Parses the file's contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| AuditError::bad_input("not UTF-8 text (expected TOML)"))?;
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            AuditError::bad_input(format!("not a witness policy: {}", e.message().trim_end()))
        })?;
        let policy = raw.witnesses.ok_or_else(|| {
            AuditError::bad_input(
                "no [witnesses] table (threshold and [[witnesses.witness]] name, vkey)",
            )
        })?;
        if policy.is_none() {
            return Err(AuditError::bad_input(
                "the [witnesses] table lists no witness: a policy that asks for none checks \
                 nothing (leave --witnesses out instead)",
            ));
        }
        let log_key = raw
            .log_key
            .map(|k| {
                VerifierKey::parse(k.trim())
                    .map_err(|e| AuditError::bad_input(format!("log_key: {}", detail(&e))))
            })
            .transpose()?;
        Ok(Self { policy, log_key })
    }

    /// Refuses a file whose `log_key` is not the pinned key `pinned`.
    pub fn check_log_key(&self, pinned: &VerifierKey) -> Result<()> {
        match &self.log_key {
            Some(k) if k.to_string() != pinned.to_string() => Err(AuditError::bad_input(format!(
                "--witnesses names the log key {k}, but --key pins {pinned}"
            ))),
            _ => Ok(()),
        }
    }
}

/// Checks that the signed checkpoint `signed` meets `policy` with the log
/// key `log_key`; returns the names of the witnesses whose cosignatures
/// verified, sorted. The error names the witnesses missing.
pub fn check_checkpoint(
    policy: &WitnessPolicy,
    signed: &[u8],
    log_key: &VerifierKey,
    source_name: &str,
) -> Result<Vec<String>> {
    let cosigned = policy.verify_checkpoint(signed, log_key).map_err(|e| {
        AuditError::from(VerifyFailure::Checkpoint {
            source_name: source_name.to_owned(),
            reason: format!(
                "the witness policy ({} of {}) is not met: {}",
                policy.threshold(),
                policy.witnesses().len(),
                detail(&e)
            ),
        })
    })?;
    // Sorted: the note lists them in the order the witnesses answered.
    let mut names: Vec<String> = cosigned
        .cosignatures()
        .iter()
        .map(|c| c.witness.clone())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = "witness-a.example+ffaac228+BEOnLnFEAXYt9mtowm373yaCquyfJHTspGE+QkoPuv08";
    const B: &str = "witness-b.example+e1d02672+BGa+fjMsekUzMr2dCn99sFX1xe8aBq2mbZizn7aBDEc6";
    const LOG: &str =
        "ca.example.com/signet-log+5432e20d+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";

    fn policy(threshold: usize) -> String {
        format!(
            "[witnesses]\nthreshold = {threshold}\n\
             [[witnesses.witness]]\nname = \"witness-a.example\"\nvkey = \"{A}\"\n\
             [[witnesses.witness]]\nname = \"witness-b.example\"\nurl = \"http://127.0.0.1:1\"\nvkey = \"{B}\"\n"
        )
    }

    #[test]
    fn policy_files_and_node_configs_parse() {
        let f = WitnessFile::from_bytes(policy(1).as_bytes()).unwrap();
        assert_eq!(f.policy.threshold(), 1);
        assert_eq!(f.policy.witnesses().len(), 2);
        assert!(f.log_key.is_none());
        let node = format!("log_key = \"{LOG}\"\n\n{}", policy(2));
        let f = WitnessFile::from_bytes(node.as_bytes()).unwrap();
        let pinned = VerifierKey::parse(LOG).unwrap();
        f.check_log_key(&pinned).unwrap();
        // Another pinned key: refused, both named.
        let other = VerifierKey::parse(A).unwrap();
        let err = f.check_log_key(&other).unwrap_err().to_string();
        assert!(err.contains(LOG) && err.contains(A), "{err}");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        for (text, want) in [
            ("", "no [witnesses] table"),
            ("[witnesses]\nthreshold = 0\n", "lists no witness"),
            ("[witnesses]\nthreshold = 3\n", "threshold"),
            (&policy(3), "threshold"),
            (&policy(1).replace("vkey = \"witness-a", "vkey = \"x"), "vkey"),
            (&policy(1).replace("threshold", "treshold"), "treshold"),
            ("log_key = \"nope\"\n[witnesses]\nthreshold = 1\n[[witnesses.witness]]\nname = \"a\"\nvkey = \"witness-a.example+ffaac228+BEOnLnFEAXYt9mtowm373yaCquyfJHTspGE+QkoPuv08\"\n", "log_key"),
            ("[serve]\nlisten = \"x\"\n", "serve"),
            ("not toml [", "not a witness policy"),
        ] {
            let err = WitnessFile::from_bytes(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        assert!(WitnessFile::from_bytes(&[0xff, 0xfe]).is_err());
    }
}
