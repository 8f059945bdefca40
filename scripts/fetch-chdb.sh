#!/usr/bin/env bash
# Fetches the embedded ClickHouse engine (chDB) into .cache/chdb/: the npm package
# @chdb/lib-linux-x64-gnu, pinned, unpacked to .cache/chdb/package/libchdb.so.
# Idempotent and quiet; prints the library path.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=26.5.3
dir=.cache/chdb
lib=$dir/package/libchdb.so
stamp=$dir/package/.version
if [ -f "$lib" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$VERSION" ]; then
  echo "$PWD/$lib"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-chdb: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
mkdir -p "$dir"
rm -rf "$dir/package"
( cd "$dir" && npm pack --silent "@chdb/lib-linux-x64-gnu@$VERSION" >/dev/null 2>&1 )
tar xzf "$dir/chdb-lib-linux-x64-gnu-$VERSION.tgz" -C "$dir"
rm -f "$dir/chdb-lib-linux-x64-gnu-$VERSION.tgz"
echo "$VERSION" > "$stamp"
echo "$PWD/$lib"
