//! Fuzz the access proxy's `signet-ssh/1` preamble, the first bytes any
//! client sends: parsed whole and fed to the incremental reader in pieces
//! the input itself chooses. Both must agree; an accepted preamble
//! re-encodes to the same line; the reader never holds more than the bound
//! and hands back exactly the bytes after the newline. The proxy's reply
//! lines are parsed too (the client side reads them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_proxy::preamble::{PreambleReader, MAX_PREAMBLE};
use signet_proxy::{Preamble, Reply};

fuzz_target!(|data: &[u8]| {
    // The first byte cuts the rest into pieces of that size (1..=256).
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(cut) + 1;

    if let Ok(p) = Preamble::parse(input) {
        let line = p.to_line();
        assert_eq!(Preamble::parse(line.as_bytes()).as_ref(), Ok(&p));
        assert!(line.len() <= MAX_PREAMBLE);
    }

    let mut reader = PreambleReader::new();
    let mut fed = 0;
    let mut outcome = None;
    for chunk in input.chunks(piece) {
        fed += chunk.len();
        match reader.push(chunk) {
            Ok(None) => continue,
            Ok(Some((p, rest))) => {
                let newline = fed - rest.len();
                assert_eq!(&input[newline..fed], &rest[..]);
                assert_eq!(input[newline - 1], b'\n');
                assert!(newline <= MAX_PREAMBLE);
                // The same line, whole, parses the same.
                assert_eq!(Preamble::parse(&input[..newline]).as_ref(), Ok(&p));
                outcome = Some(Ok(p));
                break;
            }
            Err(e) => {
                outcome = Some(Err(e));
                break;
            }
        }
    }
    if outcome.is_none() {
        // No newline seen: never more than the bound was given.
        assert!(input.len() < MAX_PREAMBLE);
    }

    if let Ok(reply) = Reply::parse(input) {
        let line = reply.to_line();
        assert_eq!(Reply::parse(line.as_bytes()).as_ref(), Ok(&reply));
    }
});
