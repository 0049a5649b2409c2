//! Virtual YubiKey binary.
fn main() {}
