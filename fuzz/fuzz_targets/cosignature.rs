//! Fuzz cosignature/v1 verification and witness policy parsing: the input is
//! tried as a cosigned checkpoint (against the test vectors' log key and two
//! witnesses) and as a `[witnesses]` TOML policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_log::note::cosignature::{cosignature_timestamp, MAX_TIMESTAMP};
use signet_log::note::{Note, VerifierKey};
use signet_log::witness::{append_cosignatures, WitnessPolicy};

const LOG: &str = include_str!("../../ca/log/tests/vectors/witness/log.vkey");
const W1: &str = include_str!("../../ca/log/tests/vectors/witness/w1.vkey");
const W2: &str = include_str!("../../ca/log/tests/vectors/witness/w2.vkey");

#[derive(serde::Deserialize)]
struct Config {
    witnesses: WitnessPolicy,
}

fuzz_target!(|data: &[u8]| {
    let log = VerifierKey::parse(LOG.trim()).expect("vector vkey parses");
    let policy: WitnessPolicy = toml::from_str::<Config>(&format!(
        "[witnesses]\nthreshold = 1\n[[witnesses.witness]]\nname = \"w1\"\nvkey = \"{}\"\n[[witnesses.witness]]\nname = \"w2\"\nvkey = \"{}\"\n",
        W1.trim(),
        W2.trim()
    ))
    .expect("vector policy parses")
    .witnesses;

    let first = policy.verify_checkpoint(data, &log);
    let again = policy.verify_checkpoint(data, &log);
    assert_eq!(first.is_ok(), again.is_ok(), "same answer twice");
    if let Ok(c) = first {
        assert_eq!(c.note().as_bytes(), data, "an accepted note is the input");
        assert!(!c.cosignatures().is_empty());
        assert!(c
            .cosignatures()
            .iter()
            .all(|s| s.timestamp <= MAX_TIMESTAMP));
        // Adding its own lines again changes nothing.
        let note = Note::parse(data).expect("accepted notes parse");
        let lines: Vec<String> = note.signatures().iter().map(|s| s.to_line()).collect();
        assert_eq!(
            append_cosignatures(c.note(), &lines)
                .expect("own lines")
                .as_bytes(),
            data
        );
    }
    if let Ok(note) = Note::parse(data) {
        for sig in note.signatures() {
            if let Ok(t) = cosignature_timestamp(sig) {
                assert!(t <= MAX_TIMESTAMP);
            }
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = toml::from_str::<Config>(text) {
            let p = c.witnesses;
            assert!(p.threshold() <= p.witnesses().len());
            assert_eq!(p.threshold() == 0, p.witnesses().is_empty());
        }
    }
});
