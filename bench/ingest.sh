#!/usr/bin/env bash
# Socket → embedded store throughput of `ja4-sidecar serve`: sends RECORDS synthetic records
# and reports records/s until all are inserted, plus the sidecar's peak RSS.
# Usage: bench/ingest.sh [RECORDS] [BATCH]   (default 500000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500000}; B=${2:-1000}
cargo build -q --release -p ja4-sidecar --bin ja4-sidecar --example ingest_load
bin=target/release/ja4-sidecar
work=$(mktemp -d /tmp/ja4-ingest.XXXXXX)
trap 'kill $pid 2>/dev/null || true; sleep 1; rm -rf "$work"' EXIT
cat > "$work/sidecar.toml" <<CONF
[ingest]
socket = "$work/ingest.sock"
[store]
data_dir = "$work/store"
spool_dir = "$work/spool"
batch_records = 100000
flush_ms = 500
[http]
listen = "127.0.0.1:19464"
[dashboard]
enabled = false
CONF
JA4_LOG=warn "$bin" serve --config "$work/sidecar.toml" & pid=$!
until curl -sf http://127.0.0.1:19464/healthz >/dev/null; do sleep 0.1; done
metric() { curl -s http://127.0.0.1:19464/metrics | awk -v n="$1" '$1 == n {print $2}'; }
start=$(date +%s.%N)
target/release/examples/ingest_load "$work/ingest.sock" "$N" "$B"
until [ "$(metric ja4_store_inserted_total)" -ge "$N" ]; do sleep 0.05; done
end=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
awk -v n="$N" -v s="$start" -v e="$end" -v rss="$rss" -v ins="$(metric ja4_store_insert_seconds_total)" \
  'BEGIN { printf "records %d  wall %.2fs  %.0f records/s  (insert time %.2fs)  peak RSS %.0f MiB\n", n, e - s, n / (e - s), ins, rss / 1024 }'

# The same store through the server writer (clickhouse crate, LZ4) and the test HTTP front.
cargo run -q --release -p ja4-store --example front_insert -- 200000 50000
