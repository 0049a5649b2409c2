//! Yubico's PIV attestation extensions (arc 1.3.6.1.4.1.41482.3), as a
//! YubiKey writes them into a slot attestation certificate:
//!
//! | OID suffix | content of the extension's OCTET STRING |
//! | --- | --- |
//! | `.3.3` firmware | 3 raw bytes: major, minor, patch |
//! | `.3.7` serial | a DER INTEGER (the device serial, fits in 32 bits) |
//! | `.3.8` policy | 2 raw bytes: PIN policy (1 never, 2 once, 3 always, 4/5 biometric match once/always), touch policy (1 never, 2 always, 3 cached) |
//! | `.3.9` form factor | 1 raw byte: low nibble the form factor, 0x80 FIPS series, 0x40 Security Key series |

use crate::cert::Cert;
use crate::error::AttestError;
use const_oid::ObjectIdentifier;
use der::Decode;
use signet_log::entry::{PinPolicy, TouchPolicy};

/// Firmware version extension.
pub const OID_FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
/// Device serial number extension.
pub const OID_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
/// PIN and touch policy extension.
pub const OID_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
/// Form factor extension.
pub const OID_FORM_FACTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");

/// The Yubico extensions this crate reads (and so understands even if a
/// certificate marks them critical).
pub(crate) const UNDERSTOOD: [ObjectIdentifier; 4] =
    [OID_FIRMWARE, OID_SERIAL, OID_POLICY, OID_FORM_FACTOR];

const FIRMWARE: (&str, &str) = ("firmware version", "1.3.6.1.4.1.41482.3.3");
const SERIAL: (&str, &str) = ("serial number", "1.3.6.1.4.1.41482.3.7");
const POLICY: (&str, &str) = ("PIN/touch policy", "1.3.6.1.4.1.41482.3.8");
const FORM: (&str, &str) = ("form factor", "1.3.6.1.4.1.41482.3.9");

/// Form factor of the YubiKey, from the attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FormFactor {
    /// The byte as the device wrote it.
    pub raw: u8,
}

/// The physical kind of device, the low nibble of the form factor byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FormFactorKind {
    /// The device did not say.
    Unknown,
    /// USB-A keychain.
    UsbAKeychain,
    /// USB-A nano.
    UsbANano,
    /// USB-C keychain.
    UsbCKeychain,
    /// USB-C nano.
    UsbCNano,
    /// USB-C and Lightning keychain.
    UsbCLightning,
    /// USB-A with a fingerprint sensor.
    UsbABio,
    /// USB-C with a fingerprint sensor.
    UsbCBio,
    /// A value this version does not know.
    Other(u8),
}

impl FormFactor {
    /// The kind of device.
    pub fn kind(self) -> FormFactorKind {
        match self.raw & 0x0f {
            0 => FormFactorKind::Unknown,
            1 => FormFactorKind::UsbAKeychain,
            2 => FormFactorKind::UsbANano,
            3 => FormFactorKind::UsbCKeychain,
            4 => FormFactorKind::UsbCNano,
            5 => FormFactorKind::UsbCLightning,
            6 => FormFactorKind::UsbABio,
            7 => FormFactorKind::UsbCBio,
            other => FormFactorKind::Other(other),
        }
    }

    /// A FIPS-series device (bit 0x80).
    pub fn fips(self) -> bool {
        self.raw & 0x80 != 0
    }

    /// A Security Key series device (bit 0x40).
    pub fn security_key(self) -> bool {
        self.raw & 0x40 != 0
    }
}

/// What the slot certificate states about the device and the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    pub(crate) firmware: (u8, u8, u8),
    pub(crate) serial: u32,
    pub(crate) pin_policy: PinPolicy,
    pub(crate) touch_policy: TouchPolicy,
    pub(crate) form_factor: Option<FormFactor>,
}

fn value<'a>(
    cert: &'a Cert,
    oid: ObjectIdentifier,
    what: (&'static str, &'static str),
) -> Result<&'a [u8], AttestError> {
    cert.extension(oid)
        .map(|e| e.extn_value.as_bytes())
        .ok_or(AttestError::MissingExtension {
            name: what.0,
            oid: what.1,
        })
}

fn malformed(what: (&'static str, &'static str)) -> AttestError {
    AttestError::MalformedExtension {
        name: what.0,
        oid: what.1,
    }
}

pub(crate) fn pin_policy(byte: u8) -> Result<PinPolicy, AttestError> {
    match byte {
        1 => Ok(PinPolicy::Never),
        2 => Ok(PinPolicy::Once),
        3 => Ok(PinPolicy::Always),
        4 | 5 => Err(AttestError::UnsupportedPolicy {
            what: "PIN policy",
            value: byte,
            meaning: "biometric match",
        }),
        _ => Err(malformed(POLICY)),
    }
}

pub(crate) fn touch_policy(byte: u8) -> Result<TouchPolicy, AttestError> {
    match byte {
        1 => Ok(TouchPolicy::Never),
        2 => Ok(TouchPolicy::Always),
        3 => Ok(TouchPolicy::Cached),
        _ => Err(malformed(POLICY)),
    }
}

/// Reads Yubico's extensions from a slot attestation certificate.
pub(crate) fn facts(cert: &Cert) -> Result<Facts, AttestError> {
    let firmware = match value(cert, OID_FIRMWARE, FIRMWARE)? {
        [a, b, c] => (*a, *b, *c),
        _ => return Err(malformed(FIRMWARE)),
    };
    let serial = u32::from_der(value(cert, OID_SERIAL, SERIAL)?).map_err(|_| malformed(SERIAL))?;
    let (pin, touch) = match value(cert, OID_POLICY, POLICY)? {
        [p, t] => (pin_policy(*p)?, touch_policy(*t)?),
        _ => return Err(malformed(POLICY)),
    };
    let form_factor = match cert.extension(OID_FORM_FACTOR) {
        None => None,
        Some(ext) => match ext.extn_value.as_bytes() {
            [b] => Some(FormFactor { raw: *b }),
            _ => return Err(malformed(FORM)),
        },
    };
    Ok(Facts {
        firmware,
        serial,
        pin_policy: pin,
        touch_policy: touch,
        form_factor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bytes_map_to_the_log_types() {
        assert_eq!(pin_policy(1), Ok(PinPolicy::Never));
        assert_eq!(pin_policy(2), Ok(PinPolicy::Once));
        assert_eq!(pin_policy(3), Ok(PinPolicy::Always));
        assert!(matches!(
            pin_policy(4),
            Err(AttestError::UnsupportedPolicy { value: 4, .. })
        ));
        assert!(matches!(
            pin_policy(5),
            Err(AttestError::UnsupportedPolicy { value: 5, .. })
        ));
        assert_eq!(touch_policy(1), Ok(TouchPolicy::Never));
        assert_eq!(touch_policy(2), Ok(TouchPolicy::Always));
        assert_eq!(touch_policy(3), Ok(TouchPolicy::Cached));
        for byte in [0u8, 6, 0x20, 0xff] {
            assert!(matches!(
                pin_policy(byte),
                Err(AttestError::MalformedExtension { .. })
            ));
        }
        for byte in [0u8, 4, 0x20, 0xff] {
            assert!(matches!(
                touch_policy(byte),
                Err(AttestError::MalformedExtension { .. })
            ));
        }
    }

    #[test]
    fn form_factor_flags_and_kinds() {
        let ff = FormFactor { raw: 0xc7 };
        assert_eq!(ff.kind(), FormFactorKind::UsbCBio);
        assert!(ff.fips());
        assert!(ff.security_key());
        let ff = FormFactor { raw: 0x02 };
        assert_eq!(ff.kind(), FormFactorKind::UsbANano);
        assert!(!ff.fips() && !ff.security_key());
        assert_eq!(FormFactor { raw: 0x09 }.kind(), FormFactorKind::Other(9));
    }
}
