//! Signet's verifiable log (work in progress).
