//! The decisions table every httpd child reads without a lock: the snapshot's entries copied
//! into a fixed block of atomic words (in the module, anonymous shared memory the parent maps
//! with `JA4DecisionEntries` entries; in tests, any slice).
//!
//! Owns: the block's layout — a header, then two *halves*, each a sequence word, the
//! snapshot's publication time and an open-addressed table of 8-word slots — loading a
//! snapshot into the half that is not live and flipping to it ([`Table::load`], by whoever
//! holds the writer's word, [`Table::try_lock`]), and the lookup a request makes
//! ([`Table::lookup`]): a seqlock read of the live half, retried when a writer went over it.
//! Never: blocks or allocates on lookup (bounded probes, at most three tries, then a miss:
//! fail-open), trusts a snapshot beyond [`super::Snapshot::parse`]'s checks, or lets a full
//! table loop (entries beyond 7/8 of its slots are left out and counted).
//!
//! ```
//! use std::sync::atomic::AtomicU64;
//! use ja4_core::decisions::{encode, shared::{Keys, Table}, Action, Entry, Snapshot, Verdict};
//! let words: Vec<AtomicU64> = (0..Table::words(16)).map(|_| AtomicU64::new(0)).collect();
//! let t = Table::new(&words, 16).unwrap();
//! let e = Entry { ip: Some("203.0.113.9".parse().unwrap()), prefix: None, family: None, verdict: Verdict::Bot,
//!     threat: 4, bot_score: 1, action: Action::Block, reason: "list:deny".into(), expires_ms: 0 };
//! let bytes = encode(&[e], 1_000);
//! assert!(t.try_lock(7, 0));
//! t.load(&Snapshot::parse(&bytes).unwrap(), 42);
//! t.unlock(7);
//! let k = Keys::new("203.0.113.9".parse().unwrap(), b"");
//! let d = t.lookup(&k, 2_000).unwrap();
//! assert_eq!((d.verdict, d.action, d.reason()), (Verdict::Bot, Action::Block, &b"list:deny"[..]));
//! assert_eq!((t.published_ms(), t.stamp()), (Some(1_000), 42));
//! ```

use std::net::IpAddr;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use super::{
    family_hash, key_hash, lengths_of, masked, net_key, v6, Action, Snapshot, Verdict, NET_LENGTHS,
    REASON, SLOT,
};

/// Header words: the live half (0 or 1), the writer's word (its owner, 0 when free), when it
/// was taken (Unix s), and the stamp of the file loaded last.
const H_ACTIVE: usize = 0;
const H_LOCK: usize = 1;
const H_LOCKED_AT: usize = 2;
const H_STAMP: usize = 3;
const HEADER_WORDS: usize = 4;
/// Each half: its sequence (odd while a writer is in it), the snapshot's publication time
/// (Unix ms, 0 = none loaded), entry count and network prefix lengths (the snapshot header's
/// eight bytes), then the slots.
const HALF_META: usize = 4;
const SLOT_WORDS: usize = SLOT / 8;
/// Seconds after which a writer's word is taken to belong to a dead writer.
const LOCK_STALE_S: u64 = 30;

/// The lookup keys of one client: computed once per connection, used by every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    ip: [u64; 2],
    fam: u64,
    /// Hashes of (address, family), (address, any), (any, family).
    hash: [u64; 3],
}

impl Keys {
    /// The keys of a client at `ip` on a connection with JA4 `ja4` (empty without TLS).
    pub fn new(ip: IpAddr, ja4: &[u8]) -> Keys {
        let addr = v6(ip);
        let fam = crate::stack::family_key(ja4).map_or(0, |k| family_hash(&k));
        Keys {
            ip: words_of(&addr),
            fam,
            hash: [
                key_hash(&addr, fam),
                key_hash(&addr, 0),
                key_hash(&[0; 16], fam),
            ],
        }
    }
}

fn words_of(ip: &[u8; 16]) -> [u64; 2] {
    let (a, b) = ip.split_at(8);
    [
        u64::from_le_bytes(a.try_into().unwrap_or_default()),
        u64::from_le_bytes(b.try_into().unwrap_or_default()),
    ]
}

fn bytes_of(w: [u64; 2]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&w[0].to_le_bytes());
    out[8..].copy_from_slice(&w[1].to_le_bytes());
    out
}

const _: () = assert!(NET_LENGTHS == 8, "the lengths fill one word");

/// A decision found in the table (a copy: the table may change after the lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// Threat, 0–4.
    pub threat: u8,
    /// Bot score, 1–99 (0: unknown).
    pub bot_score: u8,
    /// What the entry asks for.
    pub action: Action,
    reason: [u8; REASON],
    reason_len: u8,
}

impl Decision {
    /// The reason code (ASCII, at most 24 bytes).
    pub fn reason(&self) -> &[u8] {
        &self.reason[..usize::from(self.reason_len).min(REASON)]
    }
}

/// What [`Table::load`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Entries now in the table.
    pub entries: u32,
    /// Entries left out: the table was full (raise `JA4DecisionEntries`).
    pub dropped: u32,
}

/// The table over a block of words.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    w: &'a [AtomicU64],
    slots: usize,
}

impl<'a> Table<'a> {
    fn slots(entries: u32) -> usize {
        (2 * entries as usize).next_power_of_two().max(8)
    }

    /// Words a table of `entries` entries needs.
    pub fn words(entries: u32) -> usize {
        HEADER_WORDS + 2 * (HALF_META + Self::slots(entries) * SLOT_WORDS)
    }

    /// The table of `entries` entries over `w` (at least [`Table::words`] long).
    pub fn new(w: &'a [AtomicU64], entries: u32) -> Option<Table<'a>> {
        (w.len() >= Self::words(entries)).then(|| Table {
            w,
            slots: Self::slots(entries),
        })
    }

    fn half(&self, h: usize) -> usize {
        HEADER_WORDS + h * (HALF_META + self.slots * SLOT_WORDS)
    }

    /// Takes the writer's word for `owner` (non-zero, e.g. the process id) at `now_s`;
    /// a word held longer than 30 s belongs to a writer that died and is taken over.
    pub fn try_lock(&self, owner: u64, now_s: u64) -> bool {
        let lock = &self.w[H_LOCK];
        let held = lock.load(Ordering::Acquire);
        let free = held == 0
            || now_s.saturating_sub(self.w[H_LOCKED_AT].load(Ordering::Relaxed)) > LOCK_STALE_S;
        if free
            && lock
                .compare_exchange(held, owner.max(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.w[H_LOCKED_AT].store(now_s, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Gives the writer's word back (when `owner` holds it).
    pub fn unlock(&self, owner: u64) {
        let _ =
            self.w[H_LOCK].compare_exchange(owner.max(1), 0, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// The stamp given with the snapshot loaded last (0: none).
    pub fn stamp(&self) -> u64 {
        self.w[H_STAMP].load(Ordering::Acquire)
    }

    /// Records `stamp` as seen without loading it (a file that is not a snapshot: the live
    /// half stays, and the file is not read again until it changes). The caller holds the
    /// writer's word.
    pub fn set_stamp(&self, stamp: u64) {
        self.w[H_STAMP].store(stamp, Ordering::Release);
    }

    /// When the live snapshot was published (Unix ms), if one was loaded.
    pub fn published_ms(&self) -> Option<i64> {
        let h = self.half(self.w[H_ACTIVE].load(Ordering::Acquire) as usize & 1);
        match self.w[h + 1].load(Ordering::Acquire) as i64 {
            0 => None,
            t => Some(t),
        }
    }

    /// Loads `snap` into the half that is not live and makes it live; `stamp` names the file
    /// it came from ([`Table::stamp`]). The caller holds the writer's word.
    pub fn load(&self, snap: &Snapshot<'_>, stamp: u64) -> Loaded {
        let active = self.w[H_ACTIVE].load(Ordering::Acquire) as usize & 1;
        let h = 1 - active;
        let base = self.half(h);
        let seq = &self.w[base];
        // Odd: readers that were sent here by an old `active` retry or miss.
        seq.fetch_add(1, Ordering::AcqRel);
        fence(Ordering::Release);
        let slots = &self.w[base + HALF_META..base + HALF_META + self.slots * SLOT_WORDS];
        for word in slots {
            word.store(0, Ordering::Relaxed);
        }
        let (mut entries, mut dropped) = (0u32, 0u32);
        let limit = self.slots - self.slots / 8;
        for s in snap.used_slots() {
            if entries as usize >= limit {
                dropped += 1;
                continue;
            }
            let ip: [u8; 16] = s[..16].try_into().unwrap_or_default();
            let fam = u64::from_le_bytes(s[16..24].try_into().unwrap_or_default());
            let mut i = (key_hash(&ip, fam) as usize) & (self.slots - 1);
            loop {
                let at = i * SLOT_WORDS;
                if slots[at + 3].load(Ordering::Relaxed) & 0xff == 0 {
                    for (k, chunk) in s.chunks_exact(8).enumerate() {
                        let v = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
                        slots[at + k].store(v, Ordering::Relaxed);
                    }
                    entries += 1;
                    break;
                }
                i = (i + 1) & (self.slots - 1);
            }
        }
        self.w[base + 1].store(snap.published_ms.max(1) as u64, Ordering::Relaxed);
        self.w[base + 2].store(u64::from(entries), Ordering::Relaxed);
        self.w[base + 3].store(u64::from_le_bytes(snap.net_lengths), Ordering::Relaxed);
        seq.fetch_add(1, Ordering::AcqRel);
        self.w[H_ACTIVE].store(h as u64, Ordering::Release);
        self.w[H_STAMP].store(stamp, Ordering::Release);
        Loaded { entries, dropped }
    }

    /// The decision for `k` at `now_ms`: the entry for address and family, else for the
    /// address, else for the longest network that holds the address, else for the family.
    /// A read a writer overlapped is retried (at most three
    /// times, then it is a miss).
    pub fn lookup(&self, k: &Keys, now_ms: i64) -> Option<Decision> {
        for _ in 0..3 {
            let h = self.w[H_ACTIVE].load(Ordering::Acquire) as usize & 1;
            let base = self.half(h);
            let seq = &self.w[base];
            let before = seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                continue;
            }
            let lengths = self.w[base + 3].load(Ordering::Relaxed);
            let found = self.find(base + HALF_META, k, lengths, now_ms);
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == before {
                return found;
            }
        }
        None
    }

    fn find(&self, slots_at: usize, k: &Keys, lengths: u64, now_ms: i64) -> Option<Decision> {
        if k.fam != 0 {
            if let Some(d) = self.probe(slots_at, k.ip, k.fam, k.hash[0], now_ms) {
                return Some(d);
            }
        }
        if let Some(d) = self.probe(slots_at, k.ip, 0, k.hash[1], now_ms) {
            return Some(d);
        }
        if lengths != 0 {
            let addr = bytes_of(k.ip);
            for len6 in lengths_of(lengths.to_le_bytes()) {
                let net = masked(&addr, len6);
                let key = net_key(len6);
                let found = self.probe(slots_at, words_of(&net), key, key_hash(&net, key), now_ms);
                if found.is_some() {
                    return found;
                }
            }
        }
        if k.fam != 0 {
            return self.probe(slots_at, [0, 0], k.fam, k.hash[2], now_ms);
        }
        None
    }

    fn probe(&self, at: usize, ip: [u64; 2], fam: u64, hash: u64, now_ms: i64) -> Option<Decision> {
        let mask = self.slots - 1;
        let mut i = hash as usize & mask;
        for _ in 0..self.slots {
            let s = self.w.get(at + i * SLOT_WORDS..at + (i + 1) * SLOT_WORDS)?;
            let flags = s[3].load(Ordering::Relaxed);
            if flags & 0xff == 0 {
                return None;
            }
            if s[0].load(Ordering::Relaxed) == ip[0]
                && s[1].load(Ordering::Relaxed) == ip[1]
                && s[2].load(Ordering::Relaxed) == fam
            {
                let expires = s[4].load(Ordering::Relaxed) as i64;
                if expires != 0 && expires <= now_ms {
                    return None;
                }
                let b = flags.to_le_bytes();
                let mut reason = [0u8; REASON];
                for (k, w) in s[5..8].iter().enumerate() {
                    reason[k * 8..k * 8 + 8]
                        .copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
                }
                return Some(Decision {
                    verdict: Verdict::from_code(b[1])?,
                    threat: b[2],
                    bot_score: b[3],
                    action: Action::from_code(b[4]),
                    reason,
                    reason_len: b[5],
                });
            }
            i = (i + 1) & mask;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encode, Entry};
    use super::*;

    const CHROME: &str = "t13d1516h2_8daaf6152771_02713d6af862";
    const CHROME_RESUMED: &str = "t13d1517h2_8daaf6152771_b6f405a00624";
    const CURL: &str = "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6";

    fn entry(ip: Option<&str>, family: Option<&str>, verdict: Verdict, reason: &str) -> Entry {
        Entry {
            ip: ip.map(|i| i.parse().unwrap()),
            prefix: None,
            family: family.map(crate::stack::ja4_family),
            verdict,
            threat: 2,
            bot_score: 5,
            action: Action::None,
            reason: reason.into(),
            expires_ms: 0,
        }
    }

    fn block(entries: u32) -> Vec<AtomicU64> {
        (0..Table::words(entries))
            .map(|_| AtomicU64::new(0))
            .collect()
    }

    fn loaded<'a>(w: &'a [AtomicU64], entries: u32, e: &[Entry], at: i64) -> (Table<'a>, Loaded) {
        let t = Table::new(w, entries).unwrap();
        assert!(t.try_lock(1, 0));
        let bytes = encode(e, at);
        let l = t.load(&Snapshot::parse(&bytes).unwrap(), at as u64);
        t.unlock(1);
        (t, l)
    }

    #[test]
    fn the_table_answers_as_the_snapshot_does() {
        let mut expiring = entry(Some("10.0.0.3"), None, Verdict::Bot, "soon");
        expiring.expires_ms = 5_000;
        let entries = [
            entry(Some("10.0.0.1"), Some(CHROME), Verdict::Bot, "model"),
            entry(Some("10.0.0.1"), None, Verdict::Suspicious, "addr"),
            entry(None, Some(CURL), Verdict::Bot, "list:deny"),
            entry(Some("::ffff:10.0.0.2"), None, Verdict::Human, "list:allow"),
            expiring,
            Entry {
                prefix: Some(16),
                ..entry(Some("10.0.0.0"), None, Verdict::Suspicious, "net16")
            },
            Entry {
                prefix: Some(24),
                ..entry(Some("10.0.9.0"), None, Verdict::Bot, "net24")
            },
            Entry {
                prefix: Some(32),
                ..entry(Some("2001:db8::"), None, Verdict::Bot, "net32")
            },
        ];
        let w = block(64);
        let (t, l) = loaded(&w, 64, &entries, 1_234);
        assert_eq!(
            l,
            Loaded {
                entries: 8,
                dropped: 0
            }
        );
        let bytes = encode(&entries, 1_234);
        let snap = Snapshot::parse(&bytes).unwrap();
        for (ip, ja4, now) in [
            ("10.0.0.1", CHROME_RESUMED, 1_000),
            ("10.0.0.1", CURL, 1_000),
            ("10.0.0.1", "", 1_000),
            ("10.9.9.9", CURL, 1_000),
            ("10.0.0.2", "", 1_000),
            ("10.9.9.9", CHROME, 1_000),
            ("10.0.0.3", "", 1_000),
            ("10.0.0.3", "", 5_000),
            ("10.0.7.7", CURL, 1_000),
            ("10.0.9.7", CURL, 1_000),
            ("10.1.9.7", CURL, 1_000),
            ("10.1.9.7", "", 1_000),
            ("2001:db8:0:1::1", "", 1_000),
            ("2001:db9::1", "", 1_000),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let want = snap.lookup(ip, ja4.as_bytes(), now);
            let got = t.lookup(&Keys::new(ip, ja4.as_bytes()), now);
            assert_eq!(
                got.map(|d| (d.verdict, d.reason().to_vec())),
                want.map(|f| (f.verdict, f.reason().as_bytes().to_vec())),
                "{ip} {ja4} {now}"
            );
        }
    }

    #[test]
    fn a_new_snapshot_replaces_the_old_and_a_full_table_drops_the_rest() {
        let w = block(8);
        let many: Vec<Entry> = (0..40)
            .map(|i| entry(Some(&format!("10.1.0.{i}")), None, Verdict::Bot, "model"))
            .collect();
        let (t, l) = loaded(&w, 8, &many, 10);
        // 16 slots, filled to 7/8 at most.
        assert_eq!(
            l,
            Loaded {
                entries: 14,
                dropped: 26
            }
        );
        let (t2, l2) = loaded(
            &w,
            8,
            &[entry(Some("10.2.0.1"), None, Verdict::Human, "x")],
            20,
        );
        assert_eq!(l2.entries, 1);
        assert_eq!(t2.published_ms(), Some(20));
        let k = |ip: &str| Keys::new(ip.parse().unwrap(), b"");
        assert!(
            t.lookup(&k("10.1.0.0"), 0).is_none(),
            "the old entries are gone"
        );
        assert_eq!(t.lookup(&k("10.2.0.1"), 0).unwrap().verdict, Verdict::Human);
    }

    #[test]
    fn the_writers_word_is_exclusive_until_given_back_or_stale() {
        let w = block(8);
        let t = Table::new(&w, 8).unwrap();
        assert!(t.try_lock(5, 100));
        assert!(!t.try_lock(6, 110));
        t.unlock(6);
        assert!(!t.try_lock(6, 120), "only the owner gives it back");
        assert!(
            t.try_lock(6, 100 + LOCK_STALE_S + 1),
            "a dead writer's word is taken over"
        );
        t.unlock(6);
        assert!(t.try_lock(5, 200));
        assert!(Table::new(&w[..10], 8).is_none());
    }

    /// Readers on other threads while a writer reloads: every answer is one of the two
    /// snapshots', never a torn mix.
    #[test]
    fn readers_never_see_a_torn_entry() {
        let w = block(64);
        let t = Table::new(&w, 64).unwrap();
        let a = encode(&[entry(Some("10.0.0.1"), None, Verdict::Bot, "first")], 1);
        let b = encode(
            &[entry(Some("10.0.0.1"), None, Verdict::Human, "second")],
            2,
        );
        let (a, b) = (Snapshot::parse(&a).unwrap(), Snapshot::parse(&b).unwrap());
        assert!(t.try_lock(1, 0));
        t.load(&a, 1);
        let k = Keys::new("10.0.0.1".parse().unwrap(), b"");
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(d) = t.lookup(&k, 0) {
                            let pair = (d.verdict, d.reason());
                            assert!(
                                pair == (Verdict::Bot, &b"first"[..])
                                    || pair == (Verdict::Human, &b"second"[..]),
                                "{pair:?}"
                            );
                        }
                    }
                });
            }
            for i in 0..2_000 {
                t.load(if i % 2 == 0 { &b } else { &a }, i);
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
}
