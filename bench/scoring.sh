#!/usr/bin/env bash
# Scoring cost and memory by window size: generated traffic (`ja4-lab synth`, PEOPLE browsing
# clients with 20 requests each, plus its fixed bot populations) into a fresh embedded store,
# then `ja4-sidecar train` and `score` over the whole window, timed with GNU time. Runs a
# small window (the baseline, PEOPLE/10) and the large one side by side and prints the cost
# per client of each and their ratio (1.00: linear in clients).
# Usage: bench/scoring.sh [PEOPLE]   (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
PEOPLE=${1:-100000}
cargo build -q --release -p ja4-sidecar -p ja4-lab
work=$(mktemp -d /tmp/ja4-scoring.XXXXXX); trap 'rm -rf "$work"' EXIT
run() { # people → "clients train_s score_s train_rss_mib score_rss_mib"
  local n=$1 dir="$work/$1"
  target/release/ja4-lab synth --data-dir "$dir/store" --database bench --people "$n" \
    --requests $((n * 20 * 10 / 7)) --hours 24 >/dev/null
  local clients
  clients=$(target/release/ja4-sidecar query --data-dir "$dir/store" --database bench \
    "SELECT count() FROM bench.view_ai_features(hours = 24)" 2>/dev/null | tail -1)
  /usr/bin/time -f '%e %M' -o "$dir/train.t" target/release/ja4-sidecar train --data-dir "$dir/store" \
    --database bench --hours 24 --models-dir "$dir/models" --min-clients 10 >/dev/null 2>&1
  /usr/bin/time -f '%e %M' -o "$dir/score.t" target/release/ja4-sidecar score --data-dir "$dir/store" \
    --database bench --hours 24 --models-dir "$dir/models" >/dev/null 2>&1
  read -r ts tm <"$dir/train.t"; read -r ss sm <"$dir/score.t"
  echo "$clients $ts $ss $((tm / 1024)) $((sm / 1024))"
  rm -rf "$dir"
}
printf '%-10s %9s %9s %9s %13s %13s %14s\n' people clients train_s score_s train_rss_MiB score_rss_MiB score_us/client
read -r c0 t0 s0 tm0 sm0 < <(run $((PEOPLE / 10)))
printf '%-10s %9s %9s %9s %13s %13s %14.1f\n' $((PEOPLE / 10)) "$c0" "$t0" "$s0" "$tm0" "$sm0" "$(echo "$s0 * 1000000 / $c0" | bc -l)"
read -r c1 t1 s1 tm1 sm1 < <(run "$PEOPLE")
printf '%-10s %9s %9s %9s %13s %13s %14.1f\n' "$PEOPLE" "$c1" "$t1" "$s1" "$tm1" "$sm1" "$(echo "$s1 * 1000000 / $c1" | bc -l)"
printf 'per-client scoring cost, large/small: %.2f\n' "$(echo "($s1 / $c1) / ($s0 / $c0)" | bc -l)"
