//! WebAuthn relying-party checks for security keys: registration with attestation, and assertions over a challenge the CA chooses.
#![forbid(unsafe_code)]
