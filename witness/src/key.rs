//! The witness key: an Ed25519 key in a PKCS#8 file, or a non-extractable
//! key generated inside a PKCS#11 token (through signet-hsm).
//!
//! The key is created once (`signet-witness init`) and never printed: only
//! its vkey is. A key file is created exclusively (`O_EXCL`, never over an
//! existing file), mode 0600, and refused at start if anyone but its owner
//! may read it or it is reached through a symbolic link.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ed25519_dalek::Signer as _;
use signet_hsm::{KeyAlgorithm, PublicKey, RsaHash, Token};
use signet_log::note::cosignature::{CosignatureSigner, SignFn};
use zeroize::Zeroizing;

use crate::config::{Config, KeyConfig};
use crate::error::{Error, Result};

/// The witness's signer, whatever holds the key.
pub type WitnessSigner = CosignatureSigner<Box<SignFn>>;

/// Largest key file read (a PKCS#8 Ed25519 PEM is about 120 bytes).
const MAX_KEY_FILE: u64 = 4096;

/// Creates the witness key the configuration names and returns its signer.
/// Refuses if the key exists already (a key is never replaced).
pub fn create(config: &Config) -> Result<WitnessSigner> {
    match &config.key {
        KeyConfig::File(path) => {
            let mut seed = Zeroizing::new([0u8; 32]);
            getrandom::fill(seed.as_mut_slice())
                .map_err(|e| Error::Key(format!("no randomness from the system: {e}")))?;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let pem = key
                .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .map_err(|e| Error::Key(format!("cannot encode the key: {e}")))?;
            write_new_secret(path, pem.as_bytes())?;
            file_signer(&config.name, key)
        }
        KeyConfig::Pkcs11 { token, key_label } => {
            let token = open_token(token)?;
            if token
                .find_key(key_label, KeyAlgorithm::Ed25519)
                .map_err(|e| Error::Key(format!("token: {e}")))?
                .is_some()
            {
                return Err(Error::Key(format!(
                    "the token already holds a key labelled {key_label:?}; `signet-witness vkey` prints its vkey"
                )));
            }
            token
                .generate_key(key_label, KeyAlgorithm::Ed25519)
                .map_err(|e| {
                    Error::Key(format!("cannot generate {key_label:?} in the token: {e}"))
                })?;
            token_signer(&config.name, token, key_label)
        }
    }
}

/// Opens the existing witness key the configuration names.
pub fn open(config: &Config) -> Result<WitnessSigner> {
    match &config.key {
        KeyConfig::File(path) => {
            let pem = read_secret(path)?;
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
                Error::Key(format!(
                    "{} is not a PKCS#8 Ed25519 private key (PEM)",
                    path.display()
                ))
            })?;
            file_signer(&config.name, key)
        }
        KeyConfig::Pkcs11 { token, key_label } => {
            let token = open_token(token)?;
            token_signer(&config.name, token, key_label)
        }
    }
}

fn file_signer(name: &str, key: ed25519_dalek::SigningKey) -> Result<WitnessSigner> {
    let public = key.verifying_key().to_bytes();
    let sign: Box<SignFn> = Box::new(move |msg: &[u8]| Ok(key.sign(msg).to_bytes().to_vec()));
    CosignatureSigner::new(name, &public, sign).map_err(|e| Error::Key(e.to_string()))
}

fn open_token(config: &signet_hsm::TokenConfig) -> Result<Token> {
    Token::open(config).map_err(|e| Error::Key(format!("cannot open the token: {e}")))
}

fn token_signer(name: &str, token: Token, key_label: &str) -> Result<WitnessSigner> {
    let key = token
        .find_key(key_label, KeyAlgorithm::Ed25519)
        .map_err(|e| Error::Key(format!("token: {e}")))?
        .ok_or_else(|| {
            Error::Key(format!(
                "the token holds no Ed25519 key labelled {key_label:?}; run `signet-witness init` first"
            ))
        })?;
    let PublicKey::Ed25519(public) = key.public_key() else {
        return Err(Error::Key(format!("{key_label:?} is not an Ed25519 key")));
    };
    let public = public.to_bytes();
    // Token::sign verifies every signature against the public half before
    // returning it; CosignatureSigner checks it once more.
    let sign: Box<SignFn> = Box::new(move |msg: &[u8]| {
        token
            .sign(&key, msg, RsaHash::Sha256)
            .wait()
            .map_err(|e| Box::new(e) as signet_log::note::SignerError)
    });
    CosignatureSigner::new(name, &public, sign).map_err(|e| Error::Key(e.to_string()))
}

/// Creates `path` with `content`, mode 0600, failing if anything exists
/// there (a key is never overwritten, a link never followed), then makes
/// the file and its directory entry durable.
fn write_new_secret(path: &Path, content: &[u8]) -> Result<()> {
    let shown = path.display();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Key(format!(
                "{shown} exists already; a witness key is never replaced (`signet-witness vkey` prints its vkey)"
            )),
            _ => Error::Key(format!("cannot create {shown}: {e}")),
        })?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::Key(format!("cannot write {shown}: {e}")))?;
    crate::state::sync_dir(path.parent().unwrap_or(Path::new(".")))
        .map_err(|e| Error::Key(format!("cannot sync the directory of {shown}: {e}")))
}

/// Reads a key file, refusing links, non-regular files and files that
/// group or others may access.
fn read_secret(path: &Path) -> Result<Zeroizing<String>> {
    let shown = path.display();
    let mut file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::Key(format!(
                "{shown} is a symbolic link; name the key file itself"
            )),
            _ if e.kind() == std::io::ErrorKind::NotFound => Error::Key(format!(
                "{shown} does not exist; run `signet-witness init` first"
            )),
            _ => Error::Key(format!("cannot open {shown}: {e}")),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::Key(format!("cannot stat {shown}: {e}")))?;
    let kind = meta.file_type();
    if !kind.is_file() || kind.is_fifo() || kind.is_socket() {
        return Err(Error::Key(format!("{shown} is not a regular file")));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Key(format!(
            "{shown} is accessible by group or others; make it readable by its owner only (chmod 600)"
        )));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(Error::Key(format!("{shown} is too large for a key file")));
    }
    // Room for the whole bound up front: no reallocation leaves copies behind.
    let mut text = Zeroizing::new(String::with_capacity(MAX_KEY_FILE as usize + 1));
    std::io::Read::take(&mut file, MAX_KEY_FILE)
        .read_to_string(&mut text)
        .map_err(|_| Error::Key(format!("{shown} cannot be read as text")))?;
    Ok(text)
}
