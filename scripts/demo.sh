#!/usr/bin/env bash
# Quick-start demo: sets up, builds, fingerprints bundled captures of real clients (curl,
# Chrome, Java, Go, Python…), then runs the live pipeline: the quick traffic lab (real
# Chromium, curl, Python and Java clients against a private httpd with mod_ja4 and the
# sidecar; trained, scored, and a detection table printed). The lab needs root.
# `scripts/demo.sh stop` tears down what it started (the lab stops its own processes).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ "${1:-}" = stop ]; then
  echo "demo: nothing running (the offline demo starts no services)"
  exit 0
fi
bash scripts/setup.sh
echo "demo: building ja4-sidecar (release)"
cargo build -q --release -p ja4-sidecar
bin=target/release/ja4-sidecar
corpus=mod_ja4/core/tests/fixtures/ja4-corpus/pcap
echo
echo "demo: one connection per client stack, human-readable:"
for f in curl.pcap java25.pcap go_nethttp.pcap python_urllib.pcap http1-with-cookies.pcapng; do
  "$bin" pcap --format text "$corpus/$f"
done
echo
echo "demo: JSON Lines (every variant) for a browser capture:"
"$bin" pcap "$corpus/latest.pcapng" | head -n 3
echo
n=$("$bin" pcap "$corpus"/* | wc -l)
echo "demo: $n TCP connections fingerprinted across $(ls "$corpus" | wc -l) captures"
echo "demo: try it on your own capture: $bin pcap [--format text] FILE.pcap"
echo
if [ "$(id -u)" = 0 ]; then
  echo "demo: building mod_ja4 (release) and running the quick traffic lab (about two minutes)…"
  cargo build -q --release -p mod_ja4
  "$bin" lab --quick --module target/release/libmod_ja4.so
else
  echo "demo: run as root to see the live pipeline (the traffic lab starts httpd as www-data)"
fi
