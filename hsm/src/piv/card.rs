//! The card worker: the only code that talks PC/SC. It runs on the PIV
//! backend's worker thread, opens the card by serial for each job and
//! releases it (with a reset, so no verified PIN is left behind) when the
//! job ends.

use der::Encode;
use yubikey::piv::{self, ManagementSlotId, SlotAlgorithmId, SlotId};
use yubikey::{MgmAlgorithmId, MgmKey, Serial, YubiKey};
use zeroize::Zeroizing;

use super::types::{PivAlgorithm, PivPinPolicy, PivSlot, PivTouchPolicy};
use super::{PivAttestation, PivManagementKey};
use crate::secret_file::read_secret_file;
use crate::{Error, Pin, PublicKey, Result};

/// What the card says about a key in a slot.
#[derive(Debug, Clone)]
pub(crate) struct SlotFacts {
    pub(crate) algorithm: PivAlgorithm,
    pub(crate) pin_policy: PivPinPolicy,
    pub(crate) touch_policy: PivTouchPolicy,
    pub(crate) generated: bool,
    pub(crate) public_key: PublicKey,
}

/// The worker's state: which card, and the PIN (once refused, never sent again).
pub(crate) struct CardWorker {
    serial: u32,
    pin: Option<Pin>,
    pin_refused: bool,
}

/// Maps a `yubikey` error to ours, naming the operation.
pub(crate) fn card_error(serial: u32, operation: &'static str, err: yubikey::Error) -> Error {
    use yubikey::Error as Yk;
    match err {
        Yk::NotFound => Error::PivCardNotFound { serial },
        Yk::PcscError {
            inner: Some(pcsc::Error::SharingViolation),
        } => Error::PivCardBusy { serial },
        Yk::PcscError {
            inner:
                Some(
                    pcsc::Error::NoService
                    | pcsc::Error::ServiceStopped
                    | pcsc::Error::NoReadersAvailable,
                ),
        } => Error::PivCardNotFound { serial },
        Yk::PinLocked | Yk::WrongPin { tries: 0 } => Error::PivPinBlocked,
        Yk::WrongPin { tries } => Error::PivPinIncorrect {
            retries_left: tries,
        },
        other => Error::Piv {
            operation,
            detail: other.to_string(),
        },
    }
}

impl CardWorker {
    pub(crate) fn new(serial: u32, pin: Option<Pin>) -> Self {
        Self {
            serial,
            pin,
            pin_refused: false,
        }
    }

    /// Opens the card by serial. The handle resets and releases the card
    /// when dropped, at the end of the job.
    pub(crate) fn open(&self) -> Result<YubiKey> {
        YubiKey::open_by_serial(Serial(self.serial)).map_err(|e| card_error(self.serial, "open", e))
    }

    fn err(&self, operation: &'static str) -> impl Fn(yubikey::Error) -> Error + '_ {
        move |e| card_error(self.serial, operation, e)
    }

    /// Verifies the PIN once. A refused PIN is reported with the retries
    /// left and never sent again by this worker.
    fn verify_pin(&mut self, yk: &mut YubiKey, slot: PivSlot) -> Result<()> {
        if self.pin_refused {
            return Err(Error::PivPinNotRetried);
        }
        let pin = self.pin.as_ref().ok_or(Error::PivPinRequired { slot })?;
        match yk.verify_pin(pin.expose().as_bytes()) {
            Ok(()) => Ok(()),
            Err(err @ (yubikey::Error::WrongPin { .. } | yubikey::Error::PinLocked)) => {
                self.pin_refused = true;
                Err(card_error(self.serial, "verify the PIN", err))
            }
            Err(err) => Err(card_error(self.serial, "verify the PIN", err)),
        }
    }

    /// The PIN retries left (asking does not use one up).
    pub(crate) fn pin_retries(&mut self) -> Result<u8> {
        let mut yk = self.open()?;
        yk.get_pin_retries()
            .map_err(self.err("read the PIN retry counter"))
    }

    /// Reads the slot's key type, policies and public key (GET METADATA,
    /// firmware 5.3 or later).
    pub(crate) fn slot_facts(&mut self, slot: PivSlot) -> Result<SlotFacts> {
        let mut yk = self.open()?;
        self.read_facts(&mut yk, slot)
    }

    fn read_facts(&self, yk: &mut YubiKey, slot: PivSlot) -> Result<SlotFacts> {
        let meta = match piv::metadata(yk, slot.to_yubikey()?) {
            Ok(meta) => meta,
            Err(yubikey::Error::NotFound) => return Err(Error::PivSlotEmpty { slot }),
            Err(yubikey::Error::NotSupported) => {
                return Err(Error::PivUnsupported(
                    "the YubiKey has no GET METADATA (firmware before 5.3)".into(),
                ))
            }
            Err(e) => return Err(card_error(self.serial, "read the slot metadata", e)),
        };
        let algorithm = match meta.algorithm {
            SlotAlgorithmId::Asymmetric(id) => PivAlgorithm::from_yubikey(id)?,
            _ => return Err(Error::MalformedTokenData("slot metadata (not a key slot)")),
        };
        let (pin, touch) = meta
            .policy
            .ok_or(Error::MalformedTokenData("slot metadata without policies"))?;
        let spki = meta.public.ok_or(Error::MalformedTokenData(
            "slot metadata without a public key",
        ))?;
        let public_key = public_key_of(&spki)?;
        Ok(SlotFacts {
            algorithm,
            pin_policy: PivPinPolicy::from_yubikey(pin, slot),
            touch_policy: PivTouchPolicy::from_yubikey(touch),
            generated: meta.origin == Some(piv::Origin::Generated),
            public_key,
        })
    }

    /// Signs `input` (a digest for ECDSA, a padded block for RSA) with the
    /// key in `slot`, verifying the PIN first if the key's policy asks for it.
    /// Returns what the card returns (DER for ECDSA).
    pub(crate) fn sign(
        &mut self,
        slot: PivSlot,
        algorithm: PivAlgorithm,
        pin_policy: PivPinPolicy,
        touch_policy: PivTouchPolicy,
        input: &[u8],
    ) -> Result<Vec<u8>> {
        let mut yk = self.open()?;
        if pin_policy != PivPinPolicy::Never {
            self.verify_pin(&mut yk, slot)?;
        }
        match piv::sign_data(&mut yk, input, algorithm.to_yubikey(), slot.to_yubikey()?) {
            Ok(sig) => Ok(sig.to_vec()),
            // The PIN is verified (or not needed) at this point, so a refusal
            // of a touch-policy key means no touch came.
            Err(yubikey::Error::AuthenticationError) if touch_policy != PivTouchPolicy::Never => {
                Err(Error::PivTouchRequired { slot })
            }
            Err(yubikey::Error::AuthenticationError) => Err(Error::PivNotAuthorized { slot }),
            Err(e) => Err(card_error(self.serial, "sign", e)),
        }
    }

    fn authenticate(&mut self, yk: &mut YubiKey, source: &PivManagementKey) -> Result<()> {
        let key = match source {
            PivManagementKey::FactoryDefault => {
                MgmKey::get_default(yk).map_err(self.err("choose the default management key"))?
            }
            PivManagementKey::File(path) => {
                let bytes = read_hex_key(path)?;
                let algorithm = management_algorithm(yk)
                    .map_err(self.err("read the management key's algorithm"))?;
                MgmKey::from_bytes(&*bytes, Some(algorithm)).map_err(|_| {
                    Error::PivManagementKey(format!(
                        "{} does not hold a {algorithm:?} management key",
                        path.display()
                    ))
                })?
            }
            PivManagementKey::PinProtected => {
                if self.pin.is_none() {
                    return Err(Error::PivManagementKey(
                        "the PIN-protected management key needs the PIN, and no PIN source is configured"
                            .into(),
                    ));
                }
                self.verify_pin(yk, PivSlot::Authentication)?;
                MgmKey::get_protected(yk).map_err(|_| {
                    Error::PivManagementKey("the card holds no PIN-protected management key".into())
                })?
            }
        };
        yk.authenticate(&key).map_err(|e| match e {
            yubikey::Error::AuthenticationError => {
                Error::PivManagementKey("the card refused the management key".into())
            }
            other => card_error(self.serial, "authenticate with the management key", other),
        })
    }

    /// Whether the card still uses the factory-default management key, with
    /// which anyone holding the card can generate or replace keys. Read from
    /// GET METADATA of slot 9b (firmware 5.3+); older cards are asked to
    /// authenticate with the default key (a wrong management key costs no
    /// retries: it has no retry counter).
    pub(crate) fn uses_default_management_key(&mut self) -> Result<bool> {
        let mut yk = self.open()?;
        match piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Management)) {
            Ok(meta) => {
                if let Some(default) = meta.default {
                    return Ok(default);
                }
            }
            Err(yubikey::Error::NotSupported) => {}
            Err(e) => {
                return Err(card_error(
                    self.serial,
                    "read the management key metadata",
                    e,
                ))
            }
        }
        let key =
            MgmKey::get_default(&yk).map_err(self.err("choose the default management key"))?;
        match yk.authenticate(&key) {
            Ok(()) => Ok(true),
            Err(yubikey::Error::AuthenticationError) => Ok(false),
            Err(e) => Err(card_error(self.serial, "test the management key", e)),
        }
    }

    /// Generates a key in `slot`. Refuses to replace a key unless told to.
    pub(crate) fn generate(
        &mut self,
        slot: PivSlot,
        algorithm: PivAlgorithm,
        pin_policy: PivPinPolicy,
        touch_policy: PivTouchPolicy,
        management_key: &PivManagementKey,
        replace: bool,
    ) -> Result<SlotFacts> {
        let mut yk = self.open()?;
        if !replace {
            match self.read_facts(&mut yk, slot) {
                Err(Error::PivSlotEmpty { .. }) => {}
                Ok(_) => return Err(Error::PivSlotOccupied { slot }),
                Err(e) => return Err(e),
            }
        }
        self.authenticate(&mut yk, management_key)?;
        let spki = piv::generate(
            &mut yk,
            slot.to_yubikey()?,
            algorithm.to_yubikey(),
            pin_policy.to_yubikey(),
            touch_policy.to_yubikey(),
        )
        .map_err(self.err("generate a key"))?;
        Ok(SlotFacts {
            algorithm,
            pin_policy,
            touch_policy,
            generated: true,
            public_key: public_key_of(&spki)?,
        })
    }

    /// The card's `f9` attestation certificate (DER).
    pub(crate) fn device_certificate(&mut self) -> Result<Vec<u8>> {
        let mut yk = self.open()?;
        let device = yubikey::certificate::Certificate::read(&mut yk, SlotId::Attestation)
            .map_err(self.err("read the f9 attestation certificate"))?;
        device
            .cert
            .to_der()
            .map_err(|_| Error::MalformedTokenData("f9 attestation certificate"))
    }

    /// The slot's attestation certificate and the card's `f9` certificate.
    pub(crate) fn attest(&mut self, slot: PivSlot) -> Result<PivAttestation> {
        let mut yk = self.open()?;
        let certificate = match piv::attest(&mut yk, slot.to_yubikey()?) {
            Ok(der) => der.to_vec(),
            Err(yubikey::Error::NotSupported) => {
                return Err(Error::PivUnsupported(format!(
                    "the key in slot {slot} cannot be attested (imported keys cannot)"
                )))
            }
            Err(e) => return Err(card_error(self.serial, "attest", e)),
        };
        let device = yubikey::certificate::Certificate::read(&mut yk, SlotId::Attestation)
            .map_err(self.err("read the f9 attestation certificate"))?;
        let device_certificate = device
            .cert
            .to_der()
            .map_err(|_| Error::MalformedTokenData("f9 attestation certificate"))?;
        Ok(PivAttestation {
            certificate,
            device_certificate,
        })
    }
}

fn public_key_of(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<PublicKey> {
    let der_bytes = spki
        .to_der()
        .map_err(|_| Error::MalformedTokenData("public key from the card"))?;
    PublicKey::from_spki_der(&der_bytes)
}

fn management_algorithm(yk: &mut YubiKey) -> yubikey::Result<MgmAlgorithmId> {
    match piv::metadata(yk, SlotId::Management(ManagementSlotId::Management)) {
        Ok(meta) => match meta.algorithm {
            SlotAlgorithmId::Management(alg) => Ok(alg),
            _ => Err(yubikey::Error::InvalidObject),
        },
        // Cards without GET METADATA only know 3DES management keys.
        Err(yubikey::Error::NotSupported) => Ok(MgmAlgorithmId::ThreeDes),
        Err(e) => Err(e),
    }
}

/// Reads a management key file: hex digits on one line. The file gets the
/// PIN file's rules (opened once, checked on the open handle: no symbolic
/// link, no FIFO, owner-only, at most 256 bytes). The content never appears
/// in an error.
fn read_hex_key(path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |reason: &str| {
        Error::PivManagementKey(format!("management key file {} {reason}", path.display()))
    };
    let text = read_secret_file(path).map_err(|problem| bad(problem.reason()))?;
    let digits: Zeroizing<Vec<u8>> = Zeroizing::new(
        text.iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect(),
    );
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(bad("does not hold an even number of hex digits"));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut key = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
    for pair in digits.chunks_exact(2) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => key.push(hi << 4 | lo),
            _ => return Err(bad("holds something other than hex digits")),
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn management_key_file_is_hex_and_never_echoed() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "0102030405060708 0102030405060708\n0102030405060708").unwrap();
        assert_eq!(read_hex_key(file.path()).unwrap().len(), 24);

        let mut bad = tempfile::NamedTempFile::new().unwrap();
        write!(bad, "secretzz").unwrap();
        let err = read_hex_key(bad.path()).unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn management_key_file_gets_the_pin_file_rules() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let owner_only = |path: &std::path::Path| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        let good = dir.path().join("mgm");
        std::fs::write(&good, "010203040506070801020304050607080102030405060708\n").unwrap();
        owner_only(&good);
        assert_eq!(read_hex_key(&good).unwrap().len(), 24);

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let big = dir.path().join("big");
        std::fs::write(&big, "01".repeat(200)).unwrap();
        owner_only(&big);
        let open = dir.path().join("open");
        std::fs::write(&open, "010203040506070801020304050607080102030405060708\n").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o640)).unwrap();
        for (path, expected) in [
            (&link, "is a symbolic link"),
            (&fifo, "is not a regular file"),
            (&big, "is larger than 256 bytes"),
            (&open, "chmod 600"),
        ] {
            let err = read_hex_key(path).unwrap_err().to_string();
            assert!(
                err.contains(&format!("management key file {}", path.display())),
                "{err}"
            );
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("0102"), "{err}");
        }
    }

    #[test]
    fn card_errors_say_what_to_do() {
        let text = card_error(7, "sign", yubikey::Error::WrongPin { tries: 2 }).to_string();
        assert!(text.contains("2 tries left"), "{text}");
        let text = card_error(7, "sign", yubikey::Error::NotFound).to_string();
        assert!(text.contains("serial 7"), "{text}");
        assert!(matches!(
            card_error(7, "sign", yubikey::Error::WrongPin { tries: 0 }),
            Error::PivPinBlocked
        ));
    }
}
