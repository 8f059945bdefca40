#!/usr/bin/env bash
# Builds the ja4-platform RPMs from source inside el8, el9 and el10 containers (podman or
# docker), each with its own httpd-devel, OpenSSL and glibc. For people who have them; CI
# builds with rpm/build.sh instead.
# Usage: rpm/build-el.sh [8 9 10]    Output: target/rpm-el<N>/*.rpm
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=$(command -v podman || command -v docker || true)
[ -n "$ENGINE" ] || { echo "needs podman or docker" >&2; exit 1; }
VERSION=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
git ls-files -z | tar --null -T - --transform "s,^,ja4-platform-$VERSION/," -czf "target/ja4-platform-$VERSION.tar.gz"
for n in "${@:-8 9 10}"; do
  case $n in
    8) image=quay.io/rockylinux/rockylinux:8; extra="dnf -y module enable httpd:2.4 &&" ;;
    9) image=quay.io/rockylinux/rockylinux:9; extra="" ;;
    10) image=quay.io/almalinuxorg/almalinux:10; extra="" ;;
    *) echo "unknown EL version $n" >&2; exit 2 ;;
  esac
  out=target/rpm-el$n
  mkdir -p "$out"
  "$ENGINE" run --rm -v "$PWD:/src:Z" -w /src "$image" bash -euc "
    $extra dnf -y -q install dnf-plugins-core rpm-build gcc clang-devel httpd-devel apr-devel apr-util-devel \
        libpcap-devel openssl-devel selinux-policy-devel systemd-rpm-macros curl git make >/dev/null
    curl -sSf https://sh.rustup.rs | sh -s -- -y -q --profile minimal >/dev/null
    source \$HOME/.cargo/env
    mkdir -p /root/rpmbuild/SOURCES && cp target/ja4-platform-$VERSION.tar.gz /root/rpmbuild/SOURCES/
    rpmbuild -bb --with selinux --define 'ja4_version $VERSION' rpm/ja4-platform.spec
    cp /root/rpmbuild/RPMS/*/*.rpm $out/"
  ls "$out"
done
