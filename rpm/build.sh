#!/usr/bin/env bash
# Builds the ja4-platform RPM on this machine (Debian's rpmbuild), with binaries linked against
# glibc 2.28 symbols (cargo-zigbuild, zig from PyPI) so they load on el8, el9 and el10.
# Checks that no symbol needs a newer GLIBC. Output: target/rpm/RPMS/x86_64/*.rpm
# Usage: rpm/build.sh [--with-engine] [--dist .el8]
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'rpm: %s\n' "$*"; }
DIST=.el8
ENGINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --with-engine) ENGINE="--with engine" ;;
    --dist) DIST=$2; shift ;;
    *) echo "usage: $0 [--with-engine] [--dist .elN]" >&2; exit 2 ;;
  esac
  shift
done
TARGET=x86_64-unknown-linux-gnu
GLIBC=2.28

# Tools come from scripts/setup.sh: rpmbuild, patchelf (apt), zig (PyPI, into .cache),
# cargo-zigbuild (cargo).
need() { command -v "$1" >/dev/null || { log "$1 missing: scripts/setup.sh installs it"; exit 1; }; }
need rpmbuild
need patchelf
export PATH="$PWD/.cache/zig-venv/bin:$HOME/.cargo/bin:$PATH"
need cargo-zigbuild
python3 -c 'import ziglang' 2>/dev/null || { log "zig missing: scripts/setup.sh installs it"; exit 1; }

# libclang cannot parse the httpd/APR headers with zig's libc headers: generate the bindings
# natively (same headers, same declarations) and hand them to the cross build.
cargo build -q --release -p apr-sys
BINDINGS=$(ls -t target/release/build/apr-sys-*/out/bindings.rs | head -1)
export APR_SYS_BINDINGS=$PWD/$BINDINGS
# EL's libpcap is libpcap.so.1; Debian's is libpcap.so.0.8. Link against a copy of the local
# library renamed to EL's soname, so the binaries ask for libpcap.so.1.
PCAP_STUB=$PWD/target/rpm-pcap
mkdir -p "$PCAP_STUB"
PCAP_LIB=$(ldconfig -p | awk '/libpcap\.so\./ && /x86-64/ {print $NF; exit}')
cp -L "$PCAP_LIB" "$PCAP_STUB/libpcap.so"
patchelf --set-soname libpcap.so.1 "$PCAP_STUB/libpcap.so"
ln -sf libpcap.so "$PCAP_STUB/libpcap.so.1"   # for running the binaries here (tests)
export LIBPCAP_LIBDIR=$PCAP_STUB
log "building mod_ja4 and ja4-sidecar for $TARGET with glibc $GLIBC symbols"
cargo zigbuild -q --release --target "$TARGET.$GLIBC" -p mod_ja4 -p ja4-sidecar
BIN=target/$TARGET/release
for f in "$BIN/libmod_ja4.so" "$BIN/ja4-sidecar"; do
  newest=$(objdump -T "$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC" | sort -V | tail -1)" != "$GLIBC" ]; then
    log "$f needs GLIBC_$newest (> $GLIBC): it would not load on el8"; exit 1
  fi
  if readelf -d "$f" | grep -q 'NEEDED.*libpcap\.so\.0'; then
    log "$f links Debian's libpcap.so.0.8, not EL's libpcap.so.1"; exit 1
  fi
  log "$(basename "$f"): newest glibc symbol GLIBC_$newest (<= $GLIBC)"
done
PRE=$(mktemp -d)
cp "$BIN/libmod_ja4.so" "$BIN/ja4-sidecar" "$PRE/"
strip --strip-debug "$PRE/libmod_ja4.so" "$PRE/ja4-sidecar"
if [ -n "$ENGINE" ]; then
  cp .cache/chdb/package/libchdb.so "$PRE/"
fi

VERSION=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "ja4-sidecar"))')
TOP=$PWD/target/rpm
rm -rf "$TOP" && mkdir -p "$TOP"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
# The source tarball: the files the spec installs (tracked files of the work tree).
git ls-files -z | tar --null -T - --transform "s,^,ja4-platform-$VERSION/," -czf "$TOP/SOURCES/ja4-platform-$VERSION.tar.gz"
cp rpm/ja4-platform.spec "$TOP/SPECS/"
# shellcheck disable=SC2086
rpmbuild -bb --quiet \
  --load rpm/macros.compat \
  --define "_topdir $TOP" \
  --define "dist $DIST" \
  --define "ja4_version $VERSION" \
  --define "prebuilt_dir $PRE" \
  --define "_build_id_links none" \
  --define "__strip /bin/true" \
  --nodeps --with prebuilt $ENGINE \
  "$TOP/SPECS/ja4-platform.spec"
rm -rf "$PRE"
ls "$TOP"/RPMS/*/*.rpm
