//! JA4 (TLS client) and its raw/original-order variants, per FoxIO's JA4.md and the corpus's
//! canonical rules 1–3.
//!
//! `ja4()` is the hot path (one per TLS connection in the module): no heap allocation for hellos
//! with up to 128 ciphers and extensions; `Ja4Set::from_hello` builds all four strings.

use serde::Serialize;

use crate::hash::{hash12, is_grease, push_hex4, push_hex4_list, push_hex_bytes, EMPTY12};
use crate::tls::{ClientHello, EXT_ALPN, EXT_SERVER_NAME};

/// A JA4 fingerprint: always exactly 36 ASCII bytes (`t13d1516h2_8daaf6152771_e5627efa2ab1`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ja4([u8; 36]);

impl Ja4 {
    /// The fingerprint as text.
    pub fn as_str(&self) -> &str {
        // Every byte written is ASCII (see `part_a` and the hex helpers).
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Display for Ja4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Ja4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ja4({})", self.as_str())
    }
}

/// The two-character TLS version code of JA4/JA4S.
pub fn version_code(v: u16) -> [u8; 2] {
    match v {
        0x0304 => *b"13",
        0x0303 => *b"12",
        0x0302 => *b"11",
        0x0301 => *b"10",
        0x0300 => *b"s3",
        0x0002 => *b"s2",
        0xfeff => *b"d1",
        0xfefd => *b"d2",
        0xfefc => *b"d3",
        _ => *b"00",
    }
}

/// First and last character of an ALPN value (canonical rule 3): the characters themselves when
/// both are ASCII alphanumeric, else the first and last hex digits of the whole value; `00` when
/// there is no value.
pub fn alpn_code(value: Option<&[u8]>) -> [u8; 2] {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return *b"00";
    };
    let (first, last) = (v[0], v[v.len() - 1]);
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        [first, last]
    } else {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        [HEX[usize::from(first >> 4)], HEX[usize::from(last & 0xf)]]
    }
}

fn two_digits(n: usize) -> [u8; 2] {
    let n = n.min(99) as u8;
    [b'0' + n / 10, b'0' + n % 10]
}

/// Small-vector of u16 on the stack, spilling to the heap only for huge lists.
struct U16s {
    inline: [u16; 128],
    len: usize,
    heap: Vec<u16>,
}

impl U16s {
    fn new() -> Self {
        U16s {
            inline: [0; 128],
            len: 0,
            heap: Vec::new(),
        }
    }
    fn push(&mut self, v: u16) {
        if self.len < self.inline.len() {
            self.inline[self.len] = v;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(v);
        }
        self.len += 1;
    }
    fn as_mut_slice(&mut self) -> &mut [u16] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap[..]
        }
    }
    fn as_slice(&self) -> &[u16] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap[..]
        }
    }
}

/// Part a: `t13d1516h2`.
fn part_a(ch: &ClientHello<'_>, n_ciphers: usize, n_exts: usize) -> [u8; 10] {
    let v = version_code(ch.ja4_version());
    let c = two_digits(n_ciphers);
    let e = two_digits(n_exts);
    let a = alpn_code(ch.alpn_protocols().next());
    [
        b't',
        v[0],
        v[1],
        if ch.has_sni { b'd' } else { b'i' },
        c[0],
        c[1],
        e[0],
        e[1],
        a[0],
        a[1],
    ]
}

/// A small reusable byte buffer on the stack for the strings we hash.
struct Scratch {
    buf: Vec<u8>,
}

/// Computes JA4 (sorted, hashed) from a parsed ClientHello.
pub fn ja4(ch: &ClientHello<'_>) -> Ja4 {
    let mut ciphers = U16s::new();
    for c in ch.ciphers().filter(|c| !is_grease(*c)) {
        ciphers.push(c);
    }
    let mut exts = U16s::new();
    let mut n_exts = 0;
    for e in ch.extension_types().filter(|e| !is_grease(*e)) {
        n_exts += 1;
        if e != EXT_SERVER_NAME && e != EXT_ALPN {
            exts.push(e);
        }
    }
    let mut out = [0u8; 36];
    out[..10].copy_from_slice(&part_a(ch, ciphers.len, n_exts));
    out[10] = b'_';
    out[23] = b'_';

    let mut s = Scratch {
        buf: Vec::with_capacity(1024),
    };
    ciphers.as_mut_slice().sort_unstable();
    push_hex4_list(&mut s.buf, ciphers.as_slice());
    out[11..23].copy_from_slice(&hash12(&s.buf));

    exts.as_mut_slice().sort_unstable();
    if exts.len == 0 {
        out[24..36].copy_from_slice(&EMPTY12);
    } else {
        s.buf.clear();
        push_hex4_list(&mut s.buf, exts.as_slice());
        push_sigs(&mut s.buf, ch);
        out[24..36].copy_from_slice(&hash12(&s.buf));
    }
    Ja4(out)
}

fn push_sigs(buf: &mut Vec<u8>, ch: &ClientHello<'_>) {
    let mut first = true;
    for sig in ch.signature_algorithms().filter(|s| !is_grease(*s)) {
        buf.push(if first { b'_' } else { b',' });
        first = false;
        push_hex4(buf, sig);
    }
}

/// JA4 with its raw (`_r`), original-order (`_o`) and raw original-order (`_ro`) forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ja4Set {
    /// JA4: sorted ciphers and extensions, hashed.
    pub ja4: String,
    /// Raw JA4: the sorted lists in hex, unhashed.
    pub ja4_r: String,
    /// JA4 with ciphers and extensions in wire order, hashed.
    pub ja4_o: String,
    /// Raw JA4 in wire order.
    pub ja4_ro: String,
}

impl Ja4Set {
    /// Computes the fingerprint of a parsed ClientHello.
    pub fn from_hello(ch: &ClientHello<'_>) -> Self {
        let ciphers: Vec<u16> = ch.ciphers().filter(|c| !is_grease(*c)).collect();
        let exts_all: Vec<u16> = ch.extension_types().filter(|e| !is_grease(*e)).collect();
        let a = part_a(ch, ciphers.len(), exts_all.len());
        let a = std::str::from_utf8(&a).unwrap_or("");

        let mut sorted_ciphers = ciphers.clone();
        sorted_ciphers.sort_unstable();
        let mut sorted_exts: Vec<u16> = exts_all
            .iter()
            .copied()
            .filter(|e| *e != EXT_SERVER_NAME && *e != EXT_ALPN)
            .collect();
        sorted_exts.sort_unstable();

        let build = |ciphers: &[u16], exts: &[u16]| {
            let mut b = Vec::with_capacity(512);
            push_hex4_list(&mut b, ciphers);
            let mut c = Vec::with_capacity(512);
            push_hex4_list(&mut c, exts);
            push_sigs(&mut c, ch);
            let hashed_c = if exts.is_empty() { EMPTY12 } else { hash12(&c) };
            let raw = format!("{a}_{}_{}", ascii(&b), ascii(&c));
            let hashed = format!("{a}_{}_{}", ascii(&hash12(&b)), ascii(&hashed_c));
            (hashed, raw)
        };
        let (ja4, ja4_r) = build(&sorted_ciphers, &sorted_exts);
        let (ja4_o, ja4_ro) = build(&ciphers, &exts_all);
        Ja4Set {
            ja4,
            ja4_r,
            ja4_o,
            ja4_ro,
        }
    }
}

fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// JA3 and its raw string (`version,ciphers,extensions,groups,point_formats`, decimal, GREASE
/// removed, wire order; JA3 = MD5 of the raw string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ja3 {
    /// JA3: MD5 of the raw string, lowercase hex.
    pub ja3: String,
    /// The raw JA3 string.
    pub ja3_r: String,
}

impl Ja3 {
    /// Computes the fingerprint of a parsed ClientHello.
    pub fn from_hello(ch: &ClientHello<'_>) -> Self {
        use crate::hash::push_dec_list;
        use md5::{Digest, Md5};
        let strip =
            |it: &mut dyn Iterator<Item = u16>| it.filter(|v| !is_grease(*v)).collect::<Vec<u16>>();
        let mut r = String::with_capacity(256);
        r.push_str(&ch.legacy_version.to_string());
        r.push(',');
        push_dec_list(&mut r, &strip(&mut ch.ciphers()), '-');
        r.push(',');
        push_dec_list(&mut r, &strip(&mut ch.extension_types()), '-');
        r.push(',');
        push_dec_list(&mut r, &strip(&mut ch.supported_groups()), '-');
        r.push(',');
        push_dec_list(&mut r, ch.ec_point_formats, '-');
        let mut ja3 = String::with_capacity(32);
        push_hex_bytes(&mut ja3, &Md5::digest(r.as_bytes()));
        Ja3 { ja3, ja3_r: r }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::parse_client_hello;
    use crate::tls::tests::{alpn_ext, client_hello_body, sni_ext, u16_list_ext};

    /// The worked example of JA4.md: Chrome's hello with GREASE.
    fn spec_example() -> Vec<u8> {
        let ciphers = [
            0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let order = [
            0x1a1a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
            0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0x2a2a,
        ];
        let exts: Vec<(u16, Vec<u8>)> = order
            .iter()
            .map(|&t| {
                let d = match t {
                    0x0000 => sni_ext("example.com"),
                    0x0010 => alpn_ext(&[b"h2", b"http/1.1"]),
                    0x000d => u16_list_ext(
                        &[
                            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
                        ],
                        2,
                    ),
                    0x002b => u16_list_ext(&[0x3a3a, 0x0304, 0x0303], 1),
                    _ => vec![],
                };
                (t, d)
            })
            .collect();
        client_hello_body(0x0303, &ciphers, &exts)
    }

    #[test]
    fn spec_worked_example() {
        let body = spec_example();
        let ch = parse_client_hello(&body).unwrap();
        assert_eq!(ja4(&ch).as_str(), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        let set = Ja4Set::from_hello(&ch);
        assert_eq!(set.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(set.ja4_r, "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601");
        assert_eq!(set.ja4_ro, "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015_0403,0804,0401,0503,0805,0501,0806,0601");
        assert_eq!(set.ja4_o, "t13d1516h2_acb858a92679_18f69afefd3d");
    }

    #[test]
    fn grease_in_signature_algorithms_is_ignored() {
        // Canonical rule 1: Chromium's GREASE sig alg must not change the fingerprint.
        let make = |sigs: &[u16]| {
            client_hello_body(
                0x0303,
                &[0x1301],
                &[
                    (0x000d, u16_list_ext(sigs, 2)),
                    (0x002b, u16_list_ext(&[0x0304], 1)),
                ],
            )
        };
        let with = make(&[0x5a5a, 0x0403, 0x0804]);
        let without = make(&[0x0403, 0x0804]);
        let a = Ja4Set::from_hello(&parse_client_hello(&with).unwrap());
        let b = Ja4Set::from_hello(&parse_client_hello(&without).unwrap());
        assert_eq!(a, b);
        assert!(a.ja4_r.ends_with("_000d,002b_0403,0804"));
    }

    #[test]
    fn sig_algs_only_from_0x000d() {
        // Canonical rule 2: signature_algorithms_cert (0x0032) does not feed JA4_c.
        let body = client_hello_body(
            0x0303,
            &[0x1301],
            &[(0x0032, u16_list_ext(&[0x0601], 2)), (0x0017, vec![])],
        );
        let set = Ja4Set::from_hello(&parse_client_hello(&body).unwrap());
        assert_eq!(set.ja4_r, "t12i010200_1301_0017,0032");
    }

    #[test]
    fn alpn_rules() {
        assert_eq!(&alpn_code(Some(b"h2")), b"h2");
        assert_eq!(&alpn_code(Some(b"http/1.1")), b"h1");
        assert_eq!(&alpn_code(Some(b"a")), b"aa");
        assert_eq!(&alpn_code(Some(&[0xba, 0xad])), b"bd");
        assert_eq!(&alpn_code(Some(b"x-")), b"7d");
        assert_eq!(&alpn_code(Some(&[0xab])), b"ab");
        assert_eq!(&alpn_code(Some(&[0x20])), b"20");
        assert_eq!(&alpn_code(Some(&[0x30, 0x31, 0xab, 0xcd])), b"3d");
        assert_eq!(&alpn_code(Some(&[0x30, 0xab, 0xcd, 0x31])), b"01");
        assert_eq!(&alpn_code(Some(&[0x61, 0x20])), b"60");
        assert_eq!(&alpn_code(Some(b"")), b"00");
        assert_eq!(&alpn_code(None), b"00");
    }

    #[test]
    fn empty_lists_hash_to_zeros_and_counts_cap_at_99() {
        let ciphers: Vec<u16> = (1..=150).collect();
        let body = client_hello_body(0x0303, &ciphers, &[(0x0000, sni_ext("a"))]);
        let ch = parse_client_hello(&body).unwrap();
        let set = Ja4Set::from_hello(&ch);
        assert!(set.ja4.starts_with("t12d990100_"), "{}", set.ja4);
        assert!(set.ja4.ends_with("_000000000000"));
        assert_eq!(
            ja4(&ch).as_str(),
            set.ja4,
            "fast path spills past 128 ciphers correctly"
        );
        let none = client_hello_body(0x0301, &[], &[]);
        let set = Ja4Set::from_hello(&parse_client_hello(&none).unwrap());
        assert_eq!(set.ja4, "t10i000000_000000000000_000000000000");
        assert_eq!(set.ja4_r, "t10i000000__");
    }

    #[test]
    fn ja3_standard_form() {
        let body = client_hello_body(
            0x0303,
            &[0x0a0a, 0x1301, 0xc02b],
            &[
                (0x0a0a, vec![]),
                (0x0000, sni_ext("x")),
                (0x000a, u16_list_ext(&[0x1a1a, 0x001d, 0x0017], 2)),
                (0x000b, vec![1, 0]),
            ],
        );
        let j = Ja3::from_hello(&parse_client_hello(&body).unwrap());
        assert_eq!(j.ja3_r, "771,4865-49195,0-10-11,29-23,0");
        assert_eq!(j.ja3.len(), 32);
        use md5::{Digest, Md5};
        let mut expect = String::new();
        push_hex_bytes(&mut expect, &Md5::digest(b"771,4865-49195,0-10-11,29-23,0"));
        assert_eq!(j.ja3, expect);
    }
}
