//! The device fixture every conformance test goes through: a virtual
//! YubiKey behind a private pcscd by default, or the real key named by
//! `SIGNET_YUBIKEY_SERIAL` (through the system pcscd).
//!
//! Tests that change the key (generate, write, block, reset) are
//! "destructive": against a real key they run only with
//! `SIGNET_YUBIKEY_DESTRUCTIVE=1`, and expect factory credentials (PIN
//! 123456, PUK 12345678, default management key).

// Test support: a failed set-up is a failed test, so panicking is the point.
#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use der::{Decode, Encode};
use signet_firmware_tests::harness::{DeviceLock, VirtualKeyOptions, VirtualYubiKey};
use signet_firmware_tests::touch::TouchControl;
use std::path::PathBuf;
use x509_cert::Certificate;
use yubikey::{MgmKey, Serial, YubiKey};

/// Serial of a real key to qualify.
pub const SERIAL_ENV: &str = "SIGNET_YUBIKEY_SERIAL";
/// Allows tests that overwrite keys and credentials on the real key.
pub const DESTRUCTIVE_ENV: &str = "SIGNET_YUBIKEY_DESTRUCTIVE";
/// PEM file with the attestation root(s) to check a real key's chain against.
pub const ROOT_ENV: &str = "SIGNET_YUBIKEY_ATTESTATION_ROOT";

pub const PIN: &[u8] = b"123456";
pub const PUK: &[u8] = b"12345678";

enum Target {
    Virtual(Box<VirtualYubiKey>),
    Real { serial: u32, _lock: DeviceLock },
}

/// One device under test, exclusively held for the test's duration.
pub struct Fixture {
    target: Target,
}

impl Fixture {
    /// The device for a test; `None` means "skip" (reason printed).
    pub fn new(destructive: bool) -> Option<Self> {
        Self::with_options(destructive, VirtualKeyOptions::default())
    }

    /// As [`Fixture::new`], with options for the virtual key (ignored for a
    /// real key).
    pub fn with_options(destructive: bool, opts: VirtualKeyOptions) -> Option<Self> {
        match std::env::var(SERIAL_ENV) {
            Ok(serial) => {
                if destructive && std::env::var(DESTRUCTIVE_ENV).as_deref() != Ok("1") {
                    eprintln!("skipped: destructive test; set {DESTRUCTIVE_ENV}=1 to run it on the real key");
                    return None;
                }
                let serial: u32 = serial.parse().expect("SIGNET_YUBIKEY_SERIAL is a number");
                let lock = DeviceLock::acquire().expect("device lock");
                Some(Self {
                    target: Target::Real {
                        serial,
                        _lock: lock,
                    },
                })
            }
            Err(_) => Some(Self {
                target: Target::Virtual(Box::new(
                    VirtualYubiKey::start(opts).expect("virtual YubiKey"),
                )),
            }),
        }
    }

    /// A fixture only a virtual key can provide (touch control, firmware
    /// choice, state files); `None` against a real key.
    pub fn virtual_only(opts: VirtualKeyOptions) -> Option<Self> {
        if std::env::var(SERIAL_ENV).is_ok() {
            eprintln!("skipped: needs the virtual key");
            return None;
        }
        Self::with_options(true, opts)
    }

    pub fn serial(&self) -> u32 {
        match &self.target {
            Target::Virtual(v) => v.serial(),
            Target::Real { serial, .. } => *serial,
        }
    }

    pub fn is_virtual(&self) -> bool {
        matches!(self.target, Target::Virtual(_))
    }

    pub fn virtual_key(&mut self) -> Option<&mut VirtualYubiKey> {
        match &mut self.target {
            Target::Virtual(v) => Some(v),
            Target::Real { .. } => None,
        }
    }

    pub fn touch(&self) -> Option<&TouchControl> {
        match &self.target {
            Target::Virtual(v) => Some(v.touch()),
            Target::Real { .. } => None,
        }
    }

    /// Opens the key through the `yubikey` crate, by serial.
    pub fn open(&self) -> YubiKey {
        YubiKey::open_by_serial(Serial(self.serial())).expect("open_by_serial")
    }

    /// Opens the key and authenticates with the default management key.
    pub fn open_admin(&self) -> YubiKey {
        let mut yk = self.open();
        let mgm = MgmKey::get_default(&yk).expect("default management key");
        yk.authenticate(&mgm)
            .expect("management key authentication");
        yk
    }

    /// Environment that makes a child process (tool) talk to this device.
    pub fn envs(&self) -> Vec<(String, PathBuf)> {
        match &self.target {
            Target::Virtual(v) => v.pcscd().envs(),
            Target::Real { .. } => Vec::new(),
        }
    }

    /// The PC/SC reader name to hand to yubico-piv-tool (`-r`).
    pub fn reader_filter(&self) -> &'static str {
        "Yubico YubiKey"
    }

    /// Attestation roots to verify chains against.
    pub fn attestation_roots(&self) -> Vec<Certificate> {
        match &self.target {
            Target::Virtual(v) => {
                vec![Certificate::from_der(v.root().cert_der()).expect("root")]
            }
            Target::Real { .. } => match std::env::var(ROOT_ENV) {
                Ok(path) => {
                    let pem = std::fs::read(path).expect("attestation root file");
                    Certificate::load_pem_chain(&pem).expect("attestation root PEM")
                }
                Err(_) => Vec::new(),
            },
        }
    }
}

/// Verifies that `child` is signed by `issuer`'s key (ECDSA P-256/P-384 or
/// RSA PKCS#1 v1.5 with SHA-256/384).
pub fn verify_signed_by(child: &Certificate, issuer: &Certificate) {
    use signature::Verifier;
    assert_eq!(
        child.tbs_certificate().issuer(),
        issuer.tbs_certificate().subject(),
        "issuer name"
    );
    let tbs = child.tbs_certificate().to_der().unwrap();
    let sig = child.signature().as_bytes().unwrap();
    let spki = issuer.tbs_certificate().subject_public_key_info();
    let alg = child.signature_algorithm().oid.to_string();
    let key = spki.subject_public_key.as_bytes().unwrap();
    match alg.as_str() {
        "1.2.840.10045.4.3.2" => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).unwrap();
            vk.verify(&tbs, &p256::ecdsa::DerSignature::from_bytes(sig).unwrap())
                .unwrap();
        }
        "1.2.840.10045.4.3.3" => {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).unwrap();
            vk.verify(&tbs, &p384::ecdsa::DerSignature::from_bytes(sig).unwrap())
                .unwrap();
        }
        "1.2.840.113549.1.1.11" => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            let pk = rsa::RsaPublicKey::from_pkcs1_der(key).unwrap();
            let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(pk);
            vk.verify(&tbs, &rsa::pkcs1v15::Signature::try_from(sig).unwrap())
                .unwrap();
        }
        other => panic!("unexpected signature algorithm {other}"),
    }
}

/// The value of a certificate extension by OID.
pub fn extension<'a>(cert: &'a Certificate, oid: &str) -> Option<&'a [u8]> {
    cert.tbs_certificate()
        .extensions()?
        .iter()
        .find(|e| e.extn_id.to_string() == oid)
        .map(|e| e.extn_value.as_bytes())
}
