//! The counters and gauges of ingest and the store writer, as `/metrics` shows them.
//!
//! Owns: [`Metrics`] and its registration under the exposition names (a counter's `_total`
//! is added by the exposition). Never: counts a record twice or forgets one: every record
//! received ends in `inserted`, `spooled`, `dead_letter_records` or a `dropped` reason.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label sets of the labelled counters: one label.
type Label = [(&'static str, &'static str); 1];

/// Records dropped, one counter per reason (`ja4_dropped_total{reason=…}`).
#[derive(Debug, Clone)]
pub struct Dropped {
    family: Family<Label, Counter>,
    /// The store failed and the spool was off.
    pub store_error: Counter,
    /// The spool reached its size limit.
    pub spool_full: Counter,
    /// Writing the spool failed.
    pub spool_error: Counter,
    /// Records stamped before the store's retention (the engine would drop them unseen).
    pub expired: Counter,
    /// Records stamped too far ahead of this host's clock.
    pub future: Counter,
    /// Records the store refused for their data with the dead letters full.
    pub dead_letter_full: Counter,
}

impl Default for Dropped {
    fn default() -> Self {
        let family = Family::<Label, Counter>::default();
        let c = |reason: &'static str| family.get_or_create(&[("reason", reason)]).clone();
        Dropped {
            store_error: c("store_error"),
            spool_full: c("spool_full"),
            spool_error: c("spool_error"),
            expired: c("expired"),
            future: c("future"),
            dead_letter_full: c("dead_letter_full"),
            family,
        }
    }
}

/// Connections closed by a limit (`ja4_ingest_rejected_total{reason=…}`).
#[derive(Debug, Clone)]
pub struct Rejected {
    family: Family<Label, Counter>,
    /// At accept: `max_peers` reached.
    pub peers: Counter,
    /// Their frame would pass `memory_budget_bytes`.
    pub memory: Counter,
    /// `idle_timeout_s` without a byte.
    pub idle: Counter,
}

impl Default for Rejected {
    fn default() -> Self {
        let family = Family::<Label, Counter>::default();
        let c = |reason: &'static str| family.get_or_create(&[("reason", reason)]).clone();
        Rejected {
            peers: c("peers"),
            memory: c("memory"),
            idle: c("idle"),
            family,
        }
    }
}

/// What ingest and the writer did.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Module connections accepted.
    pub connections: Counter,
    /// Frames received whole.
    pub frames: Counter,
    /// Records decoded from those frames.
    pub received: Counter,
    /// Frames that failed their checks (length, CRC, version, records), dropped whole.
    pub malformed_frames: Counter,
    /// Frames cut off: the peer closed, or took longer than `frame_timeout_s`, mid-frame.
    pub truncated_frames: Counter,
    /// Peers refused, per reason.
    pub rejected: Rejected,
    /// Failed accepts (descriptors exhausted, …).
    pub accept_errors: Counter,
    /// Bytes held in partly received frames, all peers together.
    pub buffered_bytes: Gauge,
    /// Connections open now.
    pub peers: Gauge,
    /// Records stored.
    pub inserted: Counter,
    /// Inserts made (one per batch of records).
    pub insert_batches: Counter,
    /// Inserts the store failed (retried, spooled or dropped per `dropped`).
    pub insert_errors: Counter,
    /// Seconds spent inserting.
    pub insert_seconds: Counter<f64, AtomicU64>,
    /// Records between the readers and the store (queued or being inserted).
    pub queued: Gauge,
    /// Records written to the spool while the store was failing.
    pub spooled: Counter,
    /// Spooled records inserted once the store was back.
    pub replayed: Counter,
    /// Records lost, per reason.
    pub dropped: Dropped,
    /// Records the store refused for their data, set aside in the dead letters.
    pub dead_lettered: Counter,
    /// Bytes in the spool now.
    pub spool_bytes: Gauge,
    /// Spool frames found damaged when read back (power loss mid-write), skipped.
    pub spool_corrupt_frames: Counter,
    /// Requests received per action mod_ja4's mitigation took (or, `mode="count"`, would
    /// have taken): `ja4_mitigation_requests_total{action=…,mode=…}`.
    pub actions: Family<[(&'static str, &'static str); 2], Counter>,
}

impl Metrics {
    /// Counts the mitigation actions of `records` (records without one are not counted).
    pub fn count_actions<S>(&self, records: &[ja4_core::batch::Record<S>]) {
        for r in records {
            let m = &r.mitigation;
            if m.is_some() {
                let mode = if m.counted { "count" } else { "enforce" };
                self.actions
                    .get_or_create(&[("action", m.action.as_str()), ("mode", mode)])
                    .inc();
            }
        }
    }
}

impl Metrics {
    /// Registers everything under its exposition name.
    pub fn register(&self, r: &mut Registry) {
        let counters: [(&str, &str, &Counter); 13] = [
            (
                "ja4_ingest_connections",
                "Module connections accepted.",
                &self.connections,
            ),
            ("ja4_ingest_frames", "Frames received.", &self.frames),
            ("ja4_ingest_received", "Records received.", &self.received),
            (
                "ja4_ingest_malformed_frames",
                "Frames rejected (bad magic, version, checksum, record).",
                &self.malformed_frames,
            ),
            (
                "ja4_store_inserted",
                "Records inserted into the store.",
                &self.inserted,
            ),
            (
                "ja4_store_insert_batches",
                "Insert statements that succeeded.",
                &self.insert_batches,
            ),
            (
                "ja4_store_insert_errors",
                "Insert statements that failed.",
                &self.insert_errors,
            ),
            (
                "ja4_spool_spooled",
                "Records written to the spool while the store was unavailable.",
                &self.spooled,
            ),
            (
                "ja4_spool_replayed",
                "Records replayed from the spool into the store.",
                &self.replayed,
            ),
            (
                "ja4_ingest_truncated_frames",
                "Frames cut off mid-way (peer closed, or slower than frame_timeout_s).",
                &self.truncated_frames,
            ),
            (
                "ja4_ingest_accept_errors",
                "Failed accepts on the ingest socket (e.g. no descriptors left).",
                &self.accept_errors,
            ),
            (
                "ja4_dead_letter_records",
                "Records the store refused for their data, set aside in the dead letters.",
                &self.dead_lettered,
            ),
            (
                "ja4_spool_corrupt_frames",
                "Spool frames that failed their checksum (skipped).",
                &self.spool_corrupt_frames,
            ),
        ];
        for (name, help, c) in counters {
            r.register(name, help, c.clone());
        }
        for (name, help, g) in [
            (
                "ja4_spool_bytes",
                "Bytes waiting in the spool.",
                &self.spool_bytes,
            ),
            (
                "ja4_ingest_buffered_bytes",
                "Bytes held in partly received frames.",
                &self.buffered_bytes,
            ),
            ("ja4_ingest_peers", "Ingest connections open.", &self.peers),
            (
                "ja4_ingest_queue_records",
                "Records waiting for the writer.",
                &self.queued,
            ),
        ] {
            r.register(name, help, g.clone());
        }
        r.register(
            "ja4_store_insert_seconds",
            "Time spent in successful inserts.",
            self.insert_seconds.clone(),
        );
        r.register(
            "ja4_dropped",
            "Records dropped, by reason.",
            self.dropped.family.clone(),
        );
        r.register(
            "ja4_ingest_rejected",
            "Connections closed by a limit, by limit.",
            self.rejected.family.clone(),
        );
        r.register(
            "ja4_mitigation_requests",
            "Requests by the action mod_ja4's mitigation took (mode=count: would have taken).",
            self.actions.clone(),
        );
    }
}

/// Raises a counter that mirrors a running total kept elsewhere (the spool's) to `total`.
pub(crate) fn raise_to(c: &Counter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        let mut r = Registry::default();
        m.register(&mut r);
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &r).unwrap();
        s
    }

    #[test]
    fn exposition_keeps_the_metric_names() {
        let m = Metrics::default();
        m.received.inc_by(7);
        m.dropped.expired.inc_by(2);
        m.rejected.idle.inc();
        m.queued.set(5);
        m.insert_seconds.inc_by(0.25);
        use ja4_core::batch::{Mitigation, MitigationAction, Record};
        let rec = |action, counted| Record::<&[u8]> {
            mitigation: Mitigation {
                action,
                counted,
                ..Mitigation::default()
            },
            ..Default::default()
        };
        m.count_actions(&[
            rec(MitigationAction::Block, false),
            rec(MitigationAction::Block, false),
            rec(MitigationAction::Challenge, true),
            rec(MitigationAction::None, false),
        ]);
        let s = text(&m);
        for line in [
            "ja4_ingest_received_total 7",
            "ja4_dropped_total{reason=\"expired\"} 2",
            "ja4_dropped_total{reason=\"future\"} 0",
            "ja4_ingest_rejected_total{reason=\"idle\"} 1",
            "ja4_ingest_queue_records 5",
            "ja4_store_insert_seconds_total 0.25",
            "ja4_spool_bytes 0",
            "ja4_mitigation_requests_total{action=\"block\",mode=\"enforce\"} 2",
            "ja4_mitigation_requests_total{action=\"challenge\",mode=\"count\"} 1",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} missing:\n{s}");
        }
        assert!(
            s.contains("# HELP ja4_dropped Records dropped, by reason."),
            "{s}"
        );
    }

    #[test]
    fn mirrored_totals_only_rise() {
        let c = Counter::default();
        raise_to(&c, 5);
        raise_to(&c, 3);
        assert_eq!(c.get(), 5);
        raise_to(&c, 9);
        assert_eq!(c.get(), 9);
    }
}
