//! Signet's signing layer: one abstraction over hardware that holds CA keys.
//!
//! Keys are generated inside the device (sensitive, never extractable) and
//! used through it; nothing in this crate can read, export or delete a
//! private key. Blocking device calls stay inside a pool of worker threads
//! ([`Token`] hands out [`Reply`] values that threads wait on and async tasks
//! await), so callers never block an async runtime.
//!
//! The PKCS#11 backend covers SoftHSM2, YubiHSM 2 and network or cloud HSMs;
//! the `piv` feature adds a key in a YubiKey PIV slot ([`piv`]). Both
//! implement [`SigningBackend`], and signing goes through `signature::Signer`
//! adapters ([`SshSigner`], [`X509Signer`]) so certificate builders never
//! know which device signs.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod algorithm;
mod error;
mod pin;
#[cfg(feature = "piv")]
pub mod piv;
mod pool;
mod provision;
mod public_key;
mod secret_file;
mod signer;
mod token;
mod uri;
mod verify;

pub use algorithm::{KeyAlgorithm, RsaHash};
pub use error::{Error, Result};
pub use pin::{Pin, PinSource};
pub use pool::Reply;
pub use provision::{initialize_softhsm_token, initialize_token, module_info, ModuleInfo};
pub use public_key::PublicKey;
pub use signer::{
    Pkcs11Key, SigningBackend, SshSigner, X509Signature, X509Signer, X509VerifyingKey,
};
pub use token::{Capabilities, KeyProtection, KeyRef, Token, TokenConfig, TokenDescription};
pub use uri::{Pkcs11Uri, TokenFacts, TokenSelector};
