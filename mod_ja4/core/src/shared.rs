//! The connection table the capture thread shares with httpd's children.
//!
//! Owns: the layout of one entry (what the capture saw of a connection: SYN facts key, JA4,
//! JA4T, JA4TS, JA4S, JA4L), placement by hashing the client address (bounded linear probing,
//! oldest entry replaced), and a seqlock per entry so readers in other processes never see a
//! half-written entry. It works on a slice of `AtomicU64` words that the module maps as shared
//! memory before children fork; here, tests back it with a `Vec`.
//! Never: blocks, allocates on the write path, or trusts what it reads (a torn or foreign entry
//! is simply not returned).
//!
//! Single writer (the capture thread), many readers. Readers may set the `claimed` flag with an
//! atomic OR, outside the seqlock.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

/// Words (u64) per entry.
pub const ENTRY_WORDS: usize = 48;
/// Slots probed from the home slot.
pub const PROBE: usize = 8;
const STR_WORDS: usize = 8; // 64-byte strings

// Word offsets inside an entry.
const W_SEQ: usize = 0;
const W_IP_HI: usize = 1;
const W_IP_LO: usize = 2;
const W_PORT_ISN: usize = 3; // port << 32 | isn
const W_SYN_TS: usize = 4;
const W_FLAGS: usize = 5; // flags | ttls | latencies packed
const W_LAT: usize = 6; // ja4l client µs << 32 | server µs
const W_CLAIM: usize = 7; // readers OR in claim bits
const W_JA4: usize = 8; // 5 words (36 bytes)
const W_JA4T: usize = 13;
const W_JA4TS: usize = W_JA4T + STR_WORDS;
const W_JA4S: usize = W_JA4TS + STR_WORDS;
const W_END: usize = W_JA4S + STR_WORDS;
const _: () = assert!(W_END <= ENTRY_WORDS);

/// Flag bits of an entry (`Entry::flags`): which of its fields are valid.
pub const HAS_SYN: u64 = 1;
/// The server's SYN-ACK was seen (JA4TS valid).
pub const HAS_SYNACK: u64 = 2;
/// The client's first ACK was seen (JA4L valid).
pub const HAS_ACK: u64 = 4;
/// The ClientHello was parsed (JA4 valid).
pub const HAS_HELLO: u64 = 8;
/// The ServerHello was parsed (JA4S valid).
pub const HAS_SERVER_HELLO: u64 = 16;
/// The connection ended (FIN or RST).
pub const CLOSED: u64 = 32;

/// Identity of a connection: client address, port and the ISN of its SYN (exact across port
/// reuse; the saved SYN of the accepted socket carries the same ISN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// Client address.
    pub ip: IpAddr,
    /// Client port.
    pub port: u16,
    /// Initial sequence number of the client's SYN.
    pub isn: u32,
}

/// What the capture knows about one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// Capture time of the SYN, microseconds.
    pub syn_ts_us: u64,
    /// `HAS_*` / [`CLOSED`] bits: which fields are valid.
    pub flags: u64,
    /// TTL of the client's packets at the capture point.
    pub client_ttl: u8,
    /// TTL of the server's SYN-ACK at the capture point.
    pub server_ttl: u8,
    /// JA4L client latency, microseconds.
    pub ja4l_client_us: u32,
    /// JA4L server latency, microseconds.
    pub ja4l_server_us: u32,
    /// JA4 (empty until [`HAS_HELLO`]).
    pub ja4: String,
    /// JA4T of the SYN.
    pub ja4t: String,
    /// JA4TS (empty until [`HAS_SYNACK`]).
    pub ja4ts: String,
    /// JA4S (empty until [`HAS_SERVER_HELLO`]).
    pub ja4s: String,
}

impl Entry {
    /// JA4L client half, once the client's ACK was seen.
    pub fn ja4l_c(&self) -> Option<String> {
        (self.flags & HAS_ACK != 0).then(|| format!("{}_{}", self.ja4l_client_us, self.client_ttl))
    }
    /// JA4L server half, once the client's ACK was seen.
    pub fn ja4l_s(&self) -> Option<String> {
        (self.flags & HAS_ACK != 0).then(|| format!("{}_{}", self.ja4l_server_us, self.server_ttl))
    }
}

/// A view of the shared table.
pub struct ConnTable<'a> {
    words: &'a [AtomicU64],
    slots: usize,
}

fn ip_words(ip: IpAddr) -> (u64, u64) {
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let o = v6.octets();
    (
        u64::from_be_bytes(o[..8].try_into().unwrap_or([0; 8])),
        u64::from_be_bytes(o[8..].try_into().unwrap_or([0; 8])),
    )
}

fn words_ip(hi: u64, lo: u64) -> IpAddr {
    let mut o = [0u8; 16];
    o[..8].copy_from_slice(&hi.to_be_bytes());
    o[8..].copy_from_slice(&lo.to_be_bytes());
    let v6 = Ipv6Addr::from(o);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

fn home(key: &ConnKey, slots: usize) -> usize {
    let (hi, lo) = ip_words(key.ip);
    // FxHash-style mixing: cheap and good enough for addresses an attacker cannot steer into
    // more than PROBE collisions (bounded probing, oldest replaced).
    let mut h = hi.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ lo;
    h = (h ^ (u64::from(key.port) << 17) ^ u64::from(key.isn)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (h ^ (h >> 31)) as usize % slots
}

fn put_str(w: &[AtomicU64], at: usize, n: usize, s: &str) {
    let b = s.as_bytes();
    for i in 0..n {
        let mut chunk = [0u8; 8];
        let lo = i * 8;
        if lo < b.len() {
            let hi = (lo + 8).min(b.len());
            chunk[..hi - lo].copy_from_slice(&b[lo..hi]);
        }
        w[at + i].store(u64::from_le_bytes(chunk), Ordering::Relaxed);
    }
}

fn get_str(w: &[AtomicU64], at: usize, n: usize) -> String {
    let mut b = Vec::with_capacity(n * 8);
    for i in 0..n {
        b.extend_from_slice(&w[at + i].load(Ordering::Relaxed).to_le_bytes());
    }
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    b.truncate(end);
    String::from_utf8(b).unwrap_or_default()
}

impl<'a> ConnTable<'a> {
    /// A table over `words` (a whole number of entries).
    pub fn new(words: &'a [AtomicU64]) -> Self {
        ConnTable {
            words,
            slots: words.len() / ENTRY_WORDS,
        }
    }

    /// Words needed for `entries` entries.
    pub fn words_for(entries: usize) -> usize {
        entries * ENTRY_WORDS
    }

    /// Entries the table holds.
    pub fn slots(&self) -> usize {
        self.slots
    }

    fn entry(&self, slot: usize) -> &'a [AtomicU64] {
        &self.words[slot * ENTRY_WORDS..(slot + 1) * ENTRY_WORDS]
    }

    fn matches(w: &[AtomicU64], key: &ConnKey) -> bool {
        let (hi, lo) = ip_words(key.ip);
        w[W_IP_HI].load(Ordering::Relaxed) == hi
            && w[W_IP_LO].load(Ordering::Relaxed) == lo
            && w[W_PORT_ISN].load(Ordering::Relaxed)
                == (u64::from(key.port) << 32 | u64::from(key.isn))
    }

    /// Writes (or overwrites) the entry of `key`. Single writer only. Returns whether an entry
    /// of another live connection had to be replaced.
    pub fn publish(&self, key: &ConnKey, e: &Entry) -> bool {
        if self.slots == 0 {
            return false;
        }
        let start = home(key, self.slots);
        let mut target = None;
        let mut oldest = (u64::MAX, start);
        for i in 0..PROBE.min(self.slots) {
            let slot = (start + i) % self.slots;
            let w = self.entry(slot);
            if Self::matches(w, key) {
                target = Some(slot);
                break;
            }
            let ts = w[W_SYN_TS].load(Ordering::Relaxed);
            if ts == 0 && target.is_none() {
                target = Some(slot);
            }
            if ts < oldest.0 {
                oldest = (ts, slot);
            }
        }
        let (slot, replaced) = match target {
            Some(s) => (s, false),
            None => (oldest.1, true),
        };
        let w = self.entry(slot);
        let seq = w[W_SEQ].load(Ordering::Relaxed);
        w[W_SEQ].store(seq | 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        let (hi, lo) = ip_words(key.ip);
        if !Self::matches(w, key) {
            w[W_CLAIM].store(0, Ordering::Relaxed);
        }
        w[W_IP_HI].store(hi, Ordering::Relaxed);
        w[W_IP_LO].store(lo, Ordering::Relaxed);
        w[W_PORT_ISN].store(
            u64::from(key.port) << 32 | u64::from(key.isn),
            Ordering::Relaxed,
        );
        w[W_SYN_TS].store(e.syn_ts_us.max(1), Ordering::Relaxed);
        w[W_FLAGS].store(
            e.flags | u64::from(e.client_ttl) << 32 | u64::from(e.server_ttl) << 40,
            Ordering::Relaxed,
        );
        w[W_LAT].store(
            u64::from(e.ja4l_client_us) << 32 | u64::from(e.ja4l_server_us),
            Ordering::Relaxed,
        );
        put_str(w, W_JA4, 5, &e.ja4);
        put_str(w, W_JA4T, STR_WORDS, &e.ja4t);
        put_str(w, W_JA4TS, STR_WORDS, &e.ja4ts);
        put_str(w, W_JA4S, STR_WORDS, &e.ja4s);
        std::sync::atomic::fence(Ordering::Release);
        w[W_SEQ].store((seq | 1).wrapping_add(1), Ordering::Release);
        replaced
    }

    /// Reads the entry of `key`, if the capture has one and it is not being written.
    pub fn lookup(&self, key: &ConnKey) -> Option<Entry> {
        if self.slots == 0 {
            return None;
        }
        let start = home(key, self.slots);
        for i in 0..PROBE.min(self.slots) {
            let w = self.entry((start + i) % self.slots);
            for _ in 0..4 {
                let s1 = w[W_SEQ].load(Ordering::Acquire);
                if s1 & 1 != 0 {
                    std::hint::spin_loop();
                    continue;
                }
                if !Self::matches(w, key) {
                    break;
                }
                let flags = w[W_FLAGS].load(Ordering::Relaxed);
                let lat = w[W_LAT].load(Ordering::Relaxed);
                let e = Entry {
                    syn_ts_us: w[W_SYN_TS].load(Ordering::Relaxed),
                    flags: flags & 0xffff_ffff,
                    client_ttl: (flags >> 32) as u8,
                    server_ttl: (flags >> 40) as u8,
                    ja4l_client_us: (lat >> 32) as u32,
                    ja4l_server_us: lat as u32,
                    ja4: get_str(w, W_JA4, 5),
                    ja4t: get_str(w, W_JA4T, STR_WORDS),
                    ja4ts: get_str(w, W_JA4TS, STR_WORDS),
                    ja4s: get_str(w, W_JA4S, STR_WORDS),
                };
                std::sync::atomic::fence(Ordering::Acquire);
                if w[W_SEQ].load(Ordering::Relaxed) == s1 && Self::matches(w, key) {
                    return Some(e);
                }
            }
        }
        None
    }

    /// Marks `key` as handled by a child (so the capture does not report it as an orphan).
    pub fn claim(&self, key: &ConnKey) -> bool {
        if self.slots == 0 {
            return false;
        }
        let start = home(key, self.slots);
        for i in 0..PROBE.min(self.slots) {
            let w = self.entry((start + i) % self.slots);
            if Self::matches(w, key) {
                w[W_CLAIM].fetch_or(1, Ordering::Relaxed);
                return true;
            }
        }
        false
    }

    /// Whether a child claimed `key`.
    pub fn is_claimed(&self, key: &ConnKey) -> bool {
        let start = home(key, self.slots.max(1));
        (0..PROBE.min(self.slots)).any(|i| {
            let w = self.entry((start + i) % self.slots);
            Self::matches(w, key) && w[W_CLAIM].load(Ordering::Relaxed) != 0
        })
    }

    /// Slots in use.
    pub fn occupancy(&self) -> usize {
        (0..self.slots)
            .filter(|s| self.entry(*s)[W_SYN_TS].load(Ordering::Relaxed) != 0)
            .count()
    }

    /// The key stored in `slot` (diagnostics and tests).
    pub fn key_at(&self, slot: usize) -> Option<ConnKey> {
        let w = self.entry(slot);
        (w[W_SYN_TS].load(Ordering::Relaxed) != 0).then(|| {
            let pi = w[W_PORT_ISN].load(Ordering::Relaxed);
            ConnKey {
                ip: words_ip(
                    w[W_IP_HI].load(Ordering::Relaxed),
                    w[W_IP_LO].load(Ordering::Relaxed),
                ),
                port: (pi >> 32) as u16,
                isn: pi as u32,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: usize) -> Vec<AtomicU64> {
        (0..ConnTable::words_for(entries))
            .map(|_| AtomicU64::new(0))
            .collect()
    }

    fn key(i: u32) -> ConnKey {
        ConnKey {
            ip: format!("10.0.{}.{}", i / 250, i % 250 + 1).parse().unwrap(),
            port: 40_000 + (i % 1000) as u16,
            isn: i.wrapping_mul(2_654_435_761),
        }
    }

    fn entry(i: u32) -> Entry {
        Entry {
            syn_ts_us: 1_000 + u64::from(i),
            flags: HAS_SYN | HAS_SYNACK | HAS_ACK | HAS_HELLO,
            client_ttl: 64,
            server_ttl: 57,
            ja4l_client_us: 25 + i,
            ja4l_server_us: 50,
            ja4: "t13d1516h2_8daaf6152771_e5627efa2ab1".into(),
            ja4t: format!("64240_2-1-3-1-1-4_1460_{}", i % 15),
            ja4ts: "65535_2-1-1-4-1-3_1412_8".into(),
            ja4s: "t130200_1301_234ea6891581".into(),
        }
    }

    #[test]
    fn publish_then_lookup_ipv4_and_ipv6() {
        let w = table(64);
        let t = ConnTable::new(&w);
        let k6 = ConnKey {
            ip: "2001:db8::7".parse().unwrap(),
            port: 1,
            isn: 9,
        };
        assert!(!t.publish(&key(1), &entry(1)));
        assert!(!t.publish(&k6, &entry(2)));
        assert_eq!(t.lookup(&key(1)), Some(entry(1)));
        assert_eq!(t.lookup(&k6), Some(entry(2)));
        assert_eq!(
            t.lookup(&ConnKey { isn: 8, ..k6 }),
            None,
            "another ISN is another connection"
        );
        assert_eq!(
            t.lookup(&key(1)).unwrap().ja4l_c().as_deref(),
            Some("26_64")
        );
        assert_eq!(t.occupancy(), 2);
        assert_eq!(
            t.key_at((0..64).find(|s| t.key_at(*s) == Some(k6)).unwrap()),
            Some(k6)
        );
        // Updates keep the slot.
        let mut e = entry(1);
        e.ja4s = "t120400_c030_4e8089b08790".into();
        t.publish(&key(1), &e);
        assert_eq!(t.lookup(&key(1)).unwrap().ja4s, "t120400_c030_4e8089b08790");
        assert_eq!(t.occupancy(), 2);
    }

    #[test]
    fn full_table_replaces_oldest_and_stays_bounded() {
        let w = table(16);
        let t = ConnTable::new(&w);
        let mut replaced = 0;
        for i in 0..200 {
            replaced += usize::from(t.publish(&key(i), &entry(i)));
        }
        assert!(replaced >= 184, "{replaced}");
        assert_eq!(t.occupancy(), 16);
        // The newest entries are the ones kept.
        assert!(t.lookup(&key(199)).is_some());
        assert!(t.lookup(&key(0)).is_none());
    }

    #[test]
    fn claims_are_per_connection() {
        let w = table(8);
        let t = ConnTable::new(&w);
        t.publish(&key(3), &entry(3));
        assert!(!t.is_claimed(&key(3)));
        assert!(t.claim(&key(3)));
        assert!(t.is_claimed(&key(3)));
        assert!(!t.claim(&key(4)));
        // A new connection in the same slot starts unclaimed.
        let w1 = table(1);
        let t1 = ConnTable::new(&w1);
        t1.publish(&key(1), &entry(1));
        t1.claim(&key(1));
        t1.publish(&key(2), &entry(2));
        assert!(!t1.is_claimed(&key(2)));
    }

    #[test]
    fn readers_never_see_torn_entries() {
        let w = table(4);
        let t = ConnTable::new(&w);
        let k = key(7);
        t.publish(&k, &entry(0));
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..20_000u32 {
                    t.publish(&k, &entry(i));
                }
            });
            for _ in 0..20_000 {
                if let Some(e) = t.lookup(&k) {
                    // Every field of one entry comes from the same write.
                    let i = (e.syn_ts_us - 1_000) as u32;
                    assert_eq!(e, entry(i));
                }
            }
        });
    }

    #[test]
    fn zero_sized_table_is_inert() {
        let t = ConnTable::new(&[]);
        assert!(!t.publish(&key(1), &entry(1)));
        assert_eq!(t.lookup(&key(1)), None);
        assert!(!t.claim(&key(1)));
    }
}
