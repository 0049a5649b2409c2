//! Fuzz signed-note and verifier-key parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_log::note::{Note, VerifierKey, VerifierSet};

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_text().as_bytes(), data, "note must round-trip");
        // Verifying against an empty set must fail cleanly.
        assert!(note.verify(&VerifierSet::default()).is_err());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = VerifierKey::parse(text) {
            assert_eq!(key.to_string(), text, "vkey must round-trip");
            if let Ok(note) = Note::parse(data) {
                let _ = note
                    .verify(&VerifierSet::new(vec![key]).expect("one key is never a duplicate"));
            }
        }
    }
});
