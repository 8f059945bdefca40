#!/usr/bin/env bash
# Throughput of httpd with mod_ja4 (exporting to a unix socket) relative to without it:
# interleaved `ab` runs (base, module, base, module, …) against two otherwise identical
# servers, keep-alive, HTTP and HTTPS. Prints requests/s per run and the median ratio.
# Usage: bench/throughput.sh [ROUNDS] [REQUESTS] [CONCURRENCY]   (default 5 20000 8)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/httpd-conf.sh
ROUNDS=${1:-5}; N=${2:-20000}; C=${3:-8}
cargo build -q --release -p mod_ja4
MODULE=$PWD/target/release/libmod_ja4.so
work=$(mktemp -d /tmp/ja4-throughput.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$work"; }
trap cleanup EXIT
declare -A port_http port_https
i=0
for mode in base module; do
  root="$work/$mode"; mkdir -p "$root"
  port_https[$mode]=$((18600 + i)); port_http[$mode]=$((18610 + i)); i=$((i + 1))
  write_conf "$root" "${port_https[$mode]}" "${port_http[$mode]}" "$mode"
  if [ "$mode" = module ]; then start_receiver "$root/ingest.sock"; pids+=("$RECEIVER_PID"); fi
  apache2 -f "$root/httpd.conf" -DFOREGROUND &
  pids+=("$!")
  wait_port "${port_http[$mode]}"; wait_port "${port_https[$mode]}"
done
rps() { ab -q -k -n "$N" -c "$C" "$1" 2>/dev/null | awk '/Requests per second/ {print $4}'; }
for proto in http https; do
  ratios=()
  for r in $(seq 1 "$ROUNDS"); do
    declare -A got
    for mode in base module; do
      if [ $proto = https ]; then p=${port_https[$mode]}; else p=${port_http[$mode]}; fi
      got[$mode]=$(rps "$proto://127.0.0.1:$p/index.html")
    done
    ratio=$(awk -v m="${got[module]}" -v b="${got[base]}" 'BEGIN { printf "%.4f", m / b }')
    ratios+=("$ratio")
    printf '%-5s round %d  base %10s req/s  module %10s req/s  ratio %s\n' $proto "$r" "${got[base]}" "${got[module]}" "$ratio"
  done
  printf '%s\n' "${ratios[@]}" | sort -n | awk -v p=$proto '{ a[NR] = $1 } END { printf "%-5s median ratio module/base = %.4f\n", p, a[int((NR + 1) / 2)] }'
done
