//! Fuzz the role files' parser and the change records the CA replays from
//! its log. Every input gets an answer; an error points inside the text;
//! an accepted policy is reached by replaying its own change records, and
//! every change record decodes to itself and re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_policy::{Change, Policy};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse("fuzz.yaml", text) {
        Ok(policy) => {
            let mut replayed = Policy::new();
            for change in &Policy::new().diff(&policy).changes {
                let json = serde_json::to_string(change).expect("a change encodes");
                let back: Change = serde_json::from_str(&json).expect("a change decodes");
                assert_eq!(&back, change);
                replayed.apply(&back);
            }
            assert_eq!(replayed, policy);
        }
        Err(e) => {
            let e = e.invalid().expect("parse errors are content errors");
            let lines = text
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .lines()
                .count();
            assert!(e.location.line >= 1 && e.location.line <= lines + 1, "{e}");
            assert!(e.location.column >= 1, "{e}");
        }
    }
    if let Ok(change) = serde_json::from_str::<Change>(text) {
        let json = serde_json::to_string(&change).expect("a change encodes");
        let back: Change = serde_json::from_str(&json).expect("its encoding decodes");
        assert_eq!(back, change);
    }
});
