#!/usr/bin/env bash
# Installs what ja4-platform needs to build and test, idempotently and quietly:
# Debian packages (apt) and cargo tools. Safe to run again; does nothing when all is present.
set -euo pipefail
log() { printf 'setup: %s\n' "$*"; }

APT_PACKAGES=(libpcap-dev pkg-config tcpdump openssl curl python3 apache2 apache2-dev clang libclang-dev dnsmasq-base chromium default-jre-headless)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    log "missing packages ${missing[*]} and no apt-get: install them with your package manager" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
install_tool cargo-fuzz cargo-fuzz

# The embedded ClickHouse engine (chDB), from npm, pinned.
bash "$(dirname "$0")/fetch-chdb.sh" >/dev/null
# The old engine (chDB 1.0.2 = ClickHouse 23.10) the schema must also run on, from PyPI.
bash "$(dirname "$0")/fetch-chdb-old.sh" >/dev/null
# playwright-core drives Debian's Chromium in the dashboard's browser test (npm, pinned).
NODE_DIR="$(dirname "$0")/../.cache/node"
if [ ! -d "$NODE_DIR/node_modules/playwright-core" ]; then
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"private":true}' > "$NODE_DIR/package.json"
  log "installing playwright-core (npm)"
  (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund playwright-core@1.49.1 >/dev/null)
fi
log "ok"
