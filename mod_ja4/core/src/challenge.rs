//! The challenge a client must pass before `JA4Action … challenge` lets it through: an
//! interstitial page whose script proves a JavaScript engine by a small proof of work
//! (Anubis-style), and the pass cookie the module then sets — signed with HMAC-SHA-256 under
//! the key of `JA4ChallengeKeyFile`, bound to the client's address, its TLS stack and an
//! expiry (`JA4ChallengeTTL`). Everything is verified in-module; no sidecar round trip.
//!
//! Owns: the key, the nonce a page carries ([`nonce`]), the page ([`page`]), checking a
//! solution ([`check_solution`]), the pass token ([`pass_token`], [`check_pass`]), and the
//! small parsers they need (cookie, query, return address).
//! Never: trusts a value the client sends without its MAC (the difficulty and the binding come
//! from the server's side), compares MACs in variable time, or redirects off-site
//! ([`safe_return`]).
//!
//! The binding is the address and the connection's JA4 *family* ([`crate::stack::family_key`]):
//! a browser keeps its family across resumed sessions and h1/h2, so one pass lasts it; a
//! token replayed from another address or another TLS stack fails its MAC.
//!
//! ```
//! use ja4_core::challenge::{check_pass, pass_token, Binding, Key, Refused};
//! let key = Key::new(b"0123456789abcdef0123456789abcdef").unwrap();
//! let me = Binding::new("192.0.2.7".parse().unwrap(), b"t13d1516h2_8daaf6152771_02713d6af862");
//! let token = pass_token(&key, &me, 1_000 + 3_600);
//! assert_eq!(check_pass(&key, &me, token.as_bytes(), 1_000), Ok(()));
//! let other = Binding::new("192.0.2.8".parse().unwrap(), b"t13d1516h2_8daaf6152771_02713d6af862");
//! assert_eq!(check_pass(&key, &other, token.as_bytes(), 1_000), Err(Refused::Forged));
//! assert_eq!(check_pass(&key, &me, token.as_bytes(), 5_000), Err(Refused::Expired));
//! ```

use std::fmt::Write as _;
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The cookie that carries the pass.
pub const COOKIE: &str = "ja4_pass";
/// Where the page sends its solution (answered by the module, never by the site).
pub const VERIFY_PATH: &str = "/.ja4/challenge";
/// [`VERIFY_PATH`] as a C string (the module compares it with `r->uri` in place).
pub const VERIFY_PATH_C: &std::ffi::CStr = c"/.ja4/challenge";
/// Seconds a page's nonce stays valid: the time a browser has to solve it.
pub const NONCE_TTL_S: u64 = 300;
/// Bounds of `JA4ChallengeTTL` (seconds).
pub const TTL: (u32, u32) = (60, 2_592_000);
/// Bounds of `JA4ChallengeDifficulty` (leading zero bits; 16 is ~65,000 hashes, well under a
/// second in a browser).
pub const DIFFICULTY: (u32, u32) = (0, 24);
/// Shortest key `JA4ChallengeKeyFile` may hold, bytes.
pub const MIN_KEY: usize = 32;

/// Why a pass or a solution is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not in the token's or the query's shape.
    #[error("malformed")]
    Malformed,
    /// Past its expiry (a pass) or its nonce's lifetime (a solution).
    #[error("expired")]
    Expired,
    /// The MAC does not match: forged, or made for another address or TLS stack.
    #[error("forged or made for another client")]
    Forged,
    /// The counter does not give the hash the difficulty asks for.
    #[error("unsolved")]
    Unsolved,
}

/// The HMAC key, prepared once (the inner and outer pads hashed) and cloned per use.
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key from the contents of `JA4ChallengeKeyFile` (surrounding whitespace ignored), at
    /// least [`MIN_KEY`] bytes.
    pub fn new(contents: &[u8]) -> Result<Key, String> {
        let k = contents.trim_ascii();
        if k.len() < MIN_KEY {
            return Err(format!(
                "the key holds {} bytes, at least {MIN_KEY} are needed (e.g. `head -c 48 /dev/urandom | base64`)",
                k.len()
            ));
        }
        Hmac::<Sha256>::new_from_slice(k)
            .map(Key)
            .map_err(|e| e.to_string())
    }

    fn mac(&self, domain: &[u8], b: &Binding, stamp: u64) -> Hmac<Sha256> {
        let mut m = self.0.clone();
        m.update(domain);
        m.update(&b.addr);
        m.update(&[b.len]);
        m.update(&b.stack[..usize::from(b.len)]);
        m.update(&stamp.to_be_bytes());
        m
    }
}

/// Who a pass or a nonce is for: the client's address and its TLS stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    addr: [u8; 16],
    stack: [u8; 64],
    len: u8,
}

impl Binding {
    /// The binding of a client at `ip` whose connection has JA4 `ja4` (empty without TLS):
    /// its family when the JA4 is well-formed, else the JA4 itself (its first 64 bytes).
    pub fn new(ip: IpAddr, ja4: &[u8]) -> Binding {
        let addr = match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        let mut stack = [0u8; 64];
        let len = match crate::stack::family_key(ja4) {
            Some(k) => {
                stack[..k.len()].copy_from_slice(&k);
                k.len()
            }
            None => {
                let n = ja4.len().min(64);
                stack[..n].copy_from_slice(&ja4[..n]);
                n
            }
        };
        Binding {
            addr,
            stack,
            len: len as u8,
        }
    }
}

fn mac_for(key: &Key, domain: &[u8], b: &Binding, stamp: u64) -> [u8; 32] {
    key.mac(domain, b, stamp).finalize().into_bytes().into()
}

fn check_mac(key: &Key, domain: &[u8], b: &Binding, stamp: u64, tag: &[u8]) -> bool {
    key.mac(domain, b, stamp).verify_truncated_left(tag).is_ok()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_into(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

fn unhex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(s[2 * i])? << 4 | nib(s[2 * i + 1])?;
    }
    Some(out)
}

fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The pass token for `who`, valid until `expires_s` (Unix seconds): `1.<expires>.<MAC>`,
/// the MAC's first 16 bytes in hex.
pub fn pass_token(key: &Key, who: &Binding, expires_s: u64) -> String {
    let mut t = format!("1.{expires_s}.");
    hex_into(&mut t, &mac_for(key, b"ja4-pass\0", who, expires_s)[..16]);
    t
}

/// Checks a pass token for `who` at `now_s`.
pub fn check_pass(key: &Key, who: &Binding, token: &[u8], now_s: u64) -> Result<(), Refused> {
    let rest = token.strip_prefix(b"1.").ok_or(Refused::Malformed)?;
    let dot = rest
        .iter()
        .position(|&c| c == b'.')
        .ok_or(Refused::Malformed)?;
    let expires = decimal(&rest[..dot]).ok_or(Refused::Malformed)?;
    let tag: [u8; 16] = unhex(&rest[dot + 1..]).ok_or(Refused::Malformed)?;
    if !check_mac(key, b"ja4-pass\0", who, expires, &tag) {
        return Err(Refused::Forged);
    }
    if now_s >= expires {
        return Err(Refused::Expired);
    }
    Ok(())
}

/// The nonce of a page issued to `who` at `issued_s`: 16 bytes of MAC in hex. The server
/// keeps nothing: the verify request carries `issued_s` and the nonce is recomputed.
pub fn nonce(key: &Key, who: &Binding, issued_s: u64) -> String {
    let mut n = String::with_capacity(32);
    hex_into(&mut n, &mac_for(key, b"ja4-nonce\0", who, issued_s)[..16]);
    n
}

/// Leading zero bits of `SHA-256(nonce ":" counter)`.
pub fn work_bits(nonce: &str, counter: u64) -> u32 {
    let mut h = Sha256::new();
    h.update(nonce.as_bytes());
    h.update(b":");
    h.update(counter.to_string().as_bytes());
    let d = h.finalize();
    let mut bits = 0;
    for b in d {
        if b != 0 {
            return bits + b.leading_zeros();
        }
        bits += 8;
    }
    bits
}

/// A page's answer as the verify request carries it (`?t=<issued>&b=<return>&c=<counter>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// When the page was issued (Unix seconds).
    pub issued_s: u64,
    /// The counter the script found.
    pub counter: u64,
    /// Where to send the browser back to (percent-decoded; checked by [`safe_return`]).
    pub back: Vec<u8>,
}

/// Parses the verify request's query string.
pub fn parse_solution(query: &[u8]) -> Result<Solution, Refused> {
    let (mut t, mut c, mut b) = (None, None, None);
    for pair in query.split(|&c| c == b'&') {
        let (k, v) = match pair.iter().position(|&c| c == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => continue,
        };
        match k {
            b"t" => t = decimal(v),
            b"c" => c = decimal(v),
            b"b" => b = percent_decode(v),
            _ => {}
        }
    }
    match (t, c, b) {
        (Some(issued_s), Some(counter), Some(back)) if safe_return(&back) => Ok(Solution {
            issued_s,
            counter,
            back,
        }),
        _ => Err(Refused::Malformed),
    }
}

/// Checks a solution for `who` at `now_s` against the configured difficulty.
pub fn check_solution(
    key: &Key,
    who: &Binding,
    s: &Solution,
    difficulty: u32,
    now_s: u64,
) -> Result<(), Refused> {
    // Issued in the future (beyond clock skew between children) is as bad as a forged nonce.
    if s.issued_s > now_s + 5 {
        return Err(Refused::Forged);
    }
    if now_s - s.issued_s.min(now_s) > NONCE_TTL_S {
        return Err(Refused::Expired);
    }
    let n = nonce(key, who, s.issued_s);
    if work_bits(&n, s.counter) < difficulty {
        return Err(Refused::Unsolved);
    }
    Ok(())
}

/// Whether `back` is a path on this site: starts with one `/` (not `//` or `/\`, which
/// browsers treat as another host), printable ASCII only.
pub fn safe_return(back: &[u8]) -> bool {
    back.first() == Some(&b'/')
        && !matches!(back.get(1), Some(b'/' | b'\\'))
        && back.iter().all(|&c| (0x21..0x7f).contains(&c))
        && back.len() <= 2048
}

fn percent_decode(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' => {
                let [b] = unhex::<1>(&v.get(i + 1..i + 3)?.to_ascii_lowercase())?;
                out.push(b);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// `v` with every byte but `[A-Za-z0-9/._~-]` as `%XX`: safe inside an HTML attribute, a
/// script string and a query.
pub fn percent_encode(v: &[u8]) -> String {
    let mut out = String::with_capacity(v.len());
    for &c in v {
        if c.is_ascii_alphanumeric() || b"/._~-".contains(&c) {
            out.push(char::from(c));
        } else {
            let _ = write!(out, "%{c:02X}");
        }
    }
    out
}

/// The value of cookie `name` in a `Cookie` header, if present.
pub fn cookie<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header.split(|&c| c == b';').find_map(|kv| {
        let kv = kv.trim_ascii();
        let v = kv.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(
            v.strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v),
        )
    })
}

/// The `Set-Cookie` value of a pass: host-only, whole site, script cannot read it.
pub fn set_cookie(token: &str, ttl_s: u32, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Max-Age={ttl_s}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The script of the page (the proof of work), also run by the tests under Node.
pub const SCRIPT: &str = include_str!("challenge/page.js");

/// The interstitial page for a request whose path and query were `back`: the script finds
/// the counter for `nonce` at `difficulty` bits and goes to the verify address. Without
/// JavaScript it says what to do.
pub fn page(nonce: &str, issued_s: u64, difficulty: u32, back: &[u8]) -> String {
    let back = if safe_return(back) { back } else { b"/" };
    let verify = format!("{VERIFY_PATH}?t={issued_s}&b={}&c=", percent_encode(back));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"robots\" content=\"noindex\"><title>Checking your browser</title>\
<meta name=\"viewport\" content=\"width=device-width\"></head>\
<body style=\"font-family:sans-serif;max-width:36em;margin:4em auto\">\
<h1>One moment…</h1><p>This site checks that your browser runs JavaScript before it lets you in. \
It takes a second and happens once.</p>\
<noscript><p><b>Please enable JavaScript and reload this page.</b></p></noscript>\
<div id=\"ja4c\" data-nonce=\"{nonce}\" data-bits=\"{difficulty}\" data-verify=\"{verify}\"></div>\
<script>\n{SCRIPT}</script></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::new(b"  the-key-of-this-test-is-long-enough-1234 \n").unwrap()
    }

    const CHROME: &[u8] = b"t13d1516h2_8daaf6152771_02713d6af862";
    const CHROME_RESUMED: &[u8] = b"t13d1517h2_8daaf6152771_b6f405a00624";
    const PYTHON: &[u8] = b"t13d181100_85036bcba153_d41ae481755e";

    fn at(ip: &str, ja4: &[u8]) -> Binding {
        Binding::new(ip.parse().unwrap(), ja4)
    }

    #[test]
    fn the_verify_path_is_one_path() {
        assert_eq!(VERIFY_PATH_C.to_str(), Ok(VERIFY_PATH));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Key::new(b"short").unwrap_err().contains("at least 32"));
        assert!(Key::new(&[b' '; 64]).is_err());
    }

    #[test]
    fn a_pass_holds_across_resumed_sessions_of_one_stack() {
        let k = key();
        let t = pass_token(&k, &at("192.0.2.1", CHROME), 2_000);
        assert_eq!(
            check_pass(&k, &at("192.0.2.1", CHROME_RESUMED), t.as_bytes(), 1_000),
            Ok(())
        );
        assert_eq!(
            check_pass(&k, &at("192.0.2.1", PYTHON), t.as_bytes(), 1_000),
            Err(Refused::Forged)
        );
        assert_eq!(
            check_pass(&k, &at("2001:db8::1", CHROME), t.as_bytes(), 1_000),
            Err(Refused::Forged)
        );
    }

    #[test]
    fn forged_and_malformed_passes_are_refused() {
        let k = key();
        let me = at("192.0.2.1", CHROME);
        let t = pass_token(&k, &me, 2_000);
        // A later expiry under the old MAC.
        let longer = t.replacen("2000", "9000", 1);
        assert_eq!(
            check_pass(&k, &me, longer.as_bytes(), 1_000),
            Err(Refused::Forged)
        );
        let other_key = Key::new(&[b'x'; 40]).unwrap();
        assert_eq!(
            check_pass(&other_key, &me, t.as_bytes(), 1_000),
            Err(Refused::Forged)
        );
        for bad in [
            "",
            "1.",
            "1.2000",
            "1.2000.zz",
            "2.2000.00",
            "1.-5.00",
            "1.2000.0123",
        ] {
            assert_eq!(
                check_pass(&k, &me, bad.as_bytes(), 1_000),
                Err(Refused::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_solution_needs_the_work_its_nonce_and_its_time() {
        let k = key();
        let me = at("192.0.2.1", CHROME);
        let n = nonce(&k, &me, 1_000);
        let counter = (0..).find(|&c| work_bits(&n, c) >= 8).unwrap();
        let s = Solution {
            issued_s: 1_000,
            counter,
            back: b"/".to_vec(),
        };
        assert_eq!(check_solution(&k, &me, &s, 8, 1_010), Ok(()));
        assert_eq!(
            check_solution(&k, &me, &s, 8, 1_000 + NONCE_TTL_S + 1),
            Err(Refused::Expired)
        );
        assert_eq!(check_solution(&k, &me, &s, 8, 900), Err(Refused::Forged));
        // From another address the nonce differs, so the counter (almost surely) fails.
        let elsewhere = at("192.0.2.2", CHROME);
        let wrong = (0..)
            .find(|&c| work_bits(&nonce(&k, &elsewhere, 1_000), c) < 8)
            .unwrap();
        let s2 = Solution {
            counter: wrong,
            ..s.clone()
        };
        assert_eq!(
            check_solution(&k, &elsewhere, &s2, 8, 1_010),
            Err(Refused::Unsolved)
        );
    }

    #[test]
    fn the_query_round_trips_through_the_page() {
        let back = b"/shop?q=a%20b&x=%22%3Cscript%3E%22&y=<zz>";
        let html = page("00ff", 1_234, 10, back);
        assert!(!html.contains("<zz>"));
        let verify = html
            .split("data-verify=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(verify
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._~-%?=&".contains(&c)));
        let query = format!("{}7", verify.split_once('?').unwrap().1);
        let s = parse_solution(query.as_bytes()).unwrap();
        assert_eq!((s.issued_s, s.counter), (1_234, 7));
        assert_eq!(s.back, back.to_vec());
    }

    /// The page's own script, run by a real JavaScript engine (Node) with the page's data,
    /// finds a counter the server accepts: the script's SHA-256 and the server's agree.
    #[test]
    fn the_page_script_solves_what_the_server_checks() {
        let k = key();
        let me = at("192.0.2.1", CHROME);
        let issued = 1_000;
        let n = nonce(&k, &me, issued);
        let html = page(&n, issued, 12, b"/a?b=c");
        let data = |name: &str| {
            let tag = format!("data-{name}=\"");
            html.split(&tag)
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        };
        let harness = format!(
            "globalThis.document = {{ getElementById: () => ({{ dataset: {{ nonce: {:?}, bits: {:?}, verify: {:?} }} }}) }};\n\
             globalThis.location = {{ replace: (u) => console.log(u) }};\n{SCRIPT}",
            data("nonce"),
            data("bits"),
            data("verify"),
        );
        let out = std::process::Command::new("node")
            .arg("-e")
            .arg(&harness)
            .output()
            .expect("node runs (the tests need Node.js)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap();
        let query = url.trim().split_once('?').unwrap().1;
        let s = parse_solution(query.as_bytes()).unwrap();
        assert_eq!(s.back, b"/a?b=c".to_vec());
        assert!(work_bits(&n, s.counter) >= 12);
        assert_eq!(check_solution(&k, &me, &s, 12, issued + 3), Ok(()));
        // The script stops at the first counter that does: none below it would.
        assert!((0..s.counter).all(|c| work_bits(&n, c) < 12));
    }

    #[test]
    fn return_addresses_stay_on_site() {
        assert!(safe_return(b"/a/b?c=d"));
        for bad in [
            &b"//evil.example/"[..],
            b"/\\evil",
            b"https://evil/",
            b"",
            b"/a\r\nSet-Cookie: x",
        ] {
            assert!(!safe_return(bad), "{bad:?}");
        }
        assert_eq!(
            parse_solution(b"t=1&c=2&b=%2F%2Fevil.example"),
            Err(Refused::Malformed)
        );
        assert_eq!(parse_solution(b"t=1&c=2"), Err(Refused::Malformed));
        assert_eq!(parse_solution(b"t=x&c=2&b=/"), Err(Refused::Malformed));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = b"a=1; ja4_passx=no; ja4_pass=\"1.2.ab\"; z=9";
        assert_eq!(cookie(h, COOKIE), Some(&b"1.2.ab"[..]));
        assert_eq!(cookie(b"ja4_pass=v", COOKIE), Some(&b"v"[..]));
        assert_eq!(cookie(b"other=v", COOKIE), None);
        assert!(set_cookie("t", 60, true).ends_with("; Secure"));
    }
}
