#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The attack on a CA key's public half, with the real `pkcs11-tool`: on
//! many tokens anyone with a session — no PIN — can delete and write public
//! key objects. A replaced public half would be exported as the CA key and
//! logged by the ceremony. signet-hsm refuses a public key that its private
//! key does not sign for, and makes its own public objects private and
//! unmodifiable.

use std::path::Path;
use std::process::{Command, Output};

use signet_hsm::{Error, KeyAlgorithm, Token};
use signet_testkit::{softhsm_module, SoftHsm};

fn pkcs11_tool(hsm: &SoftHsm, args: &[&str]) -> Output {
    Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", hsm.conf())
        .arg("--module")
        .arg(softhsm_module())
        .args(["--token-label", hsm.label()])
        .args(args)
        .output()
        .unwrap()
}

fn attacker_public_key(dir: &Path) -> String {
    let pem = dir.join("evil.pem");
    let der = dir.join("evil.pub.der");
    for args in [
        vec![
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            pem.to_str().unwrap(),
        ],
        vec![
            "ec",
            "-in",
            pem.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
    ] {
        assert!(Command::new("openssl")
            .args(&args)
            .output()
            .unwrap()
            .status
            .success());
    }
    der.to_str().unwrap().to_owned()
}

#[test]
fn a_replaced_public_key_object_is_refused() {
    if std::env::var_os("SIGNET_PKCS11_MODULE").is_some() {
        return; // Writes objects without a login: SoftHSM2 only.
    }
    let hsm = SoftHsm::create("pubkey-swap");
    let label = "signet-ssh-user-ca";
    // A key pair whose public half is a public object, as other tools (and
    // earlier versions) make them.
    let out = pkcs11_tool(
        &hsm,
        &[
            "--login",
            "--pin",
            &hsm.user_pin(),
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            label,
            "--id",
            "01",
            "--sensitive",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = Token::open(&hsm.token_config(1)).unwrap();
    let genuine = token
        .find_key(label, KeyAlgorithm::EcdsaP256)
        .unwrap()
        .unwrap();
    drop(token);

    // The attacker: no PIN, no login.
    let evil = attacker_public_key(hsm.dir());
    let out = pkcs11_tool(
        &hsm,
        &["--delete-object", "--type", "pubkey", "--label", label],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = pkcs11_tool(
        &hsm,
        &[
            "--write-object",
            &evil,
            "--type",
            "pubkey",
            "--label",
            label,
            "--id",
            "01",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let token = Token::open(&hsm.token_config(1)).unwrap();
    let err = token.find_key(label, KeyAlgorithm::EcdsaP256).unwrap_err();
    assert!(
        matches!(&err, Error::KeyPairMismatch { label: l } if l == label),
        "{err}"
    );
    assert!(err.to_string().contains("does not belong"), "{err}");
    let _ = genuine;
}

#[test]
fn public_halves_made_here_cannot_be_seen_or_replaced_without_the_pin() {
    if std::env::var_os("SIGNET_PKCS11_MODULE").is_some() {
        return;
    }
    let hsm = SoftHsm::create("pubkey-private");
    let label = "signet-x509-ca";
    let token = Token::open(&hsm.token_config(1)).unwrap();
    token.generate_key(label, KeyAlgorithm::EcdsaP256).unwrap();
    drop(token);

    // Without a login the public half is invisible, so it cannot be deleted…
    let out = pkcs11_tool(&hsm, &["--list-objects", "--type", "pubkey"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(label),
        "the public half is visible without the PIN"
    );
    // …and a second public object planted under its label makes the key
    // ambiguous, which is refused rather than guessed.
    let evil = attacker_public_key(hsm.dir());
    let out = pkcs11_tool(
        &hsm,
        &[
            "--write-object",
            &evil,
            "--type",
            "pubkey",
            "--label",
            label,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = Token::open(&hsm.token_config(1)).unwrap();
    let err = token.find_key(label, KeyAlgorithm::EcdsaP256).unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyAmbiguous { .. } | Error::KeyPairMismatch { .. }
        ),
        "{err}"
    );
}
