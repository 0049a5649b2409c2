// Unit tests drive the applet in-process through the same APDUs a client
// sends; a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::attest::AttestationRoot;
use crate::fido::client::{ClientError, CtapClient};
use crate::fido::{build, FidoApplet, FidoControl};
use crate::touch::TouchMode;
use der::{Decode, Encode};
use p256::ecdsa::signature::Verifier;
use std::sync::OnceLock;

const RP: &str = "example.com";
const CDH: [u8; 32] = [0x11; 32];

fn root() -> &'static AttestationRoot {
    static ROOT: OnceLock<AttestationRoot> = OnceLock::new();
    ROOT.get_or_init(|| AttestationRoot::create().unwrap())
}

struct Card {
    applet: FidoApplet,
    control: FidoControl,
    touch: TouchControl,
}

fn card() -> Card {
    let touch = TouchControl::new();
    let (applet, control) = build(root(), 42, None, touch.clone()).unwrap();
    Card {
        applet,
        control,
        touch,
    }
}

impl Card {
    fn client(&mut self) -> CtapClient<impl FnMut(&[u8]) -> Vec<u8> + '_> {
        let applet = &mut self.applet;
        let mut client = CtapClient::new(move |apdu: &[u8]| applet.process(apdu));
        client.select().unwrap();
        client
    }

    fn raw(&mut self, message: &[u8]) -> Vec<u8> {
        self.client().raw(message).unwrap()
    }
}

fn ctap_err(status: Status) -> ClientError {
    ClientError::Ctap(status.to_byte())
}

fn cose_p256(value: &Value) -> p256::ecdsa::VerifyingKey {
    let m = Map::of(value).unwrap();
    assert_eq!(m.int(1).unwrap(), Some(2));
    assert_eq!(m.int(3).unwrap(), Some(-7));
    let point = [
        &[4u8][..],
        m.bytes(-2).unwrap().unwrap(),
        m.bytes(-3).unwrap().unwrap(),
    ]
    .concat();
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap()
}

/// The credential public key (COSE, decoded) from attested authData.
fn credential_key(auth_data: &[u8]) -> Value {
    let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    let rest = &auth_data[55 + id_len..];
    // The key is the first CBOR item; extensions may follow.
    let mut reader = rest;
    ciborium::de::from_reader(&mut reader).unwrap()
}

#[test]
fn get_info_says_what_the_card_does_in_canonical_cbor() {
    let mut card = card();
    let raw = card.raw(&[0x04]);
    assert_eq!(raw[0], 0);
    let info = cbor::decode(&raw[1..]).unwrap();
    assert_eq!(cbor::encode(&info), raw[1..], "getInfo is canonical CBOR");
    let m = Map::of(&info).unwrap();
    assert_eq!(m.bytes(3).unwrap().unwrap(), crate::fido::state::AAGUID);
    let opts = m.map(4).unwrap().unwrap();
    assert_eq!(opts.get_text("clientPin"), Some(&Value::Bool(false)));
    assert_eq!(opts.get_text("rk"), Some(&Value::Bool(true)));
    assert!(opts.get_text("uv").is_none(), "no built-in UV");
    let protocols = m.array(6).unwrap().unwrap();
    assert_eq!(protocols, [cbor::int(2), cbor::int(1)]);
    let algs: Vec<i64> = m
        .array(10)
        .unwrap()
        .unwrap()
        .iter()
        .map(|a| {
            Map::of(a)
                .unwrap()
                .get_text("alg")
                .map(|v| cbor::as_int(v).unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(algs, [-7, -8]);
    card.control.set_pin("1234").unwrap();
    let info = card.client().get_info().unwrap();
    let opts = Map::of(&info).unwrap().map(4).unwrap().unwrap();
    assert_eq!(opts.get_text("clientPin"), Some(&Value::Bool(true)));
}

#[test]
fn packed_attestation_chains_to_the_root_and_assertions_verify() {
    let mut card = card();
    let reg = card
        .client()
        .make_credential(RP, &CDH, -7, false, None)
        .unwrap();
    // attStmt: alg -7, sig over authData ‖ cdh by the certificate's key.
    let stmt = Map::of(&reg.att_stmt).unwrap();
    assert_eq!(
        stmt.get_text("alg").map(|v| cbor::as_int(v).unwrap()),
        Some(-7)
    );
    let Some(Value::Array(x5c)) = stmt.get_text("x5c") else {
        panic!("x5c")
    };
    assert_eq!(x5c.len(), 1);
    let cert = x509_cert::Certificate::from_der(cbor::as_bytes(&x5c[0]).unwrap()).unwrap();
    let spki = cert.tbs_certificate().subject_public_key_info();
    let att_key =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
    let sig = cbor::as_bytes(stmt.get_text("sig").unwrap()).unwrap();
    att_key
        .verify(
            &[reg.auth_data.as_slice(), &CDH].concat(),
            &p256::ecdsa::DerSignature::from_bytes(sig).unwrap(),
        )
        .unwrap();
    // The certificate is issued by the root, says it attests an
    // authenticator, and carries the AAGUID.
    let root_cert = x509_cert::Certificate::from_der(root().cert_der()).unwrap();
    assert_eq!(
        cert.tbs_certificate().issuer(),
        root_cert.tbs_certificate().subject()
    );
    let root_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        root_cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
    )
    .unwrap();
    root_key
        .verify(
            &cert.tbs_certificate().to_der().unwrap(),
            &p256::ecdsa::DerSignature::from_bytes(cert.signature().raw_bytes()).unwrap(),
        )
        .unwrap();
    assert!(cert
        .tbs_certificate()
        .subject()
        .to_string()
        .contains("OU=Authenticator Attestation"));
    let aaguid_ext = cert
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == crate::attest::OID_FIDO_AAGUID)
        .unwrap();
    assert_eq!(
        &aaguid_ext.extn_value.as_bytes()[2..],
        crate::fido::state::AAGUID
    );

    // authData: rpIdHash, UP|AT, counter 1, AAGUID.
    assert_eq!(reg.auth_data[..32], sha256(RP.as_bytes()));
    assert_eq!(reg.auth_data[32], FLAG_UP | FLAG_AT);
    assert_eq!(reg.auth_data[33..37], [0, 0, 0, 1]);
    assert_eq!(reg.auth_data[37..53], crate::fido::state::AAGUID);
    let public = cose_p256(&credential_key(&reg.auth_data));

    let answer = card
        .client()
        .get_assertion(RP, &CDH, Some(&reg.credential_id), None)
        .unwrap();
    let m = Map::of(&answer).unwrap();
    let auth_data = m.bytes(2).unwrap().unwrap();
    assert_eq!(auth_data[32], FLAG_UP);
    assert_eq!(auth_data[33..37], [0, 0, 0, 2], "the counter moves on");
    let sig = m.bytes(3).unwrap().unwrap();
    public
        .verify(
            &[auth_data, &CDH].concat(),
            &p256::ecdsa::DerSignature::from_bytes(sig).unwrap(),
        )
        .unwrap();
    assert!(
        m.get(4).is_none(),
        "no user for a non-discoverable credential"
    );
    // Another RP cannot use the credential.
    assert_eq!(
        card.client()
            .get_assertion("other.example", &CDH, Some(&reg.credential_id), None)
            .unwrap_err(),
        ctap_err(Status::NoCredentials)
    );
    assert_eq!(card.control.sign_count(), 2);
}

#[test]
fn eddsa_credentials_sign_with_ed25519() {
    let mut card = card();
    let reg = card
        .client()
        .make_credential(RP, &CDH, -8, false, None)
        .unwrap();
    let key = credential_key(&reg.auth_data);
    let m = Map::of(&key).unwrap();
    assert_eq!(
        (m.int(1).unwrap(), m.int(3).unwrap(), m.int(-1).unwrap()),
        (Some(1), Some(-8), Some(6))
    );
    let public: [u8; 32] = m.bytes(-2).unwrap().unwrap().try_into().unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let answer = card
        .client()
        .get_assertion(RP, &CDH, Some(&reg.credential_id), None)
        .unwrap();
    let a = Map::of(&answer).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(a.bytes(3).unwrap().unwrap()).unwrap();
    public
        .verify(&[a.bytes(2).unwrap().unwrap(), &CDH].concat(), &sig)
        .unwrap();
    // An algorithm the card does not have.
    assert_eq!(
        card.client()
            .make_credential(RP, &CDH, -257, false, None)
            .unwrap_err(),
        ctap_err(Status::UnsupportedAlgorithm)
    );
}

#[test]
fn pin_set_change_token_and_user_verification() {
    for protocol in [Protocol::One, Protocol::Two] {
        let mut card = card();
        let mut c = card.client();
        assert_eq!(
            c.pin_token(protocol, "1234", Some((PERM_MC, RP)))
                .unwrap_err(),
            ctap_err(Status::PinNotSet)
        );
        assert_eq!(
            c.set_pin(protocol, "12"),
            Err(ctap_err(Status::PinPolicyViolation))
        );
        c.set_pin(protocol, "1234").unwrap();
        assert_eq!(
            c.set_pin(protocol, "5678"),
            Err(ctap_err(Status::PinAuthInvalid))
        );
        assert_eq!(c.pin_retries().unwrap(), 8);
        c.change_pin(protocol, "1234", "secret-pin").unwrap();
        assert_eq!(
            c.change_pin(protocol, "1234", "other"),
            Err(ctap_err(Status::PinInvalid))
        );
        assert_eq!(c.pin_retries().unwrap(), 7);

        // A discoverable credential now needs UV; a token with mc does it.
        assert_eq!(
            c.make_credential(RP, &CDH, -7, true, None).unwrap_err(),
            ctap_err(Status::PuatRequired)
        );
        let token = c
            .pin_token(protocol, "secret-pin", Some((PERM_MC, RP)))
            .unwrap();
        assert_eq!(
            c.pin_retries().unwrap(),
            8,
            "a right PIN restores the counter"
        );
        let reg = c
            .make_credential(RP, &CDH, -7, true, Some((protocol, &token)))
            .unwrap();
        assert_eq!(reg.auth_data[32], FLAG_UP | FLAG_UV | FLAG_AT);
        // The token's permissions are spent after one use.
        assert_eq!(
            c.make_credential(RP, &CDH, -7, true, Some((protocol, &token)))
                .unwrap_err(),
            ctap_err(Status::PinAuthInvalid)
        );
        // Wrong permission, wrong RP, wrong MAC.
        let token = c
            .pin_token(protocol, "secret-pin", Some((PERM_GA, RP)))
            .unwrap();
        assert_eq!(
            c.make_credential(RP, &CDH, -7, true, Some((protocol, &token)))
                .unwrap_err(),
            ctap_err(Status::PinAuthInvalid)
        );
        assert_eq!(
            c.get_assertion("other.example", &CDH, None, Some((protocol, &token)))
                .unwrap_err(),
            ctap_err(Status::PinAuthInvalid)
        );
        assert_eq!(
            c.get_assertion(RP, &CDH, None, Some((protocol, &[0u8; 32])))
                .unwrap_err(),
            ctap_err(Status::PinAuthInvalid)
        );
        let answer = c
            .get_assertion(RP, &CDH, None, Some((protocol, &token)))
            .unwrap();
        let m = Map::of(&answer).unwrap();
        assert_eq!(m.bytes(2).unwrap().unwrap()[32], FLAG_UP | FLAG_UV);
        let user = m.map(4).unwrap().unwrap();
        assert_eq!(
            user.text_at("name").unwrap(),
            Some("alice"),
            "UV reveals the user"
        );
        // Unsupported permissions.
        assert_eq!(
            c.pin_token(protocol, "secret-pin", Some((0x04, RP)))
                .unwrap_err(),
            ctap_err(Status::UnauthorizedPermission)
        );
        // Legacy getPinToken works too (mc + ga).
        let token = c.pin_token(protocol, "secret-pin", None).unwrap();
        c.get_assertion(RP, &CDH, None, Some((protocol, &token)))
            .unwrap();
    }
}

#[test]
fn wrong_pins_count_down_block_per_boot_then_for_good() {
    let mut card = card();
    card.client().set_pin(Protocol::Two, "1234").unwrap();
    let mut left = 8;
    for boot in 0..3 {
        for attempt in 0..3 {
            if left == 0 {
                break;
            }
            let err = card
                .client()
                .pin_token(Protocol::Two, "0000", None)
                .unwrap_err();
            left -= 1;
            let expected = if left == 0 {
                Status::PinBlocked
            } else if attempt == 2 {
                Status::PinAuthBlocked
            } else {
                Status::PinInvalid
            };
            assert_eq!(err, ctap_err(expected), "boot {boot} attempt {attempt}");
            assert_eq!(card.control.pin_retries(), left);
        }
        if left > 0 {
            // Blocked for this power cycle: even the right PIN is refused,
            // and no try is spent.
            assert_eq!(
                card.client()
                    .pin_token(Protocol::Two, "1234", None)
                    .unwrap_err(),
                ctap_err(Status::PinAuthBlocked)
            );
            assert_eq!(card.control.pin_retries(), left);
        }
        card.applet.reset();
    }
    assert_eq!(left, 0);
    assert_eq!(
        card.client()
            .pin_token(Protocol::Two, "1234", None)
            .unwrap_err(),
        ctap_err(Status::PinBlocked)
    );
    assert_eq!(card.client().pin_retries().unwrap(), 0);
    // Only a reset (soon after power-up, with a touch) brings the key back.
    card.applet.reset();
    assert_eq!(card.raw(&[0x07]), [0x00]);
    assert!(!card.control.pin_is_set());
    assert_eq!(card.client().pin_retries().unwrap(), 8);
}

#[test]
fn reset_needs_a_fresh_power_up_and_a_touch_and_voids_credentials() {
    let mut card = card();
    let reg = card
        .client()
        .make_credential(RP, &CDH, -7, false, None)
        .unwrap();
    card.touch.set_mode(TouchMode::Deny);
    assert_eq!(card.raw(&[0x07]), [Status::OperationDenied.to_byte()]);
    card.touch.set_mode(TouchMode::Approve);
    card.applet.authenticator().powered_at = Instant::now() - RESET_WINDOW - Duration::from_secs(1);
    assert_eq!(card.raw(&[0x07]), [Status::NotAllowed.to_byte()]);
    card.applet.reset();
    assert_eq!(card.raw(&[0x07]), [0x00]);
    assert_eq!(
        card.client()
            .get_assertion(RP, &CDH, Some(&reg.credential_id), None)
            .unwrap_err(),
        ctap_err(Status::NoCredentials)
    );
}

#[test]
fn discoverable_credentials_and_get_next_assertion() {
    let mut card = card();
    let mut c = card.client();
    for user in [b"user-a".as_slice(), b"user-b"] {
        let params = cbor::int_map(vec![
            (1, cbor::bytes(&CDH)),
            (2, cbor::text_map(vec![("id", cbor::text(RP))])),
            (3, cbor::text_map(vec![("id", cbor::bytes(user))])),
            (
                4,
                Value::Array(vec![cbor::text_map(vec![
                    ("alg", cbor::int(-7)),
                    ("type", cbor::text("public-key")),
                ])]),
            ),
            (7, cbor::text_map(vec![("rk", Value::Bool(true))])),
        ]);
        c.call(0x01, Some(&params)).unwrap();
    }
    let first = c.get_assertion(RP, &CDH, None, None).unwrap();
    let m = Map::of(&first).unwrap();
    assert_eq!(m.int(5).unwrap(), Some(2));
    let user = |v: &Value| {
        Map::of(v)
            .unwrap()
            .map(4)
            .unwrap()
            .unwrap()
            .get_text("id")
            .cloned()
            .unwrap()
    };
    assert_eq!(user(&first), cbor::bytes(b"user-b"), "newest first");
    let second = c.call(0x08, None).unwrap().unwrap();
    assert_eq!(user(&second), cbor::bytes(b"user-a"));
    assert!(Map::of(&second).unwrap().get(5).is_none());
    assert_eq!(
        c.call(0x08, None).unwrap_err(),
        ctap_err(Status::NotAllowed)
    );
    drop(c);
    assert_eq!(card.control.resident_count(), 2);
    // Registering the same user again replaces the credential.
    card.client()
        .make_credential(RP, &CDH, -7, true, None)
        .unwrap();
    card.client()
        .make_credential(RP, &CDH, -7, true, None)
        .unwrap();
    assert_eq!(card.control.resident_count(), 3);
}

#[test]
fn cred_protect_and_exclude_list() {
    let mut card = card();
    let mut c = card.client();
    let make = |c: &mut CtapClient<_>, level: i64, exclude: Option<&[u8]>| {
        let mut params = vec![
            (1, cbor::bytes(&CDH)),
            (2, cbor::text_map(vec![("id", cbor::text(RP))])),
            (3, cbor::text_map(vec![("id", cbor::bytes(b"u"))])),
            (
                4,
                Value::Array(vec![cbor::text_map(vec![
                    ("alg", cbor::int(-7)),
                    ("type", cbor::text("public-key")),
                ])]),
            ),
            (6, cbor::text_map(vec![("credProtect", cbor::int(level))])),
        ];
        if let Some(id) = exclude {
            params.push((
                5,
                Value::Array(vec![cbor::text_map(vec![
                    ("id", cbor::bytes(id)),
                    ("type", cbor::text("public-key")),
                ])]),
            ));
        }
        c.call(0x01, Some(&cbor::int_map(params)))
    };
    let answer = make(&mut c, 3, None).unwrap().unwrap();
    let auth_data = Map::of(&answer)
        .unwrap()
        .bytes(2)
        .unwrap()
        .unwrap()
        .to_vec();
    assert_eq!(auth_data[32] & FLAG_ED, FLAG_ED, "extension output present");
    let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    let id = auth_data[55..55 + id_len].to_vec();
    // Level 3 (uvRequired): invisible without UV, even by ID.
    assert_eq!(
        c.get_assertion(RP, &CDH, Some(&id), None).unwrap_err(),
        ctap_err(Status::NoCredentials)
    );
    // Excluding it without UV does not find it either...
    assert!(make(&mut c, 1, Some(&id)).is_ok());
    // ...but a level-1 credential is excluded.
    let reg = c.make_credential(RP, &CDH, -7, false, None).unwrap();
    assert_eq!(
        make(&mut c, 1, Some(&reg.credential_id)).unwrap_err(),
        ctap_err(Status::CredentialExcluded)
    );
    assert_eq!(
        make(&mut c, 4, None).unwrap_err(),
        ctap_err(Status::InvalidParameter)
    );
}

#[test]
fn touch_refused_timed_out_polled_and_cancelled() {
    let mut card = card();
    card.touch.set_mode(TouchMode::Deny);
    assert_eq!(
        card.client()
            .make_credential(RP, &CDH, -7, false, None)
            .unwrap_err(),
        ctap_err(Status::OperationDenied)
    );
    card.touch
        .set_mode(TouchMode::Manual(Duration::from_millis(20)));
    assert_eq!(
        card.client()
            .make_credential(RP, &CDH, -7, false, None)
            .unwrap_err(),
        ctap_err(Status::UserActionTimeout)
    );

    // With P1 = 80 the card answers 9100 UPNEEDED and the client polls.
    card.touch
        .set_mode(TouchMode::Manual(Duration::from_secs(5)));
    let mut message = vec![0x01];
    message.extend(cbor::encode(&cbor::int_map(vec![
        (1, cbor::bytes(&CDH)),
        (2, cbor::text_map(vec![("id", cbor::text(RP))])),
        (3, cbor::text_map(vec![("id", cbor::bytes(b"u"))])),
        (
            4,
            Value::Array(vec![cbor::text_map(vec![
                ("alg", cbor::int(-7)),
                ("type", cbor::text("public-key")),
            ])]),
        ),
    ])));
    let mut apdu = vec![0x80, 0x10, 0x80, 0x00, message.len() as u8];
    apdu.extend_from_slice(&message);
    card.client();
    assert_eq!(card.applet.process(&apdu), [0x02, 0x91, 0x00]);
    assert_eq!(
        card.applet.process(&[0x80, 0x11, 0x00, 0x00]),
        [0x02, 0x91, 0x00]
    );
    card.touch.touch();
    let answer = card.applet.process(&[0x80, 0x11, 0x00, 0x00, 0x00]);
    assert_eq!(answer[0], 0x00, "the credential is made after the touch");
    assert_eq!(answer[answer.len() - 2], 0x61, "long answer in 61xx chunks");
    // The rest, with GET RESPONSE in either class (clients send both).
    let mut whole = answer[..answer.len() - 2].to_vec();
    for cla in [0x80, 0x00].into_iter().cycle() {
        let chunk = card.applet.process(&[cla, 0xC0, 0x00, 0x00, 0x00]);
        whole.extend_from_slice(&chunk[..chunk.len() - 2]);
        match chunk[chunk.len() - 2..] {
            [0x90, 0x00] => break,
            [0x61, _] => continue,
            ref sw => panic!("GET RESPONSE answered {sw:02x?}"),
        }
    }
    let made = cbor::decode(&whole[1..]).unwrap();
    assert_eq!(Map::of(&made).unwrap().text(1).unwrap(), Some("packed"));
    // Cancelled by the client.
    assert_eq!(card.applet.process(&apdu), [0x02, 0x91, 0x00]);
    assert_eq!(
        card.applet.process(&[0x80, 0x11, 0x11, 0x00]),
        [0x2D, 0x90, 0x00]
    );
    assert_eq!(card.applet.process(&[0x80, 0x11, 0x00, 0x00]), [0x69, 0x85]);
    // Refused while polling.
    card.touch.set_mode(TouchMode::Deny);
    assert_eq!(card.applet.process(&apdu), [0x27, 0x90, 0x00]);
    assert_eq!(card.touch.approved(), 1);
}

#[test]
fn malformed_messages_get_the_status_a_key_returns() {
    let mut card = card();
    let cases: Vec<(Vec<u8>, Status)> = vec![
        (vec![0x42], Status::InvalidCommand),
        (vec![0x01], Status::MissingParameter),
        (vec![0x01, 0xA1], Status::InvalidCbor),
        (vec![0x01, 0xFF], Status::InvalidCbor),
        (vec![0x01, 0x01], Status::CborUnexpectedType),
        (vec![0x01, 0xA1, 0x01, 0x01], Status::CborUnexpectedType),
        (vec![0x01, 0xA0], Status::MissingParameter),
        (vec![0x02, 0xA1, 0x01, 0x61, b'x'], Status::MissingParameter),
        (vec![0x04, 0xA0], Status::InvalidLength),
        (vec![0x06, 0xA1, 0x02, 0x02], Status::MissingParameter),
        (
            vec![0x06, 0xA2, 0x01, 0x03, 0x02, 0x02],
            Status::InvalidParameter,
        ),
        (
            vec![0x06, 0xA2, 0x01, 0x02, 0x02, 0x07],
            Status::InvalidSubcommand,
        ),
        (
            vec![0x06, 0xA2, 0x01, 0x02, 0x02, 0x18, 0x40],
            Status::InvalidSubcommand,
        ),
        (
            vec![0x06, 0xA2, 0x01, 0x02, 0x02, 0x40],
            Status::CborUnexpectedType,
        ),
        (
            [vec![0x04], vec![0; MAX_MSG_SIZE]].concat(),
            Status::RequestTooLarge,
        ),
    ];
    for (message, status) in cases {
        assert_eq!(card.raw(&message), [status.to_byte()], "{message:02x?}");
    }
    // An empty NFCCTAP_MSG.
    assert_eq!(
        card.applet.process(&[0x80, 0x10, 0x00, 0x00]),
        [0x03, 0x90, 0x00]
    );
    // APDU-level errors.
    let sw = |card: &mut Card, apdu: &[u8]| card.applet.process(apdu);
    assert_eq!(sw(&mut card, &[0x80, 0x10, 0x00]), [0x67, 0x00]);
    assert_eq!(
        sw(&mut card, &[0x80, 0x10, 0x00, 0x00, 0x05, 0x04]),
        [0x67, 0x00]
    );
    assert_eq!(
        sw(&mut card, &[0x80, 0x10, 0x01, 0x00, 0x01, 0x04]),
        [0x6A, 0x86]
    );
    assert_eq!(sw(&mut card, &[0x80, 0x55, 0x00, 0x00]), [0x6D, 0x00]);
    assert_eq!(sw(&mut card, &[0x00, 0x01, 0x00, 0x00]), [0x6D, 0x00]);
    assert_eq!(sw(&mut card, &[0x40, 0x10, 0x00, 0x00]), [0x6E, 0x00]);
    assert_eq!(sw(&mut card, &[0x00, 0xC0, 0x00, 0x00]), [0x69, 0x85]);
    assert_eq!(
        sw(&mut card, &[0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00]),
        [0x6A, 0x82]
    );
    // Extended APDUs: getInfo whole in one answer.
    let answer = sw(
        &mut card,
        &[0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00],
    );
    assert_eq!(&answer[answer.len() - 2..], [0x90, 0x00]);
    assert_eq!(answer[0], 0x00);
}

#[test]
fn state_file_keeps_credentials_pin_and_counter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yk.fido.json");
    let touch = TouchControl::new();
    let (mut applet, control) = build(root(), 1, Some(&path), touch.clone()).unwrap();
    let id = {
        let mut c = CtapClient::new(|apdu: &[u8]| applet.process(apdu));
        c.select().unwrap();
        c.set_pin(Protocol::Two, "1234").unwrap();
        assert_eq!(
            c.pin_token(Protocol::Two, "9999", None).unwrap_err(),
            ctap_err(Status::PinInvalid)
        );
        c.make_credential(RP, &CDH, -7, false, None)
            .unwrap()
            .credential_id
    };
    assert_eq!(control.pin_retries(), 7);
    let (mut applet, control) = build(root(), 1, Some(&path), touch).unwrap();
    assert!(control.pin_is_set());
    assert_eq!((control.pin_retries(), control.sign_count()), (7, 1));
    let mut c = CtapClient::new(|apdu: &[u8]| applet.process(apdu));
    c.select().unwrap();
    let answer = c.get_assertion(RP, &CDH, Some(&id), None).unwrap();
    assert_eq!(
        Map::of(&answer).unwrap().bytes(2).unwrap().unwrap()[33..37],
        [0, 0, 0, 2]
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(cbor::int),
            any::<bool>().prop_map(Value::Bool),
            proptest::collection::vec(any::<u8>(), 0..70).prop_map(Value::Bytes),
            "[a-z.]{0,12}".prop_map(Value::Text),
            Just(Value::Null),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((-12i64..12, inner.clone()), 0..8).prop_map(|e| {
                    Value::Map(e.into_iter().map(|(k, v)| (cbor::int(k), v)).collect())
                }),
                proptest::collection::vec(("[a-zA-Z]{1,10}", inner), 0..4).prop_map(
                    |e| Value::Map(e.into_iter().map(|(k, v)| (Value::Text(k), v)).collect())
                ),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn structured_commands(command in prop_oneof![Just(1u8), Just(2), Just(4), Just(6), Just(7), Just(8), Just(11), any::<u8>()], params in proptest::option::of(value())) {
            let mut card = card();
            let mut message = vec![command];
            if let Some(params) = &params {
                message.extend(cbor::encode(params));
            }
            let answer = card.client().raw(&message);
            // Every message gets a CTAP answer (the APDU layer never fails it).
            prop_assert!(answer.is_ok());
        }

        #[test]
        fn raw_apdus(apdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
            let mut card = card();
            for apdu in apdus {
                let out = card.applet.process(&apdu);
                prop_assert!(out.len() >= 2);
            }
        }
    }
}

/// A silent (`up = false`) getAssertion with a pinUvAuthParam from `token`.
fn silent_assertion(
    c: &mut CtapClient<impl FnMut(&[u8]) -> Vec<u8>>,
    credential_id: &[u8],
    token: &[u8],
) -> Result<Option<Value>, ClientError> {
    let params = cbor::int_map(vec![
        (1, cbor::text(RP)),
        (2, cbor::bytes(&CDH)),
        (
            3,
            Value::Array(vec![cbor::text_map(vec![
                ("id", cbor::bytes(credential_id)),
                ("type", cbor::text("public-key")),
            ])]),
        ),
        (5, cbor::text_map(vec![("up", Value::Bool(false))])),
        (6, Value::Bytes(Protocol::Two.authenticate(token, &CDH))),
        (7, cbor::int(2)),
    ]);
    c.call(0x02, Some(&params))
}

#[test]
fn tokens_are_bound_to_their_protocol_and_their_usage_timer() {
    let clock = crate::fido::clock::ManualClock::new();
    let mut card = card();
    card.applet
        .authenticator()
        .set_clock(Arc::new(clock.clone()));
    card.control.set_pin("1234").unwrap();
    let mut c = card.client();
    let reg = c.make_credential(RP, &CDH, -7, false, None).unwrap();
    let id = reg.credential_id.as_slice();

    // A protocol-2 token presented with a 16-byte protocol-1 MAC.
    let token = c
        .pin_token(Protocol::Two, "1234", Some((PERM_GA, RP)))
        .unwrap();
    assert_eq!(
        c.get_assertion(RP, &CDH, Some(id), Some((Protocol::One, &token)))
            .unwrap_err(),
        ctap_err(Status::PinAuthInvalid)
    );

    // Silent assertions carry UV while the token lives ...
    let answer = silent_assertion(&mut c, id, &token).unwrap().unwrap();
    let auth_data = Map::of(&answer)
        .unwrap()
        .bytes(2)
        .unwrap()
        .unwrap()
        .to_vec();
    assert_eq!(auth_data[32], FLAG_UV);
    // ... and stop once it has not been used for the initial usage limit.
    clock.advance(crate::fido::pin::INITIAL_USAGE_TIME_LIMIT + Duration::from_secs(1));
    assert_eq!(
        silent_assertion(&mut c, id, &token).unwrap_err(),
        ctap_err(Status::PinAuthInvalid)
    );

    // Used every 20 s without presence, a token still ends at the max
    // usage time period: one token is not unlimited silent UV.
    let token = c
        .pin_token(Protocol::Two, "1234", Some((PERM_GA, RP)))
        .unwrap();
    let step = Duration::from_secs(20);
    let mut elapsed = Duration::ZERO;
    let mut uses = 0;
    while elapsed + step <= crate::fido::pin::MAX_USAGE_TIME_PERIOD {
        clock.advance(step);
        elapsed += step;
        silent_assertion(&mut c, id, &token).unwrap().unwrap();
        uses += 1;
    }
    assert_eq!(uses, 30);
    clock.advance(step);
    assert_eq!(
        silent_assertion(&mut c, id, &token).unwrap_err(),
        ctap_err(Status::PinAuthInvalid)
    );
    // A token not yet expired is spent by a use with presence.
    let token = c
        .pin_token(Protocol::Two, "1234", Some((PERM_GA, RP)))
        .unwrap();
    c.get_assertion(RP, &CDH, Some(id), Some((Protocol::Two, &token)))
        .unwrap();
    assert_eq!(
        silent_assertion(&mut c, id, &token).unwrap_err(),
        ctap_err(Status::PinAuthInvalid)
    );
}

#[test]
fn get_next_assertion_expires_thirty_seconds_after_the_last_call() {
    let clock = crate::fido::clock::ManualClock::new();
    let mut card = card();
    card.applet
        .authenticator()
        .set_clock(Arc::new(clock.clone()));
    let mut c = card.client();
    for user in [b"user-a".as_slice(), b"user-b", b"user-c"] {
        let params = cbor::int_map(vec![
            (1, cbor::bytes(&CDH)),
            (2, cbor::text_map(vec![("id", cbor::text(RP))])),
            (3, cbor::text_map(vec![("id", cbor::bytes(user))])),
            (
                4,
                Value::Array(vec![cbor::text_map(vec![
                    ("alg", cbor::int(-7)),
                    ("type", cbor::text("public-key")),
                ])]),
            ),
            (7, cbor::text_map(vec![("rk", Value::Bool(true))])),
        ]);
        c.call(0x01, Some(&params)).unwrap();
    }
    let first = c.get_assertion(RP, &CDH, None, None).unwrap();
    assert_eq!(Map::of(&first).unwrap().int(5).unwrap(), Some(3));
    // Each call restarts the 30 s window ...
    clock.advance(Duration::from_secs(25));
    c.call(0x08, None).unwrap().unwrap();
    // ... and past it the remaining credential is gone.
    clock.advance(NEXT_ASSERTION_TIMEOUT + Duration::from_secs(1));
    assert_eq!(
        c.call(0x08, None).unwrap_err(),
        ctap_err(Status::NotAllowed)
    );
    assert_eq!(
        c.call(0x08, None).unwrap_err(),
        ctap_err(Status::NotAllowed),
        "an expired list does not come back"
    );
}

#[test]
fn a_pin_try_is_saved_before_the_pin_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let card_dir = dir.path().join("card");
    std::fs::create_dir(&card_dir).unwrap();
    let path = card_dir.join("yk.fido.json");
    let state = crate::fido::state::FidoState::new(root(), 42).unwrap();
    let touch = TouchControl::new();
    let (mut applet, control) = crate::fido::from_state(state, Some(&path), touch);
    control.set_pin("1234").unwrap();
    let mut c = CtapClient::new(|apdu: &[u8]| applet.process(apdu));
    c.select().unwrap();

    // A wrong guess is on disk when the answer comes.
    assert_eq!(
        c.pin_token(Protocol::Two, "9999", Some((PERM_GA, RP)))
            .unwrap_err(),
        ctap_err(Status::PinInvalid)
    );
    let on_disk = crate::fido::state::FidoState::load(&path).unwrap();
    assert_eq!(on_disk.pin_retries, 7);

    // The attack: keep the counter from being written (a full or failing
    // disk, or power cut at the write) and guess. The PIN is then not
    // compared at all, even the right one gets no token, and the try
    // still counts.
    std::fs::remove_dir_all(&card_dir).unwrap();
    assert_eq!(
        c.pin_token(Protocol::Two, "1234", Some((PERM_GA, RP)))
            .unwrap_err(),
        ctap_err(Status::Other)
    );
    assert_eq!(control.pin_retries(), 6);
    // Once the disk works again, so does the PIN (and the count resets).
    std::fs::create_dir(&card_dir).unwrap();
    c.pin_token(Protocol::Two, "1234", Some((PERM_GA, RP)))
        .unwrap();
    assert_eq!(control.pin_retries(), 8);
    assert_eq!(
        crate::fido::state::FidoState::load(&path)
            .unwrap()
            .pin_retries,
        8
    );
}
