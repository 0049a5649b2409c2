//! Fixtures for tests that talk to real peers: a private SoftHSM2 token per
//! test, and a throw-away OpenSSH `sshd` on a loopback port.
//!
//! Everything lives in a temporary directory owned by the fixture and is
//! removed (processes stopped) when the fixture is dropped, also when the
//! test fails. Daemons run in the foreground as children that the kernel
//! kills if the test process dies without dropping them ([`child`]).
#![deny(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod child;
mod postgres;
mod safe_dir;
mod softhsm;
mod sshd;

pub use postgres::{
    postgres_available, postgres_bin, Postgres, ServerTls, BIN_ENV as POSTGRES_BIN_ENV,
    SUPERUSER as POSTGRES_SUPERUSER,
};
pub use safe_dir::root_only_tempdir;
pub use softhsm::{softhsm_module, SoftHsm, MODULE_ENV, PIN_FILE_ENV, TOKEN_ENV};
pub use sshd::{free_port, Sshd};
