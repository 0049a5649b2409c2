//! The bad-input catalogue: every refusal, each made by changing one
//! thing in a good registration or assertion, and the attacks they stand
//! for (replay, phishing origin, cloned key, forged attestation).

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ciborium::Value;
use common::*;
use signet_webauthn::wire::{AssertionResponse, RegistrationResponse};
use signet_webauthn::{
    spki_sha256_of_certificate, verify_assertion, verify_registration, AttestationTrust,
    CredentialId, StoredCredential, UserVerification, WebauthnError,
};

const CHAL: [u8; 32] = [7; 32];

fn preferred() -> signet_webauthn::RelyingParty {
    rp(UserVerification::Preferred)
}

fn register(
    reg: &Registration,
    trust: &AttestationTrust,
) -> Result<StoredCredential, WebauthnError> {
    verify_registration(&preferred(), trust, &CHAL, &reg.response())
}

/// A registered credential and its private key.
fn enrolled() -> (StoredCredential, p256::ecdsa::SigningKey) {
    let vendor = Vendor::new();
    let reg = Registration::packed(&vendor, &CHAL);
    let cred = register(&reg, &vendor.trust()).unwrap();
    (cred, reg.cred_key)
}

fn assert_with(
    cred: &StoredCredential,
    response: &AssertionResponse,
    require_uv: bool,
) -> Result<signet_webauthn::VerifiedAssertion, WebauthnError> {
    verify_assertion(&preferred(), &CHAL, cred, response, require_uv)
}

// ------------------------------------------------------------ registration

#[test]
fn good_packed_registration_is_stored_as_attested() {
    let vendor = Vendor::new();
    let reg = Registration::packed(&vendor, &CHAL);
    let cred = register(&reg, &vendor.trust()).unwrap();
    assert_eq!(cred.id, CredentialId(reg.cred_id.clone()));
    assert_eq!(cred.public_key_cose, reg.cose);
    assert_eq!(cred.algorithm, -7);
    assert_eq!(cred.sign_count, 1);
    assert_eq!(cred.aaguid, AAGUID);
    assert_eq!(cred.attestation_format, "packed");
    assert!(cred.user_verified_at_registration);
}

#[test]
fn registration_client_data_is_checked() {
    let vendor = Vendor::new();
    let trust = vendor.trust();
    let cases: [(&str, Vec<u8>, WebauthnError); 5] = [
        (
            "challenge of another request",
            client_data("webauthn.create", &[8; 32], ORIGIN),
            WebauthnError::ChallengeMismatch,
        ),
        (
            "short challenge",
            client_data("webauthn.create", &[7; 16], ORIGIN),
            WebauthnError::ChallengeMismatch,
        ),
        (
            "phishing origin",
            client_data("webauthn.create", &CHAL, "https://signet.example.com.evil.test"),
            WebauthnError::OriginNotAllowed("\"https://signet.example.com.evil.test\"".into()),
        ),
        (
            "assertion client data",
            client_data("webauthn.get", &CHAL, ORIGIN),
            WebauthnError::WrongCeremonyType {
                expected: "webauthn.create",
            },
        ),
        (
            "cross-origin frame",
            format!(
                r#"{{"type":"webauthn.create","challenge":"{}","origin":"{ORIGIN}","crossOrigin":true}}"#,
                b64(&CHAL)
            )
            .into_bytes(),
            WebauthnError::CrossOrigin,
        ),
    ];
    for (what, cd, want) in cases {
        let mut reg = Registration::packed(&vendor, &CHAL);
        reg.client_data = cd;
        assert_eq!(register(&reg, &trust), Err(want), "{what}");
    }
    // Extra members and a tokenBinding are ignored, as the spec asks.
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.client_data = format!(
        r#"{{"type":"webauthn.create","challenge":"{}","origin":"{ORIGIN}","tokenBinding":{{"status":"present","id":"AA"}},"other_keys_can_be_added_here":"x"}}"#,
        b64(&CHAL)
    )
    .into_bytes();
    register(&reg, &trust).unwrap();
}

#[test]
fn registration_authenticator_data_is_checked() {
    let vendor = Vendor::new();
    let trust = vendor.trust();
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.rp_id = "evil.test".into();
    assert_eq!(register(&reg, &trust), Err(WebauthnError::RpIdMismatch));

    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.flags &= !UP;
    assert_eq!(register(&reg, &trust), Err(WebauthnError::UserNotPresent));

    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.flags &= !UV;
    register(&reg, &trust).unwrap();
    assert_eq!(
        verify_registration(
            &rp(UserVerification::Required),
            &trust,
            &CHAL,
            &reg.response()
        ),
        Err(WebauthnError::UserNotVerified)
    );

    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.flags &= !AT;
    assert_eq!(
        register(&reg, &trust),
        Err(WebauthnError::AttestedCredentialDataMissing)
    );

    // Backup state without backup eligibility contradicts itself.
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.flags |= 0x10;
    assert!(matches!(
        register(&reg, &trust),
        Err(WebauthnError::InvalidAuthenticatorData(_))
    ));

    // Extension data: a CBOR map is accepted, anything else is not, nor
    // bytes the flags do not announce.
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.flags |= ED;
    reg.trailer = cbor(&Value::Map(vec![("credProtect".into(), 2.into())]));
    register(&reg, &trust).unwrap();
    reg.trailer = cbor(&Value::Integer(5.into()));
    assert!(matches!(
        register(&reg, &trust),
        Err(WebauthnError::InvalidAuthenticatorData(_))
    ));
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.trailer = vec![0xa0];
    assert!(matches!(
        register(&reg, &trust),
        Err(WebauthnError::InvalidAuthenticatorData(_))
    ));
}

#[test]
fn registration_credential_is_checked() {
    let vendor = Vendor::new();
    let trust = vendor.trust();
    let reg = Registration::packed(&vendor, &CHAL);

    let mut response = reg.response();
    response.type_ = "password".into();
    assert_eq!(
        verify_registration(&preferred(), &trust, &CHAL, &response),
        Err(WebauthnError::WrongCredentialType)
    );

    let mut response = reg.response();
    response.id = b64(b"another id");
    assert_eq!(
        verify_registration(&preferred(), &trust, &CHAL, &response),
        Err(WebauthnError::CredentialIdMismatch)
    );

    // rawId/id agree with each other but not with the authenticator data.
    let mut response = reg.response();
    response.id = b64(b"another id");
    response.raw_id = b64(b"another id");
    assert_eq!(
        verify_registration(&preferred(), &trust, &CHAL, &response),
        Err(WebauthnError::CredentialIdMismatch)
    );

    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.cred_id = vec![1; 1024];
    assert_eq!(
        register(&reg, &trust),
        Err(WebauthnError::CredentialIdTooLong)
    );
    reg.cred_id = vec![1; 1023];
    register(&reg, &trust).unwrap();

    // A key type that was not offered (ES384).
    let mut reg = Registration::packed(&vendor, &CHAL);
    let p384 = p384::ecdsa::SigningKey::from_slice(&[3; 48]).unwrap();
    let point = p384.verifying_key().to_sec1_point(false);
    reg.cose = cbor(&Value::Map(vec![
        (1.into(), 2.into()),
        (3.into(), (-35).into()),
        ((-1).into(), 2.into()),
        ((-2).into(), Value::Bytes(point.as_bytes()[1..49].to_vec())),
        ((-3).into(), Value::Bytes(point.as_bytes()[49..].to_vec())),
    ]));
    assert_eq!(
        register(&reg, &trust),
        Err(WebauthnError::AlgorithmNotAllowed(-35))
    );

    // An Ed25519 credential is offered and accepted.
    let mut reg = Registration::packed(&vendor, &CHAL);
    let ed = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    reg.cose = cose_ed25519(&ed);
    assert_eq!(register(&reg, &trust).unwrap().algorithm, -8);
}

#[test]
fn malformed_cose_keys_are_refused() {
    let vendor = Vendor::new();
    let trust = vendor.trust();
    let good = Registration::packed(&vendor, &CHAL);
    let x = &good.cose;
    let mut not_on_curve = Value::Map(vec![
        (1.into(), 2.into()),
        (3.into(), (-7).into()),
        ((-1).into(), 1.into()),
        ((-2).into(), Value::Bytes(vec![1; 32])),
        ((-3).into(), Value::Bytes(vec![2; 32])),
    ]);
    let mut cases = vec![
        ("not on the curve", cbor(&not_on_curve)),
        ("truncated", x[..x.len() - 3].to_vec()),
        ("not a map", cbor(&Value::Array(vec![1.into()]))),
        ("garbage", vec![0xff, 0xff]),
    ];
    if let Value::Map(m) = &mut not_on_curve {
        m[4].1 = Value::Bytes(vec![2; 31]);
    }
    cases.push(("short coordinate", cbor(&not_on_curve)));
    if let Value::Map(m) = &mut not_on_curve {
        m.push((3.into(), (-7).into()));
    }
    cases.push(("duplicate label", cbor(&not_on_curve)));
    let mut wrong_curve = Value::Map(vec![
        (1.into(), 2.into()),
        (3.into(), (-7).into()),
        ((-1).into(), 2.into()),
    ]);
    cases.push(("ES256 on P-384", cbor(&wrong_curve)));
    if let Value::Map(m) = &mut wrong_curve {
        m[0].1 = 9.into();
    }
    cases.push(("unknown key type", cbor(&wrong_curve)));
    for (what, cose) in cases {
        let mut reg = Registration::packed(&vendor, &CHAL);
        reg.cose = cose;
        let got = register(&reg, &trust);
        assert!(
            matches!(
                got,
                Err(WebauthnError::InvalidCoseKey | WebauthnError::InvalidAuthenticatorData(_))
            ),
            "{what}: {got:?}"
        );
    }
}

#[test]
fn attestation_must_reach_a_configured_root() {
    let vendor = Vendor::new();
    let reg = Registration::packed(&vendor, &CHAL);
    assert_eq!(
        register(&reg, &Vendor::new().trust()),
        Err(WebauthnError::AttestationUntrusted)
    );
    assert_eq!(
        register(&reg, &AttestationTrust::default()),
        Err(WebauthnError::AttestationUntrusted)
    );
    // A root given as PEM works the same as DER.
    let pem = der::EncodePem::to_pem(
        &<x509_cert::Certificate as der::Decode>::from_der(&vendor.root_der).unwrap(),
        der::pem::LineEnding::LF,
    )
    .unwrap();
    let trust = AttestationTrust::from_config(&[&pem], &[], false).unwrap();
    register(&reg, &trust).unwrap();

    // A forged statement: a good chain, the signature by another key.
    let mut forged = Registration::packed(&vendor, &CHAL);
    forged.attestation = Some((p256_key(), vec![vendor.leaf_der.clone()]));
    assert_eq!(
        register(&forged, &vendor.trust()),
        Err(WebauthnError::AttestationSignatureInvalid)
    );
    let mut broken = Registration::packed(&vendor, &CHAL);
    broken.bad_signature = true;
    assert_eq!(
        register(&broken, &vendor.trust()),
        Err(WebauthnError::AttestationSignatureInvalid)
    );

    // A leaf issued by an impostor using the root's name is not the root's.
    let impostor = p256_key();
    let leaf_key = p256_key();
    let leaf = certificate(
        LEAF_NAME,
        ROOT_NAME,
        &leaf_key,
        &impostor,
        vec![basic_constraints(false), aaguid_ext(&AAGUID)],
    );
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.attestation = Some((leaf_key, vec![leaf]));
    assert_eq!(
        register(&reg, &vendor.trust()),
        Err(WebauthnError::AttestationUntrusted)
    );
}

#[test]
fn attestation_through_an_intermediate() {
    let vendor = Vendor::new();
    let mid_name = "CN=Forge Intermediate,O=Signet Tests,C=US";
    let mid_key = p256_key();
    let leaf_key = p256_key();
    let leaf = certificate(
        LEAF_NAME,
        mid_name,
        &leaf_key,
        &mid_key,
        vec![basic_constraints(false), aaguid_ext(&AAGUID)],
    );
    for (mid_is_ca, ok) in [(true, true), (false, false)] {
        let mid = certificate(
            mid_name,
            ROOT_NAME,
            &mid_key,
            &vendor.root_key,
            vec![basic_constraints(mid_is_ca)],
        );
        let mut reg = Registration::packed(&vendor, &CHAL);
        reg.attestation = Some((leaf_key.clone(), vec![leaf.clone(), mid.clone()]));
        let got = register(&reg, &vendor.trust());
        if ok {
            got.unwrap();
        } else {
            assert_eq!(
                got,
                Err(WebauthnError::AttestationUntrusted),
                "non-CA intermediate"
            );
        }
    }
    // Without the intermediate the leaf does not reach the root.
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.attestation = Some((leaf_key, vec![leaf]));
    assert_eq!(
        register(&reg, &vendor.trust()),
        Err(WebauthnError::AttestationUntrusted)
    );
}

#[test]
fn packed_leaf_requirements() {
    let cases: [(&str, Vec<x509_cert::ext::Extension>, &str); 5] = [
        (
            "a CA certificate",
            vec![basic_constraints(true), aaguid_ext(&AAGUID)],
            LEAF_NAME,
        ),
        (
            "another model's AAGUID",
            vec![basic_constraints(false), aaguid_ext(&[1; 16])],
            LEAF_NAME,
        ),
        (
            "OU is not Authenticator Attestation",
            vec![basic_constraints(false)],
            "CN=Forge,OU=Something Else,O=Signet Tests,C=US",
        ),
        (
            "no country",
            vec![basic_constraints(false)],
            "CN=Forge,OU=Authenticator Attestation,O=Signet Tests",
        ),
        (
            "unknown critical extension",
            vec![
                basic_constraints(false),
                ext(
                    const_oid::ObjectIdentifier::new_unwrap("1.2.3.4.5"),
                    true,
                    vec![5, 0],
                ),
            ],
            LEAF_NAME,
        ),
    ];
    for (what, extensions, name) in cases {
        let vendor = Vendor::with_leaf(extensions, name);
        let reg = Registration::packed(&vendor, &CHAL);
        assert!(
            matches!(
                register(&reg, &vendor.trust()),
                Err(WebauthnError::AttestationCertificateInvalid(_))
            ),
            "{what}"
        );
    }
    // Without the (optional) AAGUID extension the leaf is fine.
    let vendor = Vendor::with_leaf(vec![basic_constraints(false)], LEAF_NAME);
    register(&Registration::packed(&vendor, &CHAL), &vendor.trust()).unwrap();
}

#[test]
fn self_attestation_and_none_only_with_the_opt_in() {
    let vendor = Vendor::new();
    let mut allow = AttestationTrust::default();
    allow.set_allow_none(true);

    let mut selfie = Registration::packed(&vendor, &CHAL);
    selfie.attestation = None;
    assert_eq!(
        register(&selfie, &vendor.trust()),
        Err(WebauthnError::AttestationNotProvided("self attestation"))
    );
    assert_eq!(
        register(&selfie, &allow).unwrap().attestation_format,
        "packed"
    );
    selfie.bad_signature = true;
    assert_eq!(
        register(&selfie, &allow),
        Err(WebauthnError::AttestationSignatureInvalid)
    );

    let mut none = Registration::packed(&vendor, &CHAL);
    none.fmt = "none".into();
    none.aaguid = [0; 16];
    assert_eq!(
        register(&none, &vendor.trust()),
        Err(WebauthnError::AttestationNotProvided(
            "attestation \"none\""
        ))
    );
    let cred = register(&none, &allow).unwrap();
    assert_eq!(cred.attestation_format, "none");
    assert_eq!(cred.aaguid, [0; 16]);

    // "none" with a statement is malformed.
    let object = attestation_object(
        "none",
        Value::Map(vec![("sig".into(), Value::Bytes(vec![1]))]),
        &none.auth_data(),
    );
    let response = registration(&none.cred_id, &none.client_data, &object);
    assert!(matches!(
        verify_registration(&preferred(), &allow, &CHAL, &response),
        Err(WebauthnError::InvalidCbor { .. })
    ));
}

#[test]
fn chromium_style_batch_certificate_needs_its_key_pinned() {
    // Chromium's virtual authenticator: a self-signed "Batch Certificate"
    // over one fixed key, regenerated on every registration.
    let vendor = Vendor::new();
    let batch_key = p256_key();
    let batch = || {
        certificate(
            CHROMIUM_NAME,
            CHROMIUM_NAME,
            &batch_key,
            &batch_key,
            vec![basic_constraints(false)],
        )
    };
    let first = batch();
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.attestation = Some((batch_key.clone(), vec![first.clone()]));
    assert_eq!(
        register(&reg, &vendor.trust()),
        Err(WebauthnError::AttestationUntrusted)
    );
    let pin = spki_sha256_of_certificate(&first).unwrap();
    let trust = AttestationTrust::from_config(&[], &[&hex::encode(pin)], false).unwrap();
    register(&reg, &trust).unwrap();
    // The next registration's certificate is new, the key the same.
    let second = batch();
    assert_ne!(first, second);
    reg.attestation = Some((batch_key, vec![second]));
    register(&reg, &trust).unwrap();
    // Another key under the same names is not pinned.
    let other = p256_key();
    reg.attestation = Some((
        other.clone(),
        vec![certificate(
            CHROMIUM_NAME,
            CHROMIUM_NAME,
            &other,
            &other,
            vec![basic_constraints(false)],
        )],
    ));
    assert_eq!(
        register(&reg, &trust),
        Err(WebauthnError::AttestationUntrusted)
    );
}

#[test]
fn fido_u2f_attestation() {
    let vendor = Vendor::new();
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.fmt = "fido-u2f".into();
    reg.aaguid = [0; 16];
    reg.flags = UP | AT;
    let cred = register(&reg, &vendor.trust()).unwrap();
    assert_eq!(cred.attestation_format, "fido-u2f");
    assert_eq!(
        register(&reg, &Vendor::new().trust()),
        Err(WebauthnError::AttestationUntrusted)
    );
    reg.bad_signature = true;
    assert_eq!(
        register(&reg, &vendor.trust()),
        Err(WebauthnError::AttestationSignatureInvalid)
    );
}

#[test]
fn unsupported_formats_are_named() {
    let vendor = Vendor::new();
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.fmt = "tpm".into();
    assert_eq!(
        register(&reg, &vendor.trust()),
        Err(WebauthnError::UnsupportedAttestationFormat("tpm".into()))
    );
}

#[test]
fn malformed_encodings_are_errors() {
    let vendor = Vendor::new();
    let trust = vendor.trust();
    let reg = Registration::packed(&vendor, &CHAL);
    let check = |what: &str, response: RegistrationResponse, ok: fn(&WebauthnError) -> bool| {
        let got = verify_registration(&preferred(), &trust, &CHAL, &response);
        assert!(matches!(&got, Err(e) if ok(e)), "{what}: {got:?}");
    };
    let mut r = reg.response();
    r.response.client_data_json = "not base64!".into();
    check("clientDataJSON base64", r, |e| {
        *e == WebauthnError::InvalidBase64 {
            field: "clientDataJSON",
        }
    });
    let mut r = reg.response();
    r.response.attestation_object.push_str("=x");
    check("attestationObject base64", r, |e| {
        matches!(e, WebauthnError::InvalidBase64 { .. })
    });
    let mut r = reg.response();
    r.raw_id = "a+b/".into();
    check("standard alphabet", r, |e| {
        matches!(e, WebauthnError::InvalidBase64 { .. })
    });
    let mut r = reg.response();
    r.response.client_data_json = b64(b"{\"type\":");
    check("clientDataJSON JSON", r, |e| {
        *e == WebauthnError::InvalidClientData
    });
    let mut r = reg.response();
    r.response.client_data_json = b64(
        format!(
            r#"{{"type":"webauthn.create","type":"webauthn.get","challenge":"{}","origin":"{ORIGIN}"}}"#,
            b64(&CHAL)
        )
        .as_bytes(),
    );
    check("duplicate member", r, |e| {
        *e == WebauthnError::InvalidClientData
    });
    let mut r = reg.response();
    r.response.client_data_json = b64(format!(
        r#"{{"type":"webauthn.create","challenge":"{}!","origin":"{ORIGIN}"}}"#,
        b64(&CHAL)
    )
    .as_bytes());
    check("challenge base64", r, |e| {
        matches!(e, WebauthnError::InvalidBase64 { .. })
    });

    let object = reg.object();
    for (what, bytes) in [
        ("truncated CBOR", object[..object.len() / 2].to_vec()),
        ("trailing bytes", [object.clone(), vec![0]].concat()),
        ("not a map", cbor(&Value::Array(vec![]))),
        ("empty", vec![]),
        (
            "authData not bytes",
            cbor(&Value::Map(vec![
                ("fmt".into(), "packed".into()),
                ("attStmt".into(), Value::Map(vec![])),
                ("authData".into(), "text".into()),
            ])),
        ),
        (
            "extra member",
            cbor(&Value::Map(vec![
                ("fmt".into(), "none".into()),
                ("attStmt".into(), Value::Map(vec![])),
                ("authData".into(), Value::Bytes(reg.auth_data())),
                ("x".into(), 1.into()),
            ])),
        ),
        ("deep nesting", {
            let mut v = Value::Null;
            for _ in 0..200 {
                v = Value::Array(vec![v]);
            }
            cbor(&v)
        }),
        ("indefinite garbage", vec![0x9f; 64]),
    ] {
        let r = registration(&reg.cred_id, &reg.client_data, &bytes);
        check(what, r, |e| matches!(e, WebauthnError::InvalidCbor { .. }));
    }
    // Statement members of the wrong type.
    let bad_stmt = attestation_object(
        "packed",
        Value::Map(vec![
            ("alg".into(), "ES256".into()),
            ("sig".into(), Value::Bytes(vec![1])),
        ]),
        &reg.auth_data(),
    );
    check(
        "statement",
        registration(&reg.cred_id, &reg.client_data, &bad_stmt),
        |e| matches!(e, WebauthnError::InvalidCbor { .. }),
    );
    let bad_cert = attestation_object(
        "packed",
        Value::Map(vec![
            ("alg".into(), (-7).into()),
            ("sig".into(), Value::Bytes(vec![1])),
            (
                "x5c".into(),
                Value::Array(vec![Value::Bytes(vec![0x30, 0x03, 1, 2, 3])]),
            ),
        ]),
        &reg.auth_data(),
    );
    check(
        "DER",
        registration(&reg.cred_id, &reg.client_data, &bad_cert),
        |e| matches!(e, WebauthnError::AttestationCertificateInvalid(_)),
    );
    // Truncated authenticator data.
    let short = attestation_object("none", Value::Map(vec![]), &reg.auth_data()[..36]);
    check(
        "short authData",
        registration(&reg.cred_id, &reg.client_data, &short),
        |e| matches!(e, WebauthnError::InvalidAuthenticatorData(_)),
    );
    let cut = attestation_object("none", Value::Map(vec![]), &reg.auth_data()[..60]);
    check(
        "truncated attested data",
        registration(&reg.cred_id, &reg.client_data, &cut),
        |e| matches!(e, WebauthnError::InvalidAuthenticatorData(_)),
    );
}

#[test]
fn oversized_fields_are_refused_before_decoding() {
    let vendor = Vendor::new();
    let trust = vendor.trust();
    let reg = Registration::packed(&vendor, &CHAL);
    let too_large = |field: &'static str, max: usize| WebauthnError::FieldTooLarge { field, max };

    let mut r = reg.response();
    r.response.client_data_json = b64(&vec![b' '; 4097]);
    assert_eq!(
        verify_registration(&preferred(), &trust, &CHAL, &r),
        Err(too_large("clientDataJSON", 4096))
    );
    // A JSON with padding up to the limit is still read.
    let mut padded = reg.client_data.clone();
    padded.truncate(padded.len() - 1);
    padded.extend(std::iter::repeat_n(b' ', 4095 - padded.len()));
    padded.push(b'}');
    let mut ok = Registration::packed(&vendor, &CHAL);
    ok.client_data = padded;
    register(&ok, &trust).unwrap();

    let mut r = reg.response();
    r.response.attestation_object = b64(&vec![0; 16 * 1024 + 1]);
    assert_eq!(
        verify_registration(&preferred(), &trust, &CHAL, &r),
        Err(too_large("attestationObject", 16 * 1024))
    );
    let mut r = reg.response();
    r.response.attestation_object = "A".repeat(10_000_000);
    assert_eq!(
        verify_registration(&preferred(), &trust, &CHAL, &r),
        Err(too_large("attestationObject", 16 * 1024))
    );

    // Authenticator data over 4 KiB inside an attestation object that fits.
    let mut big = Registration::packed(&vendor, &CHAL);
    big.flags |= ED;
    big.trailer = cbor(&Value::Map(vec![("x".into(), Value::Bytes(vec![0; 5000]))]));
    assert_eq!(
        register(&big, &trust),
        Err(too_large("authenticator data", 4096))
    );

    // A chain longer than any real one.
    let mut long = Registration::packed(&vendor, &CHAL);
    long.attestation = Some((vendor.leaf_key.clone(), vec![vendor.leaf_der.clone(); 6]));
    assert!(matches!(
        register(&long, &trust),
        Err(WebauthnError::AttestationCertificateInvalid(_))
    ));
}

// --------------------------------------------------------------- assertion

#[test]
fn good_assertion() {
    let (cred, key) = enrolled();
    let got = assert_with(
        &cred,
        &Assertion::new(&cred.id.0, &CHAL, 2).signed_by(&key),
        true,
    )
    .unwrap();
    assert_eq!(got.sign_count, 2);
    assert!(got.user_verified);
}

#[test]
fn assertion_client_data_is_checked() {
    let (cred, key) = enrolled();
    for (cd, want) in [
        (
            client_data("webauthn.get", &[8; 32], ORIGIN),
            WebauthnError::ChallengeMismatch,
        ),
        (
            client_data("webauthn.get", &CHAL, "https://evil.test"),
            WebauthnError::OriginNotAllowed("\"https://evil.test\"".into()),
        ),
        (
            client_data("webauthn.create", &CHAL, ORIGIN),
            WebauthnError::WrongCeremonyType {
                expected: "webauthn.get",
            },
        ),
    ] {
        let mut a = Assertion::new(&cred.id.0, &CHAL, 2);
        a.client_data = cd;
        assert_eq!(assert_with(&cred, &a.signed_by(&key), false), Err(want));
    }
}

#[test]
fn assertion_authenticator_data_is_checked() {
    let (cred, key) = enrolled();
    let mut a = Assertion::new(&cred.id.0, &CHAL, 2);
    a.rp_id = "evil.test".into();
    assert_eq!(
        assert_with(&cred, &a.signed_by(&key), false),
        Err(WebauthnError::RpIdMismatch)
    );

    let mut a = Assertion::new(&cred.id.0, &CHAL, 2);
    a.flags = UV;
    assert_eq!(
        assert_with(&cred, &a.signed_by(&key), false),
        Err(WebauthnError::UserNotPresent)
    );

    let mut a = Assertion::new(&cred.id.0, &CHAL, 2);
    a.flags = UP;
    assert_eq!(
        assert_with(&cred, &a.signed_by(&key), true),
        Err(WebauthnError::UserNotVerified)
    );
    assert!(
        !assert_with(&cred, &a.signed_by(&key), false)
            .unwrap()
            .user_verified
    );
    // A relying party that requires UV requires it even if the caller forgets.
    assert_eq!(
        verify_assertion(
            &rp(UserVerification::Required),
            &CHAL,
            &cred,
            &a.signed_by(&key),
            false
        ),
        Err(WebauthnError::UserNotVerified)
    );

    let mut a = Assertion::new(&cred.id.0, &CHAL, 2);
    a.flags |= AT;
    a.trailer = attested(&AAGUID, &cred.id.0, &cred.public_key_cose);
    assert!(matches!(
        assert_with(&cred, &a.signed_by(&key), false),
        Err(WebauthnError::InvalidAuthenticatorData(_))
    ));
}

#[test]
fn signature_counter() {
    let (mut cred, key) = enrolled();
    cred.sign_count = 10;
    let at = |n: u32| {
        assert_with(
            &cred,
            &Assertion::new(&cred.id.0, &CHAL, n).signed_by(&key),
            false,
        )
    };
    assert_eq!(at(11).unwrap().sign_count, 11);
    assert_eq!(
        at(10),
        Err(WebauthnError::CounterRegression {
            stored: 10,
            received: 10
        })
    );
    assert_eq!(
        at(3),
        Err(WebauthnError::CounterRegression {
            stored: 10,
            received: 3
        })
    );
    // A key that had a counter cannot drop it.
    assert_eq!(
        at(0),
        Err(WebauthnError::CounterRegression {
            stored: 10,
            received: 0
        })
    );
    // A key without a counter (always 0) is accepted.
    cred.sign_count = 0;
    let zero = assert_with(
        &cred,
        &Assertion::new(&cred.id.0, &CHAL, 0).signed_by(&key),
        false,
    );
    assert_eq!(zero.unwrap().sign_count, 0);
    // The message names the clone risk.
    let msg = WebauthnError::CounterRegression {
        stored: 10,
        received: 3,
    }
    .to_string();
    assert!(msg.contains("cloned"), "{msg}");
}

#[test]
fn signatures_are_checked_before_the_counter() {
    let (mut cred, key) = enrolled();
    cred.sign_count = 10;
    // An attacker without the key cannot make the CA report a clone.
    let forged = Assertion::new(&cred.id.0, &CHAL, 1).signed_by(&p256_key());
    assert_eq!(
        assert_with(&cred, &forged, false),
        Err(WebauthnError::SignatureInvalid)
    );

    // A good signature, and the UV flag set after signing: a client
    // cannot upgrade a touch-only assertion to a verified one.
    let mut touch_only = Assertion::new(&cred.id.0, &CHAL, 11);
    touch_only.flags = UP;
    let response = touch_only.signed_by(&key);
    assert!(!assert_with(&cred, &response, false).unwrap().user_verified);
    let mut flipped = response.clone();
    flipped.response.authenticator_data = b64(&{
        let mut d = touch_only.auth_data();
        d[32] |= UV;
        d
    });
    assert_eq!(
        assert_with(&cred, &flipped, true),
        Err(WebauthnError::SignatureInvalid)
    );

    // A signature that is not DER at all.
    let mut junk = response.clone();
    junk.response.signature = b64(b"not a signature");
    assert_eq!(
        assert_with(&cred, &junk, false),
        Err(WebauthnError::SignatureInvalid)
    );
}

#[test]
fn another_credential_is_refused() {
    let (cred, _) = enrolled();
    let (other, other_key) = {
        let vendor = Vendor::new();
        let mut reg = Registration::packed(&vendor, &CHAL);
        reg.cred_id = vec![0xd2; 48];
        (register(&reg, &vendor.trust()).unwrap(), reg.cred_key)
    };
    // Alice's stored credential, Mallory's assertion with her own key.
    let response = Assertion::new(&other.id.0, &CHAL, 5).signed_by(&other_key);
    assert_eq!(
        assert_with(&cred, &response, false),
        Err(WebauthnError::CredentialMismatch)
    );
    // The right id, the wrong key.
    let response = Assertion::new(&cred.id.0, &CHAL, 5).signed_by(&other_key);
    assert_eq!(
        assert_with(&cred, &response, false),
        Err(WebauthnError::SignatureInvalid)
    );
}

#[test]
fn eddsa_credential_asserts() {
    use ed25519_dalek::Signer;
    let vendor = Vendor::new();
    let ed = ed25519_dalek::SigningKey::from_bytes(&[11; 32]);
    let mut reg = Registration::packed(&vendor, &CHAL);
    reg.cose = cose_ed25519(&ed);
    let cred = register(&reg, &vendor.trust()).unwrap();
    let a = Assertion::new(&cred.id.0, &CHAL, 2);
    let auth = a.auth_data();
    let mut signed = auth.clone();
    signed.extend_from_slice(&<sha2::Sha256 as sha2::Digest>::digest(&a.client_data));
    let sig = ed.sign(&signed).to_bytes();
    let response = assertion(&cred.id.0, &a.client_data, &auth, &sig);
    assert_eq!(assert_with(&cred, &response, false).unwrap().sign_count, 2);
    let mut bad = sig;
    bad[0] ^= 1;
    let response = assertion(&cred.id.0, &a.client_data, &auth, &bad);
    assert_eq!(
        assert_with(&cred, &response, false),
        Err(WebauthnError::SignatureInvalid)
    );
}

#[test]
fn assertion_encodings_and_sizes() {
    let (cred, key) = enrolled();
    let good = Assertion::new(&cred.id.0, &CHAL, 2).signed_by(&key);

    let mut r = good.clone();
    r.response.signature = "***".into();
    assert_eq!(
        assert_with(&cred, &r, false),
        Err(WebauthnError::InvalidBase64 { field: "signature" })
    );
    let mut r = good.clone();
    r.response.signature = b64(&[0; 1025]);
    assert_eq!(
        assert_with(&cred, &r, false),
        Err(WebauthnError::FieldTooLarge {
            field: "signature",
            max: 1024
        })
    );
    let mut r = good.clone();
    r.response.authenticator_data = b64(&[0; 4097]);
    assert_eq!(
        assert_with(&cred, &r, false),
        Err(WebauthnError::FieldTooLarge {
            field: "authenticatorData",
            max: 4096
        })
    );
    let mut r = good.clone();
    r.response.user_handle = Some(b64(&[0; 65]));
    assert_eq!(
        assert_with(&cred, &r, false),
        Err(WebauthnError::FieldTooLarge {
            field: "userHandle",
            max: 64
        })
    );
    let mut r = good.clone();
    r.raw_id = b64(&[1; 2000]);
    assert_eq!(
        assert_with(&cred, &r, false),
        Err(WebauthnError::CredentialIdTooLong)
    );

    // A stored credential whose key is damaged is an error, not a panic.
    let mut broken = cred.clone();
    broken.public_key_cose.truncate(10);
    assert_eq!(
        assert_with(&broken, &good, false),
        Err(WebauthnError::InvalidCoseKey)
    );

    // Padded base64url is read too.
    let mut r = good.clone();
    r.response.signature = pad(&r.response.signature);
    r.response.client_data_json = pad(&r.response.client_data_json);
    assert_eq!(assert_with(&cred, &r, false).unwrap().sign_count, 2);
}

fn pad(text: &str) -> String {
    let mut t = text.to_string();
    while !t.len().is_multiple_of(4) {
        t.push('=');
    }
    t
}

// ------------------------------------------------------------------ JSON

#[test]
fn browser_json_is_read_and_unknown_fields_are_not() {
    let (cred, key) = enrolled();
    let a = Assertion::new(&cred.id.0, &CHAL, 2);
    let good = a.signed_by(&key);
    // What PublicKeyCredential.toJSON() gives for an assertion.
    let json = serde_json::json!({
        "id": good.id,
        "rawId": good.raw_id,
        "type": "public-key",
        "authenticatorAttachment": "cross-platform",
        "clientExtensionResults": {},
        "response": {
            "clientDataJSON": good.response.client_data_json,
            "authenticatorData": good.response.authenticator_data,
            "signature": good.response.signature,
            "userHandle": null
        }
    });
    let parsed: AssertionResponse = serde_json::from_value(json.clone()).unwrap();
    assert_with(&cred, &parsed, false).unwrap();

    let mut extra = json.clone();
    extra["response"]["unexpected"] = "x".into();
    assert!(serde_json::from_value::<AssertionResponse>(extra).is_err());
    let mut extra = json;
    extra["unexpected"] = 1.into();
    assert!(serde_json::from_value::<AssertionResponse>(extra).is_err());
    for text in ["", "{", "[]", "{\"id\":1}", "null"] {
        assert!(
            serde_json::from_str::<AssertionResponse>(text).is_err(),
            "{text}"
        );
        assert!(
            serde_json::from_str::<RegistrationResponse>(text).is_err(),
            "{text}"
        );
    }

    // What toJSON() gives for a registration, with its convenience fields.
    let vendor = Vendor::new();
    let reg = Registration::packed(&vendor, &CHAL);
    let r = reg.response();
    let json = serde_json::json!({
        "id": r.id,
        "rawId": r.raw_id,
        "type": "public-key",
        "authenticatorAttachment": "cross-platform",
        "clientExtensionResults": {"credProps": {"rk": false}},
        "response": {
            "clientDataJSON": r.response.client_data_json,
            "attestationObject": r.response.attestation_object,
            "authenticatorData": b64(&reg.auth_data()),
            "transports": ["nfc", "usb"],
            "publicKey": "MFkw",
            "publicKeyAlgorithm": -7
        }
    });
    let parsed: RegistrationResponse = serde_json::from_value(json).unwrap();
    verify_registration(&preferred(), &vendor.trust(), &CHAL, &parsed).unwrap();
}

#[test]
fn ctap_client_quirks_are_tolerated_narrowly() {
    // webauthn-authenticator-rs' CTAP2 path: empty id and rawId, the
    // format in `type`, and the authenticator's unsigned members in the
    // attestation object. The credential id comes from the signed data.
    let vendor = Vendor::new();
    let trust = vendor.trust();
    let reg = Registration::packed(&vendor, &CHAL);
    let mut r = reg.response();
    r.id.clear();
    r.raw_id.clear();
    r.type_ = "packed".into();
    let cred = verify_registration(&preferred(), &trust, &CHAL, &r).unwrap();
    assert_eq!(cred.id, CredentialId(reg.cred_id.clone()));
    r.type_ = "public-key".into();
    verify_registration(&preferred(), &trust, &CHAL, &r).unwrap();
    r.type_ = "password".into();
    assert_eq!(
        verify_registration(&preferred(), &trust, &CHAL, &r),
        Err(WebauthnError::WrongCredentialType)
    );
    // Only both empty: one empty is a mismatch.
    let mut r = reg.response();
    r.id.clear();
    assert_eq!(
        verify_registration(&preferred(), &trust, &CHAL, &r),
        Err(WebauthnError::CredentialIdMismatch)
    );
    // Assertions are never read without their credential id.
    let (cred, key) = enrolled();
    let mut a = Assertion::new(&cred.id.0, &CHAL, 2).signed_by(&key);
    a.id.clear();
    a.raw_id.clear();
    assert!(assert_with(&cred, &a, false).is_err());

    let object = cbor(&Value::Map(vec![
        ("fmt".into(), "none".into()),
        ("attStmt".into(), Value::Map(vec![])),
        ("authData".into(), Value::Bytes(reg.auth_data())),
        ("eppAtt".into(), Value::Null),
        ("largeBlobKey".into(), Value::Null),
    ]));
    let mut allow = AttestationTrust::default();
    allow.set_allow_none(true);
    let r = registration(&reg.cred_id, &reg.client_data, &object);
    verify_registration(&preferred(), &allow, &CHAL, &r).unwrap();
}
