//! The bad-input catalogue of the touch flow, performed against a running
//! `signet-ca serve` over HTTPS. Every refusal is checked the way a user or
//! an auditor would: the HTTP status, the stable error `code`, a message
//! that says what is wrong, no certificate in the body, no change in what
//! `signet-ca users show` reports, and no new entry in the log (the size of
//! the latest checkpoint, from `GET /v1/health`).
//!
//! Four CAs, each with its own daemon: assertions, requests (with the PIV
//! attestation refusals), enrollment, and locks and rate limits (which need
//! lower limits than the others may have).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod touchkit;

use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use der::Encode as _;
use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate as _;
use serde_json::{json, Value};
use signet_firmware_tests::attest::{attest_slot, AttestationRoot, AttestedFacts};
use signet_firmware_tests::keys::{Algorithm, PrivateKey};
use webauthn_authenticator_rs::softtoken::SoftToken;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::time::{Time, Validity};

use common::{PIV_ROOTS, TEST_ORIGIN};
use touchkit::{
    assert_by, device_under, register_by, SlotKey, TouchCa, PIN_NEVER, PIN_ONCE, TOUCH_ALWAYS,
    TOUCH_NEVER,
};

const BEGIN: &str = "/v1/certs/begin";
const FINISH: &str = "/v1/certs/finish";
const ENROLL_BEGIN: &str = "/v1/enroll/begin";
const ENROLL_FINISH: &str = "/v1/enroll/finish";
/// A second origin of the CA (an access proxy's), under the rp id.
const PROXY_ORIGIN: &str = "https://proxy.localhost:8443";

/// What an auditor can see of the CA: the log size and the users' state.
#[derive(Debug, PartialEq)]
struct Seen {
    log_size: u64,
    users: Vec<Value>,
}

fn seen(t: &TouchCa, users: &[&str]) -> Seen {
    Seen {
        log_size: t.log_size(),
        users: users.iter().map(|u| t.user(u)).collect(),
    }
}

/// Asserts a refusal: status, code, a message containing `says`, and no
/// certificate anywhere in the body. Returns the message.
fn refused(got: (u16, Value), status: u16, code: &str, says: &str) -> String {
    let (got_status, body) = got;
    assert_eq!(got_status, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains(says), "{says:?} not in {message:?}");
    // The body is exactly {code, message}: no certificate, no ceremony.
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("CERTIFICATE") && !text.contains("-cert-v01@openssh.com"),
        "{body}"
    );
    message
}

/// Asserts a `key_policy_too_weak` refusal (403, a message containing
/// `says`, nothing issued) and returns its `key_policy`.
fn key_policy_refused(got: (u16, Value), says: &str) -> Value {
    let (status, body) = got;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "key_policy_too_weak", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{says:?} not in {message:?}");
    // {code, message, key_policy} and nothing else.
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    body["key_policy"].clone()
}

/// The `webauthn` options of a begin answer with their allow list replaced.
fn allowing(options: &Value, credential_id: &str) -> Value {
    let mut options = options.clone();
    options["publicKey"]["allowCredentials"] =
        json!([{ "type": "public-key", "id": credential_id }]);
    options
}

/// A copy of the soft token: its keys and counters as they are now.
fn clone_token(token: &SoftToken) -> SoftToken {
    SoftToken::from_cbor(&token.to_cbor().unwrap()).unwrap()
}

/// A malformed-body case: what it is, how to spoil a good body, and the
/// status, code and message words expected.
type Case = (
    &'static str,
    fn(&mut Value),
    u16,
    &'static str,
    &'static str,
);

fn finish(ceremony: &Value, assertion: &Value) -> Value {
    json!({ "ceremony": ceremony, "assertion": assertion })
}

fn relaxed_limits(t: &TouchCa) {
    t.configure("per_user_per_minute = 20", "per_user_per_minute = 1000");
    t.configure(
        "per_source_per_minute = 120",
        "per_source_per_minute = 100000",
    );
    t.configure("failed_assertions = 5", "failed_assertions = 1000");
}

// ------------------------------------------------------------- assertions

#[test]
fn assertions_that_must_not_issue() {
    let mut t = TouchCa::new("touch-ref-assert");
    relaxed_limits(&t);
    t.configure(
        "# extra_origins = [\"https://proxy.example.com\"]",
        &format!("extra_origins = [\"{PROXY_ORIGIN}\"]"),
    );
    // A second security key that does no user verification, trusted by
    // its own attestation CA beside the first.
    let (mut no_uv, no_uv_ca) = SoftToken::new(false).unwrap();
    let mut roots = std::fs::read_to_string(t.path(common::FIDO_ROOTS)).unwrap();
    roots.push_str(
        &der::pem::encode_string(
            "CERTIFICATE",
            der::pem::LineEnding::LF,
            &no_uv_ca.to_der().unwrap(),
        )
        .unwrap(),
    );
    std::fs::write(t.path(common::FIDO_ROOTS), roots).unwrap();
    // The daemon's own log, where a security team sees a cloned key.
    let daemon_log = t.path("daemon.log");
    t.daemon = Some(t.ca.serve_logging(&t.ca.config.clone(), Some(&daemon_log)));
    let alice_credential = t.enroll("alice")["credential_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_credential = t.enroll("bob")["credential_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let device = t.device(20_000_001);
    let slot = device.slot_key(PIN_ONCE, TOUCH_ALWAYS);
    let users = ["alice", "bob"];

    // --- a replayed assertion: the ceremony is spent by its first finish.
    let (status, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    assert_eq!(status, 200, "{begun}");
    let assertion = t.assert(&begun["webauthn"]);
    let (status, issued) = t.post(FINISH, &finish(&begun["ceremony"], &assertion));
    assert_eq!(status, 200, "{issued}");
    let before = seen(&t, &users);
    let spent = refused(
        t.post(FINISH, &finish(&begun["ceremony"], &assertion)),
        410,
        "ceremony_expired",
        "already used",
    );
    // The same assertion over a new ceremony answers the wrong challenge.
    let (_, again) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    refused(
        t.post(FINISH, &finish(&again["ceremony"], &assertion)),
        401,
        "webauthn_refused",
        "different challenge",
    );
    assert_eq!(seen(&t, &users), before);

    // --- an expired ceremony. Ceremonies expire CEREMONY_TTL (60 s) after
    // begin; waiting that long here buys nothing the unit test of
    // `Ceremonies` (src/touch/ceremony.rs, a clock moved past the TTL)
    // does not show. Through the API, an expired ceremony and an unknown
    // one read the same: the same code and message as a spent one.
    let unknown = refused(
        t.post(
            FINISH,
            &finish(&json!("AAAAAAAAAAAAAAAAAAAAAA"), &assertion),
        ),
        410,
        "ceremony_expired",
        "took longer than 60 s",
    );
    assert_eq!(unknown, spent);

    // --- an assertion made for another request: two begins, ceremony A
    // answered with the assertion over B's options.
    let (_, a) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    let (_, b) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["deploy"], 3600));
    assert_ne!(a["request_sha256"], b["request_sha256"]);
    let over_b = t.assert(&b["webauthn"]);
    refused(
        t.post(FINISH, &finish(&a["ceremony"], &over_b)),
        401,
        "webauthn_refused",
        "different challenge",
    );
    assert_eq!(seen(&t, &users), before);
    // B itself was untouched by the attempt: its own assertion works.
    let (status, body) = t.post(FINISH, &finish(&b["ceremony"], &over_b));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["principals"], json!(["deploy"]));

    // --- a wrong origin: another port on the same host, and a sibling host
    // the rp id would cover.
    let before = seen(&t, &users);
    for origin in ["https://localhost:9999", "https://evil.localhost:8441"] {
        let (_, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
        let assertion = t.assert_with(&begun["webauthn"], origin);
        refused(
            t.post(FINISH, &finish(&begun["ceremony"], &assertion)),
            401,
            "webauthn_refused",
            "is not one of this relying party's origins",
        );
    }
    assert_eq!(seen(&t, &users), before);

    // --- a wrong rp id: the key signs for the rp id in the options it is
    // given. On the proxy's origin (one of the CA's origins) a client may
    // ask for the proxy's own host name as rp id; the authenticator data
    // then hashes another rp id than the CA's.
    let (_, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    let mut options = begun["webauthn"].clone();
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    options["publicKey"]["rpId"] = json!("proxy.localhost");
    let assertion = t.assert_with(&options, PROXY_ORIGIN);
    refused(
        t.post(FINISH, &finish(&begun["ceremony"], &assertion)),
        401,
        "webauthn_refused",
        "answered for another relying party id",
    );
    assert_eq!(seen(&t, &users), before);

    // --- an unknown credential: a key never enrolled here (registered for
    // the same rp id from carol's enrollment options, never finished).
    let mut stray = SoftToken::new(true).unwrap().0;
    let carol_invite = t.invite("carol");
    let (status, creation) = t.post(ENROLL_BEGIN, &json!({ "token": carol_invite }));
    assert_eq!(status, 200, "{creation}");
    let stray_id = register_by(&mut stray, &creation["webauthn"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = seen(&t, &users);
    let (_, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    let assertion = assert_by(
        &mut stray,
        &allowing(&begun["webauthn"], &stray_id),
        TEST_ORIGIN,
    );
    refused(
        t.post(FINISH, &finish(&begun["ceremony"], &assertion)),
        401,
        "webauthn_refused",
        "not enrolled for this user",
    );

    // --- another user's credential: bob's key answering alice's ceremony.
    let (_, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    let assertion = t.assert(&allowing(&begun["webauthn"], &bob_credential));
    assert_eq!(assertion["id"], bob_credential);
    refused(
        t.post(FINISH, &finish(&begun["ceremony"], &assertion)),
        401,
        "webauthn_refused",
        "not enrolled for this user",
    );
    assert_eq!(seen(&t, &users), before);

    // --- a counter that goes back: a copy of the key taken now (a cloned
    // key), the original used once, then the copy.
    let mut copy = clone_token(&t.token);
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");
    let before = seen(&t, &users);
    let stored = before.users[0]["credentials"][0]["sign_count"]
        .as_u64()
        .unwrap();
    let (_, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    let assertion = assert_by(&mut copy, &begun["webauthn"], TEST_ORIGIN);
    let message = refused(
        t.post(FINISH, &finish(&begun["ceremony"], &assertion)),
        401,
        "counter_regression",
        "may have been cloned",
    );
    assert!(
        message.contains(&format!("from {stored} to {stored}")),
        "{message}"
    );
    assert_eq!(seen(&t, &users), before);
    let events = std::fs::read_to_string(&daemon_log).unwrap();
    assert!(
        events.lines().any(|line| line.contains("ERROR")
            && line.contains("event=\"counter_regression\"")
            && line.contains("alice")
            && line.contains(&alice_credential)),
        "no counter_regression event for alice's credential in the daemon's log:\n{events}"
    );
    // The original key goes on working.
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");

    // --- missing user presence: the assertion's UP flag cleared on its way
    // to the CA. The flags are checked before the signature (the order of
    // WebAuthn's steps), so the refusal names the missing touch; the
    // signature, made over the flags, would refuse it too. An assertion
    // signed without UP by the key itself is refused the same way in
    // ca/webauthn's unit tests (tests/bad_inputs.rs,
    // assertion_authenticator_data_is_checked): the soft token cannot be
    // made to sign one.
    let before = seen(&t, &users);
    let (_, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    let mut assertion = t.assert(&begun["webauthn"]);
    let mut data = URL_SAFE_NO_PAD
        .decode(assertion["response"]["authenticatorData"].as_str().unwrap())
        .unwrap();
    assert_eq!(data[32] & 0x01, 0x01, "the soft token sets UP");
    data[32] &= !0x01;
    assertion["response"]["authenticatorData"] = json!(URL_SAFE_NO_PAD.encode(&data));
    refused(
        t.post(FINISH, &finish(&begun["ceremony"], &assertion)),
        401,
        "webauthn_refused",
        "did not report user presence",
    );
    assert_eq!(seen(&t, &users), before);

    // --- missing user verification where the role demands PIN and touch:
    // a key that does no UV, enrolled for alice, asking for `root` (prod).
    let token = t.invite("alice");
    let (_, creation) = t.post(ENROLL_BEGIN, &json!({ "token": token }));
    let credential = register_by(&mut no_uv, &creation["webauthn"]);
    let (status, body) = t.post(
        ENROLL_FINISH,
        &json!({ "ceremony": creation["ceremony"], "token": token, "credential": credential }),
    );
    assert_eq!(status, 200, "{body}");
    let before = seen(&t, &users);
    let (status, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["root"], 3600));
    assert_eq!(status, 200, "{begun}");
    assert_eq!(
        begun["webauthn"]["publicKey"]["userVerification"],
        "required"
    );
    let assertion = assert_by(&mut no_uv, &begun["webauthn"], TEST_ORIGIN);
    refused(
        t.post(FINISH, &finish(&begun["ceremony"], &assertion)),
        401,
        "webauthn_refused",
        "user verification is required",
    );
    assert_eq!(seen(&t, &users), before);
    // The same key is enough for `ubuntu` (dev: touch only).
    let (_, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    let assertion = assert_by(&mut no_uv, &begun["webauthn"], TEST_ORIGIN);
    let (status, body) = t.post(FINISH, &finish(&begun["ceremony"], &assertion));
    assert_eq!(status, 200, "{body}");

    // --- malformed assertions: bad base64url, bytes that are no
    // authenticator data or client data, unknown fields.
    let before = seen(&t, &users);
    let cases: Vec<Case> = vec![
        (
            "rawId not base64url",
            |a| a["rawId"] = json!("not*base64url"),
            400,
            "malformed_request",
            "rawId",
        ),
        (
            "authenticatorData not base64url",
            |a| a["response"]["authenticatorData"] = json!("@@@@"),
            400,
            "malformed_request",
            "authenticatorData",
        ),
        (
            "signature not base64url",
            |a| a["response"]["signature"] = json!("%%%%"),
            400,
            "malformed_request",
            "signature",
        ),
        (
            "authenticatorData garbage",
            |a| a["response"]["authenticatorData"] = json!(URL_SAFE_NO_PAD.encode([0xa5u8; 20])),
            400,
            "malformed_request",
            "authenticator data",
        ),
        (
            "clientDataJSON garbage",
            |a| a["response"]["clientDataJSON"] = json!(URL_SAFE_NO_PAD.encode(b"{\"type\":")),
            400,
            "malformed_request",
            "clientDataJSON",
        ),
    ];
    for (what, change, status, code, says) in cases {
        let (_, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
        let mut assertion = t.assert(&begun["webauthn"]);
        change(&mut assertion);
        let got = t.post(FINISH, &finish(&begun["ceremony"], &assertion));
        eprintln!("{what}: {got:?}");
        refused(got, status, code, says);
    }
    // Unknown fields, at the top and inside the assertion, are named.
    let (_, begun) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    let good = t.assert(&begun["webauthn"]);
    let mut body = finish(&begun["ceremony"], &good);
    body["admin"] = json!(true);
    refused(
        t.post(FINISH, &body),
        400,
        "malformed_request",
        "unknown field `admin`",
    );
    let mut body = finish(&begun["ceremony"], &good);
    body["assertion"]["response"]["userPresent"] = json!(true);
    refused(
        t.post(FINISH, &body),
        400,
        "malformed_request",
        "unknown field `userPresent`",
    );
    // Bodies refused before the service reads them are refusal events in
    // the daemon's log too.
    let events = std::fs::read_to_string(&daemon_log).unwrap();
    assert!(
        events.lines().any(|line| line.contains("event=\"refused\"")
            && line.contains("route=/v1/certs/finish")
            && line.contains("reason=\"malformed_request\"")
            && line.contains("userPresent")),
        "no refusal event for the unknown field in the daemon's log:\n{events}"
    );
    assert_eq!(seen(&t, &users), before);
}

// --------------------------------------------------------------- requests

/// A PIV root of the test's own, able to sign intermediates.
struct TestRoot {
    key: SigningKey,
    name: Name,
    der: Vec<u8>,
}

struct Profile {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::certificate::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

fn basic_constraints(ca: bool) -> Extension {
    Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
        critical: true,
        extn_value: der::asn1::OctetString::new(
            BasicConstraints {
                ca,
                path_len_constraint: None,
            }
            .to_der()
            .unwrap(),
        )
        .unwrap(),
    }
}

/// A certificate for `subject_key` signed by `signer`.
fn certificate(
    signer: &SigningKey,
    issuer: &Name,
    subject: &Name,
    subject_key: &SigningKey,
    validity: Validity,
    extensions: Vec<Extension>,
) -> Vec<u8> {
    let profile = Profile {
        issuer: issuer.clone(),
        subject: subject.clone(),
        extensions,
    };
    let spki = spki::SubjectPublicKeyInfoOwned::from_key(subject_key.verifying_key()).unwrap();
    let serial = x509_cert::serial_number::SerialNumber::generate(&mut rand::rng());
    CertificateBuilder::new(profile, serial, validity, spki)
        .unwrap()
        .build::<_, p256::ecdsa::DerSignature>(signer)
        .unwrap()
        .to_der()
        .unwrap()
}

fn validity(from: SystemTime, to: SystemTime) -> Validity {
    Validity::new(Time::try_from(from).unwrap(), Time::try_from(to).unwrap())
}

const DAY: Duration = Duration::from_secs(86_400);

impl TestRoot {
    fn new() -> Self {
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let name = Name::from_str("CN=Refusals Test PIV Root,O=Signet Tests").unwrap();
        let now = SystemTime::now();
        let der = certificate(
            &key,
            &name,
            &name,
            &key,
            validity(now - DAY, now + 3650 * DAY),
            vec![basic_constraints(true)],
        );
        Self { key, name, der }
    }

    fn pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.der).unwrap()
    }

    /// A slot key whose chain runs slot → f9 → an intermediate → this
    /// root, the intermediate built as given.
    fn chain_through(&self, intermediate_ca: bool, intermediate_validity: Validity) -> SlotKey {
        let now = SystemTime::now();
        let inter_key = SigningKey::generate_from_rng(&mut rand::rng());
        let inter_name = Name::from_str("CN=Refusals Test PIV Intermediate").unwrap();
        let inter = certificate(
            &self.key,
            &self.name,
            &inter_name,
            &inter_key,
            intermediate_validity,
            vec![basic_constraints(intermediate_ca)],
        );
        let f9_key = SigningKey::generate_from_rng(&mut rand::rng());
        let f9 = certificate(
            &inter_key,
            &inter_name,
            &Name::from_str("CN=Yubico PIV Attestation").unwrap(),
            &f9_key,
            validity(now - DAY, now + 3650 * DAY),
            vec![basic_constraints(true)],
        );
        let key = PrivateKey::generate(Algorithm::P256).unwrap();
        let spki = key.spki_der().unwrap();
        let slot = attest_slot(
            &f9_key,
            &f9,
            &key,
            AttestedFacts {
                slot: 0x9a,
                firmware: [5, 7, 4],
                serial: 30_000_001,
                pin_policy: PIN_ONCE,
                touch_policy: TOUCH_ALWAYS,
                form_factor: 0x01,
            },
        )
        .unwrap();
        SlotKey {
            key,
            spki,
            chain: vec![slot, f9, inter],
        }
    }
}

#[test]
fn requests_that_must_not_begin() {
    let mut t = TouchCa::new("touch-ref-request");
    relaxed_limits(&t);
    let own_root = TestRoot::new();
    let mut roots = std::fs::read_to_string(t.path(PIV_ROOTS)).unwrap();
    roots.push_str(&own_root.pem());
    std::fs::write(t.path(PIV_ROOTS), roots).unwrap();
    t.serve();
    t.enroll("alice");
    t.enroll("bob");
    let users = ["alice", "bob", "carol"];
    let device = t.device(20_000_002);
    let slot = device.slot_key(PIN_ONCE, TOUCH_ALWAYS);
    let before = seen(&t, &users);
    let begin = |t: &TouchCa, body: &Value| t.post(BEGIN, body);

    // --- the roles: principals, TTL, no roles, no such user. The last
    // three read alike, so begin is no oracle for who exists.
    let beyond = refused(
        begin(&t, &TouchCa::request("bob", &slot, &["root"], 3600)),
        403,
        "not_allowed",
        "none of your roles allows the login \"root\"",
    );
    refused(
        begin(&t, &TouchCa::request("alice", &slot, &["root"], 7200)),
        403,
        "not_allowed",
        "your roles allow at most 1h",
    );
    refused(
        begin(&t, &TouchCa::request("alice", &slot, &["ubuntu"], 9 * 3600)),
        403,
        "not_allowed",
        "your roles allow at most 8h",
    );
    let no_roles = refused(
        begin(&t, &TouchCa::request("carol", &slot, &["root"], 3600)),
        403,
        "not_allowed",
        "root",
    );
    let nobody = refused(
        begin(&t, &TouchCa::request("mallory", &slot, &["root"], 3600)),
        403,
        "not_allowed",
        "root",
    );
    assert_eq!(no_roles, beyond);
    assert_eq!(nobody, beyond);

    // --- the PIV attestation.
    // A device under a root this CA does not trust.
    let stranger = device_under(&AttestationRoot::create().unwrap(), 20_000_003);
    refused(
        begin(
            &t,
            &TouchCa::request(
                "alice",
                &stranger.slot_key(PIN_ONCE, TOUCH_ALWAYS),
                &["ubuntu"],
                3600,
            ),
        ),
        403,
        "attestation_refused",
        "does not lead to a trusted device root",
    );
    // A good chain for another key than the one to certify.
    let mut swapped = device.slot_key(PIN_ONCE, TOUCH_ALWAYS);
    swapped.spki = device.slot_key(PIN_ONCE, TOUCH_ALWAYS).spki;
    refused(
        begin(&t, &TouchCa::request("alice", &swapped, &["ubuntu"], 3600)),
        403,
        "attestation_refused",
        "another key than public_key",
    );
    // PIN policy never where the role (prod) wants touch and PIN: its own
    // code, with what would qualify, so the client can offer a new key.
    let weak = key_policy_refused(
        begin(
            &t,
            &TouchCa::request(
                "alice",
                &device.slot_key(PIN_NEVER, TOUCH_ALWAYS),
                &["root"],
                3600,
            ),
        ),
        "touch policy always or cached and PIN policy once or always",
    );
    assert_eq!(
        weak,
        json!({"hardware_key":"touch_and_pin",
               "pin_policies":["once","always"],"touch_policies":["always","cached"],
               "key_pin_policy":"never","key_touch_policy":"always"})
    );
    // The same key is fine for a login whose role (dev) wants touch only.
    let (status, body) = begin(
        &t,
        &TouchCa::request(
            "alice",
            &device.slot_key(PIN_NEVER, TOUCH_ALWAYS),
            &["ubuntu"],
            3600,
        ),
    );
    assert_eq!(status, 200, "{body}");
    // Touch policy never where the role (dev) wants touch.
    let weak = key_policy_refused(
        begin(
            &t,
            &TouchCa::request(
                "bob",
                &device.slot_key(PIN_ONCE, TOUCH_NEVER),
                &["ubuntu"],
                3600,
            ),
        ),
        "touch policy always or cached (hardware_key: touch)",
    );
    assert_eq!(weak["hardware_key"], "touch");
    assert_eq!(weak["pin_policies"], json!(["never", "once", "always"]));
    assert_eq!(weak["touch_policies"], json!(["always", "cached"]));
    assert_eq!(weak["key_touch_policy"], "never");
    // A weak key asking for a login no role allows learns nothing about
    // key policies: the login is refused first.
    refused(
        begin(
            &t,
            &TouchCa::request(
                "bob",
                &device.slot_key(PIN_NEVER, TOUCH_NEVER),
                &["root"],
                3600,
            ),
        ),
        403,
        "not_allowed",
        "none of your roles allows the login \"root\"",
    );
    // An intermediate above f9 that is no CA, and one that has expired.
    let now = SystemTime::now();
    let good = own_root.chain_through(true, validity(now - DAY, now + 3650 * DAY));
    let not_ca = own_root.chain_through(false, validity(now - DAY, now + 3650 * DAY));
    let expired = own_root.chain_through(true, validity(now - 30 * DAY, now - DAY));
    refused(
        begin(&t, &TouchCa::request("alice", &not_ca, &["ubuntu"], 3600)),
        403,
        "attestation_refused",
        "certificate 2 of the attestation chain signs another certificate but is not a CA",
    );
    refused(
        begin(&t, &TouchCa::request("alice", &expired, &["ubuntu"], 3600)),
        403,
        "attestation_refused",
        "certificate 2 of the attestation chain has expired",
    );
    // An imported key: a YubiKey refuses to attest it (ca/attest's
    // tests/device.rs shows that on the virtual card over pcscd), so the
    // client has only the f9 certificate to send.
    let mut imported = device.slot_key(PIN_ONCE, TOUCH_ALWAYS);
    imported.chain.remove(0);
    refused(
        begin(&t, &TouchCa::request("alice", &imported, &["ubuntu"], 3600)),
        400,
        "invalid_request",
        "attestation",
    );

    // --- malformed bodies.
    let good_request = TouchCa::request("alice", &slot, &["ubuntu"], 3600);
    let with = |field: &str, value: Value| {
        let mut body = good_request.clone();
        body[field] = value;
        body
    };
    refused(
        t.post_raw(BEGIN, br#"{"user": "alice", "public_key": "#),
        400,
        "malformed_request",
        "does not parse",
    );
    refused(
        t.post_raw(BEGIN, b"\xff\xfe"),
        400,
        "malformed_request",
        "does not parse",
    );
    refused(
        begin(&t, &with("public_key", json!("not base64!"))),
        400,
        "malformed_request",
        "public_key",
    );
    refused(
        begin(
            &t,
            &with(
                "attestation",
                json!([STANDARD.encode(&slot.chain[0]), "***"]),
            ),
        ),
        400,
        "malformed_request",
        "attestation",
    );
    refused(
        begin(
            &t,
            &with("public_key", json!(STANDARD.encode(b"not a DER key"))),
        ),
        400,
        "invalid_request",
        "public_key: not a DER SubjectPublicKeyInfo",
    );
    refused(
        begin(
            &t,
            &with(
                "attestation",
                json!([
                    STANDARD.encode(&slot.chain[0]),
                    STANDARD.encode([0x30, 0x03, 0x02, 0x01])
                ]),
            ),
        ),
        403,
        "attestation_refused",
        "certificate 1 of the attestation chain is not a DER X.509 certificate",
    );
    refused(
        begin(&t, &with("admin", json!(true))),
        400,
        "malformed_request",
        "unknown field `admin`",
    );
    refused(
        begin(&t, &with("ttl_seconds", json!(-1))),
        400,
        "malformed_request",
        "ttl_seconds",
    );
    refused(
        begin(&t, &with("principals", json!([""]))),
        400,
        "invalid_request",
        "principals",
    );
    // Larger than serve.max_body_bytes (64 KiB).
    let big = with("principals", json!(vec!["x".repeat(1000); 70]));
    refused(begin(&t, &big), 413, "body_too_large", "too large");
    assert_eq!(seen(&t, &users), before);

    // The good chain through the intermediate, and the slot key, do work:
    // each refusal above is for the reason it names.
    let (status, body) = t.login("alice", &good, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");
    let (status, body) = t.login("alice", &slot, &["ubuntu", "root"], 3600);
    assert_eq!(status, 200, "{body}");
}

// ------------------------------------------------------------- enrollment

#[test]
fn enrollments_that_must_not_register() {
    let mut t = TouchCa::new("touch-ref-enroll");
    relaxed_limits(&t);
    t.serve();
    let users = ["alice", "bob"];

    // --- a token used twice: two ceremonies begun with one invite, the
    // first finished; the second finish and any new begin are refused.
    let token = t.invite("alice");
    let (status, first) = t.post(ENROLL_BEGIN, &json!({ "token": token }));
    assert_eq!(status, 200, "{first}");
    let (status, second) = t.post(ENROLL_BEGIN, &json!({ "token": token }));
    assert_eq!(status, 200, "{second}");
    let credential = t.register(&first["webauthn"]);
    let (status, done) = t.post(
        ENROLL_FINISH,
        &json!({ "ceremony": first["ceremony"], "token": token, "credential": credential }),
    );
    assert_eq!(status, 200, "{done}");
    let before = seen(&t, &users);
    let credential = t.register(&second["webauthn"]);
    let spent = refused(
        t.post(
            ENROLL_FINISH,
            &json!({ "ceremony": second["ceremony"], "token": token, "credential": credential }),
        ),
        404,
        "invite_invalid",
        "unknown, already used or expired",
    );
    let again = refused(
        t.post(ENROLL_BEGIN, &json!({ "token": token })),
        404,
        "invite_invalid",
        "unknown, already used or expired",
    );
    assert_eq!(again, spent);

    // --- unknown and garbled tokens read exactly like a spent one.
    let unknown = URL_SAFE_NO_PAD.encode([7u8; 32]);
    for bad in [unknown.as_str(), "garbled", "", &"A".repeat(10_000)] {
        let message = refused(
            t.post(ENROLL_BEGIN, &json!({ "token": bad })),
            404,
            "invite_invalid",
            "",
        );
        assert_eq!(message, spent, "{bad:?}");
    }
    assert_eq!(seen(&t, &users), before);

    // --- an expired invite (the shortest an invite lives is 1 s).
    let short = t.ca.ok(&["users", "invite", "bob", "--ttl", "1s"]);
    let short = short.trim().rsplit('/').next().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(2100));
    let expired = refused(
        t.post(ENROLL_BEGIN, &json!({ "token": short })),
        404,
        "invite_invalid",
        "",
    );
    assert_eq!(expired, spent);

    // --- a ceremony finished with another invite's token.
    let bob_token = t.invite("bob");
    let carol_token = t.invite("carol");
    let before = seen(&t, &users);
    let (_, begun) = t.post(ENROLL_BEGIN, &json!({ "token": bob_token }));
    let credential = t.register(&begun["webauthn"]);
    refused(
        t.post(
            ENROLL_FINISH,
            &json!({ "ceremony": begun["ceremony"], "token": carol_token, "credential": credential }),
        ),
        404,
        "invite_invalid",
        "",
    );
    assert_eq!(seen(&t, &users), before);

    // --- malformed registrations: bad base64url, CBOR garbage in the
    // attestation object, DER garbage in its certificate, unknown fields.
    let cases: Vec<Case> = vec![
        (
            "attestationObject not base64url",
            |c| c["response"]["attestationObject"] = json!("$$$$"),
            400,
            "malformed_request",
            "attestationObject is not valid base64url",
        ),
        (
            "attestationObject CBOR garbage",
            |c| {
                c["response"]["attestationObject"] =
                    json!(URL_SAFE_NO_PAD.encode([0xbf, 0x61, 0x61]))
            },
            400,
            "malformed_request",
            "attestationObject is malformed CBOR",
        ),
        (
            "attestation certificate DER garbage",
            |c| {
                // The soft token's attestation certificate inside the CBOR
                // (the DER SEQUENCE after the `x5c` key), overwritten with
                // as many bytes that are no DER: the CBOR stays well formed.
                let mut object = URL_SAFE_NO_PAD
                    .decode(c["response"]["attestationObject"].as_str().unwrap())
                    .unwrap();
                let x5c = object.windows(3).position(|w| w == b"x5c").unwrap();
                let at = x5c
                    + object[x5c..]
                        .windows(2)
                        .position(|w| w == [0x30, 0x82])
                        .unwrap();
                let len = 4 + usize::from(u16::from_be_bytes([object[at + 2], object[at + 3]]));
                object[at..at + len].fill(0x5a);
                c["response"]["attestationObject"] = json!(URL_SAFE_NO_PAD.encode(&object));
            },
            401,
            "webauthn_refused",
            "attestation certificate is not acceptable",
        ),
        (
            "clientDataJSON not base64url",
            |c| c["response"]["clientDataJSON"] = json!("!!"),
            400,
            "malformed_request",
            "clientDataJSON",
        ),
    ];
    for (what, change, status, code, says) in cases {
        let (_, begun) = t.post(ENROLL_BEGIN, &json!({ "token": bob_token }));
        let mut credential = t.register(&begun["webauthn"]);
        change(&mut credential);
        let got = t.post(
            ENROLL_FINISH,
            &json!({ "ceremony": begun["ceremony"], "token": bob_token, "credential": credential }),
        );
        eprintln!("{what}: {got:?}");
        refused(got, status, code, says);
    }
    let (_, begun) = t.post(ENROLL_BEGIN, &json!({ "token": bob_token }));
    let credential = t.register(&begun["webauthn"]);
    let mut body =
        json!({ "ceremony": begun["ceremony"], "token": bob_token, "credential": credential });
    body["credential"]["response"]["userVerified"] = json!(true);
    refused(
        t.post(ENROLL_FINISH, &body),
        400,
        "malformed_request",
        "unknown field `userVerified`",
    );
    refused(
        t.post(
            ENROLL_BEGIN,
            &json!({ "token": bob_token, "user": "alice" }),
        ),
        400,
        "malformed_request",
        "unknown field `user`",
    );
    assert_eq!(seen(&t, &users), before);

    // The invite the refusals were made with is still good.
    let (_, begun) = t.post(ENROLL_BEGIN, &json!({ "token": bob_token }));
    let credential = t.register(&begun["webauthn"]);
    let (status, body) = t.post(
        ENROLL_FINISH,
        &json!({ "ceremony": begun["ceremony"], "token": bob_token, "credential": credential }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(t.user("bob")["credentials"].as_array().unwrap().len(), 1);
}

// --------------------------------------------------- locks and rate limits

#[test]
fn locks_and_rate_limits() {
    let mut t = TouchCa::new("touch-ref-locks");
    t.configure("per_user_per_minute = 20", "per_user_per_minute = 30");
    t.configure(
        "per_source_per_minute = 120",
        "per_source_per_minute = 100000",
    );
    t.configure("failed_assertions = 5", "failed_assertions = 3");
    t.serve();
    t.enroll("alice");
    t.enroll("bob");
    let device = t.device(20_000_004);
    let slot = device.slot_key(PIN_ONCE, TOUCH_ALWAYS);

    // --- an administrator's lock, through the running daemon: begin is
    // refused, and so is the finish of a ceremony begun before it.
    let (_, pending) = t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600));
    let pending_assertion = t.assert(&pending["webauthn"]);
    let size = t.log_size();
    t.ca.ok(&[
        "users",
        "lock",
        "alice",
        "--reason",
        "laptop reported stolen",
    ]);
    assert_eq!(t.log_size(), size + 1, "the lock is a log entry");
    let before = seen(&t, &["alice"]);
    assert_eq!(
        before.users[0]["locked"]["reason"],
        "laptop reported stolen"
    );
    refused(
        t.post(BEGIN, &TouchCa::request("alice", &slot, &["ubuntu"], 3600)),
        403,
        "locked",
        "laptop reported stolen",
    );
    refused(
        t.post(FINISH, &finish(&pending["ceremony"], &pending_assertion)),
        403,
        "locked",
        "an administrator can unlock it",
    );
    assert_eq!(seen(&t, &["alice"]), before);
    t.ca.ok(&["users", "unlock", "alice", "--reason", "laptop found"]);
    assert_eq!(t.log_size(), size + 2, "the unlock is a log entry");
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");

    // --- failed assertions in a row lock the user ([limits]
    // failed_assertions = 3 here); the lock is one log entry.
    let wrong_origin = |t: &mut TouchCa| {
        let (_, begun) = t.post(BEGIN, &TouchCa::request("bob", &slot, &["ubuntu"], 3600));
        let assertion = t.assert_with(&begun["webauthn"], "https://localhost:9999");
        t.post(FINISH, &finish(&begun["ceremony"], &assertion))
    };
    let before = seen(&t, &["bob"]);
    refused(wrong_origin(&mut t), 401, "webauthn_refused", "origin");
    refused(wrong_origin(&mut t), 401, "webauthn_refused", "origin");
    assert_eq!(seen(&t, &["bob"]), before);
    refused(wrong_origin(&mut t), 401, "webauthn_refused", "origin");
    let after = seen(&t, &["bob"]);
    assert_eq!(
        after.log_size,
        before.log_size + 1,
        "the lock is a log entry"
    );
    assert_eq!(
        after.users[0]["locked"]["reason"],
        "3 failed security key assertions in a row"
    );
    assert!(after.users[0]["locked"]["until"].is_u64(), "{after:?}");
    refused(
        t.post(BEGIN, &TouchCa::request("bob", &slot, &["ubuntu"], 3600)),
        403,
        "locked",
        "3 failed security key assertions in a row",
    );
    t.ca.ok(&["users", "unlock", "bob"]);
    let (status, body) = t.login("bob", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");

    // --- a stranger cannot lock bob out: assertions from a key that is not
    // his fail, but do not count towards the lockout.
    let mut stray = SoftToken::new(true).unwrap().0;
    let invite = t.invite("carol");
    let (_, creation) = t.post(ENROLL_BEGIN, &json!({ "token": invite }));
    let stray_id = register_by(&mut stray, &creation["webauthn"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = seen(&t, &["bob"]);
    for _ in 0..4 {
        let (_, begun) = t.post(BEGIN, &TouchCa::request("bob", &slot, &["ubuntu"], 3600));
        let assertion = assert_by(
            &mut stray,
            &allowing(&begun["webauthn"], &stray_id),
            TEST_ORIGIN,
        );
        refused(
            t.post(FINISH, &finish(&begun["ceremony"], &assertion)),
            401,
            "webauthn_refused",
            "not enrolled for this user",
        );
    }
    assert_eq!(seen(&t, &["bob"]), before, "bob is not locked");
    let (status, body) = t.login("bob", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");

    // --- the per-user rate (30 a minute here): a name asked for over and
    // over is refused with rate_limited before long, known or not.
    let before = seen(&t, &["alice", "bob"]);
    let mut answers = Vec::new();
    for _ in 0..60 {
        let (status, body) = t.post(
            BEGIN,
            &TouchCa::request("mallory", &slot, &["ubuntu"], 3600),
        );
        answers.push(status);
        if status == 429 {
            refused((status, body), 429, "rate_limited", "wait a minute");
            break;
        }
        refused((status, body), 403, "not_allowed", "ubuntu");
    }
    assert_eq!(answers.last(), Some(&429), "{answers:?}");
    assert!(answers.len() > 30, "the first 30 are answered: {answers:?}");
    assert_eq!(seen(&t, &["alice", "bob"]), before);
    // Another user has a bucket of their own.
    let (status, body) = t.login("alice", &slot, &["ubuntu"], 3600);
    assert_eq!(status, 200, "{body}");
}
