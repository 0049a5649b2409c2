//! PIV slots, key types and policies, in Signet's own words (the `yubikey`
//! crate's types stay inside this module).

use std::fmt;

use yubikey::piv::{AlgorithmId, RetiredSlotId, SlotId};

use crate::{Error, Result};

/// A PIV key slot that can hold a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PivSlot {
    /// 9a, PIV Authentication (the client's login key).
    Authentication,
    /// 9c, Digital Signature (PIN always by default).
    Signature,
    /// 9d, Key Management.
    KeyManagement,
    /// 9e, Card Authentication (no PIN by default).
    CardAuthentication,
    /// 82–95, retired key management slots 1–20.
    Retired(u8),
}

const RETIRED: [RetiredSlotId; 20] = [
    RetiredSlotId::R1,
    RetiredSlotId::R2,
    RetiredSlotId::R3,
    RetiredSlotId::R4,
    RetiredSlotId::R5,
    RetiredSlotId::R6,
    RetiredSlotId::R7,
    RetiredSlotId::R8,
    RetiredSlotId::R9,
    RetiredSlotId::R10,
    RetiredSlotId::R11,
    RetiredSlotId::R12,
    RetiredSlotId::R13,
    RetiredSlotId::R14,
    RetiredSlotId::R15,
    RetiredSlotId::R16,
    RetiredSlotId::R17,
    RetiredSlotId::R18,
    RetiredSlotId::R19,
    RetiredSlotId::R20,
];

impl PivSlot {
    /// The slot's key reference byte (`9a`, `9c`, …, `82`–`95`).
    pub fn key_reference(self) -> u8 {
        match self {
            Self::Authentication => 0x9a,
            Self::Signature => 0x9c,
            Self::KeyManagement => 0x9d,
            Self::CardAuthentication => 0x9e,
            Self::Retired(n) => 0x81 + n,
        }
    }

    /// Checks a slot's number (retired slots are 1–20).
    pub(crate) fn validate(self) -> Result<Self> {
        match self {
            Self::Retired(n) if !(1..=20).contains(&n) => Err(Error::PivInvalidSlot(format!(
                "retired slot {n} (there are 20, numbered 1 to 20)"
            ))),
            other => Ok(other),
        }
    }

    pub(crate) fn to_yubikey(self) -> Result<SlotId> {
        Ok(match self.validate()? {
            Self::Authentication => SlotId::Authentication,
            Self::Signature => SlotId::Signature,
            Self::KeyManagement => SlotId::KeyManagement,
            Self::CardAuthentication => SlotId::CardAuthentication,
            Self::Retired(n) => SlotId::Retired(RETIRED[usize::from(n) - 1]),
        })
    }
}

impl fmt::Display for PivSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.key_reference())
    }
}

impl std::str::FromStr for PivSlot {
    type Err = Error;

    /// Parses `9a`, `9c`, `9d`, `9e` or `82`–`95` (hex, as yubico-piv-tool names them).
    fn from_str(s: &str) -> Result<Self> {
        let byte = u8::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|_| {
            Error::PivInvalidSlot(format!("{s:?} is not a slot (9a, 9c, 9d, 9e, 82–95)"))
        })?;
        match byte {
            0x9a => Ok(Self::Authentication),
            0x9c => Ok(Self::Signature),
            0x9d => Ok(Self::KeyManagement),
            0x9e => Ok(Self::CardAuthentication),
            0x82..=0x95 => Ok(Self::Retired(byte - 0x81)),
            _ => Err(Error::PivInvalidSlot(format!(
                "{s:?} is not a signing slot (9a, 9c, 9d, 9e, 82–95)"
            ))),
        }
    }
}

/// The key types the PIV backend signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PivAlgorithm {
    /// ECDSA P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384,
    /// RSA-2048, PKCS#1 v1.5 (padding made on the host).
    Rsa2048,
}

impl PivAlgorithm {
    pub(crate) fn to_yubikey(self) -> AlgorithmId {
        match self {
            Self::EcdsaP256 => AlgorithmId::EccP256,
            Self::EcdsaP384 => AlgorithmId::EccP384,
            Self::Rsa2048 => AlgorithmId::Rsa2048,
        }
    }

    pub(crate) fn from_yubikey(id: AlgorithmId) -> Result<Self> {
        match id {
            AlgorithmId::EccP256 => Ok(Self::EcdsaP256),
            AlgorithmId::EccP384 => Ok(Self::EcdsaP384),
            AlgorithmId::Rsa2048 => Ok(Self::Rsa2048),
            other => Err(Error::PivUnsupported(format!(
                "the slot holds a {other:?} key; Signet signs with P-256, P-384 or RSA-2048 PIV keys"
            ))),
        }
    }

    /// A short name (`ecdsa-p256`, `ecdsa-p384`, `rsa-2048`).
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
        }
    }
}

impl fmt::Display for PivAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When the card asks for the PIN before using the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PivPinPolicy {
    /// Never.
    Never,
    /// Once per session. The backend releases the card after every
    /// operation (which resets it), so it verifies the PIN each time.
    Once,
    /// Before every operation.
    Always,
}

/// When the card asks for a touch before using the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PivTouchPolicy {
    /// Never.
    Never,
    /// For every operation.
    Always,
    /// Once per 15 seconds.
    Cached,
}

impl PivPinPolicy {
    pub(crate) fn to_yubikey(self) -> yubikey::PinPolicy {
        match self {
            Self::Never => yubikey::PinPolicy::Never,
            Self::Once => yubikey::PinPolicy::Once,
            Self::Always => yubikey::PinPolicy::Always,
        }
    }

    /// The card's answer, with its slot defaults resolved (9e: never; the
    /// others: once, 9c: always).
    pub(crate) fn from_yubikey(policy: yubikey::PinPolicy, slot: PivSlot) -> Self {
        match policy {
            yubikey::PinPolicy::Never => Self::Never,
            yubikey::PinPolicy::Once => Self::Once,
            yubikey::PinPolicy::Always => Self::Always,
            yubikey::PinPolicy::Default => match slot {
                PivSlot::CardAuthentication => Self::Never,
                PivSlot::Signature => Self::Always,
                _ => Self::Once,
            },
        }
    }
}

impl PivTouchPolicy {
    pub(crate) fn to_yubikey(self) -> yubikey::TouchPolicy {
        match self {
            Self::Never => yubikey::TouchPolicy::Never,
            Self::Always => yubikey::TouchPolicy::Always,
            Self::Cached => yubikey::TouchPolicy::Cached,
        }
    }

    pub(crate) fn from_yubikey(policy: yubikey::TouchPolicy) -> Self {
        match policy {
            // The default touch policy of every slot is "never".
            yubikey::TouchPolicy::Never | yubikey::TouchPolicy::Default => Self::Never,
            yubikey::TouchPolicy::Always => Self::Always,
            yubikey::TouchPolicy::Cached => Self::Cached,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_parse_and_print_as_yubico_tools_name_them() {
        for name in ["9a", "9c", "9d", "9e", "82", "95"] {
            let slot: PivSlot = name.parse().unwrap();
            assert_eq!(slot.to_string(), name);
            slot.to_yubikey().unwrap();
        }
        assert_eq!("82".parse::<PivSlot>().unwrap(), PivSlot::Retired(1));
        assert!("f9".parse::<PivSlot>().is_err());
        assert!("96".parse::<PivSlot>().is_err());
        assert!("zz".parse::<PivSlot>().is_err());
        assert!(PivSlot::Retired(21).to_yubikey().is_err());
        assert!(PivSlot::Retired(0).to_yubikey().is_err());
    }
}
