//! Yubico's FIDO attestation roots as Signet ships them
//! (`deploy/attestation/yubico-fido-roots.pem`, installed as
//! `/usr/share/signet/yubico-fido-roots.pem`), checked three ways:
//!
//! - the bundle is exactly the certificates its README lists, by SHA-256,
//!   and loads into [`AttestationTrust`];
//! - registrations made by real YubiKeys (Yubico's own recorded test
//!   vectors, `tests/vectors/yubico/`) verify against it with the crate's
//!   checks, and are refused when the root that signed them is missing,
//!   when an unrelated root stands in for it, or when the response was
//!   tampered with;
//! - OpenSSL, as the outside check, agrees: every certificate in the
//!   bundle chains to a root in it, the devices' attestation certificates
//!   chain to it (a firmware 5.7.1 one to "Yubico FIDO Root CA Serial
//!   450203556"), and not without the right root.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use ciborium::Value;
use der::Encode;
use sha2::{Digest, Sha256};
use signet_webauthn::wire::RegistrationResponse;
use signet_webauthn::{
    aaguid_to_string, verify_registration, AttestationTrust, RelyingParty, UserVerification,
    WebauthnError,
};
use x509_cert::Certificate;

/// The bundle's certificates in file order: subject CN and SHA-256 of the
/// DER, as `deploy/attestation/README.md` lists them.
const BUNDLE: [(&str, &str); 7] = [
    (
        "Yubico U2F Root CA Serial 457200631",
        "0fa1386f80eb8713263ae5c1d84deb455bdf08aea50ab05503cefee82b092d42",
    ),
    (
        "Yubico FIDO Root CA Serial 450203556",
        "35f1a54b353bfb711e6d42adbeb76c0e9dead095018e6a94783ba2192fd6faad",
    ),
    (
        "Yubico Attestation Root 1",
        "62760c6a6ef91679f454c8902b80fd009825b3f25da90f1fbace2ec6586cd5a8",
    ),
    (
        "Yubico Attestation Intermediate A 1",
        "4698a1d3389c3ec60016c216250f1d0439922832d65142327436376dc2942b55",
    ),
    (
        "Yubico Attestation Intermediate B 1",
        "d4cc3f456fdaf4e7812a21aab1dfe9d8e27d24e2fd2d6f21c9940109f0daa754",
    ),
    (
        "Yubico FIDO Attestation A 1",
        "4ebabc9cbc964f722c985f3784d057e9ef5dcf454dcb4f767fccca58cf16a4e8",
    ),
    (
        "Yubico FIDO Attestation B 1",
        "4eadda86ff62cff987e111a07910d8554de42f71d5d6da7744610e09012dd319",
    ),
];

/// Real YubiKey registrations (see `tests/vectors/yubico/README.md`):
/// file, attestation format, AAGUID.
const VECTORS: [(&str, &str, &str); 3] = [
    (
        "yubikey-5-nfc-packed.json",
        "packed",
        "fa2b99dc-9e39-4257-8f92-4a30d23c4118",
    ),
    (
        "yubikey-5-nfc-fido-u2f.json",
        "fido-u2f",
        "00000000-0000-0000-0000-000000000000",
    ),
    (
        "yubikey-bio-5.5.4-packed.json",
        "packed",
        "d8522d9f-575b-4866-88a9-ba99fa02f35b",
    ),
];

/// A firmware 5.7.1 YubiKey's enterprise attestation certificate.
const LEAF_5_7_1: &str = "yubikey-5.7.1-enterprise-attestation.pem";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bundle_path() -> PathBuf {
    workspace().join("deploy/attestation/yubico-fido-roots.pem")
}

fn bundle_pem() -> String {
    std::fs::read_to_string(bundle_path()).unwrap()
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/yubico")
}

fn bundle_certs() -> Vec<Certificate> {
    Certificate::load_pem_chain(bundle_pem().as_bytes()).unwrap()
}

fn common_name(cert: &Certificate) -> String {
    cert.tbs_certificate()
        .subject()
        .common_name()
        .unwrap()
        .unwrap()
        .value()
        .to_string()
}

fn pem_of(cert: &Certificate) -> String {
    pem_of_der(&cert.to_der().unwrap())
}

fn pem_of_der(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// The bundle without the certificates whose CN is in `drop`, as PEM.
fn bundle_without(drop: &[&str]) -> String {
    bundle_certs()
        .iter()
        .filter(|c| !drop.contains(&common_name(c).as_str()))
        .map(pem_of)
        .collect()
}

fn trust_of(pem: &str) -> AttestationTrust {
    AttestationTrust::from_config(&[pem], &[], false).unwrap()
}

/// One recorded ceremony: the relying party it ran against, the challenge
/// that relying party issued, and the browser's response.
struct Vector {
    rp: RelyingParty,
    challenge: [u8; 32],
    response: RegistrationResponse,
}

fn vector(file: &str) -> Vector {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_dir().join(file)).unwrap()).unwrap();
    let rp = RelyingParty::new(
        json["rp_id"].as_str().unwrap(),
        "Yubico demo",
        &[json["origin"].as_str().unwrap()],
        UserVerification::Preferred,
    )
    .unwrap();
    let challenge: [u8; 32] = hex::decode(json["challenge_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let response: RegistrationResponse =
        serde_json::from_value(json["registration"].clone()).unwrap();
    Vector {
        rp,
        challenge,
        response,
    }
}

fn b64url_decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap()
}

fn b64url_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The attestation object of `response`, as a CBOR map.
fn attestation_object(response: &RegistrationResponse) -> Vec<(Value, Value)> {
    let bytes = b64url_decode(&response.response.attestation_object);
    match ciborium::from_reader::<Value, _>(bytes.as_slice()).unwrap() {
        Value::Map(map) => map,
        other => panic!("attestation object is not a map: {other:?}"),
    }
}

fn member<'a>(map: &'a mut [(Value, Value)], name: &str) -> &'a mut Value {
    &mut map
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some(name))
        .unwrap()
        .1
}

fn set_attestation_object(response: &mut RegistrationResponse, map: Vec<(Value, Value)>) {
    let mut bytes = Vec::new();
    ciborium::into_writer(&Value::Map(map), &mut bytes).unwrap();
    response.response.attestation_object = b64url_encode(&bytes);
}

/// The first certificate of the vector's `x5c`, as PEM.
fn x5c_leaf_pem(response: &RegistrationResponse) -> String {
    let mut map = attestation_object(response);
    let stmt = member(&mut map, "attStmt").as_map().unwrap().clone();
    let x5c = stmt
        .iter()
        .find(|(k, _)| k.as_text() == Some("x5c"))
        .unwrap()
        .1
        .as_array()
        .unwrap();
    pem_of_der(x5c[0].as_bytes().unwrap())
}

/// `openssl verify` of `cert_pem` against the trust anchors `ca_pem`
/// (handed over on a pipe as `-CAfile /dev/stdin`); whether OpenSSL
/// accepted it, and what it said.
fn openssl_verify(ca_pem: &str, cert_pem: &str) -> (bool, String) {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "signet-yubico-roots-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_file = dir.join("cert.pem");
    std::fs::write(&cert_file, cert_pem).unwrap();
    let mut child = Command::new("openssl")
        // -check_ss_sig: without it OpenSSL takes a trust anchor's
        // self-signature on faith.
        .args(["verify", "-check_ss_sig", "-CAfile", "/dev/stdin"])
        .arg(&cert_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl (Debian package openssl) must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ca_pem.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains(": OK"), text)
}

#[test]
fn the_bundle_is_exactly_the_documented_certificates() {
    let certs = bundle_certs();
    let found: Vec<(String, String)> = certs
        .iter()
        .map(|c| {
            (
                common_name(c),
                hex::encode(Sha256::digest(c.to_der().unwrap())),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = BUNDLE
        .iter()
        .map(|(cn, fp)| (cn.to_string(), fp.to_string()))
        .collect();
    assert_eq!(found, expected);

    // The README lists the same fingerprints (upper-case hex).
    let readme = std::fs::read_to_string(workspace().join("deploy/attestation/README.md")).unwrap();
    for (cn, fp) in BUNDLE {
        assert!(readme.contains(cn), "README lacks {cn}");
        assert!(
            readme.contains(&fp.to_ascii_uppercase()),
            "README lacks the fingerprint of {cn}"
        );
    }
}

#[test]
fn the_bundle_loads_into_the_trust_store() {
    let trust = AttestationTrust::from_config(&[&bundle_pem()], &[], false).unwrap();
    let shown = format!("{trust:?}");
    for (cn, _) in BUNDLE {
        assert!(shown.contains(cn), "{cn} missing from {shown}");
    }
    assert!(!trust.allows_none());

    // What the daemon does with a file that is not a bundle.
    assert!(matches!(
        AttestationTrust::from_config(&["no certificate here"], &[], false),
        Err(WebauthnError::InvalidTrustConfig(_))
    ));
    let truncated = &bundle_pem()[..bundle_pem().len() / 2];
    assert!(matches!(
        AttestationTrust::from_config(&[truncated], &[], false),
        Err(WebauthnError::InvalidTrustConfig(_))
    ));
}

#[test]
fn real_yubikey_registrations_verify_against_the_bundle() {
    let trust = trust_of(&bundle_pem());
    for (file, format, aaguid) in VECTORS {
        let v = vector(file);
        let cred = verify_registration(&v.rp, &trust, &v.challenge, &v.response)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(cred.attestation_format, format, "{file}");
        assert_eq!(aaguid_to_string(&cred.aaguid), aaguid, "{file}");
        assert_eq!(
            b64url_encode(&cred.id.0),
            v.response.raw_id.trim_end_matches('='),
            "{file}"
        );
    }
}

#[test]
fn real_registrations_need_the_root_that_signed_them() {
    let unrelated_piv_root = std::fs::read_to_string(
        workspace().join("ca/attest/roots/yubico-piv-root-ca-serial-263751.pem"),
    )
    .unwrap();
    let stores = [
        // Every other Yubico certificate in the bundle, without the U2F root.
        (
            "bundle without the U2F root",
            trust_of(&bundle_without(&["Yubico U2F Root CA Serial 457200631"])),
        ),
        // A real Yubico root, but not one that signs FIDO attestation.
        ("Yubico PIV root", trust_of(&unrelated_piv_root)),
        ("empty trust store", AttestationTrust::default()),
    ];
    for (file, _, _) in VECTORS {
        let v = vector(file);
        for (name, trust) in &stores {
            assert_eq!(
                verify_registration(&v.rp, trust, &v.challenge, &v.response),
                Err(WebauthnError::AttestationUntrusted),
                "{file} with {name}"
            );
        }
    }
}

#[test]
fn tampered_real_registrations_are_refused() {
    let trust = trust_of(&bundle_pem());
    let v = vector("yubikey-5-nfc-packed.json");

    // Another challenge: a replayed registration.
    let mut other = v.challenge;
    other[0] ^= 1;
    assert_eq!(
        verify_registration(&v.rp, &trust, &other, &v.response),
        Err(WebauthnError::ChallengeMismatch)
    );

    // Another relying party that serves the same origin.
    let parent = RelyingParty::new(
        "yubico.com",
        "Yubico",
        &["https://demo.yubico.com"],
        UserVerification::Preferred,
    )
    .unwrap();
    assert_eq!(
        verify_registration(&parent, &trust, &v.challenge, &v.response),
        Err(WebauthnError::RpIdMismatch)
    );

    // The real statement replayed for another credential: authData with
    // a different credential id (and id/rawId to match).
    let mut response = v.response.clone();
    let mut map = attestation_object(&response);
    let auth_data = member(&mut map, "authData");
    let mut bytes = auth_data.as_bytes().unwrap().clone();
    bytes[55] ^= 0xff; // first byte of the credential id
    let new_id = b64url_encode(&bytes[55..55 + 64]);
    *auth_data = Value::Bytes(bytes);
    set_attestation_object(&mut response, map);
    response.id = new_id.clone();
    response.raw_id = new_id;
    assert_eq!(
        verify_registration(&v.rp, &trust, &v.challenge, &response),
        Err(WebauthnError::AttestationSignatureInvalid)
    );

    // A real, publicly known YubiKey attestation certificate stapled onto
    // the statement: its key did not sign it.
    let mut response = v.response.clone();
    let mut map = attestation_object(&response);
    let leaf_pem = std::fs::read_to_string(vectors_dir().join(LEAF_5_7_1)).unwrap();
    let leaf = Certificate::load_pem_chain(leaf_pem.as_bytes()).unwrap();
    let stmt = member(&mut map, "attStmt").as_map_mut().unwrap();
    stmt.iter_mut()
        .find(|(k, _)| k.as_text() == Some("x5c"))
        .unwrap()
        .1 = Value::Array(vec![Value::Bytes(leaf[0].to_der().unwrap())]);
    set_attestation_object(&mut response, map);
    assert_eq!(
        verify_registration(&v.rp, &trust, &v.challenge, &response),
        Err(WebauthnError::AttestationSignatureInvalid)
    );
}

#[test]
fn openssl_agrees_every_bundle_certificate_chains_to_a_bundled_root() {
    let bundle = bundle_pem();
    for cert in bundle_certs() {
        let (ok, said) = openssl_verify(&bundle, &pem_of(&cert));
        assert!(ok, "{}: {said}", common_name(&cert));
    }
    // The FIDO intermediates need Attestation Root 1 above them.
    let without_root = bundle_without(&[
        "Yubico Attestation Root 1",
        "Yubico Attestation Intermediate A 1",
        "Yubico Attestation Intermediate B 1",
    ]);
    for cert in bundle_certs() {
        if common_name(&cert).starts_with("Yubico FIDO Attestation") {
            let (ok, said) = openssl_verify(&without_root, &pem_of(&cert));
            assert!(!ok, "{}: {said}", common_name(&cert));
        }
    }
}

#[test]
fn openssl_agrees_real_yubikey_attestation_certificates_chain_to_the_bundle() {
    let bundle = bundle_pem();
    let piv_root = std::fs::read_to_string(
        workspace().join("ca/attest/roots/yubico-piv-root-ca-serial-263751.pem"),
    )
    .unwrap();

    // The vectors' attestation certificates (Yubico U2F Root CA).
    for (file, _, _) in VECTORS {
        let leaf = x5c_leaf_pem(&vector(file).response);
        let (ok, said) = openssl_verify(&bundle, &leaf);
        assert!(ok, "{file}: {said}");
        let without = bundle_without(&["Yubico U2F Root CA Serial 457200631"]);
        let (ok, said) = openssl_verify(&without, &leaf);
        assert!(!ok, "{file} without its root: {said}");
        let (ok, said) = openssl_verify(&piv_root, &leaf);
        assert!(!ok, "{file} under the PIV root: {said}");
    }

    // A firmware 5.7.1 key's certificate (Yubico FIDO Root CA Serial
    // 450203556): the crate cannot be shown it without a statement that
    // key signed, so OpenSSL alone checks it chains to the bundle.
    let leaf = std::fs::read_to_string(vectors_dir().join(LEAF_5_7_1)).unwrap();
    let (ok, said) = openssl_verify(&bundle, &leaf);
    assert!(ok, "5.7.1 leaf: {said}");
    let without = bundle_without(&["Yubico FIDO Root CA Serial 450203556"]);
    let (ok, said) = openssl_verify(&without, &leaf);
    assert!(!ok, "5.7.1 leaf without its root: {said}");
    let (ok, said) = openssl_verify(&piv_root, &leaf);
    assert!(!ok, "5.7.1 leaf under the PIV root: {said}");
}
