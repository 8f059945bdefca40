//! The writer: records batched by size and time into the store, the spool while the store
//! fails, the dead letters for what it refuses.
//!
//! Owns: [`writer`] (the task), one blocking store step at a time, the order of the spool
//! (replayed oldest first, new batches behind a non-empty spool). Never: loses a record
//! without a counter; never retries rows the store refused for their data (they go to the
//! dead letters, so nothing waits behind them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ja4_core::batch::OwnedRecord;
use ja4_store::spool::{DeadLetter, Spool};
use ja4_store::{rows, Store, StoreConfig};
use tokio::sync::mpsc;

use crate::metrics::raise_to;
use crate::Metrics;

/// Batches records by size and time and stores them: into the store, or into the spool while
/// the store fails (and always behind a non-empty spool, to keep the order).
pub(crate) async fn writer(
    cfg: StoreConfig,
    store: Arc<Store>,
    mut rx: mpsc::Receiver<Vec<OwnedRecord>>,
    m: Arc<Metrics>,
) {
    let spool = match Spool::open(&cfg.spool_dir, cfg.spool_max_bytes) {
        Ok(s) => Arc::new(std::sync::Mutex::new(s)),
        Err(e) => {
            tracing::error!(error = %e, dir = %cfg.spool_dir.display(), "cannot open the spool; store failures will drop records (counted)");
            Arc::new(std::sync::Mutex::new(
                Spool::open(
                    &std::env::temp_dir().join("ja4-spool-fallback"),
                    cfg.spool_max_bytes,
                )
                .expect("temp spool"),
            ))
        }
    };
    let mut pending: Vec<OwnedRecord> = Vec::new();
    let mut first: Option<Instant> = None;
    let tick = Duration::from_millis(cfg.flush_ms);
    loop {
        let spool_waiting = spool.lock().map(|s| !s.is_empty()).unwrap_or(false);
        let wait = match first {
            Some(f) => Some((f + tick).saturating_duration_since(Instant::now())),
            None if spool_waiting => Some(tick),
            None => None,
        };
        let msg = match wait {
            Some(w) => tokio::time::timeout(w, rx.recv())
                .await
                .unwrap_or(Some(Vec::new())),
            None => rx.recv().await,
        };
        let closed = msg.is_none();
        if let Some(records) = msg {
            if !records.is_empty() {
                first.get_or_insert_with(Instant::now);
                pending.extend(records);
            }
        }
        let due = first.is_some_and(|f| f.elapsed() >= tick);
        let batch = if !pending.is_empty() && (closed || due || pending.len() >= cfg.batch_records)
        {
            first = None;
            std::mem::take(&mut pending)
        } else {
            Vec::new()
        };
        if !batch.is_empty() || spool_waiting {
            let (store, spool, m2, cfg2) = (
                Arc::clone(&store),
                Arc::clone(&spool),
                Arc::clone(&m),
                cfg.clone(),
            );
            let _ =
                tokio::task::spawn_blocking(move || store_step(&cfg2, &store, &spool, batch, &m2))
                    .await;
        }
        if closed {
            return;
        }
    }
}

/// Counts what an isolating insert did: stored, kept out for their timestamp (logged: a clock
/// problem somewhere or a spool that waited past the retention), refused for their data (set
/// aside in the dead letters, or dropped and counted when those are full), failed.
fn account(
    m: &Metrics,
    dead: &DeadLetter,
    records: &[OwnedRecord],
    done: &rows::Isolated,
    started: Instant,
) {
    let ins = done.inserted;
    if ins.stored > 0 {
        m.inserted.inc_by(ins.stored as u64);
        m.insert_batches.inc();
        m.insert_seconds.inc_by(started.elapsed().as_secs_f64());
    }
    m.dropped.expired.inc_by(ins.expired as u64);
    m.dropped.future.inc_by(ins.future as u64);
    if ins.expired + ins.future > 0 {
        tracing::warn!(
            expired = ins.expired,
            future = ins.future,
            retention_days = rows::RETENTION_DAYS,
            "records stamped outside the store's retention dropped"
        );
    }
    if done.unstored.is_some() {
        m.insert_errors.inc();
    }
    if done.refused.is_empty() {
        return;
    }
    m.insert_errors.inc();
    let refused = rows::pick(records, &done.refused);
    let k = refused.len() as u64;
    let why = done.refusal.as_deref().unwrap_or("refused");
    match dead.put(&refused, why) {
        Ok(true) => {
            m.dead_lettered.inc_by(k);
            tracing::error!(records = k, error = why, "the store refused records for their data: set aside in the dead letters (ja4-sidecar dead-letter list)");
        }
        Ok(false) => {
            m.dropped.dead_letter_full.inc_by(k);
            tracing::error!(records = k, error = why, "the store refused records for their data and the dead letters are full: records dropped");
        }
        Err(e) => {
            m.dropped.dead_letter_full.inc_by(k);
            tracing::error!(records = k, error = %e, "cannot write a dead letter: records dropped");
        }
    }
}

/// One writer step (blocking): replay the spool while the store takes it, then store `batch`
/// directly if the spool is empty, else behind it. Records the store refuses for their data
/// go to the dead letters, so neither the spool nor later batches wait behind them.
fn store_step(
    cfg: &StoreConfig,
    store: &Store,
    spool: &std::sync::Mutex<Spool>,
    batch: Vec<OwnedRecord>,
    m: &Metrics,
) {
    let Ok(mut spool) = spool.lock() else { return };
    let dead = DeadLetter::new(&cfg.dead_letter_dir(), cfg.dead_letter_max_bytes);
    let n = batch.len() as u64;
    // Replay, oldest first, until the store fails again.
    while let Some((path, records)) = spool.oldest() {
        let started = Instant::now();
        let done = rows::insert_isolating(store, &cfg.database, &records);
        account(m, &dead, &records, &done, started);
        m.replayed.inc_by(done.inserted.stored as u64);
        match &done.unstored {
            None => {
                if let Err(e) = spool.remove(&path) {
                    tracing::error!(error = %e, segment = %path.display(), "cannot remove a replayed spool segment");
                    break;
                }
                tracing::info!(records = records.len(), "replayed spooled records");
            }
            Some((e, rest)) => {
                tracing::warn!(error = %e, "store still unavailable; spool kept");
                let left = rows::pick(&records, rest);
                if left.len() < records.len() {
                    // Part of the segment is stored now: keep only the rest, not duplicates.
                    if let Err(e) = spool.rewrite(&path, &left) {
                        tracing::error!(error = %e, segment = %path.display(), "cannot rewrite a partly replayed spool segment");
                    }
                }
                break;
            }
        }
    }
    if !batch.is_empty() {
        let left: Vec<OwnedRecord> = if spool.is_empty() {
            let started = Instant::now();
            let done = rows::insert_isolating(store, &cfg.database, &batch);
            account(m, &dead, &batch, &done, started);
            match done.unstored {
                None => Vec::new(),
                Some((e, rest)) => {
                    tracing::warn!(error = %e, records = n, "insert failed; spooling");
                    rows::pick(&batch, &rest)
                }
            }
        } else {
            batch
        };
        if !left.is_empty() {
            let k = left.len() as u64;
            match spool.append(&left) {
                Ok(()) => {
                    m.spooled.inc_by(k);
                }
                Err(e) => {
                    m.dropped.spool_error.inc_by(k);
                    tracing::error!(error = %e, records = k, "cannot write to the spool: records dropped");
                }
            }
        }
        m.queued.dec_by(n as i64);
    }
    raise_to(&m.dropped.spool_full, spool.stats.dropped_full_records);
    raise_to(&m.spool_corrupt_frames, spool.stats.corrupt_frames);
    m.spool_bytes.set(spool.bytes() as i64);
}
