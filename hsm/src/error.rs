//! The one error type of the HSM layer.

use std::path::PathBuf;

/// Everything that can go wrong talking to a token.
///
/// Messages name what failed and what to do; they never carry a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The PIN could not be read from where the configuration says it is.
    #[error("{source_name} {reason}")]
    PinSource {
        /// Where the PIN was looked for (file path or variable name).
        source_name: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The PKCS#11 module file does not exist.
    #[error("PKCS#11 module {0} does not exist")]
    ModuleMissing(PathBuf),
    /// The file exists but could not be loaded as a PKCS#11 module.
    #[error("{path} is not a loadable PKCS#11 module ({detail})")]
    ModuleLoad {
        /// The module path from the configuration.
        path: PathBuf,
        /// What the loader said.
        detail: String,
    },
    /// No slot holds a token matching the configured label or URI.
    #[error("no token matches {wanted}; tokens present: {present}")]
    TokenNotFound {
        /// The label or URI that was configured.
        wanted: String,
        /// Labels of the tokens that are present, to help fix the config.
        present: String,
    },
    /// More than one token matches the selector: refuse to guess.
    #[error("{count} tokens match {wanted}; make the label or URI specific")]
    TokenAmbiguous {
        /// The label or URI that was configured.
        wanted: String,
        /// How many matched.
        count: usize,
    },
    /// Initialisation was asked for a label that an initialised token already has.
    #[error("a token labelled {0:?} already exists; refusing to initialise another")]
    TokenExists(String),
    /// A throw-away token was asked of a module that is not SoftHSM2.
    #[error("refusing to initialise a token with {module}: its manufacturer is {manufacturer:?}, not SoftHSM; throw-away tokens are only ever made in SoftHSM2 (point tests at an existing token of a real HSM with SIGNET_PKCS11_TOKEN instead)")]
    NotSoftHsm {
        /// The module path.
        module: PathBuf,
        /// What the module says its manufacturer is.
        manufacturer: String,
    },
    /// The module offers no uninitialised slot to create a token in.
    #[error("the module has no free (uninitialised) slot for a new token")]
    NoFreeSlot,
    /// A PKCS#11 URI (RFC 7512) could not be parsed.
    #[error("invalid PKCS#11 URI: {0}")]
    InvalidUri(String),
    /// A data object on the token could not be read or written as expected.
    #[error("token data object {label:?}: {reason}")]
    DataObject {
        /// The object's label.
        label: String,
        /// What was wrong.
        reason: String,
    },
    /// The token refused the PIN. Never retried: retries lock real tokens.
    #[error("the token refused the PIN (not retried: repeated attempts lock the token)")]
    PinIncorrect,
    /// The token refused the PIN earlier in this process (at a re-login
    /// after the session's login was lost) and it is not sent again: every
    /// retry would count against the token's limit and lock it.
    #[error("the token refused the PIN earlier and it is not sent again (retries lock the token); put the right PIN in the PIN source and restart the process")]
    PinRefusedRestart,
    /// The token's user PIN is locked.
    #[error("the token's user PIN is locked; unlock it with the SO PIN before retrying")]
    PinLocked,
    /// The token cannot do what the configured key type needs.
    #[error("the token cannot {operation} {algorithm} keys: it lacks {mechanism}")]
    MechanismUnsupported {
        /// "generate" or "sign with".
        operation: &'static str,
        /// The key type.
        algorithm: crate::KeyAlgorithm,
        /// The missing PKCS#11 mechanism.
        mechanism: &'static str,
    },
    /// The token generates keys of this type, but not of this size.
    #[error("the token generates RSA keys of {min} to {max} bits; {algorithm} is outside that")]
    KeySizeUnsupported {
        /// The key type asked for.
        algorithm: crate::KeyAlgorithm,
        /// Smallest size the token generates, in bits.
        min: u64,
        /// Largest size the token generates, in bits.
        max: u64,
    },
    /// No key with this label exists on the token.
    #[error("no key labelled {0:?} on the token")]
    KeyNotFound(String),
    /// Several objects of one class carry this label: refuse to guess which.
    #[error(
        "{count} keys on the token are labelled {label:?}; remove the ambiguity before using it"
    )]
    KeyAmbiguous {
        /// The key label.
        label: String,
        /// How many objects matched.
        count: usize,
    },
    /// Generation was asked for a label that already exists; keys are never replaced.
    #[error("a key labelled {0:?} already exists on the token; refusing to generate another")]
    KeyExists(String),
    /// The public key object found under a label does not belong to the
    /// private key under it: it was replaced (on many tokens no PIN is
    /// needed to write public objects). Nothing is published or logged.
    #[error("the public key object labelled {label:?} does not belong to its private key (it was replaced on the token); refusing to use or publish it")]
    KeyPairMismatch {
        /// The key's label.
        label: String,
    },
    /// A key with this label exists but is of another type than expected.
    #[error("key {label:?} on the token is {found}, but the configuration asks for {wanted}")]
    KeyTypeMismatch {
        /// The key label.
        label: String,
        /// What the token holds.
        found: String,
        /// What the configuration asks for.
        wanted: crate::KeyAlgorithm,
    },
    /// A key on the token does not have the protections every CA key must have.
    #[error("key {label:?} is not protected as required: {problem}")]
    KeyNotProtected {
        /// The key label.
        label: String,
        /// Which attribute is wrong.
        problem: &'static str,
    },
    /// The token returned something malformed (bad point, bad signature size…).
    #[error("the token returned a malformed {0}")]
    MalformedTokenData(&'static str),
    /// A PKCS#11 call failed.
    #[error("PKCS#11 {function} failed: {rv}")]
    Pkcs11 {
        /// The PKCS#11 function.
        function: String,
        /// The return value.
        rv: String,
    },
    /// The signature the token made does not verify under the key's public
    /// half. It was discarded and logged; nothing signed with it leaves this
    /// crate. A faulty RSA signature can reveal the private key, so this is
    /// never retried silently: the device needs checking.
    #[error("the signature the token made with key {key:?} does not verify under the key's public half; it was discarded and nothing was issued with it (a faulty device signature can reveal an RSA private key: check the HSM before relying on it)")]
    FaultySignature {
        /// The key's label.
        key: String,
    },
    /// The session pool has shut down (the token handle was dropped).
    #[error("the HSM session pool has stopped")]
    PoolStopped,
    /// Public key material could not be encoded.
    #[error("cannot encode public key: {0}")]
    Encoding(String),
    /// No YubiKey with this serial is reachable.
    #[cfg(feature = "piv")]
    #[error(
        "no YubiKey with serial {serial} is connected (is it plugged in, and is pcscd running?)"
    )]
    PivCardNotFound {
        /// The configured serial.
        serial: u32,
    },
    /// Another program holds the card exclusively.
    #[cfg(feature = "piv")]
    #[error("the YubiKey with serial {serial} is in exclusive use by another program; retry when it is done")]
    PivCardBusy {
        /// The configured serial.
        serial: u32,
    },
    /// The card refused the PIN. Never retried: retries block the PIN.
    #[cfg(feature = "piv")]
    #[error("the YubiKey refused the PIV PIN: {retries_left} tries left before it blocks (not retried; fix the PIN source)")]
    PivPinIncorrect {
        /// Tries left before the PIN blocks.
        retries_left: u8,
    },
    /// The PIN is blocked.
    #[cfg(feature = "piv")]
    #[error("the YubiKey's PIV PIN is blocked; unblock it with the PUK (yubico-piv-tool -a unblock-pin)")]
    PivPinBlocked,
    /// The card refused this PIN earlier; this handle does not send it again.
    #[cfg(feature = "piv")]
    #[error("the YubiKey refused this PIV PIN earlier and it is not sent again; fix the PIN source and reopen the card")]
    PivPinNotRetried,
    /// The key needs the PIN and no PIN source is configured.
    #[cfg(feature = "piv")]
    #[error("the key in PIV slot {slot} needs the PIN, and no PIN source is configured")]
    PivPinRequired {
        /// The slot.
        slot: crate::piv::PivSlot,
    },
    /// The key needs a touch and none came in time (or it was refused).
    #[cfg(feature = "piv")]
    #[error("the key in PIV slot {slot} requires a touch and none came in time: touch the YubiKey when it flashes, then retry")]
    PivTouchRequired {
        /// The slot.
        slot: crate::piv::PivSlot,
    },
    /// The card refused to use the key (security status not satisfied).
    #[cfg(feature = "piv")]
    #[error(
        "the YubiKey refused to use the key in PIV slot {slot} (security status not satisfied)"
    )]
    PivNotAuthorized {
        /// The slot.
        slot: crate::piv::PivSlot,
    },
    /// The slot holds no key.
    #[cfg(feature = "piv")]
    #[error("PIV slot {slot} holds no key")]
    PivSlotEmpty {
        /// The slot.
        slot: crate::piv::PivSlot,
    },
    /// Generation was asked for a slot that holds a key, without permission to replace it.
    #[cfg(feature = "piv")]
    #[error("PIV slot {slot} already holds a key; refusing to replace it")]
    PivSlotOccupied {
        /// The slot.
        slot: crate::piv::PivSlot,
    },
    /// The signature does not verify under the key read from the slot.
    #[cfg(feature = "piv")]
    #[error("the signature from PIV slot {slot} does not verify under the slot's public key (was the key replaced?)")]
    PivKeyChanged {
        /// The slot.
        slot: crate::piv::PivSlot,
    },
    /// Management key authentication failed (the key is never named).
    #[cfg(feature = "piv")]
    #[error("PIV management key: {0}")]
    PivManagementKey(String),
    /// The card still uses the factory-default management key: not for a CA key.
    #[cfg(feature = "piv")]
    #[error("the YubiKey with serial {serial} still uses the factory-default PIV management key, with which anyone holding the card can replace its keys; set a management key of its own (ykman piv access change-management-key --generate --protect) before using it for a CA key")]
    PivDefaultManagementKey {
        /// The card's serial.
        serial: u32,
    },
    /// Not a PIV signing slot.
    #[cfg(feature = "piv")]
    #[error("invalid PIV slot: {0}")]
    PivInvalidSlot(String),
    /// The card or the key in it cannot do what was asked.
    #[cfg(feature = "piv")]
    #[error("not supported: {0}")]
    PivUnsupported(String),
    /// Any other card failure.
    #[cfg(feature = "piv")]
    #[error("YubiKey PIV: cannot {operation}: {detail}")]
    Piv {
        /// What was being done.
        operation: &'static str,
        /// What the card or PC/SC said.
        detail: String,
    },
}

/// Result with the HSM layer's error.
pub type Result<T> = std::result::Result<T, Error>;

impl From<cryptoki::error::Error> for Error {
    fn from(err: cryptoki::error::Error) -> Self {
        use cryptoki::error::{Error as CkError, RvError};
        match err {
            CkError::Pkcs11(RvError::PinIncorrect, _) => Self::PinIncorrect,
            CkError::Pkcs11(RvError::PinLocked, _) => Self::PinLocked,
            CkError::Pkcs11(rv, function) => Self::Pkcs11 {
                function: function.to_string(),
                rv: rv.to_string(),
            },
            other => Self::Pkcs11 {
                function: "call".into(),
                rv: other.to_string(),
            },
        }
    }
}
