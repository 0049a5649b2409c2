//! The bodies of the `apdu` and `ctap` fuzz targets
//! (`../fuzz/fuzz_targets/`), kept here so that the committed seed corpora
//! also run as ordinary tests (`tests/fuzz_corpus.rs`) wherever libFuzzer is
//! not available.
//!
//! `apdu`:
//! Input format: one mode byte, then a sequence of `[len][len bytes]`
//! command APDUs fed to a fresh applet. Mode bit 0: first verify the PIN and
//! authenticate with the management key (so inputs reach key generation,
//! PUT DATA, signing); bit 1: reset the card after every command. RSA key
//! generation is skipped (too slow for fuzzing; the tests cover it).
//!
//! Checks beyond "no panic": a parsed command re-encodes to an APDU that
//! parses to the same command; every response carries a status word.

// A broken invariant must crash the fuzzer: that is what it looks for.
#![allow(clippy::expect_used)]

use crate::apdu::{Command, Response, StatusWord};
use crate::applet::Applet;
use crate::attest::AttestationRoot;
use crate::keys::MgmKey;
use crate::state::{CardState, DeviceInfo};
use crate::tlv::{self, Tlv};
use crate::touch::TouchControl;
use std::sync::OnceLock;

fn pristine() -> &'static CardState {
    static STATE: OnceLock<CardState> = OnceLock::new();
    STATE.get_or_init(|| {
        let root = AttestationRoot::create().expect("attestation root");
        let info = DeviceInfo {
            serial: 1,
            firmware: [5, 7, 1],
            form_factor: 1,
        };
        CardState::new(info, &root).expect("card state")
    })
}

fn send(applet: &mut Applet, apdu: &[u8]) -> Response {
    let out = applet.process(apdu);
    Response::parse(&out).expect("every response has a status word")
}

/// VERIFY with the factory PIN, then mutual authentication with the factory
/// management key (AES-192 on firmware 5.7).
fn unlock(applet: &mut Applet) {
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(b"123456\xFF\xFF");
    assert_eq!(send(applet, &verify).sw, StatusWord::OK);
    let key = MgmKey::factory(true);
    let r = send(
        applet,
        &[0x00, 0x87, 0x0A, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00],
    );
    let outer = Tlv::decode_single(&r.data).expect("witness TLV");
    let inner = Tlv::decode_all(outer.value).expect("witness TLV");
    let witness = key
        .decrypt_block(tlv::find(&inner, 0x80).expect("witness"))
        .expect("decrypt");
    let mut body = tlv::encode(0x80, &witness);
    body.extend(tlv::encode(0x81, &[0u8; 16]));
    let data = tlv::encode(0x7C, &body);
    let mut auth = vec![0x00, 0x87, 0x0A, 0x9B, data.len() as u8];
    auth.extend_from_slice(&data);
    assert_eq!(send(applet, &auth).sw, StatusWord::OK);
}

/// RSA key generation takes 0.1–10 s and would starve the fuzzer; the tests
/// cover it. Such GENERATE commands are skipped.
fn generates_rsa(apdu: &[u8]) -> bool {
    apdu.get(1) == Some(&0x47)
        && apdu
            .windows(3)
            .any(|w| w[0] == 0x80 && w[1] == 0x01 && matches!(w[2], 0x05 | 0x06 | 0x07 | 0x16))
}

/// Runs one fuzz input (see the module documentation).
pub fn apdu_sequence(data: &[u8]) {
    if let Ok(cmd) = Command::parse(data) {
        assert_eq!(
            Command::parse(&cmd.to_bytes()).as_ref(),
            Ok(&cmd),
            "re-encoded command must parse back"
        );
    }
    let _ = Tlv::decode_all(data);

    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let mut applet = Applet::new(pristine().clone(), None, TouchControl::new());
    if mode & 1 == 1 {
        unlock(&mut applet);
    }
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (apdu, next) = tail.split_at(len);
        if !generates_rsa(apdu) {
            let _ = send(&mut applet, apdu);
        }
        if mode & 2 == 2 {
            applet.reset();
        }
        rest = next;
    }
}

fn pristine_fido() -> &'static crate::fido::state::FidoState {
    static STATE: OnceLock<crate::fido::state::FidoState> = OnceLock::new();
    STATE.get_or_init(|| {
        let root = AttestationRoot::create().expect("attestation root");
        crate::fido::state::FidoState::new(&root, 1).expect("FIDO state")
    })
}

/// Runs one input of the `ctap` fuzz target: the CTAP2 command parser and
/// the authenticator behind it.
///
/// Input format: one mode byte, then CTAP messages (command byte + CBOR).
/// Mode bit 0: the key has the PIN `1234`; bit 1: the rest is a sequence
/// of `[len][message]` (so PIN state and getNextAssertion carry over),
/// otherwise it is one message. Touches are approved.
///
/// Checks beyond "no panic": CBOR that decodes re-encodes (canonically) to
/// bytes that decode to the same value; every message gets an NFCCTAP
/// answer with `9000` and a status byte; a success answer's CBOR is
/// canonical.
pub fn ctap_messages(data: &[u8]) {
    use crate::fido::cbor;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if let Some(body) = rest.get(1..) {
        if let Ok(value) = cbor::decode(body) {
            let again = cbor::encode(&value);
            assert_eq!(
                cbor::decode(&again).map(|v| cbor::encode(&v)),
                Ok(again),
                "canonical re-encoding must decode to the same value"
            );
        }
    }
    let (mut applet, control) =
        crate::fido::from_state(pristine_fido().clone(), None, TouchControl::new());
    if mode & 1 == 1 {
        control.set_pin("1234").expect("no state file to write");
    }
    let mut client = crate::fido::client::CtapClient::new(|apdu: &[u8]| applet.process(apdu));
    client.select().expect("SELECT answers");
    let mut run = |message: &[u8]| {
        let answer = client
            .raw(message)
            .expect("every CTAP message gets a 9000 answer");
        match answer.split_first() {
            Some((0, body)) if !body.is_empty() => {
                let value = cbor::decode(body).expect("success answers are CBOR");
                assert_eq!(cbor::encode(&value), body, "answers are canonical CBOR");
            }
            Some(_) => {}
            None => panic!("empty CTAP answer"),
        }
    };
    if mode & 2 == 0 {
        run(rest);
        return;
    }
    let mut rest = rest;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (message, next) = tail.split_at(len);
        run(message);
        rest = next;
    }
}
