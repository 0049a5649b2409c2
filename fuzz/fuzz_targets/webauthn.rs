//! Fuzz the WebAuthn relying-party checks: registration and assertion
//! JSON, clientDataJSON, the attestation object's CBOR, authenticator
//! data, COSE keys and attestation certificates. The body lives in
//! `signet_webauthn::fuzzing::one_input` (input format and checks are
//! documented there) so the seed corpus also runs as a test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    signet_webauthn::fuzzing::one_input(data);
});
