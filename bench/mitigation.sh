#!/usr/bin/env bash
# What mitigation costs a request: instructions per request (callgrind slope between a short
# and a long run of one `httpd -X`, ab keep-alive over plain HTTP, exporting to a socket) of
# the module's post_read_request and of the mitigation functions under it, for
#   off    JA4Mitigation Off (the baseline)
#   miss   Enforce, a decisions snapshot of 10,000 entries that does not name the client
#   hit    the same snapshot naming the client (human: its variables are set, it is served)
#   limit  Enforce, one JA4RateLimit by address that never trips
#   pass   the client must pass the challenge and sends a valid pass cookie (the HMAC check)
# and the difference to `off` (the issue's goal for a decision lookup: <= 150), for the hook
# and for the whole process (the record's mitigation trailer at log time included).
# Usage: bench/mitigation.sh [N1] [N2]   (default 200 2200)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/httpd-conf.sh
N1=${1:-200}
N2=${2:-2200}
cargo build -q --release -p mod_ja4
cargo build -q --release -p ja4-core --example decisions
MODULE=$PWD/target/release/libmod_ja4.so
TOOL=$PWD/target/release/examples/decisions
work=$(mktemp -d /tmp/ja4-mitigation.XXXXXX)
chmod 755 "$work"
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
https=18743; http=18780
url="http://127.0.0.1:$http/index.html"
head -c 48 /dev/urandom | base64 >"$work/key"
"$TOOL" snapshot "$work/miss.bin" 10000
"$TOOL" snapshot "$work/hit.bin" 10000 127.0.0.1 human
"$TOOL" snapshot "$work/pass.bin" 10000 127.0.0.1 suspicious
chmod 644 "$work"/*.bin "$work/key"
pass=$("$TOOL" pass "$work/key" 127.0.0.1 - 3600)

config() {
  case $1 in
    off) echo "JA4Mitigation Off" ;;
    miss) printf 'JA4Mitigation Enforce\nJA4DecisionFile %s/miss.bin\nJA4Action bot block\n' "$work" ;;
    hit) printf 'JA4Mitigation Enforce\nJA4DecisionFile %s/hit.bin\nJA4Action bot block\n' "$work" ;;
    limit) printf 'JA4Mitigation Enforce\nJA4RateLimit ip 1000000/1 block\n' ;;
    pass) printf 'JA4Mitigation Enforce\nJA4DecisionFile %s/pass.bin\nJA4Action suspicious challenge\nJA4ChallengeKeyFile %s/key\n' "$work" "$work" ;;
  esac
}

# Inclusive instructions of post_read_request and the mitigation functions after $2 requests.
profile() {
  local name=$1 n=$2 root="$work/$1-$2" args=()
  [ "$name" = pass ] && args=(-C "ja4_pass=$pass")
  JA4_EXTRA=$(config "$name") callgrind_run "$root" $https $http module "$url" "$n" ${args[@]+"${args[@]}"}
  callgrind_annotate --inclusive=yes --threshold=100 "$root/cg.out" 2>/dev/null |
    grep -E '^ *[0-9,]+ \(' | grep -E "$PWD/mod_ja4/src/(request|mitigate)|PROGRAM TOTALS" |
    sed -E "s/^ *([0-9,]+) \([^)]*\) +/\1\t/; s/,//g; s/ \[.*//; s#$PWD/##" >"$work/$name-$n.txt"
}

slope() { # $1 config, $2 function name suffix
  awk -F'\t' -v d=$((N2 - N1)) -v f="$2" '
    NR == FNR { if ($2 ~ f"$") a = $1; next }
    $2 ~ f"$" { b = $1 }
    END { printf "%.1f", (b - a) / d }' "$work/$1-$N1.txt" "$work/$1-$N2.txt"
}

echo "instructions/request (http, ab keep-alive, inclusive, slope $N1 -> $N2):"
printf '%-6s %10s %10s %10s %10s\n' config post_read vs_off process vs_off
for c in ${CONFIGS:-off miss hit limit pass}; do
  profile $c "$N1"
  profile $c "$N2"
  p=$(slope $c 'request::post_read_request')
  t=$(slope $c 'PROGRAM TOTALS')
  [ $c = off ] && { base=$p; tbase=$t; }
  : "${base:=$p}" "${tbase:=$t}"
  printf '%-6s %10s %10.1f %10s %10.1f\n' $c "$p" "$(echo "$p - $base" | bc -l)" "$t" "$(echo "$t - $tbase" | bc -l)"
done
