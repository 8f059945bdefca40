#!/usr/bin/env bash
# The whole test suite (what .ci/run calls): setup, lints, fuzz smoke runs, then every test.
# FUZZ_SECONDS (default 15) sets the per-target fuzz time; 0 skips fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never
bash scripts/setup.sh

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets -- -D warnings

fuzz_secs=${FUZZ_SECONDS:-15}
if [ "$fuzz_secs" != 0 ]; then
  echo "== fuzz smoke (${fuzz_secs}s per target)"
  bash scripts/fuzz.sh "$fuzz_secs"
fi

# The httpd tests load the module cargo builds as a cdylib, which `cargo test` does not build.
cargo build -q -p mod_ja4

echo "== clock guard (store tests with the clock 45 days ahead)"
bash scripts/clock-guard.sh 45

echo "== tests"
cargo nextest run --workspace --no-fail-fast --failure-output final --status-level fail
