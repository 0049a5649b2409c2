//! The tlog-witness v1 `add-checkpoint` wire format
//! (<https://c2sp.org/tlog-witness>), shared by the server and the client.
//!
//! Request body:
//!
//! ```text
//! old <size of the previous checkpoint, decimal, no leading zeros>
//! <zero to 63 consistency proof hashes, one base64 line each>
//!
//! <the checkpoint: a signed note>
//! ```
//!
//! Answers: 200 with one or more cosignature lines (`— <name> <base64>`);
//! 409 with the witness's latest size as `text/x.tlog.size` (`<size>\n`);
//! 400, 403, 404, 422 with a reason.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use signet_log::merkle::Hash;

/// The path of the call under the witness's submission prefix.
pub const ADD_CHECKPOINT_PATH: &str = "/add-checkpoint";

/// The content type of a 409 answer's body.
pub const TLOG_SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Most consistency proof lines a request may carry (the spec's bound).
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness holds.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The checkpoint, a signed note (not yet parsed).
    pub checkpoint: Vec<u8>,
}

/// The request body for `old_size`, `proof` and a signed checkpoint note.
pub fn format_request(old_size: u64, proof: &[Hash], checkpoint_note: &str) -> String {
    let mut body = String::with_capacity(16 + proof.len() * 45 + checkpoint_note.len());
    body.push_str(&format!("old {old_size}\n"));
    for h in proof {
        body.push_str(&STANDARD.encode(h));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(checkpoint_note);
    body
}

/// Parses a canonical decimal `u64`: digits only, no sign, no leading zeros.
pub fn parse_size(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Parses a request body. The error says what is wrong, for a 400 answer.
pub fn parse_request(body: &[u8]) -> Result<AddCheckpoint, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let (first, mut rest) = text
        .split_once('\n')
        .ok_or_else(|| "the body has no old size line".to_owned())?;
    let old = first
        .strip_prefix("old ")
        .ok_or_else(|| "the first line must be `old <size>`".to_owned())?;
    let old_size = parse_size(old).ok_or_else(|| {
        "the old size must be a decimal number without sign or leading zeros".to_owned()
    })?;
    let mut proof = Vec::new();
    loop {
        let (line, after) = rest.split_once('\n').ok_or_else(|| {
            "the proof lines must be followed by an empty line and the checkpoint".to_owned()
        })?;
        rest = after;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(format!(
                "more than {MAX_PROOF_LINES} consistency proof lines"
            ));
        }
        let hash: Hash = STANDARD
            .decode(line)
            .ok()
            .and_then(|b| b.try_into().ok())
            .filter(|h: &Hash| STANDARD.encode(h) == line)
            .ok_or_else(|| {
                format!(
                    "consistency proof line {} is not the base64 of a 32-byte hash",
                    proof.len() + 1
                )
            })?;
        proof.push(hash);
    }
    if rest.is_empty() {
        return Err("the checkpoint is missing".to_owned());
    }
    Ok(AddCheckpoint {
        old_size,
        proof,
        checkpoint: rest.as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CP: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

    #[test]
    fn spec_example_parses_and_round_trips() {
        // c2sp.org/tlog-witness's example request.
        let body = format!(
            "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\n{CP}"
        );
        let r = parse_request(body.as_bytes()).unwrap();
        assert_eq!(r.old_size, 20852014);
        assert_eq!(r.proof.len(), 4);
        assert_eq!(r.checkpoint, CP.as_bytes());
        assert_eq!(format_request(r.old_size, &r.proof, CP), body);
        let first = parse_request(format!("old 0\n\n{CP}").as_bytes()).unwrap();
        assert_eq!((first.old_size, first.proof.len()), (0, 0));
    }

    #[test]
    fn bad_bodies_say_why() {
        let h = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=";
        let many = format!("old 1\n{}\n{CP}", format!("{h}\n").repeat(64));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0xff, 0xfe], "UTF-8"),
            (b"".to_vec(), "old size line"),
            (format!("new 1\n\n{CP}").into_bytes(), "old <size>"),
            (format!("old 01\n\n{CP}").into_bytes(), "leading zeros"),
            (format!("old -1\n\n{CP}").into_bytes(), "leading zeros"),
            (format!("old  1\n\n{CP}").into_bytes(), "leading zeros"),
            (format!("old 1\nnot base64!\n\n{CP}").into_bytes(), "line 1"),
            (
                format!("old 1\n{}\n\n{CP}", &h[..40]).into_bytes(),
                "line 1",
            ),
            // Non-canonical base64 (padding bits set) of a hash.
            (
                format!("old 1\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkax=\n\n{CP}").into_bytes(),
                "line 1",
            ),
            (b"old 1\n".to_vec(), "empty line"),
            (b"old 1\n\n".to_vec(), "missing"),
            (many.into_bytes(), "more than 63"),
        ];
        for (body, why) in cases {
            let err = parse_request(&body).unwrap_err();
            assert!(
                err.contains(why),
                "{:?} → {err}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}
