//! PIV conformance through the `yubikey` crate. Runs against the virtual
//! YubiKey by default, or against a real key with
//! `SIGNET_YUBIKEY_SERIAL=<serial>` (+ `SIGNET_YUBIKEY_DESTRUCTIVE=1` for
//! the tests that change it). See the crate README.

// Conformance checks: a failed assertion or unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{extension, verify_signed_by, Fixture, PIN, PUK};
use der::{Decode, Encode};
use signature::hazmat::PrehashVerifier;
use signet_firmware_tests::harness::VirtualKeyOptions;
use signet_firmware_tests::touch::TouchMode;
use std::str::FromStr;
use std::time::Duration;
use x509_cert::Certificate;
use yubikey::piv::{self, AlgorithmId, ManagementSlotId, RetiredSlotId, SlotId};
use yubikey::{Error, MgmAlgorithmId, MgmKey, PinPolicy, TouchPolicy};

fn p256_key(spki: &spki::SubjectPublicKeyInfoOwned) -> p256::ecdsa::VerifyingKey {
    p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap()
}

/// A PKCS#1 v1.5 signature block for a SHA-256 digest (the host pads).
fn pkcs1_sha256_block(digest: &[u8; 32], len: usize) -> Vec<u8> {
    const PREFIX: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let mut block = vec![0x00, 0x01];
    block.resize(len - PREFIX.len() - digest.len() - 1, 0xFF);
    block.push(0x00);
    block.extend_from_slice(&PREFIX);
    block.extend_from_slice(digest);
    block
}

#[test]
fn open_by_serial_reports_version_and_serial() {
    let Some(dev) = Fixture::new(false) else {
        return;
    };
    let yk = dev.open();
    assert_eq!(yk.serial().0, dev.serial());
    assert_eq!(yk.version().major, 5);
    assert!(yk.name().starts_with("Yubico YubiKey"), "{}", yk.name());
    // A serial that is not present is reported as such.
    let missing = yubikey::YubiKey::open_by_serial(yubikey::Serial(dev.serial().wrapping_add(1)));
    assert!(matches!(missing, Err(Error::NotFound)));
}

#[test]
fn pin_retries_blocking_unblock_and_reset() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let mut yk = dev.open();
    assert_eq!(yk.get_pin_retries().unwrap(), 3);
    assert_eq!(yk.verify_pin(b"000000"), Err(Error::WrongPin { tries: 2 }));
    assert_eq!(yk.get_pin_retries().unwrap(), 2);
    yk.verify_pin(PIN).unwrap();
    assert_eq!(yk.get_pin_retries().unwrap(), 3);
    // Applet reset is refused while PIN and PUK still work.
    assert!(yk.reset_device().is_err());

    for tries in [2, 1, 0] {
        assert_eq!(yk.verify_pin(b"000000"), Err(Error::WrongPin { tries }));
    }
    // Blocked: even the right PIN is refused.
    assert_eq!(yk.verify_pin(PIN), Err(Error::WrongPin { tries: 0 }));
    yk.unblock_pin(PUK, PIN).unwrap();
    yk.verify_pin(PIN).unwrap();

    // Block PIN and PUK, then reset the applet to factory state.
    for _ in 0..3 {
        let _ = yk.verify_pin(b"000000");
    }
    assert_eq!(
        yk.change_puk(b"00000000", b"00000000"),
        Err(Error::WrongPin { tries: 2 })
    );
    assert_eq!(
        yk.change_puk(b"00000000", b"00000000"),
        Err(Error::WrongPin { tries: 1 })
    );
    assert_eq!(
        yk.change_puk(b"00000000", b"00000000"),
        Err(Error::WrongPin { tries: 0 })
    );
    assert_eq!(yk.change_puk(PUK, PUK), Err(Error::PinLocked));
    yk.reset_device().unwrap();
    drop(yk);
    let mut yk = dev.open();
    assert_eq!(yk.get_pin_retries().unwrap(), 3);
    yk.verify_pin(PIN).unwrap();
    let mgm = MgmKey::get_default(&yk).unwrap();
    yk.authenticate(&mgm).unwrap();
}

#[test]
fn change_pin_and_set_retries() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let mut yk = dev.open_admin();
    yk.change_pin(PIN, b"87654321").unwrap();
    assert_eq!(yk.verify_pin(PIN), Err(Error::WrongPin { tries: 2 }));
    yk.verify_pin(b"87654321").unwrap();
    // SET PIN RETRIES needs PIN + management key, and restores factory PIN/PUK.
    yk.set_pin_retries(5, 4).unwrap();
    assert_eq!(yk.get_pin_retries().unwrap(), 5);
    yk.verify_pin(PIN).unwrap();
    let meta = piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Puk)).unwrap();
    let retries = meta.retries.unwrap();
    assert_eq!((retries.retry_count, retries.remaining_count), (4, 4));
    yk.set_pin_retries(3, 3).unwrap();
    assert_eq!(yk.get_pin_retries().unwrap(), 3);
}

#[test]
fn management_key_authentication() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let mut yk = dev.open();
    let wrong = MgmKey::from_bytes([9u8; 24], Some(MgmAlgorithmId::ThreeDes)).unwrap();
    assert_eq!(yk.authenticate(&wrong), Err(Error::AuthenticationError));
    // Without authentication, generation is refused.
    let denied = piv::generate(
        &mut yk,
        SlotId::Retired(RetiredSlotId::R20),
        AlgorithmId::EccP256,
        PinPolicy::Never,
        TouchPolicy::Never,
    );
    assert_eq!(denied.err(), Some(Error::AuthenticationError));

    let default = MgmKey::get_default(&yk).unwrap();
    yk.authenticate(&default).unwrap();
    let meta = piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Management)).unwrap();
    assert_eq!(meta.default, Some(true));

    // Switch to an AES-128 key and back.
    let aes = MgmKey::from_bytes([0x5Au8; 16], Some(MgmAlgorithmId::Aes128)).unwrap();
    aes.set_manual(&mut yk, false).unwrap();
    drop(yk);
    let mut yk = dev.open();
    assert_eq!(yk.authenticate(&default), Err(Error::AuthenticationError));
    yk.authenticate(&aes).unwrap();
    let meta = piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Management)).unwrap();
    assert_eq!(
        meta.algorithm,
        piv::SlotAlgorithmId::Management(MgmAlgorithmId::Aes128)
    );
    MgmKey::set_default(&mut yk).unwrap();
    drop(yk);
    let mut yk = dev.open();
    yk.authenticate(&default).unwrap();

    // Deauthentication (selecting the management applet) drops it again.
    yk.deauthenticate().unwrap();
    assert_eq!(yk.get_pin_retries().unwrap(), 3); // re-selects PIV
    let denied = piv::generate(
        &mut yk,
        SlotId::Retired(RetiredSlotId::R20),
        AlgorithmId::EccP256,
        PinPolicy::Never,
        TouchPolicy::Never,
    );
    assert_eq!(denied.err(), Some(Error::AuthenticationError));
}

#[test]
fn firmware_5_7_aes192_default_and_ed25519() {
    let opts = VirtualKeyOptions {
        firmware: [5, 7, 1],
        ..VirtualKeyOptions::default()
    };
    let Some(dev) = Fixture::virtual_only(opts) else {
        return;
    };
    let mut yk = dev.open();
    let default = MgmKey::get_default(&yk).unwrap();
    assert_eq!(default.algorithm_id(), MgmAlgorithmId::Aes192);
    yk.authenticate(&default).unwrap();
    let spki = piv::generate(
        &mut yk,
        SlotId::Signature,
        AlgorithmId::Ed25519,
        PinPolicy::Always,
        TouchPolicy::Never,
    )
    .unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(
        spki.subject_public_key.raw_bytes().try_into().unwrap(),
    )
    .unwrap();
    let msg = b"Ed25519 signs the whole message";
    assert_eq!(
        piv::sign_data(&mut yk, msg, AlgorithmId::Ed25519, SlotId::Signature).err(),
        Some(Error::AuthenticationError)
    );
    yk.verify_pin(PIN).unwrap();
    let sig = piv::sign_data(&mut yk, msg, AlgorithmId::Ed25519, SlotId::Signature).unwrap();
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_slice(&sig).unwrap())
        .unwrap();
}

#[test]
fn generate_with_each_policy_is_enforced() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let pins = [PinPolicy::Never, PinPolicy::Once, PinPolicy::Always];
    let touches = [TouchPolicy::Never, TouchPolicy::Always, TouchPolicy::Cached];
    let retired = [
        RetiredSlotId::R1,
        RetiredSlotId::R2,
        RetiredSlotId::R3,
        RetiredSlotId::R4,
        RetiredSlotId::R5,
        RetiredSlotId::R6,
        RetiredSlotId::R7,
        RetiredSlotId::R8,
        RetiredSlotId::R9,
    ];
    let mut yk = dev.open_admin();
    let mut cases = Vec::new();
    for (i, (pin, touch)) in pins
        .iter()
        .flat_map(|p| touches.iter().map(move |t| (*p, *t)))
        .enumerate()
    {
        let slot = SlotId::Retired(retired[i]);
        let spki = piv::generate(&mut yk, slot, AlgorithmId::EccP256, pin, touch).unwrap();
        let meta = piv::metadata(&mut yk, slot).unwrap();
        assert_eq!(meta.policy, Some((pin, touch)), "slot {slot}");
        assert_eq!(meta.origin, Some(piv::Origin::Generated));
        assert_eq!(meta.public.as_ref(), Some(&spki));
        cases.push((slot, pin, touch, p256_key(&spki)));
    }
    drop(yk);
    let digest = [0x11u8; 32];
    for (slot, pin, touch, vk) in cases {
        if touch != TouchPolicy::Never && !dev.is_virtual() {
            continue; // would wait for a finger on a real key
        }
        // Fresh session: no PIN verified yet.
        let mut yk = dev.open();
        let first = piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot);
        if pin == PinPolicy::Never {
            let sig = p256::ecdsa::Signature::from_der(&first.unwrap()).unwrap();
            vk.verify_prehash(&digest, &sig).unwrap();
            continue;
        }
        assert_eq!(first.err(), Some(Error::AuthenticationError), "slot {slot}");
        yk.verify_pin(PIN).unwrap();
        let sig = piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot).unwrap();
        vk.verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&sig).unwrap())
            .unwrap();
        let again = piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot);
        match pin {
            PinPolicy::Always => assert_eq!(again.err(), Some(Error::AuthenticationError)),
            _ => assert!(again.is_ok()),
        }
    }
}

#[test]
fn sign_and_verify_p256_p384_rsa2048() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let mut yk = dev.open_admin();
    let slot = SlotId::Retired(RetiredSlotId::R10);

    let spki = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Never,
        TouchPolicy::Never,
    )
    .unwrap();
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(b"signet p256").into();
    let sig = piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot).unwrap();
    p256_key(&spki)
        .verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&sig).unwrap())
        .unwrap();

    let spki = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::EccP384,
        PinPolicy::Never,
        TouchPolicy::Never,
    )
    .unwrap();
    let digest: [u8; 48] = <sha2::Sha384 as sha2::Digest>::digest(b"signet p384").into();
    let sig = piv::sign_data(&mut yk, &digest, AlgorithmId::EccP384, slot).unwrap();
    p384::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .unwrap()
        .verify_prehash(&digest, &p384::ecdsa::Signature::from_der(&sig).unwrap())
        .unwrap();

    let spki = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::Rsa2048,
        PinPolicy::Never,
        TouchPolicy::Never,
    )
    .unwrap();
    let public =
        <rsa::RsaPublicKey as spki::DecodePublicKey>::from_public_key_der(&spki.to_der().unwrap())
            .unwrap();
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(b"signet rsa").into();
    let sig = piv::sign_data(
        &mut yk,
        &pkcs1_sha256_block(&digest, 256),
        AlgorithmId::Rsa2048,
        slot,
    )
    .unwrap();
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public)
        .verify_prehash(
            &digest,
            &rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap(),
        )
        .unwrap();
}

#[test]
fn ecdh_key_agreement_p256() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let mut yk = dev.open_admin();
    let slot = SlotId::KeyManagement;
    let spki = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Never,
        TouchPolicy::Never,
    )
    .unwrap();
    let card = p256::PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
    let host = <p256::ecdh::EphemeralSecret as p256::elliptic_curve::Generate>::generate_from_rng(
        &mut rand::rng(),
    );
    let shared = piv::decrypt_data(
        &mut yk,
        &host.public_key().to_sec1_bytes(),
        AlgorithmId::EccP256,
        slot,
    )
    .unwrap();
    assert_eq!(
        shared.as_slice(),
        host.diffie_hellman(&card).raw_secret_bytes().as_slice()
    );
}

#[test]
fn rsa2048_decrypt_returns_the_padded_block() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let mut yk = dev.open_admin();
    let slot = SlotId::Retired(RetiredSlotId::R12);
    let spki = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::Rsa2048,
        PinPolicy::Never,
        TouchPolicy::Never,
    )
    .unwrap();
    let public =
        <rsa::RsaPublicKey as spki::DecodePublicKey>::from_public_key_der(&spki.to_der().unwrap())
            .unwrap();
    let secret = b"wrapped session key";
    let ciphertext = public
        .encrypt(&mut rand::rng(), rsa::Pkcs1v15Encrypt, secret)
        .unwrap();
    let block = piv::decrypt_data(&mut yk, &ciphertext, AlgorithmId::Rsa2048, slot).unwrap();
    // The card returns the raw block: 00 02 <nonzero padding> 00 <message>.
    assert_eq!(&block[..2], &[0x00, 0x02]);
    assert!(block.ends_with(secret));
}

#[test]
fn x25519_key_agreement_on_firmware_5_7() {
    let opts = VirtualKeyOptions {
        firmware: [5, 7, 1],
        ..VirtualKeyOptions::default()
    };
    let Some(dev) = Fixture::virtual_only(opts) else {
        return;
    };
    let mut yk = dev.open_admin();
    let slot = SlotId::KeyManagement;
    let spki = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::X25519,
        PinPolicy::Never,
        TouchPolicy::Never,
    )
    .unwrap();
    let card: [u8; 32] = spki.subject_public_key.raw_bytes().try_into().unwrap();
    let host = x25519_dalek::StaticSecret::from([7u8; 32]);
    let host_public = x25519_dalek::PublicKey::from(&host);
    let shared =
        piv::decrypt_data(&mut yk, host_public.as_bytes(), AlgorithmId::X25519, slot).unwrap();
    let expected = host.diffie_hellman(&x25519_dalek::PublicKey::from(card));
    assert_eq!(shared.as_slice(), expected.as_bytes());
}

#[test]
fn write_and_read_certificate() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let mut yk = dev.open_admin();
    let slot = SlotId::Authentication;
    let spki = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .unwrap();
    yk.verify_pin(PIN).unwrap();
    let cert = yubikey::Certificate::generate_self_signed::<_, p256::NistP256>(
        &mut yk,
        slot,
        x509_cert::serial_number::SerialNumber::from(42u32),
        x509_cert::time::Validity::from_now(Duration::from_secs(86400)).unwrap(),
        x509_cert::name::Name::from_str("CN=Signet conformance").unwrap(),
        spki,
        |_| Ok(()),
    )
    .unwrap();
    drop(yk);
    let mut yk = dev.open();
    let read = yubikey::Certificate::read(&mut yk, slot).unwrap();
    assert_eq!(read.cert.to_der().unwrap(), cert.cert.to_der().unwrap());
    verify_signed_by(&read.cert, &read.cert);
    assert!(yk.piv_keys().unwrap().iter().any(|k| k.slot() == slot));
    // Large objects go through command chaining and 61xx response chaining.
    let big = vec![0xA5u8; 2500];
    let mut obj = big.clone();
    yk.authenticate(&MgmKey::get_default(&yk).unwrap()).unwrap();
    yk.save_object(0x5F_C10D, &mut obj).unwrap();
    assert_eq!(
        yk.fetch_object(0x5F_C10D).unwrap().as_slice(),
        big.as_slice()
    );
}

#[test]
fn attest_and_verify_chain() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let mut yk = dev.open_admin();
    let slot = SlotId::Authentication;
    let spki = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Cached,
    )
    .unwrap();
    let leaf = Certificate::from_der(&piv::attest(&mut yk, slot).unwrap()).unwrap();
    let f9 = yubikey::Certificate::read(&mut yk, SlotId::Attestation)
        .unwrap()
        .cert;
    verify_signed_by(&leaf, &f9);
    assert_eq!(leaf.tbs_certificate().subject_public_key_info(), &spki);
    let v = yk.version();
    assert_eq!(
        extension(&leaf, "1.3.6.1.4.1.41482.3.3"),
        Some(&[v.major, v.minor, v.patch][..])
    );
    let serial = u32::from_der(extension(&leaf, "1.3.6.1.4.1.41482.3.7").unwrap()).unwrap();
    assert_eq!(serial, dev.serial());
    assert_eq!(
        extension(&leaf, "1.3.6.1.4.1.41482.3.8"),
        Some(&[2u8, 3][..])
    );
    assert!(extension(&leaf, "1.3.6.1.4.1.41482.3.9").is_some());
    let roots = dev.attestation_roots();
    if dev.is_virtual() {
        assert!(!roots.is_empty());
    }
    if !roots.is_empty() {
        let root = roots
            .iter()
            .find(|r| r.tbs_certificate().subject() == f9.tbs_certificate().issuer())
            .expect("a root issued the f9 certificate");
        verify_signed_by(&f9, root);
        verify_signed_by(root, root);
    }

    // Imported keys cannot be attested.
    let secret = p256::SecretKey::from_slice(&[0x42u8; 32]).unwrap();
    piv::import_ecc_key(
        &mut yk,
        SlotId::KeyManagement,
        AlgorithmId::EccP256,
        &secret.to_bytes(),
        TouchPolicy::Never,
        PinPolicy::Never,
    )
    .unwrap();
    let meta = piv::metadata(&mut yk, SlotId::KeyManagement).unwrap();
    assert_eq!(meta.origin, Some(piv::Origin::Imported));
    assert!(piv::attest(&mut yk, SlotId::KeyManagement).is_err());
}

#[test]
fn metadata_of_pin_puk_and_keys() {
    let Some(dev) = Fixture::new(false) else {
        return;
    };
    let mut yk = dev.open();
    let pin = piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Pin)).unwrap();
    assert_eq!(pin.algorithm, piv::SlotAlgorithmId::PinPuk);
    let retries = pin.retries.unwrap();
    assert!(retries.remaining_count <= retries.retry_count);
    let puk = piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Puk)).unwrap();
    assert!(puk.retries.is_some());
    let mgm = piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Management)).unwrap();
    assert!(matches!(mgm.algorithm, piv::SlotAlgorithmId::Management(_)));
    if dev.is_virtual() {
        assert_eq!(
            piv::metadata(&mut yk, SlotId::Retired(RetiredSlotId::R20)).err(),
            Some(Error::NotFound)
        );
    }
}

#[test]
fn touch_denied_is_an_authentication_error() {
    let Some(dev) = Fixture::virtual_only(VirtualKeyOptions::default()) else {
        return;
    };
    let touch = dev.touch().unwrap().clone();
    let mut yk = dev.open_admin();
    let slot = SlotId::CardAuthentication;
    piv::generate(
        &mut yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Never,
        TouchPolicy::Always,
    )
    .unwrap();
    let digest = [5u8; 32];
    touch.set_mode(TouchMode::Deny);
    assert_eq!(
        piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot).err(),
        Some(Error::AuthenticationError)
    );
    // A slow finger within the timeout is fine; no finger within it is not.
    touch.set_mode(TouchMode::Delay(Duration::from_millis(100)));
    piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot).unwrap();
    touch.set_mode(TouchMode::Manual(Duration::from_millis(200)));
    assert_eq!(
        piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot).err(),
        Some(Error::AuthenticationError)
    );
    let finger = touch.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        finger.touch();
    });
    touch.set_mode(TouchMode::Manual(Duration::from_secs(5)));
    piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot).unwrap();
    t.join().unwrap();
    assert!(touch.requests() >= 4);
}

#[test]
fn state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("yubikey.json");
    let root = signet_firmware_tests::attest::AttestationRoot::create().unwrap();
    let opts = VirtualKeyOptions {
        serial: 4242,
        state_file: Some(state.clone()),
        root: Some(root),
        ..VirtualKeyOptions::default()
    };
    let spki = {
        let Some(dev) = Fixture::virtual_only(opts.clone()) else {
            return;
        };
        let mut yk = dev.open_admin();
        let spki = piv::generate(
            &mut yk,
            SlotId::Signature,
            AlgorithmId::EccP256,
            PinPolicy::Never,
            TouchPolicy::Never,
        )
        .unwrap();
        assert_eq!(yk.verify_pin(b"000000"), Err(Error::WrongPin { tries: 2 }));
        spki
    };
    let Some(dev) = Fixture::virtual_only(opts) else {
        return;
    };
    let mut yk = dev.open();
    assert_eq!(yk.serial().0, 4242);
    assert_eq!(yk.get_pin_retries().unwrap(), 2);
    let digest = [9u8; 32];
    let sig = piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, SlotId::Signature).unwrap();
    p256_key(&spki)
        .verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&sig).unwrap())
        .unwrap();
}

#[test]
fn reset_on_reconnect_forgets_pin() {
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let mut yk = dev.open_admin();
    let slot = SlotId::Retired(RetiredSlotId::R11);
    piv::generate(
        &mut yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .unwrap();
    yk.verify_pin(PIN).unwrap();
    piv::sign_data(&mut yk, &[1u8; 32], AlgorithmId::EccP256, slot).unwrap();
    // Dropping the handle resets the card: PIN and management key are forgotten.
    drop(yk);
    let mut yk = dev.open();
    assert_eq!(
        piv::sign_data(&mut yk, &[1u8; 32], AlgorithmId::EccP256, slot).err(),
        Some(Error::AuthenticationError)
    );
}

#[test]
fn card_removal_and_reinsertion() {
    let Some(mut dev) = Fixture::virtual_only(VirtualKeyOptions::default()) else {
        return;
    };
    let spki = {
        let mut yk = dev.open_admin();
        piv::generate(
            &mut yk,
            SlotId::Signature,
            AlgorithmId::EccP384,
            PinPolicy::Never,
            TouchPolicy::Never,
        )
        .unwrap()
    };
    let serial = dev.serial();
    let card = dev.virtual_key().unwrap();
    let applet = card.remove().unwrap().unwrap();
    assert!(matches!(
        yubikey::YubiKey::open_by_serial(yubikey::Serial(serial)),
        Err(Error::NotFound)
    ));
    card.insert(applet).unwrap();
    let mut yk = dev.open();
    let meta = piv::metadata(&mut yk, SlotId::Signature).unwrap();
    assert_eq!(meta.public.as_ref(), Some(&spki));
}

#[test]
fn two_keys_are_told_apart_by_serial() {
    let Some(mut dev) = Fixture::virtual_only(VirtualKeyOptions::default()) else {
        return;
    };
    let first = dev.serial();
    let second = first + 1;
    let touch = dev
        .virtual_key()
        .unwrap()
        .add_second(VirtualKeyOptions {
            serial: second,
            firmware: [5, 7, 1],
            ..VirtualKeyOptions::default()
        })
        .unwrap();
    // `open()` refuses to guess between two keys.
    assert!(yubikey::YubiKey::open().is_err());
    let mut a = yubikey::YubiKey::open_by_serial(yubikey::Serial(first)).unwrap();
    let mut b = yubikey::YubiKey::open_by_serial(yubikey::Serial(second)).unwrap();
    assert_eq!((a.version().minor, b.version().minor), (4, 7));
    // Each key keeps its own PIN counter and touch sensor.
    assert_eq!(b.verify_pin(b"000000"), Err(Error::WrongPin { tries: 2 }));
    assert_eq!(a.get_pin_retries().unwrap(), 3);
    b.authenticate(&MgmKey::get_default(&b).unwrap()).unwrap();
    piv::generate(
        &mut b,
        SlotId::Authentication,
        AlgorithmId::EccP256,
        PinPolicy::Never,
        TouchPolicy::Always,
    )
    .unwrap();
    piv::sign_data(
        &mut b,
        &[1u8; 32],
        AlgorithmId::EccP256,
        SlotId::Authentication,
    )
    .unwrap();
    assert_eq!(touch.requests(), 1);
    assert_eq!(dev.touch().unwrap().requests(), 0);
}

#[test]
fn imported_rsa2048_key_signs_and_is_not_attested() {
    use rsa::traits::PrivateKeyParts;
    let Some(dev) = Fixture::new(true) else {
        return;
    };
    let host = rsa::RsaPrivateKey::new(&mut rand::rng(), 2048).unwrap();
    let primes = host.primes();
    let key_data =
        piv::RsaKeyData::new(&primes[0].to_be_bytes(), &primes[1].to_be_bytes()).unwrap();
    let slot = SlotId::Retired(RetiredSlotId::R13);
    let mut yk = dev.open_admin();
    piv::import_rsa_key(
        &mut yk,
        slot,
        AlgorithmId::Rsa2048,
        key_data,
        TouchPolicy::Never,
        PinPolicy::Never,
    )
    .unwrap();
    let meta = piv::metadata(&mut yk, slot).unwrap();
    assert_eq!(meta.origin, Some(piv::Origin::Imported));
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(b"imported").into();
    let sig = piv::sign_data(
        &mut yk,
        &pkcs1_sha256_block(&digest, 256),
        AlgorithmId::Rsa2048,
        slot,
    )
    .unwrap();
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(host.to_public_key())
        .verify_prehash(
            &digest,
            &rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap(),
        )
        .unwrap();
    assert!(piv::attest(&mut yk, slot).is_err());
}
