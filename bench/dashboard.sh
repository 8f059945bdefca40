#!/usr/bin/env bash
# Dashboard API latency over a large embedded store: p50/p95 per view.
# Usage: bench/dashboard.sh [REQUESTS=10000000] [RUNS=20]
# Generates REQUESTS synthetic requests over 24 h (once; kept in .cache/bench-dashboard),
# trains and scores them with the real models, starts `ja4-sidecar serve`, and times each
# API call the views make (curl, keep-alive off, sequential). Goal: p95 < 150 ms for the
# overview and the detections.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
RUNS=${2:-20}
DIR=.cache/bench-dashboard/$N
cargo build -q --release -p ja4-sidecar -p ja4-lab
BIN=target/release/ja4-sidecar
if [ ! -f "$DIR/.done" ]; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  target/release/ja4-lab synth --data-dir "$DIR/store" --requests "$N" --hours 24
  $BIN train --data-dir "$DIR/store" --models-dir "$DIR/models" --hours 24 >/dev/null
  $BIN score --data-dir "$DIR/store" --models-dir "$DIR/models" --hours 24 --resolver 127.0.0.1:9
  touch "$DIR/.done"
fi
PORT=$((20000 + RANDOM % 20000))
cat > "$DIR/sidecar.toml" <<TOML
[ingest]
socket = "$PWD/$DIR/ingest.sock"
[store]
data_dir = "$PWD/$DIR/store"
spool_dir = "$PWD/$DIR/spool"
[http]
listen = "127.0.0.1:$((PORT + 1))"
[scoring]
enabled = false
[dashboard]
listen = "127.0.0.1:$PORT"
users_file = "$PWD/$DIR/users.json"
TOML
echo 'tern-orchard-58' | $BIN user add bench --role admin --config "$DIR/sidecar.toml" >/dev/null
$BIN serve --config "$DIR/sidecar.toml" & PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
JAR=$(mktemp)
curl -sf -c "$JAR" -H 'content-type: application/json' \
  -d '{"user":"bench","password":"tern-orchard-58"}' "http://127.0.0.1:$PORT/api/login" >/dev/null
IP=$(curl -sf -b "$JAR" "http://127.0.0.1:$PORT/api/detections?range=24h&limit=1" | python3 -c 'import json,sys;print(json.load(sys.stdin)["rows"][0]["ip"])')
python3 - "$PORT" "$JAR" "$RUNS" "$IP" <<'PY'
import http.cookiejar, sys, time, urllib.request
port, jar, runs, ip = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cj = http.cookiejar.MozillaCookieJar(jar); cj.load(ignore_discard=True, ignore_expires=True)
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cj))
views = [
    ("overview 24h", "overview?range=24h"),
    ("overview 24h, filtered", "overview?range=24h&f=country:US&x=ja4_a:t13d1516h2"),
    ("overview 7d", "overview?range=7d"),
    ("top ja4 24h", "top?dim=ja4&range=24h"),
    ("top path 24h", "top?dim=path&range=24h"),
    ("top ua 24h", "top?dim=ua&range=24h"),
    ("detections 24h", "detections?range=24h"),
    ("detections sorted, filtered", "detections?range=24h&sort=recurrence&f=threat:high"),
    ("scores 24h", "scores?range=24h"),
    ("campaigns 24h", "campaigns?range=24h"),
    ("fingerprint", "fingerprint?range=24h&kind=ja4&value=t13d1516h2_8daaf6152771_02713d6af862"),
    ("client", f"client?range=24h&ip={ip}"),
    ("client requests", f"client/requests?range=24h&ip={ip}"),
    ("audit", "audit?range=24h"),
]
print(f"{'view':32} {'p50 ms':>8} {'p95 ms':>8}")
for name, path in views:
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        op.open(f"http://127.0.0.1:{port}/api/{path}").read()
        t.append((time.perf_counter() - s) * 1000)
    t.sort()
    p = lambda q: t[min(len(t) - 1, int(round(q * (len(t) - 1))))]
    print(f"{name:32} {p(0.5):8.1f} {p(0.95):8.1f}")
PY
