//! Issuance through the library against SoftHSM2.
//!
//! Attack 5: a faulty HSM signature (a fault in an RSA signature can give
//! the private key away) is never used. Every signature the token makes —
//! certificates and checkpoints — is verified against the CA's public key
//! first; a failure is an HSM error, nothing is issued, nothing is logged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use signet_ca::authority::{Authority, CertKind, RawRequest};
use signet_ca::config::Config;
use signet_ca::log_signer::LogSigner;
use signet_ca::store::{CommitMode, FileMark, LocalStore, LogStore, StoreOptions};
use signet_hsm::{KeyAlgorithm, SshSigner, Token, X509Signer};
use signet_testkit::SoftHsm;

const CLIENT_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF3pmztnLx/vadXQ0fCYydshpmgxp6t7TQ0xOs4/GHw6 t@signet";

struct Fixture {
    hsm: SoftHsm,
    config: Config,
    key: signet_hsm::KeyRef,
    root: x509_cert::Certificate,
    token: Token,
    log_token: Token,
    store: Arc<LocalStore>,
    authority: Authority,
}

fn fixture(label: &str, algorithm: KeyAlgorithm) -> Fixture {
    let hsm = SoftHsm::create(label);
    let config_text = format!(
        "data_dir = \"{}\"\n[hsm]\nmodule = \"{}\"\ntoken_label = \"{}\"\npin_file = \"{}\"\n",
        hsm.dir().join("data").display(),
        signet_testkit::softhsm_module().display(),
        hsm.label(),
        hsm.pin_file().display()
    );
    let config = Config::parse(&config_text, &hsm.dir().join("ca.toml")).unwrap();
    let token = Token::open(&hsm.token_config(1)).unwrap();
    let log_token = Token::open(&hsm.token_config(1)).unwrap();
    let key = token.generate_key(&hsm.unique("ca"), algorithm).unwrap();
    let log_key = token
        .generate_key(&hsm.unique("log"), KeyAlgorithm::Ed25519)
        .unwrap();
    let signer = Arc::new(LogSigner::new(log_token.clone(), log_key, "test/signet-log").unwrap());
    let store = Arc::new(
        LocalStore::create(StoreOptions {
            path: hsm.dir().join("data/log.redb"),
            origin: "test/signet-log".into(),
            verifier: signer.verifier().clone(),
            signer,
            mark: Arc::new(FileMark::new(hsm.dir().join("mark"))),
            mode: CommitMode::Group,
            witnesses: None,
        })
        .unwrap(),
    );
    let x509 = X509Signer::new(token.clone(), key.clone());
    let root =
        signet_ca::x509::create_root(&x509, "Test Root", "Signet", Duration::from_secs(86400))
            .unwrap();
    let (authority_config, ca_key, root_copy) = (config.clone(), key.clone(), root.clone());
    let authority = Authority::from_parts(
        config,
        SshSigner::new(token.clone(), key.clone()).unwrap(),
        SshSigner::new(token.clone(), key).unwrap(),
        x509,
        root,
        store.clone(),
    );
    Fixture {
        hsm,
        config: authority_config,
        key: ca_key,
        root: root_copy,
        token,
        log_token,
        store,
        authority,
    }
}

fn request(kind: CertKind) -> RawRequest {
    RawRequest {
        kind,
        user: Some("alice".into()),
        principals: if kind == CertKind::X509Client {
            Vec::new()
        } else {
            vec!["root".into()]
        },
        ttl: "1h".into(),
        public_key: CLIENT_KEY.as_bytes().to_vec(),
    }
}

fn actor() -> signet_log::entry::Actor {
    signet_log::entry::Actor::LocalAdmin {
        unix_user: "test".into(),
    }
}

#[test]
fn a_faulty_certificate_signature_issues_nothing() {
    // The precertificate is logged before the certificate is signed (the
    // signature carries the proof of that logging), so a faulty signature
    // leaves an entry that no certificate matches: the log holds more than
    // was issued, never less.
    for (label, algorithm) in [
        ("faulty-p256", KeyAlgorithm::EcdsaP256),
        ("faulty-ed25519", KeyAlgorithm::Ed25519),
        ("faulty-rsa", KeyAlgorithm::Rsa3072),
    ] {
        let fx = fixture(label, algorithm);
        let before = fx.store.latest_checkpoint().size;
        fx.token.corrupt_signatures(true);
        for kind in [CertKind::SshUser, CertKind::X509Client] {
            let approved = fx.authority.approve(request(kind)).unwrap();
            let err = fx.authority.issue(approved, actor()).unwrap_err();
            assert!(
                matches!(
                    err,
                    signet_ca::Error::Hsm(signet_hsm::Error::FaultySignature { .. })
                ),
                "{label} {kind:?}: {err}"
            );
            assert_eq!(err.exit_class() as u8, 3, "an HSM error");
        }
        let after = fx.store.latest_checkpoint().size;
        assert_eq!(after, before + 2, "{label}: two precertificates logged");
        let reader = fx.store.reader().unwrap();
        for index in before..after {
            let entry =
                signet_log::entry::Entry::from_bytes(&reader.entry(index).unwrap().unwrap())
                    .unwrap();
            assert_eq!(
                entry.certificate.unwrap().form,
                signet_log::entry::CertificateForm::Precertificate
            );
        }
        drop(reader);
        // The same token, healthy again, issues.
        fx.token.corrupt_signatures(false);
        let approved = fx.authority.approve(request(CertKind::SshUser)).unwrap();
        let issued = fx.authority.issue(approved, actor()).unwrap();
        assert_eq!(issued.log_index, after);
    }
}

#[test]
fn a_faulty_checkpoint_signature_commits_nothing() {
    let fx = fixture("faulty-log", KeyAlgorithm::EcdsaP256);
    fx.log_token.corrupt_signatures(true);
    let approved = fx.authority.approve(request(CertKind::SshUser)).unwrap();
    let err = fx
        .authority
        .issue(approved, actor())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not verify"), "{err}");
    assert_eq!(fx.store.latest_checkpoint().size, 0);
    drop(fx.authority);
    // Nothing reached the disk: the store reopens with no entry.
    fx.log_token.corrupt_signatures(false);
    assert_eq!(fx.store.reader().unwrap().end().unwrap(), 0);
}

#[test]
fn nothing_is_issued_under_a_root_the_log_does_not_hold() {
    use sha2::Digest;
    let fx = fixture("unlogged-root", KeyAlgorithm::EcdsaP256);
    // The root file is there (written by hand, or by an older version that
    // did not log it) but the log has no entry for it.
    let root_path = fx.config.root_cert_path();
    std::fs::create_dir_all(root_path.parent().unwrap()).unwrap();
    std::fs::write(&root_path, signet_ca::x509::to_pem(&fx.root).unwrap()).unwrap();
    let with_keys = || {
        Authority::with_keys(
            fx.config.clone(),
            SshSigner::new(fx.token.clone(), fx.key.clone()).unwrap(),
            SshSigner::new(fx.token.clone(), fx.key.clone()).unwrap(),
            X509Signer::new(fx.token.clone(), fx.key.clone()),
            fx.store.clone(),
        )
    };
    let err = with_keys()
        .err()
        .expect("an unlogged root was used")
        .to_string();
    assert!(err.contains("is not in the log"), "{err}");

    // Logged as the ceremony logs it, the root is used.
    let der = der::Encode::to_der(&fx.root).unwrap();
    let tbs = fx.root.tbs_certificate();
    let serial = signet_ca::x509::log_serial(tbs.serial_number());
    let reservation = fx
        .store
        .reserve_serial(signet_ca::store::SerialKind::X509, &serial)
        .unwrap()
        .unwrap();
    let entry = signet_log::entry::Entry {
        kind: signet_log::entry::EntryKind::AdminSign,
        time: 1,
        actor: actor(),
        request_hash: None,
        subject: Some(tbs.subject().to_string()),
        principals: Vec::new(),
        roles: Vec::new(),
        certificate: Some(signet_log::entry::IssuedCertificate {
            serial,
            public_key_fingerprint: signet_log::entry::x509_key_fingerprint(&fx.root).unwrap(),
            not_before: tbs.validity().not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity().not_after.to_unix_duration().as_secs(),
            sha256: signet_log::entry::Sha256Hex(sha2::Sha256::digest(&der).into()),
            bytes: signet_log::entry::Base64Bytes(der),
            form: signet_log::entry::CertificateForm::Full,
        }),
        change: None,
    };
    fx.store.append(&entry, Some(reservation)).unwrap();
    let authority = with_keys().unwrap();
    let approved = authority.approve(request(CertKind::SshUser)).unwrap();
    authority.issue(approved, actor()).unwrap();
    drop(fx.hsm);
}
