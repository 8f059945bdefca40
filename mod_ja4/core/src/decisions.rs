//! The decisions snapshot: what the sidecar decided about clients (verdict, threat, bot
//! score, action, reason), as a file the sidecar replaces atomically and every httpd child
//! reads when it changes.
//!
//! Owns: the file format (a 32-byte header, then an open-addressed table of 64-byte slots
//! keyed by client address and JA4 family; a network entry is keyed by its masked address and
//! a key word that names its prefix length, and the header lists the (at most eight) lengths
//! in use), [`encode`], [`Snapshot::parse`] and the reference lookup
//! ([`Snapshot::lookup`]: address and family, then address, then the longest network, then
//! family), which [`shared::Table::lookup`] — the module's — answers the same way.
//! Never: trusts the bytes (every length and index is checked; a bad file is an error, never
//! a panic), allocates on lookup, or loops unboundedly (a probe stops at an empty slot or
//! after every slot).
//!
//! ```
//! use ja4_core::decisions::{encode, Action, Entry, Snapshot, Verdict};
//! let e = Entry { ip: Some("203.0.113.9".parse().unwrap()), prefix: None, family: None, verdict: Verdict::Bot,
//!     threat: 4, bot_score: 1, action: Action::Block, reason: "list:deny".into(), expires_ms: 0 };
//! let bytes = encode(&[e], 1_000);
//! let s = Snapshot::parse(&bytes).unwrap();
//! let d = s.lookup("203.0.113.9".parse().unwrap(), b"", 2_000).unwrap();
//! assert_eq!((d.verdict, d.action, d.reason()), (Verdict::Bot, Action::Block, "list:deny"));
//! assert!(s.lookup("203.0.113.10".parse().unwrap(), b"", 2_000).is_none());
//! ```

use std::net::IpAddr;

pub mod shared;

/// First bytes of a snapshot.
pub const MAGIC: [u8; 4] = *b"JA4D";
/// Format version written; others are refused.
pub const VERSION: u16 = 1;
/// Header length.
pub const HEADER: usize = 32;
/// Slot length.
pub const SLOT: usize = 64;
/// Longest reason code kept (ASCII).
pub const REASON: usize = 24;
/// Most entries a snapshot holds.
pub const MAX_ENTRIES: usize = 1 << 22;
/// Most distinct network prefix lengths a snapshot holds (a network of another length is
/// split into networks of a longer one that is held, at most [`MAX_SPLIT`] of them).
pub const NET_LENGTHS: usize = 8;
/// Most networks one list entry is split into.
pub const MAX_SPLIT: usize = 256;

/// What a client is, as the detector says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Behaves like a person.
    Human,
    /// A browser whose every signal is consistent.
    LegitimateBrowser,
    /// A crawler that proved who it is.
    VerifiedBot,
    /// Unusual, not proven a bot.
    Suspicious,
    /// A bot.
    Bot,
}

impl Verdict {
    /// Its name (`JA4_VERDICT`, and the store's).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Human => "human",
            Verdict::LegitimateBrowser => "legitimate_browser",
            Verdict::VerifiedBot => "verified_bot",
            Verdict::Suspicious => "suspicious",
            Verdict::Bot => "bot",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Verdict> {
        Some(match s {
            "human" => Verdict::Human,
            "legitimate_browser" => Verdict::LegitimateBrowser,
            "verified_bot" => Verdict::VerifiedBot,
            "suspicious" => Verdict::Suspicious,
            "bot" => Verdict::Bot,
            _ => return None,
        })
    }

    pub(crate) fn code(self) -> u8 {
        self as u8 + 1
    }

    /// Its name as a C string (for the module's variables).
    pub fn as_cstr(self) -> &'static std::ffi::CStr {
        match self {
            Verdict::Human => c"human",
            Verdict::LegitimateBrowser => c"legitimate_browser",
            Verdict::VerifiedBot => c"verified_bot",
            Verdict::Suspicious => c"suspicious",
            Verdict::Bot => c"bot",
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Verdict> {
        [
            Verdict::Human,
            Verdict::LegitimateBrowser,
            Verdict::VerifiedBot,
            Verdict::Suspicious,
            Verdict::Bot,
        ]
        .get(usize::from(c).checked_sub(1)?)
        .copied()
    }
}

/// What an entry asks the module to do (analysts' lists say it; model verdicts leave it to
/// the module's `JA4Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Whatever `JA4Action` says for the verdict.
    None,
    /// Serve it.
    Allow,
    /// Challenge it.
    Challenge,
    /// Refuse it.
    Block,
    /// Hold it (`JA4TarpitDelay`), then refuse it.
    Tarpit,
}

impl Action {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Allow => "allow",
            Action::Challenge => "challenge",
            Action::Block => "block",
            Action::Tarpit => "tarpit",
        }
    }

    fn from_code(c: u8) -> Action {
        match c {
            1 => Action::Allow,
            2 => Action::Challenge,
            3 => Action::Block,
            4 => Action::Tarpit,
            _ => Action::None,
        }
    }
}

/// One decision to write: for an address (`ip`), a network (`ip` and `prefix`), a JA4
/// family (`family`, see [`crate::stack::ja4_family`]), or an address and a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The client address, or any.
    pub ip: Option<IpAddr>,
    /// With `ip`: the entry covers the network `ip/prefix` (an IPv4 length for an IPv4
    /// address); `None` is the one address. A network entry has no family.
    pub prefix: Option<u8>,
    /// The JA4 family, or any.
    pub family: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// Threat level, 0 (none) to 4 (critical).
    pub threat: u8,
    /// Bot score, 1–99 (0: unknown).
    pub bot_score: u8,
    /// What to do, when the entry says.
    pub action: Action,
    /// A short reason code (`list:deny`, `model`, `rule:automation`), cut to 24 ASCII bytes.
    pub reason: String,
    /// When it stops applying (Unix ms), 0 for never.
    pub expires_ms: i64,
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The key hash of a JA4 family (never 0, which means "any", nor a [`net_key`]).
fn family_hash(family: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in family {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    if h >= net_key(128) {
        h -= 129;
    }
    h.max(1)
}

/// The key word of a network entry whose prefix is `len6` bits of the IPv6(-mapped) address.
fn net_key(len6: u8) -> u64 {
    u64::MAX - u64::from(len6.min(128))
}

/// `ip` with all but its first `len6` bits cleared.
fn masked(ip: &[u8; 16], len6: u8) -> [u8; 16] {
    let mut out = [0u8; 16];
    let len = usize::from(len6.min(128));
    for (i, (o, b)) in out.iter_mut().zip(ip).enumerate() {
        let keep = len.saturating_sub(i * 8).min(8);
        *o = if keep == 0 {
            0
        } else {
            b & (0xffu8 << (8 - keep))
        };
    }
    out
}

/// The prefix lengths (IPv6-mapped bits, longest first) a header lists: byte `i` is a length
/// plus one, 0 for none.
fn lengths_of(header: [u8; NET_LENGTHS]) -> impl Iterator<Item = u8> {
    header.into_iter().filter(|&b| b != 0).map(|b| b - 1)
}

/// The entry's IPv6-mapped address and prefix length (128: one address).
fn net_of(ip: IpAddr, prefix: Option<u8>) -> ([u8; 16], u8) {
    let len6 = match (ip, prefix) {
        (_, None) => 128,
        (IpAddr::V4(_), Some(p)) => 96 + p.min(32),
        (IpAddr::V6(_), Some(p)) => p.min(128),
    };
    (masked(&v6(ip), len6), len6)
}

/// The prefix lengths kept (the most used, at most [`NET_LENGTHS`], longest first) for
/// networks of `lens`.
fn chosen_lengths(lens: impl Iterator<Item = u8>) -> Vec<u8> {
    let mut count = [0usize; 129];
    for l in lens {
        count[usize::from(l.min(128))] += 1;
    }
    let mut used: Vec<u8> = (0..=128u8).filter(|&l| count[usize::from(l)] > 0).collect();
    used.sort_by_key(|&l| {
        (
            std::cmp::Reverse(count[usize::from(l)]),
            std::cmp::Reverse(l),
        )
    });
    used.truncate(NET_LENGTHS);
    used.sort_unstable_by(|a, b| b.cmp(a));
    used
}

/// The keys of a network `net/len6` under the kept lengths `chosen`: itself, or its split
/// into the shortest longer kept length (none when that takes more than [`MAX_SPLIT`]).
fn split(net: [u8; 16], len6: u8, chosen: &[u8]) -> Vec<([u8; 16], u8)> {
    if chosen.contains(&len6) {
        return vec![(net, len6)];
    }
    let Some(&to) = chosen.iter().rev().find(|&&c| c > len6) else {
        return Vec::new();
    };
    let bits = u32::from(to - len6);
    if bits > MAX_SPLIT.trailing_zeros() {
        return Vec::new();
    }
    (0..1u32 << bits)
        .map(|i| {
            let mut a = net;
            for b in 0..bits {
                if i >> (bits - 1 - b) & 1 == 1 {
                    let pos = usize::from(len6) + b as usize;
                    a[pos / 8] |= 0x80 >> (pos % 8);
                }
            }
            (a, to)
        })
        .collect()
}

/// The hash of a key (address, family hash): where its probe starts in any table.
fn key_hash(ip: &[u8; 16], fam: u64) -> u64 {
    let mut h = fam ^ 0x9e37_79b9_7f4a_7c15;
    for &b in ip {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ (h >> 31)
}

fn slot_of(ip: &[u8; 16], fam: u64, slots: usize) -> usize {
    (key_hash(ip, fam) as usize) & (slots - 1)
}

/// The snapshot of `entries` published at `published_ms` (the last entry for a key wins;
/// beyond [`MAX_ENTRIES`] keys are left out).
pub fn encode(entries: &[Entry], published_ms: i64) -> Vec<u8> {
    encode_counted(entries, published_ms).0
}

/// [`encode`], and how many network entries were left out: their prefix length was not one
/// of the [`NET_LENGTHS`] kept and splitting them took more than [`MAX_SPLIT`] networks.
pub fn encode_counted(entries: &[Entry], published_ms: i64) -> (Vec<u8>, usize) {
    let nets = |e: &&Entry| e.prefix.is_some() && e.ip.is_some();
    let chosen = chosen_lengths(
        entries
            .iter()
            .filter(nets)
            .filter_map(|e| e.ip.map(|ip| net_of(ip, e.prefix).1))
            .filter(|&l| l < 128),
    );
    let mut keys: Vec<([u8; 16], u64, &Entry)> = Vec::new();
    let mut dropped = 0;
    for e in entries {
        match (e.ip, e.prefix) {
            (Some(ip), Some(_)) => {
                let (net, len6) = net_of(ip, e.prefix);
                if len6 == 128 {
                    keys.push((net, 0, e));
                    continue;
                }
                let parts = split(net, len6, &chosen);
                dropped += usize::from(parts.is_empty());
                keys.extend(parts.into_iter().map(|(a, l)| (a, net_key(l), e)));
            }
            (ip, None) => {
                let ip = ip.map_or([0u8; 16], v6);
                let fam = e.family.as_deref().map_or(0, |f| family_hash(f.as_bytes()));
                if e.ip.is_some() || fam != 0 {
                    keys.push((ip, fam, e));
                }
            }
            (None, Some(_)) => dropped += 1,
        }
    }
    keys.truncate(MAX_ENTRIES);
    let slots = (2 * keys.len()).next_power_of_two().max(8);
    let mut out = vec![0u8; HEADER + slots * SLOT];
    out[..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_le_bytes());
    out[8..12].copy_from_slice(&(slots as u32).to_le_bytes());
    out[16..24].copy_from_slice(&published_ms.to_le_bytes());
    for (i, l) in chosen.iter().enumerate() {
        out[24 + i] = l + 1;
    }
    let mut count = 0u32;
    for (ip, fam, e) in keys {
        let mut i = slot_of(&ip, fam, slots);
        loop {
            let s = &mut out[HEADER + i * SLOT..HEADER + (i + 1) * SLOT];
            let fresh = s[24] == 0;
            if fresh || (s[..16] == ip && s[16..24] == fam.to_le_bytes()) {
                s[..16].copy_from_slice(&ip);
                s[16..24].copy_from_slice(&fam.to_le_bytes());
                s[24] = 1;
                s[25] = e.verdict.code();
                s[26] = e.threat.min(4);
                s[27] = e.bot_score.min(99);
                s[28] = match e.action {
                    Action::None => 0,
                    Action::Allow => 1,
                    Action::Challenge => 2,
                    Action::Block => 3,
                    Action::Tarpit => 4,
                };
                let reason: Vec<u8> = e
                    .reason
                    .bytes()
                    .filter(|b| b.is_ascii_graphic())
                    .take(REASON)
                    .collect();
                s[29] = reason.len() as u8;
                s[32..40].copy_from_slice(&e.expires_ms.to_le_bytes());
                s[40..40 + REASON].fill(0);
                s[40..40 + reason.len()].copy_from_slice(&reason);
                if fresh {
                    count += 1;
                }
                break;
            }
            i = (i + 1) & (slots - 1);
        }
    }
    out[12..16].copy_from_slice(&count.to_le_bytes());
    (out, dropped)
}

/// Why bytes are not a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Shorter than its header or its table.
    #[error("truncated decisions snapshot")]
    Truncated,
    /// Not `JA4D`.
    #[error("not a decisions snapshot (bad magic)")]
    BadMagic,
    /// Another format version.
    #[error("decisions snapshot version {0} is not supported")]
    Version(u16),
    /// A slot count that is not a power of two or too large.
    #[error("bad slot count {0}")]
    Slots(u32),
}

/// A parsed snapshot, borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    table: &'a [u8],
    slots: usize,
    /// When the sidecar published it (Unix ms).
    pub published_ms: i64,
    /// Entries in it.
    pub count: u32,
    /// The network prefix lengths in use (header bytes 24–31: length + 1, 0 for none).
    pub(crate) net_lengths: [u8; NET_LENGTHS],
}

/// One decision found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    /// The verdict.
    pub verdict: Verdict,
    /// Threat, 0–4.
    pub threat: u8,
    /// Bot score, 1–99 (0: unknown).
    pub bot_score: u8,
    /// What the entry asks for.
    pub action: Action,
    reason: &'a [u8],
}

impl<'a> Found<'a> {
    /// The reason code.
    pub fn reason(&self) -> &'a str {
        std::str::from_utf8(self.reason).unwrap_or("")
    }
}

impl<'a> Snapshot<'a> {
    /// Checks the header and the table's size.
    pub fn parse(bytes: &'a [u8]) -> Result<Snapshot<'a>, SnapshotError> {
        let h = bytes.get(..HEADER).ok_or(SnapshotError::Truncated)?;
        if h[..4] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = u16::from_le_bytes([h[4], h[5]]);
        if version != VERSION {
            return Err(SnapshotError::Version(version));
        }
        let slots = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if !slots.is_power_of_two() || slots as usize > 2 * MAX_ENTRIES.next_power_of_two() {
            return Err(SnapshotError::Slots(slots));
        }
        let table = bytes
            .get(HEADER..HEADER + slots as usize * SLOT)
            .ok_or(SnapshotError::Truncated)?;
        Ok(Snapshot {
            table,
            slots: slots as usize,
            published_ms: i64::from_le_bytes(h[16..24].try_into().unwrap_or([0; 8])),
            count: u32::from_le_bytes([h[12], h[13], h[14], h[15]]),
            net_lengths: h[24..32].try_into().unwrap_or_default(),
        })
    }

    /// The used slots of the table, 64 bytes each (for [`shared::Table::load`]).
    pub fn used_slots(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.table.chunks_exact(SLOT).filter(|s| s[24] != 0)
    }

    fn get(&self, ip: &[u8; 16], fam: u64, now_ms: i64) -> Option<Found<'a>> {
        let mut i = slot_of(ip, fam, self.slots);
        for _ in 0..self.slots {
            let s = self.table.get(i * SLOT..(i + 1) * SLOT)?;
            if s[24] == 0 {
                return None;
            }
            if s[..16] == *ip && s[16..24] == fam.to_le_bytes() {
                let expires = i64::from_le_bytes(s[32..40].try_into().ok()?);
                if expires != 0 && expires <= now_ms {
                    return None;
                }
                let len = usize::from(s[29]).min(REASON);
                return Some(Found {
                    verdict: Verdict::from_code(s[25])?,
                    threat: s[26],
                    bot_score: s[27],
                    action: Action::from_code(s[28]),
                    reason: &s[40..40 + len],
                });
            }
            i = (i + 1) & (self.slots - 1);
        }
        None
    }

    /// The decision for a request from `ip` on a connection with JA4 `ja4` (empty without
    /// TLS) at `now_ms`: the entry for both, else for the address, else for the longest
    /// network that holds it, else for the JA4 family. The module's lookup is
    /// [`shared::Table::lookup`]; this one is its reference (and the tools').
    pub fn lookup(&self, ip: IpAddr, ja4: &[u8], now_ms: i64) -> Option<Found<'a>> {
        let ip = v6(ip);
        let fam = crate::stack::family_key(ja4).map_or(0, |k| family_hash(&k));
        if fam != 0 {
            if let Some(f) = self.get(&ip, fam, now_ms) {
                return Some(f);
            }
        }
        if let Some(f) = self.get(&ip, 0, now_ms) {
            return Some(f);
        }
        for len6 in lengths_of(self.net_lengths) {
            if let Some(f) = self.get(&masked(&ip, len6), net_key(len6), now_ms) {
                return Some(f);
            }
        }
        (fam != 0)
            .then(|| self.get(&[0; 16], fam, now_ms))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn lookups_prefer_address_and_family_then_address_then_family() {
        let mut expiring = entry(Some("10.0.0.3"), None, Verdict::Bot, "soon");
        expiring.expires_ms = 5_000;
        let entries = [
            entry(Some("10.0.0.1"), Some(CHROME), Verdict::Bot, "model"),
            entry(Some("10.0.0.1"), None, Verdict::Suspicious, "addr"),
            entry(None, Some(CURL), Verdict::Bot, "list:deny"),
            entry(Some("::ffff:10.0.0.2"), None, Verdict::Human, "list:allow"),
            expiring,
            // Later entries for the same key win.
            entry(Some("10.0.0.4"), None, Verdict::Bot, "old"),
            entry(
                Some("10.0.0.4"),
                None,
                Verdict::Human,
                "new-but-a-very-long-reason-code-cut",
            ),
        ];
        let bytes = encode(&entries, 1_234);
        let s = Snapshot::parse(&bytes).unwrap();
        assert_eq!((s.published_ms, s.count), (1_234, 6));
        let at = |ip: &str, ja4: &str| s.lookup(ip.parse().unwrap(), ja4.as_bytes(), 1_000);
        // The resumed session is the same family.
        assert_eq!(at("10.0.0.1", CHROME_RESUMED).unwrap().reason(), "model");
        assert_eq!(at("10.0.0.1", CURL).unwrap().reason(), "addr");
        assert_eq!(at("10.0.0.1", "").unwrap().reason(), "addr");
        assert_eq!(at("10.9.9.9", CURL).unwrap().reason(), "list:deny");
        assert_eq!(at("10.0.0.2", "").unwrap().verdict, Verdict::Human);
        assert!(at("10.9.9.9", CHROME).is_none());
        assert_eq!(at("10.0.0.3", "").unwrap().reason(), "soon");
        assert!(
            s.lookup("10.0.0.3".parse().unwrap(), b"", 5_000).is_none(),
            "expired"
        );
        let d = at("10.0.0.4", "").unwrap();
        assert_eq!(
            (d.verdict, d.reason()),
            (Verdict::Human, "new-but-a-very-long-reas")
        );
        assert_eq!(d.reason().len(), REASON);
    }

    fn net(cidr: &str, verdict: Verdict, reason: &str) -> Entry {
        let (a, l) = cidr.split_once('/').unwrap();
        Entry {
            prefix: Some(l.parse().unwrap()),
            ..entry(Some(a), None, verdict, reason)
        }
    }

    #[test]
    fn networks_match_longest_first_after_the_address() {
        let entries = [
            net("10.20.0.0/16", Verdict::Suspicious, "net16"),
            net("10.20.30.0/24", Verdict::Bot, "net24"),
            // Host bits in a network entry are ignored.
            net("10.21.255.255/16", Verdict::Bot, "net16b"),
            net("2001:db8:1::/48", Verdict::Bot, "net48"),
            net("192.0.2.7/32", Verdict::Human, "host32"),
            entry(Some("10.20.30.40"), None, Verdict::Human, "addr"),
            entry(None, Some(CURL), Verdict::Bot, "fam"),
        ];
        let (bytes, dropped) = encode_counted(&entries, 1);
        assert_eq!(dropped, 0);
        let s = Snapshot::parse(&bytes).unwrap();
        let at = |ip: &str, ja4: &str| {
            s.lookup(ip.parse().unwrap(), ja4.as_bytes(), 0)
                .map(|f| f.reason())
        };
        assert_eq!(at("10.20.30.40", ""), Some("addr"));
        assert_eq!(at("10.20.30.41", ""), Some("net24"));
        assert_eq!(
            at("10.20.31.1", CURL),
            Some("net16"),
            "network before family"
        );
        assert_eq!(at("10.21.0.1", ""), Some("net16b"));
        assert_eq!(at("10.22.0.1", CURL), Some("fam"));
        assert_eq!(at("10.22.0.1", ""), None);
        assert_eq!(at("2001:db8:1:ffff::9", ""), Some("net48"));
        assert_eq!(at("2001:db8:2::9", ""), None);
        assert_eq!(at("192.0.2.7", ""), Some("host32"));
        assert_eq!(at("192.0.2.8", ""), None);
        // An IPv4 network never holds IPv6 addresses that merely share bits.
        assert_eq!(at("::a14:1e29", ""), None);
    }

    #[test]
    fn networks_of_more_lengths_than_kept_are_split_or_counted() {
        // Ten lengths: the eight most used are kept; a /15 splits into two /16s, a /1 cannot.
        let mut entries = Vec::new();
        for (i, len) in [16u8, 17, 18, 19, 20, 21, 22, 23].iter().enumerate() {
            for k in 0..2 {
                entries.push(net(
                    &format!("10.{}.{k}.0/{len}", 100 + i),
                    Verdict::Bot,
                    &format!("len{len}"),
                ));
            }
        }
        entries.push(net("172.16.0.0/15", Verdict::Bot, "len15"));
        entries.push(net("128.0.0.0/1", Verdict::Bot, "len1"));
        let (bytes, dropped) = encode_counted(&entries, 1);
        assert_eq!(dropped, 1, "the /1 would take 2^15 networks");
        let s = Snapshot::parse(&bytes).unwrap();
        let at = |ip: &str| s.lookup(ip.parse().unwrap(), b"", 0).map(|f| f.reason());
        assert_eq!(at("172.16.9.9"), Some("len15"));
        assert_eq!(at("172.17.200.1"), Some("len15"));
        assert_eq!(at("172.18.0.1"), None);
        assert_eq!(at("10.100.0.1"), Some("len16"));
        assert_eq!(at("10.107.1.1"), Some("len23"));
        assert_eq!(at("200.0.0.1"), None);
    }

    #[test]
    fn family_hashes_never_take_network_keys() {
        for l in 0..=128u8 {
            assert_ne!(family_hash(&[l]), net_key(l));
        }
        assert!(family_hash(b"t13d_8daaf6152771") < net_key(128));
    }

    #[test]
    fn hostile_bytes_are_errors_never_panics() {
        let good = encode(&[entry(Some("10.0.0.1"), None, Verdict::Bot, "x")], 1);
        assert_eq!(
            Snapshot::parse(&good[..10]).unwrap_err(),
            SnapshotError::Truncated
        );
        assert_eq!(
            Snapshot::parse(&good[..good.len() - 1]).unwrap_err(),
            SnapshotError::Truncated
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Snapshot::parse(&bad).unwrap_err(), SnapshotError::BadMagic);
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(
            Snapshot::parse(&bad).unwrap_err(),
            SnapshotError::Version(9)
        );
        let mut bad = good.clone();
        bad[8] = 3;
        assert!(matches!(
            Snapshot::parse(&bad),
            Err(SnapshotError::Slots(_))
        ));
        // Any slot contents: lookups end, whatever they find.
        let mut state = 0x1234_5678_u64;
        for round in 0..200 {
            let mut b = good.clone();
            for x in b[HEADER..].iter_mut() {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *x = (state >> 56) as u8 | u8::from(round % 2 == 0);
            }
            let s = Snapshot::parse(&b).unwrap();
            let _ = s.lookup("10.0.0.1".parse().unwrap(), CHROME.as_bytes(), 0);
        }
    }
}
