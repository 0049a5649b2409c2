//! Cost of one verification: the real YubiKey chain (RSA-2048 f9 and root)
//! under the shipped Yubico roots, and the virtual YubiKey's (P-256).
//!
//! `cargo run --release -p signet-attest --example verify_bench [N]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::{DecodePem, Encode};
use signet_attest::{verify_piv_attestation, DeviceRoots};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn der_of(pem: &str) -> Vec<u8> {
    x509_cert::Certificate::from_pem(pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap()
}

fn run(label: &str, chain: &[Vec<u8>], roots: &DeviceRoots, now: SystemTime, n: u32) {
    verify_piv_attestation(chain, roots, now).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        verify_piv_attestation(chain, roots, now).unwrap();
    }
    let per = start.elapsed() / n;
    println!(
        "chain={label} n={n} verify_us={:.1}",
        per.as_secs_f64() * 1e6
    );
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N is a number"))
        .unwrap_or(2000);
    let real = vec![
        der_of(include_str!(
            "../tests/data/yubikey-25515003/slot-9c-attestation.pem"
        )),
        der_of(include_str!("../tests/data/yubikey-25515003/f9-device.pem")),
    ];
    let when = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    run(
        "yubico-rsa2048",
        &real,
        &DeviceRoots::yubico().unwrap(),
        when,
        n,
    );

    use p256::elliptic_curve::Generate;
    use signet_firmware_tests::attest::{attest_slot, AttestationRoot, AttestedFacts};
    use signet_firmware_tests::keys::{Algorithm, PrivateKey};
    let root = AttestationRoot::create().unwrap();
    let f9 = p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
    let f9_cert = root.issue_device_ca(&f9, 1).unwrap();
    let key = PrivateKey::generate(Algorithm::P256).unwrap();
    let facts = AttestedFacts {
        slot: 0x9a,
        firmware: [5, 7, 4],
        serial: 1,
        pin_policy: 2,
        touch_policy: 2,
        form_factor: 1,
    };
    let chain = vec![attest_slot(&f9, &f9_cert, &key, facts).unwrap(), f9_cert];
    let roots = DeviceRoots::from_pem(&root.cert_pem().unwrap()).unwrap();
    run("virtual-p256", &chain, &roots, SystemTime::now(), n);
}
