//! The shipped Yubico roots, and a real YubiKey's attestation chain.
//!
//! The chain in `tests/data/yubikey-25515003/` was published by Docker in
//! its TUF root key ceremony (repository github.com/docker/tuf, commit
//! c1501a7859b6ed12eb42f3dd44727857e2a582fe, files
//! `ceremony/2024-06-04/keys/25515003/Slot9CAttestation.pem` and
//! `SlotF9Intermediate.pem`): a YubiKey 5 FIPS (firmware 5.4.3, USB-C
//! keychain), a P-384 key in slot 9c with PIN policy always and touch
//! policy never, under "Yubico PIV Root CA Serial 263751".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::{DecodePem, Encode};
use signet_attest::{
    verify_piv_attestation, AttestError, DeviceRoots, FormFactorKind, PinPolicy, TouchPolicy,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::Certificate;

fn der_of(pem: &str) -> Vec<u8> {
    Certificate::from_pem(pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap()
}

fn real_chain() -> Vec<Vec<u8>> {
    vec![
        der_of(include_str!(
            "data/yubikey-25515003/slot-9c-attestation.pem"
        )),
        der_of(include_str!("data/yubikey-25515003/f9-device.pem")),
    ]
}

/// 2026-01-01, inside every validity period of the real chain.
fn when() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

#[test]
fn shipped_roots_load_with_both_generations() {
    let roots = DeviceRoots::yubico().unwrap();
    assert!(!roots.is_empty());
    let subjects = roots.root_subjects();
    assert_eq!(
        subjects,
        [
            "CN=Yubico PIV Root CA Serial 263751",
            "CN=Yubico Attestation Root 1"
        ]
    );
}

#[test]
fn real_yubikey_chain_verifies_under_the_shipped_roots() {
    let roots = DeviceRoots::yubico().unwrap();
    let key = verify_piv_attestation(&real_chain(), &roots, when()).unwrap();
    assert_eq!(key.serial, 25_515_003);
    assert_eq!(key.firmware, (5, 4, 3));
    assert_eq!(key.pin_policy, PinPolicy::Always);
    assert_eq!(key.touch_policy, TouchPolicy::Never);
    let ff = key.form_factor.unwrap();
    assert_eq!(ff.raw, 0x83);
    assert_eq!(ff.kind(), FormFactorKind::UsbCKeychain);
    assert!(ff.fips());
    assert!(!ff.security_key());
    assert_eq!(key.root_subject, "CN=Yubico PIV Root CA Serial 263751");
    // The attested key is the slot certificate's P-384 key.
    let slot = Certificate::from_pem(
        include_str!("data/yubikey-25515003/slot-9c-attestation.pem").as_bytes(),
    )
    .unwrap();
    assert_eq!(
        key.public_key_spki_der,
        slot.tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap()
    );
}

#[test]
fn real_chain_with_the_root_appended_verifies() {
    let roots = DeviceRoots::yubico().unwrap();
    let mut chain = real_chain();
    chain.push(der_of(include_str!(
        "../roots/yubico-piv-root-ca-serial-263751.pem"
    )));
    verify_piv_attestation(&chain, &roots, when()).unwrap();
}

#[test]
fn real_chain_outside_its_validity_is_refused() {
    let roots = DeviceRoots::yubico().unwrap();
    // 2052-04-18: the slot certificate, f9 and the root end on 2052-04-17.
    let late = UNIX_EPOCH + Duration::from_secs(2_597_011_200);
    assert_eq!(
        verify_piv_attestation(&real_chain(), &roots, late),
        Err(AttestError::Expired { position: 0 })
    );
    // 2016-03-13: before the chain's notBefore.
    let early = UNIX_EPOCH + Duration::from_secs(1_457_827_200);
    assert_eq!(
        verify_piv_attestation(&real_chain(), &roots, early),
        Err(AttestError::NotYetValid { position: 0 })
    );
}

#[test]
fn real_chain_is_refused_without_its_root() {
    // Only the newer root: the legacy chain has nowhere to go.
    let roots =
        DeviceRoots::from_pem(include_str!("../roots/yubico-attestation-root-1.pem")).unwrap();
    assert_eq!(
        verify_piv_attestation(&real_chain(), &roots, when()),
        Err(AttestError::UnknownRoot)
    );
    assert_eq!(
        verify_piv_attestation(&real_chain(), &DeviceRoots::default(), when()),
        Err(AttestError::UnknownRoot)
    );
}

#[test]
fn every_single_bit_flip_of_the_real_chain_is_refused() {
    let roots = DeviceRoots::yubico().unwrap();
    let chain = real_chain();
    for which in 0..2 {
        for i in 0..chain[which].len() {
            let mut bad = chain.clone();
            bad[which][i] ^= 0x01;
            let result = verify_piv_attestation(&bad, &roots, when());
            assert!(
                result.is_err(),
                "flipping bit 0 of byte {i} of certificate {which} was accepted"
            );
        }
    }
}

#[test]
fn chain_to_the_virtual_root_is_refused_by_the_yubico_roots_alone() {
    use signet_firmware_tests::attest::{attest_slot, AttestationRoot, AttestedFacts};
    use signet_firmware_tests::keys::{Algorithm, PrivateKey};
    let root = AttestationRoot::create().unwrap();
    use p256::elliptic_curve::Generate;
    let f9 = p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
    let f9_cert = root.issue_device_ca(&f9, 7).unwrap();
    let key = PrivateKey::generate(Algorithm::P256).unwrap();
    let facts = AttestedFacts {
        slot: 0x9a,
        firmware: [5, 7, 4],
        serial: 7,
        pin_policy: 2,
        touch_policy: 2,
        form_factor: 1,
    };
    let slot = attest_slot(&f9, &f9_cert, &key, facts).unwrap();
    let chain = vec![slot, f9_cert];
    let now = SystemTime::now();
    assert_eq!(
        verify_piv_attestation(&chain, &DeviceRoots::yubico().unwrap(), now),
        Err(AttestError::UnknownRoot)
    );
    // Even with the virtual root sent along as chain[2].
    let mut with_root = chain.clone();
    with_root.push(root.cert_der().to_vec());
    assert_eq!(
        verify_piv_attestation(&with_root, &DeviceRoots::yubico().unwrap(), now),
        Err(AttestError::UnknownRoot)
    );
    // And accepted once the virtual root is configured beside Yubico's.
    let mut roots = DeviceRoots::yubico().unwrap();
    roots.extend(DeviceRoots::from_pem(&root.cert_pem().unwrap()).unwrap());
    let key = verify_piv_attestation(&chain, &roots, now).unwrap();
    assert_eq!(key.serial, 7);
    assert_eq!(
        key.root_subject,
        "CN=Signet Test PIV Attestation Root,O=Signet,C=US"
    );
}

#[test]
fn the_fuzz_seeds_are_the_real_chain() {
    // fuzz/fuzz_targets/piv_attestation.rs: 2-byte big-endian lengths.
    let split = |data: &[u8]| {
        let mut certs = Vec::new();
        let mut rest = data;
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            certs.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
        certs
    };
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/piv_attestation");
    let roots = DeviceRoots::yubico().unwrap();
    for (seed, ok) in [
        ("real-yubikey-5-fips", true),
        ("real-yubikey-5-fips-with-root", true),
        ("slot-only", false),
    ] {
        let chain = split(&std::fs::read(dir.join(seed)).unwrap());
        assert_eq!(
            chain[..2.min(chain.len())],
            real_chain()[..2.min(chain.len())]
        );
        assert_eq!(
            verify_piv_attestation(&chain, &roots, when()).is_ok(),
            ok,
            "{seed}"
        );
    }
}
