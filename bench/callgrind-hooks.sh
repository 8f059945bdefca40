#!/usr/bin/env bash
# Where the module's per-request instructions go: the inclusive cost of its request hooks
# (post_read_request, log_transaction, the status handler's decline) and of the functions
# under them, as the slope between a short and a long callgrind run of one `httpd -X` with
# the module exporting to a socket (ab's keep-alive request). Unlike bench/callgrind.sh's
# whole-process slope, which moves by tens of instructions between runs of one build, these
# move by a few: the figure to compare two builds of the request path by.
# Usage: bench/callgrind-hooks.sh [http|https] [N1] [N2]   (default https 200 4200)
# SHAPE=browser: the browser's navigation of bench/browser-headers.txt instead of ab's request.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/httpd-conf.sh
proto=${1:-https}
N1=${2:-200}
N2=${3:-4200}
cargo build -q --release -p mod_ja4
MODULE=$PWD/target/release/libmod_ja4.so
work=$(mktemp -d /tmp/ja4-hooks.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
https=18643; http=18680
url="http://127.0.0.1:$http/index.html"
[ "$proto" = https ] && url="https://127.0.0.1:$https/index.html"

# Inclusive instructions per function (ours and what they call) after $n requests.
profile() {
  local n=$1 root="$work/run" headers=()
  if [ "${SHAPE:-ab}" = browser ]; then
    while IFS= read -r h; do headers+=(-H "$h"); done < bench/browser-headers.txt
  fi
  callgrind_run "$root" $https $http module "$url" "$n" ${headers[@]+"${headers[@]}"}
  # Lines naming a function by its source file: one per function (the `???:` twins repeat).
  callgrind_annotate --inclusive=yes --threshold=100 "$root/cg.out" 2>/dev/null |
    grep -E '^ *[0-9,]+ \(' | grep -E "^[^/]*$PWD/mod_ja4/|PROGRAM TOTALS" |
    sed -E "s/^ *([0-9,]+) \([^)]*\) +/\1\t/; s/,//g; s/ \[.*//; s#$PWD/##" >"$work/$n.txt"
}

profile "$N1"
profile "$N2"
echo "instructions/request ($proto, ${SHAPE:-ab}, inclusive, slope $N1 -> $N2):"
awk -F'\t' -v d=$((N2 - N1)) '
  NR == FNR { a[$2] = $1; next }
  { v = ($1 - a[$2]) / d
    if (v >= 1) printf "%9.1f  %s\n", v, $2
    if ($2 ~ /request::(post_read_request|log_transaction)$|status::handler$/) hooks += v }
  END { printf "%9.1f  request hooks together\n", hooks }' "$work/$N1.txt" "$work/$N2.txt" |
  sort -k1,1nr
