//! Whose TLS stack a connection speaks and whether the user agent says the same: the JA4
//! family, the labels of known families (`refdata/measured/ja4-families.tsv`), the browser a
//! user agent claims, and the mismatch between the two — one definition for the module
//! (`JA4_UA_MISMATCH`), the sidecar's reference data and the detector.
//!
//! Owns: [`ja4_family`] (JA4_a's first four characters and JA4_b: what one TLS stack keeps
//! across resumed sessions, ALPN and GREASE), [`parse_labels`], [`ua_browser`] and
//! [`mismatch`].
//! Never: decides on a family it does not know (no label, no mismatch), or allocates in
//! [`family_key`] (the module's per-connection path).
//!
//! ```
//! use ja4_core::stack::{ja4_family, mismatch, parse_labels, Mismatch};
//! assert_eq!(ja4_family("t13d1517h2_8daaf6152771_b6f405a00624"), "t13d_8daaf6152771");
//! let labels = parse_labels("t13d_85036bcba153\tPython\tlibrary\tt13d181100_85036bcba153_d41ae481755e\tCPython 3.11\n").labels;
//! let python = labels.get("t13d_85036bcba153");
//! let chrome_ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0 Safari/537.36";
//! assert_eq!(mismatch(chrome_ua.as_bytes(), python), Some(Mismatch::BrowserOnLibrary));
//! assert_eq!(mismatch(b"python-requests/2.32", python), None);
//! ```

use std::collections::HashMap;

/// The JA4 family of `ja4`: `<JA4_a[0..4]>_<JA4_b>` for a well-formed JA4
/// (`[a-z0-9]{10}_[0-9a-f]{12}_[0-9a-f]{12}`), otherwise `ja4` itself (empty without TLS).
pub fn ja4_family(ja4: &str) -> String {
    match family_key(ja4.as_bytes()) {
        Some(k) => String::from_utf8_lossy(&k).into_owned(),
        None => ja4.to_owned(),
    }
}

/// The family of a well-formed JA4 as 17 bytes, without allocating; `None` otherwise.
pub fn family_key(b: &[u8]) -> Option<[u8; 17]> {
    let hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let ok = b.len() == 36
        && b[..10]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b[10] == b'_'
        && hex(&b[11..23])
        && b[23] == b'_'
        && hex(&b[24..]);
    if !ok {
        return None;
    }
    let mut k = [0u8; 17];
    k[..4].copy_from_slice(&b[..4]);
    k[4] = b'_';
    k[5..].copy_from_slice(&b[11..23]);
    Some(k)
}

/// The browser engine a user agent or a stack label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    /// Chrome, Chromium, Edge, Opera, Brave, Samsung Internet…
    Chromium,
    /// Firefox (Gecko).
    Firefox,
    /// Safari (WebKit).
    Safari,
}

impl Browser {
    /// Its name in variables and reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
            Browser::Safari => "safari",
        }
    }
}

fn contains(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

/// The browser a user agent claims (`Mozilla/…` with a browser token), if any.
pub fn ua_browser(ua: &[u8]) -> Option<Browser> {
    if !ua.starts_with(b"Mozilla/") {
        return None;
    }
    if contains(ua, b"Firefox/") {
        Some(Browser::Firefox)
    } else if contains(ua, b"Chrome/") || contains(ua, b"Chromium/") || contains(ua, b"CriOS/") {
        Some(Browser::Chromium)
    } else if contains(ua, b"Safari/") && contains(ua, b"Version/") {
        Some(Browser::Safari)
    } else {
        None
    }
}

/// What a known family is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// What was measured (`Mozilla Firefox`, `Python`).
    pub application: String,
    /// `browser` or `library`.
    pub category: String,
    /// The browser engine of a browser family.
    pub browser: Option<Browser>,
}

/// Labels by family, and the lines that could not be read.
#[derive(Debug, Default)]
pub struct Labels {
    /// Family → label (the first row of a family wins).
    pub labels: HashMap<String, Label>,
    /// `(line, why)` of every row skipped.
    pub skipped: Vec<(usize, String)>,
}

impl Labels {
    /// The label of family `key` ([`family_key`]): a stack is the same with or without SNI,
    /// so a family measured with a host name (`t13d_…`) also labels connections to an
    /// address (`t13i_…`), and the other way round.
    pub fn find(&self, key: &[u8; 17]) -> Option<&Label> {
        let get = |k: &[u8; 17]| std::str::from_utf8(k).ok().and_then(|k| self.labels.get(k));
        get(key).or_else(|| {
            let mut other = *key;
            other[3] = match key[3] {
                b'd' => b'i',
                b'i' => b'd',
                _ => return None,
            };
            get(&other)
        })
    }
}

/// The same family with the other SNI mode (`t13d_…` ↔ `t13i_…`), if it has one.
pub fn other_sni(family: &str) -> Option<String> {
    let mut b = family.as_bytes().to_vec();
    b[3] = match b.get(3)? {
        b'd' => b'i',
        b'i' => b'd',
        _ => return None,
    };
    String::from_utf8(b).ok()
}

/// Parses family labels: tab-separated `family application category example_ja4
/// measured_with`, `#` comments; a row whose family is not its example's family, or whose
/// category is not `browser` or `library`, is skipped.
pub fn parse_labels(text: &str) -> Labels {
    let (labels, skipped) = label_rows(text, 5, |f| {
        let (family, example) = (f[0], f[3]);
        (ja4_family(example) == family)
            .then_some(())
            .ok_or_else(|| format!("{family} is not the family of {example}"))
    });
    Labels { labels, skipped }
}

/// The rows of a labels file (tab-separated, `#` comments): key (first field) → label of its
/// application (second) and category (third), for rows of `fields` fields that `check`
/// accepts and whose category is `browser` or `library`; the first row of a key wins. The
/// rest are `(line, why)`.
fn label_rows(
    text: &str,
    fields: usize,
    check: impl Fn(&[&str]) -> Result<(), String>,
) -> (HashMap<String, Label>, Vec<(usize, String)>) {
    let (mut labels, mut skipped) = (HashMap::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let why = if f.len() != fields {
            Err(format!("{} fields, {fields} expected", f.len()))
        } else if !["browser", "library"].contains(&f[2]) {
            check(&f).and(Err(format!("unknown category {:?}", f[2])))
        } else {
            check(&f)
        };
        match why {
            Ok(()) => {
                labels
                    .entry(f[0].to_owned())
                    .or_insert_with(|| label(f[1], f[2]));
            }
            Err(why) => skipped.push((n + 1, why)),
        }
    }
    (labels, skipped)
}

/// The label of `application` in `category` (its browser engine, for a browser).
fn label(application: &str, category: &str) -> Label {
    let a = application.as_bytes();
    let browser = if category != "browser" {
        None
    } else if contains(a, b"Firefox") || contains(a, b"firefox") {
        Some(Browser::Firefox)
    } else if contains(a, b"Chrom") || contains(a, b"chrom") {
        Some(Browser::Chromium)
    } else if contains(a, b"Safari") || contains(a, b"safari") {
        Some(Browser::Safari)
    } else {
        None
    };
    Label {
        application: application.to_owned(),
        category: category.to_owned(),
        browser,
    }
}

/// Labels of HTTP/2 fingerprints (`refdata/measured/h2-fingerprints.tsv`), and the lines
/// that could not be read.
#[derive(Debug, Default)]
pub struct H2Labels {
    /// Akamai string → label (the first row of a string wins).
    pub labels: HashMap<String, Label>,
    /// `(line, why)` of every row skipped.
    pub skipped: Vec<(usize, String)>,
}

/// Parses HTTP/2 fingerprint labels: tab-separated `akamai application category
/// measured_with`, `#` comments; a row whose string is not `S|WU|P|PS` or whose category is
/// not `browser` or `library` is skipped.
pub fn parse_h2_labels(text: &str) -> H2Labels {
    let (labels, skipped) = label_rows(text, 4, |f| {
        (f[0].matches('|').count() == 3)
            .then_some(())
            .ok_or_else(|| format!("{:?} is not an Akamai HTTP/2 fingerprint", f[0]))
    });
    H2Labels { labels, skipped }
}

/// The initial TTL a stack starts from, given a TTL seen after some hops (0: none seen).
pub fn initial_ttl(seen: f64) -> u32 {
    match seen {
        t if t <= 0.0 => 0,
        t if t <= 32.0 => 32,
        t if t <= 64.0 => 64,
        t if t <= 128.0 => 128,
        _ => 255,
    }
}

/// The initial TTL of the operating system a user agent names (None: it names none): the
/// platform tokens of its first parenthesised comment (`(Windows NT 10.0; Win64; x64)`), or
/// of the whole string when it has none.
pub fn claimed_os_ttl(ua: &str) -> Option<u32> {
    let b = ua.as_bytes();
    let platform = match b.iter().position(|&c| c == b'(') {
        Some(open) => {
            let rest = &b[open + 1..];
            &rest[..rest.iter().position(|&c| c == b')').unwrap_or(rest.len())]
        }
        None => b,
    };
    if contains(platform, b"Windows") {
        Some(128)
    } else if [
        &b"Linux"[..],
        b"Android",
        b"Macintosh",
        b"Mac OS X",
        b"iPhone",
        b"iPad",
        b"CrOS",
    ]
    .iter()
    .any(|os| contains(platform, os))
    {
        Some(64)
    } else {
        None
    }
}

/// Per-connection consistency facts ([`consistency`]): bits of what contradicts what.
pub mod flags {
    /// A browser's user agent on a library's TLS stack (`JA4_UA_MISMATCH=library`).
    pub const UA_TLS_LIBRARY: u8 = 1;
    /// One browser's user agent on another browser's TLS stack (`JA4_UA_MISMATCH=browser`).
    pub const UA_TLS_BROWSER: u8 = 2;
    /// A browser's user agent on a library's HTTP/2 stack.
    pub const UA_H2_LIBRARY: u8 = 4;
    /// One browser's user agent on another browser's HTTP/2 stack.
    pub const UA_H2_BROWSER: u8 = 8;
    /// A browser's TLS stack under an HTTP/2 stack that is not that browser's (the
    /// impersonator that copied a ClientHello but not a connection preface).
    pub const TLS_H2: u8 = 16;
    /// The SYN's initial TTL is not the one of the OS the user agent names.
    pub const UA_OS_TTL: u8 = 32;
    /// Every flag with its name (`JA4_FLAGS`, the store, the dashboard).
    pub const NAMES: [(u8, &str); 6] = [
        (UA_TLS_LIBRARY, "ua-tls-library"),
        (UA_TLS_BROWSER, "ua-tls-browser"),
        (UA_H2_LIBRARY, "ua-h2-library"),
        (UA_H2_BROWSER, "ua-h2-browser"),
        (TLS_H2, "tls-h2"),
        (UA_OS_TTL, "ua-os-ttl"),
    ];

    /// The names of the flags set in `f`, comma-separated.
    pub fn names(f: u8) -> String {
        NAMES
            .iter()
            .filter(|(b, _)| f & b != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What a connection's stacks say against each other and against a request's user agent
/// `ua`: the TLS stack's label (by JA4 family), the HTTP/2 stack's label (by Akamai string),
/// and the SYN's TTL (`None` when no SYN was seen). Unknown stacks contradict nothing.
pub fn consistency(ua: &[u8], tls: Option<&Label>, h2: Option<&Label>, syn_ttl: Option<u8>) -> u8 {
    let claimed = if tls.is_some() || h2.is_some() {
        ua_browser(ua)
    } else {
        None
    };
    let mut f = match claimed_mismatch(claimed, tls) {
        Some(Mismatch::BrowserOnLibrary) => flags::UA_TLS_LIBRARY,
        Some(Mismatch::OtherBrowser) => flags::UA_TLS_BROWSER,
        None => 0,
    };
    f |= match claimed_mismatch(claimed, h2) {
        Some(Mismatch::BrowserOnLibrary) => flags::UA_H2_LIBRARY,
        Some(Mismatch::OtherBrowser) => flags::UA_H2_BROWSER,
        None => 0,
    };
    if let (Some(t), Some(h)) = (tls, h2) {
        if t.category == "browser" && (h.category != "browser" || h.browser != t.browser) {
            f |= flags::TLS_H2;
        }
    }
    let claim = || std::str::from_utf8(ua).ok().and_then(claimed_os_ttl);
    if let (Some(ttl), Some(claim)) = (syn_ttl.filter(|&t| t > 0), claim()) {
        let seen = initial_ttl(f64::from(ttl));
        if seen != 0 && seen != claim {
            f |= flags::UA_OS_TTL;
        }
    }
    f
}

/// How a user agent and a connection's stack disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// A browser's user agent on a library's TLS stack.
    BrowserOnLibrary,
    /// One browser's user agent on another browser's stack.
    OtherBrowser,
}

impl Mismatch {
    /// Its short code (`JA4_UA_MISMATCH`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mismatch::BrowserOnLibrary => "library",
            Mismatch::OtherBrowser => "browser",
        }
    }
}

/// Whether user agent `ua` contradicts the stack labelled `label` (None: an unknown stack,
/// or a user agent that claims no browser).
pub fn mismatch(ua: &[u8], label: Option<&Label>) -> Option<Mismatch> {
    claimed_mismatch(ua_browser(ua), label)
}

/// [`mismatch`] for the browser a user agent claims.
fn claimed_mismatch(claimed: Option<Browser>, label: Option<&Label>) -> Option<Mismatch> {
    let claimed = claimed?;
    let label = label?;
    match label.category.as_str() {
        "library" => Some(Mismatch::BrowserOnLibrary),
        "browser" => match label.browser {
            Some(b) if b != claimed => Some(Mismatch::OtherBrowser),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_flags_name_each_contradiction() {
        let chrome_tls = label("Chromium", "browser");
        let firefox_h2 = label("Mozilla Firefox", "browser");
        let go_h2 = label("Go", "library");
        let chrome_h2 = label("Chromium", "browser");
        let python = label("Python", "library");
        // A real Chrome on Linux: nothing.
        assert_eq!(
            consistency(CHROME_UA, Some(&chrome_tls), Some(&chrome_h2), Some(64)),
            0
        );
        // An impersonator with Chrome's ClientHello and Go's HTTP/2, claiming Windows.
        let win = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36";
        let f = consistency(win, Some(&chrome_tls), Some(&go_h2), Some(63));
        assert_eq!(f, flags::UA_H2_LIBRARY | flags::TLS_H2 | flags::UA_OS_TTL);
        assert_eq!(flags::names(f), "ua-h2-library,tls-h2,ua-os-ttl");
        // Chrome's TLS and Firefox's HTTP/2 under Chrome's user agent.
        assert_eq!(
            consistency(CHROME_UA, Some(&chrome_tls), Some(&firefox_h2), None),
            flags::UA_H2_BROWSER | flags::TLS_H2
        );
        // A library with a browser user agent; unknown stacks say nothing.
        assert_eq!(
            consistency(CHROME_UA, Some(&python), None, None),
            flags::UA_TLS_LIBRARY
        );
        assert_eq!(
            consistency(CHROME_UA, None, None, Some(128)),
            flags::UA_OS_TTL
        );
        assert_eq!(
            consistency(b"curl/7.88.1", Some(&python), Some(&go_h2), Some(64)),
            0
        );
        assert_eq!(flags::names(0), "");
    }

    #[test]
    fn h2_labels_parse_and_refuse() {
        let l = parse_h2_labels(
            "# c\n1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p\tChromium\tbrowser\tDebian chromium\n\
             x\tGo\tlibrary\tgo\n2:0|1|0|m\tGo\tbot\tgo\nonly\ttwo\n",
        );
        let c = &l.labels["1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p"];
        assert_eq!(c.browser, Some(Browser::Chromium));
        assert_eq!(l.skipped.iter().map(|s| s.0).collect::<Vec<_>>(), [3, 4, 5]);
    }

    const CHROME_UA: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36";
    const FIREFOX_UA: &[u8] =
        b"Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0";
    const SAFARI_UA: &[u8] = b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";

    #[test]
    fn families_of_one_stack_agree_and_odd_values_are_their_own() {
        let first = "t13d1516h2_8daaf6152771_02713d6af862";
        assert_eq!(ja4_family(first), "t13d_8daaf6152771");
        assert_eq!(
            ja4_family("t13d1517h1_8daaf6152771_b6f405a00624"),
            ja4_family(first)
        );
        assert_ne!(
            ja4_family("t13i1516h2_8daaf6152771_02713d6af862"),
            ja4_family(first)
        );
        for odd in [
            "",
            "x",
            "T13D1516H2_8daaf6152771_02713d6af862",
            "t13d1516h2_8daaf6152771_02713d6af86é",
        ] {
            assert_eq!(ja4_family(odd), odd);
            assert_eq!(family_key(odd.as_bytes()), None);
        }
    }

    #[test]
    fn user_agents_and_labels_decide_mismatches() {
        assert_eq!(ua_browser(CHROME_UA), Some(Browser::Chromium));
        assert_eq!(ua_browser(FIREFOX_UA), Some(Browser::Firefox));
        assert_eq!(ua_browser(SAFARI_UA), Some(Browser::Safari));
        assert_eq!(ua_browser(b"curl/8.5.0"), None);
        assert_eq!(ua_browser(b"Mozilla/5.0 (compatible; Googlebot/2.1)"), None);
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../refdata/measured/ja4-families.tsv"),
        )
        .unwrap();
        let l = parse_labels(&text);
        assert!(l.skipped.is_empty(), "{:?}", l.skipped);
        let get = |f: &str| l.labels.get(f);
        let (chromium, firefox, curl) = (
            get("t13d_8daaf6152771"),
            get("t13d_86a278354501"),
            get("t13d_e8f1e7e78f70"),
        );
        assert_eq!(chromium.unwrap().browser, Some(Browser::Chromium));
        assert_eq!(firefox.unwrap().browser, Some(Browser::Firefox));
        assert_eq!(mismatch(CHROME_UA, chromium), None);
        assert_eq!(mismatch(FIREFOX_UA, firefox), None);
        assert_eq!(mismatch(CHROME_UA, curl), Some(Mismatch::BrowserOnLibrary));
        assert_eq!(mismatch(FIREFOX_UA, chromium), Some(Mismatch::OtherBrowser));
        assert_eq!(mismatch(b"curl/7.88.1", curl), None);
        assert_eq!(mismatch(CHROME_UA, None), None);
        // Without SNI (an address literal) the same stack is found.
        let i = family_key(b"t13i3111h2_e8f1e7e78f70_b26ce05bbdd6").unwrap();
        assert_eq!(l.find(&i).unwrap().application, "curl");
        assert_eq!(other_sni("t13d_e8f1e7e78f70").unwrap(), "t13i_e8f1e7e78f70");
        assert_eq!(other_sni("q"), None);
        let bad = parse_labels(
            "a\tb\n#x\nt13d_ffffffffffff\tX\tlibrary\tt13d1617h2_86a278354501_3cbfd9057e0d\tm\n",
        );
        assert_eq!(bad.skipped.len(), 2);
        assert!(bad.labels.is_empty());
    }
}
