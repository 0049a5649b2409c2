//! Fuzz log entry decoding: only canonical encodings may be accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_log::entry::Entry;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::from_bytes(data) {
        let again = entry
            .to_canonical_bytes()
            .expect("an accepted entry re-encodes");
        assert_eq!(again, data, "accepted entries are canonical");
    }
});
