//! In-module mitigation before any model runs: the mode (`JA4Mitigation Off|Count|Enforce`),
//! rate limits by client address, JA4 or both (`JA4RateLimit`), the networks never limited
//! (`JA4Exempt`), and the token buckets every httpd child shares.
//!
//! Owns: parsing and validating those directives (errors name the directive), and the bucket
//! table's arithmetic over a slice of atomic words (in the module, anonymous shared memory
//! mapped by the parent; in tests, any slice): one word of key and one of state per slot,
//! updated with compare-and-swap, never a lock.
//! Never: allocates or blocks on the request path ([`Buckets::take`] is a bounded probe of 8
//! slots); never fails closed: a full table evicts its stalest bucket (counted by the caller)
//! rather than refusing the request.
//!
//! ```
//! use std::sync::atomic::AtomicU64;
//! use ja4_core::mitigation::{parse_rate_limit, Buckets, Key};
//! let limit = parse_rate_limit("ja4 3/60 block").unwrap();
//! let words: Vec<AtomicU64> = (0..64).map(|_| AtomicU64::new(0)).collect();
//! let table = Buckets::new(&words);
//! let key = Key::of(&limit, 0, "10.0.0.1".parse().unwrap(), b"t13d1516h2_8daaf6152771_02713d6af862");
//! let allowed: Vec<bool> = (0..5).map(|_| table.take(key, &limit, 1_000).allowed).collect();
//! assert_eq!(allowed, [true, true, true, false, false]);
//! ```

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the module does with its decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Nothing: no variables, no limits (the default).
    #[default]
    Off,
    /// Decides and says what it would do (`JA4_ACTION`), never acts.
    Count,
    /// Acts.
    Enforce,
}

/// Parses `JA4Mitigation`.
pub fn parse_mode(v: &str) -> Result<Mode, String> {
    match v.to_ascii_lowercase().as_str() {
        "off" => Ok(Mode::Off),
        "count" => Ok(Mode::Count),
        "enforce" => Ok(Mode::Enforce),
        _ => Err(format!("JA4Mitigation: {v:?} is not Off, Count or Enforce")),
    }
}

/// What a rate limit counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The client address.
    Ip,
    /// The connection's JA4 (requests without TLS are not limited by it).
    Ja4,
    /// Both together.
    IpJa4,
}

impl By {
    /// Its name in the directive and in `JA4_REASON`.
    pub fn as_str(self) -> &'static str {
        match self {
            By::Ip => "ip",
            By::Ja4 => "ja4",
            By::IpJa4 => "ip+ja4",
        }
    }
}

/// One `JA4RateLimit`: `requests` per `seconds` per key, bursts up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// What it counts by.
    pub by: By,
    /// Requests allowed per `seconds` (the refill rate).
    pub requests: u32,
    /// The period, seconds.
    pub seconds: u32,
    /// The bucket's size (default: `requests`).
    pub burst: u32,
    /// Over the limit: challenge (a client with a pass goes on) rather than block.
    pub challenge: bool,
}

/// Most tokens a bucket holds (the state word keeps them in 1/1024 units in 32 bits).
pub const MAX_BURST: u32 = 1_000_000;

/// Parses `JA4RateLimit ip|ja4|ip+ja4 <requests>/<seconds> [burst=N] challenge|block`.
pub fn parse_rate_limit(args: &str) -> Result<RateLimit, String> {
    let err = |why: String| format!("JA4RateLimit: {why}");
    let words: Vec<&str> = args.split_whitespace().collect();
    let (by, rate, rest) = match words.as_slice() {
        [by, rate, rest @ ..] => (*by, *rate, rest),
        _ => {
            return Err(err(
                "expects ip|ja4|ip+ja4 <requests>/<seconds> [burst=N] challenge|block".into(),
            ))
        }
    };
    let by = match by.to_ascii_lowercase().as_str() {
        "ip" => By::Ip,
        "ja4" => By::Ja4,
        "ip+ja4" => By::IpJa4,
        _ => return Err(err(format!("{by:?} is not ip, ja4 or ip+ja4"))),
    };
    let (n, s) = rate
        .split_once('/')
        .ok_or_else(|| err(format!("{rate:?} is not <requests>/<seconds>")))?;
    let requests: u32 = n
        .parse()
        .ok()
        .filter(|&n| (1..=MAX_BURST).contains(&n))
        .ok_or_else(|| err(format!("requests {n:?} is not 1-{MAX_BURST}")))?;
    let seconds: u32 = s
        .parse()
        .ok()
        .filter(|&s| (1..=86_400).contains(&s))
        .ok_or_else(|| err(format!("seconds {s:?} is not 1-86400")))?;
    let mut burst = requests;
    let mut action = None;
    for w in rest {
        if let Some(b) = w.strip_prefix("burst=") {
            burst = b
                .parse()
                .ok()
                .filter(|&b| (1..=MAX_BURST).contains(&b))
                .ok_or_else(|| err(format!("burst {b:?} is not 1-{MAX_BURST}")))?;
        } else if w.eq_ignore_ascii_case("block") {
            action = Some(false);
        } else if w.eq_ignore_ascii_case("challenge") {
            action = Some(true);
        } else {
            return Err(err(format!("unexpected {w:?}")));
        }
    }
    let challenge =
        action.ok_or_else(|| err("the action (challenge or block) is missing".into()))?;
    Ok(RateLimit {
        by,
        requests,
        seconds,
        burst,
        challenge,
    })
}

/// A network of `JA4Exempt`, as an IPv6 prefix (IPv4 as mapped addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: u128,
    len: u8,
}

fn v6(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl Net {
    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mask = if self.len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.len))
        };
        v6(ip) & mask == self.addr & mask
    }
}

/// Parses one `JA4Exempt` network: `address/length` or an address.
pub fn parse_net(v: &str) -> Result<Net, String> {
    let err = |why: &str| format!("JA4Exempt: {v:?}: {why}");
    let (a, l) = v.split_once('/').unwrap_or((v, ""));
    let ip: IpAddr = a.parse().map_err(|_| err("not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = if l.is_empty() {
        max
    } else {
        l.parse()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| err("bad prefix length"))?
    };
    let len = if ip.is_ipv4() { len + 96 } else { len };
    Ok(Net { addr: v6(ip), len })
}

/// Whether `ip` is in one of `nets`.
pub fn exempt(nets: &[Net], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

/// A bucket's key: a hash of the limit's index and what it counts by (never 0: 0 marks a
/// free slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(u64);

impl Key {
    /// The key of limit number `index` (`limit`) for a request from `ip` on a connection
    /// with JA4 `ja4`; `None` when the limit counts by JA4 and there is none.
    pub fn of(limit: &RateLimit, index: usize, ip: IpAddr, ja4: &[u8]) -> Key {
        let mut h = Fnv::new(index as u64);
        match limit.by {
            By::Ip => h.write(&v6(ip).to_le_bytes()),
            By::Ja4 => h.write(ja4),
            By::IpJa4 => {
                h.write(&v6(ip).to_le_bytes());
                h.write(ja4);
            }
        }
        Key(h.finish().max(1))
    }
}

/// FNV-1a, 64-bit, then a final mix (SplitMix64's) so nearby keys spread over the table.
struct Fnv(u64);

impl Fnv {
    fn new(seed: u64) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Token units per request (tokens are kept in 1/1024 of a request).
const UNIT: u64 = 1024;

/// A bucket's state word: tokens (in 1/1024) in the high 32 bits, the time of the last
/// refill (milliseconds, wrapping every 49.7 days) in the low 32.
fn pack(tokens: u64, ms: u32) -> u64 {
    (tokens.min(u64::from(u32::MAX)) << 32) | u64::from(ms)
}

fn unpack(w: u64) -> (u64, u32) {
    (w >> 32, w as u32)
}

/// The state after taking one request at `now_ms` from a bucket in state `w`, and whether it
/// was allowed. The refill time is advanced only by the milliseconds that made whole token
/// units, so frequent requests lose no refill to rounding.
fn step(w: u64, limit: &RateLimit, now_ms: u32) -> (u64, bool) {
    let cap = u64::from(limit.burst) * UNIT;
    let (tokens, last) = unpack(w);
    // A clock a moment behind another child's (a wrapping difference past half the range)
    // refills nothing.
    let diff = now_ms.wrapping_sub(last);
    let elapsed = if diff > u32::MAX / 2 {
        0
    } else {
        u64::from(diff)
    };
    let num = u64::from(limit.requests) * UNIT;
    let den = u64::from(limit.seconds) * 1000;
    let refill = elapsed * num / den;
    let (tokens, stamp) = if tokens + refill >= cap {
        (cap, now_ms)
    } else {
        let used = (refill * den / num) as u32;
        (tokens + refill, last.wrapping_add(used))
    };
    if tokens >= UNIT {
        (pack(tokens - UNIT, stamp), true)
    } else {
        (pack(tokens, stamp), false)
    }
}

/// What [`Buckets::take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The request is within the limit.
    pub allowed: bool,
    /// A live bucket of another key was evicted to make room (the table is too small).
    pub evicted: bool,
}

/// Slots probed per key.
const PROBE: usize = 8;

/// Token buckets in a table of atomic words (pairs: key, state), shared by every child.
#[derive(Debug, Clone, Copy)]
pub struct Buckets<'a> {
    words: &'a [AtomicU64],
}

impl<'a> Buckets<'a> {
    /// A table over `words` (an even number; a trailing odd word is unused).
    pub fn new(words: &'a [AtomicU64]) -> Buckets<'a> {
        Buckets { words }
    }

    /// Slots in the table.
    pub fn slots(&self) -> usize {
        self.words.len() / 2
    }

    /// Takes one request from `key`'s bucket at `now_ms` (any monotonic-enough millisecond
    /// clock shared by the children, e.g. wall time). A new key starts with a full bucket.
    pub fn take(&self, key: Key, limit: &RateLimit, now_ms: u64) -> Taken {
        let now = now_ms as u32;
        let n = self.slots();
        if n == 0 {
            return Taken {
                allowed: true,
                evicted: false,
            };
        }
        let start = (key.0 % n as u64) as usize;
        let mut stalest: Option<(usize, u32)> = None;
        for i in 0..PROBE.min(n) {
            let slot = (start + i) % n;
            let (k, s) = (&self.words[2 * slot], &self.words[2 * slot + 1]);
            let mut current = k.load(Ordering::Acquire);
            if current == 0 {
                // Claim a free slot: full bucket.
                match k.compare_exchange(0, key.0, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        s.store(pack(u64::from(limit.burst) * UNIT, now), Ordering::Release);
                        current = key.0;
                    }
                    Err(other) => current = other,
                }
            }
            if current == key.0 {
                return Taken {
                    allowed: self.update(s, limit, now),
                    evicted: false,
                };
            }
            let age = now.wrapping_sub(unpack(s.load(Ordering::Relaxed)).1);
            if stalest.is_none_or(|(_, a)| age > a) {
                stalest = Some((slot, age));
            }
        }
        // No slot: the stalest bucket of the probe makes room.
        let (slot, _) = stalest.unwrap_or((start, 0));
        self.words[2 * slot].store(key.0, Ordering::Release);
        self.words[2 * slot + 1].store(pack(u64::from(limit.burst) * UNIT, now), Ordering::Release);
        Taken {
            allowed: self.update(&self.words[2 * slot + 1], limit, now),
            evicted: true,
        }
    }

    fn update(&self, s: &AtomicU64, limit: &RateLimit, now: u32) -> bool {
        let mut w = s.load(Ordering::Acquire);
        loop {
            let (next, allowed) = step(w, limit, now);
            match s.compare_exchange_weak(w, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return allowed,
                Err(actual) => w = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize) -> Vec<AtomicU64> {
        (0..2 * n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn directives_parse_and_errors_name_the_directive() {
        assert_eq!(parse_mode("count").unwrap(), Mode::Count);
        assert_eq!(parse_mode("Enforce").unwrap(), Mode::Enforce);
        assert!(parse_mode("maybe").unwrap_err().contains("JA4Mitigation"));
        let l = parse_rate_limit("ip+ja4 100/60 burst=20 block").unwrap();
        assert_eq!(
            l,
            RateLimit {
                by: By::IpJa4,
                requests: 100,
                seconds: 60,
                burst: 20,
                challenge: false,
            }
        );
        assert_eq!(parse_rate_limit("ja4 5/1 block").unwrap().burst, 5);
        assert!(parse_rate_limit("ja4 5/1 challenge").unwrap().challenge);
        for bad in [
            "",
            "ja4",
            "asn 5/1 block",
            "ja4 5 block",
            "ja4 0/1 block",
            "ja4 5/0 block",
            "ja4 5/1",
            "ja4 5/1 burst=0 block",
            "ja4 5/1 block extra",
            "ja4 5/1 tarpit",
        ] {
            let e = parse_rate_limit(bad).unwrap_err();
            assert!(e.contains("JA4RateLimit"), "{bad}: {e}");
        }
        let n = parse_net("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(parse_net("2001:db8::/32")
            .unwrap()
            .contains("2001:db8::1".parse().unwrap()));
        assert!(parse_net("127.0.0.1")
            .unwrap()
            .contains("127.0.0.1".parse().unwrap()));
        assert!(!parse_net("127.0.0.1")
            .unwrap()
            .contains("127.0.0.2".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x"] {
            assert!(parse_net(bad).unwrap_err().contains("JA4Exempt"), "{bad}");
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let words = table(64);
        let t = Buckets::new(&words);
        let l = parse_rate_limit("ip 10/10 burst=3 block").unwrap();
        let k = Key::of(&l, 0, "10.0.0.1".parse().unwrap(), b"");
        let t0 = 5_000_000;
        let got: Vec<bool> = (0..5).map(|_| t.take(k, &l, t0).allowed).collect();
        assert_eq!(got, [true, true, true, false, false]);
        // One request per second comes back.
        assert!(!t.take(k, &l, t0 + 999).allowed);
        assert!(t.take(k, &l, t0 + 1_000).allowed);
        assert!(!t.take(k, &l, t0 + 1_001).allowed);
        // A long pause refills to the burst, not beyond.
        let later = t0 + 3_600_000;
        let got: Vec<bool> = (0..4).map(|_| t.take(k, &l, later).allowed).collect();
        assert_eq!(got, [true, true, true, false]);
        // Another key has its own bucket; a clock a moment behind refills nothing.
        let other = Key::of(&l, 0, "10.0.0.2".parse().unwrap(), b"");
        assert!(t.take(other, &l, later - 5).allowed);
        // Across the 32-bit millisecond wrap.
        let wrap = (1u64 << 32) - 500;
        let w = Key::of(&l, 0, "10.0.0.3".parse().unwrap(), b"");
        for _ in 0..3 {
            assert!(t.take(w, &l, wrap).allowed);
        }
        assert!(!t.take(w, &l, wrap).allowed);
        assert!(t.take(w, &l, wrap + 1_000).allowed);
    }

    #[test]
    fn keys_follow_what_the_limit_counts_by() {
        let ip = "10.0.0.1".parse().unwrap();
        let ip2 = "10.0.0.2".parse().unwrap();
        let by_ja4 = parse_rate_limit("ja4 1/1 block").unwrap();
        assert_eq!(
            Key::of(&by_ja4, 0, ip, b"a"),
            Key::of(&by_ja4, 0, ip2, b"a")
        );
        assert_ne!(Key::of(&by_ja4, 0, ip, b"a"), Key::of(&by_ja4, 0, ip, b"b"));
        // Two limits on the same thing keep separate buckets.
        assert_ne!(Key::of(&by_ja4, 0, ip, b"a"), Key::of(&by_ja4, 1, ip, b"a"));
        let by_ip = parse_rate_limit("ip 1/1 block").unwrap();
        assert_eq!(Key::of(&by_ip, 0, ip, b"a"), Key::of(&by_ip, 0, ip, b"b"));
        let both = parse_rate_limit("ip+ja4 1/1 block").unwrap();
        assert_ne!(Key::of(&both, 0, ip, b"a"), Key::of(&both, 0, ip2, b"a"));
    }

    #[test]
    fn a_full_table_evicts_the_stalest_bucket_and_never_refuses() {
        let words = table(8);
        let t = Buckets::new(&words);
        let l = parse_rate_limit("ip 1/60 block").unwrap();
        for i in 0..8u8 {
            let k = Key::of(&l, 0, IpAddr::from([10, 0, 0, i]), b"");
            let r = t.take(k, &l, 1_000 + u64::from(i));
            assert!(r.allowed && !r.evicted);
        }
        let k = Key::of(&l, 0, "10.0.1.1".parse().unwrap(), b"");
        let r = t.take(k, &l, 2_000);
        assert!(r.allowed && r.evicted);
        // The first (stalest) address lost its bucket and starts full again.
        let first = Key::of(&l, 0, "10.0.0.0".parse().unwrap(), b"");
        assert!(t.take(first, &l, 2_001).allowed);
        assert!(Buckets::new(&[]).take(k, &l, 0).allowed);
    }

    #[test]
    fn threads_share_one_bucket_exactly() {
        let words = table(1024);
        let t = Buckets::new(&words);
        let l = parse_rate_limit("ja4 1000/3600 block").unwrap();
        let k = Key::of(&l, 0, "10.0.0.1".parse().unwrap(), b"t13d");
        let allowed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..500 {
                        if t.take(k, &l, 10_000).allowed {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.load(Ordering::Relaxed), 1000);
    }
}
