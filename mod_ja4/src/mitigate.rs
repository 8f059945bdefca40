//! In-module mitigation at post_read_request: the `JA4RateLimit` token buckets every child
//! shares, `JA4Exempt`, and what a request sees — `JA4_ACTION` (`allow`, `block`, or in count
//! mode `count:block`) and `JA4_REASON` (`ratelimit:<by>`) — and, when enforcing, a 429 with
//! `Retry-After`.
//!
//! Owns: the bucket table in anonymous shared memory (mapped by the parent in post_config,
//! inherited by children) and the decision per request.
//! Never: allocates or locks on the request path (a bounded probe of atomic words), or fails
//! closed: without a table requests pass (counted).

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;

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
}

/// Checks every rate limit for a request from `ip` on a connection with JA4 `ja4` (empty
/// without TLS) at `now_ms`.
pub(crate) fn decide(cfg: &ModuleConfig, ip: Option<IpAddr>, ja4: &[u8], now_ms: u64) -> Outcome {
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
