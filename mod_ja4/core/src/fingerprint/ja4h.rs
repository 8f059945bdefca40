//! JA4H (HTTP client) from a request's method, version and headers in wire order.
//!
//! One function serves captures (HTTP/1.x parsed by `http`) and the Apache module (the request
//! as httpd parsed it, HTTP/1.x or HTTP/2). Canonical rules 4–7: language from the first tag of
//! Accept-Language; cookies split on `;` and trimmed, names and `name=value` pairs sorted; only
//! headers named exactly Cookie/Referer count as such; pseudo-headers (`:method`…) are skipped.

use serde::Serialize;

use crate::hash::hash12;

/// HTTP version as JA4H prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HttpVersion {
    /// HTTP/0.9.
    Http09,
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
    /// HTTP/2.
    Http2,
    /// HTTP/3.
    Http3,
}

impl HttpVersion {
    /// The version as JA4H prints it (`09`, `10`, `11`, `20`, `30`).
    #[inline]
    pub fn code(self) -> &'static [u8; 2] {
        match self {
            HttpVersion::Http09 => b"09",
            HttpVersion::Http10 => b"10",
            HttpVersion::Http11 => b"11",
            HttpVersion::Http2 => b"20",
            HttpVersion::Http3 => b"30",
        }
    }
}

/// JA4H with its raw and original-order forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ja4hSet {
    /// JA4H: `a_b_c_d` with hashed parts.
    pub ja4h: String,
    /// Raw JA4H: header names and cookie fields unhashed.
    pub ja4h_r: String,
    /// JA4H over header names in wire order.
    pub ja4h_o: String,
    /// Raw JA4H in wire order.
    pub ja4h_ro: String,
}

impl Ja4hSet {
    /// Computes JA4H for one request. `headers` are (name, value) in wire order, duplicates kept.
    pub fn compute<'h, I>(method: &[u8], version: HttpVersion, headers: I) -> Self
    where
        I: IntoIterator<Item = (&'h [u8], &'h [u8])>,
    {
        Scan::of(method, version, headers, Vec::with_capacity(256)).finish()
    }

    /// [`Ja4hSet::compute`] for a request given as export records carry it: header names in
    /// wire order joined by `,` (Cookie and Referer included), the Cookie value (several Cookie
    /// headers joined by `; `) and the first Accept-Language value.
    pub fn from_joined(
        method: &[u8],
        version: HttpVersion,
        names: &[u8],
        cookie: &[u8],
        language: Option<&[u8]>,
    ) -> Self {
        let (mut cookie_left, mut language_left) = (Some(cookie), language);
        let headers = names
            .split(|b| *b == b',')
            .filter(|_| !names.is_empty())
            .map(|n| {
                let value = if n.eq_ignore_ascii_case(b"cookie") {
                    cookie_left.take().unwrap_or(b"")
                } else if n.eq_ignore_ascii_case(b"accept-language") {
                    language_left.take().unwrap_or(b"")
                } else {
                    b""
                };
                (n, value)
            });
        Self::compute(method, version, headers)
    }
}

/// What JA4H takes from a request's header names alone, given as export records carry them
/// (wire order, joined by `,`, Cookie and Referer included): cookie and referer presence, the
/// number of listed names and part b. A connection's requests mostly repeat their names, so
/// the module works this out once per distinct list (`shape`) instead of once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamesPart {
    /// A Cookie header is present.
    pub cookie: bool,
    /// A Referer header is present.
    pub referer: bool,
    /// Listed names (all but Cookie, Referer and pseudo-headers), at most 99.
    pub count: u8,
    /// Part b: the hash of the listed names.
    pub hash: [u8; 12],
    /// A JA4H with what the names give filled in, for [`assemble`].
    template: [u8; JA4H_LEN],
}

impl NamesPart {
    /// The names part of the request whose header names are `joined`.
    pub fn of(joined: &[u8]) -> Self {
        let (mut cookie, mut referer, mut count) = (false, false, 0usize);
        let mut listed = Vec::with_capacity(joined.len());
        for name in joined.split(|b| *b == b',').filter(|_| !joined.is_empty()) {
            if name.first() == Some(&b':') {
                continue;
            }
            if name.eq_ignore_ascii_case(b"cookie") {
                cookie = true;
            } else if name.eq_ignore_ascii_case(b"referer") {
                referer = true;
            } else {
                if count > 0 {
                    listed.push(b',');
                }
                listed.extend_from_slice(name);
                count += 1;
            }
        }
        let hash = hash12(&listed);
        let mut template = [b'_'; JA4H_LEN];
        template[..12].copy_from_slice(&part_a(
            b"",
            HttpVersion::Http11,
            cookie,
            referer,
            count,
            None,
        ));
        template[13..25].copy_from_slice(&hash);
        template[26..].copy_from_slice(&NO_COOKIES);
        NamesPart {
            cookie,
            referer,
            count: count.min(99) as u8,
            hash,
            template,
        }
    }
}

/// Parts c and d of a JA4H joined by `_`: the hashes of the sorted cookie names and of the
/// sorted `name=value` pairs of a Cookie value (several Cookie headers joined by `; `).
pub fn cookie_part(cookie: &[u8]) -> [u8; 25] {
    let mut pairs: Vec<_> = cookie_pairs(cookie).collect();
    pairs.sort_unstable();
    let (c, d) = cookie_lists(&pairs);
    let mut out = [b'_'; 25];
    out[..12].copy_from_slice(&hash12(&c));
    out[13..].copy_from_slice(&hash12(&d));
    out
}

/// [`cookie_part`] of a request without cookies.
pub const NO_COOKIES: [u8; 25] = *b"000000000000_000000000000";

/// A connection's last Cookie value and its [`cookie_part`]: browsers send the same cookies
/// with request after request.
#[derive(Debug, Default)]
pub struct CookieMemo {
    value: Vec<u8>,
    part: Option<[u8; 25]>,
    computed: u64,
}

impl CookieMemo {
    /// The [`cookie_part`] of `cookie`, remembered from the last call when the value is the same.
    #[inline]
    pub fn part(&mut self, cookie: &[u8]) -> [u8; 25] {
        match self.part {
            Some(p) if self.value == cookie => p,
            _ => {
                let p = cookie_part(cookie);
                self.value.clear();
                self.value.extend_from_slice(cookie);
                self.part = Some(p);
                self.computed += 1;
                p
            }
        }
    }

    /// How many times it had to compute (the other calls reused the last result).
    pub fn computed(&self) -> u64 {
        self.computed
    }
}

/// Length of a JA4H.
pub const JA4H_LEN: usize = 51;

/// A JA4H from its parts: the request's method, version and first Accept-Language value, what
/// its names give ([`NamesPart`]) and its cookies ([`cookie_part`]; unused when the names have
/// no Cookie). Equal to
/// [`Ja4hSet::from_joined`]'s `ja4h` for the same request, without hashing anything.
#[inline]
pub fn assemble(
    method: &[u8],
    version: HttpVersion,
    names: &NamesPart,
    language: Option<&[u8]>,
    cookies: &[u8; 25],
) -> [u8; JA4H_LEN] {
    let mut out = [0; JA4H_LEN];
    assemble_into(&mut out, method, version, names, language, cookies);
    out
}

/// [`assemble`] into `out`.
#[inline]
pub fn assemble_into(
    out: &mut [u8; JA4H_LEN],
    method: &[u8],
    version: HttpVersion,
    names: &NamesPart,
    language: Option<&[u8]>,
    cookies: &[u8; 25],
) {
    *out = names.template;
    out[..2].copy_from_slice(&method_code(method));
    out[2..4].copy_from_slice(version.code());
    if let Some(l) = language {
        out[8..12].copy_from_slice(&language_code(Some(l)));
    }
    if names.cookie {
        out[26..].copy_from_slice(cookies);
    }
}

/// Part a: method, version, cookie and referer flags, listed-name count, language.
fn part_a(
    method: &[u8],
    version: HttpVersion,
    cookie: bool,
    referer: bool,
    count: usize,
    language: Option<&[u8]>,
) -> [u8; 12] {
    let n = count.min(99);
    let mut a = [0u8; 12];
    a[..2].copy_from_slice(&method_code(method));
    a[2..4].copy_from_slice(version.code());
    a[4] = if cookie { b'c' } else { b'n' };
    a[5] = if referer { b'r' } else { b'n' };
    a[6] = b'0' + (n / 10) as u8;
    a[7] = b'0' + (n % 10) as u8;
    a[8..].copy_from_slice(&language_code(language));
    a
}

/// What JA4H needs of a request, gathered in one pass over its headers.
struct Scan<'h> {
    a: [u8; 12],
    names: Vec<u8>,
    cookies: Vec<(&'h [u8], Option<&'h [u8]>)>,
}

impl<'h> Scan<'h> {
    /// Scans `headers`; the header-name list is written into `names` (cleared first).
    fn of<I>(method: &[u8], version: HttpVersion, headers: I, mut names: Vec<u8>) -> Self
    where
        I: IntoIterator<Item = (&'h [u8], &'h [u8])>,
    {
        names.clear();
        let mut count = 0usize;
        let mut has_cookie = false;
        let mut has_referer = false;
        let mut language: Option<&[u8]> = None;
        let mut cookies: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
        for (name, value) in headers {
            if name.first() == Some(&b':') {
                continue;
            }
            if name.eq_ignore_ascii_case(b"cookie") {
                has_cookie = true;
                cookies.extend(cookie_pairs(value));
                continue;
            }
            if name.eq_ignore_ascii_case(b"referer") {
                has_referer = true;
                continue;
            }
            if language.is_none() && name.eq_ignore_ascii_case(b"accept-language") {
                language = Some(value);
            }
            if count > 0 {
                names.push(b',');
            }
            names.extend_from_slice(name);
            count += 1;
        }

        let a = part_a(method, version, has_cookie, has_referer, count, language);
        Scan { a, names, cookies }
    }

    fn finish(self) -> Ja4hSet {
        let b_hash = hash12(&self.names);
        with_cookies(self.a, b_hash, &self.names, self.cookies)
    }
}

/// The cookies of one Cookie header value: split on `;`, trimmed, empty ones skipped, as
/// (name, value) with the value absent when there is no `=`.
fn cookie_pairs(value: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    value
        .split(|b| *b == b';')
        .map(trim)
        .filter(|c| !c.is_empty())
        .map(|c| match c.iter().position(|b| *b == b'=') {
            Some(i) => (&c[..i], Some(&c[i + 1..])),
            None => (c, None),
        })
}

/// The cookie names (list c) and `name=value` pairs (list d) of `pairs`, in their order,
/// joined by `,`.
fn cookie_lists(pairs: &[(&[u8], Option<&[u8]>)]) -> (Vec<u8>, Vec<u8>) {
    let mut c = Vec::with_capacity(64);
    let mut d = Vec::with_capacity(128);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            c.push(b',');
            d.push(b',');
        }
        c.extend_from_slice(name);
        d.extend_from_slice(name);
        if let Some(v) = value {
            d.push(b'=');
            d.extend_from_slice(v);
        }
    }
    (c, d)
}

/// The four forms from part a, the hash of the names (part b), the names and the cookies.
fn with_cookies(
    a: [u8; 12],
    b_hash: [u8; 12],
    names: &[u8],
    mut cookies: Vec<(&[u8], Option<&[u8]>)>,
) -> Ja4hSet {
    // Builds (hashed, raw) for one cookie order without the formatting machinery.
    let render = |pairs: &[(&[u8], Option<&[u8]>)]| {
        let (c, d) = cookie_lists(pairs);
        let mut hashed = Vec::with_capacity(51);
        for part in [&a[..], b"_", &b_hash, b"_", &hash12(&c), b"_", &hash12(&d)] {
            hashed.extend_from_slice(part);
        }
        let mut raw = Vec::with_capacity(15 + names.len() + c.len() + d.len());
        for part in [&a[..], b"_", names, b"_", &c, b"_", &d] {
            raw.extend_from_slice(part);
        }
        (lossy(hashed), lossy(raw))
    };
    let (ja4h_o, ja4h_ro) = render(&cookies);
    let (ja4h, ja4h_r) = if cookies.is_sorted() {
        (ja4h_o.clone(), ja4h_ro.clone())
    } else {
        cookies.sort_unstable();
        render(&cookies)
    };
    Ja4hSet {
        ja4h,
        ja4h_r,
        ja4h_o,
        ja4h_ro,
    }
}

/// Whether `name` is a header JA4H lists in part b (not Cookie, Referer or a pseudo-header).
pub fn is_listed(name: &[u8]) -> bool {
    !(name.first() == Some(&b':')
        || name.eq_ignore_ascii_case(b"cookie")
        || name.eq_ignore_ascii_case(b"referer"))
}

/// The JA4H forms of a request whose JA4H is `ja4h`, from its header names in wire order joined
/// by `,` (Cookie and Referer included, as export records carry them) and its Cookie value:
/// what [`Ja4hSet::compute`] gives for the same request, with parts a and b taken from `ja4h`
/// instead of being computed again. None when `ja4h` is not a JA4H.
pub fn derive_raw(ja4h: &[u8], names: &[u8], cookie: &[u8]) -> Option<Ja4hSet> {
    if ja4h.len() != 51 || ja4h[12] != b'_' || ja4h[25] != b'_' {
        return None;
    }
    let a: [u8; 12] = ja4h[..12].try_into().ok()?;
    let b_hash: [u8; 12] = ja4h[13..25].try_into().ok()?;
    let mut listed = Vec::with_capacity(names.len());
    if !names.is_empty() {
        for n in names.split(|b| *b == b',').filter(|n| is_listed(n)) {
            if !listed.is_empty() {
                listed.push(b',');
            }
            listed.extend_from_slice(n);
        }
    }
    let mut set = with_cookies(a, b_hash, &listed, cookie_pairs(cookie).collect());
    set.ja4h = lossy(ja4h.to_vec());
    Some(set)
}

/// A String from bytes that are UTF-8 unless a header carried invalid bytes.
fn lossy(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// First two characters of the method, lower-cased (`GET` → `ge`), `0`-padded; anything that is
/// not an ASCII letter or digit becomes `0` so the fingerprint stays a clean token.
#[inline]
pub fn method_code(method: &[u8]) -> [u8; 2] {
    let code = |i: usize| method.get(i).map_or(b'0', |b| METHOD_CODE[usize::from(*b)]);
    [code(0), code(1)]
}

/// [`method_code`] of each byte: lowercase letters and digits as they are, `0` otherwise.
const METHOD_CODE: [u8; 256] = {
    let mut t = [b'0'; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            t[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    t
};

/// Canonical rule 4: first tag of Accept-Language cut at `,` or `;`, `-` removed, lower-cased,
/// first 4 characters, `0`-padded (`en-US,en;q=0.9` → `enus`, absent → `0000`).
pub fn language_code(value: Option<&[u8]>) -> [u8; 4] {
    // One pass over the tag's first bytes. The tag's trailing whitespace needs no trimming:
    // it would give `0`s where the padding puts them anyway.
    let mut out = *b"0000";
    let v = value.unwrap_or(&[]);
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let mut n = 0;
    for &b in &v[start..] {
        if b == b',' || b == b';' || n == out.len() {
            break;
        }
        if b == b'-' {
            continue;
        }
        out[n] = if b.is_ascii_graphic() && b != b'_' {
            b.to_ascii_lowercase()
        } else {
            b'0'
        };
        n += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(list: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        list.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))
    }

    #[test]
    fn corpus_cookie_example() {
        // http1-with-cookies.pcapng from the corpus.
        let hs = [
            ("Host", "localhost:8000"),
            ("User-Agent", "curl"),
            ("Accept", "*/*"),
            ("Accept-Language", "da, en-GB;q=0.8"),
            ("Referer", "http://localhost:8000/"),
            ("Cookie", "yummy_cookie=choco; tasty_cookie=strawberry"),
        ];
        let s = Ja4hSet::compute(b"GET", HttpVersion::Http11, h(&hs));
        assert_eq!(s.ja4h_r, "ge11cr04da00_Host,User-Agent,Accept,Accept-Language_tasty_cookie,yummy_cookie_tasty_cookie=strawberry,yummy_cookie=choco");
        assert_eq!(s.ja4h_ro, "ge11cr04da00_Host,User-Agent,Accept,Accept-Language_yummy_cookie,tasty_cookie_yummy_cookie=choco,tasty_cookie=strawberry");
        assert_eq!(
            s.ja4h,
            "ge11cr04da00_8ddaef5d77af_280f366eaa04_c2fb0fe53442"
        );
        assert_eq!(
            s.ja4h_o,
            "ge11cr04da00_8ddaef5d77af_f9cc76dcacf7_a0565a60202f"
        );
    }

    #[test]
    fn parts_assemble_to_the_computed_ja4h() {
        use HttpVersion::*;
        let names = [
            "Host",
            "User-Agent",
            "Accept",
            "Cookie",
            "cookie",
            "Referer",
            "REFERER",
            "Accept-Language",
            "accept-language",
            ":path",
            "X-A",
            "Sec-Fetch-Mode",
            "",
        ];
        let cookies = ["", "a=1", "b=2; a=1", "z; y=; x=1", " c = 3 ;; d=4", ";"];
        let languages = ["en-US,en;q=0.9", "de", "*", "", "x_y"];
        let methods = ["GET", "post", "M-SEARCH", "x", ""];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut memo = CookieMemo::default();
        for _ in 0..3000 {
            let k = next(12);
            let list: Vec<&str> = (0..k).map(|_| names[next(names.len())]).collect();
            let joined = list.join(",");
            let cookie = cookies[next(cookies.len())];
            let language = languages[next(languages.len())];
            let language = (next(4) > 0).then_some(language.as_bytes());
            let method = methods[next(methods.len())].as_bytes();
            let version = [Http09, Http10, Http11, Http2, Http3][next(5)];
            let want = Ja4hSet::from_joined(
                method,
                version,
                joined.as_bytes(),
                cookie.as_bytes(),
                language,
            );
            let part = NamesPart::of(joined.as_bytes());
            let cookies = if part.cookie {
                memo.part(cookie.as_bytes())
            } else {
                NO_COOKIES
            };
            let language = language.filter(|_| {
                list.iter()
                    .any(|n| n.eq_ignore_ascii_case("accept-language"))
            });
            let got = assemble(method, version, &part, language, &cookies);
            assert_eq!(
                std::str::from_utf8(&got),
                Ok(&want.ja4h[..]),
                "{list:?} {cookie:?}"
            );
        }
        assert!(memo.computed() < 3000, "{}", memo.computed());
        assert_eq!(cookie_part(b""), NO_COOKIES);
        assert_eq!(cookie_part(b" ; "), NO_COOKIES);
    }

    #[test]
    fn cookie_memo_reuses_only_the_same_value() {
        let mut memo = CookieMemo::default();
        let mut computed = 0;
        for (cookie, reused) in [
            ("x=1; y=2", false),
            ("x=1; y=2", true),
            ("x=1; y=3", false),
            ("x=1y=3", false),
            ("", false),
            ("", true),
            ("x=1y=3", false),
        ] {
            assert_eq!(memo.part(cookie.as_bytes()), cookie_part(cookie.as_bytes()));
            computed += u64::from(!reused);
            assert_eq!(memo.computed(), computed, "{cookie}");
        }
    }

    #[test]
    fn derived_raw_forms_equal_the_computed_ones() {
        let cases: [&[(&str, &str)]; 5] = [
            &[("Host", "x"), ("User-Agent", "ua"), ("Accept", "*/*")],
            &[
                ("Host", "x"),
                ("Cookie", "z=1; a=2;; b"),
                ("Referer", "r"),
                ("Accept-Language", "fr-CH, fr;q=0.9"),
                ("cookie", "m=3"),
            ],
            &[("cookie", "a=1; b=2"), ("X-Forwarded-For", "1.2.3.4")],
            &[],
            &[("COOKIE", ""), ("referer", ""), ("Accept", "")],
        ];
        for headers in cases {
            let want = Ja4hSet::compute(b"POST", HttpVersion::Http11, h(headers));
            let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
            let cookie: Vec<&str> = headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
                .map(|(_, v)| *v)
                .collect();
            let got = derive_raw(
                want.ja4h.as_bytes(),
                names.join(",").as_bytes(),
                cookie.join("; ").as_bytes(),
            );
            assert_eq!(got.as_ref(), Some(&want), "{headers:?}");
        }
        assert_eq!(derive_raw(b"not a ja4h", b"Host", b""), None);
    }

    #[test]
    fn language_rule() {
        assert_eq!(&language_code(Some(b"en;q=0.9")), b"en00");
        assert_eq!(&language_code(Some(b"en-US,en;q=0.9")), b"enus");
        assert_eq!(&language_code(Some(b" de-CH-1996 , fr")), b"dech");
        assert_eq!(&language_code(Some(b"*")), b"*000");
        assert_eq!(&language_code(Some(b"")), b"0000");
        assert_eq!(&language_code(None), b"0000");
        // Rule 4 spelled out (trim the tag, drop `-`, map, pad) agrees on every short value.
        let reference = |v: &[u8]| {
            let end = v
                .iter()
                .position(|b| *b == b',' || *b == b';')
                .unwrap_or(v.len());
            let mut out = *b"0000";
            for (slot, b) in out
                .iter_mut()
                .zip(trim(&v[..end]).iter().filter(|b| **b != b'-'))
            {
                *slot = if b.is_ascii_graphic() && *b != b'_' {
                    b.to_ascii_lowercase()
                } else {
                    b'0'
                };
            }
            out
        };
        let alphabet = *b"aZ- \t,;_*\xc3";
        let mut v = Vec::new();
        for len in 0..=6u32 {
            for mut code in 0..alphabet.len().pow(len) {
                v.clear();
                for _ in 0..len {
                    v.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                assert_eq!(language_code(Some(&v)), reference(&v), "{v:?}");
            }
        }
    }

    #[test]
    fn cookie_and_referer_need_exact_names() {
        // Canonical rule 6: "Cookie2" and "X-Referer-Policy" are ordinary headers.
        let hs = [
            ("Host", "a"),
            ("Cookie2", "x=1"),
            ("X-Referer-Policy", "y"),
            ("referer", "http://a/"),
        ];
        let s = Ja4hSet::compute(b"POST", HttpVersion::Http10, h(&hs));
        assert_eq!(s.ja4h_r, "po10nr030000_Host,Cookie2,X-Referer-Policy__");
        assert!(s.ja4h.ends_with("_000000000000_000000000000"));
    }

    #[test]
    fn cookies_split_trimmed_sorted_by_name_then_value() {
        // Canonical rule 5, including several Cookie headers and empty parts.
        let hs = [("Cookie", " b=2;a=9 ;; a=1"), ("cookie", "flag")];
        let s = Ja4hSet::compute(b"GET", HttpVersion::Http11, h(&hs));
        assert_eq!(s.ja4h_r, "ge11cn000000__a,a,b,flag_a=1,a=9,b=2,flag");
        assert_eq!(s.ja4h_ro, "ge11cn000000__b,a,a,flag_b=2,a=9,a=1,flag");
    }

    #[test]
    fn http2_pseudo_headers_are_not_headers() {
        // Canonical rule 7.
        let hs = [
            (":method", "GET"),
            (":path", "/"),
            (":authority", "a"),
            (":scheme", "https"),
            ("user-agent", "x"),
            ("accept-language", "en-US"),
        ];
        let s = Ja4hSet::compute(b"GET", HttpVersion::Http2, h(&hs));
        assert_eq!(s.ja4h_r, "ge20nn02enus_user-agent,accept-language__");
    }

    #[test]
    fn header_count_caps_at_99_and_odd_methods() {
        let names: Vec<String> = (0..120).map(|i| format!("X-{i}")).collect();
        let hs: Vec<(&[u8], &[u8])> = names.iter().map(|n| (n.as_bytes(), &b"v"[..])).collect();
        let s = Ja4hSet::compute(b"PROPFIND", HttpVersion::Http11, hs);
        assert!(s.ja4h.starts_with("pr11nn990000_"));
        assert_eq!(&method_code(b"M"), b"m0");
        assert_eq!(&method_code(b"\"x"), b"0x");
    }
}
