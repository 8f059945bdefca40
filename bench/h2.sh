#!/usr/bin/env bash
# What the HTTP/2 fingerprint costs (callgrind, one `httpd -X` with mod_http2 and the module
# exporting to a socket, h2load over TLS, one keep-alive connection of N requests): the same
# server with `JA4HTTP2Fingerprint On` (the default) and `Off`, run side by side; the
# difference is the HTTP/2 filter, its scanner and the per-request JA4_H2 variables and record
# trailers. Prints instructions per request (slope N1 -> N2), the fingerprint's cost per
# request and per connection, and its share of a 100-request connection's instructions (the
# issue's goal: at most 1%).
# Usage: bench/h2.sh [N1] [N2]   (default 20 120)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/httpd-conf.sh
N1=${1:-20}
N2=${2:-120}
command -v h2load >/dev/null || { echo "h2load missing (nghttp2-client; scripts/setup.sh)" >&2; exit 1; }
cargo build -q --release -p mod_ja4
MODULE=$PWD/target/release/libmod_ja4.so
work=$(mktemp -d /tmp/ja4-h2bench.XXXXXX)
chmod 755 "$work"
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
https=18843; http=18880

# Runs one connection of $2 requests under callgrind with JA4HTTP2Fingerprint $1; leaves
# $work/$1-$2/cg.out.
profile() {
  local mode=$1 n=$2 root="$work/$1-$2"
  rm -rf "$root"; mkdir -p "$root"
  JA4_EXTRA="Protocols h2 http/1.1
JA4HTTP2Fingerprint $mode" write_conf "$root" $https $http module
  start_receiver "$root/ingest.sock"
  install -m 644 -o "$(id -u www-data 2>/dev/null || id -u)" /dev/null "$root/cg.out"
  valgrind --tool=callgrind --callgrind-out-file="$root/cg.out" --dump-instr=no \
    apache2 -X -f "$root/httpd.conf" >/dev/null 2>"$root/valgrind.log" &
  local pid=$!
  wait_port $http; wait_port $https
  h2load -n "$n" -c 1 -m 1 "https://127.0.0.1:$https/index.html" >"$root/h2load.txt" 2>&1
  grep -q "$n succeeded" "$root/h2load.txt" || { cat "$root/h2load.txt" >&2; exit 1; }
  kill -TERM $pid; wait $pid || true
  kill $RECEIVER_PID 2>/dev/null || true; wait $RECEIVER_PID 2>/dev/null || true
}

total() {
  callgrind_annotate --threshold=100 "$work/$1-$2/cg.out" 2>/dev/null |
    awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

for n in $N1 $N2; do for m in Off On; do profile $m $n; done; done
awk -v n1=$N1 -v n2=$N2 -v off1="$(total Off $N1)" -v off2="$(total Off $N2)" \
    -v on1="$(total On $N1)" -v on2="$(total On $N2)" 'BEGIN {
  s_off = (off2 - off1) / (n2 - n1); s_on = (on2 - on1) / (n2 - n1)
  d1 = on1 - off1; d2 = on2 - off2
  per_req = s_on - s_off; per_conn = d1 - per_req * n1
  c100 = d1 + (d2 - d1) * (100 - n1) / (n2 - n1)
  printf "instructions per h2 request (slope %d -> %d): Off %.0f, On %.0f\n", n1, n2, s_off, s_on
  printf "HTTP/2 fingerprint: %+.0f per request, %+.0f per connection\n", per_req, per_conn
  printf "a connection of 100 requests: %+.0f of %.0f instructions = %.3f%% (goal <= 1%%)\n", c100, s_off * 100, 100 * c100 / (s_off * 100)
}'
