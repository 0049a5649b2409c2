//! Device conformance for Signet: a virtual YubiKey 5 — PIV and FIDO2
//! applets — that plugs into the real PC/SC stack through vsmartcard's
//! `vpcd` driver, a harness that runs a private `pcscd` for tests, and the
//! pieces the conformance suite in `tests/` shares.
//!
//! Layers, bottom up: [`apdu`] and [`tlv`] (wire formats), [`keys`],
//! [`attest`] and [`state`] (what the PIV applet holds), [`applet`] (the
//! PIV state machine: bytes in, bytes out; it only touches the disk to save
//! its state file), [`fido`] (the FIDO2/CTAP2 applet, same shape),
//! [`card`] (both applets behind one ATR, chosen by SELECT), [`touch`] (the
//! simulated finger), [`vpcd`] (the socket loop) and [`harness`] (pcscd +
//! card for tests); [`fuzzing`] holds the bodies of the fuzz targets.

pub mod apdu;
pub mod applet;
pub mod attest;
pub mod card;
pub mod error;
pub mod fido;
pub mod fuzzing;
pub mod harness;
pub mod keys;
pub mod state;
pub mod tlv;
pub mod touch;
pub mod vpcd;

pub use error::{Error, Result};
