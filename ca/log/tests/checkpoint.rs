//! Checkpoints: the C2SP example, signing and opening, and malformed bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use common::{read_vector, TestEd25519Signer};
use signet_log::checkpoint::{open_checkpoint, Checkpoint, MAX_CHECKPOINT_LEN};
use signet_log::note::{Note, NoteSigner, VerifierSet};
use signet_log::{CheckpointError, Error, NoteError};

#[test]
fn c2sp_example_parses() {
    let raw = read_vector("checkpoint/c2sp-example.checkpoint");
    let note = Note::parse(raw.as_bytes()).unwrap();
    let c = Checkpoint::parse(note.text()).unwrap();
    assert_eq!(c.origin(), "example.com/behind-the-sofa");
    assert_eq!(c.size(), 20852163);
    assert_eq!(c.to_text(), note.text());
    // The spec publishes no key for it: opening it with any other key fails.
    let other = TestEd25519Signer::from_seed("example.com/behind-the-sofa", [3; 32]);
    let set = VerifierSet::new(vec![other.vkey.clone()]).unwrap();
    assert!(matches!(
        open_checkpoint(raw.as_bytes(), "example.com/behind-the-sofa", &set),
        Err(Error::Note(NoteError::NoKnownSignature))
    ));
}

#[test]
fn sign_and_open() {
    let origin = "ca.example.com/signet-log";
    let log_key = TestEd25519Signer::from_seed(origin, [5; 32]);
    let witness = TestEd25519Signer::from_seed("witness.example/w1", [6; 32]);
    let c = Checkpoint::new(origin, 42, [0xab; 32]).unwrap();
    let signed = Note::sign(&c.to_text(), &[&log_key as &dyn NoteSigner, &witness]).unwrap();
    let bytes = signed.to_text().into_bytes();

    let set = VerifierSet::new(vec![log_key.vkey.clone()]).unwrap();
    let v = open_checkpoint(&bytes, origin, &set).unwrap();
    assert_eq!(v.checkpoint, c);
    v.note.require(&log_key.vkey).unwrap();
    assert_eq!(v.note.unverified().len(), 1);

    assert!(matches!(
        open_checkpoint(&bytes, "other.example/signet-log", &set),
        Err(Error::Checkpoint(CheckpointError::WrongOrigin { .. }))
    ));
    // Trusting only the witness still opens it, but the log key is then missing.
    let wset = VerifierSet::new(vec![witness.vkey.clone()]).unwrap();
    let v = open_checkpoint(&bytes, origin, &wset).unwrap();
    assert!(v.note.require(&log_key.vkey).is_err());
}

#[test]
fn malformed_bodies() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let cases: Vec<(String, CheckpointError)> = vec![
        (
            format!("o\n5\n{root}"),
            CheckpointError::MissingFinalNewline,
        ),
        ("o\n5\n".into(), CheckpointError::TooFewLines),
        ("o\n".into(), CheckpointError::TooFewLines),
        ("\n".into(), CheckpointError::TooFewLines),
        (format!("\n5\n{root}\n"), CheckpointError::BadOrigin),
        (format!("o\n05\n{root}\n"), CheckpointError::BadSize),
        (format!("o\n00\n{root}\n"), CheckpointError::BadSize),
        (format!("o\n+5\n{root}\n"), CheckpointError::BadSize),
        (format!("o\n-1\n{root}\n"), CheckpointError::BadSize),
        (format!("o\n 5\n{root}\n"), CheckpointError::BadSize),
        (format!("o\n5 \n{root}\n"), CheckpointError::BadSize),
        (format!("o\n\n{root}\n"), CheckpointError::BadSize),
        (
            format!("o\n18446744073709551616\n{root}\n"),
            CheckpointError::BadSize,
        ),
        (
            format!("o\n99999999999999999999999\n{root}\n"),
            CheckpointError::BadSize,
        ),
        (format!("o\n0x10\n{root}\n"), CheckpointError::BadSize),
        (
            "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n".into(),
            CheckpointError::BadRootHash,
        ),
        (
            "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".into(),
            CheckpointError::BadRootHash,
        ),
        (
            "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n".into(),
            CheckpointError::BadRootHash,
        ),
        (
            "o\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n".into(),
            CheckpointError::BadRootHash,
        ),
        (format!("o\n5\n {root}\n"), CheckpointError::BadRootHash),
        (format!("o\n5\n{root}\n\n"), CheckpointError::BadExtension),
        (
            format!("o\n5\n{root}\next\n\n"),
            CheckpointError::BadExtension,
        ),
        (format!("o\r\n5\n{root}\n"), CheckpointError::BadOrigin),
        (
            format!("o\n5\n{root}\n{}", "e\n".repeat(17)),
            CheckpointError::TooManyExtensions,
        ),
        (
            format!("{}\n5\n{root}\n", "o".repeat(MAX_CHECKPOINT_LEN)),
            CheckpointError::TooLong,
        ),
    ];
    for (text, want) in cases {
        match Checkpoint::parse(&text) {
            Err(Error::Checkpoint(got)) => assert_eq!(got, want, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // The edges that are fine.
    assert_eq!(
        Checkpoint::parse(&format!("o\n0\n{root}\n"))
            .unwrap()
            .size(),
        0
    );
    assert_eq!(
        Checkpoint::parse(&format!("o\n18446744073709551615\n{root}\n"))
            .unwrap()
            .size(),
        u64::MAX
    );
    assert!(Checkpoint::new("", 1, [0; 32]).is_err());
    assert!(Checkpoint::new("a\nb", 1, [0; 32]).is_err());
    assert!(Checkpoint::with_extensions("o", 1, [0; 32], vec![String::new()]).is_err());
}
