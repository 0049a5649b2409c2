//! cosignature/v1 and witness policies: published vectors (C2SP,
//! transparency-dev/formats), an independent vector made with Python's
//! `cryptography`, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{read_vector, TestEd25519Signer};
use ed25519_dalek::Signer as _;
use signet_log::checkpoint::Checkpoint;
use signet_log::note::cosignature::{
    cosignature_timestamp, cosigned_message, verify_cosignature, CosignatureSigner, SignFn,
    MAX_TIMESTAMP,
};
use signet_log::note::{Note, Signature, SignatureType, VerifierKey, VerifierSet};
use signet_log::witness::{append_cosignatures, Witness, WitnessPolicy};
use signet_log::{Error, NoteError, WitnessError};

const BODY: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

fn vkey(rel: &str) -> VerifierKey {
    VerifierKey::parse(read_vector(rel).trim()).unwrap()
}

fn policy_toml(threshold: usize, witnesses: &[(&str, &str)]) -> String {
    let mut s = format!("[witnesses]\nthreshold = {threshold}\n");
    for (name, vkey) in witnesses {
        s.push_str(&format!(
            "[[witnesses.witness]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:7380\"\nvkey = \"{vkey}\"\n"
        ));
    }
    s
}

#[derive(serde::Deserialize)]
struct Config {
    witnesses: WitnessPolicy,
}

fn parse_policy(toml_text: &str) -> Result<WitnessPolicy, String> {
    toml::from_str::<Config>(toml_text)
        .map(|c| c.witnesses)
        .map_err(|e| e.to_string())
}

fn vector_policy(threshold: usize) -> WitnessPolicy {
    let w1 = read_vector("witness/w1.vkey");
    let w2 = read_vector("witness/w2.vkey");
    parse_policy(&policy_toml(
        threshold,
        &[("w1", w1.trim()), ("w2", w2.trim())],
    ))
    .unwrap()
}

fn witness_err<T: std::fmt::Debug>(r: signet_log::Result<T>) -> WitnessError {
    match r {
        Err(Error::Witness(e)) => e,
        other => panic!("expected a witness error, got {other:?}"),
    }
}

/// A software witness key.
type TestSigner = CosignatureSigner<Box<SignFn>>;

fn test_signer(name: &str, seed: u8) -> TestSigner {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let pk = sk.verifying_key().to_bytes();
    let sign: Box<SignFn> = Box::new(move |m: &[u8]| Ok(sk.sign(m).to_bytes().to_vec()));
    CosignatureSigner::new(name, &pk, sign).unwrap()
}

// ---------- published vectors ----------

#[test]
fn formats_native_cosignature_vkey() {
    // transparency-dev/formats note/note_cosigv1_test.go, TestCoSigV1NewVerifier:
    // a native cosignature/v1 vkey; its key id must be the one we compute.
    let k =
        VerifierKey::parse("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
            .unwrap();
    assert_eq!(k.signature_type(), SignatureType::CosignatureV1);
    assert_eq!(k.signature_type().id(), 0x04);
    assert_eq!(k.key_id().to_string(), "da77ade7");
    assert_eq!(
        k.to_string(),
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    );
    // Same key with a wrong key id.
    assert!(matches!(
        VerifierKey::parse("remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"),
        Err(Error::Note(NoteError::KeyIdMismatch))
    ));
    // The 0x01 form of the same key material has another key id.
    let ed = VerifierKey::ed25519("remora.n621.de", k.key_material().try_into().unwrap()).unwrap();
    assert_ne!(ed.key_id(), k.key_id());
}

#[test]
fn formats_timestamp_vectors() {
    // transparency-dev/formats note/note_cosigv1_test.go, TestCosignatureTimestamp.
    let raw = STANDARD
        .decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==")
        .unwrap();
    let line = format!("\u{2014} w {}", STANDARD.encode(&raw));
    let sig = Signature::parse_line(&line).unwrap();
    assert_eq!(cosignature_timestamp(&sig).unwrap(), 1727964367);
    // "wrong type of signature": a plain Ed25519 note signature.
    let line = "\u{2014} w eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=";
    let sig = Signature::parse_line(line).unwrap();
    assert!(matches!(
        cosignature_timestamp(&sig),
        Err(Error::Note(NoteError::MalformedCosignature(_)))
    ));
}

#[test]
fn c2sp_example_cosignature_timestamp() {
    // c2sp.org/tlog-cosignature's example: its witness line carries the time
    // its signed-message example shows (1679315147).
    let line = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==";
    let sig = Signature::parse_line(line).unwrap();
    assert_eq!(cosignature_timestamp(&sig).unwrap(), 1679315147);
    assert_eq!(
        String::from_utf8(cosigned_message(BODY, 1679315147)).unwrap(),
        "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
}

#[test]
fn python_vector_verifies() {
    // Made by vectors/witness/make_vectors.py (Python `cryptography`, not this crate).
    let note = read_vector("witness/cosigned.checkpoint");
    let log = vkey("witness/log.vkey");
    let w1 = vkey("witness/w1.vkey");
    let w2 = vkey("witness/w2.vkey");
    let parsed = Note::parse(note.as_bytes()).unwrap();
    assert_eq!(parsed.text(), BODY);
    let sigs = parsed.signatures();
    assert_eq!(verify_cosignature(&w1, BODY, &sigs[1]).unwrap(), 1679315147);
    assert_eq!(verify_cosignature(&w2, BODY, &sigs[2]).unwrap(), 1700000000);
    // A cosignature is not the other witness's, nor the log's.
    assert!(verify_cosignature(&w1, BODY, &sigs[2]).is_err());
    assert!(matches!(
        verify_cosignature(&log, BODY, &sigs[0]),
        Err(Error::Note(NoteError::NotACosignatureKey(_)))
    ));
    // The generic note verifier checks cosignatures too.
    let v = parsed
        .verify(&VerifierSet::new(vec![log.clone(), w1.clone(), w2.clone()]).unwrap())
        .unwrap();
    assert_eq!(v.verified_by().len(), 3);

    let c = vector_policy(2)
        .verify_checkpoint(note.as_bytes(), &log)
        .unwrap();
    assert_eq!(c.origin(), "example.com/behind-the-sofa");
    assert_eq!(c.size(), 20852163);
    assert_eq!(
        STANDARD.encode(c.root()),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    );
    let names: Vec<_> = c
        .cosignatures()
        .iter()
        .map(|x| x.witness.as_str())
        .collect();
    assert_eq!(names, ["w1", "w2"]);
    assert_eq!(c.cosignatures()[0].timestamp, 1679315147);
    assert_eq!(c.note(), note);
}

// ---------- signing ----------

#[test]
fn signer_round_trip_and_extension_lines() {
    let s = test_signer("witness.example/w", 9);
    let vk = VerifierKey::parse(&s.verifier_key().to_string()).unwrap();
    assert_eq!(vk.signature_type(), SignatureType::CosignatureV1);
    let body = format!("{BODY}extension line\n");
    let sig = s.cosign(&body, 1_700_000_123).unwrap();
    assert_eq!(sig.signature.len(), 72);
    assert_eq!(&sig.signature[..8], &1_700_000_123u64.to_be_bytes());
    assert_eq!(verify_cosignature(&vk, &body, &sig).unwrap(), 1_700_000_123);
    // The extension line is covered.
    assert!(verify_cosignature(&vk, BODY, &sig).is_err());
    let tampered = body.replace("extension", "Extension");
    assert!(verify_cosignature(&vk, &tampered, &sig).is_err());
    // The timestamp is covered.
    let mut moved = sig.clone();
    moved.signature[7] ^= 1;
    assert!(verify_cosignature(&vk, &body, &moved).is_err());
    // The line form parses back.
    let line = s.cosign_line(&body, 5).unwrap();
    assert!(line.ends_with('\n'));
    let back = Signature::parse_line(line.trim_end_matches('\n')).unwrap();
    assert_eq!(verify_cosignature(&vk, &body, &back).unwrap(), 5);
}

#[test]
fn signer_refuses_bad_input_and_wrong_keys() {
    let s = test_signer("w", 1);
    assert!(matches!(
        s.cosign(BODY, MAX_TIMESTAMP + 1),
        Err(Error::Note(NoteError::BadTimestamp))
    ));
    assert!(s.cosign(BODY, MAX_TIMESTAMP).is_ok());
    assert!(matches!(
        s.cosign("no newline", 1),
        Err(Error::Note(NoteError::BadText))
    ));
    assert!(matches!(
        s.cosign("", 1),
        Err(Error::Note(NoteError::BadText))
    ));
    // A token holding another key than the configured one.
    let other = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let pk = ed25519_dalek::SigningKey::from_bytes(&[1; 32])
        .verifying_key()
        .to_bytes();
    let wrong = CosignatureSigner::new("w", &pk, move |m: &[u8]| {
        Ok(other.sign(m).to_bytes().to_vec())
    })
    .unwrap();
    assert!(matches!(
        wrong.cosign(BODY, 1),
        Err(Error::Note(NoteError::Signer(_)))
    ));
    // A signer that fails, or returns the wrong length.
    let failing = CosignatureSigner::new("w", &pk, |_: &[u8]| Err("token removed".into())).unwrap();
    match failing.cosign(BODY, 1) {
        Err(Error::Note(NoteError::Signer(m))) => assert!(m.contains("token removed")),
        other => panic!("{other:?}"),
    }
    let short = CosignatureSigner::new("w", &pk, |_: &[u8]| Ok(vec![0; 63])).unwrap();
    assert!(matches!(
        short.cosign(BODY, 1),
        Err(Error::Note(NoteError::Signer(_)))
    ));
}

#[test]
fn malformed_cosignatures_are_refused() {
    let s = test_signer("w", 3);
    let vk = s.verifier_key().clone();
    let good = s.cosign(BODY, 77).unwrap();
    for len in [0, 8, 64, 71, 73] {
        let mut bad = good.clone();
        bad.signature.resize(len, 0);
        assert!(matches!(
            verify_cosignature(&vk, BODY, &bad),
            Err(Error::Note(NoteError::MalformedCosignature(_)))
        ));
        assert!(!vk.verify(BODY.as_bytes(), &bad.signature));
    }
    // Timestamp above 2^63 - 1: refused even before the signature is checked.
    let mut big = good.clone();
    big.signature[0] = 0x80;
    assert!(matches!(
        verify_cosignature(&vk, BODY, &big),
        Err(Error::Note(NoteError::MalformedCosignature(_)))
    ));
    // Line by another name or key id.
    let mut renamed = good.clone();
    renamed.name = "v".into();
    assert!(verify_cosignature(&vk, BODY, &renamed).is_err());
}

// ---------- policies ----------

#[test]
fn policy_parses_the_documented_shape() {
    let w1 = read_vector("witness/w1.vkey");
    let text = format!(
        "[witnesses]\nthreshold = 1\n[[witnesses.witness]]\nname = \"witness-a\"\nurl = \"http://127.0.0.1:7380\"\nvkey = \"{}\"\n[[witnesses.witness]]\nname = \"witness-b\"\nvkey = \"{}\"\n",
        w1.trim(),
        read_vector("witness/w2.vkey").trim()
    );
    let p = parse_policy(&text).unwrap();
    assert_eq!(p.threshold(), 1);
    assert_eq!(p.witnesses().len(), 2);
    assert_eq!(p.witnesses()[0].name(), "witness-a");
    assert_eq!(p.witnesses()[0].url(), Some("http://127.0.0.1:7380"));
    assert_eq!(p.witnesses()[1].url(), None);
    assert_eq!(p.witnesses()[0].key().to_string(), w1.trim());
    // No witnesses at all.
    let none = parse_policy("[witnesses]\nthreshold = 0\n").unwrap();
    assert!(none.is_none());
    assert!(WitnessPolicy::none().is_none());
}

#[test]
fn bad_policies_name_the_field() {
    let w1 = read_vector("witness/w1.vkey");
    let w1 = w1.trim();
    let w2 = read_vector("witness/w2.vkey");
    let w2 = w2.trim();
    let log = read_vector("witness/log.vkey");
    let cases: Vec<(String, &str)> = vec![
        (
            policy_toml(3, &[("a", w1), ("b", w2)]),
            "witnesses.threshold",
        ),
        (policy_toml(1, &[]), "witnesses.threshold"),
        (policy_toml(0, &[("a", w1)]), "witnesses.threshold"),
        (
            policy_toml(1, &[("a", w1), ("a", w2)]),
            "witnesses.witness[1].name",
        ),
        (
            policy_toml(1, &[("a", w1), ("b", w1)]),
            "witnesses.witness[1].vkey",
        ),
        (
            policy_toml(1, &[("a", log.trim())]),
            "witnesses.witness[0].vkey",
        ),
        (
            policy_toml(1, &[("a", "not a vkey")]),
            "witnesses.witness[0].vkey",
        ),
        (policy_toml(1, &[("", w1)]), "witnesses.witness[0].name"),
        (
            policy_toml(1, &[("a", w1)]).replace("http://127.0.0.1:7380", "ftp://x"),
            "witnesses.witness[0].url",
        ),
        (
            policy_toml(1, &[("a", w1)]).replace("http://127.0.0.1:7380", "http://"),
            "witnesses.witness[0].url",
        ),
        (
            policy_toml(1, &[("a", w1)]).replace("name =", "nmae ="),
            "nmae",
        ),
        (
            "[witnesses]\n[[witnesses.witness]]\nname = \"a\"\n".into(),
            "vkey",
        ),
        ("[witnesses]\n".into(), "threshold"),
        ("[witnesses]\nthreshold = -1\n".into(), "threshold"),
    ];
    for (text, field) in cases {
        let err = parse_policy(&text).expect_err(&text);
        assert!(err.contains(field), "{text}\n→ {err}\n(expected {field})");
    }
    // The same public key under two key names counts once only: refused.
    let k1 = VerifierKey::parse(w1).unwrap();
    let same =
        VerifierKey::cosignature_v1("other-name", k1.key_material().try_into().unwrap()).unwrap();
    let err = WitnessPolicy::new(
        1,
        vec![Witness::new("a", None, k1), Witness::new("b", None, same)],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("witnesses.witness[1].vkey"),
        "{err}"
    );
}

/// A log of three entries signed by a test log key.
fn signed_checkpoint(extra_lines: &[String]) -> (String, VerifierKey, String) {
    let log = TestEd25519Signer::from_seed("test.example/signet-log", [5; 32]);
    let cp = Checkpoint::new("test.example/signet-log", 3, [7; 32]).unwrap();
    let note = cp.sign(&[&log]).unwrap().to_text();
    let with = append_cosignatures(&note, extra_lines).unwrap();
    (with, log.vkey.clone(), cp.to_text())
}

fn two_witnesses() -> (TestSigner, TestSigner) {
    (test_signer("w1.example", 11), test_signer("w2.example", 12))
}

fn policy_of(threshold: usize, keys: &[&VerifierKey]) -> WitnessPolicy {
    WitnessPolicy::new(
        threshold,
        keys.iter()
            .enumerate()
            .map(|(i, k)| Witness::new(&format!("witness-{i}"), None, (*k).clone()))
            .collect(),
    )
    .unwrap()
}

#[test]
fn threshold_counts_distinct_configured_witnesses() {
    let (a, b) = two_witnesses();
    let (_, _, body) = signed_checkpoint(&[]);
    let la = a.cosign_line(&body, 10).unwrap();
    let lb = b.cosign_line(&body, 11).unwrap();
    let stranger = test_signer("stranger", 13).cosign_line(&body, 12).unwrap();
    let p = policy_of(2, &[a.verifier_key(), b.verifier_key()]);

    let (note, log, _) = signed_checkpoint(&[la.clone(), lb.clone()]);
    let c = p.verify_checkpoint(note.as_bytes(), &log).unwrap();
    assert_eq!(c.cosignatures().len(), 2);
    assert_eq!(
        c.to_string(),
        "test.example/signet-log size 3 cosigned by witness-0, witness-1"
    );

    // One witness twice, plus an unknown cosigner, is still one of two.
    let (note, log, _) = signed_checkpoint(&[la.clone(), stranger.clone()]);
    let note = format!("{note}{la}");
    assert_eq!(Note::parse(note.as_bytes()).unwrap().signatures().len(), 4);
    match witness_err(p.verify_checkpoint(note.as_bytes(), &log)) {
        WitnessError::ThresholdNotMet {
            threshold,
            cosigned,
            missing,
        } => {
            assert_eq!(threshold, 2);
            assert_eq!(cosigned, ["witness-0"]);
            assert_eq!(missing, ["witness-1"]);
        }
        other => panic!("{other:?}"),
    }
    let msg = witness_err(p.verify_checkpoint(note.as_bytes(), &log)).to_string();
    assert!(
        msg.contains("1 of the 2") && msg.contains("witness-1"),
        "{msg}"
    );
    // 1-of-2 accepts it; the unknown line is ignored.
    let p1 = policy_of(1, &[a.verifier_key(), b.verifier_key()]);
    assert_eq!(
        p1.verify_checkpoint(note.as_bytes(), &log)
            .unwrap()
            .cosignatures()
            .len(),
        1
    );
    // No cosignature at all.
    let (bare, log, _) = signed_checkpoint(&[]);
    assert!(matches!(
        witness_err(p1.verify_checkpoint(bare.as_bytes(), &log)),
        WitnessError::ThresholdNotMet { .. }
    ));
    // The empty policy accepts the log's signature alone.
    assert!(WitnessPolicy::none()
        .verify_checkpoint(bare.as_bytes(), &log)
        .is_ok());
}

#[test]
fn bad_cosignature_by_a_configured_witness_is_an_error() {
    let (a, b) = two_witnesses();
    let (_, _, body) = signed_checkpoint(&[]);
    let lb = b.cosign_line(&body, 11).unwrap();
    // Witness a's cosignature of another checkpoint (a different tree).
    let other = Checkpoint::new("test.example/signet-log", 4, [8; 32])
        .unwrap()
        .to_text();
    let forged = a.cosign_line(&other, 10).unwrap();
    let (note, log, _) = signed_checkpoint(&[lb, forged]);
    let p = policy_of(1, &[a.verifier_key(), b.verifier_key()]);
    match witness_err(p.verify_checkpoint(note.as_bytes(), &log)) {
        WitnessError::BadCosignature { witness, .. } => assert_eq!(witness, "witness-0"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn log_signature_is_required_and_checked() {
    let (a, _) = two_witnesses();
    let (_, _, body) = signed_checkpoint(&[]);
    let la = a.cosign_line(&body, 10).unwrap();
    let p = policy_of(1, &[a.verifier_key()]);
    let (note, log, _) = signed_checkpoint(std::slice::from_ref(&la));
    // Another log key (same name, other key): its signature is missing.
    let other_log = TestEd25519Signer::from_seed("test.example/signet-log", [6; 32]);
    assert!(matches!(
        p.verify_checkpoint(note.as_bytes(), &other_log.vkey),
        Err(Error::Note(NoteError::MissingSignature(_)))
    ));
    // The log's signature over another text: invalid, not ignored.
    let lines: Vec<&str> = note.lines().collect();
    let tampered = note.replacen("\n3\n", "\n4\n", 1);
    assert_ne!(tampered, note, "{lines:?}");
    assert!(matches!(
        p.verify_checkpoint(tampered.as_bytes(), &log),
        Err(Error::Note(NoteError::BadSignature(_)))
    ));
    // A witness key passed as the log key.
    assert!(matches!(
        witness_err(p.verify_checkpoint(note.as_bytes(), a.verifier_key())),
        WitnessError::LogKeyIsCosignatureKey(_)
    ));
    // A log key whose name is not the checkpoint's origin.
    let misnamed = TestEd25519Signer::from_seed("elsewhere/log", [5; 32]);
    let cp = Checkpoint::new("test.example/signet-log", 3, [7; 32]).unwrap();
    let n = append_cosignatures(&cp.sign(&[&misnamed]).unwrap().to_text(), &[la]).unwrap();
    assert!(matches!(
        p.verify_checkpoint(n.as_bytes(), &misnamed.vkey),
        Err(Error::Checkpoint(
            signet_log::CheckpointError::WrongOrigin { .. }
        ))
    ));
    // Not a note.
    assert!(p.verify_checkpoint(b"garbage", &log).is_err());
    assert!(p.verify_checkpoint(&[0xff, 0xfe], &log).is_err());
}

#[test]
fn append_cosignatures_checks_syntax_and_deduplicates() {
    let (a, _) = two_witnesses();
    let (note, _, body) = signed_checkpoint(&[]);
    let la = a.cosign_line(&body, 10).unwrap();
    let once = append_cosignatures(&note, std::slice::from_ref(&la)).unwrap();
    let twice = append_cosignatures(&once, &[la.trim_end().to_owned(), la.clone()]).unwrap();
    assert_eq!(once, twice);
    assert_eq!(once, format!("{note}{la}"));
    for bad in ["", "no dash", "\u{2014} name !!!", "\u{2014} a b c"] {
        assert!(append_cosignatures(&note, &[bad]).is_err(), "{bad:?}");
    }
    assert!(append_cosignatures("not a note", &[la.as_str()]).is_err());
    // Bounded: at most MAX_SIGNATURES lines.
    let many: Vec<String> = (0..200u64)
        .map(|t| a.cosign_line(&body, t).unwrap())
        .collect();
    assert!(matches!(
        append_cosignatures(&note, &many),
        Err(Error::Note(NoteError::TooManySignatures))
    ));
}
