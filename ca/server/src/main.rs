//! signet-ca
fn main() {}
