use super::*;
use crate::attest::AttestationRoot;
use crate::keys::DEFAULT_MGM_KEY;
use crate::state::DeviceInfo;
use crate::touch::TouchMode;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::elliptic_curve::Generate;

fn applet(firmware: [u8; 3]) -> Applet {
    let root = AttestationRoot::create().unwrap();
    let info = DeviceInfo {
        serial: 1_234_567,
        firmware,
        form_factor: 1,
    };
    Applet::new(
        CardState::new(info, &root).unwrap(),
        None,
        TouchControl::new(),
    )
}

/// Sends one APDU, following 61xx with GET RESPONSE.
fn send(a: &mut Applet, apdu: &[u8]) -> Response {
    let mut r = Response::parse(&a.process(apdu)).unwrap();
    while r.sw.0 >> 8 == 0x61 {
        let next = Response::parse(&a.process(&[0, 0xC0, 0, 0, 0])).unwrap();
        r.data.extend(next.data);
        r.sw = next.sw;
    }
    r
}

fn cmd(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    Command {
        cla: 0,
        ins,
        p1,
        p2,
        data: data.to_vec(),
        le: None,
    }
    .to_bytes()
}

/// Sends a command with data, chaining in 255-byte links like the yubikey crate.
fn send_chained(a: &mut Applet, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Response {
    let mut chunks: Vec<&[u8]> = data.chunks(255).collect();
    let last = chunks.pop().unwrap_or(&[]);
    for c in chunks {
        let mut apdu = vec![0x10, ins, p1, p2, c.len() as u8];
        apdu.extend_from_slice(c);
        assert_eq!(send(a, &apdu).sw, StatusWord::OK);
    }
    send(a, &cmd(ins, p1, p2, last))
}

fn mgm_auth(a: &mut Applet, alg: MgmAlgorithm, key: &[u8]) -> StatusWord {
    let host = MgmKey::new(alg, key, false).unwrap();
    let r = send(
        a,
        &cmd(0x87, alg.to_byte(), 0x9B, &[0x7C, 0x02, 0x80, 0x00]),
    );
    if r.sw != StatusWord::OK {
        return r.sw;
    }
    let outer = Tlv::decode_single(&r.data).unwrap();
    let inner = Tlv::decode_all(outer.value).unwrap();
    let witness = host
        .decrypt_block(tlv::find(&inner, 0x80).unwrap())
        .unwrap();
    let challenge = vec![0x42u8; alg.block_len()];
    let mut body = tlv::encode(0x80, &witness);
    body.extend(tlv::encode(0x81, &challenge));
    let r = send(
        a,
        &cmd(0x87, alg.to_byte(), 0x9B, &tlv::encode(0x7C, &body)),
    );
    if r.sw == StatusWord::OK {
        let outer = Tlv::decode_single(&r.data).unwrap();
        let inner = Tlv::decode_all(outer.value).unwrap();
        assert_eq!(
            tlv::find(&inner, 0x82).unwrap(),
            host.encrypt_block(&challenge).unwrap()
        );
    }
    r.sw
}

fn verify_pin(a: &mut Applet, pin: &[u8]) -> StatusWord {
    send(a, &cmd(0x20, 0, 0x80, state::pad8(pin).unwrap().as_slice())).sw
}

fn generate(a: &mut Applet, slot: u8, alg: u8, pin: u8, touch: u8) -> Response {
    let mut inner = tlv::encode(0x80, &[alg]);
    if pin != 0 {
        inner.extend(tlv::encode(0xAA, &[pin]));
    }
    if touch != 0 {
        inner.extend(tlv::encode(0xAB, &[touch]));
    }
    send(a, &cmd(0x47, 0, slot, &tlv::encode(0xAC, &inner)))
}

fn sign(a: &mut Applet, slot: u8, alg: u8, digest: &[u8]) -> Response {
    let mut inner = tlv::encode(0x82, &[]);
    inner.extend(tlv::encode(0x81, digest));
    send_chained(a, 0x87, alg, slot, &tlv::encode(0x7C, &inner))
}

fn p256_public(generate_response: &[u8]) -> p256::ecdsa::VerifyingKey {
    let outer = Tlv::decode_single(generate_response).unwrap();
    assert_eq!(outer.tag, 0x7F49);
    let point = tlv::find(&Tlv::decode_all(outer.value).unwrap(), 0x86).unwrap();
    assert_eq!(point.len(), 65);
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap()
}

fn signature_of(r: &Response) -> Vec<u8> {
    let outer = Tlv::decode_single(&r.data).unwrap();
    tlv::find(&Tlv::decode_all(outer.value).unwrap(), 0x82)
        .unwrap()
        .to_vec()
}

#[test]
fn atr_checksum_is_valid() {
    assert_eq!(ATR[1..].iter().fold(0u8, |acc, b| acc ^ b), 0);
}

#[test]
fn select_version_serial() {
    let mut a = applet([5, 4, 3]);
    let r = send(&mut a, &[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8]);
    assert_eq!(r.sw, StatusWord::OK);
    assert_eq!(r.data[0], 0x61);
    assert_eq!(
        send(&mut a, &[0, 0xA4, 4, 0, 5, 1, 2, 3, 4, 5]).sw,
        StatusWord::NOT_FOUND
    );
    assert_eq!(send(&mut a, &[0, 0xFD, 0, 0, 0]).data, [5, 4, 3]);
    assert_eq!(
        send(&mut a, &[0, 0xF8, 0, 0, 0]).data,
        1_234_567u32.to_be_bytes()
    );
}

#[test]
fn malformed_apdus_get_status_words() {
    let mut a = applet([5, 4, 3]);
    assert_eq!(send(&mut a, &[0]).sw, StatusWord::WRONG_LENGTH);
    assert_eq!(
        send(&mut a, &[0, 0x20, 0, 0x80, 9, 1]).sw,
        StatusWord::WRONG_LENGTH
    );
    assert_eq!(
        send(&mut a, &[0, 0x99, 0, 0]).sw,
        StatusWord::INS_NOT_SUPPORTED
    );
    assert_eq!(
        send(&mut a, &[0x80, 0xFD, 0, 0]).sw,
        StatusWord::CLA_NOT_SUPPORTED
    );
    // Bad TLV in GENERAL AUTHENTICATE and GET DATA.
    assert_eq!(
        send(&mut a, &cmd(0x87, 3, 0x9B, &[0x7C, 5, 0x80])).sw,
        StatusWord::INCORRECT_DATA
    );
    assert_eq!(
        send(&mut a, &cmd(0xCB, 0x3F, 0xFF, &[0x5C, 9])).sw,
        StatusWord::INCORRECT_DATA
    );
    assert_eq!(
        send(&mut a, &cmd(0xCB, 0, 0, &[0x5C, 1, 0x7E])).sw,
        StatusWord::INCORRECT_P1P2
    );
    assert_eq!(
        send(&mut a, &[0, 0xC0, 0, 0]).sw,
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
}

#[test]
fn pin_retries_block_and_unblock() {
    let mut a = applet([5, 4, 3]);
    assert_eq!(
        send(&mut a, &cmd(0x20, 0, 0x80, &[])).sw,
        StatusWord::retries_left(3)
    );
    assert_eq!(verify_pin(&mut a, b"000000"), StatusWord::retries_left(2));
    assert_eq!(verify_pin(&mut a, b"123456"), StatusWord::OK);
    assert_eq!(send(&mut a, &cmd(0x20, 0, 0x80, &[])).sw, StatusWord::OK);
    for left in [2, 1, 0] {
        assert_eq!(
            verify_pin(&mut a, b"000000"),
            StatusWord::retries_left(left)
        );
    }
    assert_eq!(verify_pin(&mut a, b"123456"), StatusWord::AUTH_BLOCKED);
    assert_eq!(
        send(&mut a, &cmd(0x20, 0, 0x80, &[])).sw,
        StatusWord::AUTH_BLOCKED
    );
    // RESET is refused while the PUK still works.
    assert_eq!(
        send(&mut a, &cmd(0xFB, 0, 0, &[])).sw,
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
    // Unblock with the PUK, setting a new PIN.
    let mut data = state::pad8(b"12345678").unwrap().to_vec();
    data.extend_from_slice(state::pad8(b"654321").unwrap().as_slice());
    assert_eq!(send(&mut a, &cmd(0x2C, 0, 0x80, &data)).sw, StatusWord::OK);
    assert_eq!(verify_pin(&mut a, b"654321"), StatusWord::OK);
    // Change the PIN; a too-short new PIN is refused.
    let mut data = state::pad8(b"654321").unwrap().to_vec();
    data.extend_from_slice(state::pad8(b"12345").unwrap().as_slice());
    assert_eq!(
        send(&mut a, &cmd(0x24, 0, 0x80, &data)).sw,
        StatusWord::INCORRECT_DATA
    );
    let mut data = state::pad8(b"654321").unwrap().to_vec();
    data.extend_from_slice(state::pad8(b"11112222").unwrap().as_slice());
    assert_eq!(send(&mut a, &cmd(0x24, 0, 0x80, &data)).sw, StatusWord::OK);
    assert_eq!(verify_pin(&mut a, b"11112222"), StatusWord::OK);
}

#[test]
fn reset_after_pin_and_puk_blocked() {
    let mut a = applet([5, 4, 3]);
    assert_eq!(
        mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY),
        StatusWord::OK
    );
    assert_eq!(generate(&mut a, 0x9A, 0x11, 0, 0).sw, StatusWord::OK);
    for _ in 0..3 {
        verify_pin(&mut a, b"000000");
    }
    let mut bad = state::pad8(b"00000000").unwrap().to_vec();
    bad.extend_from_slice(state::pad8(b"000000").unwrap().as_slice());
    for left in [2, 1, 0] {
        assert_eq!(
            send(&mut a, &cmd(0x24, 0, 0x81, &bad)).sw,
            StatusWord::retries_left(left)
        );
    }
    assert_eq!(
        send(&mut a, &cmd(0x24, 0, 0x81, &bad)).sw,
        StatusWord::AUTH_BLOCKED
    );
    assert_eq!(send(&mut a, &cmd(0xFB, 0, 0, &[])).sw, StatusWord::OK);
    assert!(a.state().slots.is_empty());
    assert!(a.state().f9_cert_der().is_some());
    assert_eq!(verify_pin(&mut a, b"123456"), StatusWord::OK);
}

#[test]
fn mgm_auth_all_algorithms() {
    let mut a = applet([5, 4, 3]);
    assert_eq!(
        mgm_auth(&mut a, MgmAlgorithm::TripleDes, &[9u8; 24]),
        StatusWord::SECURITY_STATUS
    );
    // Wrong algorithm for the current key.
    assert_eq!(
        mgm_auth(&mut a, MgmAlgorithm::Aes192, &DEFAULT_MGM_KEY),
        StatusWord::INCORRECT_P1P2
    );
    assert_eq!(
        mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY),
        StatusWord::OK
    );
    for (alg, len) in [
        (MgmAlgorithm::Aes128, 16),
        (MgmAlgorithm::Aes256, 32),
        (MgmAlgorithm::Aes192, 24),
        (MgmAlgorithm::TripleDes, 24),
    ] {
        let key = vec![0x11u8; len];
        let mut data = vec![alg.to_byte(), 0x9B, len as u8];
        data.extend_from_slice(&key);
        assert_eq!(
            send(&mut a, &cmd(0xFF, 0xFF, 0xFF, &data)).sw,
            StatusWord::OK
        );
        a.reset();
        assert_eq!(
            send(&mut a, &cmd(0xFF, 0xFF, 0xFF, &data)).sw,
            StatusWord::SECURITY_STATUS
        );
        assert_eq!(mgm_auth(&mut a, alg, &key), StatusWord::OK);
    }
    // One-way authentication (challenge, response).
    a.reset();
    let host = MgmKey::new(MgmAlgorithm::TripleDes, &[0x11u8; 24], false).unwrap();
    let r = send(&mut a, &cmd(0x87, 3, 0x9B, &[0x7C, 2, 0x81, 0]));
    let outer = Tlv::decode_single(&r.data).unwrap();
    let challenge = tlv::find(&Tlv::decode_all(outer.value).unwrap(), 0x81)
        .unwrap()
        .to_vec();
    let answer = host.encrypt_block(&challenge).unwrap();
    let r = send(
        &mut a,
        &cmd(
            0x87,
            3,
            0x9B,
            &tlv::encode(0x7C, &tlv::encode(0x82, &answer)),
        ),
    );
    assert_eq!(r.sw, StatusWord::OK);
}

#[test]
fn firmware_5_7_defaults_to_aes192_and_supports_ed25519() {
    let mut a = applet([5, 7, 1]);
    assert_eq!(
        mgm_auth(&mut a, MgmAlgorithm::Aes192, &DEFAULT_MGM_KEY),
        StatusWord::OK
    );
    let r = generate(&mut a, 0x9C, 0xE0, 1, 1);
    assert_eq!(r.sw, StatusWord::OK);
    let point = tlv::find(
        &Tlv::decode_all(Tlv::decode_single(&r.data).unwrap().value).unwrap(),
        0x86,
    )
    .unwrap()
    .to_vec();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&point.try_into().unwrap()).unwrap();
    let msg = b"message to sign in full";
    let sig = signature_of(&sign(&mut a, 0x9C, 0xE0, msg));
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_slice(&sig).unwrap())
        .unwrap();
    assert_eq!(generate(&mut a, 0x9D, 0xE1, 0, 0).sw, StatusWord::OK);
    let mut b = applet([5, 4, 3]);
    assert_eq!(
        mgm_auth(&mut b, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY),
        StatusWord::OK
    );
    assert_eq!(
        generate(&mut b, 0x9C, 0xE0, 0, 0).sw,
        StatusWord::INCORRECT_DATA
    );
}

#[test]
fn generate_needs_mgm_and_valid_slot() {
    let mut a = applet([5, 4, 3]);
    assert_eq!(
        generate(&mut a, 0x9A, 0x11, 0, 0).sw,
        StatusWord::SECURITY_STATUS
    );
    mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY);
    assert_eq!(
        generate(&mut a, 0x9B, 0x11, 0, 0).sw,
        StatusWord::WRONG_P1P2
    );
    assert_eq!(
        generate(&mut a, 0x9A, 0x42, 0, 0).sw,
        StatusWord::INCORRECT_DATA
    );
    assert_eq!(
        generate(&mut a, 0x9A, 0x11, 7, 0).sw,
        StatusWord::INCORRECT_DATA
    );
}

#[test]
fn pin_policies_are_enforced() {
    let mut a = applet([5, 4, 3]);
    mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY);
    let never = p256_public(&generate(&mut a, 0x9E, 0x11, 1, 1).data);
    let _once = p256_public(&generate(&mut a, 0x9A, 0x11, 2, 1).data);
    let _always = p256_public(&generate(&mut a, 0x9C, 0x11, 3, 1).data);
    let digest = [7u8; 32];
    let r = sign(&mut a, 0x9E, 0x11, &digest);
    assert_eq!(r.sw, StatusWord::OK);
    let sig = p256::ecdsa::Signature::from_der(&signature_of(&r)).unwrap();
    never.verify_prehash(&digest, &sig).unwrap();
    assert_eq!(
        sign(&mut a, 0x9A, 0x11, &digest).sw,
        StatusWord::SECURITY_STATUS
    );
    assert_eq!(
        sign(&mut a, 0x9C, 0x11, &digest).sw,
        StatusWord::SECURITY_STATUS
    );
    assert_eq!(verify_pin(&mut a, b"123456"), StatusWord::OK);
    assert_eq!(sign(&mut a, 0x9C, 0x11, &digest).sw, StatusWord::OK);
    // PIN-always: the verification is used up by one operation.
    assert_eq!(
        sign(&mut a, 0x9C, 0x11, &digest).sw,
        StatusWord::SECURITY_STATUS
    );
    assert_eq!(sign(&mut a, 0x9A, 0x11, &digest).sw, StatusWord::OK);
    assert_eq!(sign(&mut a, 0x9A, 0x11, &digest).sw, StatusWord::OK);
    // Wrong algorithm byte, empty slot.
    assert_eq!(
        sign(&mut a, 0x9A, 0x14, &digest).sw,
        StatusWord::INCORRECT_P1P2
    );
    assert_eq!(sign(&mut a, 0x9D, 0x11, &digest).sw, StatusWord::NOT_FOUND);
    // A reset forgets the PIN.
    a.reset();
    assert_eq!(
        sign(&mut a, 0x9A, 0x11, &digest).sw,
        StatusWord::SECURITY_STATUS
    );
}

#[test]
fn touch_policies_are_enforced() {
    let mut a = applet([5, 4, 3]);
    mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY);
    generate(&mut a, 0x9E, 0x11, 1, 2);
    generate(&mut a, 0x9D, 0x11, 1, 3);
    let digest = [1u8; 32];
    let touch = a.touch_control().clone();
    assert_eq!(sign(&mut a, 0x9E, 0x11, &digest).sw, StatusWord::OK);
    assert_eq!(sign(&mut a, 0x9E, 0x11, &digest).sw, StatusWord::OK);
    assert_eq!(touch.requests(), 2);
    touch.set_mode(TouchMode::Deny);
    assert_eq!(
        sign(&mut a, 0x9E, 0x11, &digest).sw,
        StatusWord::SECURITY_STATUS
    );
    // Cached: the touch just denied does not count; after one approved
    // touch, further uses need none.
    assert_eq!(sign(&mut a, 0x9D, 0x11, &digest).sw, OK_IF_CACHED);
    touch.set_mode(TouchMode::Approve);
    a.reset();
    assert_eq!(sign(&mut a, 0x9D, 0x11, &digest).sw, StatusWord::OK);
    let before = touch.requests();
    touch.set_mode(TouchMode::Deny);
    assert_eq!(sign(&mut a, 0x9D, 0x11, &digest).sw, StatusWord::OK);
    assert_eq!(touch.requests(), before);
}

/// The last approved touch (before the deny) is still cached.
const OK_IF_CACHED: StatusWord = StatusWord::OK;

#[test]
fn rsa2048_sign_and_decrypt_with_chaining() {
    use rsa::traits::PublicKeyParts;
    let mut a = applet([5, 4, 3]);
    mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY);
    let r = generate(&mut a, 0x9A, 0x07, 1, 1);
    assert_eq!(r.sw, StatusWord::OK);
    assert_eq!(&r.data[..5], &[0x7F, 0x49, 0x82, 0x01, 0x09]);
    let inner = Tlv::decode_all(Tlv::decode_single(&r.data).unwrap().value).unwrap();
    let n = rsa::BoxedUint::from_be_slice_vartime(tlv::find(&inner, 0x81).unwrap());
    let e = rsa::BoxedUint::from_be_slice_vartime(tlv::find(&inner, 0x82).unwrap());
    let public = rsa::RsaPublicKey::new(n, e).unwrap();
    assert_eq!(public.size(), 256);
    // PKCS#1 v1.5 signature block, padded by the host.
    let digest = [3u8; 32];
    let prefix = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let mut block = vec![0x00, 0x01];
    block.extend(std::iter::repeat_n(0xFF, 256 - 3 - prefix.len() - 32));
    block.push(0);
    block.extend_from_slice(&prefix);
    block.extend_from_slice(&digest);
    let r = sign(&mut a, 0x9A, 0x07, &block);
    assert_eq!(r.sw, StatusWord::OK);
    let sig = signature_of(&r);
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public);
    let sig = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap();
    signature::hazmat::PrehashVerifier::verify_prehash(&verifier, &digest, &sig).unwrap();
    assert_eq!(
        sign(&mut a, 0x9A, 0x07, &[0u8; 255]).sw,
        StatusWord::WRONG_LENGTH
    );
}

#[test]
fn objects_with_chaining_and_printed_info() {
    let mut a = applet([5, 4, 3]);
    let cert = vec![0x30u8; 2000];
    let mut data = tlv::encode(0x5C, &[0x5F, 0xC1, 0x05]);
    data.extend(tlv::encode(0x53, &state::certificate_object(&cert)));
    assert_eq!(
        send_chained(&mut a, 0xDB, 0x3F, 0xFF, &data).sw,
        StatusWord::SECURITY_STATUS
    );
    mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY);
    assert_eq!(
        send_chained(&mut a, 0xDB, 0x3F, 0xFF, &data).sw,
        StatusWord::OK
    );
    let first =
        Response::parse(&a.process(&cmd(0xCB, 0x3F, 0xFF, &[0x5C, 3, 0x5F, 0xC1, 0x05]))).unwrap();
    assert_eq!(first.sw.0 >> 8, 0x61);
    assert_eq!(first.data.len(), 256);
    let r = send(&mut a, &cmd(0xCB, 0x3F, 0xFF, &[0x5C, 3, 0x5F, 0xC1, 0x05]));
    assert_eq!(r.sw, StatusWord::OK);
    let obj = Tlv::decode_single(&r.data).unwrap();
    assert_eq!(obj.value, state::certificate_object(&cert));
    // Too big.
    let mut big = tlv::encode(0x5C, &[0x5F, 0xC1, 0x0A]);
    big.extend(tlv::encode(0x53, &vec![0u8; MAX_OBJECT + 1]));
    assert_eq!(
        send_chained(&mut a, 0xDB, 0x3F, 0xFF, &big).sw,
        StatusWord::NOT_ENOUGH_MEMORY
    );
    // Printed information needs the PIN.
    let mut printed = tlv::encode(0x5C, &[0x5F, 0xC1, 0x09]);
    printed.extend(tlv::encode(0x53, &[0x88, 0x01, 0x00]));
    assert_eq!(
        send(&mut a, &cmd(0xDB, 0x3F, 0xFF, &printed)).sw,
        StatusWord::OK
    );
    let get = cmd(0xCB, 0x3F, 0xFF, &[0x5C, 3, 0x5F, 0xC1, 0x09]);
    assert_eq!(send(&mut a, &get).sw, StatusWord::SECURITY_STATUS);
    verify_pin(&mut a, b"123456");
    assert_eq!(send(&mut a, &get).sw, StatusWord::OK);
    // Discovery and absent objects.
    let r = send(&mut a, &cmd(0xCB, 0x3F, 0xFF, &[0x5C, 1, 0x7E]));
    assert_eq!(r.data[0], 0x7E);
    assert_eq!(
        send(&mut a, &cmd(0xCB, 0x3F, 0xFF, &[0x5C, 3, 0x5F, 0xC1, 0x02])).sw,
        StatusWord::NOT_FOUND
    );
    // Not writable.
    let mut bad = tlv::encode(0x5C, &[0x7E]);
    bad.extend(tlv::encode(0x53, &[1]));
    assert_eq!(
        send(&mut a, &cmd(0xDB, 0x3F, 0xFF, &bad)).sw,
        StatusWord::INCORRECT_DATA
    );
}

#[test]
fn attestation_and_metadata() {
    let mut a = applet([5, 4, 3]);
    mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY);
    generate(&mut a, 0x9A, 0x11, 2, 3);
    let r = send(&mut a, &cmd(0xF9, 0x9A, 0, &[]));
    assert_eq!(r.sw, StatusWord::OK);
    assert_eq!(r.data[0], 0x30);
    assert_eq!(
        send(&mut a, &cmd(0xF9, 0x9C, 0, &[])).sw,
        StatusWord::REFERENCE_NOT_FOUND
    );
    // Imported keys cannot be attested.
    let secret = p256::SecretKey::generate_from_rng(&mut rand::rng());
    let mut data = tlv::encode(0x06, &secret.to_bytes());
    data.extend(tlv::encode(0xAA, &[1]));
    assert_eq!(
        send(&mut a, &cmd(0xFE, 0x11, 0x9C, &data)).sw,
        StatusWord::OK
    );
    assert_eq!(
        send(&mut a, &cmd(0xF9, 0x9C, 0, &[])).sw,
        StatusWord::INCORRECT_DATA
    );
    let r = send(&mut a, &cmd(0xF7, 0, 0x9C, &[]));
    let tlvs = Tlv::decode_all(&r.data).unwrap();
    assert_eq!(tlv::find(&tlvs, 0x01), Some(&[0x11u8][..]));
    assert_eq!(tlv::find(&tlvs, 0x02), Some(&[1u8, 1][..]));
    assert_eq!(tlv::find(&tlvs, 0x03), Some(&[2u8][..]));
    let r = send(&mut a, &cmd(0xF7, 0, 0x80, &[]));
    let tlvs = Tlv::decode_all(&r.data).unwrap();
    assert_eq!(tlv::find(&tlvs, 0x06), Some(&[3u8, 3][..]));
    let r = send(&mut a, &cmd(0xF7, 0, 0x9B, &[]));
    let tlvs = Tlv::decode_all(&r.data).unwrap();
    assert_eq!(tlv::find(&tlvs, 0x01), Some(&[3u8][..]));
    assert_eq!(
        send(&mut a, &cmd(0xF7, 0, 0x9D, &[])).sw,
        StatusWord::REFERENCE_NOT_FOUND
    );
    let mut old = applet([4, 3, 7]);
    assert_eq!(
        send(&mut old, &cmd(0xF7, 0, 0x80, &[])).sw,
        StatusWord::INS_NOT_SUPPORTED
    );
}

#[test]
fn ecdh_p256() {
    let mut a = applet([5, 4, 3]);
    mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY);
    let card = p256_public(&generate(&mut a, 0x9D, 0x11, 1, 1).data);
    let host = p256::SecretKey::generate_from_rng(&mut rand::rng());
    let mut inner = tlv::encode(0x82, &[]);
    inner.extend(tlv::encode(0x85, &host.public_key().to_sec1_bytes()));
    let r = send(&mut a, &cmd(0x87, 0x11, 0x9D, &tlv::encode(0x7C, &inner)));
    assert_eq!(r.sw, StatusWord::OK);
    let card_pk = p256::PublicKey::from_sec1_bytes(&card.to_sec1_bytes()).unwrap();
    let expected = p256::ecdh::diffie_hellman(host.to_nonzero_scalar(), card_pk.as_affine());
    assert_eq!(signature_of(&r), expected.raw_secret_bytes().as_slice());
}

#[test]
fn never_panics_on_random_input() {
    let mut a = applet([5, 7, 1]);
    mgm_auth(&mut a, MgmAlgorithm::Aes192, &DEFAULT_MGM_KEY);
    generate(&mut a, 0x9A, 0x11, 1, 1);
    let mut rng = rand::rng();
    for i in 0..20_000u32 {
        let len = (i % 40) as usize;
        let mut apdu = vec![0u8; len];
        rng.fill_bytes(&mut apdu);
        if len > 1 {
            apdu[0] &= 0x10;
            let ins = [
                0x20, 0x24, 0x2C, 0x47, 0x87, 0xCB, 0xDB, 0xF7, 0xF9, 0xFE, 0xFF, 0xC0, 0xFA,
            ];
            apdu[1] = ins[(i as usize) % ins.len()];
        }
        let out = a.process(&apdu);
        assert!(out.len() >= 2);
    }
}

#[test]
fn management_key_with_touch_flag_needs_a_touch() {
    let mut a = applet([5, 4, 3]);
    assert_eq!(
        mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY),
        StatusWord::OK
    );
    let mut data = vec![0x03, 0x9B, 24];
    data.extend_from_slice(&DEFAULT_MGM_KEY);
    assert_eq!(
        send(&mut a, &cmd(0xFF, 0xFF, 0xFE, &data)).sw,
        StatusWord::OK
    );
    let r = send(&mut a, &cmd(0xF7, 0, 0x9B, &[]));
    let tlvs = Tlv::decode_all(&r.data).unwrap();
    assert_eq!(tlv::find(&tlvs, 0x02), Some(&[0u8, 2][..]));
    a.reset();
    a.touch_control().set_mode(TouchMode::Deny);
    assert_eq!(
        mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY),
        StatusWord::SECURITY_STATUS
    );
    a.touch_control().set_mode(TouchMode::Approve);
    assert_eq!(
        mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY),
        StatusWord::OK
    );
    // Step 2 without step 1 is refused.
    let mut body = tlv::encode(0x80, &[0u8; 8]);
    body.extend(tlv::encode(0x81, &[0u8; 8]));
    assert_eq!(
        send(&mut a, &cmd(0x87, 3, 0x9B, &tlv::encode(0x7C, &body))).sw,
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
}

#[test]
fn interrupted_chain_is_refused() {
    let mut a = applet([5, 4, 3]);
    assert_eq!(
        send(&mut a, &[0x10, 0xDB, 0x3F, 0xFF, 1, 0x5C]).sw,
        StatusWord::OK
    );
    assert_eq!(
        send(&mut a, &[0x00, 0xCB, 0x3F, 0xFF, 3, 0x5C, 1, 0x7E]).sw,
        StatusWord::LAST_COMMAND_EXPECTED
    );
    // The next command starts afresh.
    assert_eq!(
        send(&mut a, &[0x00, 0xCB, 0x3F, 0xFF, 3, 0x5C, 1, 0x7E]).sw,
        StatusWord::OK
    );
}

#[test]
fn extended_le_returns_the_whole_object() {
    let mut a = applet([5, 4, 3]);
    let short =
        Response::parse(&a.process(&[0, 0xCB, 0x3F, 0xFF, 5, 0x5C, 3, 0x5F, 0xFF, 0x01])).unwrap();
    assert_eq!(short.sw.0 >> 8, 0x61);
    let ext = Response::parse(&a.process(&[
        0, 0xCB, 0x3F, 0xFF, 0, 0, 5, 0x5C, 3, 0x5F, 0xFF, 0x01, 0, 0,
    ]))
    .unwrap();
    assert_eq!(ext.sw, StatusWord::OK);
    assert!(ext.data.len() > 256);
    assert_eq!(&ext.data[..256], short.data.as_slice());
}

#[test]
fn selecting_the_management_applet_deauthenticates() {
    let mut a = applet([5, 4, 3]);
    assert_eq!(
        mgm_auth(&mut a, MgmAlgorithm::TripleDes, &DEFAULT_MGM_KEY),
        StatusWord::OK
    );
    assert_eq!(verify_pin(&mut a, b"123456"), StatusWord::OK);
    let mut select = vec![0, 0xA4, 4, 0, 8];
    select.extend_from_slice(&MGMT_AID);
    assert_eq!(send(&mut a, &select).data, b"5.4.3");
    assert_eq!(
        send(&mut a, &[0, 0xFD, 0, 0]).sw,
        StatusWord::INS_NOT_SUPPORTED
    );
    assert_eq!(
        send(&mut a, &[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8]).sw,
        StatusWord::OK
    );
    assert_eq!(
        generate(&mut a, 0x9A, 0x11, 0, 0).sw,
        StatusWord::SECURITY_STATUS
    );
    assert_eq!(
        send(&mut a, &cmd(0x20, 0, 0x80, &[])).sw,
        StatusWord::retries_left(3)
    );
}
