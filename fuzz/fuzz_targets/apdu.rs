//! Fuzz the virtual YubiKey's APDU parser and the PIV applet behind it.
//! The body lives in `signet_firmware_tests::fuzzing` (input format and
//! checks are documented there) so the seed corpus also runs as a test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    signet_firmware_tests::fuzzing::apdu_sequence(data);
});
