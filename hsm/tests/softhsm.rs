#![allow(clippy::unwrap_used, clippy::expect_used)]
//! signet-hsm against a real PKCS#11 module: SoftHSM2 by default, or the
//! module named by `SIGNET_PKCS11_MODULE`. Each test has its own token and
//! runs in its own process (cargo-nextest).

use std::process::Command;

use signature::Verifier;
use signet_hsm::{Error, KeyAlgorithm, PinSource, PublicKey, RsaHash, Token, TokenSelector};
use signet_testkit::{softhsm_module, SoftHsm};

fn verify(public: &PublicKey, message: &[u8], raw: &[u8], rsa_hash: RsaHash) {
    match public {
        PublicKey::EcdsaP256(key) => {
            let sig = p256::ecdsa::Signature::from_slice(raw).unwrap();
            key.verify(message, &sig).unwrap();
        }
        PublicKey::EcdsaP384(key) => {
            let sig = p384::ecdsa::Signature::from_slice(raw).unwrap();
            key.verify(message, &sig).unwrap();
        }
        PublicKey::Ed25519(key) => {
            let sig = ed25519_dalek::Signature::from_slice(raw).unwrap();
            key.verify(message, &sig).unwrap();
        }
        PublicKey::Rsa(key) => {
            let sig = rsa::pkcs1v15::Signature::try_from(raw).unwrap();
            match rsa_hash {
                RsaHash::Sha256 => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone())
                    .verify(message, &sig)
                    .unwrap(),
                RsaHash::Sha512 => rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key.clone())
                    .verify(message, &sig)
                    .unwrap(),
            }
        }
    }
}

fn owner_only(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn every_supported_key_type_is_generated_protected_and_signs() {
    let hsm = SoftHsm::create("hsm-all-types");
    let token = Token::open(&hsm.token_config(2)).unwrap();
    let supported = token.capabilities().supported_algorithms();
    // SoftHSM2 2.6 does all five; a real module may do fewer and is then
    // tested on what it has.
    if std::env::var_os("SIGNET_PKCS11_MODULE").is_none() {
        assert_eq!(supported, KeyAlgorithm::ALL.to_vec());
    }
    for algorithm in supported {
        let label = hsm.unique(&format!("test-{algorithm}"));
        let key = token.generate_key(&label, algorithm).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        assert_eq!(key.public_key().ca_algorithm(), Some(algorithm));

        let protection = token.key_protection(&key).unwrap();
        assert!(
            protection.sensitive && !protection.extractable,
            "{algorithm}: {protection:?}"
        );
        assert!(
            protection.always_sensitive && protection.never_extractable,
            "{algorithm}"
        );
        assert!(
            protection.local,
            "{algorithm}: key must be generated on the token"
        );
        assert!(
            !token.private_value_is_readable(&key).unwrap(),
            "{algorithm}: private key readable"
        );

        let message = b"signet conformance message";
        for hash in [RsaHash::Sha256, RsaHash::Sha512] {
            let raw = token.sign(&key, message, hash).wait().unwrap();
            verify(key.public_key(), message, &raw, hash);
        }

        // Found again by label, with the same public key.
        let again = token.find_key(&label, algorithm).unwrap().unwrap();
        assert_eq!(again, key);
        // Never a second key under the same label.
        assert!(matches!(
            token.generate_key(&label, algorithm),
            Err(Error::KeyExists(_))
        ));
        // A lookup with the wrong type is refused, not silently accepted.
        let other = if algorithm == KeyAlgorithm::Ed25519 {
            KeyAlgorithm::EcdsaP256
        } else {
            KeyAlgorithm::Ed25519
        };
        assert!(matches!(
            token.find_key(&label, other),
            Err(Error::KeyTypeMismatch { .. })
        ));
    }
    assert!(token
        .find_key("no-such-key", KeyAlgorithm::EcdsaP256)
        .unwrap()
        .is_none());
}

#[test]
fn pkcs11_tool_sees_sensitive_never_extractable_keys_and_cannot_read_them() {
    let hsm = SoftHsm::create("hsm-pkcs11-tool");
    let ca_label = hsm.unique("ca-key");
    {
        let token = Token::open(&hsm.token_config(1)).unwrap();
        token
            .generate_key(&ca_label, KeyAlgorithm::EcdsaP256)
            .unwrap();
    }
    let pkcs11_tool = |args: &[&str]| {
        Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", hsm.conf())
            .arg("--module")
            .arg(softhsm_module())
            .args([
                "--token-label",
                hsm.label(),
                "--login",
                "--pin",
                &hsm.user_pin(),
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let listed = pkcs11_tool(&["--list-objects", "--type", "privkey"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{text}");
    assert!(text.contains(&ca_label), "{text}");
    assert!(text.contains("sensitive"), "{text}");
    assert!(text.contains("never extractable"), "{text}");

    // pkcs11-tool declines to export private keys at all; what matters is
    // that nothing comes out. The token's own refusal (CKR_ATTRIBUTE_SENSITIVE
    // on CKA_VALUE) is asserted in every_supported_key_type_… below.
    let out = hsm.dir().join("exported");
    let read = pkcs11_tool(&[
        "--read-object",
        "--type",
        "privkey",
        "--label",
        &ca_label,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!out.exists(), "the private key was written out");
    assert!(read.stdout.is_empty(), "no key material on stdout");
}

#[test]
fn wrong_pin_is_reported_once_and_never_echoed() {
    let hsm = SoftHsm::create("hsm-wrong-pin");
    if hsm.is_external() && std::env::var_os("SIGNET_PKCS11_WRONG_PIN_OK").is_none() {
        // One failed login counts against a real token's retry limit.
        eprintln!(
            "not run on a real token: set SIGNET_PKCS11_WRONG_PIN_OK=1 to allow one failed login"
        );
        return;
    }
    let wrong = hsm.dir().join("wrong-pin");
    std::fs::write(&wrong, "00000000\n").unwrap();
    owner_only(&wrong);
    let mut config = hsm.token_config(4);
    config.pin = PinSource::File(wrong);
    let err = Token::open(&config).unwrap_err();
    assert!(matches!(err, Error::PinIncorrect), "{err:?}");
    let text = err.to_string();
    assert!(
        !text.contains("00000000") && text.contains("not retried"),
        "{text}"
    );
    // The right PIN still works: the failed attempt did not lock the token.
    Token::open(&hsm.token_config(1)).unwrap();
}

#[test]
fn pool_recovers_after_the_login_is_lost() {
    let hsm = SoftHsm::create("hsm-recovery");
    let token = Token::open(&hsm.token_config(1)).unwrap();
    let key = token
        .generate_key(&hsm.unique("k"), KeyAlgorithm::EcdsaP256)
        .unwrap();
    token.force_logout().unwrap();
    let raw = token
        .sign(&key, b"after logout", RsaHash::Sha256)
        .wait()
        .unwrap();
    verify(key.public_key(), b"after logout", &raw, RsaHash::Sha256);
}

#[test]
fn bad_module_and_token_selection_fail_clearly() {
    let hsm = SoftHsm::create("hsm-selection");
    let mut config = hsm.token_config(1);

    config.module = "/nonexistent/libpkcs11.so".into();
    let err = Token::open(&config).unwrap_err();
    assert!(matches!(err, Error::ModuleMissing(_)), "{err}");

    let not_a_module = hsm.dir().join("not-a-module.so");
    std::fs::write(&not_a_module, "this is text").unwrap();
    config.module = not_a_module;
    let err = Token::open(&config).unwrap_err();
    assert!(matches!(err, Error::ModuleLoad { .. }), "{err}");

    let mut config = hsm.token_config(1);
    config.token = TokenSelector::Label("no such token".into());
    let err = Token::open(&config).unwrap_err().to_string();
    assert!(
        err.contains("no such token") && err.contains(hsm.label()),
        "{err}"
    );

    // By URI (a real token's label may need percent-encoding; SoftHSM2's
    // and the test labels do not).
    let uri = if hsm.is_external() {
        format!("pkcs11:token={}", hsm.label())
    } else {
        format!(
            "pkcs11:token={};manufacturer=SoftHSM%20project",
            hsm.label()
        )
    };
    let mut config = hsm.token_config(1);
    config.token = TokenSelector::Uri(signet_hsm::Pkcs11Uri::parse(&uri).unwrap());
    Token::open(&config).unwrap();
}

#[test]
fn empty_pin_file_is_refused_before_any_login() {
    let hsm = SoftHsm::create("hsm-empty-pin");
    let empty = hsm.dir().join("empty");
    std::fs::write(&empty, "").unwrap();
    owner_only(&empty);
    let mut config = hsm.token_config(1);
    config.pin = PinSource::File(empty);
    let err = Token::open(&config).unwrap_err().to_string();
    assert!(err.contains("is empty"), "{err}");
}

#[test]
fn a_faulty_token_signature_is_never_handed_out() {
    use signature::Signer;
    let hsm = SoftHsm::create("hsm-faulty-signature");
    let token = Token::open(&hsm.token_config(2)).unwrap();
    let message = b"certificate to be";
    for algorithm in token.capabilities().supported_algorithms() {
        let label = hsm.unique(&format!("faulty-{algorithm}"));
        let key = token.generate_key(&label, algorithm).unwrap();
        let ssh = signet_hsm::SshSigner::new(token.clone(), key.clone()).unwrap();
        let x509 = signet_hsm::X509Signer::new(token.clone(), key.clone());

        token.corrupt_signatures(true);
        for hash in [RsaHash::Sha256, RsaHash::Sha512] {
            let err = token.sign(&key, message, hash).wait().unwrap_err();
            assert!(
                matches!(&err, Error::FaultySignature { key } if *key == label),
                "{algorithm}: {err:?}"
            );
            assert!(err.to_string().contains("does not verify"), "{err}");
        }
        // The certificate builders' signers get the error, not a signature.
        let faulty = |err: signature::Error| {
            let source = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<Error>());
            matches!(source, Some(Error::FaultySignature { .. }))
        };
        let err = Signer::<ssh_key::Signature>::try_sign(&ssh, message).unwrap_err();
        assert!(faulty(err), "{algorithm}");
        let err = Signer::<signet_hsm::X509Signature>::try_sign(&x509, message).unwrap_err();
        assert!(faulty(err), "{algorithm}");
        // The unverified baseline does hand out the corrupted bytes: this is
        // what `sign` would publish without its check.
        let input = match algorithm {
            KeyAlgorithm::EcdsaP256 => <sha2::Sha256 as sha2::Digest>::digest(message).to_vec(),
            KeyAlgorithm::EcdsaP384 => <sha2::Sha384 as sha2::Digest>::digest(message).to_vec(),
            _ => message.to_vec(),
        };
        let raw = token
            .sign_prepared(&key, input, RsaHash::Sha512)
            .wait()
            .unwrap();
        assert!(
            !key.public_key().verifies(message, &raw, RsaHash::Sha512),
            "{algorithm}"
        );

        // The real device path works.
        token.corrupt_signatures(false);
        for hash in [RsaHash::Sha256, RsaHash::Sha512] {
            let raw = token.sign(&key, message, hash).wait().unwrap();
            verify(key.public_key(), message, &raw, hash);
            assert!(key.public_key().verifies(message, &raw, hash));
        }
        Signer::<ssh_key::Signature>::try_sign(&ssh, message).unwrap();
        Signer::<signet_hsm::X509Signature>::try_sign(&x509, message).unwrap();
    }
}

/// OpenSC's PKCS#11 spy: a module that logs every call, then forwards it to
/// the module named by `PKCS11SPY` (Debian package opensc-pkcs11).
const PKCS11_SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so";

/// How many times the spy log shows `C_Login` called.
fn logins_in(spy_log: &std::path::Path) -> usize {
    std::fs::read_to_string(spy_log)
        .unwrap()
        .lines()
        .filter(|line| {
            line.split_once(": ")
                .is_some_and(|(n, f)| n.parse::<u64>().is_ok() && f.trim() == "C_Login")
        })
        .count()
}

#[test]
fn a_pin_refused_at_re_login_is_sent_once_then_never_again() {
    let hsm = SoftHsm::create("hsm-pin-latch");
    if hsm.is_external() {
        // The test changes the token's PIN.
        eprintln!("not run on a real token: it changes the user PIN");
        return;
    }
    assert!(
        std::path::Path::new(PKCS11_SPY).exists(),
        "{PKCS11_SPY} missing: install the Debian package opensc-pkcs11"
    );
    // Every call the pool makes goes through the spy, which logs it.
    let spy_log = hsm.dir().join("spy.log");
    std::env::set_var("PKCS11SPY", softhsm_module());
    std::env::set_var("PKCS11SPY_OUTPUT", &spy_log);
    let mut config = hsm.token_config(3);
    config.module = PKCS11_SPY.into();
    let token = Token::open(&config).unwrap();
    let key = token
        .generate_key("latch", KeyAlgorithm::EcdsaP256)
        .unwrap();
    token.sign(&key, b"before", RsaHash::Sha256).wait().unwrap();

    // Another application session changes the user PIN and logs the
    // application out, as an administrator's PIN change plus a token reset
    // would: the pool's next re-login uses the PIN it was started with.
    let old_pin = hsm.user_pin();
    let new_pin = "24681357";
    {
        use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
        use cryptoki::types::AuthPin;
        let ctx = Pkcs11::new(softhsm_module()).unwrap();
        // The module is initialised already (by the pool, through the spy).
        let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
        let slot = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|slot| ctx.get_token_info(*slot).unwrap().label().trim() == hsm.label())
            .unwrap();
        let session = ctx.open_rw_session(slot).unwrap();
        session
            .set_pin(&AuthPin::from(old_pin.as_str()), &AuthPin::from(new_pin))
            .unwrap();
        session.logout().unwrap();
    }
    let logins_before = logins_in(&spy_log);

    // Far more jobs than any token's retry limit, from several threads at once.
    let replies: Vec<_> = (0..40)
        .map(|i| token.sign(&key, format!("job {i}").as_bytes(), RsaHash::Sha256))
        .collect();
    let errors: Vec<Error> = replies.into_iter().map(|r| r.wait().unwrap_err()).collect();
    assert_eq!(
        logins_in(&spy_log) - logins_before,
        1,
        "C_Login must reach the token exactly once after the PIN changed"
    );
    let refused = errors
        .iter()
        .filter(|e| matches!(e, Error::PinIncorrect))
        .count();
    let latched = errors
        .iter()
        .filter(|e| matches!(e, Error::PinRefusedRestart))
        .count();
    assert_eq!((refused, latched), (1, 39), "{errors:?}");
    let text = Error::PinRefusedRestart.to_string();
    assert!(
        text.contains("restart") && text.contains("not sent again"),
        "{text}"
    );
    // Other work is refused the same way, without a login attempt.
    assert!(matches!(
        token.find_key("latch", KeyAlgorithm::EcdsaP256),
        Err(Error::PinRefusedRestart)
    ));
    assert_eq!(logins_in(&spy_log) - logins_before, 1);
    drop(token);

    // A restart with the right PIN works: the token was never locked.
    std::fs::write(hsm.pin_file(), format!("{new_pin}\n")).unwrap();
    let token = Token::open(&config).unwrap();
    token
        .sign(&key, b"after restart", RsaHash::Sha256)
        .wait()
        .unwrap();
}
