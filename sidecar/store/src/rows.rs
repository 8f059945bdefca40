//! Records as ClickHouse RowBinary rows of `{db}.requests_raw`, and the batch insert.
//!
//! Owns: the column order ([`COLUMNS`]) and the binary encoding of every column type we use
//! (DateTime64(6) as Int64 µs, IPv6 as 16 bytes in network order, LowCardinality(String) as
//! String, arrays with a varint length), and inserting a batch with [`Store::insert_rowbinary`]
//! (the same bytes for both engines), keeping out records the store would drop or refuse:
//! stamped before its retention ([`RETENTION_DAYS`], the TTL of `http_logs`) or ahead of this
//! host's clock by more than [`MAX_AHEAD_US`]. Those are counted in [`Inserted`], never sent.
//! Never: lets a column list and an encoder disagree: both are this file; never leaves a record
//! to be dropped silently by the engine's TTL.

use std::net::{IpAddr, Ipv6Addr};

use ja4_core::batch::{put_bytes, put_varint, Record, RecordKind};

use super::{Store, StoreError};

/// Columns of `requests_raw` in the order [`encode`] writes them.
pub const COLUMNS: &[&str] = &[
    "ts",
    "kind",
    "conn_id",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "vhost",
    "method",
    "path",
    "query",
    "protocol",
    "status",
    "bytes_in",
    "bytes_out",
    "duration_us",
    "keepalives",
    "tls_version",
    "tls_cipher",
    "tls_sni",
    "tls_alpn",
    "ja4",
    "ja4_r",
    "ja4_o",
    "ja4_ro",
    "ja3",
    "ja3_r",
    "ja4h",
    "ja4h_r",
    "ja4h_o",
    "ja4h_ro",
    "ja4t",
    "ja4ts",
    "ja4l_c",
    "ja4l_s",
    "ja4s",
    "syn_ttl",
    "syn_window",
    "syn_mss",
    "syn_window_scale",
    "syn_options",
    "syn_ip_id",
    "syn_dont_fragment",
    "sources",
    "header_names",
    "user_agent",
    "accept",
    "accept_language",
    "accept_encoding",
    "sec_fetch_site",
    "sec_fetch_mode",
    "sec_fetch_dest",
    "sec_fetch_user",
    "sec_ch_ua",
    "sec_ch_ua_mobile",
    "sec_ch_ua_platform",
    "has_cookie",
    "has_referer",
    "action",
    "action_reason",
    "decision_verdict",
    "decision_bot_score",
    "h2_fp",
    "h2_fp_hash",
    "consistency_flags",
];

fn ipv6(o: &mut Vec<u8>, ip: Option<IpAddr>) {
    let v6 = match ip {
        Some(IpAddr::V4(v4)) => v4.to_ipv6_mapped(),
        Some(IpAddr::V6(v6)) => v6,
        None => Ipv6Addr::UNSPECIFIED,
    };
    o.extend_from_slice(&v6.octets());
}

/// Appends one RowBinary row.
pub fn encode<S: AsRef<[u8]>>(r: &Record<S>, o: &mut Vec<u8>) {
    o.extend_from_slice(&r.ts_us.to_le_bytes());
    put_bytes(
        o,
        if r.kind == RecordKind::Orphan {
            b"orphan"
        } else {
            b"request"
        },
    );
    o.extend_from_slice(&r.conn_id.to_le_bytes());
    ipv6(o, r.client_ip);
    o.extend_from_slice(&r.client_port.to_le_bytes());
    ipv6(o, r.server_ip);
    o.extend_from_slice(&r.server_port.to_le_bytes());
    for s in [&r.vhost, &r.method, &r.path, &r.query, &r.protocol] {
        put_bytes(o, s.as_ref());
    }
    o.extend_from_slice(&r.status.to_le_bytes());
    for v in [r.bytes_in, r.bytes_out, r.duration_us] {
        o.extend_from_slice(&v.to_le_bytes());
    }
    o.extend_from_slice(&r.keepalives.to_le_bytes());
    for s in [
        &r.tls_version,
        &r.tls_cipher,
        &r.tls_sni,
        &r.tls_alpn,
        &r.ja4,
        &r.ja4_r,
        &r.ja4_o,
        &r.ja4_ro,
        &r.ja3,
        &r.ja3_r,
        &r.ja4h,
        &r.ja4h_r,
        &r.ja4h_o,
        &r.ja4h_ro,
        &r.ja4t,
        &r.ja4ts,
        &r.ja4l_c,
        &r.ja4l_s,
        &r.ja4s,
    ] {
        put_bytes(o, s.as_ref());
    }
    let syn = r.syn.clone().unwrap_or_default();
    o.push(syn.ttl);
    o.extend_from_slice(&syn.window.to_le_bytes());
    o.extend_from_slice(&syn.mss.unwrap_or(0).to_le_bytes());
    o.push(syn.window_scale.unwrap_or(0));
    put_bytes(o, &syn.options);
    o.extend_from_slice(&syn.ip_id.unwrap_or(0).to_le_bytes());
    o.push(u8::from(syn.dont_fragment));
    o.push(r.sources);
    put_varint(o, r.header_name_list().count() as u64);
    for h in r.header_name_list() {
        put_bytes(o, h);
    }
    for s in [
        &r.user_agent,
        &r.accept,
        &r.accept_language,
        &r.accept_encoding,
        &r.sec_fetch_site,
        &r.sec_fetch_mode,
        &r.sec_fetch_dest,
        &r.sec_fetch_user,
        &r.sec_ch_ua,
        &r.sec_ch_ua_mobile,
        &r.sec_ch_ua_platform,
    ] {
        put_bytes(o, s.as_ref());
    }
    o.push(u8::from(r.has_cookie));
    o.push(u8::from(r.has_referer));
    let m = &r.mitigation;
    put_bytes(o, m.action_text().as_bytes());
    put_bytes(o, m.reason.as_str().as_bytes());
    put_bytes(o, m.verdict.map_or("", |v| v.as_str()).as_bytes());
    o.push(m.bot_score);
    put_bytes(o, r.h2.as_ref());
    put_bytes(o, r.h2_hash.as_ref());
    o.push(r.consistency);
}

/// Days `http_logs` keeps a row: its TTL (`sql/0003_http_logs.sql`). The engine drops an
/// older row at insert without a word, so [`insert`] keeps such records out and counts them.
pub const RETENTION_DAYS: i64 = 7;

/// How far ahead of this host's clock a record may be stamped (the module and the sidecar
/// share a host; this allows for a clock step between stamping and storing).
pub const MAX_AHEAD_US: i64 = 3_600_000_000;

/// Where a record's timestamp falls relative to what the store keeps, at `now_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Inside the retention: stored.
    Storable,
    /// Older than the retention: the engine would drop it at insert.
    Expired,
    /// Further ahead of the clock than [`MAX_AHEAD_US`]: a broken or hostile clock; stored, it
    /// would stay past the retention and spread one insert over many partitions.
    Future,
}

/// The [`Age`] of a record stamped `ts_us` at `now_us`.
pub fn age(ts_us: i64, now_us: i64) -> Age {
    if ts_us > now_us.saturating_add(MAX_AHEAD_US) {
        Age::Future
    } else if ts_us < now_us.saturating_sub(RETENTION_DAYS * 86_400_000_000) {
        Age::Expired
    } else {
        Age::Storable
    }
}

/// This host's clock in µs since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// What [`insert`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Records sent to the store.
    pub stored: usize,
    /// Records older than the retention, kept out.
    pub expired: usize,
    /// Records stamped too far ahead of the clock, kept out.
    pub future: usize,
}

/// Inserts the storable `records` into `{db}.requests_raw`, judged against this host's clock.
pub fn insert<S: AsRef<[u8]>>(
    store: &Store,
    db: &str,
    records: &[Record<S>],
) -> Result<Inserted, StoreError> {
    insert_at(store, db, records, now_us())
}

/// [`insert`] with the clock as a parameter.
pub fn insert_at<S: AsRef<[u8]>>(
    store: &Store,
    db: &str,
    records: &[Record<S>],
    now_us: i64,
) -> Result<Inserted, StoreError> {
    let mut done = Inserted::default();
    let mut rows = Vec::with_capacity(records.len() * 1024);
    for r in records {
        match age(r.ts_us, now_us) {
            Age::Storable => {
                encode(r, &mut rows);
                done.stored += 1;
            }
            Age::Expired => done.expired += 1,
            Age::Future => done.future += 1,
        }
    }
    if done.stored > 0 {
        store.insert_rowbinary(db, "requests_raw", COLUMNS, rows)?;
    }
    Ok(done)
}

/// Most inserts one batch may take to isolate the records the store refuses; past it, a
/// refused part is set aside whole.
pub const MAX_ISOLATING_INSERTS: usize = 64;

/// What [`insert_isolating`] did with a batch. Ranges index the batch, in order.
#[derive(Debug, Default)]
pub struct Isolated {
    /// What the inserts that went through stored and kept out.
    pub inserted: Inserted,
    /// Parts the store refused for their data.
    pub refused: Vec<std::ops::Range<usize>>,
    /// The store's words on the first refusal.
    pub refusal: Option<String>,
    /// When the store became unavailable on the way: why, and the parts not stored.
    pub unstored: Option<(StoreError, Vec<std::ops::Range<usize>>)>,
}

/// The records of `parts` (ranges of an [`Isolated`]), in order.
pub fn pick<R: Clone>(records: &[R], parts: &[std::ops::Range<usize>]) -> Vec<R> {
    parts
        .iter()
        .flat_map(|r| records[r.clone()].iter().cloned())
        .collect()
}

impl std::ops::AddAssign for Inserted {
    fn add_assign(&mut self, o: Inserted) {
        self.stored += o.stored;
        self.expired += o.expired;
        self.future += o.future;
    }
}

/// Inserts `records` like [`insert`]; when the store refuses the batch for its data
/// ([`StoreError::is_data_refusal`]), halves the refused part until the refused records are
/// isolated, so that the rest is stored. Stops at the first error of any other kind.
pub fn insert_isolating<S: AsRef<[u8]>>(
    store: &Store,
    db: &str,
    records: &[Record<S>],
) -> Isolated {
    let mut out = Isolated::default();
    let mut todo: Vec<std::ops::Range<usize>> = Vec::with_capacity(16);
    todo.push(0..records.len());
    let mut inserts = 0;
    while let Some(part) = todo.pop() {
        if part.is_empty() {
            continue;
        }
        inserts += 1;
        match insert(store, db, &records[part.clone()]) {
            Ok(done) => out.inserted += done,
            Err(e) if e.is_data_refusal() => {
                out.refusal.get_or_insert_with(|| e.to_string());
                if part.len() == 1 || inserts >= MAX_ISOLATING_INSERTS {
                    out.refused.push(part);
                } else {
                    let mid = part.start + part.len() / 2;
                    todo.push(mid..part.end);
                    todo.push(part.start..mid);
                }
            }
            Err(e) => {
                let mut rest = vec![part];
                rest.extend(todo.drain(..).rev());
                out.unstored = Some((e, rest));
                break;
            }
        }
    }
    out
}

/// Checks that `{db}.requests_raw` has every column [`encode`] writes, so a schema that
/// drifted fails at start with the missing columns named instead of at the first insert.
pub fn check_columns(store: &Store, db: &str) -> Result<(), StoreError> {
    let have = store.columns(db, "requests_raw")?;
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !have.iter().any(|(n, _)| n == c))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Schema(format!(
            "{db}.requests_raw lacks the columns {} (run `ja4-sidecar migrate`)",
            missing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn age_is_judged_against_the_given_clock() {
        let now = now_us();
        assert_eq!(age(now, now), Age::Storable);
        assert_eq!(age(now - RETENTION_DAYS * DAY + 1, now), Age::Storable);
        assert_eq!(age(now - RETENTION_DAYS * DAY - 1, now), Age::Expired);
        assert_eq!(age(now + MAX_AHEAD_US, now), Age::Storable);
        assert_eq!(age(now + MAX_AHEAD_US + 1, now), Age::Future);
        assert_eq!(age(i64::MIN, now), Age::Expired);
        assert_eq!(age(i64::MAX, now), Age::Future);
        assert_eq!(age(0, i64::MAX), Age::Expired);
    }

    #[test]
    fn retention_is_the_ttl_of_http_logs() {
        let sql = super::super::migrate::MIGRATIONS
            .iter()
            .find(|m| m.sql.contains("CREATE TABLE IF NOT EXISTS {db}.http_logs"))
            .expect("the migration creating http_logs")
            .sql;
        assert!(
            sql.contains(&format!(
                "TTL toDateTime(ts) + INTERVAL {RETENTION_DAYS} DAY"
            )),
            "http_logs' TTL differs from RETENTION_DAYS"
        );
    }
}
