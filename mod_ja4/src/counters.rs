//! Counters shared by the parent and all children: the leaf every other module counts into.
//!
//! Owns: a block of atomic counters in anonymous shared memory mapped by the parent in
//! post_config (before children fork), falling back to per-process counters.
//! Never: takes a lock (every update is one relaxed atomic add), or depends on another module
//! of this crate but the FFI layer.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ffi::os::SharedMapping;
use crate::ffi::Pool;

macro_rules! counters {
    ($($name:ident: $help:literal,)*) => {
        /// Every counter, in shared memory.
        #[repr(C)]
        #[derive(Default)]
        pub(crate) struct Counters { $(pub(crate) $name: AtomicU64,)* }

        impl Counters {
            /// Every counter at zero.
            const fn zero() -> Counters {
                Counters { $($name: AtomicU64::new(0),)* }
            }

            fn stored(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), $help, self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    connections: "connections seen by pre_connection",
    syns_saved: "connections whose SYN the kernel saved (JA4T in-connection)",
    hellos: "TLS ClientHellos parsed by the raw input filter",
    hello_errors: "connections whose first bytes were a malformed or oversized hello",
    consistency_flagged: "requests whose stacks contradict each other or the user agent (JA4_FLAGS)",
    h2_fingerprinted: "HTTP/2 connections whose first request's frames gave a fingerprint (JA4_H2)",
    h2_hostile: "HTTP/2 connections whose first frames were hostile or malformed (no fingerprint; mod_http2 decides)",
    requests: "requests seen by post_read_request",
    fingerprinted: "requests that carried a JA4",
    orphans: "connections that ended without a request",
    queued: "records queued for export",
    exported: "records delivered to the sidecar socket",
    export_batches: "batches delivered to the sidecar socket",
    json_records: "records written to JA4ExportFile",
    dropped_queue_full: "records dropped because the per-child queue was full",
    dropped_export: "records dropped because the sidecar stayed unreachable",
    export_errors: "socket connect/write errors",
    json_errors: "JA4ExportFile write errors",
    dequeued: "records the child exporters took from their queues",
    capture_threads: "capture threads running (the parent's, 0 or 1)",
    capture_packets: "packets the capture thread read",
    capture_syns: "SYNs seen by the capture",
    capture_hellos: "ClientHellos seen by the capture",
    capture_decode_errors: "captured packets that could not be decoded",
    capture_errors: "capture read or start errors",
    capture_orphans: "connections httpd never accepted (SYN scans, half-open handshakes)",
    capture_lookups: "requests that found their connection in the shared table",
    capture_agree: "requests whose JA4 and JA4T from the capture equal the in-connection ones",
    capture_mismatch: "requests whose capture and in-connection fingerprints differ",
    shm_replaced: "shared-table entries replaced while still live (table too small)",
    mitigation_blocked: "requests refused: 429 by a JA4RateLimit or 403 by a decision (JA4Mitigation Enforce)",
    mitigation_counted: "requests count mode would have challenged or blocked (not acted on)",
    mitigation_exempt: "requests from JA4Exempt networks (never limited, challenged or blocked)",
    mitigation_evicted: "rate-limit buckets evicted to make room (table too small)",
    mitigation_no_table: "requests not rate-limited because the bucket table is missing",
    ua_mismatches: "requests whose browser user agent contradicts their TLS stack (JA4_UA_MISMATCH)",
    decision_loads: "decisions snapshots loaded into the shared table (one process per change)",
    decision_dropped: "decisions left out of the shared table: it was full (raise JA4DecisionEntries)",
    decision_errors: "decisions snapshots refused (malformed)",
    decision_stale: "requests not decided because the snapshot is older than JA4DecisionMaxAge",
    decision_hits: "requests the sidecar's decisions named",
    challenge_issued: "challenge pages sent (JA4Mitigation Enforce)",
    challenge_passed: "challenges solved: pass cookies set",
    challenge_failed: "challenge answers refused (wrong, forged or expired)",
    challenge_pass_ok: "requests a challenge pass let through",
    challenge_pass_refused: "requests with a pass cookie that did not verify (forged, expired, another client's)",
    tarpit_held: "tarpitted requests held JA4TarpitDelay before their refusal",
    tarpit_full: "tarpitted requests refused at once: the child already held its most",
}

static SHARED: SharedMapping<Counters> = SharedMapping::new();
static LOCAL: Counters = Counters::zero();

impl Counters {
    /// Every counter, with the queue depth derived after `dequeued` (records queued and
    /// neither taken by an exporter nor dropped: one counter less to update per record).
    pub(crate) fn each(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut all = self.stored();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let depth = get(&self.queued)
            .saturating_sub(get(&self.dequeued))
            .saturating_sub(get(&self.dropped_queue_full));
        let at = all
            .iter()
            .position(|c| c.0 == "dequeued")
            .map_or(all.len(), |i| i + 1);
        all.insert(
            at,
            ("queue_depth", "records waiting in child queues", depth),
        );
        all
    }
}

/// The counters in effect: the shared block once mapped, else this process's.
#[inline(always)]
pub(crate) fn get() -> &'static Counters {
    SHARED.first().unwrap_or(&LOCAL)
}

/// Adds `n` to one counter.
#[inline(always)]
pub(crate) fn add(field: impl Fn(&Counters) -> &AtomicU64, n: u64) {
    field(get()).fetch_add(n, Ordering::Relaxed);
}

/// Maps the shared counters (parent, post_config). Unmapped in the parent when `pconf` is
/// cleared; children keep their inherited mapping until they exit.
pub(crate) fn init(pconf: Pool<'_>) -> std::io::Result<()> {
    SHARED.map(pconf, 1)
}
