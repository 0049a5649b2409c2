//! X.509 certificates that carry their proof of logging: built as the CA
//! builds them (x509-cert's builder, the proof extension last through
//! `LogProofProfile`), read by OpenSSL, verified, refused when tampered
//! with; and the size budget of a YubiKey PIV slot.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

mod common;

use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use common::prooflog::TestLog;
use der::asn1::Ia5String;
use der::{Decode, Encode, EncodePem};
use sha2::{Digest, Sha256};
use signet_log::certificate::{
    certificate_matches_entry, verify_x509_certificate, x509_precertificate, x509_proof_extension,
    x509_proof_text, CertificateProof, LogProofProfile, X509_PROOF_OID,
};
use signet_log::entry::{
    check_certificate_contents, Actor, Base64Bytes, CertificateForm, Entry, EntryKind,
    IssuedCertificate, PinPolicy, PivDevice, Sha256Hex, TouchPolicy,
};
use signet_log::merkle::{inclusion_proof_len, root_from_inclusion_proof, Hash};
use signet_log::{Error, ProofError};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::time::Validity;

type CaKey = p256::ecdsa::SigningKey;
type CaSignature = p256::ecdsa::DerSignature;

/// The CA's end-entity profile for a user (as ca/server builds it).
#[derive(Clone)]
struct UserProfile {
    issuer: Name,
    subject: Name,
    names: Vec<GeneralName>,
}

impl BuilderProfile for UserProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    #[allow(clippy::vec_init_then_push)]
    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let s = tbs.subject();
        let mut e: Vec<Extension> = Vec::new();
        e.push(
            BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }
            .to_extension(s, &e)?,
        );
        e.push(KeyUsage(KeyUsages::DigitalSignature.into()).to_extension(s, &e)?);
        e.push(ExtendedKeyUsage(vec![const_oid_client_auth()]).to_extension(s, &e)?);
        e.push(SubjectAltName(self.names.clone()).to_extension(s, &e)?);
        e.push(SubjectKeyIdentifier::try_from(spk)?.to_extension(s, &e)?);
        e.push(
            AuthorityKeyIdentifier {
                key_identifier: Some(SubjectKeyIdentifier::try_from(issuer_spk)?.0),
                ..Default::default()
            }
            .to_extension(s, &e)?,
        );
        Ok(e)
    }
}

fn const_oid_client_auth() -> der::asn1::ObjectIdentifier {
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2")
}

struct Ca {
    key: CaKey,
    root: x509_cert::Certificate,
}

/// Validity from `start` (unix seconds) for `secs`; `None`: from now.
fn validity(start: Option<u64>, secs: u64) -> Validity {
    match start {
        None => Validity::from_now(Duration::from_secs(secs)).unwrap(),
        Some(t) => {
            let at = |t: u64| {
                x509_cert::time::Time::try_from(std::time::UNIX_EPOCH + Duration::from_secs(t))
                    .unwrap()
            };
            Validity::new(at(t), at(t + secs))
        }
    }
}

fn ca() -> Ca {
    ca_at(None)
}

fn ca_at(start: Option<u64>) -> Ca {
    let key = CaKey::from_slice(&[0x42; 32]).unwrap();
    let subject = Name::from_str("CN=Signet Root CA,O=Example,C=US").unwrap();
    let profile = x509_cert::builder::profile::cabf::Root::new(false, subject).unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).unwrap();
    let root = CertificateBuilder::new(
        profile,
        SerialNumber::from(1u32),
        validity(start, 10 * 365 * 86400),
        spki,
    )
    .unwrap()
    .build::<_, CaSignature>(&key)
    .unwrap();
    Ca { key, root }
}

const SERIAL: [u8; 16] = [
    0x5a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

struct Issuance {
    profile: UserProfile,
    spki: SubjectPublicKeyInfoOwned,
    validity: Validity,
    entry: Entry,
}

/// Everything the CA decides for alice's certificate, and the entry that
/// logs its precertificate.
fn alice(ca: &Ca) -> Issuance {
    alice_at(ca, None)
}

fn alice_at(ca: &Ca, start: Option<u64>) -> Issuance {
    let user_key = p256::ecdsa::SigningKey::from_slice(&[0x07; 32]).unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_key(user_key.verifying_key()).unwrap();
    let domain = "signet.example.com";
    let names = [
        format!("signet://{domain}/user/alice"),
        format!("signet://{domain}/role/prod-sre"),
        format!("signet://{domain}/device/12345678"),
        format!("signet://{domain}/key-policy/pin-once.touch-always"),
    ]
    .into_iter()
    .map(|u| GeneralName::UniformResourceIdentifier(Ia5String::new(&u).unwrap()))
    .collect();
    let profile = UserProfile {
        issuer: ca.root.tbs_certificate().subject().clone(),
        subject: Name::from_str("CN=alice").unwrap(),
        names,
    };
    let validity = validity(start, 8 * 3600);
    let precert = CertificateBuilder::new(
        profile.clone(),
        SerialNumber::new(&SERIAL).unwrap(),
        validity,
        spki.clone(),
    )
    .unwrap()
    .finalize(&ca.key)
    .unwrap();
    let tbs = TbsCertificate::from_der(&precert).unwrap();
    let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
    let fingerprint = {
        let cert_like = x509_cert::Certificate::from_der(
            &CertificateBuilder::new(
                profile.clone(),
                SerialNumber::new(&SERIAL).unwrap(),
                validity,
                spki.clone(),
            )
            .unwrap()
            .build::<_, CaSignature>(&ca.key)
            .unwrap()
            .to_der()
            .unwrap(),
        )
        .unwrap();
        signet_log::entry::x509_key_fingerprint(&cert_like).unwrap()
    };
    let entry = Entry {
        kind: EntryKind::X509Cert,
        time: secs(&tbs.validity().not_before),
        actor: Actor::User {
            name: "alice".into(),
            // What a YubiKey's non-resident credential id looks like in size.
            webauthn_credential_id: Some(Base64Bytes(vec![0xc3; 64])),
            piv_device: Some(PivDevice {
                serial: 12_345_678,
                pin_policy: PinPolicy::Once,
                touch_policy: TouchPolicy::Always,
            }),
            webauthn_sign_count: Some(1234),
        },
        request_hash: Some(Sha256Hex([0x11; 32])),
        subject: Some("alice".into()),
        principals: vec![],
        roles: vec!["prod-sre".into()],
        certificate: Some(IssuedCertificate {
            serial: SERIAL.iter().map(|b| format!("{b:02x}")).collect(),
            public_key_fingerprint: fingerprint,
            not_before: secs(&tbs.validity().not_before),
            not_after: secs(&tbs.validity().not_after),
            sha256: Sha256Hex(Sha256::digest(&precert).into()),
            bytes: Base64Bytes(precert),
            form: CertificateForm::Precertificate,
        }),
        change: None,
    };
    Issuance {
        profile,
        spki,
        validity,
        entry,
    }
}

impl Issuance {
    fn sign(&self, ca: &Ca, proof: &CertificateProof) -> Vec<u8> {
        CertificateBuilder::new(
            LogProofProfile::new(self.profile.clone(), proof).unwrap(),
            SerialNumber::new(&SERIAL).unwrap(),
            self.validity,
            self.spki.clone(),
        )
        .unwrap()
        .build::<_, CaSignature>(&ca.key)
        .unwrap()
        .to_der()
        .unwrap()
    }
}

fn proof_err(r: signet_log::Result<impl std::fmt::Debug>) -> ProofError {
    match r {
        Err(Error::Proof(e)) => e,
        other => panic!("expected a proof error, got {other:?}"),
    }
}

fn openssl(args: &[&str], dir: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_logged_x509_certificate_verifies_and_openssl_reads_it() {
    let ca = ca();
    let mut log = TestLog::new();
    log.append_filler(3);
    let alice = alice(&ca);
    check_certificate_contents(&alice.entry).unwrap();
    let index = log.append(&alice.entry);
    log.append_filler(2);
    let proof = log.proof(index, &alice.entry, &[0, 1]);
    let der = alice.sign(&ca, &proof);

    let verified = verify_x509_certificate(&der, &log.trust(2)).unwrap();
    assert_eq!(verified.index, 3);
    assert_eq!(verified.entry, alice.entry);
    assert_eq!(
        x509_precertificate(&der).unwrap(),
        alice.entry.certificate.as_ref().unwrap().bytes.0
    );
    assert_eq!(x509_proof_text(&der).unwrap(), proof.encode());
    certificate_matches_entry(&der, &alice.entry).unwrap();

    // OpenSSL reads the certificate, shows the extension as an unknown
    // non-critical one, and verifies the chain: relying parties that know
    // nothing of the log take it as before.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("root.pem"),
        ca.root.to_pem(der::pem::LineEnding::LF).unwrap(),
    )
    .unwrap();
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der).unwrap();
    std::fs::write(dir.path().join("alice.pem"), pem).unwrap();
    let text = openssl(&["x509", "-in", "alice.pem", "-noout", "-text"], dir.path());
    assert!(text.contains(&format!("{X509_PROOF_OID}:")), "{text}");
    assert!(text.contains("signet-cert-proof/v1"), "{text}");
    let ok = openssl(
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            "root.pem",
            "alice.pem",
        ],
        dir.path(),
    );
    assert!(ok.contains("alice.pem: OK"), "{ok}");
}

#[test]
fn x509_refusals() {
    let ca = ca();
    let mut log = TestLog::new();
    let alice = alice(&ca);
    let index = log.append(&alice.entry);
    let proof = log.proof(index, &alice.entry, &[0, 1]);
    let trust = log.trust(2);

    // No proof: the plain certificate.
    let plain = CertificateBuilder::new(
        alice.profile.clone(),
        SerialNumber::new(&SERIAL).unwrap(),
        alice.validity,
        alice.spki.clone(),
    )
    .unwrap()
    .build::<_, CaSignature>(&ca.key)
    .unwrap()
    .to_der()
    .unwrap();
    assert!(matches!(
        proof_err(verify_x509_certificate(&plain, &trust)),
        ProofError::NoProof(_)
    ));

    // The proof extension first, not last: no precertificate.
    let mut first = CertificateBuilder::new(
        alice.profile.clone(),
        SerialNumber::new(&SERIAL).unwrap(),
        alice.validity,
        alice.spki.clone(),
    )
    .unwrap();
    first
        .add_extension(x509_proof_extension(&proof).unwrap())
        .unwrap();
    let first = first
        .build::<_, CaSignature>(&ca.key)
        .unwrap()
        .to_der()
        .unwrap();
    assert_eq!(
        proof_err(verify_x509_certificate(&first, &trust)),
        ProofError::NotReducible("the log-proof extension is not the last one")
    );

    // Marked critical.
    let mut critical_ext = x509_proof_extension(&proof).unwrap();
    critical_ext.critical = true;
    #[derive(Clone)]
    struct Appended(UserProfile, Extension);
    impl BuilderProfile for Appended {
        fn get_issuer(&self, s: &Name) -> Name {
            self.0.get_issuer(s)
        }
        fn get_subject(&self) -> Name {
            self.0.get_subject()
        }
        fn build_extensions(
            &self,
            spk: SubjectPublicKeyInfoRef<'_>,
            issuer_spk: SubjectPublicKeyInfoRef<'_>,
            tbs: &TbsCertificate,
        ) -> x509_cert::builder::Result<Vec<Extension>> {
            let mut e = self.0.build_extensions(spk, issuer_spk, tbs)?;
            e.push(self.1.clone());
            Ok(e)
        }
    }
    let critical = CertificateBuilder::new(
        Appended(alice.profile.clone(), critical_ext),
        SerialNumber::new(&SERIAL).unwrap(),
        alice.validity,
        alice.spki.clone(),
    )
    .unwrap()
    .build::<_, CaSignature>(&ca.key)
    .unwrap()
    .to_der()
    .unwrap();
    assert!(matches!(
        proof_err(verify_x509_certificate(&critical, &trust)),
        ProofError::NotReducible(_)
    ));

    // Another certificate (another serial) with alice's proof.
    let other = CertificateBuilder::new(
        LogProofProfile::new(alice.profile.clone(), &proof).unwrap(),
        SerialNumber::new(&[0x5a, 1, 2, 3]).unwrap(),
        alice.validity,
        alice.spki.clone(),
    )
    .unwrap()
    .build::<_, CaSignature>(&ca.key)
    .unwrap()
    .to_der()
    .unwrap();
    assert_eq!(
        proof_err(verify_x509_certificate(&other, &trust)),
        ProofError::OtherEntry
    );

    // Not DER of a certificate; trailing bytes.
    let good = alice.sign(&ca, &proof);
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        proof_err(verify_x509_certificate(&trailing, &trust)),
        ProofError::NotReducible(_)
    ));
    verify_x509_certificate(&good, &trust).unwrap();
}

/// A proof in a tree of a million entries: the inclusion proof is of the
/// length such a tree needs (the sibling hashes are made up and the
/// checkpoint signs the root they lead to, so the proof verifies).
fn big_tree_proof(log: &TestLog, entry: &Entry, cosigners: &[usize]) -> CertificateProof {
    let size = 1_000_000u64;
    let index = 123_456u64;
    let len = inclusion_proof_len(index, size).unwrap();
    let inclusion: Vec<Hash> = (0..len)
        .map(|i| Sha256::digest(format!("sibling {i}")).into())
        .collect();
    let root =
        root_from_inclusion_proof(&entry.leaf_hash().unwrap(), index, size, &inclusion).unwrap();
    let note = log.note(size, root, cosigners);
    CertificateProof::new(index, entry, inclusion, &note).unwrap()
}

/// A YubiKey PIV slot holds a data object of at most 3063 bytes; the
/// certificate object wraps the DER in 9 bytes (tag 0x70 with a 3-byte
/// length, 0x71 01 00, 0xFE 00). With two cosignatures and a tree of a
/// million entries the certificate must still fit.
#[test]
fn a_proven_certificate_fits_a_yubikey_slot() {
    let ca = ca();
    let log = TestLog::new();
    let alice = alice(&ca);
    let proof = big_tree_proof(&log, &alice.entry, &[0, 1]);
    assert_eq!(proof.inclusion.len(), 20);
    let der = alice.sign(&ca, &proof);
    verify_x509_certificate(&der, &log.trust(2)).unwrap();
    let plain = alice.entry.certificate.as_ref().unwrap().bytes.0.len();
    let text = proof.encode();
    eprintln!(
        "X.509: precertificate (TBS) {plain} bytes, proof text {} bytes \
         (entry line {}, {} inclusion hashes, checkpoint note {}), certificate {} bytes",
        text.len(),
        text.lines().nth(2).unwrap().len(),
        proof.inclusion.len(),
        proof.checkpoint_note.len(),
        der.len()
    );
    const PIV_MAX_OBJECT: usize = 3063;
    const CERT_OBJECT_WRAPPING: usize = 9;
    assert!(
        der.len() + CERT_OBJECT_WRAPPING <= PIV_MAX_OBJECT,
        "a {}-byte certificate does not fit a PIV slot",
        der.len()
    );

    // The OpenSSH certificate for the same proof, for the record.
    use common::prooflog::{alice_fields, ssh_ca, ssh_entry};
    let ssh_ca = ssh_ca(10);
    let fields = alice_fields(20, 7, &["root", "ubuntu"]);
    let entry = ssh_entry(&fields, &ssh_ca, &["root", "ubuntu"]);
    let proof = big_tree_proof(&log, &entry, &[0, 1]);
    let cert = fields.builder(Some(&proof)).unwrap().sign(&ssh_ca).unwrap();
    signet_log::certificate::verify_ssh_certificate(&cert, &log.trust(2)).unwrap();
    let plain = fields
        .builder(None)
        .unwrap()
        .sign(&ssh_ca)
        .unwrap()
        .to_bytes()
        .unwrap()
        .len();
    eprintln!(
        "OpenSSH: certificate without proof {plain} bytes, with proof {} bytes ({} in the -cert.pub line)",
        cert.to_bytes().unwrap().len(),
        cert.to_openssh().unwrap().len()
    );
}

/// The X.509 test vector of docs/log-format.md: alice's certificate with
/// its proof, the root, and the logged entry, in
/// `tests/vectors/cert-proof/` beside the OpenSSH one (same log key and
/// witnesses). ECDSA signatures here are deterministic (RFC 6979);
/// `SIGNET_REGENERATE_VECTORS=1` writes the files anew. The check reads
/// only the files.
#[test]
fn x509_vector() {
    use signet_log::certificate::LogTrust;
    use signet_log::note::VerifierKey;
    use signet_log::witness::WitnessPolicy;
    let path = |name: &str| common::vector_path(&format!("cert-proof/{name}"));
    let pem =
        |der: &[u8]| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap();

    let ca = ca_at(Some(1_764_000_000));
    let mut log = TestLog::new();
    log.append_filler(9);
    let alice = alice_at(&ca, Some(1_764_540_000));
    let index = log.append(&alice.entry);
    log.append_filler(4);
    let proof = log.proof(index, &alice.entry, &[0, 1]);
    let der = alice.sign(&ca, &proof);
    let made = [
        ("x509-root.pem", pem(&ca.root.to_der().unwrap())),
        ("x509-alice.pem", pem(&der)),
        (
            "x509-entry.json",
            String::from_utf8(alice.entry.to_canonical_bytes().unwrap()).unwrap(),
        ),
    ];
    for (name, content) in &made {
        if std::env::var_os("SIGNET_REGENERATE_VECTORS").is_some() {
            std::fs::write(path(name), content).unwrap();
        }
        assert_eq!(
            &std::fs::read_to_string(path(name)).unwrap(),
            content,
            "{name}"
        );
    }

    // From the files alone.
    let read = |name: &str| std::fs::read_to_string(path(name)).unwrap();
    let der = der::pem::decode_vec(read("x509-alice.pem").as_bytes())
        .unwrap()
        .1;
    let trust = LogTrust {
        log_key: VerifierKey::parse(read("log.vkey").trim()).unwrap(),
        witnesses: toml::from_str::<WitnessPolicy>(&read("witnesses.toml")).unwrap(),
    };
    let verified = verify_x509_certificate(&der, &trust).unwrap();
    assert_eq!(verified.index, 9);
    assert_eq!(verified.checkpoint_size, 14);
    let entry = Entry::from_bytes(read("x509-entry.json").as_bytes()).unwrap();
    assert_eq!(entry, verified.entry);
    assert_eq!(
        x509_precertificate(&der).unwrap(),
        entry.certificate.as_ref().unwrap().bytes.0
    );
    let dir = path("");
    let ok = openssl(
        &[
            "verify",
            "-attime",
            "1764541000",
            "-CAfile",
            "x509-root.pem",
            "x509-alice.pem",
        ],
        &dir,
    );
    assert!(ok.contains("x509-alice.pem: OK"), "{ok}");
}
