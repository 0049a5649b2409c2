//! Precertificates and certificates that carry their proof of logging:
//! the CA flow, verification, and every refusal performed as an attack.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use common::prooflog::{alice_fields, issue_ssh, ssh_ca, ssh_entry, TestLog, ORIGIN};
use signet_log::certificate::{
    certificate_matches_entry, ssh_certificate_from_bytes, ssh_precertificate,
    verify_ssh_certificate, CertificateProof, SshCertificateFields, MAX_PROOF_LEN, PROOF_HEADER,
    SSH_PROOF_EXTENSION,
};
use signet_log::entry::{check_certificate_contents, CertificateForm, Entry};
use signet_log::{EntryError, Error, ProofError};

fn proof_err(r: signet_log::Result<impl std::fmt::Debug>) -> ProofError {
    match r {
        Err(Error::Proof(e)) => e,
        other => panic!("expected a proof error, got {other:?}"),
    }
}

#[test]
fn a_logged_certificate_verifies() {
    let mut log = TestLog::new();
    log.append_filler(5);
    let ca = ssh_ca(10);
    let fields = alice_fields(20, 7, &["root", "ubuntu"]);
    let (cert, entry) = issue_ssh(&mut log, &ca, &fields, &[0, 1]);

    // The final certificate is a valid OpenSSH certificate by the CA.
    let blob = cert.to_bytes().unwrap();
    let reread = ssh_certificate_from_bytes(&blob).unwrap();
    reread
        .validate_at(
            fields.valid_after + 1,
            &[ca.public_key().fingerprint(Default::default())],
        )
        .unwrap();
    assert!(reread.extensions().contains_key(SSH_PROOF_EXTENSION));

    let verified = verify_ssh_certificate(&reread, &log.trust(2)).unwrap();
    assert_eq!(verified.index, 5);
    assert_eq!(verified.checkpoint_size, 9);
    assert_eq!(verified.entry, entry);
    assert_eq!(verified.entry.principals, ["root", "ubuntu"]);
    assert_eq!(
        verified.cosigners,
        ["witness-a.example", "witness-b.example"]
    );
    // The precertificate is what was logged, and the auditor's check
    // accepts the final certificate for the entry.
    assert_eq!(
        ssh_precertificate(&reread).unwrap(),
        entry.certificate.as_ref().unwrap().bytes.0
    );
    check_certificate_contents(&entry).unwrap();
    certificate_matches_entry(&blob, &entry).unwrap();
    // 1 of 2 witnesses is enough for a 1-of-2 policy.
    verify_ssh_certificate(&reread, &log.trust(1)).unwrap();
}

/// The precertificate is exactly what an OpenSSH CA signs: for a
/// certificate without a proof, its bytes less the signature, and the CA's
/// signature verifies over it.
#[test]
fn the_precertificate_is_the_signed_message() {
    let ca = ssh_ca(10);
    let fields = alice_fields(20, 7, &["root"]);
    let plain = fields.builder(None).unwrap().sign(&ca).unwrap();
    let bytes = plain.to_bytes().unwrap();
    let precert = fields.precertificate(ca.public_key().key_data()).unwrap();
    assert!(bytes.starts_with(&precert));
    use signature::Verifier as _;
    ca.public_key()
        .key_data()
        .verify(&precert, plain.signature())
        .unwrap();
    // From the certificate's own fields, too.
    let from_cert = SshCertificateFields::from_certificate(&plain);
    assert_eq!(from_cert, fields);
}

#[test]
fn an_old_full_entry_still_matches_its_certificate() {
    let ca = ssh_ca(10);
    let fields = alice_fields(20, 7, &["root"]);
    let plain = fields.builder(None).unwrap().sign(&ca).unwrap();
    let mut entry = ssh_entry(&fields, &ca, &["root"]);
    let bytes = plain.to_bytes().unwrap();
    let c = entry.certificate.as_mut().unwrap();
    c.form = CertificateForm::Full;
    c.sha256 = signet_log::entry::Sha256Hex(<sha2::Sha256 as sha2::Digest>::digest(&bytes).into());
    c.bytes = signet_log::entry::Base64Bytes(bytes.clone());
    check_certificate_contents(&entry).unwrap();
    certificate_matches_entry(&bytes, &entry).unwrap();
    // Another certificate of the same fields (another signature) is not it.
    let other = alice_fields(21, 7, &["root"])
        .builder(None)
        .unwrap()
        .sign(&ca)
        .unwrap();
    assert_eq!(
        proof_err(certificate_matches_entry(
            &other.to_bytes().unwrap(),
            &entry
        )),
        ProofError::OtherEntry
    );
}

#[test]
fn refusals_each_name_their_reason() {
    let mut log = TestLog::new();
    log.append_filler(2);
    let ca = ssh_ca(10);
    let trust = log.trust(2);

    // 1. No proof at all (signed by the CA, never logged).
    let bare = alice_fields(20, 1, &["root"])
        .builder(None)
        .unwrap()
        .sign(&ca)
        .unwrap();
    assert_eq!(
        proof_err(verify_ssh_certificate(&bare, &trust)),
        ProofError::NoProof(SSH_PROOF_EXTENSION)
    );

    // A good one, whose parts the attacks below reuse.
    let good_fields = alice_fields(20, 2, &["root"]);
    let (good, good_entry) = issue_ssh(&mut log, &ca, &good_fields, &[0, 1]);
    verify_ssh_certificate(&good, &trust).unwrap();
    let good_proof =
        CertificateProof::parse(good.extensions()[SSH_PROOF_EXTENSION].as_bytes()).unwrap();

    // 2. The proof stripped and the certificate re-signed.
    let stripped = SshCertificateFields::from_certificate(&good)
        .builder(None)
        .unwrap()
        .sign(&ca)
        .unwrap();
    assert_eq!(
        proof_err(verify_ssh_certificate(&stripped, &trust)),
        ProofError::NoProof(SSH_PROOF_EXTENSION)
    );

    // 3. Another certificate (bob's key) carrying the good one's proof.
    let mallory = alice_fields(30, 2, &["root"])
        .builder(Some(&good_proof))
        .unwrap()
        .sign(&ca)
        .unwrap();
    assert_eq!(
        proof_err(verify_ssh_certificate(&mallory, &trust)),
        ProofError::OtherEntry
    );

    // 4. A checkpoint with one cosignature where the policy wants two.
    let one = alice_fields(20, 3, &["root"]);
    let (one_cosig, _) = issue_ssh(&mut log, &ca, &one, &[0]);
    match proof_err(verify_ssh_certificate(&one_cosig, &trust)) {
        ProofError::WitnessPolicyNotMet(why) => {
            assert!(why.contains("witness-b.example"), "{why}")
        }
        other => panic!("{other:?}"),
    }

    // 5. A cosignature that does not verify.
    let mut bad = good_proof.clone();
    let line_start = bad.checkpoint_note.find("— witness-b.example ").unwrap();
    let sig_at = line_start + "— witness-b.example ".len() + 20;
    let mut note = bad.checkpoint_note.into_bytes();
    note[sig_at] = if note[sig_at] == b'A' { b'B' } else { b'A' };
    bad.checkpoint_note = String::from_utf8(note).unwrap();
    let bad_cosig = good_fields.builder(Some(&bad)).unwrap().sign(&ca).unwrap();
    assert_eq!(
        proof_err(verify_ssh_certificate(&bad_cosig, &trust)),
        ProofError::BadCosignature {
            witness: "witness-b.example".into()
        }
    );

    // 6. A checkpoint signed by another key under the log's name.
    let mut forged_log = TestLog::new();
    forged_log.key = common::TestEd25519Signer::from_seed(ORIGIN, [9; 32]);
    let forged_index = forged_log.append(&good_entry);
    let forged_proof = forged_log.proof(forged_index, &good_entry, &[0, 1]);
    let forged = good_fields
        .builder(Some(&forged_proof))
        .unwrap()
        .sign(&ca)
        .unwrap();
    assert!(matches!(
        proof_err(verify_ssh_certificate(&forged, &trust)),
        ProofError::NotSignedByLog { .. }
    ));

    // 7. The right entry at the wrong index.
    let mut moved = good_proof.clone();
    moved.index += 1;
    let moved = good_fields
        .builder(Some(&moved))
        .unwrap()
        .sign(&ca)
        .unwrap();
    assert!(matches!(
        proof_err(verify_ssh_certificate(&moved, &trust)),
        ProofError::Inclusion(_)
    ));

    // 8. A logged entry that names other principals than the certificate.
    let lying_fields = alice_fields(20, 4, &["root"]);
    let lying_entry = ssh_entry(&lying_fields, &ca, &["admin"]);
    let index = log.append(&lying_entry);
    let proof = log.proof(index, &lying_entry, &[0, 1]);
    let lying = lying_fields
        .builder(Some(&proof))
        .unwrap()
        .sign(&ca)
        .unwrap();
    assert_eq!(
        proof_err(verify_ssh_certificate(&lying, &trust)),
        ProofError::ContentsMismatch("principals")
    );

    // 9. A proof in a critical option (OpenSSH would refuse it anyway).
    let mut critical = alice_fields(20, 5, &["root"]);
    critical
        .critical_options
        .insert(SSH_PROOF_EXTENSION.into(), good_proof.encode());
    assert!(critical.builder(None).is_err());

    // 10. Garbage in the extension.
    let mut garbage = ssh_key::certificate::Builder::new(
        vec![1; 16],
        ssh_ca(20).public_key().key_data().clone(),
        1,
        2,
    )
    .unwrap();
    garbage.valid_principal("root").unwrap();
    garbage.extension(SSH_PROOF_EXTENSION, "hello").unwrap();
    let garbage = garbage.sign(&ca).unwrap();
    assert!(matches!(
        proof_err(verify_ssh_certificate(&garbage, &trust)),
        ProofError::Malformed(_)
    ));
}

/// An entry that records the precertificate as a full certificate is not
/// a precertificate entry.
#[test]
fn a_full_form_entry_is_not_a_proof() {
    let mut log = TestLog::new();
    let ca = ssh_ca(10);
    let fields = alice_fields(20, 9, &["root"]);
    let mut entry = ssh_entry(&fields, &ca, &["root"]);
    entry.certificate.as_mut().unwrap().form = CertificateForm::Full;
    let index = log.append(&entry);
    let proof = log.proof(index, &entry, &[0, 1]);
    let cert = fields.builder(Some(&proof)).unwrap().sign(&ca).unwrap();
    assert_eq!(
        proof_err(verify_ssh_certificate(&cert, &log.trust(2))),
        ProofError::NotPrecertificateEntry
    );
}

#[test]
fn precertificate_entries_are_checked_as_strictly_as_full_ones() {
    let ca = ssh_ca(10);
    let fields = alice_fields(20, 11, &["root"]);
    let entry = ssh_entry(&fields, &ca, &["root"]);
    check_certificate_contents(&entry).unwrap();
    let mismatch = |e: &Entry| match check_certificate_contents(e) {
        Err(Error::Entry(EntryError::CertificateMismatch(f))) => f,
        other => panic!("{other:?}"),
    };
    let mut wrong = entry.clone();
    wrong.subject = Some("bob".into());
    assert_eq!(mismatch(&wrong), "subject (certificate key id)");
    let mut wrong = entry.clone();
    wrong.certificate.as_mut().unwrap().serial = "12".into();
    assert_eq!(mismatch(&wrong), "certificate.serial");

    // A precertificate with trailing bytes, or a full certificate in a
    // precertificate entry, is not a precertificate.
    let with = |bytes: Vec<u8>| {
        let mut e = entry.clone();
        let c = e.certificate.as_mut().unwrap();
        c.sha256 =
            signet_log::entry::Sha256Hex(<sha2::Sha256 as sha2::Digest>::digest(&bytes).into());
        c.bytes = signet_log::entry::Base64Bytes(bytes);
        e
    };
    let mut trailing = entry.certificate.as_ref().unwrap().bytes.0.clone();
    trailing.push(0);
    assert_eq!(
        mismatch(&with(trailing)),
        "certificate (not an OpenSSH precertificate)"
    );
    let full = fields.builder(None).unwrap().sign(&ca).unwrap();
    assert_eq!(
        mismatch(&with(full.to_bytes().unwrap())),
        "certificate (not an OpenSSH precertificate)"
    );
    // A precertificate that already holds a proof.
    let mut log = TestLog::new();
    let index = log.append(&entry);
    let proof = log.proof(index, &entry, &[0]);
    let mut proven = fields.clone();
    proven
        .extensions
        .insert(SSH_PROOF_EXTENSION.into(), proof.encode());
    let mut b = ssh_key::certificate::Builder::new(
        proven.nonce.clone(),
        proven.public_key.clone(),
        proven.valid_after,
        proven.valid_before,
    )
    .unwrap();
    b.serial(proven.serial).unwrap();
    b.key_id(proven.key_id.clone()).unwrap();
    b.valid_principal("root").unwrap();
    for (k, v) in &proven.extensions {
        b.extension(k.clone(), v.clone()).unwrap();
    }
    let with_proof = b.sign(&ca).unwrap();
    let tbs_len = with_proof.to_bytes().unwrap().len()
        - ssh_key::encoding::Encode::encoded_len_prefixed(with_proof.signature()).unwrap();
    let tbs = with_proof.to_bytes().unwrap()[..tbs_len].to_vec();
    assert_eq!(
        mismatch(&with(tbs)),
        "certificate (a precertificate holding a log proof)"
    );
    // A full certificate entry whose certificate holds a proof.
    let mut full_entry = with(with_proof.to_bytes().unwrap());
    full_entry.certificate.as_mut().unwrap().form = CertificateForm::Full;
    assert_eq!(
        mismatch(&full_entry),
        "certificate (a logged certificate holding a log proof)"
    );
}

#[test]
fn the_proof_text_has_one_spelling() {
    let mut log = TestLog::new();
    log.append_filler(6);
    let ca = ssh_ca(10);
    let (cert, _) = issue_ssh(&mut log, &ca, &alice_fields(20, 1, &["root"]), &[0, 1]);
    let text = cert.extensions()[SSH_PROOF_EXTENSION].clone();
    let proof = CertificateProof::parse(text.as_bytes()).unwrap();
    assert_eq!(proof.encode(), text);
    assert!(text.starts_with(&format!("{PROOF_HEADER}\nindex 6\nentry ")));
    assert_eq!(proof.inclusion.len(), 4);

    let hash_line = {
        let line = text.lines().nth(3).unwrap();
        assert_eq!(line.len(), 44);
        line.to_owned()
    };
    let bad: Vec<String> = vec![
        text.replacen(PROOF_HEADER, "signet-cert-proof/v2", 1),
        text.replacen("index 6", "index 06", 1),
        text.replacen("index 6", "index +6", 1),
        text.replacen("index 6", "index  6", 1),
        text.replacen("index 6\n", "", 1),
        text.replacen("\nentry ", "\nentry  ", 1),
        text.replacen("\nentry ", "\nentry\t", 1),
        text.replacen(&hash_line, &format!("{hash_line} "), 1),
        text.replacen(&hash_line, &hash_line[..43], 1),
        text.replacen("\n\n", "\n", 1),
        text.replacen("\n\n", "\n\n\n", 1),
        format!("{text}\n"),
        format!(" {text}"),
        text.replace('\n', "\r\n"),
        format!(
            "{PROOF_HEADER}\nindex 1\nentry \n\n{}",
            proof.checkpoint_note
        ),
        "x".repeat(MAX_PROOF_LEN + 1),
    ];
    for (i, b) in bad.iter().enumerate() {
        assert!(
            matches!(
                CertificateProof::parse(b.as_bytes()),
                Err(Error::Proof(ProofError::Malformed(_)))
            ),
            "case {i} accepted:\n{b}"
        );
    }
    // Non-canonical base64 in a hash line: the last character's two
    // padding bits set. It decodes to the same hash, and is refused.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut raw = hash_line.clone().into_bytes();
    let value = ALPHABET.iter().position(|&c| c == raw[42]).unwrap();
    assert_eq!(value & 3, 0);
    raw[42] = ALPHABET[value | 1];
    let odd = text.replacen(&hash_line, std::str::from_utf8(&raw).unwrap(), 1);
    assert!(matches!(
        CertificateProof::parse(odd.as_bytes()),
        Err(Error::Proof(ProofError::Malformed("inclusion hash line")))
    ));
    // 65 inclusion hashes.
    let many = format!(
        "{PROOF_HEADER}\nindex 1\nentry {{}}\n{}\n{}",
        vec![hash_line.as_str(); 65].join("\n"),
        proof.checkpoint_note
    );
    assert!(matches!(
        CertificateProof::parse(many.as_bytes()),
        Err(Error::Proof(ProofError::Malformed(
            "more than 64 inclusion hashes"
        )))
    ));
}
