//! Chains the verifier accepts and the ones it must refuse, built with the
//! virtual YubiKey's attestation code (firmware-tests) and with x509-cert's
//! builder (tests/common).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use p256::elliptic_curve::Generate;
use signet_attest::{
    verify_piv_attestation, AttestError, DeviceRoots, FormFactorKind, PinPolicy, TouchPolicy,
    MAX_CHAIN_LEN,
};
use signet_firmware_tests::attest::{attest_slot, AttestationRoot, AttestedFacts};
use signet_firmware_tests::keys::{Algorithm, PrivateKey};
use std::time::{Duration, SystemTime};
use x509_cert::ext::pkix::KeyUsages;

const DAY: Duration = Duration::from_secs(86_400);

fn now() -> SystemTime {
    SystemTime::now()
}

/// A virtual YubiKey's root, device key and f9 certificate.
struct Virtual {
    root: AttestationRoot,
    f9_key: p256::ecdsa::SigningKey,
    f9_cert: Vec<u8>,
    roots: DeviceRoots,
}

impl Virtual {
    fn new(serial: u32) -> Self {
        let root = AttestationRoot::create().unwrap();
        let f9_key = p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
        let f9_cert = root.issue_device_ca(&f9_key, serial).unwrap();
        let roots = DeviceRoots::from_pem(&root.cert_pem().unwrap()).unwrap();
        Self {
            root,
            f9_key,
            f9_cert,
            roots,
        }
    }

    fn attest(&self, key: &PrivateKey, facts: AttestedFacts) -> Vec<Vec<u8>> {
        let slot = attest_slot(&self.f9_key, &self.f9_cert, key, facts).unwrap();
        vec![slot, self.f9_cert.clone()]
    }
}

fn facts(pin: u8, touch: u8, form_factor: u8) -> AttestedFacts {
    AttestedFacts {
        slot: 0x9a,
        firmware: [5, 4, 3],
        serial: 13_371_337,
        pin_policy: pin,
        touch_policy: touch,
        form_factor,
    }
}

#[test]
fn virtual_yubikey_chains_verify_for_every_pin_and_touch_policy() {
    let dev = Virtual::new(13_371_337);
    let key = PrivateKey::generate(Algorithm::P256).unwrap();
    let pins = [
        (1, PinPolicy::Never),
        (2, PinPolicy::Once),
        (3, PinPolicy::Always),
    ];
    let touches = [
        (1, TouchPolicy::Never),
        (2, TouchPolicy::Always),
        (3, TouchPolicy::Cached),
    ];
    for (pin_byte, pin) in pins {
        for (touch_byte, touch) in touches {
            let chain = dev.attest(&key, facts(pin_byte, touch_byte, 1));
            let got = verify_piv_attestation(&chain, &dev.roots, now()).unwrap();
            assert_eq!(got.pin_policy, pin);
            assert_eq!(got.touch_policy, touch);
            assert_eq!(got.serial, 13_371_337);
            assert_eq!(got.firmware, (5, 4, 3));
            assert_eq!(got.public_key_spki_der, key.spki_der().unwrap());
            assert_eq!(
                got.root_subject,
                "CN=Signet Test PIV Attestation Root,O=Signet,C=US"
            );
        }
    }
}

#[test]
fn virtual_yubikey_chains_verify_for_every_form_factor() {
    let dev = Virtual::new(42);
    let key = PrivateKey::generate(Algorithm::P256).unwrap();
    let kinds = [
        (0x00, FormFactorKind::Unknown, false),
        (0x01, FormFactorKind::UsbAKeychain, false),
        (0x02, FormFactorKind::UsbANano, false),
        (0x03, FormFactorKind::UsbCKeychain, false),
        (0x04, FormFactorKind::UsbCNano, false),
        (0x05, FormFactorKind::UsbCLightning, false),
        (0x06, FormFactorKind::UsbABio, false),
        (0x07, FormFactorKind::UsbCBio, false),
        (0x81, FormFactorKind::UsbAKeychain, true),
        (0x83, FormFactorKind::UsbCKeychain, true),
        (0x0e, FormFactorKind::Other(0x0e), false),
    ];
    for (byte, kind, fips) in kinds {
        let chain = dev.attest(&key, facts(2, 2, byte));
        let got = verify_piv_attestation(&chain, &dev.roots, now()).unwrap();
        let ff = got.form_factor.unwrap();
        assert_eq!(ff.raw, byte);
        assert_eq!(ff.kind(), kind);
        assert_eq!(ff.fips(), fips);
    }
}

#[test]
fn virtual_yubikey_chains_verify_for_every_key_algorithm() {
    let dev = Virtual::new(42);
    for alg in [
        Algorithm::P256,
        Algorithm::P384,
        Algorithm::Rsa2048,
        Algorithm::Ed25519,
    ] {
        let key = PrivateKey::generate(alg).unwrap();
        let chain = dev.attest(&key, facts(2, 3, 1));
        let got = verify_piv_attestation(&chain, &dev.roots, now()).unwrap();
        assert_eq!(got.public_key_spki_der, key.spki_der().unwrap(), "{alg:?}");
    }
}

#[test]
fn the_root_may_be_sent_as_the_last_certificate() {
    let dev = Virtual::new(1);
    let key = PrivateKey::generate(Algorithm::P256).unwrap();
    let mut chain = dev.attest(&key, facts(2, 2, 1));
    chain.push(dev.root.cert_der().to_vec());
    verify_piv_attestation(&chain, &dev.roots, now()).unwrap();
}

#[test]
fn a_chain_to_an_unknown_root_is_refused() {
    let dev = Virtual::new(1);
    let other = Virtual::new(1);
    let key = PrivateKey::generate(Algorithm::P256).unwrap();
    let chain = dev.attest(&key, facts(2, 2, 1));
    assert_eq!(
        verify_piv_attestation(&chain, &other.roots, now()),
        Err(AttestError::UnknownRoot)
    );
    // Sending the unknown root along changes nothing.
    let mut with_root = chain.clone();
    with_root.push(dev.root.cert_der().to_vec());
    assert_eq!(
        verify_piv_attestation(&with_root, &other.roots, now()),
        Err(AttestError::UnknownRoot)
    );
    // No roots at all.
    assert!(DeviceRoots::default().is_empty());
    assert_eq!(
        verify_piv_attestation(&chain, &DeviceRoots::default(), now()),
        Err(AttestError::UnknownRoot)
    );
}

#[test]
fn a_slot_certificate_from_another_device_is_refused() {
    // Two devices under the same root, with f9 certificates of the same
    // name (as all of Yubico's are): the slot certificate of one with the
    // f9 certificate of the other.
    let root = AttestationRoot::create().unwrap();
    let roots = DeviceRoots::from_pem(&root.cert_pem().unwrap()).unwrap();
    let f9_a = p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
    let f9_b = p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
    let cert_a = root.issue_device_ca(&f9_a, 5).unwrap();
    let cert_b = root.issue_device_ca(&f9_b, 5).unwrap();
    let key = PrivateKey::generate(Algorithm::P256).unwrap();
    let slot_a = attest_slot(&f9_a, &cert_a, &key, facts(2, 2, 1)).unwrap();
    verify_piv_attestation(&[slot_a.clone(), cert_a], &roots, now()).unwrap();
    assert_eq!(
        verify_piv_attestation(&[slot_a, cert_b], &roots, now()),
        Err(AttestError::BadSignature { position: 0 })
    );
}

#[test]
fn a_tampered_slot_certificate_is_refused() {
    let dev = Virtual::new(1);
    let key = PrivateKey::generate(Algorithm::P256).unwrap();
    // PIN never, touch never, rewritten to PIN always, touch always.
    let mut chain = dev.attest(&key, facts(1, 1, 1));
    let needle = [0x04, 0x02, 0x01, 0x01];
    let at = chain[0]
        .windows(4)
        .position(|w| w == needle)
        .expect("the policy extension's OCTET STRING");
    chain[0][at + 2] = 3;
    chain[0][at + 3] = 2;
    assert_eq!(
        verify_piv_attestation(&chain, &dev.roots, now()),
        Err(AttestError::BadSignature { position: 0 })
    );
}

#[test]
fn a_forged_f9_certificate_bearing_the_roots_name_is_refused() {
    let root = Ca::test_root();
    let impostor = Ca::root(
        "CN=Test PIV Root,O=Signet Tests",
        Key::p256(),
        ca_extensions(Some(3)),
        long_validity(),
    );
    let f9 = device(&impostor);
    let chain = vec![slot(&f9, 1), f9.der.clone()];
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), now()),
        Err(AttestError::UnknownRoot)
    );
    // Sending the impostor root along: matched by name and key, it is not
    // the configured one.
    let with_root = vec![slot(&f9, 1), f9.der.clone(), impostor.der.clone()];
    assert_eq!(
        verify_piv_attestation(&with_root, &root.roots(), now()),
        Err(AttestError::UnknownRoot)
    );
}

#[test]
fn the_test_pki_builds_good_chains() {
    // So that the refusals below fail for the reason they name.
    let root = Ca::test_root();
    let f9 = device(&root);
    let key =
        verify_piv_attestation(&[slot(&f9, 77), f9.der.clone()], &root.roots(), now()).unwrap();
    assert_eq!(key.serial, 77);
    assert_eq!(key.root_subject, "CN=Test PIV Root,O=Signet Tests");
    // With an intermediate between f9 and the root.
    let inter = root.child(
        Key::p256(),
        Spec::new(
            "CN=Test PIV Intermediate",
            Key::p256().spki(),
            ca_extensions(Some(1)),
        ),
    );
    let f9 = device(&inter);
    let chain = vec![slot(&f9, 78), f9.der.clone(), inter.der.clone()];
    verify_piv_attestation(&chain, &root.roots(), now()).unwrap();
}

#[test]
fn p384_roots_and_sha384_signatures_verify() {
    let root = Ca::root(
        "CN=Test P-384 Root",
        Key::p384(),
        ca_extensions(None),
        long_validity(),
    );
    let f9 = root.child(
        Key::p384(),
        Spec::new("CN=Yubico PIV Attestation", Key::p384().spki(), vec![]),
    );
    let chain = vec![slot(&f9, 9), f9.der.clone()];
    verify_piv_attestation(&chain, &root.roots(), now()).unwrap();
}

#[test]
fn an_f9_certificate_without_basic_constraints_still_signs_the_slot_certificate() {
    // As on some older YubiKeys; Yubico's own verification accepts it.
    let root = Ca::test_root();
    let f9 = root.child(
        Key::p256(),
        Spec::new("CN=Yubico PIV Attestation", Key::p256().spki(), vec![]),
    );
    let chain = vec![slot(&f9, 1), f9.der.clone()];
    verify_piv_attestation(&chain, &root.roots(), now()).unwrap();
}

#[test]
fn an_expired_f9_certificate_is_refused() {
    let root = Ca::test_root();
    let mut spec = Spec::new(
        "CN=Yubico PIV Attestation",
        Key::p256().spki(),
        vec![basic_constraints(true, Some(0))],
    );
    spec.validity = validity_around(now(), 30 * DAY, Duration::ZERO);
    let f9 = root.child(Key::p256(), spec);
    let chain = vec![slot(&f9, 1), f9.der.clone()];
    let later = now() + DAY;
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), later),
        Err(AttestError::Expired { position: 1 })
    );
}

#[test]
fn an_expired_intermediate_is_refused() {
    let root = Ca::test_root();
    let mut spec = Spec::new(
        "CN=Test PIV Intermediate",
        Key::p256().spki(),
        ca_extensions(None),
    );
    spec.validity = validity_around(now(), 30 * DAY, DAY);
    let inter = root.child(Key::p256(), spec);
    let f9 = device(&inter);
    let chain = vec![slot(&f9, 1), f9.der.clone(), inter.der.clone()];
    verify_piv_attestation(&chain, &root.roots(), now()).unwrap();
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), now() + 2 * DAY),
        Err(AttestError::Expired { position: 2 })
    );
}

#[test]
fn a_slot_certificate_not_valid_yet_is_refused() {
    let root = Ca::test_root();
    let f9 = device(&root);
    let mut spec = Spec::new(
        "CN=YubiKey PIV Attestation 9a",
        Key::p256().spki(),
        yubico_extensions(1, 2, 2, Some(1)),
    );
    spec.validity = validity_around(now() + 10 * DAY, Duration::ZERO, DAY);
    let slot = issue(&f9.key, &f9.name, spec);
    assert_eq!(
        verify_piv_attestation(&[slot, f9.der.clone()], &root.roots(), now()),
        Err(AttestError::NotYetValid { position: 0 })
    );
}

#[test]
fn an_expired_root_is_refused() {
    let root = Ca::root(
        "CN=Old Root",
        Key::p256(),
        ca_extensions(None),
        validity_around(now(), 30 * DAY, DAY),
    );
    let mut spec = Spec::new(
        "CN=Yubico PIV Attestation",
        Key::p256().spki(),
        vec![basic_constraints(true, Some(0))],
    );
    spec.validity = validity_around(now(), 30 * DAY, 300 * DAY);
    let f9 = root.child(Key::p256(), spec);
    let chain = vec![slot(&f9, 1), f9.der.clone()];
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), now() + 2 * DAY),
        Err(AttestError::Expired { position: 2 })
    );
}

#[test]
fn a_non_ca_intermediate_above_f9_is_refused() {
    let root = Ca::test_root();
    let cases = [
        ("CA false", vec![basic_constraints(false, None)]),
        ("no basicConstraints", vec![]),
        (
            "keyUsage without keyCertSign",
            vec![
                basic_constraints(true, None),
                key_usage(KeyUsages::DigitalSignature.into()),
            ],
        ),
    ];
    for (what, extensions) in cases {
        let inter = root.child(
            Key::p256(),
            Spec::new("CN=Test PIV Intermediate", Key::p256().spki(), extensions),
        );
        let f9 = device(&inter);
        let chain = vec![slot(&f9, 1), f9.der.clone(), inter.der.clone()];
        assert_eq!(
            verify_piv_attestation(&chain, &root.roots(), now()),
            Err(AttestError::NotCa { position: 2 }),
            "{what}"
        );
    }
}

#[test]
fn a_non_ca_root_is_refused() {
    let root = Ca::root(
        "CN=Not A CA",
        Key::p256(),
        vec![basic_constraints(false, None)],
        long_validity(),
    );
    let f9 = device(&root);
    let chain = vec![slot(&f9, 1), f9.der.clone()];
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), now()),
        Err(AttestError::NotCa { position: 2 })
    );
}

#[test]
fn path_length_constraints_are_enforced() {
    // The root allows no intermediate below it, and f9 is one.
    let root = Ca::root(
        "CN=Tight Root",
        Key::p256(),
        ca_extensions(Some(0)),
        long_validity(),
    );
    let f9 = device(&root);
    let chain = vec![slot(&f9, 1), f9.der.clone()];
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), now()),
        Err(AttestError::PathLengthExceeded { position: 2 })
    );
    // An intermediate with pathlen 0 above f9.
    let root = Ca::test_root();
    let inter = root.child(
        Key::p256(),
        Spec::new(
            "CN=Test PIV Intermediate",
            Key::p256().spki(),
            ca_extensions(Some(0)),
        ),
    );
    let f9 = device(&inter);
    let chain = vec![slot(&f9, 1), f9.der.clone(), inter.der.clone()];
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), now()),
        Err(AttestError::PathLengthExceeded { position: 2 })
    );
}

#[test]
fn a_slot_certificate_that_is_a_ca_is_refused() {
    let root = Ca::test_root();
    let f9 = device(&root);
    let mut exts = yubico_extensions(1, 2, 2, Some(1));
    exts.push(basic_constraints(true, None));
    let chain = vec![slot_with(&f9, exts), f9.der.clone()];
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), now()),
        Err(AttestError::SlotCertificateIsCa)
    );
    // CA false is fine.
    let mut exts = yubico_extensions(1, 2, 2, Some(1));
    exts.push(basic_constraints(false, None));
    verify_piv_attestation(
        &[slot_with(&f9, exts), f9.der.clone()],
        &root.roots(),
        now(),
    )
    .unwrap();
}

#[test]
fn missing_or_malformed_yubico_extensions_are_refused() {
    let root = Ca::test_root();
    let f9 = device(&root);
    let check = |exts: Vec<x509_cert::ext::Extension>| {
        verify_piv_attestation(
            &[slot_with(&f9, exts), f9.der.clone()],
            &root.roots(),
            now(),
        )
    };
    let without = |oid| {
        yubico_extensions(1, 2, 2, Some(1))
            .into_iter()
            .filter(|e| e.extn_id != oid)
            .collect::<Vec<_>>()
    };
    let replaced = |oid, value: Vec<u8>| {
        let mut exts = without(oid);
        exts.push(ext(oid, false, value));
        exts
    };
    let missing = |name| AttestError::MissingExtension {
        name,
        oid: match name {
            "firmware version" => "1.3.6.1.4.1.41482.3.3",
            "serial number" => "1.3.6.1.4.1.41482.3.7",
            _ => "1.3.6.1.4.1.41482.3.8",
        },
    };
    let malformed = |name, oid| AttestError::MalformedExtension { name, oid };
    const POLICY: &str = "1.3.6.1.4.1.41482.3.8";

    assert_eq!(check(without(OID_POLICY)), Err(missing("PIN/touch policy")));
    assert_eq!(check(without(OID_SERIAL)), Err(missing("serial number")));
    assert_eq!(
        check(without(OID_FIRMWARE)),
        Err(missing("firmware version"))
    );
    // The form factor is optional (older firmware does not write it).
    let key = check(without(OID_FORM_FACTOR)).unwrap();
    assert_eq!(key.form_factor, None);

    for bad in [
        vec![],
        vec![2],
        vec![2, 2, 0],
        vec![0, 2],
        vec![2, 0],
        vec![9, 2],
        vec![2, 4],
    ] {
        assert_eq!(
            check(replaced(OID_POLICY, bad.clone())),
            Err(malformed("PIN/touch policy", POLICY)),
            "{bad:?}"
        );
    }
    for bio in [4u8, 5] {
        assert!(matches!(
            check(replaced(OID_POLICY, vec![bio, 2])),
            Err(AttestError::UnsupportedPolicy { value, .. }) if value == bio
        ));
    }
    // The serial is a DER INTEGER that fits in 32 bits.
    for bad in [
        vec![],
        vec![0x04, 0x01, 0x07],             // OCTET STRING
        vec![0x02, 0x05, 0x01, 0, 0, 0, 0], // 2^32
        vec![0x02, 0x01, 0xff],             // -1
        vec![0x02, 0x02, 0x00, 0x07],       // not minimal
        vec![0x02, 0x01, 0x07, 0x00],       // trailing byte
        vec![0x00, 0xbc, 0x61, 0x4e],       // raw bytes
    ] {
        assert_eq!(
            check(replaced(OID_SERIAL, bad.clone())),
            Err(malformed("serial number", "1.3.6.1.4.1.41482.3.7")),
            "{bad:?}"
        );
    }
    for bad in [vec![], vec![5, 4], vec![5, 4, 3, 0]] {
        assert_eq!(
            check(replaced(OID_FIRMWARE, bad.clone())),
            Err(malformed("firmware version", "1.3.6.1.4.1.41482.3.3")),
            "{bad:?}"
        );
    }
    for bad in [vec![], vec![1, 1]] {
        assert_eq!(
            check(replaced(OID_FORM_FACTOR, bad.clone())),
            Err(malformed("form factor", "1.3.6.1.4.1.41482.3.9")),
            "{bad:?}"
        );
    }
    // A policy extension twice.
    let mut twice = yubico_extensions(1, 2, 2, Some(1));
    twice.push(ext(OID_POLICY, false, vec![1, 1]));
    assert_eq!(
        check(twice),
        Err(AttestError::DuplicateExtension { position: 0 })
    );
}

#[test]
fn an_unknown_critical_extension_is_refused() {
    let root = Ca::test_root();
    let f9 = device(&root);
    let unknown = const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");
    let mut exts = yubico_extensions(1, 2, 2, Some(1));
    exts.push(ext(unknown, true, vec![0x05, 0x00]));
    assert_eq!(
        verify_piv_attestation(
            &[slot_with(&f9, exts), f9.der.clone()],
            &root.roots(),
            now()
        ),
        Err(AttestError::UnknownCriticalExtension { position: 0 })
    );
    // Non-critical, it is ignored.
    let mut exts = yubico_extensions(1, 2, 2, Some(1));
    exts.push(ext(unknown, false, vec![0x05, 0x00]));
    verify_piv_attestation(
        &[slot_with(&f9, exts), f9.der.clone()],
        &root.roots(),
        now(),
    )
    .unwrap();
    // Yubico's own extensions may be critical on the slot certificate.
    let exts = yubico_extensions(1, 2, 2, Some(1))
        .into_iter()
        .map(|mut e| {
            e.critical = true;
            e
        })
        .collect();
    verify_piv_attestation(
        &[slot_with(&f9, exts), f9.der.clone()],
        &root.roots(),
        now(),
    )
    .unwrap();
}

#[test]
fn an_issuer_name_that_does_not_match_is_refused() {
    let root = Ca::test_root();
    let f9 = device(&root);
    let mut spec = Spec::new(
        "CN=YubiKey PIV Attestation 9a",
        Key::p256().spki(),
        yubico_extensions(1, 2, 2, Some(1)),
    );
    spec.issuer_name = Some(name("CN=Somebody Else"));
    let slot = issue(&f9.key, &f9.name, spec);
    assert_eq!(
        verify_piv_attestation(&[slot, f9.der.clone()], &root.roots(), now()),
        Err(AttestError::IssuerMismatch { position: 0 })
    );
}

#[test]
fn configured_intermediates_complete_a_chain_but_do_not_anchor_it() {
    let root = Ca::test_root();
    let inter = root.child(
        Key::p256(),
        Spec::new(
            "CN=Test PIV Intermediate",
            Key::p256().spki(),
            ca_extensions(Some(1)),
        ),
    );
    let f9 = device(&inter);
    let chain = vec![slot(&f9, 1), f9.der.clone()];
    // The device does not send the intermediate; the configuration has it.
    let mut roots = root.roots();
    assert_eq!(
        verify_piv_attestation(&chain, &roots, now()),
        Err(AttestError::UnknownRoot)
    );
    roots.add_intermediates_pem(&inter.pem()).unwrap();
    verify_piv_attestation(&chain, &roots, now()).unwrap();
    // The intermediate alone is not trusted.
    let mut only_inter = DeviceRoots::default();
    only_inter.add_intermediates_pem(&inter.pem()).unwrap();
    assert_eq!(
        verify_piv_attestation(&chain, &only_inter, now()),
        Err(AttestError::UnknownRoot)
    );
}

#[test]
fn the_f9_certificate_cannot_be_the_root() {
    let root = Ca::test_root();
    let f9 = device(&root);
    let chain = vec![slot(&f9, 1), f9.der.clone()];
    assert_eq!(
        verify_piv_attestation(&chain, &f9.roots(), now()),
        Err(AttestError::UnknownRoot)
    );
}

#[test]
fn empty_short_long_and_garbage_chains_are_refused() {
    let root = Ca::test_root();
    let f9 = device(&root);
    let roots = root.roots();
    let good = vec![slot(&f9, 1), f9.der.clone()];
    assert_eq!(
        verify_piv_attestation(&[], &roots, now()),
        Err(AttestError::EmptyChain)
    );
    assert_eq!(
        verify_piv_attestation(&good[..1], &roots, now()),
        Err(AttestError::MissingDeviceCertificate)
    );
    let long = vec![good[0].clone(); MAX_CHAIN_LEN + 1];
    assert_eq!(
        verify_piv_attestation(&long, &roots, now()),
        Err(AttestError::ChainTooLong {
            len: MAX_CHAIN_LEN + 1,
            max: MAX_CHAIN_LEN
        })
    );
    for (position, garbage) in [
        (0, vec![]),
        (0, b"-----BEGIN CERTIFICATE-----".to_vec()),
        (1, vec![0x30, 0x03, 0x02, 0x01, 0x01]),
        (1, vec![0x30, 0x82, 0xff, 0xff]),
    ] {
        let mut chain = good.clone();
        chain[position] = garbage;
        assert_eq!(
            verify_piv_attestation(&chain, &roots, now()),
            Err(AttestError::Malformed { position })
        );
    }
    // Trailing bytes after a certificate, and a truncated one.
    let mut trailing = good.clone();
    trailing[0].push(0);
    assert_eq!(
        verify_piv_attestation(&trailing, &roots, now()),
        Err(AttestError::Malformed { position: 0 })
    );
    let mut truncated = good.clone();
    truncated[1].pop();
    assert_eq!(
        verify_piv_attestation(&truncated, &roots, now()),
        Err(AttestError::Malformed { position: 1 })
    );
    let mut huge = good.clone();
    huge[1] = vec![0x30; 9000];
    assert!(matches!(
        verify_piv_attestation(&huge, &roots, now()),
        Err(AttestError::CertificateTooLarge { position: 1, .. })
    ));
}

#[test]
fn roots_lists_are_read_with_clear_errors() {
    for bad in [
        "",
        "hello",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        assert!(matches!(
            DeviceRoots::from_pem(bad),
            Err(AttestError::InvalidRoots(_))
        ));
    }
    let a = Ca::test_root();
    let b = Ca::test_root();
    let both = DeviceRoots::from_pem(&format!("{}\n{}", a.pem(), b.pem())).unwrap();
    assert_eq!(both.root_subjects().len(), 2);
    let dir = std::env::temp_dir().join(format!("signet-attest-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("roots.pem");
    std::fs::write(&file, a.pem()).unwrap();
    assert!(!DeviceRoots::from_pem_file(&file).unwrap().is_empty());
    let err = DeviceRoots::from_pem_file(&dir.join("missing.pem")).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
    assert!(DeviceRoots::from_pem_file(&dir).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn error_messages_tell_the_operator_what_is_wrong() {
    assert_eq!(
        AttestError::Expired { position: 2 }.to_string(),
        "certificate 2 of the attestation chain has expired"
    );
    assert!(AttestError::UnknownRoot
        .to_string()
        .contains("trusted device root"));
    assert!(AttestError::MissingExtension {
        name: "PIN/touch policy",
        oid: "1.3.6.1.4.1.41482.3.8"
    }
    .to_string()
    .contains("PIN/touch policy"));
}

#[test]
fn an_unsupported_signature_algorithm_is_named() {
    let root = Ca::test_root();
    let f9 = device(&root);
    let mut chain = vec![slot(&f9, 1), f9.der.clone()];
    // ecdsa-with-SHA256 -> ecdsa-with-SHA512, in the signed part and outside.
    let sha256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let mut replaced = 0;
    let cert = &mut chain[0];
    for i in 0..cert.len() - sha256.len() {
        if cert[i..i + sha256.len()] == sha256 {
            cert[i + sha256.len() - 1] = 0x04;
            replaced += 1;
        }
    }
    assert_eq!(replaced, 2);
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), now()),
        Err(AttestError::UnsupportedAlgorithm { position: 0 })
    );
}

#[test]
fn a_signature_algorithm_outside_the_signed_part_must_match_the_inside() {
    let root = Ca::test_root();
    let f9 = device(&root);
    let mut chain = vec![slot(&f9, 1), f9.der.clone()];
    let sha256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let cert = &mut chain[0];
    let last = (0..cert.len() - sha256.len())
        .rev()
        .find(|&i| cert[i..i + sha256.len()] == sha256)
        .unwrap();
    cert[last + sha256.len() - 1] = 0x03; // outer: ecdsa-with-SHA384
    assert_eq!(
        verify_piv_attestation(&chain, &root.roots(), now()),
        Err(AttestError::Malformed { position: 0 })
    );
}
