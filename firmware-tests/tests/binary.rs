//! The `virtual-yubikey` program end to end: it connects to a (private)
//! pcscd's vpcd driver, persists its state across restarts, creates and
//! uses the attestation root it is given, obeys its touch control file, and
//! serves the FIDO2 applet beside PIV.

// Conformance checks: a failed assertion or unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fido_common;

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
        // Tied to the test process: the kernel kills it if the test dies.
        let serial = SERIAL.to_string();
        let vpcd = pcscd.vpcd_addr(0).to_string();
        let (att, state, touch) = (dir.join("att"), dir.join("state.json"), dir.join("touch"));
        let args: Vec<&std::ffi::OsStr> = vec![
            "--serial".as_ref(),
            serial.as_ref(),
            "--firmware".as_ref(),
            "5.7.1".as_ref(),
            "--attestation-root".as_ref(),
            att.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
            "--touch-control".as_ref(),
            touch.as_os_str(),
            "--vpcd".as_ref(),
            vpcd.as_ref(),
        ];
        let child = signet_testkit::child::spawn_tied(
            env!("CARGO_BIN_EXE_virtual-yubikey"),
            &args,
            |cmd| {
                cmd.stdin(Stdio::null()).stderr(Stdio::null());
            },
        )
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

/// The contract checks outside the repository rely on: the program started
/// with exactly `--serial --firmware --attestation-root --vpcd` behind
/// their own pcscd serves FIDO2 to python-fido2, attested by that root; with
/// `--state` the FIDO applet's PIN and credentials survive a restart.
#[test]
fn program_serves_fido2_to_python_fido2_and_keeps_its_state() {
    if std::env::var("SIGNET_YUBIKEY_SERIAL").is_ok() || std::env::var("SIGNET_FIDO_READER").is_ok()
    {
        return; // about the emulator only
    }
    let Some(python) = fido_common::python_with_fido2() else {
        return;
    };
    let _lock = DeviceLock::acquire().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pcscd = Pcscd::start().unwrap();
    let start = |state: bool| {
        let att = dir.path().join("att");
        let vpcd = pcscd.vpcd_addr(0).to_string();
        let state_file = dir.path().join("yk.json");
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--serial".as_ref(),
            "5551234".as_ref(),
            "--firmware".as_ref(),
            "5.7.1".as_ref(),
            "--attestation-root".as_ref(),
            att.as_os_str(),
            "--vpcd".as_ref(),
            vpcd.as_ref(),
        ];
        if state {
            args.extend(["--state".as_ref(), state_file.as_os_str()]);
        }
        // Tied to the test process: the kernel kills it if the test dies.
        let child = signet_testkit::child::spawn_tied(
            env!("CARGO_BIN_EXE_virtual-yubikey"),
            &args,
            |cmd| {
                cmd.stdin(Stdio::null()).stderr(Stdio::null());
            },
        )
        .unwrap();
        pcscd.wait_for_cards(1, Duration::from_secs(15)).unwrap();
        Card(child)
    };
    let run = |scenarios: &[&str]| {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/fido2_conformance.py");
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args(scenarios)
            .env(
                "SIGNET_FIDO_READER",
                signet_firmware_tests::harness::READER_NAME,
            )
            .env(
                "SIGNET_FIDO_ROOT",
                dir.path().join("att").join("attestation-root.pem"),
            )
            .env("SIGNET_FIDO_VIRTUAL", "1");
        for (k, v) in pcscd.envs() {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "python-fido2 {scenarios:?}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("against the root") || !scenarios.contains(&"ceremony"),
            "{stdout}"
        );
    };

    {
        let _card = start(false);
        run(&["info", "ceremony"]);
    }
    pcscd.wait_for_cards(0, Duration::from_secs(5)).unwrap();
    {
        let _card = start(true);
        run(&["ceremony"]);
    }
    pcscd.wait_for_cards(0, Duration::from_secs(5)).unwrap();
    let fido_state = dir.path().join("yk.fido.json");
    let saved = signet_firmware_tests::fido::state::FidoState::load(&fido_state).unwrap();
    assert!(saved.pin_hash.is_some());
    assert_eq!(saved.residents.len(), 2);
    let counter = saved.sign_count;
    // Restarted from the file: the PIN is still set (the ceremony uses it
    // instead of setting one) and the old credentials are still there.
    let _card = start(true);
    run(&["ceremony"]);
    let saved = signet_firmware_tests::fido::state::FidoState::load(&fido_state).unwrap();
    assert_eq!(saved.residents.len(), 2, "same users: replaced, not added");
    assert!(
        saved.sign_count > counter,
        "the counter goes on from the file"
    );
}
