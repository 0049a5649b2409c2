//! The FIDO applet's framing through the real PC/SC stack (libpcsclite →
//! pcscd → vpcd), with APDUs no client library sends on its own: extended
//! APDUs (the whole answer at once), command chaining with CLA `90` across
//! dozens of links, `61xx` collection, status words for malformed APDUs, and a
//! property check that arbitrary CTAP messages never break the card.
//! Non-destructive; against the virtual key or the reader named by
//! `SIGNET_FIDO_READER`.

// Conformance checks: a failed assertion or unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fido_common;

use fido_common::FidoFixture;
use signet_firmware_tests::fido::cbor::{self, Map, Value};
use signet_firmware_tests::fido::client::{ClientError, CtapClient};
use signet_firmware_tests::fido::status::Status;
use signet_firmware_tests::fido::FIDO_AID;

fn connect(dev: &FidoFixture) -> pcsc::Card {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let name = dev.reader();
    let reader = ctx
        .list_readers_owned()
        .unwrap()
        .into_iter()
        .find(|r| r.to_string_lossy().contains(&name))
        .unwrap_or_else(|| panic!("no reader matching {name}"));
    ctx.connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::T1)
        .unwrap()
}

fn transmit(card: &pcsc::Card, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let out = card.transmit(apdu, &mut buf).unwrap();
    let (data, sw) = out.split_at(out.len() - 2);
    (data.to_vec(), u16::from_be_bytes([sw[0], sw[1]]))
}

fn select(card: &pcsc::Card) {
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, FIDO_AID.len() as u8];
    apdu.extend_from_slice(&FIDO_AID);
    let (version, sw) = transmit(card, &apdu);
    assert_eq!(sw, 0x9000);
    assert!(
        version.starts_with(b"FIDO_2_0") || version == b"U2F_V2",
        "{version:?}"
    );
}

#[test]
fn extended_chained_and_malformed_apdus_over_pcsc() {
    let Some(dev) = FidoFixture::new(false) else {
        return;
    };
    let card = connect(&dev);
    select(&card);

    // Extended Lc and Le: getInfo comes back whole, status byte first.
    let (info, sw) = transmit(
        &card,
        &[0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00],
    );
    assert_eq!(sw, 0x9000);
    assert_eq!(info[0], 0x00);
    let decoded = cbor::decode(&info[1..]).unwrap();
    assert_eq!(cbor::encode(&decoded), info[1..], "canonical CBOR");
    // The same in a short APDU with Le: the same bytes.
    let (short, sw) = transmit(&card, &[0x80, 0x10, 0x00, 0x00, 0x01, 0x04, 0x00]);
    assert!(sw == 0x9000 || sw >> 8 == 0x61);
    assert_eq!(short[..], info[..short.len()]);

    // A chained message of more than 40 links of 25 bytes (within the
    // 1200-byte maxMsgSize of a YubiKey): a
    // getAssertion carrying a long unknown extension, which authenticators
    // ignore. Only if every link arrives in order is it valid CBOR, and the
    // answer NO_CREDENTIALS (not INVALID_CBOR).
    let mut message = vec![0x02];
    message.extend(cbor::encode(&cbor::int_map(vec![
        (1, cbor::text("chained.example")),
        (2, Value::Bytes(vec![0x5A; 32])),
        (
            4,
            cbor::text_map(vec![("x-signet-filler", Value::Bytes(vec![0xA5; 1100]))]),
        ),
    ])));
    assert!(message.len() > 40 * 25 && message.len() <= 1200);
    let mut links = message.chunks(25).peekable();
    let mut answer = None;
    while let Some(link) = links.next() {
        let last = links.peek().is_none();
        let mut apdu = vec![
            if last { 0x80 } else { 0x90 },
            0x10,
            0x00,
            0x00,
            link.len() as u8,
        ];
        apdu.extend_from_slice(link);
        let (data, sw) = transmit(&card, &apdu);
        assert_eq!(sw, 0x9000);
        if last {
            answer = Some(data);
        } else {
            assert!(data.is_empty());
        }
    }
    assert_eq!(answer.unwrap(), [Status::NoCredentials.to_byte()]);

    // Malformed APDUs get ISO status words; the applet stays usable.
    assert_eq!(transmit(&card, &[0x80, 0x10, 0x00]).1, 0x6700);
    assert_eq!(
        transmit(&card, &[0x80, 0x10, 0x00, 0x00, 0x05, 0x04]).1,
        0x6700
    );
    assert_eq!(
        transmit(&card, &[0x80, 0x10, 0x01, 0x00, 0x01, 0x04]).1,
        0x6A86
    );
    assert_eq!(transmit(&card, &[0x80, 0x55, 0x00, 0x00]).1, 0x6D00);
    let mut client = CtapClient::new(|apdu: &[u8]| {
        let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        card.transmit(apdu, &mut buf).unwrap().to_vec()
    });
    client.select().unwrap();
    let info = client.get_info().unwrap();
    assert!(
        Map::of(&info).unwrap().bytes(3).unwrap().is_some(),
        "AAGUID"
    );
    assert_eq!(
        client.call(0x01, Some(&cbor::int(7))).unwrap_err(),
        ClientError::Ctap(Status::CborUnexpectedType.to_byte())
    );
}

#[test]
fn random_ctap_messages_never_break_the_card() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let Some(dev) = FidoFixture::new(false) else {
        return;
    };
    if !dev.is_virtual() {
        // Random commands could reset or register on a real key.
        eprintln!("skipped: needs the virtual key");
        return;
    }
    let card = connect(&dev);
    let mut client = CtapClient::new(|apdu: &[u8]| {
        let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        card.transmit(apdu, &mut buf).unwrap().to_vec()
    });
    client.select().unwrap();
    // The runner takes a `Fn`; the client needs `&mut`.
    let client = std::cell::RefCell::new(client);
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let strategy = (
        prop_oneof![
            Just(0x01u8),
            Just(0x02),
            Just(0x06),
            Just(0x08),
            any::<u8>()
        ],
        proptest::collection::vec(any::<u8>(), 0..600),
    );
    runner
        .run(&strategy, |(command, body)| {
            // Never a reset: it would wipe the card the next case uses.
            let command = if command == 0x07 { 0x04 } else { command };
            let answer = client.borrow_mut().raw(&[&[command][..], &body].concat());
            prop_assert!(answer.is_ok(), "{answer:?}");
            prop_assert!(!answer.unwrap().is_empty());
            Ok(())
        })
        .unwrap();
    // Still a working authenticator afterwards.
    assert!(client.borrow_mut().get_info().is_ok());
    assert_eq!(dev.fido().unwrap().pin_retries(), 8);
}
