//! PIV attestation: proof that a key was generated on a genuine YubiKey with a given PIN and touch policy.
#![forbid(unsafe_code)]
