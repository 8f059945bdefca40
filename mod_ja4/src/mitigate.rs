//! In-module mitigation at post_read_request: the sidecar's decisions (`JA4DecisionFile`, a
//! snapshot each child re-reads within a second of a change), `JA4Action`, the `JA4RateLimit`
//! token buckets every child shares, `JA4Exempt`, and what a request sees — `JA4_VERDICT`,
//! `JA4_BOT_SCORE`, `JA4_THREAT`, `JA4_REASON`, `JA4_ACTION` (`allow`, `block`, or in count mode
//! `count:block`) — and, when enforcing, a 403 (decision) or 429 with `Retry-After` (limit).
//!
//! Owns: the bucket table in anonymous shared memory (mapped by the parent in post_config,
//! inherited by children), this child's copy of the decisions snapshot, and the decision per
//! request.
//! Never: allocates or blocks on the request path (a bounded probe of atomic words, a read
//! lock on the snapshot; the file is read by at most one thread per child per second), or
//! fails closed: without a table, or with a snapshot older than `JA4DecisionMaxAge`, requests
//! pass (counted).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use ja4_core::decisions::{self, Snapshot};

use ja4_core::directives::ModuleConfig;
use ja4_core::mitigation::{exempt, Buckets, Key, Mode};

use crate::counters;
use crate::ffi::os::SharedMapping;
use crate::ffi::{Pool, Request};

static BUCKETS: SharedMapping<AtomicU64> = SharedMapping::new();

/// Buckets in the table (two words each: 1 MiB).
pub(crate) const SLOTS: usize = 65_536;

/// Maps the bucket table (parent, post_config) when rate limits are configured.
pub(crate) fn init(pconf: Pool<'_>, cfg: &ModuleConfig) -> std::io::Result<()> {
    if cfg.mitigation == Mode::Off || cfg.rate_limits.is_empty() {
        return Ok(());
    }
    BUCKETS.map(pconf, 2 * SLOTS)
}

/// What the module decided for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing to do (mitigation off).
    Off,
    /// Within every limit (or exempt).
    Allow,
    /// Over limit number `usize` (its `By` names the reason).
    Limited(usize),
    /// Blocked by a decision (`JA4Action` or the entry's own action).
    Blocked,
}

/// This child's copy of the decisions snapshot: its bytes and the file's (mtime, length).
struct Loaded {
    bytes: Vec<u8>,
    stamp: (std::time::SystemTime, u64),
}

static SNAPSHOT: RwLock<Option<Loaded>> = RwLock::new(None);
/// When (ms) this child next looks at the file.
static NEXT_CHECK_MS: AtomicU64 = AtomicU64::new(0);

/// Re-reads the snapshot when the file changed, at most once a second per child (one thread
/// wins the check; the others go on with the copy they have).
fn refresh(path: &std::path::Path, now_ms: u64) {
    let due = NEXT_CHECK_MS.load(Ordering::Relaxed);
    if now_ms < due
        || NEXT_CHECK_MS
            .compare_exchange(due, now_ms + 1_000, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let stamp = std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())));
    let same = SNAPSHOT
        .read()
        .ok()
        .is_some_and(|g| g.as_ref().map(|l| l.stamp) == stamp);
    if same {
        return;
    }
    let fresh = stamp.and_then(|stamp| {
        let bytes = std::fs::read(path).ok()?;
        match Snapshot::parse(&bytes) {
            Ok(_) => Some(Loaded { bytes, stamp }),
            Err(_) => {
                counters::add(|c| &c.decision_errors, 1);
                None
            }
        }
    });
    if let Ok(mut g) = SNAPSHOT.write() {
        if fresh.is_some() {
            counters::add(|c| &c.decision_loads, 1);
        }
        *g = fresh;
    }
}

/// The decision for `ip`/`ja4`, its variables set on `r`, and what the verdict asks for.
fn decided(
    r: &mut Request<'_>,
    cfg: &ModuleConfig,
    ip: IpAddr,
    ja4: &[u8],
    now_ms: u64,
) -> decisions::Action {
    let Some(path) = &cfg.decision_file else {
        return decisions::Action::None;
    };
    refresh(path, now_ms);
    let Ok(guard) = SNAPSHOT.read() else {
        return decisions::Action::None;
    };
    let Some(snap) = guard.as_ref().and_then(|l| Snapshot::parse(&l.bytes).ok()) else {
        return decisions::Action::None;
    };
    let age_ms = i64::try_from(now_ms).unwrap_or(0) - snap.published_ms;
    if age_ms > i64::from(cfg.decision_max_age_s) * 1000 {
        counters::add(|c| &c.decision_stale, 1);
        return decisions::Action::None;
    }
    let Some(found) = snap.lookup(ip, ja4, i64::try_from(now_ms).unwrap_or(0)) else {
        return decisions::Action::None;
    };
    counters::add(|c| &c.decision_hits, 1);
    if cfg.set_env {
        let pool = r.pool();
        let text = |s: &str| pool.keep_cstr(&std::ffi::CString::new(s).unwrap_or_default());
        let (verdict, score, threat, reason) = (
            text(found.verdict.as_str()),
            text(&found.bot_score.to_string()),
            text(["none", "low", "medium", "high", "critical"][usize::from(found.threat.min(4))]),
            text(found.reason()),
        );
        r.add_env(c"JA4_VERDICT", verdict);
        r.add_env(c"JA4_BOT_SCORE", score);
        r.add_env(c"JA4_THREAT", threat);
        r.add_env(c"JA4_REASON", reason);
    }
    match found.action {
        decisions::Action::None => cfg
            .actions
            .iter()
            .find(|(v, _)| *v == found.verdict)
            .map_or(decisions::Action::Allow, |(_, a)| *a),
        a => a,
    }
}

/// The decision for a request from `ip` on a connection with JA4 `ja4` (empty without TLS)
/// at `now_ms`: the sidecar's decision first (its variables set on `r`), then every rate
/// limit.
pub(crate) fn decide(
    r: &mut Request<'_>,
    cfg: &ModuleConfig,
    ip: Option<IpAddr>,
    ja4: &[u8],
    now_ms: u64,
) -> Outcome {
    if cfg.mitigation == Mode::Off {
        return Outcome::Off;
    }
    let Some(ip) = ip else {
        return Outcome::Allow;
    };
    if exempt(&cfg.exempt, ip) {
        counters::add(|c| &c.mitigation_exempt, 1);
        return Outcome::Allow;
    }
    if decided(r, cfg, ip, ja4, now_ms) == decisions::Action::Block {
        return Outcome::Blocked;
    }
    let Some(words) = BUCKETS.get() else {
        if !cfg.rate_limits.is_empty() {
            counters::add(|c| &c.mitigation_no_table, 1);
        }
        return Outcome::Allow;
    };
    let table = Buckets::new(words);
    for (i, limit) in cfg.rate_limits.iter().enumerate() {
        if ja4.is_empty() && limit.by != ja4_core::mitigation::By::Ip {
            continue;
        }
        let taken = table.take(Key::of(limit, i, ip, ja4), limit, now_ms);
        if taken.evicted {
            counters::add(|c| &c.mitigation_evicted, 1);
        }
        if !taken.allowed {
            return Outcome::Limited(i);
        }
    }
    Outcome::Allow
}

/// Applies the outcome to `r`: its variables, and in enforce mode the status to return
/// (429) with `Retry-After`.
pub(crate) fn apply(r: &mut Request<'_>, cfg: &ModuleConfig, outcome: Outcome) -> Option<i32> {
    let limit = match outcome {
        Outcome::Off => return None,
        Outcome::Allow => {
            if cfg.set_env {
                r.add_env(c"JA4_ACTION", c"allow");
            }
            return None;
        }
        Outcome::Limited(i) => cfg.rate_limits.get(i)?,
        Outcome::Blocked => {
            let enforce = cfg.mitigation == Mode::Enforce;
            if cfg.set_env {
                r.add_env(
                    c"JA4_ACTION",
                    if enforce { c"block" } else { c"count:block" },
                );
            }
            if !enforce {
                counters::add(|c| &c.mitigation_counted, 1);
                return None;
            }
            counters::add(|c| &c.mitigation_blocked, 1);
            return Some(403);
        }
    };
    let reason = match limit.by {
        ja4_core::mitigation::By::Ip => c"ratelimit:ip",
        ja4_core::mitigation::By::Ja4 => c"ratelimit:ja4",
        ja4_core::mitigation::By::IpJa4 => c"ratelimit:ip+ja4",
    };
    let enforce = cfg.mitigation == Mode::Enforce;
    if cfg.set_env {
        r.add_env(
            c"JA4_ACTION",
            if enforce { c"block" } else { c"count:block" },
        );
        r.add_env(c"JA4_REASON", reason);
    }
    if !enforce {
        counters::add(|c| &c.mitigation_counted, 1);
        return None;
    }
    counters::add(|c| &c.mitigation_blocked, 1);
    // One request's worth of tokens comes back after seconds/requests (at least 1 s).
    let wait = limit.seconds.div_ceil(limit.requests).max(1);
    let text = std::ffi::CString::new(wait.to_string()).unwrap_or_default();
    let kept = r.pool().keep_cstr(&text);
    r.add_err_header(c"Retry-After", kept);
    Some(429)
}
