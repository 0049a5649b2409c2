//! What the FIDO2 applet remembers across power cycles: its master secret
//! (from which every credential key derives), the attestation key and
//! certificate, the PIN (as `LEFT(SHA-256(PIN), 16)`, as the spec stores
//! it) with its retry counter, the signature counter and the discoverable
//! credentials. Persisted as JSON beside the PIV state file
//! (`<state>.fido.json`), in the clear: this is a test device.

use crate::attest::AttestationRoot;
use crate::{Error, Result};
use p256::elliptic_curve::Generate;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// PIN retries of a fresh or reset authenticator (CTAP 2.1: at most 8).
pub const PIN_RETRIES: u8 = 8;
/// Shortest PIN accepted, in Unicode code points (CTAP default).
pub const MIN_PIN_LENGTH: usize = 4;
/// How many discoverable credentials fit (a YubiKey 5 holds 25).
pub const MAX_RESIDENT: usize = 25;

/// The AAGUID of the virtual key: Signet's own, never a vendor's
/// (`5169e7a3-…`, random, reserved for this emulator).
pub const AAGUID: [u8; 16] = [
    0x51, 0x69, 0xE7, 0xA3, 0x6A, 0x1C, 0x4E, 0x55, 0x9B, 0x3E, 0x3D, 0x5A, 0x0F, 0x8C, 0x21, 0x77,
];

/// The state file of the FIDO applet that belongs to a PIV state file.
pub fn path_beside(piv_state: &Path) -> PathBuf {
    piv_state.with_extension("fido.json")
}

/// A discoverable (resident) credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resident {
    /// The RP ID it belongs to.
    pub rp_id: String,
    /// The credential ID (hex in the file).
    #[serde(with = "hex::serde")]
    pub id: Vec<u8>,
    /// The user handle.
    #[serde(with = "hex::serde")]
    pub user_id: Vec<u8>,
    /// The user's name, if the RP gave one.
    pub user_name: Option<String>,
    /// The user's display name, if the RP gave one.
    pub display_name: Option<String>,
}

/// The persistent state of the FIDO2 applet.
#[derive(Clone)]
pub struct FidoState {
    /// The AAGUID in getInfo, authenticator data and the certificate.
    pub aaguid: [u8; 16],
    /// Master secret; a reset replaces it, voiding every credential.
    pub master: Zeroizing<[u8; 32]>,
    /// The attestation key (P-256).
    pub attestation_key: p256::ecdsa::SigningKey,
    /// Its certificate (DER), issued by the emulator's attestation root.
    pub attestation_cert: Vec<u8>,
    /// `LEFT(SHA-256(PIN), 16)` once a PIN is set.
    pub pin_hash: Option<Zeroizing<[u8; 16]>>,
    /// PIN retries left (0 = blocked until reset).
    pub pin_retries: u8,
    /// The global signature counter.
    pub sign_count: u32,
    /// Discoverable credentials, oldest first.
    pub residents: Vec<Resident>,
}

impl std::fmt::Debug for FidoState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FidoState")
            .field("pin_set", &self.pin_hash.is_some())
            .field("pin_retries", &self.pin_retries)
            .field("sign_count", &self.sign_count)
            .field("residents", &self.residents.len())
            .finish_non_exhaustive()
    }
}

fn random32() -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(out.as_mut());
    out
}

impl FidoState {
    /// A factory-fresh applet whose attestation certificate `root` issues.
    pub fn new(root: &AttestationRoot, serial: u32) -> Result<Self> {
        let attestation_key = p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
        let attestation_cert = root.issue_fido_attestation(&attestation_key, AAGUID, serial)?;
        Ok(Self {
            aaguid: AAGUID,
            master: random32(),
            attestation_key,
            attestation_cert,
            pin_hash: None,
            pin_retries: PIN_RETRIES,
            sign_count: 0,
            residents: Vec::new(),
        })
    }

    /// authenticatorReset: credentials, PIN and master secret go; the
    /// attestation key stays (it is the manufacturer's).
    pub fn reset(&mut self) {
        self.master = random32();
        self.pin_hash = None;
        self.pin_retries = PIN_RETRIES;
        self.residents.clear();
    }

    /// Loads a state file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let invalid = |detail: String| Error::Invalid {
            what: "FIDO state file",
            path: path.to_path_buf(),
            detail,
        };
        let file: StateFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        file.into_state().map_err(invalid)
    }

    /// Writes the state file atomically and durably: a temp file readable
    /// by its owner only (mode 0600: it holds the master secret and the
    /// PIN hash), flushed to disk, renamed over the old file, and the
    /// directory flushed so the rename survives a power cut.
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = StateFile::from_state(self);
        let text = Zeroizing::new(
            serde_json::to_string_pretty(&file)
                .map_err(|e| Error::Crypto(format!("serialising FIDO state: {e}")))?,
        );
        let tmp = path.with_extension("tmp");
        let writing = |e| Error::io(format!("writing {}", tmp.display()), e);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(writing)?;
        // `mode` only applies to a new file; a stale temp file is narrowed.
        out.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(writing)?;
        out.write_all(text.as_bytes()).map_err(writing)?;
        out.sync_all().map_err(writing)?;
        drop(out);
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("renaming to {}", path.display()), e))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(format!("flushing {}", dir.display()), e))
    }
}

/// On-disk layout (JSON, bytes in hex).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    aaguid: String,
    master: String,
    attestation_key: String,
    attestation_cert: String,
    pin_hash: Option<String>,
    pin_retries: u8,
    sign_count: u32,
    residents: Vec<Resident>,
}

impl StateFile {
    fn from_state(s: &FidoState) -> Self {
        Self {
            aaguid: hex::encode(s.aaguid),
            master: hex::encode(s.master.as_ref()),
            attestation_key: hex::encode(s.attestation_key.to_bytes()),
            attestation_cert: hex::encode(&s.attestation_cert),
            pin_hash: s.pin_hash.as_ref().map(|h| hex::encode(h.as_ref())),
            pin_retries: s.pin_retries,
            sign_count: s.sign_count,
            residents: s.residents.clone(),
        }
    }

    fn into_state(self) -> std::result::Result<FidoState, String> {
        fn fixed<const N: usize>(
            what: &str,
            hex_text: &str,
        ) -> std::result::Result<[u8; N], String> {
            let bytes = hex::decode(hex_text).map_err(|e| format!("{what}: {e}"))?;
            bytes
                .try_into()
                .map_err(|_| format!("{what}: expected {N} bytes"))
        }
        let key: [u8; 32] = fixed("attestation_key", &self.attestation_key)?;
        Ok(FidoState {
            aaguid: fixed("aaguid", &self.aaguid)?,
            master: Zeroizing::new(fixed("master", &self.master)?),
            attestation_key: p256::ecdsa::SigningKey::from_slice(&key)
                .map_err(|e| format!("attestation_key: {e}"))?,
            attestation_cert: hex::decode(&self.attestation_cert)
                .map_err(|e| format!("attestation_cert: {e}"))?,
            pin_hash: self
                .pin_hash
                .map(|h| fixed("pin_hash", &h).map(Zeroizing::new))
                .transpose()?,
            pin_retries: self.pin_retries.min(PIN_RETRIES),
            sign_count: self.sign_count,
            residents: self.residents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip() {
        let root = AttestationRoot::create().unwrap();
        let mut state = FidoState::new(&root, 9).unwrap();
        state.pin_hash = Some(Zeroizing::new([5; 16]));
        state.pin_retries = 6;
        state.sign_count = 41;
        state.residents.push(Resident {
            rp_id: "example.com".into(),
            id: vec![1, 2, 3],
            user_id: vec![4],
            user_name: Some("alice".into()),
            display_name: None,
        });
        let dir = tempfile::tempdir().unwrap();
        let path = path_beside(&dir.path().join("yk.json"));
        assert!(path.ends_with("yk.fido.json"));
        state.save(&path).unwrap();
        let back = FidoState::load(&path).unwrap();
        assert_eq!(back.master, state.master);
        assert_eq!(back.pin_hash, state.pin_hash);
        assert_eq!((back.pin_retries, back.sign_count), (6, 41));
        assert_eq!(back.residents, state.residents);
        assert_eq!(back.attestation_cert, state.attestation_cert);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the master secret is the owner's only");
        // A stale, wider temp file from an earlier crash is narrowed too.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, "stale").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        state.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!tmp.exists());
        std::fs::write(&path, "{\"aaguid\": 1}").unwrap();
        assert!(FidoState::load(&path).is_err());
    }
}
