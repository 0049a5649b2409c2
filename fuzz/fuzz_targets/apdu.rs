//! Fuzz the virtual YubiKey's APDU parser and the PIV applet behind it.
//!
//! Input: a sequence of `[len][len bytes]` command APDUs, fed to a fresh
//! applet (optionally after a real PIN verification and management-key
//! authentication, so the fuzzer reaches key generation, PUT DATA, signing).
//! Checks beyond "no panic": every parsed command re-encodes to an APDU that
//! parses to the same command, and every response carries a status word.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_firmware_tests::apdu::{Command, Response, StatusWord};
use signet_firmware_tests::applet::Applet;
use signet_firmware_tests::attest::AttestationRoot;
use signet_firmware_tests::keys::{MgmKey, DEFAULT_MGM_KEY};
use signet_firmware_tests::state::{CardState, DeviceInfo};
use signet_firmware_tests::tlv::{self, Tlv};
use signet_firmware_tests::touch::TouchControl;
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

/// VERIFY with the default PIN, then mutual authentication with the
/// default (AES-192 on 5.7) management key.
fn unlock(applet: &mut Applet) {
    let pin = [b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF];
    let mut verify = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    verify.extend_from_slice(&pin);
    assert_eq!(send(applet, &verify).sw, StatusWord::OK);
    let key = MgmKey::factory(true);
    let r = send(applet, &[0x00, 0x87, 0x0A, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00]);
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
    let _ = DEFAULT_MGM_KEY;
}

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = Command::parse(data) {
        assert_eq!(Command::parse(&cmd.to_bytes()).as_ref(), Ok(&cmd));
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
        let _ = send(&mut applet, apdu);
        if mode & 2 == 2 {
            applet.reset();
        }
        rest = next;
    }
});
