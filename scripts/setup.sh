#!/usr/bin/env bash
# Installs what ja4-platform needs to build and test, idempotently and quietly:
# Debian packages (apt) and cargo tools. Safe to run again; does nothing when all is present.
set -euo pipefail
log() { printf 'setup: %s\n' "$*"; }

APT_PACKAGES=(libpcap-dev pkg-config tcpdump openssl curl python3 python3-venv apache2 apache2-dev clang libclang-dev dnsmasq-base chromium firefox-esr default-jre-headless golang-go rpm rpm2cpio cpio selinux-policy-dev patchelf faketime nghttp2-client)
# EL (el8/el9/el10) equivalents; chromium comes from EPEL.
DNF_PACKAGES=(libpcap-devel pkgconf-pkg-config tcpdump openssl curl python3 httpd httpd-devel mod_ssl clang clang-devel dnsmasq java-21-openjdk-headless golang npm rpm-build selinux-policy-devel libfaketime nghttp2)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if command -v apt-get >/dev/null; then
  command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
elif command -v dnf >/dev/null; then
  missing=()
  for p in "${DNF_PACKAGES[@]}"; do
    rpm -q "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  rpm -q chromium >/dev/null 2>&1 || missing+=(chromium)
  rpm -q firefox >/dev/null 2>&1 || missing+=(firefox)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    rpm -q epel-release >/dev/null 2>&1 || $SUDO dnf -y -q install epel-release >/dev/null || true
    $SUDO dnf -y -q install "${missing[@]}" >/dev/null
  fi
else
  log "no apt-get or dnf: install the equivalents of: ${APT_PACKAGES[*]}" >&2
  exit 1
fi

command -v cargo >/dev/null || { log "cargo not found: install Rust (rustup) first" >&2; exit 1; }

# cargo tools: nextest runs the suite, cargo-fuzz the fuzz smoke runs.
install_tool() {
  local bin=$1 crate=$2
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/$bin" ]; then
    log "installing $crate (one-time build)"
    cargo install --locked -q "$crate" >/dev/null 2>&1 || cargo install -q "$crate"
  fi
}
install_tool cargo-nextest cargo-nextest
# cargo-zigbuild and zig (PyPI) link the RPM's binaries against glibc 2.28 (rpm/build.sh).
install_tool cargo-zigbuild cargo-zigbuild
ZIG_VENV="$(dirname "$0")/../.cache/zig-venv"
if ! "$ZIG_VENV/bin/python" -c 'import ziglang' 2>/dev/null; then
  log "installing zig (PyPI ziglang)"
  python3 -m venv "$ZIG_VENV"
  "$ZIG_VENV/bin/pip" install -q ziglang==0.13.0.post1
fi
install_tool cargo-fuzz cargo-fuzz

# The embedded ClickHouse engine (chDB), from npm, pinned.
bash "$(dirname "$0")/fetch-chdb.sh" >/dev/null
# The old engine (chDB 1.0.2 = ClickHouse 23.10) the schema must also run on, from PyPI.
bash "$(dirname "$0")/fetch-chdb-old.sh" >/dev/null
# playwright-core drives Debian's Chromium in the dashboard's browser test; puppeteer-core
# drives Chromium (CDP) and Firefox ESR (WebDriver BiDi) as the lab's people and headless
# crawlers (npm, pinned; puppeteer-core 24 still runs on Debian's Node 20).
NODE_DIR="$(dirname "$0")/../.cache/node"
for pkg in playwright-core@1.49.1 puppeteer-core@24.40.0; do
  if [ ! -d "$NODE_DIR/node_modules/${pkg%@*}" ]; then
    mkdir -p "$NODE_DIR"
    [ -f "$NODE_DIR/package.json" ] || echo '{"private":true}' > "$NODE_DIR/package.json"
    log "installing $pkg (npm)"
    (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund "$pkg" >/dev/null)
  fi
done
# curl-cffi (PyPI): curl-impersonate's TLS and HTTP/2 of real browsers, the lab's
# impersonating scraper. h2 (with hpack) and httpx: the HTTP/2 tests' reference server and
# Python client (mod_ja4/tests/h2.rs).
LAB_VENV="$(dirname "$0")/../.cache/lab-venv"
if ! "$LAB_VENV/bin/python" -c 'import curl_cffi, h2, hpack, httpx' 2>/dev/null; then
  log "installing curl-cffi, h2, httpx (PyPI)"
  [ -x "$LAB_VENV/bin/pip" ] || python3 -m venv "$LAB_VENV"
  "$LAB_VENV/bin/pip" install -q curl-cffi==0.17.0 h2==4.1.0 'httpx[http2]==0.27.2'
fi
log "ok"
