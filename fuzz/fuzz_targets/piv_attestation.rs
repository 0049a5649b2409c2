//! Fuzz `verify_piv_attestation` with the chains a client could send.
//!
//! Input: up to seven certificates, each as a 2-byte big-endian length and
//! that many bytes (a short last one takes what is left). Roots: the
//! shipped Yubico roots; the time is fixed (2026-01-01) so that an answer
//! depends on the input alone. The seeds are a real YubiKey's chain
//! (ca/attest/tests/data) with and without its root.
//!
//! Beyond "no panic": the same answer twice; an accepted chain attests the
//! key of its first certificate and chains to a shipped root.
#![no_main]

use der::{Decode as _, Encode as _};
use libfuzzer_sys::fuzz_target;
use signet_attest::{verify_piv_attestation, DeviceRoots};
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

fn roots() -> &'static DeviceRoots {
    static ROOTS: OnceLock<DeviceRoots> = OnceLock::new();
    ROOTS.get_or_init(|| DeviceRoots::yubico().expect("the shipped roots load"))
}

fn split(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut certs = Vec::new();
    while certs.len() < 7 && data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        data = &data[2..];
        let take = len.min(data.len());
        certs.push(data[..take].to_vec());
        data = &data[take..];
    }
    certs
}

fuzz_target!(|data: &[u8]| {
    let chain = split(data);
    let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let first = verify_piv_attestation(&chain, roots(), now);
    let second = verify_piv_attestation(&chain, roots(), now);
    assert_eq!(first, second);
    if let Ok(key) = first {
        let leaf = x509_cert::Certificate::from_der(&chain[0]).expect("accepted leaf parses");
        let spki = leaf
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .expect("re-encodes");
        assert_eq!(key.public_key_spki_der, spki);
        assert!(roots().root_subjects().contains(&key.root_subject));
    }
});
