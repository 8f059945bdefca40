#!/usr/bin/env bash
# Fetches chDB 1.0.2 (ClickHouse engine 23.10, close to our 23.8 floor) from PyPI into
# .cache/chdb-old/site, for the test that applies the schema on an old engine.
# Idempotent and quiet; the wheel is downloaded (not installed) and unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.cache/chdb-old
VERSION=1.0.2
[ -f "$DEST/site/chdb/__init__.py" ] && [ -f "$DEST/version" ] && [ "$(cat "$DEST/version")" = "$VERSION" ] && exit 0
mkdir -p "$DEST/wheel"
python3 -m pip download -q --no-deps --only-binary=:all: -d "$DEST/wheel" "chdb==$VERSION" >/dev/null
rm -rf "$DEST/site"
python3 -m zipfile -e "$DEST"/wheel/chdb-"$VERSION"-*.whl "$DEST/site"
echo "$VERSION" > "$DEST/version"
