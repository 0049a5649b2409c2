//! Property tests: every honest proof verifies, every altered one fails, and
//! no parser panics on any input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use proptest::prelude::*;
use signet_log::checkpoint::Checkpoint;
use signet_log::entry::Entry;
use signet_log::merkle::{
    consistency_proof, consistency_proof_len, inclusion_proof, inclusion_proof_len, leaf_hash,
    root, verify_consistency, verify_inclusion, CompactRange, Hash, HashStore, MemoryHashStore,
};
use signet_log::note::{Note, VerifierKey};
use signet_log::tiles::{EntryBundle, HashTile, TileBuilder, TilePath, TileSet};

fn store(size: u64) -> MemoryHashStore {
    let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    MemoryHashStore::from_leaf_hashes(&leaves)
}

/// The hash operations the RFC 9162 §2.1.3.2 verifier performs for a proof of
/// `len` hashes, or `None` if it rejects the shape outright. A proof binds a
/// leaf to a root; the size comes from the signed checkpoint. Two sizes that
/// drive the verifier through identical operations cannot be told apart by
/// any proof, so tampering with the size must fail only when the operations
/// differ.
fn inclusion_ops(index: u64, size: u64, len: usize) -> Option<Vec<bool>> {
    if inclusion_proof_len(index, size).ok()? != len {
        return None;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut ops = Vec::new();
    for _ in 0..len {
        if f & 1 == 1 || f == s {
            ops.push(true);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            ops.push(false);
        }
        f >>= 1;
        s >>= 1;
    }
    Some(ops)
}

/// The same for §2.1.4.2: whether the old root is prepended, then per hash
/// whether both running hashes absorb it or only the new one.
fn consistency_ops(old: u64, new: u64, len: usize) -> Option<(bool, Vec<bool>)> {
    if old == 0 || old > new || consistency_proof_len(old, new).ok()? != len {
        return None;
    }
    if old == new {
        return Some((false, Vec::new()));
    }
    let prepend = old.is_power_of_two();
    let steps = if prepend { len } else { len - 1 };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut ops = Vec::new();
    for _ in 0..steps {
        if f & 1 == 1 || f == s {
            ops.push(true);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            ops.push(false);
        }
        f >>= 1;
        s >>= 1;
    }
    Some((prepend, ops))
}

fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    (1u64..2500).prop_flat_map(|size| (Just(size), 0..size))
}

fn old_and_new() -> impl Strategy<Value = (u64, u64)> {
    (1u64..2500).prop_flat_map(|new| (1..=new, Just(new)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn inclusion_proofs_verify_and_tampering_fails(
        (size, index) in size_and_index(),
        flip in any::<(usize, u8, u8)>(),
        other in any::<u64>(),
    ) {
        let st = store(size);
        let r = root(&st, size).unwrap();
        let leaf = st.subtree_hash(0, index).unwrap();
        let proof = inclusion_proof(&st, index, size).unwrap();
        prop_assert_eq!(proof.len(), inclusion_proof_len(index, size).unwrap());
        verify_inclusion(&leaf, index, size, &proof, &r).unwrap();

        let bit = 1u8 << (flip.2 % 8);
        // A changed hash in the proof.
        if !proof.is_empty() {
            let mut p = proof.clone();
            let i = flip.0 % p.len();
            p[i][usize::from(flip.1) % 32] ^= bit;
            prop_assert!(verify_inclusion(&leaf, index, size, &p, &r).is_err());
        }
        // A changed leaf or root.
        let mut l = leaf;
        l[usize::from(flip.1) % 32] ^= bit;
        prop_assert!(verify_inclusion(&l, index, size, &proof, &r).is_err());
        let mut rr = r;
        rr[usize::from(flip.1) % 32] ^= bit;
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &rr).is_err());
        // A proof too short or too long.
        if !proof.is_empty() {
            prop_assert!(verify_inclusion(&leaf, index, size, &proof[1..], &r).is_err());
        }
        let mut longer = proof.clone();
        longer.push(r);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &r).is_err());
        // Another index (the leaves are distinct, so this must fail).
        let idx2 = other % size;
        if idx2 != index {
            prop_assert!(verify_inclusion(&leaf, idx2, size, &proof, &r).is_err());
        }
        // Another size: fails unless the verifier would do the very same hashing.
        let size2 = 1 + other % (2 * size + 2);
        if size2 != size {
            let same = inclusion_ops(index, size2, proof.len()) == inclusion_ops(index, size, proof.len());
            if !same {
                prop_assert!(verify_inclusion(&leaf, index, size2, &proof, &r).is_err());
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_tampering_fails(
        (old, new) in old_and_new(),
        flip in any::<(usize, u8, u8)>(),
        other in any::<(u64, u64)>(),
    ) {
        let st = store(new);
        let (r1, r2) = (root(&st, old).unwrap(), root(&st, new).unwrap());
        let proof = consistency_proof(&st, old, new).unwrap();
        prop_assert_eq!(proof.len(), consistency_proof_len(old, new).unwrap());
        verify_consistency(old, new, &proof, &r1, &r2).unwrap();

        let bit = 1u8 << (flip.2 % 8);
        let byte = usize::from(flip.1) % 32;
        if !proof.is_empty() {
            let mut p = proof.clone();
            let i = flip.0 % p.len();
            p[i][byte] ^= bit;
            // A hash the verifier does not consume cannot be detected; the
            // RFC algorithm consumes every one of them.
            prop_assert!(verify_consistency(old, new, &p, &r1, &r2).is_err());
            prop_assert!(verify_consistency(old, new, &proof[1..], &r1, &r2).is_err());
        }
        let mut bad1 = r1;
        bad1[byte] ^= bit;
        prop_assert!(verify_consistency(old, new, &proof, &bad1, &r2).is_err());
        let mut bad2 = r2;
        bad2[byte] ^= bit;
        prop_assert!(verify_consistency(old, new, &proof, &r1, &bad2).is_err());
        let mut longer = proof.clone();
        longer.push(r1);
        prop_assert!(verify_consistency(old, new, &longer, &r1, &r2).is_err());

        // Other sizes: fail unless the verifier would do the very same hashing.
        let old2 = other.0 % (new + 2);
        let new2 = other.1 % (2 * new + 2);
        let ops = consistency_ops(old, new, proof.len());
        if (old2, new2) != (old, new) && consistency_ops(old2, new2, proof.len()) != ops {
            prop_assert!(verify_consistency(old2, new2, &proof, &r1, &r2).is_err());
        }
    }

    #[test]
    fn compact_range_and_tiles_agree_with_the_store(size in 0u64..3000) {
        let st = store(size);
        let want = root(&st, size).unwrap();
        let mut range = CompactRange::new();
        let mut builder = TileBuilder::new();
        let mut set = TileSet::new(size);
        for i in 0..size {
            let mut done = Vec::new();
            range.append(st.subtree_hash(0, i).unwrap(), |n, h| done.push((n, *h))).unwrap();
            for (n, h) in done {
                if let Some((p, t)) = builder.observe(n, &h).unwrap() {
                    set.insert(p, t).unwrap();
                }
            }
        }
        for (p, t) in builder.partial_tiles().unwrap() {
            set.insert(p, t).unwrap();
        }
        prop_assert_eq!(range.root(), want);
        prop_assert_eq!(root(&set, size).unwrap(), want);
        if size > 0 {
            let i = size / 3;
            prop_assert_eq!(inclusion_proof(&set, i, size).unwrap(), inclusion_proof(&st, i, size).unwrap());
        }
    }

    #[test]
    fn tile_paths_round_trip(level in 0u8..=63, index in any::<u64>(), width in 1u16..=256, entries in any::<bool>()) {
        let p = if entries { TilePath::entries(index, width) } else { TilePath::hash(level, index, width) }.unwrap();
        prop_assert_eq!(TilePath::parse(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn checkpoints_round_trip(origin in "[a-z0-9./-]{1,40}", size in any::<u64>(), r in any::<[u8; 32]>(), ext in proptest::collection::vec("[ -~]{1,20}", 0..3)) {
        let c = Checkpoint::with_extensions(&origin, size, r, ext).unwrap();
        prop_assert_eq!(Checkpoint::parse(&c.to_text()).unwrap(), c);
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Note::parse(&bytes);
        let _ = Entry::from_bytes(&bytes);
        let _ = EntryBundle::parse(&bytes, 3);
        let _ = HashTile::parse(&bytes, 2);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = Checkpoint::parse(s);
            let _ = TilePath::parse(s);
            let _ = VerifierKey::parse(s);
        }
    }

    #[test]
    fn mutated_notes_never_panic(pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let base = "ca.example.com/signet-log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} ca.example.com/signet-log Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
        let mut b = base.as_bytes().to_vec();
        let i = pos % b.len();
        b[i] = byte;
        b.truncate(cut % (b.len() + 1));
        if let Ok(n) = Note::parse(&b) {
            let _ = Checkpoint::parse(n.text());
        }
    }
}

#[test]
fn huge_sizes_do_not_overflow() {
    // A store that answers anything: only the index arithmetic is under test.
    let any = |_: u32, _: u64| -> signet_log::Result<Hash> { Ok([7; 32]) };
    for (index, size) in [
        (0, u64::MAX),
        (u64::MAX - 1, u64::MAX),
        (1 << 63, u64::MAX),
        (12345, 1 << 63),
    ] {
        let p = inclusion_proof(&any, index, size).unwrap();
        assert_eq!(p.len(), inclusion_proof_len(index, size).unwrap());
        assert!(p.len() <= 64);
    }
    for (old, new) in [
        (1, u64::MAX),
        (u64::MAX - 1, u64::MAX),
        (1 << 63, u64::MAX),
        (3, 1 << 63),
    ] {
        let p = consistency_proof(&any, old, new).unwrap();
        assert_eq!(p.len(), consistency_proof_len(old, new).unwrap());
        assert!(p.len() <= 65);
        let _ = verify_consistency(old, new, &p, &[0; 32], &[1; 32]);
    }
    assert!(root(&any, u64::MAX).is_ok());
    assert!(inclusion_proof(&any, u64::MAX, u64::MAX).is_err());
    assert!(verify_inclusion(&[0; 32], 0, 0, &[], &[0; 32]).is_err());
    assert!(verify_consistency(0, 0, &[], &[0; 32], &[0; 32]).is_err());
    assert!(verify_consistency(5, 4, &[], &[0; 32], &[0; 32]).is_err());
    assert!(verify_consistency(4, 4, &[], &[0; 32], &[1; 32]).is_err());
    verify_consistency(4, 4, &[], &[1; 32], &[1; 32]).unwrap();
}
