//! Proof that an issued certificate is in the CA's log.

use serde::{Deserialize, Serialize};

use crate::B64;

/// Where a certificate's log entry is, and the proof that it is there: the
/// client checks `inclusion_proof` against `checkpoint` (a signed note the
/// log key signed) before it trusts or stores the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogProof {
    /// Index of the entry in the log.
    pub index: u64,
    /// The entry itself (its canonical bytes): the client checks that it
    /// records the certificate it received, and hashes it for the proof.
    pub entry: B64,
    /// The signed checkpoint (C2SP signed note text) the proof is against.
    pub checkpoint: String,
    /// RFC 9162 inclusion proof, hashes from the leaf upwards.
    pub inclusion_proof: Vec<B64>,
}
