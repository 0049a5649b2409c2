//! The `webauthn` fuzz target's seed corpus (`fuzz/corpus/webauthn/`),
//! run through the target's body: no seed panics, and the `ok-*` seeds are
//! still accepted (so fuzzing starts from inputs that pass every check).
//!
//! The seeds are made by the forge in `tests/common`:
//!
//! ```sh
//! SIGNET_WRITE_SEEDS=1 cargo test -p signet-webauthn --test fuzz_corpus
//! ```

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sha2::{Digest, Sha256};
use signet_webauthn::fuzzing::{join, one_input, CHALLENGE};
use signet_webauthn::{verify_registration, AttestationTrust, UserVerification};
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/webauthn")
}

/// Every seed: (name, bytes).
fn seeds() -> Vec<(String, Vec<u8>)> {
    let vendor = Vendor::new();
    let mut out = Vec::new();

    // Mode 0: registration JSON.
    let reg = Registration::packed(&vendor, &CHALLENGE);
    let json = serde_json::to_vec(&reg.response()).unwrap();
    out.push((
        "ok-registration-json".into(),
        join(0, &[&vendor.root_der, &json]),
    ));

    // Mode 2: the parts of registrations of every format.
    let mut variants = vec![("packed", Registration::packed(&vendor, &CHALLENGE))];
    let mut selfie = Registration::packed(&vendor, &CHALLENGE);
    selfie.attestation = None;
    variants.push(("self", selfie));
    let mut none = Registration::packed(&vendor, &CHALLENGE);
    none.fmt = "none".into();
    variants.push(("none", none));
    let mut u2f = Registration::packed(&vendor, &CHALLENGE);
    u2f.fmt = "fido-u2f".into();
    u2f.aaguid = [0; 16];
    variants.push(("fido-u2f", u2f));
    let mut ext = Registration::packed(&vendor, &CHALLENGE);
    ext.flags |= ED;
    ext.trailer = cbor(&ciborium::Value::Map(vec![(
        "credProtect".into(),
        2.into(),
    )]));
    variants.push(("extensions", ext));
    let mut ed = Registration::packed(&vendor, &CHALLENGE);
    ed.cose = cose_ed25519(&ed25519_dalek::SigningKey::from_bytes(&[4; 32]));
    variants.push(("eddsa", ed));
    for (name, reg) in &variants {
        out.push((
            format!("ok-registration-{name}"),
            join(2, &[&vendor.root_der, &reg.client_data, &reg.object()]),
        ));
    }

    // Modes 1 and 3: assertions by the registered credential.
    let reg = Registration::packed(&vendor, &CHALLENGE);
    let mut trust = AttestationTrust::default();
    trust.add_root_der(&vendor.root_der).unwrap();
    let cred = verify_registration(
        &rp(UserVerification::Preferred),
        &trust,
        &CHALLENGE,
        &reg.response(),
    )
    .unwrap();
    let a = Assertion::new(&cred.id.0, &CHALLENGE, 2);
    let response = a.signed_by(&reg.cred_key);
    out.push((
        "ok-assertion-json".into(),
        join(
            1,
            &[
                &serde_json::to_vec(&cred).unwrap(),
                &serde_json::to_vec(&response).unwrap(),
            ],
        ),
    ));
    let auth = a.auth_data();
    let mut signed = auth.clone();
    signed.extend_from_slice(&Sha256::digest(&a.client_data));
    let sig = sign_p256(&reg.cred_key, &signed);
    out.push((
        "ok-assertion-es256".into(),
        join(
            3,
            &[
                &reg.cose,
                &cred.id.0,
                &a.client_data,
                &auth,
                &sig,
                &1u32.to_be_bytes(),
            ],
        ),
    ));
    let ed = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    let ed_sig = ed25519_dalek::Signer::sign(&ed, &signed).to_bytes();
    out.push((
        "ok-assertion-eddsa".into(),
        join(
            3,
            &[
                &cose_ed25519(&ed),
                &cred.id.0,
                &a.client_data,
                &auth,
                &ed_sig,
                &[0, 0, 0, 1],
            ],
        ),
    ));
    out
}

#[test]
fn seeds_run_and_the_good_ones_pass() {
    if std::env::var("SIGNET_WRITE_SEEDS").as_deref() == Ok("1") {
        let dir = corpus_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds() {
            assert!(one_input(&bytes), "fresh seed {name} is refused");
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut n = 0;
    for entry in std::fs::read_dir(corpus_dir()).expect("fuzz/corpus/webauthn") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let accepted = one_input(&bytes);
        if name.starts_with("ok-") {
            assert!(accepted, "seed {name} is no longer accepted");
        }
        // Every prefix and a flipped byte: refusals, never panics.
        for cut in [1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
            one_input(&bytes[..cut]);
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x55;
            one_input(&flipped);
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} seeds");
}
