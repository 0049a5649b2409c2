//! Device conformance for Signet: a virtual YubiKey 5 PIV applet that plugs
//! into the real PC/SC stack through vsmartcard's `vpcd` driver, a harness
//! that runs a private `pcscd` for tests, and the pieces the conformance
//! suite in `tests/` shares.
//!
//! Layers, bottom up: [`apdu`] and [`tlv`] (wire formats), [`keys`],
//! [`attest`] and [`state`] (what the card holds), [`applet`] (the PIV state
//! machine, no I/O), [`touch`] (the simulated finger), [`vpcd`] (the socket
//! loop) and [`harness`] (pcscd + card for tests); [`fuzzing`] holds the
//! body of the APDU fuzz target.

pub mod apdu;
pub mod applet;
pub mod attest;
pub mod error;
pub mod fuzzing;
pub mod harness;
pub mod keys;
pub mod state;
pub mod tlv;
pub mod touch;
pub mod vpcd;

pub use error::{Error, Result};
