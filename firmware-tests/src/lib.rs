//! Virtual YubiKey (work in progress).
