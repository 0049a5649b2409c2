//! A real attestation read from the virtual YubiKey over the real PC/SC
//! stack (a private pcscd with the vpcd driver, started by the
//! firmware-tests harness), verified with this crate; and an imported key,
//! which the card refuses to attest.
//!
//! Needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::Encode;
use signet_attest::{verify_piv_attestation, AttestError, DeviceRoots, FormFactorKind};
use signet_firmware_tests::harness::{VirtualKeyOptions, VirtualYubiKey};
use std::time::SystemTime;
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{MgmKey, Serial, YubiKey};

fn start(serial: u32) -> VirtualYubiKey {
    VirtualYubiKey::start(VirtualKeyOptions {
        serial,
        firmware: [5, 7, 4],
        ..VirtualKeyOptions::default()
    })
    .unwrap_or_else(|e| {
        panic!("the virtual YubiKey did not start ({e}); it needs pcscd and vsmartcard-vpcd (deploy/test.sh installs them)")
    })
}

fn open_admin(serial: u32) -> YubiKey {
    let mut yk = YubiKey::open_by_serial(Serial(serial)).unwrap();
    let mgm = MgmKey::get_default(&yk).unwrap();
    yk.authenticate(&mgm).unwrap();
    yk
}

/// The chain a client sends: the slot's attestation and the f9 certificate.
fn read_chain(yk: &mut YubiKey, slot: SlotId) -> Vec<Vec<u8>> {
    let leaf = piv::attest(yk, slot).unwrap().to_vec();
    let f9 = yubikey::Certificate::read(yk, SlotId::Attestation)
        .unwrap()
        .cert
        .to_der()
        .unwrap();
    vec![leaf, f9]
}

#[test]
fn attestations_from_the_virtual_yubikey_verify_and_imported_keys_are_not_attested() {
    let serial = 24_681_357;
    let key = start(serial);
    let roots = DeviceRoots::from_pem(&key.root().cert_pem().unwrap()).unwrap();
    let mut yk = open_admin(serial);

    let policies = [
        (yubikey::PinPolicy::Never, signet_attest::PinPolicy::Never),
        (yubikey::PinPolicy::Once, signet_attest::PinPolicy::Once),
        (yubikey::PinPolicy::Always, signet_attest::PinPolicy::Always),
    ];
    let touches = [
        (
            yubikey::TouchPolicy::Never,
            signet_attest::TouchPolicy::Never,
        ),
        (
            yubikey::TouchPolicy::Always,
            signet_attest::TouchPolicy::Always,
        ),
        (
            yubikey::TouchPolicy::Cached,
            signet_attest::TouchPolicy::Cached,
        ),
    ];
    for (pin, want_pin) in policies {
        for (touch, want_touch) in touches {
            let spki = piv::generate(
                &mut yk,
                SlotId::Authentication,
                AlgorithmId::EccP256,
                pin,
                touch,
            )
            .unwrap();
            let chain = read_chain(&mut yk, SlotId::Authentication);
            let got = verify_piv_attestation(&chain, &roots, SystemTime::now()).unwrap();
            assert_eq!(got.serial, serial);
            assert_eq!(got.firmware, (5, 7, 4));
            assert_eq!(got.pin_policy, want_pin);
            assert_eq!(got.touch_policy, want_touch);
            assert_eq!(
                got.form_factor.map(|f| f.kind()),
                Some(FormFactorKind::UsbAKeychain)
            );
            // The attested key is the one the card returned when generating.
            assert_eq!(got.public_key_spki_der, spki.to_der().unwrap());
            // Yubico's roots do not know the virtual key.
            assert_eq!(
                verify_piv_attestation(&chain, &DeviceRoots::yubico().unwrap(), SystemTime::now()),
                Err(AttestError::UnknownRoot)
            );
        }
    }

    // An RSA key in another slot, attested the same way.
    let spki = piv::generate(
        &mut yk,
        SlotId::Signature,
        AlgorithmId::Rsa2048,
        yubikey::PinPolicy::Always,
        yubikey::TouchPolicy::Always,
    )
    .unwrap();
    let chain = read_chain(&mut yk, SlotId::Signature);
    let got = verify_piv_attestation(&chain, &roots, SystemTime::now()).unwrap();
    assert_eq!(got.public_key_spki_der, spki.to_der().unwrap());

    // An imported key: the card refuses to attest it, so no chain exists
    // for it. The stale attestation of the slot's previous key does not
    // attest the imported one.
    let before = read_chain(&mut yk, SlotId::Authentication);
    let secret = p256::SecretKey::from_slice(&[0x42u8; 32]).unwrap();
    piv::import_ecc_key(
        &mut yk,
        SlotId::Authentication,
        AlgorithmId::EccP256,
        &secret.to_bytes(),
        yubikey::TouchPolicy::Always,
        yubikey::PinPolicy::Always,
    )
    .unwrap();
    let meta = piv::metadata(&mut yk, SlotId::Authentication).unwrap();
    assert_eq!(meta.origin, Some(piv::Origin::Imported));
    assert!(piv::attest(&mut yk, SlotId::Authentication).is_err());
    let imported_spki = {
        use p256::pkcs8::EncodePublicKey;
        secret
            .public_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()
            .to_vec()
    };
    let stale = verify_piv_attestation(&before, &roots, SystemTime::now()).unwrap();
    assert_ne!(stale.public_key_spki_der, imported_spki);
}
