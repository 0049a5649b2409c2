//! The `virtual-yubikey` program end to end: it connects to a (private)
//! pcscd's vpcd driver, persists its state across restarts, creates and
//! uses the attestation root it is given, and obeys its touch control file.

// Conformance checks: a failed assertion or unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::{Decode, DecodePem};
use signet_firmware_tests::harness::{DeviceLock, Pcscd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use x509_cert::Certificate;
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{Error, MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

const SERIAL: u32 = 7_654_321;

/// The card process, killed on drop.
struct Card(Child);

impl Card {
    fn start(pcscd: &Pcscd, dir: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_virtual-yubikey"))
            .args(["--serial", &SERIAL.to_string(), "--firmware", "5.7.1"])
            .arg("--attestation-root")
            .arg(dir.join("att"))
            .arg("--state")
            .arg(dir.join("state.json"))
            .arg("--touch-control")
            .arg(dir.join("touch"))
            .arg("--vpcd")
            .arg(pcscd.vpcd_addr(0).to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        pcscd.wait_for_cards(1, Duration::from_secs(15)).unwrap();
        Self(child)
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn program_persists_state_attests_and_obeys_touch_control() {
    if std::env::var("SIGNET_YUBIKEY_SERIAL").is_ok() {
        return; // about the emulator only
    }
    let _lock = DeviceLock::acquire().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start().unwrap();
    let digest = [3u8; 32];

    let spki = {
        let _card = Card::start(&pcscd, dir.path());
        let mut yk = YubiKey::open_by_serial(Serial(SERIAL)).unwrap();
        assert_eq!(yk.version().minor, 7);
        yk.authenticate(&MgmKey::get_default(&yk).unwrap()).unwrap();
        let spki = piv::generate(
            &mut yk,
            SlotId::Authentication,
            AlgorithmId::EccP256,
            PinPolicy::Never,
            TouchPolicy::Always,
        )
        .unwrap();
        std::fs::write(dir.path().join("touch"), "deny\n").unwrap();
        assert_eq!(
            piv::sign_data(
                &mut yk,
                &digest,
                AlgorithmId::EccP256,
                SlotId::Authentication
            )
            .err(),
            Some(Error::AuthenticationError)
        );
        std::fs::write(dir.path().join("touch"), "delay 20\n").unwrap();
        piv::sign_data(
            &mut yk,
            &digest,
            AlgorithmId::EccP256,
            SlotId::Authentication,
        )
        .unwrap();
        spki
    };
    pcscd.wait_for_cards(0, Duration::from_secs(5)).unwrap();

    // Restart: same key, and its attestation chains to the root on disk.
    let _card = Card::start(&pcscd, dir.path());
    let mut yk = YubiKey::open_by_serial(Serial(SERIAL)).unwrap();
    let meta = piv::metadata(&mut yk, SlotId::Authentication).unwrap();
    assert_eq!(meta.public.as_ref(), Some(&spki));
    let leaf =
        Certificate::from_der(&piv::attest(&mut yk, SlotId::Authentication).unwrap()).unwrap();
    let f9 = yubikey::Certificate::read(&mut yk, SlotId::Attestation)
        .unwrap()
        .cert;
    let root_pem = std::fs::read(dir.path().join("att").join("attestation-root.pem")).unwrap();
    let root = Certificate::from_pem(&root_pem).unwrap();
    assert_eq!(
        leaf.tbs_certificate().issuer(),
        f9.tbs_certificate().subject()
    );
    assert_eq!(
        f9.tbs_certificate().issuer(),
        root.tbs_certificate().subject()
    );
    std::fs::remove_file(dir.path().join("touch")).unwrap();
    piv::sign_data(
        &mut yk,
        &digest,
        AlgorithmId::EccP256,
        SlotId::Authentication,
    )
    .unwrap();
}
