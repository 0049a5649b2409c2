//! Runs the committed seed corpora of the `apdu` and `ctap` fuzz targets through the same
//! code, so the seeds stay meaningful and the applet stays panic-free on
//! them even where libFuzzer does not run.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn apdu_seed_corpus_runs_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/apdu");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        signet_firmware_tests::fuzzing::apdu_sequence(&data);
        // Every prefix too: truncated inputs are the commonest mutation.
        for cut in 0..data.len() {
            signet_firmware_tests::fuzzing::apdu_sequence(&data[..cut]);
        }
        seen += 1;
    }
    assert!(seen >= 10, "seed corpus missing in {}", dir.display());
}

#[test]
fn ctap_seed_corpus_runs_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ctap");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        signet_firmware_tests::fuzzing::ctap_messages(&data);
        for cut in 0..data.len() {
            signet_firmware_tests::fuzzing::ctap_messages(&data[..cut]);
        }
        seen += 1;
    }
    assert!(seen >= 8, "seed corpus missing in {}", dir.display());
}
