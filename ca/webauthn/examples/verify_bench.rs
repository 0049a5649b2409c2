//! What the relying-party checks cost the CA per ceremony: a packed
//! registration (statement signature and chain to the root, both ECDSA
//! P-256) and an ES256 assertion, verified in a loop.
//!
//! ```sh
//! cargo run --release -p signet-webauthn --example verify_bench -- [N]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use signet_webauthn::{verify_assertion, verify_registration, UserVerification};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("N is a number"))
        .unwrap_or(2000);
    let rp = rp(UserVerification::Preferred);
    let chal = challenge(3);
    let vendor = Vendor::new();
    let trust = vendor.trust();
    let reg = Registration::packed(&vendor, &chal);
    let reg_response = reg.response();
    let cred = verify_registration(&rp, &trust, &chal, &reg_response).unwrap();
    let assertion = Assertion::new(&cred.id.0, &chal, 2).signed_by(&reg.cred_key);

    let start = Instant::now();
    for _ in 0..n {
        verify_registration(&rp, &trust, &chal, &reg_response).unwrap();
    }
    let reg_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let start = Instant::now();
    for _ in 0..n {
        verify_assertion(&rp, &chal, &cred, &assertion, true).unwrap();
    }
    let assert_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    // The floor: one ring ECDSA P-256 verification of the same signature.
    let point = reg.cred_key.verifying_key().to_sec1_point(false);
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        point.as_bytes().to_vec(),
    );
    let auth = b64_decode(&assertion.response.authenticator_data);
    let cdj = b64_decode(&assertion.response.client_data_json);
    let sig = b64_decode(&assertion.response.signature);
    let mut signed = auth.clone();
    signed.extend_from_slice(&<sha2::Sha256 as sha2::Digest>::digest(&cdj));
    let start = Instant::now();
    for _ in 0..n {
        key.verify(&signed, &sig).unwrap();
    }
    let ring_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "n={n} verify_registration_us={reg_us:.1} verify_assertion_us={assert_us:.1} ring_p256_verify_us={ring_us:.1}"
    );
}

fn b64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}
