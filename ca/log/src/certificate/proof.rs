//! The proof text a certificate carries: `signet-cert-proof/v1`.
//!
//! In the style of C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): a header
//! line, the entry's index, the entry itself without its certificate bytes,
//! the inclusion proof (base64 hashes, one per line, lowest first), a blank
//! line, and the checkpoint as a signed note with the log's signature and
//! the witnesses' cosignatures:
//!
//! ```text
//! signet-cert-proof/v1
//! index 73894
//! entry {"actor":{"name":"alice",…},"certificate":{"bytes":"",…},…}
//! gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
//! B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
//!
//! ca.example.com/signet-log
//! 109482
//! sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=
//!
//! — ca.example.com/signet-log hI2DJw…
//! — witness-a TnKKVHLX…
//! ```
//!
//! The `entry` line holds the entry's canonical JSON with the certificate's
//! `bytes` emptied (see [`crate::entry::Entry::to_detached_bytes`]): the
//! verifier puts the precertificate it derives from the certificate back
//! in, so the proof does not carry the certificate twice. The JSON is
//! written as it is, not in base64: canonical JSON is one line (control
//! characters are escaped), and base64 would cost a third more, which an
//! X.509 certificate in a YubiKey PIV slot (about 3 KB) cannot spare
//! (`docs/log-format.md` has the sizes).
//!
//! Parsing is strict: one spelling per proof (canonical base64 and decimal,
//! no extra lines or spaces, the note in its canonical form), and every part
//! bounded.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::checkpoint::Checkpoint;
use crate::entry::Entry;
use crate::error::ProofError;
use crate::merkle::Hash;
use crate::note::Note;
use crate::Result;

/// The proof text's first line: format and version.
pub const PROOF_HEADER: &str = "signet-cert-proof/v1";

/// Longest proof text accepted, in bytes. A proof for a tree of 2^40
/// entries with a few witnesses is under 4 KiB.
pub const MAX_PROOF_LEN: usize = 16 * 1024;

/// Most inclusion hashes accepted (a tree of at most 2^64 - 1 leaves).
pub const MAX_INCLUSION_HASHES: usize = 64;

/// A certificate's proof of logging: which entry, its contents without the
/// certificate, how it is included, and the checkpoint it is included in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateProof {
    /// The entry's index in the log.
    pub index: u64,
    /// The entry's canonical JSON with the certificate's `bytes` emptied
    /// (UTF-8 on one line: it is checked to be canonical when the proof is
    /// verified).
    pub entry_without_bytes: String,
    /// The inclusion proof of the entry's leaf at `index` in the
    /// checkpoint's tree, lowest hash first.
    pub inclusion: Vec<Hash>,
    /// The checkpoint, as a signed note with its cosignatures.
    pub checkpoint_note: String,
}

fn malformed(part: &'static str) -> crate::Error {
    ProofError::Malformed(part).into()
}

impl CertificateProof {
    /// The proof for `entry` at `index`, whose precertificate is in the log,
    /// as the CA makes it once the checkpoint is cosigned.
    ///
    /// The parts are checked as [`CertificateProof::parse`] would, so a
    /// proof that is built can be read back.
    pub fn new(
        index: u64,
        entry: &Entry,
        inclusion: Vec<Hash>,
        checkpoint_note: &str,
    ) -> Result<Self> {
        let proof = Self {
            index,
            entry_without_bytes: String::from_utf8(entry.to_detached_bytes()?)
                .map_err(|_| malformed("entry line (not UTF-8)"))?,
            inclusion,
            checkpoint_note: checkpoint_note.to_owned(),
        };
        let text = proof.encode();
        Self::parse(text.as_bytes())?;
        Ok(proof)
    }

    /// The proof text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(
            64 + self.entry_without_bytes.len() * 4 / 3
                + self.inclusion.len() * 45
                + self.checkpoint_note.len(),
        );
        out.push_str(PROOF_HEADER);
        out.push('\n');
        out.push_str(&format!("index {}\n", self.index));
        out.push_str("entry ");
        out.push_str(&self.entry_without_bytes);
        out.push('\n');
        for hash in &self.inclusion {
            out.push_str(&STANDARD.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint_note);
        out
    }

    /// Parses a proof text, accepting only its one canonical spelling.
    ///
    /// Only the form is checked here; [`super::verify_ssh_certificate`] and
    /// [`super::verify_x509_certificate`] check what it proves.
    pub fn parse(text: &[u8]) -> Result<Self> {
        if text.len() > MAX_PROOF_LEN {
            return Err(malformed("longer than 16 KiB"));
        }
        let text = std::str::from_utf8(text).map_err(|_| malformed("not UTF-8"))?;
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| malformed("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(PROOF_HEADER) {
            return Err(malformed("first line is not signet-cert-proof/v1"));
        }
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .and_then(parse_decimal)
            .ok_or_else(|| malformed("index line"))?;
        let entry_without_bytes = lines
            .next()
            .and_then(|l| l.strip_prefix("entry "))
            .filter(|e| e.starts_with('{') && e.ends_with('}'))
            .ok_or_else(|| malformed("entry line"))?
            .to_owned();
        let mut inclusion = Vec::new();
        for line in lines {
            if inclusion.len() == MAX_INCLUSION_HASHES {
                return Err(malformed("more than 64 inclusion hashes"));
            }
            let hash: Hash = decode_canonical_base64(line)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| malformed("inclusion hash line"))?;
            inclusion.push(hash);
        }
        let parsed = Note::parse(note.as_bytes()).map_err(|_| malformed("checkpoint note"))?;
        if parsed.to_text() != note {
            return Err(malformed("checkpoint note (not in its canonical form)"));
        }
        Checkpoint::parse(parsed.text()).map_err(|_| malformed("checkpoint (the note's text)"))?;
        Ok(Self {
            index,
            entry_without_bytes,
            inclusion,
            checkpoint_note: note.to_owned(),
        })
    }
}

/// A canonical decimal `u64`: digits only, no leading zero.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Standard padded base64 that re-encodes to itself (no stray padding bits).
fn decode_canonical_base64(s: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(s).ok()?;
    (STANDARD.encode(&bytes) == s).then_some(bytes)
}
