#!/usr/bin/env bash
# Per-request cost of mod_ja4 in user-space instructions (callgrind), HTTP and HTTPS with
# keep-alive: the slope between a short and a long run of one single-process httpd (-X), with
# and without the module. Two request shapes: ab's own (Host, User-Agent, Accept) and a
# browser's navigation (the 13 headers of Chromium 131 in bench/browser-headers.txt, with a
# cookie). Prints instructions/request and the module's overhead in percent.
# Usage: bench/callgrind.sh [N1] [N2]   (default 200 1200 requests)
# A subset: SHAPES="ab" PROTOS="https" MODES="module" bench/callgrind.sh 500 2500 (the base
# run is always made: the overhead is against it).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/httpd-conf.sh
N1=${1:-200}
N2=${2:-1200}
cargo build -q --release -p mod_ja4
MODULE=$PWD/target/release/libmod_ja4.so
work=$(mktemp -d /tmp/ja4-callgrind.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
https=18543; http=18580

# Total instructions of one httpd -X run serving $n keep-alive requests to $url.
run_one() {
  # One ServerRoot path for every mode: httpd's per-request path walk (strcmp of the
  # directory names, pool alignment) costs differ by ~100 instructions between paths of
  # different lengths, which would bias the comparison.
  local mode=$1 url=$2 n=$3 root="$work/run"
  local headers=()
  if [ "$shape" = browser ]; then
    while IFS= read -r h; do headers+=(-H "$h"); done < bench/browser-headers.txt
  fi
  callgrind_run "$root" $https $http "$mode" "$url" "$n" ${headers[@]+"${headers[@]}"}
  grep -E '^(summary|totals):' "$root/cg.out" | head -1 | awk '{print $2}'
}

printf '%-6s %-8s %-12s %14s\n' proto shape mode instr/request
for shape in ${SHAPES:-ab browser}; do
for proto in ${PROTOS:-http https}; do
  if [ $proto = https ]; then url="https://127.0.0.1:$https/index.html"; else url="http://127.0.0.1:$http/index.html"; fi
  declare -A per
  for mode in base ${MODES:-module module-json}; do
    a=$(run_one $mode "$url" "$N1")
    b=$(run_one $mode "$url" "$N2")
    per[$mode]=$(( (b - a) / (N2 - N1) ))
    printf '%-6s %-8s %-12s %14d\n' $proto $shape $mode "${per[$mode]}"
  done
  for mode in ${MODES:-module module-json}; do
    awk -v b="${per[base]}" -v m="${per[$mode]}" -v p=$proto -v s=$shape -v k=$mode 'BEGIN { printf "%-6s %-8s %-12s overhead %+.2f%% (%+d instructions/request)\n", p, s, k, (m - b) * 100 / b, m - b }'
  done
done
done
