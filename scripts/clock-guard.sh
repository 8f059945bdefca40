#!/usr/bin/env bash
# The clock guard: the tests that build and store records run again with the process clock moved DAYS
# ahead (default 45) by libfaketime. The sidecar judges a record's age by the process clock
# (store::rows::insert keeps out and counts what the store's 7-day TTL would drop), so a
# fixture stamped with a literal date is "45 days old" here and its test fails on the day it
# is written, not a week later. Each binary checks that the moved clock is in effect
# (clock_guard_is_in_effect). The embedded engine keeps the kernel's clock (chDB reads the
# vDSO itself; chdb::engine_clock_is_the_kernel_clock), so tests whose SQL windows end at the
# engine's now() (schema, scoring) cannot run here: their fixtures come from now() or
# SystemTime::now(), checked by review and by rows::insert's count in the normal run.
# Only tests that build their records in-process run here, not the ones with a sidecar
# process: libfaketime also shifts the deadlines of timed waits, which chDB computes from the
# kernel's clock, so an engine under it spins (an idle sidecar took two cores).
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-45}
lib=""
for l in /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 \
         /usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1 \
         /usr/lib64/faketime/libfaketimeMT.so.1; do
  [ -f "$l" ] && { lib=$l; break; }
done
[ -n "$lib" ] || { echo "clock-guard: libfaketime not found (scripts/setup.sh installs it)" >&2; exit 1; }
triple=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')
# Monotonic clocks stay real (timeouts, tokio); the wall clock moves. One test at a time:
# libfaketime's lock makes parallel engine processes crawl on two cores.
export "CARGO_TARGET_${triple}_RUNNER=env LD_PRELOAD=$lib FAKETIME=+${days}d FAKETIME_DONT_FAKE_MONOTONIC=1 JA4_CLOCK_AHEAD_DAYS=$days"
exec cargo nextest run -j1 --no-fail-fast --failure-output final --status-level fail \
  -p ja4-store -p ja4-detect -p ja4-ingest -p ja4-sidecar --lib --test chdb --test server_store --test refdata
