//! Fuzz the checkpoint path: a signed note whose text is a checkpoint body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_log::checkpoint::Checkpoint;
use signet_log::note::Note;

fuzz_target!(|data: &[u8]| {
    // As served: a whole signed note.
    if let Ok(note) = Note::parse(data) {
        if let Ok(c) = Checkpoint::parse(note.text()) {
            assert_eq!(c.to_text(), note.text(), "checkpoint text must round-trip");
        }
    }
    // The body alone.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Checkpoint::parse(text) {
            assert_eq!(c.to_text(), text, "checkpoint text must round-trip");
        }
    }
});
