//! The YubiKey's PIV side: find the card, read and generate the key in slot
//! 9a, sign with it, attest it, and store its X.509 certificate.
//!
//! A [`Card`] remembers which card (by serial), never a connection: every
//! operation opens the card, does its work and drops the handle, which
//! resets the card (forgetting the verified PIN and management key) and
//! releases it, so other programs (gpg, ykman, ssh through ykcs11) can use
//! it in between. Works with any PIV card that answers like a YubiKey 5
//! behind pcscd.

mod pin;

use der::Encode as _;
use sha2::Digest as _;
use yubikey::piv::{self, AlgorithmId, ManagementSlotId, SlotAlgorithmId, SlotId};
use yubikey::{MgmAlgorithmId, MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

pub use pin::{Pin, PIN_FILE_ENV};

/// What went wrong with the card, worded for the person at the keyboard.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// No PIV card answers behind pcscd.
    #[error("no YubiKey found: plug it in (is pcscd running?)")]
    NoCard,
    /// Several cards and no serial to choose.
    #[error("several YubiKeys are present (serials {}); choose one with --serial", list(.serials))]
    SeveralCards {
        /// The serials seen.
        serials: Vec<u32>,
    },
    /// The card with the asked serial is not present.
    #[error("the YubiKey with serial {serial} is not present{}", seen(.present))]
    NotPresent {
        /// The serial asked for.
        serial: u32,
        /// The serials that are present.
        present: Vec<u32>,
    },
    /// Another program holds the card exclusively.
    #[error("the YubiKey {serial} is in use by another program; try again")]
    Busy {
        /// The card.
        serial: u32,
    },
    /// The PIN is blocked (no retries left).
    #[error(
        "the YubiKey's PIN is blocked; unblock it with the PUK (ykman piv access unblock-pin)"
    )]
    PinBlocked,
    /// The card refused the PIN.
    #[error("wrong PIN: {retries_left} {} left before the PIN is blocked", if *.retries_left == 1 { "try" } else { "tries" })]
    WrongPin {
        /// Tries left before the PIN blocks.
        retries_left: u8,
    },
    /// The operation needs the PIN and none was given.
    #[error("the key in slot 9a needs the PIN")]
    PinRequired,
    /// The PIN given is malformed, or could not be read.
    #[error("{0}")]
    PinFormat(String),
    /// The PIN file is unusable (its content is never shown).
    #[error("SIGNET_PIN_FILE {path}: {reason}")]
    PinFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The card refused a touch-policy operation after the PIN was accepted:
    /// nobody touched it in time.
    #[error("the YubiKey was not touched in time (it waits about 15 s); try again and touch it when it blinks")]
    TouchTimeout,
    /// Slot 9a holds no key.
    #[error("slot 9a of the YubiKey holds no key; `signet login` generates one")]
    SlotEmpty,
    /// The card cannot do what is asked (old firmware, unsupported key type).
    #[error("{0}")]
    Unsupported(String),
    /// The management key is needed and the card's is neither the default
    /// nor stored PIN-protected.
    #[error("the YubiKey's management key is neither the factory default nor stored PIN-protected; Signet cannot change slot 9a (use `ykman piv access change-management-key --protect`)")]
    ManagementKey,
    /// Any other failure of the card or of PC/SC.
    #[error("the YubiKey failed to {operation}: {detail}")]
    Card {
        /// What was being done.
        operation: &'static str,
        /// What the card or PC/SC said.
        detail: String,
    },
}

fn list(serials: &[u32]) -> String {
    serials
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn seen(present: &[u32]) -> String {
    if present.is_empty() {
        " (no YubiKey is)".into()
    } else {
        format!(" (present: {})", list(present))
    }
}

/// The key types slot 9a may hold for Signet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA P-256 (signs SHA-256 digests).
    P256,
    /// ECDSA P-384 (signs SHA-384 digests).
    P384,
}

impl KeyAlgorithm {
    fn to_yubikey(self) -> AlgorithmId {
        match self {
            Self::P256 => AlgorithmId::EccP256,
            Self::P384 => AlgorithmId::EccP384,
        }
    }

    /// The digest the key signs: SHA-256 for P-256, SHA-384 for P-384 (as
    /// OpenSSH's ecdsa-sha2-nistp256/384 and X.509 ecdsa-with-SHA256/384 use).
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::P256 => sha2::Sha256::digest(data).to_vec(),
            Self::P384 => sha2::Sha384::digest(data).to_vec(),
        }
    }
}

/// When the key needs the PIN (PIV PIN policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPinPolicy {
    /// Never.
    Never,
    /// Once per card session.
    Once,
    /// Before every signature.
    Always,
}

/// When the key needs a touch (PIV touch policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyTouchPolicy {
    /// Never.
    Never,
    /// For every signature.
    Always,
    /// Once, then for 15 s without.
    Cached,
}

impl KeyPinPolicy {
    fn to_yubikey(self) -> PinPolicy {
        match self {
            Self::Never => PinPolicy::Never,
            Self::Once => PinPolicy::Once,
            Self::Always => PinPolicy::Always,
        }
    }

    fn from_yubikey(policy: PinPolicy) -> Self {
        match policy {
            PinPolicy::Never => Self::Never,
            PinPolicy::Always => Self::Always,
            // Slot 9a's default is "once".
            PinPolicy::Once | PinPolicy::Default => Self::Once,
        }
    }

    /// The name used in certificates and the CA's answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Once => "once",
            Self::Always => "always",
        }
    }

    /// The policy with this name (`never`, `once`, `always`).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Never, Self::Once, Self::Always]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

impl KeyTouchPolicy {
    fn to_yubikey(self) -> TouchPolicy {
        match self {
            Self::Never => TouchPolicy::Never,
            Self::Always => TouchPolicy::Always,
            Self::Cached => TouchPolicy::Cached,
        }
    }

    fn from_yubikey(policy: TouchPolicy) -> Self {
        match policy {
            TouchPolicy::Always => Self::Always,
            TouchPolicy::Cached => Self::Cached,
            // Slot 9a's default is "never".
            TouchPolicy::Never | TouchPolicy::Default => Self::Never,
        }
    }

    /// The name used in certificates and the CA's answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Always => "always",
            Self::Cached => "cached",
        }
    }

    /// The policy with this name (`never`, `always`, `cached`).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Never, Self::Always, Self::Cached]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// The key in slot 9a, as the card describes it (GET METADATA).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotKey {
    /// Key type.
    pub algorithm: KeyAlgorithm,
    /// PIN policy.
    pub pin_policy: KeyPinPolicy,
    /// Touch policy.
    pub touch_policy: KeyTouchPolicy,
    /// Generated on the card (only those can be attested).
    pub generated: bool,
    /// The public key, DER SubjectPublicKeyInfo.
    #[serde(skip)]
    pub spki_der: Vec<u8>,
}

/// What the card says about its access secrets (GET METADATA, firmware 5.3+).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Defaults {
    /// The PIN is the factory default (123456).
    pub pin: Option<bool>,
    /// The PUK is the factory default (12345678).
    pub puk: Option<bool>,
    /// The management key is the factory default.
    pub management_key: Option<bool>,
    /// A management key is stored on the card, PIN-protected.
    pub management_key_protected: bool,
}

/// One YubiKey, by serial. See the module documentation: no connection is
/// held between operations.
#[derive(Debug, Clone)]
pub struct Card {
    serial: u32,
    version: String,
    reader: String,
}

fn card_error(serial: u32, operation: &'static str, err: yubikey::Error) -> CardError {
    use yubikey::Error as Yk;
    match err {
        Yk::PcscError {
            inner: Some(pcsc::Error::SharingViolation),
        } => CardError::Busy { serial },
        Yk::PcscError {
            inner:
                Some(
                    pcsc::Error::NoService
                    | pcsc::Error::ServiceStopped
                    | pcsc::Error::NoReadersAvailable
                    | pcsc::Error::RemovedCard
                    | pcsc::Error::NoSmartcard,
                ),
        } => CardError::NotPresent {
            serial,
            present: Vec::new(),
        },
        Yk::PinLocked | Yk::WrongPin { tries: 0 } => CardError::PinBlocked,
        Yk::WrongPin { tries } => CardError::WrongPin {
            retries_left: tries,
        },
        other => CardError::Card {
            operation,
            detail: other.to_string(),
        },
    }
}

/// The serials of every PIV card present (readers whose card does not
/// answer the PIV applet are skipped).
pub fn list_serials() -> Result<Vec<u32>, CardError> {
    let mut ctx = match yubikey::reader::Context::open() {
        Ok(ctx) => ctx,
        Err(_) => return Ok(Vec::new()),
    };
    let readers = match ctx.iter() {
        Ok(readers) => readers,
        // pcscd running but no readers at all.
        Err(_) => return Ok(Vec::new()),
    };
    let mut serials = Vec::new();
    for reader in readers {
        if let Ok(yk) = reader.open() {
            serials.push(yk.serial().0);
        }
    }
    serials.sort_unstable();
    serials.dedup();
    Ok(serials)
}

impl Card {
    /// Finds the card: the one with `serial`, or the only one present.
    /// Fails with a clear message when none is present, when several are and
    /// no serial was given, or when its PIN is blocked.
    pub fn open(serial: Option<u32>) -> Result<Self, CardError> {
        let present = list_serials()?;
        let serial = match (serial, present.as_slice()) {
            (Some(s), _) if present.contains(&s) => s,
            (Some(s), _) => return Err(CardError::NotPresent { serial: s, present }),
            (None, []) => return Err(CardError::NoCard),
            (None, [one]) => *one,
            (None, _) => return Err(CardError::SeveralCards { serials: present }),
        };
        let mut yk =
            YubiKey::open_by_serial(Serial(serial)).map_err(|e| card_error(serial, "open", e))?;
        let card = Self {
            serial,
            version: yk.version().to_string(),
            reader: yk.name().to_owned(),
        };
        let retries = yk
            .get_pin_retries()
            .map_err(|e| card_error(serial, "read the PIN retry counter", e))?;
        if retries == 0 {
            return Err(CardError::PinBlocked);
        }
        Ok(card)
    }

    /// The card's serial number.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The firmware version, e.g. `5.4.3`.
    pub fn firmware(&self) -> &str {
        &self.version
    }

    /// The PC/SC reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    fn connect(&self) -> Result<YubiKey, CardError> {
        YubiKey::open_by_serial(Serial(self.serial)).map_err(|e| {
            match card_error(self.serial, "open", e) {
                CardError::Card { .. } | CardError::NotPresent { .. } => CardError::NotPresent {
                    serial: self.serial,
                    present: list_serials().unwrap_or_default(),
                },
                other => other,
            }
        })
    }

    fn err(&self, operation: &'static str) -> impl Fn(yubikey::Error) -> CardError + '_ {
        move |e| card_error(self.serial, operation, e)
    }

    /// The PIN tries left (asking costs none).
    pub fn pin_retries(&self) -> Result<u8, CardError> {
        let mut yk = self.connect()?;
        yk.get_pin_retries()
            .map_err(self.err("read the PIN retry counter"))
    }

    /// Verifies the PIN on an open handle, mapping a refusal to the tries left.
    fn verify_pin(&self, yk: &mut YubiKey, pin: &Pin) -> Result<(), CardError> {
        yk.verify_pin(pin.expose())
            .map_err(self.err("verify the PIN"))
    }

    /// Checks the PIN (uses a try only when it is wrong).
    pub fn check_pin(&self, pin: &Pin) -> Result<(), CardError> {
        let mut yk = self.connect()?;
        self.verify_pin(&mut yk, pin)
    }

    /// The key in slot 9a, or `None` when the slot is empty.
    pub fn slot_9a(&self) -> Result<Option<SlotKey>, CardError> {
        let mut yk = self.connect()?;
        read_slot(&mut yk, self.serial)
    }

    /// The public key in slot 9a (DER SubjectPublicKeyInfo).
    pub fn public_key_9a(&self) -> Result<Vec<u8>, CardError> {
        self.slot_9a()?
            .map(|k| k.spki_der)
            .ok_or(CardError::SlotEmpty)
    }

    /// Signs `data` with the key in slot 9a: hashes it as the key type
    /// demands ([`KeyAlgorithm::digest`]), verifies the PIN first when one
    /// is given, and returns the DER ECDSA signature. With touch policy
    /// `always`/`cached` the card waits for a touch (up to ~15 s).
    pub fn sign_slot_9a(&self, pin: Option<&Pin>, data: &[u8]) -> Result<Vec<u8>, CardError> {
        let mut yk = self.connect()?;
        let key = read_slot(&mut yk, self.serial)?.ok_or(CardError::SlotEmpty)?;
        if let Some(pin) = pin {
            self.verify_pin(&mut yk, pin)?;
        } else if key.pin_policy != KeyPinPolicy::Never {
            return Err(CardError::PinRequired);
        }
        let digest = key.algorithm.digest(data);
        match piv::sign_data(
            &mut yk,
            &digest,
            key.algorithm.to_yubikey(),
            SlotId::Authentication,
        ) {
            Ok(sig) => Ok(sig.to_vec()),
            Err(yubikey::Error::AuthenticationError | yubikey::Error::GenericError)
                if key.touch_policy != KeyTouchPolicy::Never =>
            {
                Err(CardError::TouchTimeout)
            }
            Err(e) => Err(card_error(self.serial, "sign", e)),
        }
    }

    /// Whether the PIN, PUK and management key are the factory defaults,
    /// and whether a PIN-protected management key is stored.
    pub fn defaults(&self) -> Result<Defaults, CardError> {
        let mut yk = self.connect()?;
        let mut out = Defaults::default();
        let default_of = |yk: &mut YubiKey, slot| match piv::metadata(yk, slot) {
            Ok(meta) => Ok(meta.default),
            Err(yubikey::Error::NotSupported | yubikey::Error::NotFound) => Ok(None),
            Err(e) => Err(card_error(self.serial, "read the card's metadata", e)),
        };
        out.pin = default_of(&mut yk, SlotId::Management(ManagementSlotId::Pin))?;
        out.puk = default_of(&mut yk, SlotId::Management(ManagementSlotId::Puk))?;
        out.management_key = default_of(&mut yk, SlotId::Management(ManagementSlotId::Management))?;
        out.management_key_protected = protected_flag(&mut yk);
        Ok(out)
    }

    /// Authenticates with the management key: the PIN-protected one when
    /// the card stores one (needs the PIN), else the factory default.
    fn authenticate(&self, yk: &mut YubiKey, pin: Option<&Pin>) -> Result<(), CardError> {
        if protected_flag(yk) {
            let pin = pin.ok_or(CardError::PinRequired)?;
            self.verify_pin(yk, pin)?;
            let key = MgmKey::get_protected(yk).map_err(|_| CardError::ManagementKey)?;
            return yk.authenticate(&key).map_err(|_| CardError::ManagementKey);
        }
        let key = MgmKey::get_default(yk).map_err(self.err("choose the default management key"))?;
        yk.authenticate(&key).map_err(|e| match e {
            yubikey::Error::AuthenticationError => CardError::ManagementKey,
            other => card_error(self.serial, "authenticate with the management key", other),
        })
    }

    /// Generates a new key in slot 9a (replacing any), authenticating with
    /// the management key as [`Card`] can (PIN-protected or default).
    pub fn generate_9a(
        &self,
        pin: Option<&Pin>,
        algorithm: KeyAlgorithm,
        pin_policy: KeyPinPolicy,
        touch_policy: KeyTouchPolicy,
    ) -> Result<SlotKey, CardError> {
        let mut yk = self.connect()?;
        self.authenticate(&mut yk, pin)?;
        let spki = piv::generate(
            &mut yk,
            SlotId::Authentication,
            algorithm.to_yubikey(),
            pin_policy.to_yubikey(),
            touch_policy.to_yubikey(),
        )
        .map_err(self.err("generate a key in slot 9a"))?;
        let spki_der = spki.to_der().map_err(|_| CardError::Card {
            operation: "generate a key in slot 9a",
            detail: "the card returned a malformed public key".into(),
        })?;
        Ok(SlotKey {
            algorithm,
            pin_policy,
            touch_policy,
            generated: true,
            spki_der,
        })
    }

    /// The attestation of slot 9a (DER, signed by the card's f9 key) and
    /// the card's f9 certificate (DER): what the CA's `attestation` field takes.
    pub fn attest_9a(&self) -> Result<(Vec<u8>, Vec<u8>), CardError> {
        let mut yk = self.connect()?;
        let statement = match piv::attest(&mut yk, SlotId::Authentication) {
            Ok(der) => der.to_vec(),
            Err(yubikey::Error::NotSupported) => {
                return Err(CardError::Unsupported(
                    "the key in slot 9a cannot be attested (it was imported, not generated on the card)"
                        .into(),
                ))
            }
            Err(e) => return Err(card_error(self.serial, "attest slot 9a", e)),
        };
        let device = yubikey::certificate::Certificate::read(&mut yk, SlotId::Attestation)
            .map_err(self.err("read the f9 attestation certificate"))?;
        let device = device.cert.to_der().map_err(|_| CardError::Card {
            operation: "read the f9 attestation certificate",
            detail: "malformed certificate".into(),
        })?;
        Ok((statement, device))
    }

    /// The X.509 certificate stored in slot 9a (DER), if any.
    pub fn certificate_9a(&self) -> Result<Option<Vec<u8>>, CardError> {
        let mut yk = self.connect()?;
        match yubikey::certificate::Certificate::read(&mut yk, SlotId::Authentication) {
            Ok(cert) => cert.cert.to_der().map(Some).map_err(|_| CardError::Card {
                operation: "read the slot 9a certificate",
                detail: "malformed certificate".into(),
            }),
            Err(yubikey::Error::InvalidObject | yubikey::Error::NotFound) => Ok(None),
            Err(e) => Err(card_error(self.serial, "read the slot 9a certificate", e)),
        }
    }

    /// Stores `der` (an X.509 certificate) in slot 9a's certificate object.
    pub fn write_certificate_9a(&self, pin: Option<&Pin>, der: &[u8]) -> Result<(), CardError> {
        let cert = yubikey::certificate::Certificate::from_bytes(der.to_vec()).map_err(|e| {
            CardError::Card {
                operation: "parse the certificate to store",
                detail: e.to_string(),
            }
        })?;
        let mut yk = self.connect()?;
        self.authenticate(&mut yk, pin)?;
        cert.write(
            &mut yk,
            SlotId::Authentication,
            yubikey::certificate::CertInfo::Uncompressed,
        )
        .map_err(self.err("store the certificate in slot 9a"))
    }

    /// Removes the certificate from slot 9a (the key stays).
    pub fn delete_certificate_9a(&self, pin: Option<&Pin>) -> Result<(), CardError> {
        let mut yk = self.connect()?;
        self.authenticate(&mut yk, pin)?;
        yubikey::certificate::Certificate::delete(&mut yk, SlotId::Authentication)
            .map_err(self.err("remove the certificate from slot 9a"))
    }

    /// Replaces the factory-default management key with a random one
    /// stored on the card, PIN-protected (as yubikey-agent does): only
    /// someone with the PIN can then change keys. Needs the PIN.
    pub fn protect_management_key(&self, pin: &Pin) -> Result<(), CardError> {
        let mut yk = self.connect()?;
        self.verify_pin(&mut yk, pin)?;
        self.authenticate(&mut yk, Some(pin))?;
        let algorithm = management_algorithm(&mut yk);
        let len = match algorithm {
            MgmAlgorithmId::Aes128 => 16,
            MgmAlgorithmId::Aes256 => 32,
            MgmAlgorithmId::ThreeDes | MgmAlgorithmId::Aes192 => 24,
        };
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; len]);
        getrandom::fill(&mut bytes).map_err(|e| CardError::Card {
            operation: "make a random management key",
            detail: e.to_string(),
        })?;
        let key = MgmKey::from_bytes(&*bytes, Some(algorithm)).map_err(|e| CardError::Card {
            operation: "make a random management key",
            detail: e.to_string(),
        })?;
        key.set_protected(&mut yk)
            .map_err(self.err("store the new management key"))
    }
}

fn management_algorithm(yk: &mut YubiKey) -> MgmAlgorithmId {
    match piv::metadata(yk, SlotId::Management(ManagementSlotId::Management)) {
        Ok(meta) => match meta.algorithm {
            SlotAlgorithmId::Management(alg) => alg,
            _ => MgmAlgorithmId::ThreeDes,
        },
        Err(_) => MgmAlgorithmId::ThreeDes,
    }
}

/// Whether the card's admin data says a PIN-protected management key is
/// stored (the flag yubikey-agent and ykman set).
fn protected_flag(yk: &mut YubiKey) -> bool {
    yk.config()
        .map(|c| c.mgm_type == yubikey::mgm::MgmType::Protected)
        .unwrap_or(false)
}

fn read_slot(yk: &mut YubiKey, serial: u32) -> Result<Option<SlotKey>, CardError> {
    let meta =
        match piv::metadata(yk, SlotId::Authentication) {
            Ok(meta) => meta,
            Err(yubikey::Error::NotFound) => return Ok(None),
            Err(yubikey::Error::NotSupported) => return Err(CardError::Unsupported(
                "the YubiKey cannot describe its keys (GET METADATA needs firmware 5.3 or later)"
                    .into(),
            )),
            Err(e) => return Err(card_error(serial, "read slot 9a", e)),
        };
    let algorithm = match meta.algorithm {
        SlotAlgorithmId::Asymmetric(AlgorithmId::EccP256) => KeyAlgorithm::P256,
        SlotAlgorithmId::Asymmetric(AlgorithmId::EccP384) => KeyAlgorithm::P384,
        SlotAlgorithmId::Asymmetric(other) => {
            return Err(CardError::Unsupported(format!(
                "slot 9a holds a {other:?} key; Signet uses ECDSA P-256 or P-384 (`signet login --new-key` replaces it)"
            )))
        }
        _ => {
            return Err(CardError::Card {
                operation: "read slot 9a",
                detail: "the card describes slot 9a as not a key slot".into(),
            })
        }
    };
    let (pin, touch) = meta
        .policy
        .unwrap_or((PinPolicy::Default, TouchPolicy::Default));
    let spki = meta.public.ok_or(CardError::Card {
        operation: "read slot 9a",
        detail: "the card gave no public key".into(),
    })?;
    let spki_der = spki.to_der().map_err(|_| CardError::Card {
        operation: "read slot 9a",
        detail: "the card gave a malformed public key".into(),
    })?;
    Ok(Some(SlotKey {
        algorithm,
        pin_policy: KeyPinPolicy::from_yubikey(pin),
        touch_policy: KeyTouchPolicy::from_yubikey(touch),
        generated: meta.origin == Some(piv::Origin::Generated),
        spki_der,
    }))
}
