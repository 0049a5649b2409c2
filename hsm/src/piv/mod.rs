//! The YubiKey PIV backend: a signing key in a PIV slot, used through the
//! same [`SigningBackend`](crate::SigningBackend) as a PKCS#11 token key, so
//! [`SshSigner`](crate::SshSigner) and [`X509Signer`](crate::X509Signer)
//! sign with either.
//!
//! Hardware rules:
//! - The card is opened by serial for each operation and released right
//!   after: a PC/SC transaction blocks every other program (ssh-agent,
//!   yubico-piv-tool, the browser), so it is never held between operations.
//!   Releasing resets the card, which forgets the verified PIN: a key with
//!   PIN policy "once" gets the PIN verified at every operation.
//! - Every PC/SC call runs on one worker thread (a pool of one), reached
//!   through [`Reply`], so async callers never block.
//! - The PIN comes from a [`PinSource`] and lives in a
//!   zeroizing [`Pin`](crate::Pin). A refused PIN is reported with the tries
//!   left and never sent again by this handle: retries would block the card.
//! - A key whose touch policy asks for a touch fails with
//!   [`Error::PivTouchRequired`] when no touch comes.

mod card;
mod types;

use std::path::PathBuf;
use std::sync::Arc;

use sha2::Digest;
use signature::hazmat::PrehashVerifier;

use crate::pool::WorkerPool;
use crate::{Error, PinSource, PublicKey, Reply, Result, RsaHash};
use card::{CardWorker, SlotFacts};

pub use types::{PivAlgorithm, PivPinPolicy, PivSlot, PivTouchPolicy};

/// Which card, and where its PIN comes from.
#[derive(Debug, Clone)]
pub struct PivConfig {
    /// The YubiKey's serial number (printed on it; `ykman list`).
    pub serial: u32,
    /// Where the PIV PIN comes from; `None` for keys whose PIN policy is
    /// "never" only.
    pub pin: Option<PinSource>,
}

/// Where the management key (needed to generate keys) comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PivManagementKey {
    /// The factory default key. Only for test and freshly reset cards.
    FactoryDefault,
    /// A file holding the key in hex (its algorithm is read from the card).
    File(PathBuf),
    /// The key stored on the card, protected by the PIN (`ykman piv
    /// access change-management-key --protect`).
    PinProtected,
}

impl std::fmt::Debug for PivManagementKey {
    // Names where the key lives, never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FactoryDefault => f.write_str("PivManagementKey::FactoryDefault"),
            Self::File(path) => write!(f, "PivManagementKey::File({})", path.display()),
            Self::PinProtected => f.write_str("PivManagementKey::PinProtected"),
        }
    }
}

/// What to generate in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PivKeySpec {
    /// Key type.
    pub algorithm: PivAlgorithm,
    /// When the PIN is needed.
    pub pin_policy: PivPinPolicy,
    /// When a touch is needed.
    pub touch_policy: PivTouchPolicy,
}

/// A key's attestation: the slot's certificate issued by the card's `f9`
/// key, and the `f9` certificate (which chains to the vendor's root). DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PivAttestation {
    /// The attestation certificate of the slot's key.
    pub certificate: Vec<u8>,
    /// The card's attestation (`f9`) certificate that signed it.
    pub device_certificate: Vec<u8>,
}

/// A YubiKey reached by serial through PC/SC, with its worker thread. Clone
/// it freely: clones share the worker, which stops with the last clone.
/// Holding a `PivDevice` does not hold the card.
#[derive(Clone)]
pub struct PivDevice {
    inner: Arc<DeviceInner>,
}

struct DeviceInner {
    serial: u32,
    pool: WorkerPool<CardWorker>,
}

impl std::fmt::Debug for PivDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PivDevice")
            .field("serial", &self.inner.serial)
            .finish()
    }
}

impl PivDevice {
    /// Reads the PIN (if configured), starts the worker and checks that the
    /// card is present (opening and releasing it once).
    pub fn open(config: &PivConfig) -> Result<Self> {
        let pin = config.pin.as_ref().map(PinSource::load).transpose()?;
        if let Some(pin) = &pin {
            // PIV PINs are 6 to 8 bytes; a longer one would be cut by the card.
            if pin.expose().len() > 8 {
                let source_name = match &config.pin {
                    Some(PinSource::File(path)) => format!("PIN file {}", path.display()),
                    Some(PinSource::Env(name)) => format!("environment variable {name}"),
                    None => "PIN".into(),
                };
                return Err(Error::PinSource {
                    source_name,
                    reason: "holds more than the 8 characters a PIV PIN can have",
                });
            }
        }
        let worker = CardWorker::new(config.serial, pin);
        let pool = WorkerPool::start_named("signet-piv", vec![worker])?;
        let device = Self {
            inner: Arc::new(DeviceInner {
                serial: config.serial,
                pool,
            }),
        };
        device
            .inner
            .pool
            .submit(|worker| worker.open().map(drop))
            .wait()?;
        Ok(device)
    }

    /// The card's serial number.
    pub fn serial(&self) -> u32 {
        self.inner.serial
    }

    /// The PIN tries left before the PIN blocks (asking uses none up).
    pub fn pin_retries(&self) -> Result<u8> {
        self.inner.pool.submit(|w| w.pin_retries()).wait()
    }

    /// The key in `slot`: its type, policies and public key.
    pub fn key(&self, slot: PivSlot) -> Result<PivKey> {
        let slot = slot.validate()?;
        let facts = self.inner.pool.submit(move |w| w.slot_facts(slot)).wait()?;
        Ok(self.key_from(slot, facts))
    }

    /// The key in `slot`, for use as a CA key: as [`PivDevice::key`], but
    /// refused with [`Error::PivDefaultManagementKey`] while the card still
    /// uses the factory-default management key (with it, anyone holding the
    /// card can replace the CA's key or certificates, no PIN needed).
    pub fn ca_key(&self, slot: PivSlot) -> Result<PivKey> {
        if self.uses_default_management_key()? {
            return Err(Error::PivDefaultManagementKey {
                serial: self.inner.serial,
            });
        }
        self.key(slot)
    }

    /// Whether the card still uses the factory-default management key
    /// (`010203040506070801020304050607080102030405060708`).
    pub fn uses_default_management_key(&self) -> Result<bool> {
        self.inner
            .pool
            .submit(|w| w.uses_default_management_key())
            .wait()
    }

    /// Generates a key inside the card in `slot`, with the given policies.
    /// Refuses if the slot holds a key, unless `replace` is set (the old key
    /// is then gone for good).
    pub fn generate(
        &self,
        slot: PivSlot,
        spec: PivKeySpec,
        management_key: &PivManagementKey,
        replace: bool,
    ) -> Result<PivKey> {
        let slot = slot.validate()?;
        let management_key = management_key.clone();
        let facts = self
            .inner
            .pool
            .submit(move |w| {
                w.generate(
                    slot,
                    spec.algorithm,
                    spec.pin_policy,
                    spec.touch_policy,
                    &management_key,
                    replace,
                )
            })
            .wait()?;
        Ok(self.key_from(slot, facts))
    }

    /// The attestation of the key in `slot` (for keys generated on the card).
    pub fn attestation(&self, slot: PivSlot) -> Result<PivAttestation> {
        let slot = slot.validate()?;
        self.inner.pool.submit(move |w| w.attest(slot)).wait()
    }

    /// The card's `f9` attestation certificate (DER), which signs every
    /// slot attestation: checking it against the vendor's roots before
    /// generating anything lets a caller refuse an unknown card while it is
    /// still untouched.
    pub fn device_certificate(&self) -> Result<Vec<u8>> {
        self.inner.pool.submit(|w| w.device_certificate()).wait()
    }

    fn key_from(&self, slot: PivSlot, facts: SlotFacts) -> PivKey {
        PivKey {
            device: self.clone(),
            slot,
            facts: Arc::new(facts),
        }
    }
}

/// A signing key in a PIV slot. Cheap to clone; holds no card handle.
#[derive(Clone)]
pub struct PivKey {
    device: PivDevice,
    slot: PivSlot,
    facts: Arc<SlotFacts>,
}

impl std::fmt::Debug for PivKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PivKey")
            .field("serial", &self.device.serial())
            .field("slot", &self.slot)
            .field("algorithm", &self.facts.algorithm)
            .field("pin_policy", &self.facts.pin_policy)
            .field("touch_policy", &self.facts.touch_policy)
            .finish()
    }
}

const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA512_DIGEST_INFO: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2): `00 01 FF… 00 DigestInfo`, `len` bytes.
fn pkcs1v15_block(prefix: &[u8], digest: &[u8], len: usize) -> Vec<u8> {
    let mut block = Vec::with_capacity(len);
    block.extend_from_slice(&[0x00, 0x01]);
    block.resize(len.saturating_sub(prefix.len() + digest.len() + 1), 0xff);
    block.push(0x00);
    block.extend_from_slice(prefix);
    block.extend_from_slice(digest);
    block
}

impl PivKey {
    /// The card this key is on.
    pub fn device(&self) -> &PivDevice {
        &self.device
    }

    /// The slot.
    pub fn slot(&self) -> PivSlot {
        self.slot
    }

    /// The key type.
    pub fn algorithm(&self) -> PivAlgorithm {
        self.facts.algorithm
    }

    /// When the card wants the PIN.
    pub fn pin_policy(&self) -> PivPinPolicy {
        self.facts.pin_policy
    }

    /// When the card wants a touch.
    pub fn touch_policy(&self) -> PivTouchPolicy {
        self.facts.touch_policy
    }

    /// Whether the card generated the key (imported keys cannot be attested).
    pub fn generated_on_card(&self) -> bool {
        self.facts.generated
    }

    /// The public half, as the card reported it.
    pub fn public_key(&self) -> &PublicKey {
        &self.facts.public_key
    }

    /// Queues a signature over `message` (see
    /// [`SigningBackend`](crate::SigningBackend) for the raw format). The
    /// message is hashed here; the card signs the digest (ECDSA) or the
    /// PKCS#1 v1.5 block (RSA-2048) with GENERAL AUTHENTICATE. Every
    /// signature is checked against the public key before it is returned,
    /// so a key replaced behind Signet's back is noticed.
    pub fn sign(&self, message: &[u8], rsa_hash: RsaHash) -> Reply<Vec<u8>> {
        let (input, digest) = match self.facts.algorithm {
            PivAlgorithm::EcdsaP256 => {
                let digest = sha2::Sha256::digest(message).to_vec();
                (digest.clone(), digest)
            }
            PivAlgorithm::EcdsaP384 => {
                let digest = sha2::Sha384::digest(message).to_vec();
                (digest.clone(), digest)
            }
            PivAlgorithm::Rsa2048 => {
                let (prefix, digest) = match rsa_hash {
                    RsaHash::Sha256 => {
                        (&SHA256_DIGEST_INFO, sha2::Sha256::digest(message).to_vec())
                    }
                    RsaHash::Sha512 => {
                        (&SHA512_DIGEST_INFO, sha2::Sha512::digest(message).to_vec())
                    }
                };
                (pkcs1v15_block(prefix, &digest, 256), digest)
            }
        };
        let slot = self.slot;
        let facts = self.facts.clone();
        self.device.inner.pool.submit(move |worker| {
            let signature = worker.sign(
                slot,
                facts.algorithm,
                facts.pin_policy,
                facts.touch_policy,
                &input,
            )?;
            to_raw_checked(slot, &facts.public_key, &digest, rsa_hash, &signature)
        })
    }
}

/// Converts the card's signature to the raw form (ECDSA DER → r‖s) and
/// checks it against the public key.
fn to_raw_checked(
    slot: PivSlot,
    public: &PublicKey,
    digest: &[u8],
    rsa_hash: RsaHash,
    signature: &[u8],
) -> Result<Vec<u8>> {
    let bad = || Error::MalformedTokenData("signature from the card");
    let changed = || Error::PivKeyChanged { slot };
    match public {
        PublicKey::EcdsaP256(key) => {
            let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| bad())?;
            key.verify_prehash(digest, &sig).map_err(|_| changed())?;
            Ok(sig.to_bytes().to_vec())
        }
        PublicKey::EcdsaP384(key) => {
            let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| bad())?;
            key.verify_prehash(digest, &sig).map_err(|_| changed())?;
            Ok(sig.to_bytes().to_vec())
        }
        PublicKey::Rsa(key) => {
            let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| bad())?;
            let verified = match rsa_hash {
                RsaHash::Sha256 => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone())
                    .verify_prehash(digest, &sig),
                RsaHash::Sha512 => rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key.clone())
                    .verify_prehash(digest, &sig),
            };
            verified.map_err(|_| changed())?;
            Ok(signature.to_vec())
        }
        PublicKey::Ed25519(_) => Err(Error::PivUnsupported(
            "Ed25519 PIV keys are not supported".into(),
        )),
    }
}

impl crate::SigningBackend for PivKey {
    fn public_key(&self) -> &PublicKey {
        &self.facts.public_key
    }

    fn sign_raw(&self, message: &[u8], rsa_hash: RsaHash) -> Reply<Vec<u8>> {
        self.sign(message, rsa_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_block_has_the_rfc_8017_layout() {
        let block = pkcs1v15_block(&SHA256_DIGEST_INFO, &[0xab; 32], 256);
        assert_eq!(block.len(), 256);
        assert_eq!(&block[..2], &[0x00, 0x01]);
        assert!(block[2..256 - 52].iter().all(|b| *b == 0xff));
        assert_eq!(block[256 - 52], 0x00);
        assert_eq!(&block[256 - 51..256 - 32], &SHA256_DIGEST_INFO);
        let block = pkcs1v15_block(&SHA512_DIGEST_INFO, &[0xcd; 64], 256);
        assert_eq!(block.len(), 256);
    }

    #[test]
    fn management_key_debug_names_only_the_source() {
        let text = format!("{:?}", PivManagementKey::File("/etc/signet/mgm".into()));
        assert_eq!(text, "PivManagementKey::File(/etc/signet/mgm)");
    }
}
