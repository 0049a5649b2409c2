//! Signet HSM layer (work in progress).
