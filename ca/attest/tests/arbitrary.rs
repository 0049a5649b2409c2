//! Arbitrary input never panics and is never accepted: random bytes, and
//! random changes to a good chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use signet_attest::{verify_piv_attestation, DeviceRoots};
use std::sync::OnceLock;
use std::time::SystemTime;

struct Fixture {
    chain: Vec<Vec<u8>>,
    roots: DeviceRoots,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = Ca::test_root();
        let f9 = device(&root);
        let chain = vec![slot(&f9, 1), f9.der.clone(), root.der.clone()];
        let roots = root.roots();
        verify_piv_attestation(&chain, &roots, SystemTime::now()).unwrap();
        Fixture { chain, roots }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_chains_are_refused(chain in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..600), 0..7)
    ) {
        let mut roots = fixture().roots.clone();
        roots.extend(DeviceRoots::yubico().unwrap());
        prop_assert!(verify_piv_attestation(&chain, &roots, SystemTime::now()).is_err());
    }

    #[test]
    fn changed_chains_are_refused(
        which in 0usize..2,
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let f = fixture();
        let mut chain = f.chain.clone();
        let i = at.index(chain[which].len());
        chain[which][i] ^= xor;
        prop_assert!(verify_piv_attestation(&chain, &f.roots, SystemTime::now()).is_err());
    }

    #[test]
    fn truncated_or_extended_chains_are_refused(
        which in 0usize..3,
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 1..8),
    ) {
        let f = fixture();
        let mut chain = f.chain.clone();
        let len = chain[which].len();
        chain[which].truncate(cut.index(len));
        prop_assert!(verify_piv_attestation(&chain, &f.roots, SystemTime::now()).is_err());
        let mut chain = f.chain.clone();
        chain[which].extend_from_slice(&extra);
        prop_assert!(verify_piv_attestation(&chain, &f.roots, SystemTime::now()).is_err());
    }
}
