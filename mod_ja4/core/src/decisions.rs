//! The decisions snapshot: what the sidecar decided about clients (verdict, threat, bot
//! score, action, reason), as a file the sidecar replaces atomically and every httpd child
//! reads when it changes.
//!
//! Owns: the file format (a 32-byte header, then an open-addressed table of 64-byte slots
//! keyed by client address and JA4 family), [`encode`], [`Snapshot::parse`] and the lookup
//! a request makes ([`Snapshot::lookup`]: address and family, then address, then family).
//! Never: trusts the bytes (every length and index is checked; a bad file is an error, never
//! a panic), allocates on lookup, or loops unboundedly (a probe stops at an empty slot or
//! after every slot).
//!
//! ```
//! use ja4_core::decisions::{encode, Action, Entry, Snapshot, Verdict};
//! let e = Entry { ip: Some("203.0.113.9".parse().unwrap()), family: None, verdict: Verdict::Bot,
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

/// One decision to write: for an address (`ip`), a JA4 family (`family`, see
/// [`crate::stack::ja4_family`]), or both.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The client address, or any.
    pub ip: Option<IpAddr>,
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

/// The key hash of a JA4 family (never 0; 0 means "any").
fn family_hash(family: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in family {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
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
/// beyond [`MAX_ENTRIES`] entries are left out).
pub fn encode(entries: &[Entry], published_ms: i64) -> Vec<u8> {
    let n = entries.len().min(MAX_ENTRIES);
    let slots = (2 * n).next_power_of_two().max(8);
    let mut out = vec![0u8; HEADER + slots * SLOT];
    out[..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_le_bytes());
    out[8..12].copy_from_slice(&(slots as u32).to_le_bytes());
    out[16..24].copy_from_slice(&published_ms.to_le_bytes());
    let mut count = 0u32;
    for e in &entries[..n] {
        let ip = e.ip.map_or([0u8; 16], v6);
        let fam = e.family.as_deref().map_or(0, |f| family_hash(f.as_bytes()));
        if e.ip.is_none() && fam == 0 {
            continue;
        }
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
    out
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
    /// TLS) at `now_ms`: the entry for both, else for the address, else for the JA4 family.
    pub fn lookup(&self, ip: IpAddr, ja4: &[u8], now_ms: i64) -> Option<Found<'a>> {
        let ip = v6(ip);
        let fam = crate::stack::family_key(ja4).map_or(0, |k| family_hash(&k));
        if fam != 0 {
            if let Some(f) = self.get(&ip, fam, now_ms) {
                return Some(f);
            }
        }
        self.get(&ip, 0, now_ms).or_else(|| {
            (fam != 0)
                .then(|| self.get(&[0; 16], fam, now_ms))
                .flatten()
        })
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
