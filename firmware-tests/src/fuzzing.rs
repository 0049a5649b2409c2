//! The body of the `apdu` fuzz target (`../fuzz/fuzz_targets/apdu.rs`),
//! kept here so that the committed seed corpus also runs as an ordinary
//! test (`tests/fuzz_corpus.rs`) wherever libFuzzer is not available.
//!
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
