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
    _hsm: SoftHsm,
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
        })
        .unwrap(),
    );
    let x509 = X509Signer::new(token.clone(), key.clone());
    let root =
        signet_ca::x509::create_root(&x509, "Test Root", "Signet", Duration::from_secs(86400))
            .unwrap();
    let authority = Authority::from_parts(
        config,
        SshSigner::new(token.clone(), key.clone()).unwrap(),
        SshSigner::new(token.clone(), key).unwrap(),
        x509,
        root,
        store.clone(),
    );
    Fixture {
        _hsm: hsm,
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
fn a_faulty_certificate_signature_issues_nothing_and_logs_nothing() {
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
        assert_eq!(fx.store.latest_checkpoint().size, before, "{label}: logged");
        // The same token, healthy again, issues.
        fx.token.corrupt_signatures(false);
        let approved = fx.authority.approve(request(CertKind::SshUser)).unwrap();
        let issued = fx.authority.issue(approved, actor()).unwrap();
        assert_eq!(issued.log_index, before);
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
