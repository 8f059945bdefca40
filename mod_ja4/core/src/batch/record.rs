//! The export record: one request, or one connection that never produced a request, and
//! which request headers it carries (their roles).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordKind {
    #[default]
    Request = 0,
    /// A connection that ended without a request (handshake-only, SYN scan).
    Orphan = 1,
}

/// SYN facts carried by a record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SynRecord {
    pub ttl: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub options: Vec<u8>,
    pub ip_id: Option<u16>,
    pub dont_fragment: bool,
}

/// One exported record. `S` is `&[u8]` while the module builds it from request memory and
/// `String` once decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record<S> {
    pub kind: RecordKind,
    pub ts_us: i64,
    pub conn_id: u64,
    pub client_ip: Option<IpAddr>,
    pub client_port: u16,
    pub server_ip: Option<IpAddr>,
    pub server_port: u16,
    pub vhost: S,
    pub method: S,
    pub path: S,
    pub query: S,
    pub protocol: S,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_us: u64,
    pub keepalives: u32,
    pub tls_version: S,
    pub tls_cipher: S,
    pub tls_sni: S,
    pub tls_alpn: S,
    pub ja4: S,
    pub ja4_r: S,
    pub ja4_o: S,
    pub ja4_ro: S,
    pub ja3: S,
    pub ja3_r: S,
    pub ja4h: S,
    pub ja4h_r: S,
    pub ja4h_o: S,
    pub ja4h_ro: S,
    pub ja4t: S,
    pub ja4ts: S,
    pub ja4l_c: S,
    pub ja4l_s: S,
    pub ja4s: S,
    pub syn: Option<SynRecord>,
    pub sources: u8,
    /// Request header names in wire order (duplicates kept, Cookie and Referer included),
    /// joined by `,`.
    pub header_names: S,
    /// The Cookie header value (several Cookie headers joined by `; `). Carried for the JA4H
    /// raw forms; not stored by the sidecar.
    pub cookie: S,
    pub user_agent: S,
    pub accept: S,
    pub accept_language: S,
    pub accept_encoding: S,
    pub sec_fetch_site: S,
    pub sec_fetch_mode: S,
    pub sec_fetch_dest: S,
    pub sec_fetch_user: S,
    pub sec_ch_ua: S,
    pub sec_ch_ua_mobile: S,
    pub sec_ch_ua_platform: S,
    pub has_cookie: bool,
    pub has_referer: bool,
}

/// A decoded record.
pub type OwnedRecord = Record<String>;

impl<S> Record<S> {
    /// The same record with every string converted by `f`.
    pub fn map<T>(self, f: impl Fn(S) -> T) -> Record<T> {
        Record {
            kind: self.kind,
            ts_us: self.ts_us,
            conn_id: self.conn_id,
            client_ip: self.client_ip,
            client_port: self.client_port,
            server_ip: self.server_ip,
            server_port: self.server_port,
            vhost: f(self.vhost),
            method: f(self.method),
            path: f(self.path),
            query: f(self.query),
            protocol: f(self.protocol),
            status: self.status,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            duration_us: self.duration_us,
            keepalives: self.keepalives,
            tls_version: f(self.tls_version),
            tls_cipher: f(self.tls_cipher),
            tls_sni: f(self.tls_sni),
            tls_alpn: f(self.tls_alpn),
            ja4: f(self.ja4),
            ja4_r: f(self.ja4_r),
            ja4_o: f(self.ja4_o),
            ja4_ro: f(self.ja4_ro),
            ja3: f(self.ja3),
            ja3_r: f(self.ja3_r),
            ja4h: f(self.ja4h),
            ja4h_r: f(self.ja4h_r),
            ja4h_o: f(self.ja4h_o),
            ja4h_ro: f(self.ja4h_ro),
            ja4t: f(self.ja4t),
            ja4ts: f(self.ja4ts),
            ja4l_c: f(self.ja4l_c),
            ja4l_s: f(self.ja4l_s),
            ja4s: f(self.ja4s),
            syn: self.syn,
            sources: self.sources,
            header_names: f(self.header_names),
            cookie: f(self.cookie),
            user_agent: f(self.user_agent),
            accept: f(self.accept),
            accept_language: f(self.accept_language),
            accept_encoding: f(self.accept_encoding),
            sec_fetch_site: f(self.sec_fetch_site),
            sec_fetch_mode: f(self.sec_fetch_mode),
            sec_fetch_dest: f(self.sec_fetch_dest),
            sec_fetch_user: f(self.sec_fetch_user),
            sec_ch_ua: f(self.sec_ch_ua),
            sec_ch_ua_mobile: f(self.sec_ch_ua_mobile),
            sec_ch_ua_platform: f(self.sec_ch_ua_platform),
            has_cookie: self.has_cookie,
            has_referer: self.has_referer,
        }
    }
}

/// The request headers whose first value a record carries, in [`Record`] field order
/// (`user_agent` … `sec_ch_ua_platform`).
pub const PICKED_HEADERS: [&[u8]; 11] = [
    b"user-agent",
    b"accept",
    b"accept-language",
    b"accept-encoding",
    b"sec-fetch-site",
    b"sec-fetch-mode",
    b"sec-fetch-dest",
    b"sec-fetch-user",
    b"sec-ch-ua",
    b"sec-ch-ua-mobile",
    b"sec-ch-ua-platform",
];

/// Index of Accept-Language in [`PICKED_HEADERS`].
pub const PICKED_ACCEPT_LANGUAGE: usize = 2;

/// What a request header is to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderRole {
    Cookie,
    Referer,
    /// Its value goes to the record field at this index of [`PICKED_HEADERS`].
    Picked(usize),
    Other,
}

/// The role of header `name` (ASCII case-insensitive), decided by its length first and then
/// by word-wide comparisons: a few instructions per header.
#[inline(always)]
pub fn header_role(name: &[u8]) -> HeaderRole {
    let picked = |i: usize| {
        if eq_lower(name, PICKED_HEADERS[i]) {
            HeaderRole::Picked(i)
        } else {
            HeaderRole::Other
        }
    };
    match name.len() {
        6 if eq_lower(name, b"cookie") => HeaderRole::Cookie,
        6 => picked(1),
        7 if eq_lower(name, b"referer") => HeaderRole::Referer,
        10 => picked(0),
        15 => match picked(2) {
            HeaderRole::Other => picked(3),
            r => r,
        },
        14 => (4..8)
            .map(picked)
            .find(|r| *r != HeaderRole::Other)
            .unwrap_or(HeaderRole::Other),
        9 => picked(8),
        16 => picked(9),
        18 => picked(10),
        _ => HeaderRole::Other,
    }
}

/// Whether `name` equals `lit` ignoring ASCII case, where `lit` is lowercase letters and `-`
/// only and at least four bytes long, a word at a time: OR-ing 0x20 into `name` lowercases its
/// letters; where `lit` has `-` (0x40 clear) the name's byte must also have 0x20 set, which
/// rules out the one other byte OR-ing would turn into `-` (CR).
#[inline(always)]
pub(super) fn eq_lower(name: &[u8], lit: &[u8]) -> bool {
    let n = lit.len();
    if name.len() != n || n < 4 {
        return name.eq_ignore_ascii_case(lit);
    }
    if n < 8 {
        return same_word(word4(name, 0), word4(lit, 0))
            && same_word(word4(name, n - 4), word4(lit, n - 4));
    }
    let mut i = 0;
    while i + 8 < n {
        if !same_word(word8(name, i), word8(lit, i)) {
            return false;
        }
        i += 8;
    }
    same_word(word8(name, n - 8), word8(lit, n - 8))
}

/// Bytes `i..i + 4` of `b` as a little-endian word (zero-extended).
#[inline(always)]
pub(super) fn word4(b: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]))
}

/// Bytes `i..i + 8` of `b` as a little-endian word.
#[inline(always)]
pub(super) fn word8(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// [`eq_lower`] on one word: `x` from the name, `l` from the lowercase literal.
#[inline(always)]
pub(super) fn same_word(x: u64, l: u64) -> bool {
    const CASE: u64 = 0x2020_2020_2020_2020;
    let dash = (!l & 0x4040_4040_4040_4040) >> 1;
    // Zero-extended 4-byte words: the high bytes of both are 0, and 0 | 0x20 != 0.
    let case = if l >> 32 == 0 {
        CASE & 0xffff_ffff
    } else {
        CASE
    };
    let dash = dash & case;
    x | case == l && x & dash == dash
}

impl OwnedRecord {
    /// Fills the JA4H raw forms the module left for the decoder to derive.
    pub fn derive_ja4h_raw(&mut self) {
        if self.ja4h.is_empty()
            || !(self.ja4h_r.is_empty() && self.ja4h_o.is_empty() && self.ja4h_ro.is_empty())
        {
            return;
        }
        if let Some(set) = crate::fingerprint::ja4h::derive_raw(
            self.ja4h.as_bytes(),
            self.header_names.as_bytes(),
            self.cookie.as_bytes(),
        ) {
            (self.ja4h_r, self.ja4h_o, self.ja4h_ro) = (set.ja4h_r, set.ja4h_o, set.ja4h_ro);
        }
    }
}
