#!/usr/bin/env bash
# Installs what the tests drive as real peers (SoftHSM2, OpenSSH, OpenSSL,
# pcscd + vpcd, ykcs11, yubico-piv-tool, OpenSC), then runs the whole suite.
#
#   deploy/test.sh                 all tests
#   deploy/test.sh -p signet-ca    arguments go to `cargo nextest run`
#   SIGNET_TEST_STORE=postgres deploy/test.sh -p signet-ca
#                                  the CA's tests with its state on PostgreSQL
#                                  (without arguments, test.sh runs them both ways)
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
status=0
cargo nextest run --workspace --all-features --no-fail-fast "$@" || status=$?

# The CA's end-to-end tests once more with its state on PostgreSQL (each CA
# under test gets a throw-away cluster): one matrix, the same tests. The
# store's own tests already ran on both backends above, and so did the
# tests that move a CA onto PostgreSQL themselves (postgres, postgres_replicas).
if [ $# -eq 0 ]; then
    say "Running the CA's end-to-end tests again on PostgreSQL (SIGNET_TEST_STORE=postgres)"
    SIGNET_TEST_STORE=postgres cargo nextest run -p signet-ca --all-features --no-fail-fast \
        -E 'kind(test) & !binary(postgres) & !binary(postgres_replicas)' || status=$?
fi

# Test daemons run as foreground children that die with their test (sshd,
# signet-ca serve, signet-witness serve, headless Chromium and static
# mirrors under setpriv --pdeathsig, pcscd under a watchdog and
# --pdeathsig); one still running now is a leak, and so is a signet-node
# that a test's sshd started and never reaped. Zombies have no command line
# and are not matched. (Other test runs on the same machine would show up
# here too.)
say "Checking that the tests left no daemon running"
sleep 1 # a killed test's pcscd watchdog notices within 0.2 s
if left=$(pgrep -af 'signet-sshd-|signet-pcscd-|target/[a-z]+/signet-ca --config .* serve|signet-witness (serve|init) --config|signet-node principals --config|chromium.*--remote-debugging-port=0|http\.server --bind 127\.0\.0\.1'); then
    printf '%s\n' "$left" >&2
    note "test daemons outlived the suite (listed above)"
    status=1
fi
[ "$status" -eq 0 ] || exit "$status"

if [ "${CI:-}" = "true" ] && [ -x deploy/fuzz.sh ]; then
    say "Running the fuzz targets briefly"
    deploy/fuzz.sh "${SIGNET_FUZZ_SECONDS:-20}"
fi
