#!/usr/bin/env bash
# Runs every cargo-fuzz target for a short time (default 20 s each) on a copy
# of its committed seed corpus. cargo-fuzz's sanitizer flags need nightly
# features; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
#
#   deploy/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
seconds="${1:-20}"

ensure_cargo
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "Installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd fuzz
for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
    say "Fuzzing $target for ${seconds}s"
    mkdir -p "$work/$target"
    [ -d "corpus/$target" ] && cp -r "corpus/$target/." "$work/$target/"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$work/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 3
done
