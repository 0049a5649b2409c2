//! Opening a PKCS#11 token, and the operations the CA needs from it:
//! generate a key inside, find it again, sign with it.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use sha2::Digest;

use crate::pool::{JobError, Login, Reply, SessionPool, WorkerSession};
use crate::uri::TokenFacts;
use crate::{Error, KeyAlgorithm, PinSource, PublicKey, Result, RsaHash, TokenSelector};

mod data_object;

/// What a found key pair signs to prove its public half belongs to it.
const PAIR_CHECK_MESSAGE: &[u8] = b"signet: this public key belongs to this private key";

/// How to reach a token. Built from the CA's `[hsm]` configuration.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Path of the PKCS#11 module (`.so`).
    pub module: PathBuf,
    /// Which token of that module.
    pub token: TokenSelector,
    /// Where the user PIN comes from.
    pub pin: PinSource,
    /// How many sessions (and worker threads) sign in parallel.
    pub sessions: NonZeroUsize,
}

/// What a token is, for reports and logs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenDescription {
    /// The facts a selector matched on.
    pub facts: TokenFacts,
    /// The slot the token sits in.
    pub slot_id: u64,
    /// `CK_INFO.libraryVersion` of the module (`major.minor`).
    pub library_version: String,
    /// The PKCS#11 version the module implements (`major.minor`).
    pub cryptoki_version: String,
    /// `CK_TOKEN_INFO.hardwareVersion`.
    pub hardware_version: String,
    /// `CK_TOKEN_INFO.firmwareVersion`.
    pub firmware_version: String,
    /// The most sessions the token allows (`None`: no limit given).
    pub max_sessions: Option<u64>,
}

/// The mechanisms a token offers, and which CA key types it can therefore hold.
#[derive(Debug, Clone)]
pub struct Capabilities {
    mechanisms: BTreeSet<u64>,
    names: Vec<String>,
    /// RSA key sizes the token generates (CK_MECHANISM_INFO, in bits);
    /// `None` if it does not say.
    rsa_bits: Option<(u64, u64)>,
}

impl Capabilities {
    fn has(&self, mechanism: MechanismType) -> bool {
        self.mechanisms.contains(&u64::from(mechanism))
    }

    /// Fails with a message naming the missing mechanism if the token cannot
    /// generate and sign with this key type.
    pub fn check(&self, algorithm: KeyAlgorithm) -> Result<()> {
        if let Some(&(operation, mechanism)) = self.missing_mechanisms(algorithm).first() {
            return Err(Error::MechanismUnsupported {
                operation,
                algorithm,
                mechanism,
            });
        }
        // A token may list RSA generation but only up to 2048 bits (PIV
        // tokens do): refuse here rather than fail in the middle of a ceremony.
        if let (Some(bits), Some((min, max))) = (algorithm.rsa_bits(), self.rsa_bits) {
            if bits < min || (max > 0 && bits > max) {
                return Err(Error::KeySizeUnsupported {
                    algorithm,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }

    /// Every mechanism `algorithm` needs that the token does not list, with
    /// what it is needed for (`"generate"` or `"sign with"`); empty if the
    /// token can hold the key type. For qualification reports.
    pub fn missing_mechanisms(&self, algorithm: KeyAlgorithm) -> Vec<(&'static str, &'static str)> {
        let (generate, name) = algorithm.generation_mechanism();
        let mut missing = Vec::new();
        if !self.has(generate) {
            missing.push(("generate", name));
        }
        for (sign, name) in algorithm.signing_mechanisms() {
            if !self.has(*sign) {
                missing.push(("sign with", *name));
            }
        }
        missing
    }

    /// The key types this token can generate and sign with.
    pub fn supported_algorithms(&self) -> Vec<KeyAlgorithm> {
        KeyAlgorithm::ALL
            .into_iter()
            .filter(|alg| self.check(*alg).is_ok())
            .collect()
    }

    /// All mechanism names the token lists, for a qualification report.
    pub fn mechanism_names(&self) -> &[String] {
        &self.names
    }
}

/// A CA key on the token: its label, type and public half. Cheap to clone;
/// holds no session state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    label: String,
    algorithm: KeyAlgorithm,
    public_key: PublicKey,
}

impl KeyRef {
    /// The `CKA_LABEL` of the key pair.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The key type.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
}

/// The protection attributes of a private key, as the token reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyProtection {
    /// CKA_SENSITIVE.
    pub sensitive: bool,
    /// CKA_EXTRACTABLE.
    pub extractable: bool,
    /// CKA_ALWAYS_SENSITIVE: sensitive since generation.
    pub always_sensitive: bool,
    /// CKA_NEVER_EXTRACTABLE: never extractable since generation.
    pub never_extractable: bool,
    /// CKA_LOCAL: generated on the token, not imported.
    pub local: bool,
}

/// An open token with a pool of logged-in sessions. Clone it freely: all
/// clones share the pool, which stops when the last clone is dropped.
#[derive(Clone)]
pub struct Token {
    inner: Arc<TokenInner>,
}

struct TokenInner {
    pool: SessionPool,
    description: TokenDescription,
    capabilities: Capabilities,
    /// Test hook: flip a bit in every signature (see `corrupt_signatures`).
    #[cfg(feature = "test-hooks")]
    corrupt_signatures: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token", &self.inner.description.facts.label)
            .field("sessions", &self.inner.pool.size())
            .finish()
    }
}

fn trimmed(s: &str) -> String {
    s.trim_end_matches([' ', '\0']).to_owned()
}

impl Token {
    /// Loads the module, finds the token, reads the PIN, logs in once (a
    /// wrong PIN fails here and is not retried) and starts the session pool.
    pub fn open(config: &TokenConfig) -> Result<Self> {
        let ctx = load_module(&config.module)?;
        let (slot, description) = find_slot(&ctx, &config.token)?;
        let capabilities = read_capabilities(&ctx, slot)?;
        let login = Arc::new(Login::new(config.pin.load()?));
        let mut sessions = Vec::with_capacity(config.sessions.get());
        for _ in 0..config.sessions.get() {
            sessions.push(WorkerSession::open(ctx.clone(), slot, login.clone())?);
        }
        let pool = SessionPool::start(sessions)?;
        Ok(Self {
            inner: Arc::new(TokenInner {
                pool,
                description,
                capabilities,
                #[cfg(feature = "test-hooks")]
                corrupt_signatures: Arc::default(),
            }),
        })
    }

    /// What token this is.
    pub fn description(&self) -> &TokenDescription {
        &self.inner.description
    }

    /// What the token can do.
    pub fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    /// Number of sessions in the pool.
    pub fn sessions(&self) -> usize {
        self.inner.pool.size()
    }

    /// Finds the key pair with this label. `Ok(None)` if there is none;
    /// an error if it is of another type than `algorithm`, if several match,
    /// or if the private key is not sensitive and non-extractable.
    ///
    /// The public half is proven to belong to the private key before it is
    /// returned (the private key signs, the public one must verify): public
    /// key objects can be replaced by anyone with a session on many tokens,
    /// no PIN needed, and the CA publishes and logs the public half.
    pub fn find_key(&self, label: &str, algorithm: KeyAlgorithm) -> Result<Option<KeyRef>> {
        let owned = label.to_owned();
        let found = self
            .inner
            .pool
            .submit(move |worker| {
                worker.run(|session, _| find_key_pair(session, &owned, algorithm))
            })
            .wait()?;
        if let Some(key) = &found {
            match self.sign(key, PAIR_CHECK_MESSAGE, RsaHash::Sha256).wait() {
                Ok(_) => {}
                Err(Error::FaultySignature { .. }) => {
                    return Err(Error::KeyPairMismatch {
                        label: label.to_owned(),
                    })
                }
                Err(other) => return Err(other),
            }
        }
        Ok(found)
    }

    /// Generates a key pair inside the token: token object, private,
    /// sensitive, never extractable, usable only for signing. Refuses if a
    /// key with this label exists (nothing here ever deletes or replaces a key).
    pub fn generate_key(&self, label: &str, algorithm: KeyAlgorithm) -> Result<KeyRef> {
        self.inner.capabilities.check(algorithm)?;
        let label = label.to_owned();
        self.inner
            .pool
            .submit(move |worker| {
                worker.run(|session, _| {
                    if find_one(session, ObjectClass::PRIVATE_KEY, &label)?.is_some() {
                        return Err(JobError::Final(Error::KeyExists(label.clone())));
                    }
                    generate_key_pair(session, &label, algorithm)
                })
            })
            .wait()
    }

    /// Reads the private key's protection attributes, for audits and tests.
    pub fn key_protection(&self, key: &KeyRef) -> Result<KeyProtection> {
        let label = key.label.clone();
        self.inner
            .pool
            .submit(move |worker| {
                worker.run(|session, cache| {
                    let handle = private_key_handle(session, cache, &label)?;
                    read_protection(session, handle)
                })
            })
            .wait()
    }

    /// Tries to read the private key's value (`CKA_VALUE` / private exponent).
    /// Returns `Ok(true)` if the token handed out any secret material — which
    /// must never happen for a CA key. Used by the conformance tests.
    pub fn private_value_is_readable(&self, key: &KeyRef) -> Result<bool> {
        let label = key.label.clone();
        self.inner
            .pool
            .submit(move |worker| {
                worker.run(|session, cache| {
                    let handle = private_key_handle(session, cache, &label)?;
                    // Ask for the secret parts directly: the token must answer
                    // "sensitive" (or "no such attribute"), never a value.
                    let info = session.get_attribute_info(
                        handle,
                        &[AttributeType::Value, AttributeType::PrivateExponent],
                    )?;
                    Ok(info.iter().any(
                        |i| matches!(i, cryptoki::object::AttributeInfo::Available(n) if *n > 0),
                    ))
                })
            })
            .wait()
    }

    /// Queues a signature by `key` over `message` and returns at once.
    ///
    /// ECDSA: the message is hashed here (SHA-256 for P-256, SHA-384 for
    /// P-384) and the token signs the digest with CKM_ECDSA; the result is
    /// raw r‖s. Ed25519: the token signs the message (CKM_EDDSA). RSA: the
    /// token hashes and signs (CKM_SHA256/512_RSA_PKCS), PKCS#1 v1.5.
    ///
    /// The worker verifies the signature against the key's public half
    /// before it is returned. One that does not verify is discarded, logged
    /// and answered with [`Error::FaultySignature`]: a faulty RSA signature
    /// can reveal the private key, so a device fault must never be published.
    pub fn sign(&self, key: &KeyRef, message: &[u8], rsa_hash: RsaHash) -> Reply<Vec<u8>> {
        let input = match key.algorithm {
            KeyAlgorithm::EcdsaP256 => sha2::Sha256::digest(message).to_vec(),
            KeyAlgorithm::EcdsaP384 => sha2::Sha384::digest(message).to_vec(),
            _ => message.to_vec(),
        };
        self.submit_sign(key, input, rsa_hash, Some(message.to_vec()))
    }

    /// Queues a signature over an input already prepared for the mechanism
    /// (a digest for ECDSA), **without** verifying it. Only for measuring
    /// the token itself (the benchmark's raw-signature baseline): never
    /// publish what it returns; [`Token::sign`] is the verified path.
    pub fn sign_prepared(&self, key: &KeyRef, input: Vec<u8>, rsa_hash: RsaHash) -> Reply<Vec<u8>> {
        self.submit_sign(key, input, rsa_hash, None)
    }

    fn submit_sign(
        &self,
        key: &KeyRef,
        input: Vec<u8>,
        rsa_hash: RsaHash,
        verify_message: Option<Vec<u8>>,
    ) -> Reply<Vec<u8>> {
        let key = key.clone();
        let checked_key = verify_message.map(|message| (key.clone(), message));
        #[cfg(feature = "test-hooks")]
        let corrupt = self.inner.corrupt_signatures.clone();
        let reply = self.inner.pool.submit(move |worker| {
            let algorithm = key.algorithm;
            #[allow(unused_mut)]
            let mut raw = worker.run(|session, cache| {
                let handle = private_key_handle(session, cache, &key.label)?;
                let mechanism = match algorithm {
                    KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => Mechanism::Ecdsa,
                    KeyAlgorithm::Ed25519 => {
                        Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                            cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
                        ))
                    }
                    KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => match rsa_hash {
                        RsaHash::Sha256 => Mechanism::Sha256RsaPkcs,
                        RsaHash::Sha512 => Mechanism::Sha512RsaPkcs,
                    },
                };
                Ok(session.sign(&mechanism, handle, &input)?)
            })?;
            #[cfg(feature = "test-hooks")]
            if corrupt.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(byte) = raw.last_mut() {
                    *byte ^= 0x01;
                }
            }
            Ok(raw)
        });
        match checked_key {
            // Verified by the waiter, not the worker: the session's thread
            // stays free for the token while the CPU checks the signature.
            Some((key, message)) => reply.checked_by(move |raw| {
                if key.public_key.verifies(&message, raw, rsa_hash) {
                    return Ok(());
                }
                log::error!(
                    "the token's {} signature with key {:?} does not verify under the key's public half; discarded (check the HSM)",
                    key.algorithm,
                    key.label
                );
                Err(Error::FaultySignature { key: key.label })
            }),
            None => reply,
        }
    }

    /// Test hook: from now on (until called with `false`) flips a bit in
    /// every signature the token returns, as a faulty device would, so tests
    /// can prove that no faulty signature is handed out.
    #[cfg(feature = "test-hooks")]
    pub fn corrupt_signatures(&self, on: bool) {
        self.inner
            .corrupt_signatures
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Test hook: logs the shared login out behind the pool's back, as a
    /// token reset would, so tests can prove the pool recovers.
    #[cfg(feature = "test-hooks")]
    pub fn force_logout(&self) -> Result<()> {
        self.inner.pool.submit(|worker| worker.logout()).wait()
    }
}

/// Loads and initialises a PKCS#11 module, with errors that tell a missing
/// file from a file that is not a module.
pub(crate) fn load_module(module: &std::path::Path) -> Result<Pkcs11> {
    if !module.exists() {
        return Err(Error::ModuleMissing(module.to_path_buf()));
    }
    let ctx = Pkcs11::new(module).map_err(|e| Error::ModuleLoad {
        path: module.to_path_buf(),
        detail: e.to_string(),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another part of this process initialised the module already.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(ctx),
        Err(err) => Err(Error::ModuleLoad {
            path: module.to_path_buf(),
            detail: format!("C_Initialize: {err}"),
        }),
    }
}

fn find_slot(ctx: &Pkcs11, selector: &TokenSelector) -> Result<(Slot, TokenDescription)> {
    let library = ctx.get_library_info()?;
    let mut present = Vec::new();
    let mut matches = Vec::new();
    let mut infos = Vec::new();
    for slot in ctx.get_slots_with_token()? {
        let info = ctx.get_token_info(slot)?;
        let facts = TokenFacts {
            label: trimmed(info.label()),
            manufacturer: trimmed(info.manufacturer_id()),
            serial: trimmed(info.serial_number()),
            model: trimmed(info.model()),
            slot_id: slot.id(),
            library_manufacturer: trimmed(library.manufacturer_id()),
            library_description: trimmed(library.library_description()),
        };
        if !info.token_initialized() {
            continue;
        }
        present.push(format!("{:?}", facts.label));
        if selector.matches(&facts) {
            matches.push((slot, facts));
            infos.push(info);
        }
    }
    match matches.len() {
        0 => Err(Error::TokenNotFound {
            wanted: selector.to_string(),
            present: if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            },
        }),
        1 => {
            let (slot, facts) = matches.remove(0);
            let info = infos.remove(0);
            let max_sessions = match info.max_session_count() {
                cryptoki::slot::Limit::Max(n) => Some(n),
                _ => None,
            };
            Ok((
                slot,
                TokenDescription {
                    facts,
                    slot_id: slot.id(),
                    library_version: library.library_version().to_string(),
                    cryptoki_version: library.cryptoki_version().to_string(),
                    hardware_version: info.hardware_version().to_string(),
                    firmware_version: info.firmware_version().to_string(),
                    max_sessions,
                },
            ))
        }
        count => Err(Error::TokenAmbiguous {
            wanted: selector.to_string(),
            count,
        }),
    }
}

fn read_capabilities(ctx: &Pkcs11, slot: Slot) -> Result<Capabilities> {
    let list = ctx.get_mechanism_list(slot)?;
    let mechanisms = list.iter().map(|m| u64::from(*m)).collect();
    let names = list.iter().map(|m| m.to_string()).collect();
    let rsa_bits = if list.contains(&MechanismType::RSA_PKCS_KEY_PAIR_GEN) {
        ctx.get_mechanism_info(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN)
            .ok()
            .map(|info| (info.min_key_size() as u64, info.max_key_size() as u64))
    } else {
        None
    };
    Ok(Capabilities {
        mechanisms,
        names,
        rsa_bits,
    })
}

/// A deterministic CKA_ID for a label, so keys can be found by id as well.
fn key_id(label: &str) -> Vec<u8> {
    sha2::Sha256::digest(label.as_bytes())[..16].to_vec()
}

fn generate_key_pair(
    session: &Session,
    label: &str,
    algorithm: KeyAlgorithm,
) -> std::result::Result<KeyRef, JobError> {
    let id = key_id(label);
    let mut public = vec![
        Attribute::Token(true),
        // Only a logged-in session sees or touches the public half, and
        // nobody may change it: the CA publishes and logs it.
        Attribute::Private(true),
        Attribute::Modifiable(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id),
    ];
    let mechanism = match algorithm {
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
            public.push(Attribute::EcParams(
                algorithm.ec_params().unwrap_or_default().to_vec(),
            ));
            Mechanism::EccKeyPairGen
        }
        KeyAlgorithm::Ed25519 => {
            public.push(Attribute::EcParams(
                algorithm.ec_params().unwrap_or_default().to_vec(),
            ));
            Mechanism::EccEdwardsKeyPairGen
        }
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            public.push(Attribute::ModulusBits(
                algorithm.rsa_bits().unwrap_or(3072).into(),
            ));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    let (public_handle, _private_handle) =
        session.generate_key_pair(&mechanism, &public, &private)?;
    let public_key = read_public_key(session, public_handle, algorithm)?;
    Ok(KeyRef {
        label: label.to_owned(),
        algorithm,
        public_key,
    })
}

fn find_one(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> std::result::Result<Option<ObjectHandle>, JobError> {
    let found = session.find_objects(&[
        Attribute::Class(class),
        Attribute::Label(label.as_bytes().to_vec()),
    ])?;
    match found.len() {
        // Private objects are invisible without a login: "not found" is only
        // an answer when the session is logged in. Otherwise the pool
        // reopens the session and logs in again.
        0 if class == ObjectClass::PRIVATE_KEY && !logged_in(session)? => {
            Err(JobError::NotLoggedIn)
        }
        0 => Ok(None),
        1 => Ok(Some(found[0])),
        count => Err(JobError::Final(Error::KeyAmbiguous {
            label: label.to_owned(),
            count,
        })),
    }
}

fn logged_in(session: &Session) -> std::result::Result<bool, JobError> {
    use cryptoki::session::SessionState;
    let state = session.get_session_info()?.session_state();
    Ok(matches!(state, SessionState::RoUser | SessionState::RwUser))
}

fn private_key_handle(
    session: &Session,
    cache: &mut HashMap<String, ObjectHandle>,
    label: &str,
) -> std::result::Result<ObjectHandle, JobError> {
    if let Some(handle) = cache.get(label) {
        return Ok(*handle);
    }
    let handle = find_one(session, ObjectClass::PRIVATE_KEY, label)?
        .ok_or_else(|| JobError::Final(Error::KeyNotFound(label.to_owned())))?;
    cache.insert(label.to_owned(), handle);
    Ok(handle)
}

fn key_type_of(algorithm: KeyAlgorithm) -> KeyType {
    match algorithm {
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => KeyType::EC,
        KeyAlgorithm::Ed25519 => KeyType::EC_EDWARDS,
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => KeyType::RSA,
    }
}

fn find_key_pair(
    session: &Session,
    label: &str,
    algorithm: KeyAlgorithm,
) -> std::result::Result<Option<KeyRef>, JobError> {
    let Some(private) = find_one(session, ObjectClass::PRIVATE_KEY, label)? else {
        return Ok(None);
    };
    let protection = read_protection(session, private)?;
    let problem = if !protection.sensitive {
        Some("CKA_SENSITIVE is false")
    } else if protection.extractable {
        Some("CKA_EXTRACTABLE is true")
    } else if !protection.never_extractable {
        Some("CKA_NEVER_EXTRACTABLE is false (the key was extractable once)")
    } else if !protection.always_sensitive {
        Some("CKA_ALWAYS_SENSITIVE is false (the key was readable once)")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(JobError::Final(Error::KeyNotProtected {
            label: label.to_owned(),
            problem,
        }));
    }
    let public = find_one(session, ObjectClass::PUBLIC_KEY, label)?.ok_or(JobError::Final(
        Error::MalformedTokenData("key pair without a public key object"),
    ))?;
    let attrs = session.get_attributes(public, &[AttributeType::KeyType])?;
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(*t),
        _ => None,
    });
    if key_type != Some(key_type_of(algorithm)) {
        return Err(JobError::Final(Error::KeyTypeMismatch {
            label: label.to_owned(),
            found: key_type
                .map(|t| t.to_string())
                .unwrap_or_else(|| "of unknown type".into()),
            wanted: algorithm,
        }));
    }
    let public_key = read_public_key(session, public, algorithm)?;
    if public_key.ca_algorithm() != Some(algorithm) {
        return Err(JobError::Final(Error::KeyTypeMismatch {
            label: label.to_owned(),
            found: public_key.describe(),
            wanted: algorithm,
        }));
    }
    Ok(Some(KeyRef {
        label: label.to_owned(),
        algorithm,
        public_key,
    }))
}

fn read_protection(
    session: &Session,
    handle: ObjectHandle,
) -> std::result::Result<KeyProtection, JobError> {
    let attrs = session.get_attributes(
        handle,
        &[
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
            AttributeType::Local,
        ],
    )?;
    // Absent attributes count as the unsafe value: fail closed.
    let mut protection = KeyProtection {
        sensitive: false,
        extractable: true,
        always_sensitive: false,
        never_extractable: false,
        local: false,
    };
    for attr in attrs {
        match attr {
            Attribute::Sensitive(v) => protection.sensitive = v,
            Attribute::Extractable(v) => protection.extractable = v,
            Attribute::AlwaysSensitive(v) => protection.always_sensitive = v,
            Attribute::NeverExtractable(v) => protection.never_extractable = v,
            Attribute::Local(v) => protection.local = v,
            _ => {}
        }
    }
    Ok(protection)
}

fn read_public_key(
    session: &Session,
    public: ObjectHandle,
    algorithm: KeyAlgorithm,
) -> std::result::Result<PublicKey, JobError> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 | KeyAlgorithm::Ed25519 => {
            let attrs = session.get_attributes(public, &[AttributeType::EcPoint])?;
            let point = attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => Some(p),
                    _ => None,
                })
                .ok_or(Error::MalformedTokenData("public key without CKA_EC_POINT"))?;
            Ok(PublicKey::from_ec_point(algorithm, &point)?)
        }
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            let attrs = session.get_attributes(
                public,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )?;
            let mut modulus = None;
            let mut exponent = None;
            for attr in attrs {
                match attr {
                    Attribute::Modulus(m) => modulus = Some(m),
                    Attribute::PublicExponent(e) => exponent = Some(e),
                    _ => {}
                }
            }
            match (modulus, exponent) {
                (Some(n), Some(e)) => Ok(PublicKey::from_rsa_parts(&n, &e)?),
                _ => Err(JobError::Final(Error::MalformedTokenData(
                    "RSA public key without modulus or exponent",
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_sizes_beyond_what_the_token_generates_are_refused() {
        let list = [
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::SHA256_RSA_PKCS,
            MechanismType::SHA512_RSA_PKCS,
        ];
        let caps = Capabilities {
            mechanisms: list.iter().map(|m| u64::from(*m)).collect(),
            names: list.iter().map(|m| m.to_string()).collect(),
            rsa_bits: Some((1024, 2048)),
        };
        let err = caps.check(KeyAlgorithm::Rsa3072).unwrap_err().to_string();
        assert_eq!(
            err,
            "the token generates RSA keys of 1024 to 2048 bits; rsa-3072 is outside that"
        );
        let roomy = Capabilities {
            rsa_bits: Some((1024, 4096)),
            ..caps
        };
        assert!(roomy.check(KeyAlgorithm::Rsa4096).is_ok());
    }

    #[test]
    fn missing_mechanisms_are_all_named() {
        let list = [
            MechanismType::ECC_KEY_PAIR_GEN,
            MechanismType::SHA256_RSA_PKCS,
        ];
        let caps = Capabilities {
            mechanisms: list.iter().map(|m| u64::from(*m)).collect(),
            names: list.iter().map(|m| m.to_string()).collect(),
            rsa_bits: None,
        };
        assert_eq!(
            caps.missing_mechanisms(KeyAlgorithm::EcdsaP256),
            [("sign with", "CKM_ECDSA")]
        );
        assert_eq!(
            caps.missing_mechanisms(KeyAlgorithm::Rsa3072),
            [
                ("generate", "CKM_RSA_PKCS_KEY_PAIR_GEN"),
                ("sign with", "CKM_SHA512_RSA_PKCS")
            ]
        );
        assert!(caps.supported_algorithms().is_empty());
        assert!(matches!(
            caps.check(KeyAlgorithm::Ed25519),
            Err(Error::MechanismUnsupported {
                mechanism: "CKM_EC_EDWARDS_KEY_PAIR_GEN",
                ..
            })
        ));
        // What `signet-ca init` prints when the configuration asks for it.
        assert_eq!(
            caps.check(KeyAlgorithm::Ed25519).unwrap_err().to_string(),
            "the token cannot generate ed25519 keys: it lacks CKM_EC_EDWARDS_KEY_PAIR_GEN"
        );
    }
}
