#!/usr/bin/env bash
# Throughput of httpd with mod_ja4 (exporting to a unix socket) relative to without it:
# interleaved `ab` runs (base, module, base, module, …) against two otherwise identical
# servers, keep-alive, HTTP and HTTPS. Prints requests/s per run and the median ratio.
# COMPARE=decisions compares the module without mitigation (module) to the module enforcing
# decisions (decisions: JA4Mitigation Enforce, a 10,000-entry decisions snapshot that does
# not name the client, one JA4RateLimit by address that never trips).
# Usage: [COMPARE=decisions] bench/throughput.sh [ROUNDS] [REQUESTS] [CONCURRENCY]
#        (default 5 20000 8)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/httpd-conf.sh
ROUNDS=${1:-5}; N=${2:-20000}; C=${3:-8}
cargo build -q --release -p mod_ja4
MODULE=$PWD/target/release/libmod_ja4.so
work=$(mktemp -d /tmp/ja4-throughput.XXXXXX)
chmod 755 "$work"
if [ "${COMPARE:-}" = decisions ]; then
  A=module; B=decisions
  cargo build -q --release -p ja4-core --example decisions
  target/release/examples/decisions snapshot "$work/decisions.bin" 10000
  chmod 644 "$work/decisions.bin"
else
  A=base; B=module
fi
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$work"; }
trap cleanup EXIT
declare -A port_http port_https
i=0
for mode in $A $B; do
  root="$work/$mode"; mkdir -p "$root"
  port_https[$mode]=$((18600 + i)); port_http[$mode]=$((18610 + i)); i=$((i + 1))
  if [ "$mode" = decisions ]; then
    JA4_EXTRA=$(printf 'JA4Mitigation Enforce\nJA4DecisionFile %s/decisions.bin\nJA4Action bot block\nJA4RateLimit ip 1000000/1 block\n' "$work") \
      write_conf "$root" "${port_https[$mode]}" "${port_http[$mode]}" module
  else
    write_conf "$root" "${port_https[$mode]}" "${port_http[$mode]}" "$mode"
  fi
  if [ "$mode" != base ]; then start_receiver "$root/ingest.sock"; pids+=("$RECEIVER_PID"); fi
  apache2 -f "$root/httpd.conf" -DFOREGROUND &
  pids+=("$!")
  wait_port "${port_http[$mode]}"; wait_port "${port_https[$mode]}"
done
rps() { ab -q -k -n "$N" -c "$C" "$1" 2>/dev/null | awk '/Requests per second/ {print $4}'; }
for proto in http https; do
  ratios=()
  for r in $(seq 1 "$ROUNDS"); do
    declare -A got
    for mode in $A $B; do
      if [ $proto = https ]; then p=${port_https[$mode]}; else p=${port_http[$mode]}; fi
      got[$mode]=$(rps "$proto://127.0.0.1:$p/index.html")
    done
    ratio=$(awk -v m="${got[$B]}" -v b="${got[$A]}" 'BEGIN { printf "%.4f", m / b }')
    ratios+=("$ratio")
    printf '%-5s round %d  %s %10s req/s  %s %10s req/s  ratio %s\n' $proto "$r" $A "${got[$A]}" $B "${got[$B]}" "$ratio"
  done
  printf '%s\n' "${ratios[@]}" | sort -n | awk -v p=$proto -v a=$A -v b=$B '{ r[NR] = $1 } END { printf "%-5s median ratio %s/%s = %.4f\n", p, b, a, r[int((NR + 1) / 2)] }'
done
