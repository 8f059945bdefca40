//! In-module mitigation at post_read_request: the sidecar's decisions (`JA4DecisionFile`,
//! loaded into a table in shared memory that every child reads without a lock), `JA4Action`,
//! the `JA4RateLimit` token buckets every child shares, `JA4Exempt`, the challenge
//! (`ja4_core::challenge`: its page, the verify address [`challenge::VERIFY_PATH`] and the
//! pass cookie), tarpits and the block response, and what a request sees — `JA4_VERDICT`,
//! `JA4_BOT_SCORE`, `JA4_THREAT`, `JA4_REASON`, `JA4_VERIFIED_BOT` (the crawler's name, from
//! a verified crawler's `verified:<name>` reason), `JA4_ACTION` (`allow`, `pass` (a valid
//! challenge pass), `challenge`, `block`, `tarpit`, or in count mode `count:challenge`,
//! `count:block`, `count:tarpit`) — and, when enforcing, the block response (decision),
//! 429 with `Retry-After` (limit) or the challenge page (403).
//!
//! Owns: the decisions table and the bucket table in anonymous shared memory (mapped by the
//! parent in post_config, kept in httpd's retained data across graceful restarts, inherited
//! by children), loading a changed snapshot into the table (one process at a time), the
//! random challenge key when `JA4ChallengeKeyFile` is not set (made by the parent, so every
//! child shares it), what a connection remembers ([`ConnMemo`]), and the decision per
//! request.
//! Never: allocates or blocks on the request path (bounded probes of atomic words; the file
//! is looked at by at most one thread per child per second and loaded by one process per
//! change), holds more than 4 tarpitted requests per child, or fails closed: without a
//! table, or with a snapshot older than `JA4DecisionMaxAge`, requests pass (counted).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use ja4_core::batch::{Mitigation, MitigationAction, MitigationReason};
use ja4_core::challenge::{self, Binding, VERIFY_PATH_C};
use ja4_core::decisions::shared::{Keys, Table};
use ja4_core::decisions::{self, Snapshot, Verdict};

use ja4_core::directives::ModuleConfig;
use ja4_core::mitigation::{exempt, Buckets, Key, Mode};

use crate::config::ServerConfig;
use crate::counters;
use crate::ffi::os::SharedMapping;
use crate::ffi::{Pool, Request};

static BUCKETS: SharedMapping<AtomicU64> = SharedMapping::new();

/// Buckets in the table (two words each: 1 MiB).
pub(crate) const SLOTS: usize = 65_536;

/// The challenge key of a start without `JA4ChallengeKeyFile`.
static EPHEMERAL_KEY: std::sync::OnceLock<challenge::Key> = std::sync::OnceLock::new();

/// Maps the tables (parent, post_config): the rate-limit buckets when limits are configured,
/// the decisions table (loaded from the file at once, so the children of a new generation
/// start with it) when a decisions file is; and makes the random challenge key before
/// children fork. Virtual hosts may turn mitigation on, so the main server's mode does not
/// matter here.
pub(crate) fn init(pconf: Pool<'_>, cfg: &ModuleConfig) -> std::io::Result<()> {
    if EPHEMERAL_KEY.get().is_none() {
        let mut k = [0u8; 48];
        use std::io::Read as _;
        std::fs::File::open("/dev/urandom")?.read_exact(&mut k)?;
        let _ = EPHEMERAL_KEY.set(challenge::Key::new(&k).map_err(std::io::Error::other)?);
    }
    if let Some(path) = &cfg.decision_file {
        DECISIONS.map_retained(
            pconf,
            c"mod_ja4:decisions",
            Table::words(cfg.decision_entries),
        )?;
        if let Some(t) = table(cfg) {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            reload(&t, path, now_ms);
        }
    }
    if cfg.rate_limits.is_empty() {
        return Ok(());
    }
    BUCKETS.map_retained(pconf, c"mod_ja4:buckets", 2 * SLOTS)
}

fn key(sc: &ServerConfig) -> Option<&challenge::Key> {
    sc.challenge_key.as_deref().or_else(|| EPHEMERAL_KEY.get())
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
    /// Held, then blocked, by a decision (`JA4Action <verdict> tarpit`).
    Tarpit,
    /// Let through by a valid challenge pass (a decision or a limit asked for a challenge).
    Passed,
    /// To be challenged: by a decision (`None`) or over limit number `usize`.
    Challenge(Option<usize>),
}

/// What mitigation remembers per connection (its address and TLS stack do not change):
/// the decisions table's lookup keys, and the last challenge pass that verified.
#[derive(Debug, Default)]
pub(crate) struct ConnMemo {
    keys: std::sync::OnceLock<Keys>,
    /// A hash of the last pass token whose HMAC verified on this connection (0: none)…
    pass: AtomicU64,
    /// …and the expiry (Unix s) its verified MAC covers.
    pass_expires: AtomicU64,
}

/// A 64-bit hash of a pass token (FNV-1a; never 0).
fn token_hash(t: &[u8]) -> u64 {
    t.iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
        .max(1)
}

/// The expiry (Unix s) a pass token states, unchecked (read once its MAC verified).
fn token_expiry(t: &[u8]) -> Option<u64> {
    let rest = t.strip_prefix(b"1.")?;
    let end = rest.iter().position(|&c| c == b'.')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The decisions table (`ja4_core::decisions::shared`), mapped by the parent.
static DECISIONS: SharedMapping<AtomicU64> = SharedMapping::new();
/// When (ms) this child next looks at the snapshot file.
static NEXT_CHECK_MS: AtomicU64 = AtomicU64::new(0);

fn table(cfg: &ModuleConfig) -> Option<Table<'static>> {
    Table::new(DECISIONS.get()?, cfg.decision_entries)
}

/// The file's stamp: its modification time and length, so a replaced file differs.
fn stamp(path: &std::path::Path) -> Option<u64> {
    let m = std::fs::metadata(path).ok()?;
    let t = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some((t.as_nanos() as u64 ^ m.len().rotate_left(48)).max(1))
}

/// Loads the snapshot file into the table when it changed since the table's last load. One
/// process at a time does (the table's writer word); the others go on with the live half.
fn reload(t: &Table<'_>, path: &std::path::Path, now_ms: u64) {
    let Some(stamp) = stamp(path) else {
        return;
    };
    let owner = u64::from(std::process::id());
    if stamp == t.stamp() || !t.try_lock(owner, now_ms / 1000) {
        return;
    }
    match std::fs::read(path).map(|b| (Snapshot::parse(&b).map(|s| t.load(&s, stamp)), b)) {
        Ok((Ok(loaded), _)) => {
            counters::add(|c| &c.decision_loads, 1);
            counters::add(|c| &c.decision_dropped, u64::from(loaded.dropped));
        }
        _ => {
            counters::add(|c| &c.decision_errors, 1);
            t.set_stamp(stamp);
        }
    }
    t.unlock(owner);
}

/// Looks at the file at most once a second per child (one thread wins the check).
fn refresh(t: &Table<'_>, path: &std::path::Path, now_ms: u64) {
    let due = NEXT_CHECK_MS.load(Ordering::Relaxed);
    if now_ms < due
        || NEXT_CHECK_MS
            .compare_exchange(due, now_ms + 1_000, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    reload(t, path, now_ms);
}

/// The decision for the client of `keys` (computed once per connection when `cache` is
/// given), its variables set on `r`: verdict, bot score and the entry's own action.
fn decided(
    r: &mut Request<'_>,
    cfg: &ModuleConfig,
    keys: (IpAddr, &[u8], Option<&std::sync::OnceLock<Keys>>),
    now_ms: u64,
) -> Option<(Verdict, u8, decisions::Action)> {
    let (Some(path), Some(t)) = (&cfg.decision_file, table(cfg)) else {
        return None;
    };
    refresh(&t, path, now_ms);
    let now = i64::try_from(now_ms).unwrap_or(0);
    match t.published_ms() {
        Some(p) if now - p <= i64::from(cfg.decision_max_age_s) * 1000 => {}
        Some(_) => {
            counters::add(|c| &c.decision_stale, 1);
            return None;
        }
        None => return None,
    }
    let (ip, ja4, cache) = keys;
    let k = match cache {
        Some(c) => *c.get_or_init(|| Keys::new(ip, ja4)),
        None => Keys::new(ip, ja4),
    };
    let found = t.lookup(&k, now)?;
    counters::add(|c| &c.decision_hits, 1);
    if cfg.set_env {
        // Static names and pool copies: nothing on the heap per request.
        let verdict = found.verdict.as_cstr();
        let threat =
            [c"none", c"low", c"medium", c"high", c"critical"][usize::from(found.threat.min(4))];
        let score = found.bot_score.min(99);
        let digits = [b'0' + score / 10, b'0' + score % 10];
        let pool = r.pool();
        let score = pool.keep_text(if score < 10 { &digits[1..] } else { &digits });
        let reason = pool.keep_text(found.reason());
        r.add_env(c"JA4_VERDICT", verdict);
        r.add_env(c"JA4_BOT_SCORE", score);
        r.add_env(c"JA4_THREAT", threat);
        r.add_env(c"JA4_REASON", reason);
        if found.verdict == Verdict::VerifiedBot {
            // The sidecar names the crawler in the reason: `verified:<name>`.
            let name = found
                .reason()
                .strip_prefix(b"verified:")
                .filter(|n| !n.is_empty());
            r.add_env(
                c"JA4_VERIFIED_BOT",
                name.map_or(c"crawler", |n| pool.keep_text(n)),
            );
        }
    }
    Some((found.verdict, found.bot_score, found.action))
}

/// Whether the request carries a valid challenge pass for `ip` and `ja4` (any `Cookie`
/// header; a present but invalid pass is counted). A token that already verified on this
/// connection (`memo`) is only checked for its expiry: keep-alive requests pay the HMAC once.
fn has_pass(
    r: &Request<'_>,
    sc: &ServerConfig,
    (ip, ja4, memo): (IpAddr, &[u8], Option<&ConnMemo>),
    now_ms: u64,
) -> bool {
    let Some(key) = key(sc) else {
        return false;
    };
    let now_s = now_ms / 1000;
    let mut refused = false;
    for h in r.headers() {
        if !h.key().is_some_and(|k| k.eq_ignore_ascii_case(b"cookie")) {
            continue;
        }
        let Some(token) = challenge::cookie(h.val(), challenge::COOKIE) else {
            continue;
        };
        let hash = token_hash(token);
        if memo.is_some_and(|m| {
            m.pass.load(Ordering::Acquire) == hash && now_s < m.pass_expires.load(Ordering::Relaxed)
        }) {
            return true;
        }
        match challenge::check_pass(key, &Binding::new(ip, ja4), token, now_s) {
            Ok(()) => {
                if let Some(m) = memo {
                    m.pass_expires
                        .store(token_expiry(token).unwrap_or(0), Ordering::Relaxed);
                    m.pass.store(hash, Ordering::Release);
                }
                return true;
            }
            Err(_) => refused = true,
        }
    }
    if refused {
        counters::add(|c| &c.challenge_pass_refused, 1);
    }
    false
}

/// What post_read_request found under the server's configuration, before any action: a
/// `<Directory>`/`<Location>`'s `JA4Mitigation` and `JA4Action` may decide later what to do
/// with it (in the access checker), with the same facts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Facts {
    /// The client's address (none: nothing to decide on, the request is allowed).
    ip: Option<IpAddr>,
    /// In a `JA4Exempt` network.
    exempt: bool,
    /// The sidecar's decision that named the client: verdict, bot score, the entry's own
    /// action.
    decision: Option<(Verdict, u8, decisions::Action)>,
    /// Bit i: over rate limit i (its tokens are taken here, once).
    over: u8,
}

impl Facts {
    /// The decision's verdict and bot score, for the record.
    pub(crate) fn named(&self) -> Option<(Verdict, u8)> {
        self.decision.map(|(v, s, _)| (v, s))
    }
}

/// The mode and the verdicts' actions in force for a request: the server's, or its
/// directory's.
#[derive(Clone, Copy)]
pub(crate) struct Policy<'a> {
    /// `JA4Mitigation`.
    pub(crate) mode: Mode,
    /// `JA4Action`s.
    pub(crate) actions: &'a [(Verdict, decisions::Action)],
}

impl<'a> Policy<'a> {
    /// The server's policy.
    pub(crate) fn of(cfg: &'a ModuleConfig) -> Policy<'a> {
        Policy {
            mode: cfg.mitigation,
            actions: &cfg.actions,
        }
    }
}

/// The facts of a request from `ip` on a connection with JA4 `ja4` (empty without TLS) at
/// `now_ms`: the sidecar's decision (its variables set on `r`) and the rate limits it is
/// over.
pub(crate) fn facts(
    r: &mut Request<'_>,
    sc: &ServerConfig,
    (ip, ja4, memo): (Option<IpAddr>, &[u8], Option<&ConnMemo>),
    now_ms: u64,
) -> Facts {
    let cfg = &sc.cfg;
    let Some(addr) = ip else {
        return Facts::default();
    };
    if exempt(&cfg.exempt, addr) {
        counters::add(|c| &c.mitigation_exempt, 1);
        return Facts {
            ip,
            exempt: true,
            ..Facts::default()
        };
    }
    let decision = decided(r, cfg, (addr, ja4, memo.map(|m| &m.keys)), now_ms);
    let mut over = 0u8;
    match BUCKETS.get() {
        Some(words) => {
            let table = Buckets::new(words);
            for (i, limit) in cfg.rate_limits.iter().enumerate() {
                if ja4.is_empty() && limit.by != ja4_core::mitigation::By::Ip {
                    continue;
                }
                let taken = table.take(Key::of(limit, i, addr, ja4), limit, now_ms);
                if taken.evicted {
                    counters::add(|c| &c.mitigation_evicted, 1);
                }
                if !taken.allowed {
                    over |= 1 << i;
                }
            }
        }
        None if !cfg.rate_limits.is_empty() => counters::add(|c| &c.mitigation_no_table, 1),
        None => {}
    }
    Facts {
        ip,
        exempt: false,
        decision,
        over,
    }
}

/// What `policy` does with `f`: the decision's action (the entry's own, else the verdict's
/// `JA4Action`) first, then the rate limits in order; a challenge pass lets through what
/// would be challenged.
pub(crate) fn outcome(
    r: &Request<'_>,
    sc: &ServerConfig,
    policy: Policy<'_>,
    f: &Facts,
    (ja4, memo): (&[u8], Option<&ConnMemo>),
    now_ms: u64,
) -> Outcome {
    if policy.mode == Mode::Off {
        return Outcome::Off;
    }
    let Some(ip) = f.ip.filter(|_| !f.exempt) else {
        return Outcome::Allow;
    };
    // Whether the client holds a pass, looked up once and only when a challenge is asked.
    let mut pass = None;
    let mut passed =
        |r: &Request<'_>| *pass.get_or_insert_with(|| has_pass(r, sc, (ip, ja4, memo), now_ms));
    let action = match f.decision {
        None => decisions::Action::None,
        Some((Verdict::VerifiedBot, _, _)) => decisions::Action::Allow,
        Some((v, _, decisions::Action::None)) => policy
            .actions
            .iter()
            .find(|(x, _)| *x == v)
            .map_or(decisions::Action::Allow, |(_, a)| *a),
        Some((_, _, a)) => a,
    };
    let mut let_through = false;
    match action {
        decisions::Action::Block => return Outcome::Blocked,
        decisions::Action::Tarpit => return Outcome::Tarpit,
        decisions::Action::Challenge if !passed(r) => return Outcome::Challenge(None),
        decisions::Action::Challenge => let_through = true,
        _ => {}
    }
    for (i, limit) in sc.cfg.rate_limits.iter().enumerate() {
        if f.over & (1 << i) == 0 {
            continue;
        }
        if !limit.challenge {
            return Outcome::Limited(i);
        }
        if !passed(r) {
            return Outcome::Challenge(Some(i));
        }
        let_through = true;
    }
    if let_through {
        Outcome::Passed
    } else {
        Outcome::Allow
    }
}

/// Answers the challenge page's verify request ([`challenge::VERIFY_PATH`]): a solved challenge gets
/// its pass cookie and a redirect (303) back where it came from; an expired one goes back for
/// a new page; a wrong one gets 403. `None` for any other request.
pub(crate) fn verify(
    r: &mut Request<'_>,
    sc: &ServerConfig,
    ip: Option<IpAddr>,
    ja4: &[u8],
    now_ms: u64,
) -> Option<(i32, Mitigation)> {
    if !crate::config::mitigation_anywhere(sc) || !r.uri_is(VERIFY_PATH_C) {
        return None;
    }
    let answered = |action| Mitigation {
        action,
        ..Mitigation::default()
    };
    let (Some(ip), Some(key)) = (ip, key(sc)) else {
        return Some((404, answered(MitigationAction::ChallengeFailed)));
    };
    let who = Binding::new(ip, ja4);
    let now_s = now_ms / 1000;
    let pool = r.pool();
    let keep = |s: String| pool.keep_cstr(&std::ffi::CString::new(s).unwrap_or_default());
    let answer = challenge::parse_solution(r.args()).and_then(|s| {
        challenge::check_solution(key, &who, &s, sc.cfg.challenge_difficulty, now_s).map(|()| s)
    });
    r.add_err_header(c"Cache-Control", c"no-store");
    match answer {
        Ok(s) => {
            counters::add(|c| &c.challenge_passed, 1);
            let token = challenge::pass_token(key, &who, now_s + u64::from(sc.cfg.challenge_ttl_s));
            let secure = r.ssl_var(c"HTTPS") == b"on";
            let cookie = keep(challenge::set_cookie(
                &token,
                sc.cfg.challenge_ttl_s,
                secure,
            ));
            r.add_err_header(c"Set-Cookie", cookie);
            let back = keep(String::from_utf8_lossy(&s.back).into_owned());
            r.add_header_out(c"Location", back);
            if sc.cfg.set_env {
                r.add_env(c"JA4_ACTION", c"challenge:passed");
            }
            Some((303, answered(MitigationAction::ChallengePassed)))
        }
        Err(challenge::Refused::Expired) => {
            counters::add(|c| &c.challenge_failed, 1);
            let back = challenge::parse_solution(r.args())
                .map(|s| s.back)
                .unwrap_or(b"/".to_vec());
            let back = keep(String::from_utf8_lossy(&back).into_owned());
            r.add_header_out(c"Location", back);
            if sc.cfg.set_env {
                r.add_env(c"JA4_ACTION", c"challenge:expired");
            }
            Some((303, answered(MitigationAction::ChallengeFailed)))
        }
        Err(why) => {
            counters::add(|c| &c.challenge_failed, 1);
            if sc.cfg.set_env {
                r.add_env(c"JA4_ACTION", c"challenge:failed");
                r.add_env(c"JA4_REASON", keep(why.to_string()));
            }
            r.custom_response(403, c"<!DOCTYPE html><p>The browser check was not passed. Reload the page to try again.</p>\n");
            Some((403, answered(MitigationAction::ChallengeFailed)))
        }
    }
}

/// Sends the challenge page (enforce mode): 403 with the page as its body, never cached.
fn issue(
    r: &mut Request<'_>,
    sc: &ServerConfig,
    ip: IpAddr,
    ja4: &[u8],
    now_ms: u64,
) -> Option<i32> {
    let key = key(sc)?;
    counters::add(|c| &c.challenge_issued, 1);
    let now_s = now_ms / 1000;
    let nonce = challenge::nonce(key, &Binding::new(ip, ja4), now_s);
    let html = challenge::page(&nonce, now_s, sc.cfg.challenge_difficulty, r.unparsed_uri());
    let body = r
        .pool()
        .keep_cstr(&std::ffi::CString::new(html).unwrap_or_default());
    r.add_err_header(c"Cache-Control", c"no-store");
    r.custom_response(403, body);
    Some(403)
}

/// Applies the outcome to `r`: its variables, and in enforce mode the status to answer with:
/// 403 (blocked), the challenge page (403), or 429 with `Retry-After` (limit).
pub(crate) fn apply(
    r: &mut Request<'_>,
    sc: &ServerConfig,
    mode: Mode,
    outcome: Outcome,
    ip: Option<IpAddr>,
    ja4: &[u8],
    now_ms: u64,
) -> Option<i32> {
    let cfg = &sc.cfg;
    let enforce = mode == Mode::Enforce;
    let limit = match outcome {
        Outcome::Off => return None,
        Outcome::Allow | Outcome::Passed => {
            if outcome == Outcome::Passed {
                counters::add(|c| &c.challenge_pass_ok, 1);
            }
            if cfg.set_env {
                r.add_env(
                    c"JA4_ACTION",
                    if outcome == Outcome::Passed {
                        c"pass"
                    } else {
                        c"allow"
                    },
                );
            }
            return None;
        }
        Outcome::Challenge(which) => {
            if cfg.set_env {
                r.add_env(
                    c"JA4_ACTION",
                    if enforce {
                        c"challenge"
                    } else {
                        c"count:challenge"
                    },
                );
                if let Some(l) = which.and_then(|i| cfg.rate_limits.get(i)) {
                    r.add_env(c"JA4_REASON", limit_reason(l));
                }
            }
            if !enforce {
                counters::add(|c| &c.mitigation_counted, 1);
                return None;
            }
            return issue(r, sc, ip?, ja4, now_ms);
        }
        Outcome::Limited(i) => cfg.rate_limits.get(i)?,
        Outcome::Blocked | Outcome::Tarpit => {
            let tarpit = outcome == Outcome::Tarpit;
            if cfg.set_env {
                r.add_env(
                    c"JA4_ACTION",
                    match (tarpit, enforce) {
                        (false, true) => c"block",
                        (false, false) => c"count:block",
                        (true, true) => c"tarpit",
                        (true, false) => c"count:tarpit",
                    },
                );
            }
            if !enforce {
                counters::add(|c| &c.mitigation_counted, 1);
                return None;
            }
            if tarpit {
                hold(cfg.tarpit_delay_ms);
            }
            counters::add(|c| &c.mitigation_blocked, 1);
            return Some(block(r, sc));
        }
    };
    if cfg.set_env {
        r.add_env(
            c"JA4_ACTION",
            if enforce { c"block" } else { c"count:block" },
        );
        r.add_env(c"JA4_REASON", limit_reason(limit));
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

fn limit_reason(limit: &ja4_core::mitigation::RateLimit) -> &'static std::ffi::CStr {
    match limit.by {
        ja4_core::mitigation::By::Ip => c"ratelimit:ip",
        ja4_core::mitigation::By::Ja4 => c"ratelimit:ja4",
        ja4_core::mitigation::By::IpJa4 => c"ratelimit:ip+ja4",
    }
}

/// What the export record says of `outcome` (the decision's verdict and score when
/// `named`).
pub(crate) fn recorded(
    sc: &ServerConfig,
    mode: Mode,
    outcome: Outcome,
    named: Option<(Verdict, u8)>,
) -> Mitigation {
    let by_limit = |i: usize| match sc.cfg.rate_limits.get(i).map(|l| l.by) {
        Some(ja4_core::mitigation::By::Ip) => MitigationReason::RateLimitIp,
        Some(ja4_core::mitigation::By::Ja4) => MitigationReason::RateLimitJa4,
        Some(ja4_core::mitigation::By::IpJa4) => MitigationReason::RateLimitIpJa4,
        None => MitigationReason::None,
    };
    let by_decision = if named.is_some() {
        MitigationReason::Decision
    } else {
        MitigationReason::None
    };
    let (action, reason) = match outcome {
        Outcome::Off => return Mitigation::default(),
        Outcome::Allow => (MitigationAction::Allow, by_decision),
        Outcome::Passed => (MitigationAction::Pass, by_decision),
        Outcome::Blocked => (MitigationAction::Block, MitigationReason::Decision),
        Outcome::Tarpit => (MitigationAction::Tarpit, MitigationReason::Decision),
        Outcome::Limited(i) => (MitigationAction::Block, by_limit(i)),
        Outcome::Challenge(None) => (MitigationAction::Challenge, MitigationReason::Decision),
        Outcome::Challenge(Some(i)) => (MitigationAction::Challenge, by_limit(i)),
    };
    Mitigation {
        action,
        counted: mode == Mode::Count
            && matches!(
                action,
                MitigationAction::Block | MitigationAction::Challenge | MitigationAction::Tarpit
            ),
        reason,
        verdict: named.map(|n| n.0),
        bot_score: named.map_or(0, |n| n.1),
    }
}

/// Most requests one child holds in the tarpit at once: each holds a worker, so beyond this
/// a tarpitted request is refused at once (counted), never queued.
const MAX_TARPITTED: u32 = 4;

static TARPITTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Holds the request `ms` milliseconds, unless this child already holds [`MAX_TARPITTED`].
fn hold(ms: u32) {
    if TARPITTED.fetch_add(1, Ordering::AcqRel) < MAX_TARPITTED {
        counters::add(|c| &c.tarpit_held, 1);
        std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)));
    } else {
        counters::add(|c| &c.tarpit_full, 1);
    }
    TARPITTED.fetch_sub(1, Ordering::AcqRel);
}

/// The answer to a blocked request: `JA4BlockResponse`'s status, with its body when one is
/// configured (httpd's error page for the status otherwise).
fn block(r: &mut Request<'_>, sc: &ServerConfig) -> i32 {
    let status = i32::from(sc.cfg.block_status);
    if let Some(body) = &sc.block_body {
        let kept = r.pool().keep_cstr(body);
        r.custom_response(status, kept);
    }
    status
}
