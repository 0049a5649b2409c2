//! Everything a YubiKey remembers across power cycles: PIN/PUK and their
//! counters, the management key, slot keys with their policies, data objects
//! and the attestation key. Optionally persisted as JSON so that a "key"
//! survives restarts of the emulator.
//!
//! Private keys are written in the clear: this is a test device, and its
//! state file must be treated like a test fixture, never like a real key.

use crate::attest::AttestationRoot;
use crate::keys::{MgmKey, PrivateKey, StoredSecret};
use crate::{Error, Result};
use p256::elliptic_curve::Generate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::Zeroizing;

/// Factory PIN `123456`.
pub const DEFAULT_PIN: &[u8] = b"123456";
/// Factory PUK `12345678`.
pub const DEFAULT_PUK: &[u8] = b"12345678";
/// Factory retry counters.
pub const DEFAULT_RETRIES: u8 = 3;
/// Object id of the attestation (`f9`) certificate.
pub const OBJ_ATTESTATION: u32 = 0x5F_FF01;

/// PIN policy of a key (byte values as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PinPolicy {
    /// `01`: no PIN needed.
    Never,
    /// `02`: PIN once per session.
    Once,
    /// `03`: PIN verified right before every use.
    Always,
}

impl PinPolicy {
    /// Parses the policy byte (`00` = default is resolved by the caller).
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Never,
            2 => Self::Once,
            3 => Self::Always,
            _ => return None,
        })
    }

    /// The policy byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Never => 1,
            Self::Once => 2,
            Self::Always => 3,
        }
    }

    /// The default for a slot: `9c` always, `9e` never, the rest once.
    pub fn default_for(slot: u8) -> Self {
        match slot {
            0x9C => Self::Always,
            0x9E => Self::Never,
            _ => Self::Once,
        }
    }
}

/// Touch policy of a key (byte values as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TouchPolicy {
    /// `01`: no touch.
    Never,
    /// `02`: a touch for every use.
    Always,
    /// `03`: a touch, then free use for 15 s.
    Cached,
}

impl TouchPolicy {
    /// Parses the policy byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Never,
            2 => Self::Always,
            3 => Self::Cached,
            _ => return None,
        })
    }

    /// The policy byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Never => 1,
            Self::Always => 2,
            Self::Cached => 3,
        }
    }
}

/// Where a slot's key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Generated on the device (attestable).
    Generated,
    /// Imported (cannot be attested).
    Imported,
}

/// A key in a slot.
#[derive(Debug, Clone)]
pub struct Slot {
    /// The private key.
    pub key: PrivateKey,
    /// PIN policy.
    pub pin_policy: PinPolicy,
    /// Touch policy.
    pub touch_policy: TouchPolicy,
    /// Generated or imported.
    pub origin: Origin,
}

/// Identity of the emulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Serial number (GET SERIAL, attestation).
    pub serial: u32,
    /// Firmware version (GET VERSION); 5.7+ switches on AES-192 default
    /// management key, RSA-3072/4096 and Ed25519/X25519.
    pub firmware: [u8; 3],
    /// Form factor byte for attestation (`01` USB-A keychain).
    pub form_factor: u8,
}

impl DeviceInfo {
    /// Whether the firmware is at least `major.minor.patch`.
    pub fn at_least(&self, version: [u8; 3]) -> bool {
        self.firmware >= version
    }
}

/// A PIN or PUK with its counter.
#[derive(Clone)]
pub struct Secret {
    /// The value padded with `FF` to 8 bytes.
    pub value: Zeroizing<[u8; 8]>,
    /// Retries allowed.
    pub max: u8,
    /// Retries left (0 = blocked).
    pub left: u8,
    /// Whether the value is still the factory default.
    pub is_default: bool,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}/{} left)", self.left, self.max)
    }
}

/// Pads a PIN/PUK to 8 bytes with `FF`; `None` if longer than 8.
pub fn pad8(value: &[u8]) -> Option<Zeroizing<[u8; 8]>> {
    if value.len() > 8 {
        return None;
    }
    let mut out = Zeroizing::new([0xFFu8; 8]);
    out[..value.len()].copy_from_slice(value);
    Some(out)
}

impl Secret {
    fn factory(value: &[u8]) -> Self {
        Self {
            value: pad8(value).unwrap_or_else(|| Zeroizing::new([0xFF; 8])),
            max: DEFAULT_RETRIES,
            left: DEFAULT_RETRIES,
            is_default: true,
        }
    }
}

/// The persistent state of the PIV applet.
#[derive(Debug, Clone)]
pub struct CardState {
    /// Device identity.
    pub info: DeviceInfo,
    /// PIN.
    pub pin: Secret,
    /// PUK.
    pub puk: Secret,
    /// Management key.
    pub mgm: MgmKey,
    /// Keys by slot byte.
    pub slots: BTreeMap<u8, Slot>,
    /// Data objects by id (value of the `53` tag).
    pub objects: BTreeMap<u32, Vec<u8>>,
    /// The device attestation key (slot `f9`).
    pub f9_key: p256::ecdsa::SigningKey,
}

impl CardState {
    /// A factory-fresh device whose `f9` certificate is issued by `root`.
    pub fn new(info: DeviceInfo, root: &AttestationRoot) -> Result<Self> {
        let f9_key = p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
        let f9_cert = root.issue_device_ca(&f9_key, info.serial)?;
        let mut objects = BTreeMap::new();
        objects.insert(OBJ_ATTESTATION, certificate_object(&f9_cert));
        Ok(Self {
            info,
            pin: Secret::factory(DEFAULT_PIN),
            puk: Secret::factory(DEFAULT_PUK),
            mgm: MgmKey::factory(info.at_least([5, 7, 0])),
            slots: BTreeMap::new(),
            objects,
            f9_key,
        })
    }

    /// Factory reset of the PIV applet: keys, objects, PIN, PUK and
    /// management key go back to defaults; the attestation key and its
    /// certificate stay (they are provisioned by the manufacturer).
    pub fn reset(&mut self) {
        let f9 = self.objects.get(&OBJ_ATTESTATION).cloned();
        self.pin = Secret::factory(DEFAULT_PIN);
        self.puk = Secret::factory(DEFAULT_PUK);
        self.mgm = MgmKey::factory(self.info.at_least([5, 7, 0]));
        self.slots.clear();
        self.objects.clear();
        if let Some(f9) = f9 {
            self.objects.insert(OBJ_ATTESTATION, f9);
        }
    }

    /// The `f9` certificate (DER), taken from its data object.
    pub fn f9_cert_der(&self) -> Option<Vec<u8>> {
        let obj = self.objects.get(&OBJ_ATTESTATION)?;
        let tlvs = crate::tlv::Tlv::decode_all(obj).ok()?;
        crate::tlv::find(&tlvs, 0x70).map(<[u8]>::to_vec)
    }

    /// Loads a state file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let file: StateFile = serde_json::from_str(&text).map_err(|e| Error::Invalid {
            what: "state file",
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        file.into_state().map_err(|e| Error::Invalid {
            what: "state file",
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    /// Writes the state file atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let file = StateFile::from_state(self)?;
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| Error::Crypto(format!("serialising state: {e}")))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("renaming to {}", path.display()), e))
    }
}

/// The `53` value of a certificate object: `70 <DER> 71 00 FE 00`.
pub fn certificate_object(der: &[u8]) -> Vec<u8> {
    let mut out = crate::tlv::encode(0x70, der);
    out.extend_from_slice(&[0x71, 0x01, 0x00, 0xFE, 0x00]);
    out
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPinPuk {
    value: String,
    max: u8,
    left: u8,
    is_default: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSlot {
    key: StoredSecret,
    pin_policy: PinPolicy,
    touch_policy: TouchPolicy,
    origin: Origin,
}

/// On-disk layout of the state (JSON).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    info: DeviceInfo,
    pin: StoredPinPuk,
    puk: StoredPinPuk,
    mgm: MgmKey,
    slots: BTreeMap<String, StoredSlot>,
    objects: BTreeMap<String, String>,
    f9_key: String,
}

fn store_secret(s: &Secret) -> StoredPinPuk {
    StoredPinPuk {
        value: hex::encode(s.value.as_ref()),
        max: s.max,
        left: s.left,
        is_default: s.is_default,
    }
}

fn load_secret(s: &StoredPinPuk) -> std::result::Result<Secret, String> {
    let bytes = hex::decode(&s.value).map_err(|e| e.to_string())?;
    let value: [u8; 8] = bytes.try_into().map_err(|_| "PIN/PUK must be 8 bytes")?;
    Ok(Secret {
        value: Zeroizing::new(value),
        max: s.max,
        left: s.left.min(s.max),
        is_default: s.is_default,
    })
}

impl StateFile {
    fn from_state(state: &CardState) -> Result<Self> {
        let mut slots = BTreeMap::new();
        for (id, slot) in &state.slots {
            slots.insert(
                format!("{id:02x}"),
                StoredSlot {
                    key: slot.key.to_stored()?,
                    pin_policy: slot.pin_policy,
                    touch_policy: slot.touch_policy,
                    origin: slot.origin,
                },
            );
        }
        Ok(Self {
            info: state.info,
            pin: store_secret(&state.pin),
            puk: store_secret(&state.puk),
            mgm: state.mgm.clone(),
            slots,
            objects: state
                .objects
                .iter()
                .map(|(id, v)| (format!("{id:06x}"), hex::encode(v)))
                .collect(),
            f9_key: hex::encode(state.f9_key.to_bytes()),
        })
    }

    fn into_state(self) -> std::result::Result<CardState, String> {
        let mut slots = BTreeMap::new();
        for (id, slot) in self.slots {
            let id = u8::from_str_radix(&id, 16).map_err(|e| e.to_string())?;
            slots.insert(
                id,
                Slot {
                    key: PrivateKey::from_stored(&slot.key).map_err(|e| e.to_string())?,
                    pin_policy: slot.pin_policy,
                    touch_policy: slot.touch_policy,
                    origin: slot.origin,
                },
            );
        }
        let mut objects = BTreeMap::new();
        for (id, value) in self.objects {
            let id = u32::from_str_radix(&id, 16).map_err(|e| e.to_string())?;
            objects.insert(id, hex::decode(value).map_err(|e| e.to_string())?);
        }
        let f9 = hex::decode(&self.f9_key).map_err(|e| e.to_string())?;
        Ok(CardState {
            info: self.info,
            pin: load_secret(&self.pin)?,
            puk: load_secret(&self.puk)?,
            mgm: self.mgm,
            slots,
            objects,
            f9_key: p256::ecdsa::SigningKey::from_slice(&f9).map_err(|e| e.to_string())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Algorithm;

    #[test]
    fn save_load_round_trip() {
        let root = AttestationRoot::create().unwrap();
        let info = DeviceInfo {
            serial: 42,
            firmware: [5, 7, 1],
            form_factor: 1,
        };
        let mut state = CardState::new(info, &root).unwrap();
        state.slots.insert(
            0x9a,
            Slot {
                key: PrivateKey::generate(Algorithm::P256).unwrap(),
                pin_policy: PinPolicy::Once,
                touch_policy: TouchPolicy::Cached,
                origin: Origin::Generated,
            },
        );
        state.pin.left = 1;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        state.save(&path).unwrap();
        let back = CardState::load(&path).unwrap();
        assert_eq!(back.info, info);
        assert_eq!(back.pin.left, 1);
        assert_eq!(
            back.slots[&0x9a].key.public_tlvs(),
            state.slots[&0x9a].key.public_tlvs()
        );
        assert_eq!(back.f9_cert_der(), state.f9_cert_der());
        assert!(back.f9_cert_der().is_some());
    }
}
