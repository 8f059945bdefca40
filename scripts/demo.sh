#!/usr/bin/env bash
# Quick start, one command: installs what is needed (apt or dnf), builds, fetches the embedded
# ClickHouse engine, fingerprints bundled captures of real clients, then runs the live
# pipeline — a private httpd on 127.0.0.1 with mod_ja4 and mod_ssl, the sidecar with the
# embedded store and its migrations, a short burst of real traffic (headless Chromium people,
# curl/Python/Java scrapers, credential stuffing, fuzzers, crawlers, a campaign), trained and
# scored — and leaves the dashboard running with a one-time admin password.
# Without root (the lab starts httpd as www-data) it generates the traffic instead (synth).
#   scripts/demo.sh        run (again: it replaces the previous demo)
#   scripts/demo.sh stop   tear the demo down
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
DEMO=$PWD/.cache/demo
PORT=${JA4_DEMO_PORT:-9480}
step() { printf '\ndemo [%s/6] %s\n' "$1" "$2"; }

stop_demo() {
  if [ -f "$DEMO/serve.pid" ] && kill -0 "$(cat "$DEMO/serve.pid")" 2>/dev/null; then
    kill "$(cat "$DEMO/serve.pid")"
    for _ in $(seq 50); do kill -0 "$(cat "$DEMO/serve.pid")" 2>/dev/null || break; sleep 0.2; done
    echo "demo: sidecar and dashboard stopped"
  fi
  rm -f "$DEMO/serve.pid"
}
if [ "${1:-}" = stop ]; then
  stop_demo
  rm -rf "$DEMO"
  echo "demo: removed $DEMO"
  exit 0
fi
stop_demo

step 1 "installing packages and tools (idempotent)"
bash scripts/setup.sh

step 2 "building ja4-sidecar, the lab tools and mod_ja4 (release)"
cargo build -q --release -p ja4-sidecar -p ja4-lab -p mod_ja4
bin=target/release/ja4-sidecar
lab=target/release/ja4-lab

step 3 "fingerprinting bundled captures of real clients"
corpus=mod_ja4/core/tests/fixtures/ja4-corpus/pcap
for f in curl.pcap java25.pcap go_nethttp.pcap python_urllib.pcap; do
  "$bin" pcap --format text "$corpus/$f" | head -n 6
done
n=$("$bin" pcap "$corpus"/* | wc -l)
echo "demo: $n TCP connections fingerprinted across $(ls "$corpus" | wc -l) captures (try: $bin pcap --format text FILE.pcap)"

rm -rf "$DEMO" && mkdir -p "$DEMO"
if [ "$(id -u)" = 0 ]; then
  step 4 "live pipeline: httpd + mod_ja4 + mod_ssl, the sidecar, real clients, scoring (about two minutes)"
  "$lab" lab --quick --sidecar "$bin" --module target/release/libmod_ja4.so --work-dir "$DEMO/lab" --keep --report "$DEMO/lab-report.json"
else
  step 4 "not root: generating realistic traffic instead of the live lab (run as root for real clients)"
  "$lab" synth --data-dir "$DEMO/lab/store" --requests 300000 --hours 6
  "$bin" train --data-dir "$DEMO/lab/store" --models-dir "$DEMO/models" --hours 6 >/dev/null
  "$bin" score --data-dir "$DEMO/lab/store" --models-dir "$DEMO/models" --hours 6 --resolver 127.0.0.1:9
fi

step 5 "starting the sidecar with the dashboard on 127.0.0.1:$PORT"
cat > "$DEMO/sidecar.toml" <<TOML
[ingest]
socket = "$DEMO/ingest.sock"
[store]
data_dir = "$DEMO/lab/store"
spool_dir = "$DEMO/spool"
[http]
listen = "127.0.0.1:$((PORT - 16))"
[scoring]
# The dashboard shows the lab's own scoring (its report above); set true to keep scoring
# whatever traffic arrives next.
enabled = false
models_dir = "$DEMO/models"
[dashboard]
listen = "127.0.0.1:$PORT"
users_file = "$DEMO/users.json"
TOML
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
echo "$password" | "$bin" user add admin --role admin --config "$DEMO/sidecar.toml" >/dev/null
JA4_LOG=info nohup "$bin" serve --config "$DEMO/sidecar.toml" >"$DEMO/serve.log" 2>&1 &
echo $! > "$DEMO/serve.pid"
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 "$(cat "$DEMO/serve.pid")" 2>/dev/null || { tail -5 "$DEMO/serve.log"; exit 1; }
  sleep 0.2
done

step 6 "ready"
cat <<EOF2

  Dashboard:  http://127.0.0.1:$PORT/
  User:       admin
  Password:   $password      (one-time: add your own with ja4-sidecar user add NAME --config $DEMO/sidecar.toml)

  Metrics:    http://127.0.0.1:$((PORT - 16))/metrics
  Logs:       $DEMO/serve.log
  Stop:       scripts/demo.sh stop
EOF2
