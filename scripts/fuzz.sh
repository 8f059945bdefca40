#!/usr/bin/env bash
# Runs every cargo-fuzz target of ja4-core for SECONDS each (default 20), seeded from the JA4
# corpus captures. Uses the stable toolchain with RUSTC_BOOTSTRAP=1 (libFuzzer + ASan).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tls_hello packet_decode http_request flow batch_decode h2_preface)
export RUSTC_BOOTSTRAP=1
root=$PWD
seeds=$root/target/fuzz-seeds
rm -rf "$seeds"
cargo run -q -p ja4-sidecar --example fuzz_seeds -- "$seeds" mod_ja4/core/tests/fixtures/ja4-corpus/pcap/* 2>/dev/null
cd mod_ja4/core
cargo fuzz build -O -s address >/dev/null 2>&1 || cargo fuzz build -O -s address
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "fuzz: $t for ${secs}s"
  cargo fuzz run -O -s address "$t" "fuzz/corpus/$t" "$seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=16384 -timeout=5 -print_final_stats=1 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|thread .* panicked|Done )" || true
  # cargo fuzz exits non-zero on a crash; PIPESTATUS keeps it visible through grep.
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t FAILED (artifacts in mod_ja4/core/fuzz/artifacts/$t)" >&2
    exit "$rc"
  fi
done
echo "fuzz: all targets clean"
