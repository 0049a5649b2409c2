//! Fuzz the virtual YubiKey's CTAP2 command parser and the FIDO2
//! authenticator behind it. The body lives in
//! `signet_firmware_tests::fuzzing::ctap_messages` (input format and checks
//! are documented there) so the seed corpus also runs as a test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    signet_firmware_tests::fuzzing::ctap_messages(data);
});
