//! Where the CA keys live: a PKCS#11 token (the default) or, for a small
//! site, a YubiKey's PIV applet (`hsm.backend = "piv"`). Every command of
//! `signet-ca` reaches its keys through [`CaKeys`] — find or generate the
//! four role keys, hand out the certificate signers and the log's note
//! signer, the high-water mark — so no command is written twice.
//!
//! On a YubiKey, `init` generates each key on the card (never imported) and
//! checks its attestation before the key is used or logged: the slot's
//! certificate is signed by the card's `f9` key, the `f9` certificate by
//! one of the configured device roots (Yubico's, for a real key), and it
//! attests this key, this card's serial, and the configured PIN and touch
//! policies.

use std::path::Path;
use std::sync::Arc;

use der::{Decode, Encode};
use signet_hsm::piv::{
    PivAlgorithm, PivAttestation, PivConfig, PivDevice, PivKey, PivKeySpec, PivManagementKey,
    PivPinPolicy, PivTouchPolicy,
};
use signet_hsm::{KeyAlgorithm, PinSource, PublicKey, RsaHash, SshSigner, Token, X509Signer};
use x509_cert::Certificate;

use crate::authority::{ApprovedRequest, Authority, Issued, RawRequest};
use crate::config::{Config, HighWaterSetting, PivSection};
use crate::keys::{self, CeremonyResult, KeyRole};
use crate::log_signer::LogSigner;
use crate::store::{FileMark, HighWaterMark, LogStore, TokenMark};
use crate::{x509, Error, Result};

/// The PIV key type for a configured key type, if a YubiKey can make it for
/// Signet (P-256 and P-384: Ed25519 and RSA-3072/4096 need firmware 5.7,
/// which the PIV backend does not drive yet).
pub fn piv_algorithm(algorithm: KeyAlgorithm) -> Option<PivAlgorithm> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => Some(PivAlgorithm::EcdsaP256),
        KeyAlgorithm::EcdsaP384 => Some(PivAlgorithm::EcdsaP384),
        _ => None,
    }
}

/// The device that holds the CA keys.
pub enum CaKeys {
    /// A PKCS#11 token; keys found by label.
    Pkcs11(Token),
    /// A YubiKey; keys found by slot.
    Piv(PivCa),
}

/// A YubiKey holding the CA keys, with its `[piv]` settings.
pub struct PivCa {
    device: PivDevice,
    settings: PivSection,
}

/// The CA over whichever backend holds its keys.
pub enum CaAuthority {
    /// Keys on a PKCS#11 token.
    Pkcs11(Box<Authority>),
    /// Keys in YubiKey PIV slots.
    Piv(Box<Authority<PivKey>>),
}

impl CaAuthority {
    /// See [`Authority::approve`].
    pub fn approve(&self, raw: RawRequest) -> Result<ApprovedRequest> {
        match self {
            Self::Pkcs11(ca) => ca.approve(raw),
            Self::Piv(ca) => ca.approve(raw),
        }
    }

    /// See [`Authority::approve_touch`].
    pub fn approve_touch(
        &self,
        request: crate::authority::TouchRequest,
    ) -> Result<ApprovedRequest> {
        match self {
            Self::Pkcs11(ca) => ca.approve_touch(request),
            Self::Piv(ca) => ca.approve_touch(request),
        }
    }

    /// See [`Authority::issue_server`].
    pub fn issue_server(
        &self,
        names: &[crate::x509::ServerName],
        public_key: signet_hsm::PublicKey,
        lifetime: std::time::Duration,
        actor: signet_log::entry::Actor,
    ) -> Result<Issued> {
        match self {
            Self::Pkcs11(ca) => ca.issue_server(names, public_key, lifetime, actor),
            Self::Piv(ca) => ca.issue_server(names, public_key, lifetime, actor),
        }
    }

    /// See [`Authority::ssh_host_ca_line`].
    pub fn ssh_host_ca_line(&self) -> Result<String> {
        match self {
            Self::Pkcs11(ca) => ca.ssh_host_ca_line(),
            Self::Piv(ca) => ca.ssh_host_ca_line(),
        }
    }

    /// See [`Authority::ssh_user_ca_line`].
    pub fn ssh_user_ca_line(&self) -> Result<String> {
        match self {
            Self::Pkcs11(ca) => ca.ssh_user_ca_line(),
            Self::Piv(ca) => ca.ssh_user_ca_line(),
        }
    }

    /// The X.509 root.
    pub fn root(&self) -> &x509_cert::Certificate {
        match self {
            Self::Pkcs11(ca) => ca.root(),
            Self::Piv(ca) => ca.root(),
        }
    }

    /// See [`Authority::issue`].
    pub fn issue(
        &self,
        request: ApprovedRequest,
        actor: signet_log::entry::Actor,
    ) -> Result<Issued> {
        match self {
            Self::Pkcs11(ca) => ca.issue(request, actor),
            Self::Piv(ca) => ca.issue(request, actor),
        }
    }

    /// See [`Authority::issue_all`].
    pub fn issue_all(
        &self,
        requests: Vec<ApprovedRequest>,
        actor: signet_log::entry::Actor,
    ) -> Result<Vec<Issued>> {
        match self {
            Self::Pkcs11(ca) => ca.issue_all(requests, actor),
            Self::Piv(ca) => ca.issue_all(requests, actor),
        }
    }
}

fn config_err(field: &str, reason: impl Into<String>) -> Error {
    Error::Config {
        path: field.into(),
        reason: reason.into(),
    }
}

impl CaKeys {
    /// Opens the configured device: logs in to the token, or finds the
    /// YubiKey by serial (reading its PIN source).
    pub fn open(config: &Config) -> Result<Self> {
        match config.hsm.backend {
            crate::config::Backend::Pkcs11 => {
                Ok(Self::Pkcs11(Token::open(&config.token_config()?)?))
            }
            crate::config::Backend::Piv => {
                let settings = config.piv.clone().ok_or_else(|| {
                    config_err("piv", "hsm.backend = \"piv\" needs a [piv] section")
                })?;
                let pin = match (&settings.pin_file, &settings.pin_env) {
                    (Some(file), _) => PinSource::File(file.clone()),
                    (None, Some(var)) => PinSource::Env(var.clone()),
                    (None, None) => {
                        return Err(config_err("piv", "pin_file or pin_env is required"))
                    }
                };
                let device = PivDevice::open(&PivConfig {
                    serial: settings.serial,
                    pin: Some(pin),
                })?;
                Ok(Self::Piv(PivCa { device, settings }))
            }
        }
    }

    /// One line naming the device, for `init`.
    pub fn describe(&self) -> String {
        match self {
            Self::Pkcs11(token) => {
                let desc = token.description();
                format!(
                    "Token {:?} ({}, {}), slot {}.",
                    desc.facts.label, desc.facts.manufacturer, desc.facts.model, desc.slot_id
                )
            }
            Self::Piv(piv) => format!("YubiKey {} (PIV applet).", piv.device.serial()),
        }
    }

    /// A short name of the device, for JSON output.
    pub fn name(&self) -> String {
        match self {
            Self::Pkcs11(token) => token.description().facts.label.clone(),
            Self::Piv(piv) => format!("yubikey:{}", piv.device.serial()),
        }
    }

    /// The token, on the PKCS#11 backend.
    pub fn token(&self) -> Option<&Token> {
        match self {
            Self::Pkcs11(token) => Some(token),
            Self::Piv(_) => None,
        }
    }

    /// The public half of an existing CA key (refused if `init` has not run).
    pub fn public_key(&self, config: &Config, role: KeyRole) -> Result<PublicKey> {
        match self {
            Self::Pkcs11(token) => Ok(keys::load(token, config, role)?.public_key().clone()),
            Self::Piv(piv) => Ok(piv.key(config, role)?.public_key().clone()),
        }
    }

    /// The key ceremony: generates every missing CA key inside the device
    /// and keeps existing ones (on a YubiKey, each key's attestation is
    /// checked).
    pub fn ceremony(&self, config: &Config) -> Result<Vec<CeremonyResult>> {
        match self {
            Self::Pkcs11(token) => keys::ceremony(token, config),
            Self::Piv(piv) => piv.ceremony(config),
        }
    }

    /// Creates the self-signed X.509 root over the device's x509-ca key.
    pub fn create_root(&self, config: &Config) -> Result<Certificate> {
        let x = &config.x509;
        match self {
            Self::Pkcs11(token) => x509::create_root(
                &X509Signer::new(token.clone(), keys::load(token, config, KeyRole::X509Ca)?),
                &x.root_common_name,
                &x.organization,
                x.root_validity,
            ),
            Self::Piv(piv) => x509::create_root(
                &X509Signer::with_backend(piv.key(config, KeyRole::X509Ca)?),
                &x.root_common_name,
                &x.organization,
                x.root_validity,
            ),
        }
    }

    /// The checkpoint signer over the log key, and the high-water mark where
    /// the configuration keeps it. On PKCS#11 the log key gets a one-session
    /// pool of its own ([`crate::log_signer::dedicated_token`]); the mark on
    /// the token shares it.
    pub fn log_signer(&self, config: &Config) -> Result<(Arc<LogSigner>, Arc<dyn HighWaterMark>)> {
        match self {
            Self::Pkcs11(token) => {
                let key = keys::load(token, config, KeyRole::LogKey)?;
                let log_token = crate::log_signer::dedicated_token(config)?;
                let signer = LogSigner::new(log_token.clone(), key, &config.log_origin())?;
                Ok((Arc::new(signer), mark_for(config, Some(log_token))?))
            }
            Self::Piv(piv) => {
                let key = piv.key(config, KeyRole::LogKey)?;
                let signer = LogSigner::piv(key, &config.log_origin())?;
                Ok((Arc::new(signer), mark_for(config, None)?))
            }
        }
    }

    /// The high-water mark alone (for `log restore`, which signs nothing).
    pub fn high_water_mark(&self, config: &Config) -> Result<Arc<dyn HighWaterMark>> {
        match (self, &config.log.high_water) {
            (Self::Pkcs11(_), HighWaterSetting::Token) => {
                mark_for(config, Some(crate::log_signer::dedicated_token(config)?))
            }
            _ => mark_for(config, None),
        }
    }

    /// The CA over the device's keys, the root certificate and `store`.
    pub fn authority(&self, config: Config, store: Arc<dyn LogStore>) -> Result<CaAuthority> {
        match self {
            Self::Pkcs11(token) => Ok(CaAuthority::Pkcs11(Box::new(Authority::open(
                config,
                token.clone(),
                store,
            )?))),
            Self::Piv(piv) => {
                let ssh_user = SshSigner::with_backend(piv.key(&config, KeyRole::SshUserCa)?)?;
                let ssh_host = SshSigner::with_backend(piv.key(&config, KeyRole::SshHostCa)?)?;
                let x509 = X509Signer::with_backend(piv.key(&config, KeyRole::X509Ca)?);
                Ok(CaAuthority::Piv(Box::new(Authority::with_keys(
                    config, ssh_user, ssh_host, x509, store,
                )?)))
            }
        }
    }
}

/// The mark the configuration names; `token` is the PKCS#11 token that
/// keeps it as a data object.
fn mark_for(config: &Config, token: Option<Token>) -> Result<Arc<dyn HighWaterMark>> {
    match (&config.log.high_water, token) {
        (HighWaterSetting::File(path), _) => Ok(Arc::new(FileMark::new(path.clone()))),
        (HighWaterSetting::Token, Some(token)) => {
            Ok(Arc::new(TokenMark::new(token, &config.log_origin())))
        }
        (HighWaterSetting::Token, None) => Err(config_err(
            "log.high_water",
            "the PIV backend keeps the high-water mark in a file: set log.high_water to its path",
        )),
    }
}

impl PivCa {
    fn serial(&self) -> u32 {
        self.device.serial()
    }

    /// The CA key of `role`, checked: the card does not use the factory
    /// management key, the slot holds the configured key type, and the key
    /// was generated on the card.
    fn key(&self, config: &Config, role: KeyRole) -> Result<PivKey> {
        let slot = self.settings.slots.of(role);
        let key = match self.device.ca_key(slot) {
            Ok(key) => key,
            Err(signet_hsm::Error::PivSlotEmpty { .. }) => {
                return Err(Error::NotInitialised(format!(
                    "no {role} key in slot {slot} of YubiKey {}",
                    self.serial()
                )))
            }
            Err(e) => return Err(e.into()),
        };
        self.check_key(config, role, &key)?;
        Ok(key)
    }

    fn check_key(&self, config: &Config, role: KeyRole, key: &PivKey) -> Result<()> {
        let slot = key.slot();
        let wanted = config.piv_algorithm(role);
        if piv_algorithm(wanted) != Some(key.algorithm()) {
            return Err(config_err(
                &format!("keys.{}", role.config_name()),
                format!(
                    "slot {slot} of YubiKey {} holds a {} key, the configuration asks for {wanted}; \
                     choose another slot in piv.slots.{} or change keys.{}",
                    self.serial(),
                    key.algorithm(),
                    role.config_name(),
                    role.config_name()
                ),
            ));
        }
        if !key.generated_on_card() {
            return Err(Error::Attestation(format!(
                "the {role} key in slot {slot} of YubiKey {} was imported, not generated on the card; \
                 a CA key must be born on the card (choose an empty slot and run init)",
                self.serial()
            )));
        }
        Ok(())
    }

    fn ceremony(&self, config: &Config) -> Result<Vec<CeremonyResult>> {
        let serial = self.serial();
        let management_key = self.settings.management_key_file.clone().ok_or_else(|| {
            config_err(
                "piv.management_key_file",
                "init generates the CA keys on the card and needs the card's management key \
                 (a file holding it in hex, chmod 600)",
            )
        })?;
        let roots_path = self.settings.attestation_roots.clone().ok_or_else(|| {
            config_err(
                "piv.attestation_roots",
                "init checks each key's attestation and needs the device roots \
                 (a PEM file; Yubico's PIV attestation roots for a real key)",
            )
        })?;
        let roots = load_roots(&roots_path)?;
        // Everything that can refuse the card does so before anything is
        // generated: the factory management key, an unknown device root,
        // a slot holding another key type or an imported key.
        if self.device.uses_default_management_key()? {
            return Err(signet_hsm::Error::PivDefaultManagementKey { serial }.into());
        }
        let device_cert = parse_cert(
            &self.device.device_certificate()?,
            "the card's f9 certificate",
        )?;
        check_device(&device_cert, &roots, &roots_path)?;
        let mut found = Vec::new();
        for role in KeyRole::ALL {
            let slot = self.settings.slots.of(role);
            match self.device.key(slot) {
                Ok(key) => {
                    self.check_key(config, role, &key)?;
                    found.push(Some(key));
                }
                Err(signet_hsm::Error::PivSlotEmpty { .. }) => found.push(None),
                Err(e) => return Err(e.into()),
            }
        }
        let mut results = Vec::new();
        for (role, found) in KeyRole::ALL.into_iter().zip(found) {
            let slot = self.settings.slots.of(role);
            let algorithm = config.piv_algorithm(role);
            let (key, generated) = match found {
                Some(key) => (key, false),
                None => {
                    let spec = PivKeySpec {
                        // Checked by the configuration.
                        algorithm: piv_algorithm(algorithm).ok_or_else(|| {
                            config_err(
                                &format!("keys.{}", role.config_name()),
                                format!("a YubiKey cannot make {algorithm} keys"),
                            )
                        })?,
                        pin_policy: self.settings.pin_policy,
                        touch_policy: self.settings.touch_policy,
                    };
                    let key = self.device.generate(
                        slot,
                        spec,
                        &PivManagementKey::File(management_key.clone()),
                        false,
                    )?;
                    (key, true)
                }
            };
            let attestation = self.device.attestation(slot)?;
            let expected = Expected {
                role,
                slot,
                serial,
                public_key: key.public_key(),
                generated: key.generated_on_card(),
                pin_policy: self.settings.pin_policy,
                touch_policy: self.settings.touch_policy,
            };
            check_attestation(&expected, &attestation, &roots, &roots_path)?;
            results.push(CeremonyResult {
                role,
                algorithm,
                public_key: key.public_key().clone(),
                location: format!("slot {slot}"),
                generated,
                attestation: Some(attestation),
            });
        }
        Ok(results)
    }
}

/// What a key's attestation must state.
struct Expected<'a> {
    role: KeyRole,
    slot: signet_hsm::piv::PivSlot,
    /// The card's serial.
    serial: u32,
    /// The key in the slot, as the card reports it.
    public_key: &'a PublicKey,
    /// Whether the card reports the key as generated on it.
    generated: bool,
    pin_policy: PivPinPolicy,
    touch_policy: PivTouchPolicy,
}

/// Checks a key's attestation: the chain to a configured device root, the
/// attested key, the card's serial and the policies.
fn check_attestation(
    expected: &Expected<'_>,
    attestation: &PivAttestation,
    roots: &[Certificate],
    roots_path: &Path,
) -> Result<()> {
    let Expected {
        role, slot, serial, ..
    } = *expected;
    let fail = |reason: String| {
        Error::Attestation(format!(
            "the {role} key in slot {slot} of YubiKey {serial}: {reason}; the key is not used and nothing is logged"
        ))
    };
    let device = parse_cert(&attestation.device_certificate, "the card's f9 certificate")?;
    check_device(&device, roots, roots_path)?;
    let leaf = parse_cert(
        &attestation.certificate,
        "the slot's attestation certificate",
    )?;
    if !issued_by(&leaf, &device) {
        return Err(fail(
            "its attestation certificate is not signed by the card's f9 attestation key".into(),
        ));
    }
    let attested = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()
        .and_then(|der| PublicKey::from_spki_der(&der).ok());
    if attested.as_ref() != Some(expected.public_key) {
        return Err(fail("the attested key is not the key in the slot".into()));
    }
    if !expected.generated {
        return Err(fail(
            "the key was imported, not generated on the card".into(),
        ));
    }
    let extension = |oid: &str| {
        leaf.tbs_certificate()
            .extensions()
            .and_then(|exts| exts.iter().find(|e| e.extn_id.to_string() == oid))
            .map(|e| e.extn_value.as_bytes().to_vec())
    };
    let attested_serial = extension(OID_SERIAL).and_then(|v| u32::from_der(&v).ok());
    if attested_serial != Some(serial) {
        return Err(fail(format!(
            "the attestation names {}, not this card",
            attested_serial.map_or_else(|| "no serial".into(), |s| format!("YubiKey {s}"))
        )));
    }
    let wanted = [
        pin_policy_byte(expected.pin_policy),
        touch_policy_byte(expected.touch_policy),
    ];
    match extension(OID_POLICY) {
        Some(policy) if policy == wanted => Ok(()),
        Some(policy) => Err(fail(format!(
            "the card attests PIN policy {} and touch policy {}, the configuration asks for {} and {} \
             (piv.pin_policy, piv.touch_policy)",
            policy.first().copied().map_or("?".into(), pin_policy_name),
            policy.get(1).copied().map_or("?".into(), touch_policy_name),
            pin_policy_name(wanted[0]),
            touch_policy_name(wanted[1]),
        ))),
        None => Err(fail("the attestation states no PIN and touch policy".into())),
    }
}

/// Yubico's attestation extension: the device's serial (DER INTEGER).
const OID_SERIAL: &str = "1.3.6.1.4.1.41482.3.7";
/// Yubico's attestation extension: PIN and touch policy (two bytes).
const OID_POLICY: &str = "1.3.6.1.4.1.41482.3.8";

fn pin_policy_byte(policy: PivPinPolicy) -> u8 {
    match policy {
        PivPinPolicy::Never => 1,
        PivPinPolicy::Once => 2,
        PivPinPolicy::Always => 3,
    }
}

fn touch_policy_byte(policy: PivTouchPolicy) -> u8 {
    match policy {
        PivTouchPolicy::Never => 1,
        PivTouchPolicy::Always => 2,
        PivTouchPolicy::Cached => 3,
    }
}

fn pin_policy_name(byte: u8) -> String {
    match byte {
        1 => "never".into(),
        2 => "once".into(),
        3 => "always".into(),
        other => format!("{other:#04x}"),
    }
}

fn touch_policy_name(byte: u8) -> String {
    match byte {
        1 => "never".into(),
        2 => "always".into(),
        3 => "cached".into(),
        other => format!("{other:#04x}"),
    }
}

fn parse_cert(der_bytes: &[u8], what: &str) -> Result<Certificate> {
    Certificate::from_der(der_bytes)
        .map_err(|e| Error::Attestation(format!("{what} is not a DER X.509 certificate: {e}")))
}

/// The largest device-root file read (a handful of PEM certificates).
const MAX_ROOTS_LEN: u64 = 1024 * 1024;

/// Reads the configured device roots (PEM, one or more certificates).
fn load_roots(path: &Path) -> Result<Vec<Certificate>> {
    let file_err = |reason: String| Error::File {
        path: path.to_path_buf(),
        reason: format!("piv.attestation_roots: {reason}"),
    };
    let file = std::fs::File::open(path).map_err(|e| file_err(e.to_string()))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_ROOTS_LEN + 1),
        &mut bytes,
    )
    .map_err(|e| file_err(e.to_string()))?;
    if bytes.len() as u64 > MAX_ROOTS_LEN {
        return Err(file_err("larger than 1 MiB".into()));
    }
    let roots = Certificate::load_pem_chain(&bytes)
        .map_err(|e| file_err(format!("not PEM certificates: {e}")))?;
    if roots.is_empty() {
        return Err(file_err("holds no certificate".into()));
    }
    Ok(roots)
}

/// The card's `f9` certificate must be signed by one of the configured
/// device roots (every certificate in the file is trusted, so Yubico's
/// intermediates can be listed beside its roots). Validity periods are not
/// checked: the chain says where a key was born, which stays true, and a
/// card's attestation certificates share the `f9` certificate's validity.
fn check_device(device: &Certificate, roots: &[Certificate], roots_path: &Path) -> Result<()> {
    if roots.iter().any(|root| issued_by(device, root)) {
        return Ok(());
    }
    Err(Error::Attestation(format!(
        "the card's attestation certificate (issued by {}) does not chain to a device root in {} \
         (piv.attestation_roots); a card that cannot prove it is a genuine YubiKey is not used, and nothing was generated or logged",
        device.tbs_certificate().issuer(),
        roots_path.display()
    )))
}

/// Whether `issuer`'s key signed `child` (and its subject names `child`'s
/// issuer): ECDSA P-256/SHA-256, P-384/SHA-384, RSA PKCS#1 v1.5 SHA-256 (as
/// Yubico's roots sign), Ed25519.
fn issued_by(child: &Certificate, issuer: &Certificate) -> bool {
    if child.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return false;
    }
    let Some(key) = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()
        .and_then(|der| PublicKey::from_spki_der(&der).ok())
    else {
        return false;
    };
    let (Ok(tbs), Some(signature)) = (
        child.tbs_certificate().to_der(),
        child.signature().as_bytes(),
    ) else {
        return false;
    };
    match (child.signature_algorithm().oid.to_string().as_str(), &key) {
        ("1.2.840.10045.4.3.2", PublicKey::EcdsaP256(_)) => {
            p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verifies(&tbs, &sig.to_bytes(), RsaHash::Sha256))
        }
        ("1.2.840.10045.4.3.3", PublicKey::EcdsaP384(_)) => {
            p384::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verifies(&tbs, &sig.to_bytes(), RsaHash::Sha256))
        }
        ("1.2.840.113549.1.1.11", PublicKey::Rsa(_)) => {
            key.verifies(&tbs, signature, RsaHash::Sha256)
        }
        ("1.3.101.112", PublicKey::Ed25519(_)) => key.verifies(&tbs, signature, RsaHash::Sha256),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_types_a_yubikey_makes_map_to_piv() {
        assert_eq!(
            piv_algorithm(KeyAlgorithm::EcdsaP256),
            Some(PivAlgorithm::EcdsaP256)
        );
        assert_eq!(
            piv_algorithm(KeyAlgorithm::EcdsaP384),
            Some(PivAlgorithm::EcdsaP384)
        );
        for other in [
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::Rsa3072,
            KeyAlgorithm::Rsa4096,
        ] {
            assert_eq!(piv_algorithm(other), None);
        }
    }

    /// Runs openssl in `dir`, insisting on success.
    fn openssl(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pem_cert(path: &Path) -> Certificate {
        use der::DecodePem;
        Certificate::from_pem(std::fs::read(path).unwrap()).unwrap()
    }

    /// A device certificate as Yubico's older roots issue them: an RSA-2048
    /// root signing with sha256WithRSAEncryption, made here by openssl; and
    /// a P-384 root signing with ecdsa-with-SHA384.
    #[test]
    fn device_certificates_chain_to_rsa_and_p384_roots_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, key_args) in [
            (
                "rsa-root",
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
            ),
            (
                "ec-root",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
            ),
            (
                "stranger",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
            ),
            (
                "f9",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
            ),
        ] {
            let out = format!("{name}.key");
            let mut args = vec!["genpkey", "-out", &out];
            args.extend_from_slice(key_args);
            openssl(d, &args);
        }
        for (root, subject) in [
            ("rsa-root", "/CN=Test PIV Root CA"),
            ("ec-root", "/CN=Test PIV Root CA P-384"),
            // Same name as the RSA root, another key: a name is not enough.
            ("stranger", "/CN=Test PIV Root CA"),
        ] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-new",
                    "-key",
                    &format!("{root}.key"),
                    "-subj",
                    subject,
                    "-days",
                    "30",
                    "-sha256",
                    "-out",
                    &format!("{root}.pem"),
                ],
            );
        }
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                "f9.key",
                "-subj",
                "/CN=Yubico PIV Attestation",
                "-out",
                "f9.csr",
            ],
        );
        for (root, digest) in [("rsa-root", "-sha256"), ("ec-root", "-sha384")] {
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "f9.csr",
                    "-CA",
                    &format!("{root}.pem"),
                    "-CAkey",
                    &format!("{root}.key"),
                    "-days",
                    "30",
                    digest,
                    "-set_serial",
                    "7",
                    "-out",
                    &format!("f9-by-{root}.pem"),
                ],
            );
        }
        let rsa_root = pem_cert(&d.join("rsa-root.pem"));
        let ec_root = pem_cert(&d.join("ec-root.pem"));
        let stranger = pem_cert(&d.join("stranger.pem"));
        let by_rsa = pem_cert(&d.join("f9-by-rsa-root.pem"));
        let by_ec = pem_cert(&d.join("f9-by-ec-root.pem"));
        let roots_file = Path::new("roots.pem");
        check_device(&by_rsa, &[stranger.clone(), rsa_root.clone()], roots_file).unwrap();
        check_device(&by_ec, std::slice::from_ref(&ec_root), roots_file).unwrap();
        for (device, roots) in [
            (&by_rsa, vec![stranger.clone()]),
            (&by_rsa, vec![ec_root.clone()]),
            (&by_ec, vec![rsa_root.clone(), stranger.clone()]),
        ] {
            let err = check_device(device, &roots, roots_file)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("does not chain to a device root in roots.pem"),
                "{err}"
            );
        }
        // A signature that does not verify is refused, whatever the names say.
        // (The signature BIT STRING ends the certificate's DER.)
        let mut der_bytes = by_rsa.to_der().unwrap();
        if let Some(last) = der_bytes.last_mut() {
            *last ^= 1;
        }
        let forged = Certificate::from_der(&der_bytes).unwrap();
        assert!(issued_by(&by_rsa, &rsa_root));
        assert!(!issued_by(&forged, &rsa_root));
        // The roots file: PEM, bounded, not empty.
        std::fs::write(
            d.join("all.pem"),
            [
                std::fs::read(d.join("rsa-root.pem")).unwrap(),
                std::fs::read(d.join("ec-root.pem")).unwrap(),
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(load_roots(&d.join("all.pem")).unwrap().len(), 2);
        std::fs::write(d.join("empty.pem"), "").unwrap();
        std::fs::write(
            d.join("junk.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for bad in ["empty.pem", "junk.pem", "missing.pem"] {
            let err = load_roots(&d.join(bad)).unwrap_err().to_string();
            assert!(err.contains("piv.attestation_roots"), "{bad}: {err}");
        }
    }

    /// An attestation as a card makes one, by openssl: root → f9 → slot
    /// certificate with Yubico's serial and policy extensions.
    struct MadeAttestation {
        dir: tempfile::TempDir,
        roots: Vec<Certificate>,
        attestation: PivAttestation,
        key: PublicKey,
    }

    fn der_file(path: &Path) -> Vec<u8> {
        pem_cert(path).to_der().unwrap()
    }

    /// `serial` and `policy` are the extension values in hex (DER INTEGER,
    /// two raw bytes); `signer` signs the slot certificate ("f9" or another).
    fn made_attestation(serial: &str, policy: Option<&str>, signer: &str) -> MadeAttestation {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["root", "f9", "slot", "other"] {
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    &format!("{name}.key"),
                ],
            );
        }
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "root.key",
                "-subj",
                "/CN=Test PIV Root",
                "-days",
                "30",
                "-out",
                "root.pem",
            ],
        );
        // "other" poses as the f9 key: same name, another key.
        for (name, subject) in [
            ("f9", "/CN=Yubico PIV Attestation"),
            ("other", "/CN=Yubico PIV Attestation"),
            ("slot", "/CN=YubiKey PIV Attestation 82"),
        ] {
            openssl(
                d,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-subj",
                    subject,
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
        }
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "f9.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-days",
                "30",
                "-set_serial",
                "9",
                "-out",
                "f9.pem",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "other.csr",
                "-signkey",
                "other.key",
                "-days",
                "30",
                "-out",
                "other.pem",
            ],
        );
        let mut ext = format!("[yubico]\n1.3.6.1.4.1.41482.3.7 = DER:{serial}\n");
        if let Some(policy) = policy {
            ext.push_str(&format!("1.3.6.1.4.1.41482.3.8 = DER:{policy}\n"));
        }
        std::fs::write(d.join("ext.cnf"), ext).unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "slot.csr",
                "-CA",
                &format!("{signer}.pem"),
                "-CAkey",
                &format!("{signer}.key"),
                "-days",
                "30",
                "-set_serial",
                "10",
                "-extfile",
                "ext.cnf",
                "-extensions",
                "yubico",
                "-out",
                "slot.pem",
            ],
        );
        let slot = pem_cert(&d.join("slot.pem"));
        let key = PublicKey::from_spki_der(
            &slot
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .unwrap(),
        )
        .unwrap();
        MadeAttestation {
            roots: vec![pem_cert(&d.join("root.pem"))],
            attestation: PivAttestation {
                certificate: der_file(&d.join("slot.pem")),
                device_certificate: der_file(&d.join("f9.pem")),
            },
            key,
            dir,
        }
    }

    fn expect(key: &PublicKey) -> Expected<'_> {
        Expected {
            role: KeyRole::SshUserCa,
            slot: signet_hsm::piv::PivSlot::Retired(1),
            serial: 1234,
            public_key: key,
            generated: true,
            pin_policy: PivPinPolicy::Once,
            touch_policy: PivTouchPolicy::Never,
        }
    }

    /// 1234 as a DER INTEGER; PIN once, touch never.
    const SERIAL_1234: &str = "02:02:04:D2";
    const ONCE_NEVER: &str = "02:01";

    #[test]
    fn an_attestation_must_state_this_key_card_and_policies() {
        let made = made_attestation(SERIAL_1234, Some(ONCE_NEVER), "f9");
        let roots_path = made.dir.path().join("roots.pem");
        let check = |expected: &Expected<'_>, attestation: &PivAttestation| {
            check_attestation(expected, attestation, &made.roots, &roots_path)
                .map_err(|e| e.to_string())
        };
        check(&expect(&made.key), &made.attestation).unwrap();

        let other_key = PublicKey::from_spki_der(
            &pem_cert(&made.dir.path().join("other.pem"))
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .unwrap(),
        )
        .unwrap();
        let cases: Vec<(Expected<'_>, &str)> = vec![
            (Expected { public_key: &other_key, ..expect(&made.key) }, "the attested key is not the key in the slot"),
            (Expected { serial: 999, ..expect(&made.key) }, "names YubiKey 1234, not this card"),
            (Expected { generated: false, ..expect(&made.key) }, "imported, not generated on the card"),
            (
                Expected { touch_policy: PivTouchPolicy::Always, ..expect(&made.key) },
                "attests PIN policy once and touch policy never, the configuration asks for once and always",
            ),
            (Expected { pin_policy: PivPinPolicy::Always, ..expect(&made.key) }, "piv.pin_policy"),
        ];
        for (expected, says) in cases {
            let err = check(&expected, &made.attestation).unwrap_err();
            assert!(err.contains(says), "{says}: {err}");
            assert!(err.contains("ssh-user-ca key in slot 82"), "{err}");
        }

        // The slot certificate signed by a key posing as the card's f9.
        let forged = made_attestation(SERIAL_1234, Some(ONCE_NEVER), "other");
        let err = check_attestation(
            &expect(&forged.key),
            &forged.attestation,
            &forged.roots,
            &roots_path,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("not signed by the card's f9 attestation key"),
            "{err}"
        );
        // An f9 certificate from another root.
        let stranger = made_attestation(SERIAL_1234, Some(ONCE_NEVER), "f9");
        let err = check_attestation(
            &expect(&stranger.key),
            &stranger.attestation,
            &made.roots,
            &roots_path,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not chain to a device root"), "{err}");
        // No policy extension.
        let bare = made_attestation(SERIAL_1234, None, "f9");
        let err = check_attestation(
            &expect(&bare.key),
            &bare.attestation,
            &bare.roots,
            &roots_path,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("states no PIN and touch policy"), "{err}");
        // A serial extension that is not an INTEGER.
        let junk = made_attestation("04:02:04:D2", Some(ONCE_NEVER), "f9");
        let err = check_attestation(
            &expect(&junk.key),
            &junk.attestation,
            &junk.roots,
            &roots_path,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("names no serial"), "{err}");
    }

    #[test]
    fn policy_bytes_are_yubicos() {
        assert_eq!(pin_policy_byte(PivPinPolicy::Once), 2);
        assert_eq!(touch_policy_byte(PivTouchPolicy::Never), 1);
        assert_eq!(pin_policy_name(3), "always");
        assert_eq!(touch_policy_name(3), "cached");
    }
}
