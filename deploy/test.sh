#!/usr/bin/env bash
# Installs what the tests drive as real peers (SoftHSM2, OpenSSH, OpenSSL,
# pcscd + vpcd, ykcs11, yubico-piv-tool, OpenSC), then runs the whole suite.
#
#   deploy/test.sh                 all tests
#   deploy/test.sh -p signet-ca    arguments go to `cargo nextest run`
#
# Tests start their own sshd, pcscd and SoftHSM2 tokens on loopback ports and
# in temporary directories, and stop them afterwards; the machine's own
# services are never used. With CI=true the fuzz targets also run briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh

ensure_packages $SIGNET_TEST_PACKAGES
ensure_python_fido2
ensure_cargo
ensure_nextest

say "Checking formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

say "Running the test suite"
cargo nextest run --workspace --all-features --no-fail-fast "$@"

if [ "${CI:-}" = "true" ] && [ -x deploy/fuzz.sh ]; then
    say "Running the fuzz targets briefly"
    deploy/fuzz.sh "${SIGNET_FUZZ_SECONDS:-20}"
fi
