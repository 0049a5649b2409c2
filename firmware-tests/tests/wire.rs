//! Raw APDUs through the real PC/SC stack (libpcsclite → pcscd → vpcd):
//! the status words for malformed and edge-case commands, response
//! chaining and extended APDUs, as a host without the `yubikey` crate
//! sees them. Holds for a real YubiKey 5 too (non-destructive).

// Conformance checks: a failed assertion or unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use std::ffi::CString;

fn reader_of(ctx: &pcsc::Context, serial: u32) -> CString {
    for reader in ctx.list_readers_owned().unwrap() {
        let Ok(card) = ctx.connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::T1) else {
            continue;
        };
        let _ = transmit(&card, &[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8]);
        let (data, sw) = transmit(&card, &[0, 0xF8, 0, 0]);
        if sw == 0x9000 && data == serial.to_be_bytes() {
            return reader;
        }
    }
    panic!("no reader holds the key with serial {serial}");
}

fn transmit(card: &pcsc::Card, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let out = card.transmit(apdu, &mut buf).unwrap();
    let (data, sw) = out.split_at(out.len() - 2);
    (data.to_vec(), u16::from_be_bytes([sw[0], sw[1]]))
}

#[test]
fn status_words_chaining_and_extended_apdus_over_pcsc() {
    let Some(dev) = Fixture::new(false) else {
        return;
    };
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let reader = reader_of(&ctx, dev.serial());
    let card = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::T1)
        .unwrap();
    let (apt, sw) = transmit(&card, &[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8]);
    assert_eq!((apt.first(), sw), (Some(&0x61), 0x9000));

    // Case 1 and the crate's bare `Lc = 00` both get the version.
    let (v1, sw1) = transmit(&card, &[0, 0xFD, 0, 0]);
    let (v2, sw2) = transmit(&card, &[0, 0xFD, 0, 0, 0]);
    assert_eq!((sw1, sw2), (0x9000, 0x9000));
    assert_eq!(v1, v2);
    assert_eq!(v1.len(), 3);

    // Malformed and unknown commands.
    assert_eq!(transmit(&card, &[0, 0x99, 0, 0]).1, 0x6D00, "unknown INS");
    assert_eq!(
        transmit(&card, &[0x80, 0xFD, 0, 0]).1,
        0x6E00,
        "unknown CLA"
    );
    assert_eq!(
        transmit(&card, &[0, 0xCB, 0x3F, 0xFF, 3, 0x5C, 5, 0x5F]).1,
        0x6A80,
        "truncated tag list"
    );
    assert_eq!(
        transmit(&card, &[0, 0xCB, 0x3F, 0xFF, 5, 0x5C, 3, 0x5F, 0xC1, 0x16]).1,
        0x6A82,
        "absent object"
    );
    // PIN status without spending a try, and the retry counter.
    let (_, sw) = transmit(&card, &[0, 0x20, 0, 0x80]);
    assert_eq!(sw & 0xFFF0, 0x63C0);

    // The f9 certificate: 61xx chaining with short APDUs...
    let get_f9 = [0, 0xCB, 0x3F, 0xFF, 5, 0x5C, 3, 0x5F, 0xFF, 0x01];
    let (mut object, mut sw) = transmit(&card, &get_f9);
    while sw >> 8 == 0x61 {
        let (more, next) = transmit(&card, &[0, 0xC0, 0, 0, 0]);
        object.extend(more);
        sw = next;
    }
    assert_eq!(sw, 0x9000);
    assert!(object.len() > 256);
    if dev.is_virtual() {
        // ...and in one piece with an extended Le.
        let mut extended = vec![
            0, 0xCB, 0x3F, 0xFF, 0, 0, 5, 0x5C, 3, 0x5F, 0xFF, 0x01, 0, 0,
        ];
        let (whole, sw) = transmit(&card, &extended);
        assert_eq!((sw, whole.len()), (0x9000, object.len()));
        assert_eq!(whole, object);
        // A wrong extended Lc is a length error.
        extended[6] = 9;
        assert_eq!(transmit(&card, &extended).1, 0x6700);
    }
}
