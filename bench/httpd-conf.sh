# Shared by the bench scripts (sourced from the workspace root): writes a private httpd ServerRoot in $1 for ports $2 (https)
# and $3 (http). $4 selects mod_ja4: base (not loaded), module (exporting to a unix socket,
# the production shape; a receiver must listen on $1/ingest.sock) or module-json (exporting
# to a JSON Lines file). The server loads Debian's default module set, as a real site does.
# The configuration itself comes from the test kit's renderer (testkit/src/httpd.rs), shared
# with the module's tests and the lab.
cargo build -q -p ja4-testkit --bin ja4-httpd-conf
HTTPD_CONF=$PWD/target/debug/ja4-httpd-conf
write_conf() {
  local root=$1 https=$2 http=$3 mode=$4 mpm=${5:-event}
  mkdir -p "$root/htdocs"
  # Children (and `-X` after dropping privileges) run as www-data: they write the TLS cache,
  # the receiver socket's peer side and callgrind's output here.
  if [ "$(id -u)" = 0 ]; then chmod 755 "$(dirname "$root")"; chown www-data "$root"; fi
  echo "hello from httpd" > "$root/htdocs/index.html"
  [ -f "$root/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj /CN=localhost -keyout "$root/key.pem" -out "$root/cert.pem" 2>/dev/null
  MODULE=${MODULE:-} "$HTTPD_CONF" "$root" "$https" "$http" "$mode" "$mpm"
}

wait_port() {
  for _ in $(seq 1 400); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2
  return 1
}

# Drains a unix socket (a stand-in for the sidecar's ingest, outside the measured process).
start_receiver() {
  python3 - "$1" >/dev/null 2>&1 <<'PY' &
import os, socket, sys, threading
path = sys.argv[1]
try: os.unlink(path)
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(path); os.chmod(path, 0o666); s.listen(64)
def drain(c):
    while c.recv(1 << 20): pass
while True:
    c, _ = s.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
PY
  RECEIVER_PID=$!
}

# One callgrind run of `httpd -X` in a fresh ServerRoot $1 (ports $2, $3; mode $4 as in
# write_conf, a receiver draining the socket in module mode) serving $6 keep-alive requests
# to $5 with ab (further arguments go to ab, e.g. -H headers). Leaves $1/cg.out; exits the
# script if a request failed.
callgrind_run() {
  local root=$1 https=$2 http=$3 mode=$4 url=$5 n=$6
  shift 6
  rm -rf "$root"; mkdir -p "$root"
  write_conf "$root" "$https" "$http" "$mode"
  RECEIVER_PID=""
  [ "$mode" = module ] && start_receiver "$root/ingest.sock"
  # callgrind writes its output at exit, after httpd dropped to www-data.
  install -m 644 -o "$(id -u www-data 2>/dev/null || id -u)" /dev/null "$root/cg.out"
  valgrind --tool=callgrind --callgrind-out-file="$root/cg.out" --dump-instr=no \
    apache2 -X -f "$root/httpd.conf" >/dev/null 2>"$root/valgrind.log" &
  local pid=$!
  wait_port "$http"; wait_port "$https"
  ab -q -k -n "$n" -c 1 "$@" "$url" >"$root/ab.txt" 2>&1
  grep -q "Failed requests: *0" "$root/ab.txt" || { cat "$root/ab.txt" >&2; exit 1; }
  kill -TERM $pid; wait $pid || true
  [ -n "$RECEIVER_PID" ] && { kill $RECEIVER_PID; wait $RECEIVER_PID 2>/dev/null || true; }
  return 0
}
