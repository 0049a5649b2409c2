//! Signed notes: published vectors (C2SP, golang.org/x/mod sumdb) and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use common::{read_vector, FailingSigner, TestEd25519Signer, TestP256Signer};
use signet_log::note::{Note, NoteSigner, SignatureType, VerifierKey, VerifierSet, MAX_NOTE_LEN};
use signet_log::{Error, NoteError};

fn vkey(rel: &str) -> VerifierKey {
    VerifierKey::parse(read_vector(rel).trim()).unwrap()
}

fn set(keys: &[&VerifierKey]) -> VerifierSet {
    VerifierSet::new(keys.iter().map(|k| (*k).clone()).collect()).unwrap()
}

fn note_err(r: signet_log::Result<impl std::fmt::Debug>) -> NoteError {
    match r {
        Err(Error::Note(e)) => e,
        other => panic!("expected a note error, got {other:?}"),
    }
}

#[test]
fn c2sp_example_verifies() {
    let key = vkey("note/c2sp-example.vkey");
    assert_eq!(key.name(), "example.com/foo");
    assert_eq!(key.key_id().to_string(), "530d903a");
    assert_eq!(key.signature_type(), SignatureType::Ed25519);
    assert_eq!(
        key.to_string(),
        read_vector("note/c2sp-example.vkey").trim()
    );
    let raw = read_vector("note/c2sp-example.note");
    let note = Note::parse(raw.as_bytes()).unwrap();
    assert_eq!(note.text(), "This is an example message.\n");
    assert_eq!(note.to_text(), raw);
    let v = note.verify(&set(&[&key])).unwrap();
    v.require(&key).unwrap();
    assert_eq!(v.text(), "This is an example message.\n");
}

#[test]
fn c2sp_quasimodo_parses_with_blank_lines_in_text() {
    let raw = read_vector("note/c2sp-quasimodo.note");
    let note = Note::parse(raw.as_bytes()).unwrap();
    assert!(note.text().contains("\n\ned"));
    assert_eq!(note.signatures().len(), 1);
    assert_eq!(note.signatures()[0].name, "quasimodo.example/salvatore");
    // No key was published for it: the signature is unknown, so the note is
    // rejected for want of a known signature.
    let other = vkey("note/c2sp-example.vkey");
    assert_eq!(
        note_err(note.verify(&set(&[&other]))),
        NoteError::NoKnownSignature
    );
}

#[test]
fn sumdb_signing_reproduces_published_note() {
    let signer = TestEd25519Signer::from_go_skey(&read_vector("note/peter-neumann.skey"));
    let peter = vkey("note/peter-neumann.vkey");
    assert_eq!(signer.vkey.to_string(), peter.to_string());
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    let note = Note::sign(text, &[&signer as &dyn NoteSigner]).unwrap();
    assert_eq!(note.to_text(), read_vector("note/peter-neumann.note"));
}

#[test]
fn sumdb_known_and_unknown_keys() {
    let peter = vkey("note/peter-neumann.vkey");
    let enoch = vkey("note/enoch-root.vkey");
    let raw = read_vector("note/peter-and-enoch.note");
    let note = Note::parse(raw.as_bytes()).unwrap();

    // Only Peter trusted: Enoch's signature is set aside, not an error.
    let v = note.verify(&set(&[&peter])).unwrap();
    assert_eq!(v.verified_by().len(), 1);
    assert_eq!(v.unverified().len(), 1);
    assert_eq!(v.unverified()[0].name, "EnochRoot");
    v.require(&peter).unwrap();
    assert_eq!(
        note_err(v.require(&enoch)),
        NoteError::MissingSignature("EnochRoot".into())
    );

    // Both trusted: both verified.
    let v = note.verify(&set(&[&peter, &enoch])).unwrap();
    assert_eq!(v.verified_by().len(), 2);
    v.require(&enoch).unwrap();

    // Nobody trusted: rejected.
    assert_eq!(
        note_err(note.verify(&set(&[]))),
        NoteError::NoKnownSignature
    );

    // A note signed by Peter alone: requiring Enoch's signature fails.
    let single = Note::parse(read_vector("note/peter-neumann.note").as_bytes()).unwrap();
    let v = single.verify(&set(&[&peter, &enoch])).unwrap();
    assert!(v.require(&enoch).is_err());
}

#[test]
fn corrupted_signature_by_known_key_rejects_note() {
    let peter = vkey("note/peter-neumann.vkey");
    let raw = read_vector("note/peter-neumann.note");
    // Insert "ABCD" into the base64 signature (as the Go tests do).
    let sig_start = raw.find('\u{2014}').unwrap();
    let mut bad = raw.clone();
    bad.insert_str(sig_start + 60, "ABCD");
    let note = Note::parse(bad.as_bytes()).unwrap();
    assert_eq!(
        note_err(note.verify(&set(&[&peter]))),
        NoteError::BadSignature("PeterNeumann".into())
    );

    // Same name, different key id: an unknown key, ignored.
    let wrong_id = raw.replace("x08g", "xxxx");
    let note = Note::parse(wrong_id.as_bytes()).unwrap();
    assert_eq!(
        note_err(note.verify(&set(&[&peter]))),
        NoteError::NoKnownSignature
    );

    // Same key id, different name: also unknown.
    let wrong_name = raw.replace("PeterNeumann", "CarmenSandiego");
    let note = Note::parse(wrong_name.as_bytes()).unwrap();
    assert_eq!(
        note_err(note.verify(&set(&[&peter]))),
        NoteError::NoKnownSignature
    );

    // A changed text fails.
    let changed = raw.replacen("cryptography", "cryptographY", 1);
    let note = Note::parse(changed.as_bytes()).unwrap();
    assert!(note.verify(&set(&[&peter])).is_err());
}

#[test]
fn malformed_notes() {
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    let peter_sig = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    let bad: Vec<Vec<u8>> = vec![
        text.into(),
        format!("{text}\n").into(),
        format!("{text}\n{}", &peter_sig[..peter_sig.len() - 1]).into(),
        format!("\x01{text}\n{peter_sig}").into(),
        [b"\xff".as_slice(), format!("{text}\n{peter_sig}").as_bytes()].concat(),
        format!("{text}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into(),
        format!("{text}\n{peter_sig}Unexpected line.\n").into(),
        format!("{text}\n{peter_sig}\n").into(),
        format!("{text}\n- PeterNeumann x08go/ZJku=\n").into(),
        format!("{text}\n\u{2014} PeterNeumann\n").into(),
        format!("{text}\n\u{2014} PeterNeumann AAAA\n").into(),
        format!("{text}\n\u{2014} PeterNeumann not-base64!\n").into(),
        format!("{text}\n\u{2014}  x08go/ZJku\n").into(),
        format!("{text}\n\u{2014} a+b x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into(),
        format!("{}\r\n\n{peter_sig}", text.trim_end()).into(),
        Vec::new(),
        b"\n".to_vec(),
        b"\n\n".to_vec(),
    ];
    for b in bad {
        assert!(
            Note::parse(&b).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(&b)
        );
    }
    // Too many signatures, too long.
    let many = format!("{text}\n{}", peter_sig.repeat(101));
    assert_eq!(
        note_err(Note::parse(many.as_bytes())),
        NoteError::TooManySignatures
    );
    let long = format!("{}\n\n{peter_sig}", "a".repeat(MAX_NOTE_LEN));
    assert_eq!(note_err(Note::parse(long.as_bytes())), NoteError::TooLong);
    // Up to 16 signatures must be accepted (the spec's minimum).
    let sixteen = format!("{text}\n{}", peter_sig.repeat(16));
    assert_eq!(
        Note::parse(sixteen.as_bytes()).unwrap().signatures().len(),
        16
    );
}

#[test]
fn bad_verifier_keys() {
    for (k, want) in [
        (
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            NoteError::BadVerifierKey,
        ),
        (
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::UnsupportedKeyType(0x65),
        ),
        (
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::KeyIdMismatch,
        ),
        (
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::BadVerifierKey,
        ),
        ("PeterNeumann+c74f20a3", NoteError::BadVerifierKey),
        ("PeterNeumann", NoteError::BadVerifierKey),
        (
            "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::BadKeyName,
        ),
        (
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            NoteError::BadKeyName,
        ),
        ("PeterNeumann+c74f20a3+", NoteError::BadVerifierKey),
        ("PeterNeumann+c74f20a3+Ag==", NoteError::BadVerifierKey),
        (
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
            NoteError::BadVerifierKey,
        ),
    ] {
        assert_eq!(note_err(VerifierKey::parse(k)), want, "{k}");
    }
    let peter = vkey("note/peter-neumann.vkey");
    assert!(matches!(
        VerifierSet::new(vec![peter.clone(), peter]),
        Err(Error::Note(NoteError::DuplicateVerifier(_)))
    ));
}

#[test]
fn ecdsa_p256_notes() {
    let signer = TestP256Signer::from_scalar("ca.example/signet-log", [7; 32]);
    assert_eq!(signer.vkey.signature_type(), SignatureType::EcdsaP256Sha256);
    // The vkey round-trips through its text form, with the SPKI key id.
    let text_form = signer.vkey.to_string();
    assert!(text_form.starts_with("ca.example/signet-log+"));
    let parsed = VerifierKey::parse(&text_form).unwrap();
    assert_eq!(parsed.key_id(), signer.vkey.key_id());

    let note = Note::sign("hello\n", &[&signer as &dyn NoteSigner]).unwrap();
    let back = Note::parse(note.to_text().as_bytes()).unwrap();
    back.verify(&set(&[&parsed]))
        .unwrap()
        .require(&parsed)
        .unwrap();

    // A raw r‖s signature (what PKCS#11 returns) is not accepted: DER only.
    let bad = Note::parse(
        Note::sign("hello\n", &[&RawP256(&signer) as &dyn NoteSigner])
            .unwrap()
            .to_text()
            .as_bytes(),
    )
    .unwrap();
    assert!(bad.verify(&set(&[&parsed])).is_err());
}

struct RawP256<'a>(&'a TestP256Signer);

impl NoteSigner for RawP256<'_> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn key_id(&self) -> signet_log::note::KeyId {
        self.0.key_id()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signet_log::note::SignerError> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.0.key.sign(msg);
        Ok(sig.to_bytes().to_vec())
    }
}

#[test]
fn signing_errors() {
    let signer = TestEd25519Signer::from_seed("log.example/a", [1; 32]);
    for text in ["", "no newline", "a\x01b\n"] {
        assert_eq!(
            note_err(Note::sign(text, &[&signer as &dyn NoteSigner])),
            NoteError::BadText
        );
    }
    assert_eq!(note_err(Note::sign("x\n", &[])), NoteError::NoSigner);
    let failing = FailingSigner(signer.vkey.clone());
    assert_eq!(
        note_err(Note::sign("x\n", &[&failing as &dyn NoteSigner])),
        NoteError::Signer("token removed".into())
    );
    // Mixed signers: an Ed25519 log key and an ECDSA one, both verify.
    let p = TestP256Signer::from_scalar("log.example/b", [9; 32]);
    let note = Note::sign("x\n", &[&signer as &dyn NoteSigner, &p]).unwrap();
    let v = Note::parse(note.to_text().as_bytes())
        .unwrap()
        .verify(&set(&[&signer.vkey, &p.vkey]))
        .unwrap();
    assert_eq!(v.verified_by().len(), 2);
}
