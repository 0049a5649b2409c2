#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The signet-hsm PIV backend against the virtual YubiKey through a real
//! pcscd, or against the real key named by `SIGNET_YUBIKEY_SERIAL` (these
//! tests generate keys, so a real key also needs
//! `SIGNET_YUBIKEY_DESTRUCTIVE=1` and factory credentials).
//!
//! Certificates signed in a PIV slot are checked by the reference tools:
//! `ssh-keygen -L`, a real `sshd` with `TrustedUserCAKeys`, `openssl verify`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{verify_signed_by, Fixture, PIN};
use der::{Decode, EncodePem};
use signet_firmware_tests::touch::TouchMode;
use signet_hsm::piv::{
    PivAlgorithm, PivConfig, PivDevice, PivKey, PivKeySpec, PivManagementKey, PivPinPolicy,
    PivSlot, PivTouchPolicy,
};
use signet_hsm::{
    Error, PinSource, PublicKey, SigningBackend, SshSigner, X509Signature, X509Signer,
};
use signet_testkit::Sshd;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

/// A scratch directory with the PIN in a file (never on a command line).
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("signet-piv-backend-")
            .tempdir()
            .unwrap();
        let secret = |name: &str, value: &[u8]| {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(name);
            std::fs::write(&path, [value, b"\n"].concat()).unwrap();
            // PIN files must be readable by their owner only.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        secret("pin", PIN);
        secret("wrong-pin", b"999999");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, dev: &Fixture) -> PivConfig {
        PivConfig {
            serial: dev.serial(),
            pin: Some(PinSource::File(self.path("pin"))),
        }
    }
}

fn generate(
    device: &PivDevice,
    slot: PivSlot,
    algorithm: PivAlgorithm,
    pin_policy: PivPinPolicy,
    touch_policy: PivTouchPolicy,
) -> PivKey {
    device
        .generate(
            slot,
            PivKeySpec {
                algorithm,
                pin_policy,
                touch_policy,
            },
            &PivManagementKey::FactoryDefault,
            // A real key under test may hold keys from earlier runs.
            true,
        )
        .unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A fresh user key pair made by ssh-keygen.
fn user_key(dir: &Path) -> (PathBuf, ssh_key::PublicKey) {
    let path = dir.join("user");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "user", "-f"])
        .arg(&path));
    let public = ssh_key::PublicKey::from_openssh(
        &std::fs::read_to_string(path.with_extension("pub")).unwrap(),
    )
    .unwrap();
    (path, public)
}

/// An OpenSSH user certificate for `principal`, signed by `signer`.
fn ssh_user_cert<B: SigningBackend>(
    signer: &SshSigner<B>,
    subject: &ssh_key::PublicKey,
    principal: &str,
) -> ssh_key::Certificate {
    let start = now() - 60;
    let mut builder = ssh_key::certificate::Builder::new(
        [0x5a; 32],
        subject.key_data().clone(),
        start,
        start + 3600,
    )
    .unwrap();
    builder
        .serial(42)
        .unwrap()
        .key_id("signet-piv-test")
        .unwrap()
        .cert_type(ssh_key::certificate::CertType::User)
        .unwrap()
        .valid_principal(principal)
        .unwrap()
        .extension("permit-pty", "")
        .unwrap();
    builder.sign(signer).unwrap()
}

/// Signs an SSH certificate in the slot and checks it with ssh-keygen -L
/// and ssh-key's own signature check.
fn check_ssh<B: SigningBackend>(key: B, dir: &Path) -> (SshSigner<B>, PathBuf, PathBuf) {
    let signer = SshSigner::with_backend(key).unwrap();
    let (user_private, user_public) = user_key(dir);
    let cert = ssh_user_cert(&signer, &user_public, &current_user());
    let ca = ssh_key::PublicKey::new(signer.key_data().clone(), "signet-piv-ca");
    cert.validate([&ca.fingerprint(ssh_key::HashAlg::Sha256)])
        .unwrap();
    let cert_path = dir.join("user-cert.pub");
    std::fs::write(&cert_path, cert.to_openssh().unwrap()).unwrap();
    let listing = run(Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&cert_path));
    assert!(listing.contains("user certificate"), "{listing}");
    assert!(
        listing.contains(&ca.fingerprint(ssh_key::HashAlg::Sha256).to_string()),
        "{listing}"
    );
    let ca_path = dir.join("ca.pub");
    std::fs::write(&ca_path, ca.to_openssh().unwrap()).unwrap();
    (signer, user_private, ca_path)
}

struct RootProfile {
    subject: Name,
}

impl BuilderProfile for RootProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let basic = BasicConstraints {
            ca: true,
            path_len_constraint: Some(0),
        }
        .to_extension(tbs.subject(), &[])?;
        let mut exts = vec![basic];
        exts.push(KeyUsage(KeyUsages::KeyCertSign.into()).to_extension(tbs.subject(), &exts)?);
        exts.push(SubjectKeyIdentifier::try_from(spk)?.to_extension(tbs.subject(), &exts)?);
        Ok(exts)
    }
}

struct LeafProfile {
    issuer: Name,
    subject: Name,
}

impl BuilderProfile for LeafProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let basic = BasicConstraints {
            ca: false,
            path_len_constraint: None,
        }
        .to_extension(tbs.subject(), &[])?;
        let mut exts = vec![basic];
        exts.push(KeyUsage(KeyUsages::DigitalSignature.into()).to_extension(tbs.subject(), &exts)?);
        Ok(exts)
    }
}

fn validity() -> Validity {
    let now = SystemTime::now();
    Validity::new(
        Time::try_from(now - Duration::from_secs(60)).unwrap(),
        Time::try_from(now + Duration::from_secs(3600)).unwrap(),
    )
}

fn spki_of(key: &PublicKey) -> spki::SubjectPublicKeyInfoOwned {
    spki::SubjectPublicKeyInfoOwned::from_der(&key.to_spki_der().unwrap()).unwrap()
}

/// A root over the slot key and a leaf for a software key, both signed in
/// the slot; `openssl verify` must accept the chain.
fn check_x509<B: SigningBackend>(key: B, dir: &Path) {
    let signer = X509Signer::with_backend(key);
    let root_name = Name::from_str("CN=Signet PIV test CA,O=Signet").unwrap();
    let root = CertificateBuilder::new(
        RootProfile {
            subject: root_name.clone(),
        },
        SerialNumber::new(&[0x41, 1, 2, 3]).unwrap(),
        validity(),
        spki_of(signer.public_key()),
    )
    .unwrap()
    .build::<_, X509Signature>(&signer)
    .unwrap();

    let leaf_key = p256::ecdsa::SigningKey::from_slice(&[0x17; 32]).unwrap();
    let leaf_public = PublicKey::EcdsaP256(*leaf_key.verifying_key());
    let leaf = CertificateBuilder::new(
        LeafProfile {
            issuer: root_name,
            subject: Name::from_str("CN=alice").unwrap(),
        },
        SerialNumber::new(&[0x42, 4, 5, 6]).unwrap(),
        validity(),
        spki_of(&leaf_public),
    )
    .unwrap()
    .build::<_, X509Signature>(&signer)
    .unwrap();

    verify_signed_by(&leaf, &root);
    let root_path = dir.join("root.pem");
    let leaf_path = dir.join("leaf.pem");
    let pem = |c: &Certificate| c.to_pem(der::pem::LineEnding::LF).unwrap();
    std::fs::write(&root_path, pem(&root)).unwrap();
    std::fs::write(&leaf_path, pem(&leaf)).unwrap();
    let out = run(Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root_path)
        .arg(&leaf_path));
    assert!(out.contains(": OK"), "{out}");
}

#[test]
fn ssh_certificate_signed_in_9c_is_read_by_ssh_keygen_and_accepted_by_sshd() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let scratch = Scratch::new();
    let device = PivDevice::open(&scratch.config(&dev)).unwrap();
    let key = generate(
        &device,
        PivSlot::Signature,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Always,
        PivTouchPolicy::Never,
    );
    assert_eq!(key.slot().to_string(), "9c");
    let (_signer, user_private, ca_path) = check_ssh(key, scratch.dir.path());

    let sshd = Sshd::start(&format!("TrustedUserCAKeys {}\n", ca_path.display()), None);
    let out = Command::new("ssh")
        .args(["-F", "/dev/null", "-p", &sshd.port().to_string()])
        .arg("-i")
        .arg(&user_private)
        .arg("-o")
        .arg(format!(
            "CertificateFile={}",
            scratch.path("user-cert.pub").display()
        ))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
        ])
        .arg(format!(
            "UserKnownHostsFile={}",
            scratch.path("known_hosts").display()
        ))
        .arg(format!("{}@127.0.0.1", current_user()))
        .arg("echo signet-piv-ok")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh failed: {}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "signet-piv-ok");
    let log = sshd.log();
    assert!(log.contains("Accepted publickey"), "{log}");
    assert!(log.contains("signet-piv-test"), "{log}");
}

#[test]
fn x509_chain_signed_in_9c_passes_openssl_verify() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let scratch = Scratch::new();
    let device = PivDevice::open(&scratch.config(&dev)).unwrap();
    let key = generate(
        &device,
        PivSlot::Signature,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Once,
        PivTouchPolicy::Never,
    );
    check_x509(key, scratch.dir.path());
}

#[test]
fn p384_and_rsa2048_sign_through_both_adapters() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let scratch = Scratch::new();
    let device = PivDevice::open(&scratch.config(&dev)).unwrap();
    for (slot, algorithm) in [
        (PivSlot::Retired(1), PivAlgorithm::EcdsaP384),
        (PivSlot::Retired(2), PivAlgorithm::Rsa2048),
    ] {
        let key = generate(
            &device,
            slot,
            algorithm,
            PivPinPolicy::Once,
            PivTouchPolicy::Never,
        );
        let dir = scratch.path(algorithm.name());
        std::fs::create_dir(&dir).unwrap();
        check_ssh(key.clone(), &dir);
        check_x509(key, &dir);
    }
}

#[test]
fn slot_keys_are_read_back_and_never_replaced_unasked() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let scratch = Scratch::new();
    let device = PivDevice::open(&scratch.config(&dev)).unwrap();
    let key = generate(
        &device,
        PivSlot::Authentication,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Once,
        PivTouchPolicy::Cached,
    );
    let again = device.key(PivSlot::Authentication).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    assert_eq!(again.algorithm(), PivAlgorithm::EcdsaP256);
    assert_eq!(again.pin_policy(), PivPinPolicy::Once);
    assert_eq!(again.touch_policy(), PivTouchPolicy::Cached);
    assert!(again.generated_on_card());

    let refused = device.generate(
        PivSlot::Authentication,
        PivKeySpec {
            algorithm: PivAlgorithm::EcdsaP384,
            pin_policy: PivPinPolicy::Once,
            touch_policy: PivTouchPolicy::Never,
        },
        &PivManagementKey::FactoryDefault,
        false,
    );
    assert!(
        matches!(refused, Err(Error::PivSlotOccupied { .. })),
        "{refused:?}"
    );
    assert_eq!(
        device.key(PivSlot::Authentication).unwrap().public_key(),
        key.public_key()
    );
    if dev.is_virtual() {
        let empty = device.key(PivSlot::Retired(20)).unwrap_err();
        assert!(matches!(empty, Error::PivSlotEmpty { .. }), "{empty:?}");
        assert!(empty.to_string().contains("95"), "{empty}");
    }
    // A wrong management key is refused without naming it.
    let mgm = scratch.path("mgm");
    std::fs::write(&mgm, "0102030405060708090a0b0c0d0e0f101112131415161718\n").unwrap();
    owner_only(&mgm);
    let err = device
        .generate(
            PivSlot::Retired(3),
            PivKeySpec {
                algorithm: PivAlgorithm::EcdsaP256,
                pin_policy: PivPinPolicy::Once,
                touch_policy: PivTouchPolicy::Never,
            },
            &PivManagementKey::File(mgm),
            true,
        )
        .unwrap_err();
    assert!(matches!(err, Error::PivManagementKey(_)), "{err:?}");
    assert!(!err.to_string().contains("0102"), "{err}");
}

#[test]
fn attestation_chain_of_the_generated_key() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let scratch = Scratch::new();
    let device = PivDevice::open(&scratch.config(&dev)).unwrap();
    let key = generate(
        &device,
        PivSlot::Signature,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Always,
        PivTouchPolicy::Never,
    );
    let attestation = device.attestation(PivSlot::Signature).unwrap();
    let leaf = Certificate::from_der(&attestation.certificate).unwrap();
    let f9 = Certificate::from_der(&attestation.device_certificate).unwrap();
    verify_signed_by(&leaf, &f9);
    // The f9 certificate alone (read before any key exists, to refuse an
    // unknown card first) is the one that signs the slot's attestation.
    assert_eq!(
        device.device_certificate().unwrap(),
        attestation.device_certificate
    );
    for root in dev.attestation_roots() {
        verify_signed_by(&f9, &root);
    }
    let attested = PublicKey::from_spki_der(
        &der::Encode::to_der(leaf.tbs_certificate().subject_public_key_info()).unwrap(),
    )
    .unwrap();
    assert_eq!(&attested, key.public_key());
}

fn owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A management key of the test's own (3DES, as firmware before 5.7 uses).
const OWN_MGM: [u8; 24] = [
    0x3c, 0x91, 0x5e, 0x07, 0xa2, 0x6d, 0xf4, 0x18, 0x8b, 0x20, 0xc7, 0x53, 0x1e, 0xe9, 0x74, 0x0a,
    0xd6, 0x4f, 0x32, 0xb8, 0x65, 0x9c, 0x01, 0xfe,
];

fn own_mgm() -> yubikey::MgmKey {
    yubikey::MgmKey::from_bytes(OWN_MGM, Some(yubikey::MgmAlgorithmId::ThreeDes)).unwrap()
}

#[test]
fn a_ca_key_on_a_card_with_the_factory_management_key_is_refused() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let scratch = Scratch::new();
    let device = PivDevice::open(&scratch.config(&dev)).unwrap();
    let key = generate(
        &device,
        PivSlot::Signature,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Once,
        PivTouchPolicy::Never,
    );
    assert!(device.uses_default_management_key().unwrap());
    let err = device.ca_key(PivSlot::Signature).unwrap_err();
    assert!(
        matches!(err, Error::PivDefaultManagementKey { serial } if serial == dev.serial()),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("factory-default PIV management key")
            && text.contains("change-management-key"),
        "{text}"
    );

    // With a management key of its own, the same key is a CA key.
    {
        let mut yk = dev.open_admin();
        own_mgm().set_manual(&mut yk, false).unwrap();
    }
    assert!(!device.uses_default_management_key().unwrap());
    let ca = device.ca_key(PivSlot::Signature).unwrap();
    assert_eq!(ca.public_key(), key.public_key());
    // … and the management key comes from an owner-only file.
    let mgm = scratch.path("own-mgm");
    let hex: String = OWN_MGM.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&mgm, format!("{hex}\n")).unwrap();
    owner_only(&mgm);
    device
        .generate(
            PivSlot::Retired(2),
            PivKeySpec {
                algorithm: PivAlgorithm::EcdsaP256,
                pin_policy: PivPinPolicy::Once,
                touch_policy: PivTouchPolicy::Never,
            },
            &PivManagementKey::File(mgm),
            true,
        )
        .unwrap();

    // Put the factory key back (a real key under test is shared by the suite).
    {
        let mut yk = dev.open();
        yk.authenticate(&own_mgm()).unwrap();
        yubikey::MgmKey::set_default(&mut yk).unwrap();
    }
    assert!(device.uses_default_management_key().unwrap());
}

#[test]
fn the_factory_management_key_is_found_without_get_metadata() {
    // Firmware before 5.3 has no GET METADATA: the backend tries the key.
    let Some(dev) = Fixture::virtual_only(signet_firmware_tests::harness::VirtualKeyOptions {
        firmware: [5, 2, 7],
        ..Default::default()
    }) else {
        return;
    };
    let scratch = Scratch::new();
    let device = PivDevice::open(&scratch.config(&dev)).unwrap();
    assert!(device.uses_default_management_key().unwrap());
    {
        let mut yk = dev.open_admin();
        own_mgm().set_manual(&mut yk, false).unwrap();
    }
    assert!(!device.uses_default_management_key().unwrap());
}

#[test]
fn wrong_pin_reports_retries_left_and_costs_exactly_one_try() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let scratch = Scratch::new();
    let good = PivDevice::open(&scratch.config(&dev)).unwrap();
    let key = generate(
        &good,
        PivSlot::Authentication,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Once,
        PivTouchPolicy::Never,
    );
    let before = good.pin_retries().unwrap();
    assert!(before >= 2, "the test needs at least two PIN tries left");

    let wrong = PivDevice::open(&PivConfig {
        serial: dev.serial(),
        pin: Some(PinSource::File(scratch.path("wrong-pin"))),
    })
    .unwrap();
    let wrong_key = wrong.key(PivSlot::Authentication).unwrap();
    let err = wrong_key
        .sign(b"message", signet_hsm::RsaHash::Sha256)
        .wait()
        .unwrap_err();
    assert!(
        matches!(err, Error::PivPinIncorrect { retries_left } if retries_left == before - 1),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("{} tries left", before - 1)),
        "{text}"
    );
    assert!(!text.contains("999999") && !format!("{err:?}").contains("999999"));
    assert_eq!(good.pin_retries().unwrap(), before - 1);

    // Not sent again: the counter stays where it is.
    let err = wrong_key
        .sign(b"message", signet_hsm::RsaHash::Sha256)
        .wait()
        .unwrap_err();
    assert!(matches!(err, Error::PivPinNotRetried), "{err:?}");
    assert_eq!(good.pin_retries().unwrap(), before - 1);

    // The right PIN signs and restores the counter.
    key.sign(b"message", signet_hsm::RsaHash::Sha256)
        .wait()
        .unwrap();
    assert_eq!(good.pin_retries().unwrap(), before);

    // A key that needs the PIN, on a handle without one, says so.
    let no_pin = PivDevice::open(&PivConfig {
        serial: dev.serial(),
        pin: None,
    })
    .unwrap();
    let err = no_pin
        .key(PivSlot::Authentication)
        .unwrap()
        .sign(b"message", signet_hsm::RsaHash::Sha256)
        .wait()
        .unwrap_err();
    assert!(matches!(err, Error::PivPinRequired { .. }), "{err:?}");
}

#[test]
fn touch_denied_is_reported_as_a_missing_touch() {
    let Some(dev) = Fixture::virtual_only(Default::default()) else {
        return;
    };
    let scratch = Scratch::new();
    let device = PivDevice::open(&scratch.config(&dev)).unwrap();
    let key = generate(
        &device,
        PivSlot::CardAuthentication,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Never,
        PivTouchPolicy::Always,
    );
    let touch = dev.touch().unwrap().clone();
    touch.set_mode(TouchMode::Deny);
    let signer = SshSigner::with_backend(key.clone()).unwrap();
    let err = key
        .sign(b"message", signet_hsm::RsaHash::Sha256)
        .wait()
        .unwrap_err();
    assert!(matches!(err, Error::PivTouchRequired { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("touch") && text.contains("9e"), "{text}");
    // Through the signature::Signer adapter the cause is kept.
    let err = signature::Signer::<ssh_key::Signature>::try_sign(&signer, b"m").unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("requires a touch"), "{source}");

    touch.set_mode(TouchMode::Approve);
    let requests = touch.requests();
    signature::Signer::<ssh_key::Signature>::try_sign(&signer, b"m").unwrap();
    assert_eq!(touch.requests(), requests + 1);
}

/// Connects to the card's reader exclusively: that only works when no other
/// connection (ours included) holds the card.
fn exclusive_connect(dev: &Fixture) -> Result<(), pcsc::Error> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)?;
    let mut buf = vec![0u8; 4096];
    let readers: Vec<_> = ctx.list_readers(&mut buf)?.map(|r| r.to_owned()).collect();
    let reader = readers
        .iter()
        .find(|r| r.to_string_lossy().contains(dev.reader_filter()))
        .expect("a YubiKey reader");
    let card = ctx.connect(reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)?;
    card.disconnect(pcsc::Disposition::LeaveCard)
        .map_err(|(_, e)| e)
}

#[test]
fn the_card_is_released_between_signatures() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let scratch = Scratch::new();
    let device = PivDevice::open(&scratch.config(&dev)).unwrap();
    let key = generate(
        &device,
        PivSlot::Signature,
        PivAlgorithm::EcdsaP256,
        PivPinPolicy::Once,
        PivTouchPolicy::Never,
    );
    let signer = X509Signer::with_backend(key.clone());
    for round in 0..3 {
        signature::Signer::<X509Signature>::try_sign(&signer, format!("m{round}").as_bytes())
            .unwrap();
        // Nobody holds the card: an exclusive connection succeeds, and so
        // does another program.
        exclusive_connect(&dev).unwrap();
        let status = run(Command::new("yubico-piv-tool")
            .args(["-r", dev.reader_filter(), "-a", "status"])
            .envs(dev.envs()));
        assert!(
            status.contains("Serial Number:") && status.contains(&dev.serial().to_string()),
            "{status}"
        );
    }

    // While another program holds the card exclusively, signing fails with
    // a clear error instead of waiting or retrying the PIN.
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let mut buf = vec![0u8; 4096];
    let reader = ctx
        .list_readers(&mut buf)
        .unwrap()
        .find(|r| r.to_string_lossy().contains(dev.reader_filter()))
        .unwrap()
        .to_owned();
    let held = ctx
        .connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
        .unwrap();
    let err = key
        .sign(b"busy", signet_hsm::RsaHash::Sha256)
        .wait()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PivCardBusy { .. } | Error::PivCardNotFound { .. }
        ),
        "{err:?}"
    );
    drop(held);
    key.sign(b"free again", signet_hsm::RsaHash::Sha256)
        .wait()
        .unwrap();
}

#[test]
fn a_card_that_is_not_there_is_named() {
    let Some(dev) = Fixture::new(false) else {
        return;
    };
    let err = PivDevice::open(&PivConfig {
        serial: dev.serial().wrapping_add(1),
        pin: None,
    })
    .unwrap_err();
    assert!(matches!(err, Error::PivCardNotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&dev.serial().wrapping_add(1).to_string()),
        "{err}"
    );
}
