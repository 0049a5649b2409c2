//! `signet audit`: verifying Signet's signing log without trusting the CA.
//!
//! - [`source`]: where the log's files come from (a directory or `http(s)://`);
//! - [`trust`]: the pinned log key and origin, and opening checkpoints;
//! - [`fetch`]: tiles and bundles, and proofs computed from tiles;
//! - [`verify`]: the whole-log check every answer rests on;
//! - [`state`]: the last fully verified checkpoint, remembered per origin;
//! - [`certfile`]: reading a certificate to prove;
//! - [`localfile`]: reading a small local file, bounded, never from a FIFO;
//! - [`query`]: search filters, times, JSON output;
//! - [`witnesses`]: the witness policy a checkpoint must meet (`--witnesses`).
//!
//! The flow: fetch the checkpoint and open it with the pinned key; load the
//! earlier checkpoint (given, or remembered); replay the log with
//! [`verify::verify_log`]; only then act on what it saw.

pub mod certfile;
mod error;
pub mod fetch;
pub mod localfile;
mod pem;
pub mod query;
pub mod source;
pub mod state;
pub mod trust;
pub mod verify;
pub mod witnesses;

pub use error::{AuditError, ErrorClass, Result, VerifyFailure};

#[cfg(test)]
mod tests {
    /// The local parsers (times, certificate files, key files) never panic,
    /// whatever bytes they are given.
    #[test]
    fn local_parsers_do_not_panic() {
        let alphabet: Vec<char> = "0123456789-:TZ+.eé—\n -----BEGIN PUBLIC KEY CERTIFICATE+/=AQ"
            .chars()
            .collect();
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        for _ in 0..20_000 {
            let len = next() % 48;
            let s: String = (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect();
            let _ = super::query::parse_time(&s);
            let _ = super::certfile::parse(s.as_bytes());
            let _ = super::trust::Trust::from_bytes(s.as_bytes(), None);
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = super::certfile::parse(&bytes);
            let _ = super::trust::Trust::from_bytes(&bytes, Some("o"));
        }
        // Valid inputs with a few characters changed.
        let samples = [
            "2025-11-22T23:01:40.123-01:00",
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
            "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAA alice",
            "ca.example.com/signet-log+5432e20d+AeMK0Lx1wDXMJ4bEKtAkaAvIxOnqoJTrEmhhRf+JhMzR",
        ];
        for sample in samples {
            let chars: Vec<char> = sample.chars().collect();
            for _ in 0..5_000 {
                let mut c = chars.clone();
                for _ in 0..1 + next() % 3 {
                    let at = next() % c.len();
                    c[at] = alphabet[next() % alphabet.len()];
                }
                let s: String = c.into_iter().collect();
                let _ = super::query::parse_time(&s);
                let _ = super::certfile::parse(s.as_bytes());
                let _ = super::trust::Trust::from_bytes(s.as_bytes(), None);
            }
        }
    }
}
