//! The export record and the batch wire format shared by mod_ja4 and the sidecar.
//!
//! Owns: [`Record`] (one request, or one connection that never produced a request), its compact
//! binary encoding, batch framing, and a JSON Lines rendering of the same record.
//!
//! Frame: `"JA4B"`, version u16, flags u16, record count u32, payload length u32, CRC-32 of the
//! payload u32 (when flag [`FLAG_CHECKSUM`] is set; frames stored on disk carry one, frames on
//! the module's unix socket, which cannot corrupt them, do not), reserved u32 (little endian,
//! 24 bytes); then the payload: each record as a u32 length (little endian) and its body: a
//! fixed-size head, the connection segment, then the *strings block*: the lengths of its
//! strings (u32 each) and their bytes (see [`write_record`]). A decoder ignores fields it does
//! not know at the end of a record, so a newer module can talk to an older sidecar within one
//! major version.
//!
//! The layout is built for the module's per-request cost (version 3):
//! - the fields of a record that belong to its connection (TLS, JA4/JA3, JA4T/JA4TS/JA4L/JA4S,
//!   the SYN) form one *connection segment*; a later record of the same connection in the same
//!   frame names the earlier segment by its payload offset instead of repeating it;
//! - the strings of a request record are written at log time straight from where the request
//!   and its connection hold them ([`write_record`]): one copy each, no intermediate record;
//! - header names travel as one string joined by `,` (as JA4H_r joins them; a name holding a
//!   comma, possible only under `HttpProtocolOptions Unsafe`, reads back as two names);
//! - the JA4H raw forms may be left empty: the decoder derives them from JA4H, the header names
//!   and the Cookie value ([`crate::fingerprint::ja4h::derive_raw`]), the same values the module
//!   would have sent.
//!
//! Never: trusts a length, a count or a segment offset from the wire, or allocates beyond
//! [`MAX_PAYLOAD`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAGIC: [u8; 4] = *b"JA4B";
pub const VERSION: u16 = 3;
pub const HEADER_LEN: usize = 24;
/// Frame flag: the CRC-32 field holds the payload's checksum.
pub const FLAG_CHECKSUM: u16 = 1;
/// Largest payload accepted in one frame.
pub const MAX_PAYLOAD: usize = 32 << 20;

/// Where a record's fingerprints came from (bit flags in [`Record::sources`]).
pub const SOURCE_INLINE_HELLO: u8 = 1;
pub const SOURCE_SAVED_SYN: u8 = 2;
pub const SOURCE_CAPTURE: u8 = 4;

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
fn eq_lower(name: &[u8], lit: &[u8]) -> bool {
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
fn word4(b: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]))
}

/// Bytes `i..i + 8` of `b` as a little-endian word.
#[inline(always)]
fn word8(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// [`eq_lower`] on one word: `x` from the name, `l` from the lowercase literal.
#[inline(always)]
fn same_word(x: u64, l: u64) -> bool {
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("more bytes are needed")]
    Incomplete,
    #[error("bad magic (not a JA4 batch)")]
    BadMagic,
    #[error("unsupported batch version {0}")]
    Version(u16),
    #[error("payload of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("checksum mismatch")]
    Checksum,
    #[error("malformed record {index}: {what}")]
    Record { index: u32, what: &'static str },
    #[error("{declared} records declared, {found} found")]
    Count { declared: u32, found: u32 },
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Appends `v` as an unsigned LEB128 varint (also ClickHouse's RowBinary `VarUInt`).
#[inline(always)]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `b` with its varint length (also ClickHouse's RowBinary `String`).
#[inline(always)]
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if b.len() < 0x80 {
        out.push(b.len() as u8);
        if b.is_empty() {
            return;
        }
    } else {
        put_varint(out, b.len() as u64);
    }
    out.extend_from_slice(b);
}

/// How a record's connection segment is written.
#[derive(Debug, Clone, Copy)]
pub enum Segment<'a> {
    /// Bytes [`Record::connection_segment`] wrote for this record or an earlier record of the
    /// connection.
    Bytes(&'a [u8]),
    /// A reference to the segment an earlier record of the same frame carries, at this
    /// payload offset (as [`write_record`] returned it).
    Ref(u32),
}

const SEGMENT_INLINE: u8 = 0;
const SEGMENT_REF: u8 = 1;

/// Number of strings in a record, in the order of the `S_*` indices.
pub const STRINGS: usize = 19;
pub const S_VHOST: usize = 0;
/// The request line as the client sent it (`r->the_request`): method, target, protocol. The
/// decoder splits it ([`split_request_line`]); one string instead of four.
pub const S_REQUEST_LINE: usize = 1;
/// Header names in wire order joined by `,`.
pub const S_HEADER_NAMES: usize = 2;
/// The first value of [`PICKED_HEADERS`]`[i]` is string `S_PICKED + i`.
pub const S_PICKED: usize = 3;
/// The Cookie value (several Cookie headers joined by `; `).
pub const S_COOKIE: usize = S_PICKED + PICKED_HEADERS.len();
pub const S_JA4H_R: usize = S_COOKIE + 1;
pub const S_JA4H_O: usize = S_COOKIE + 2;
pub const S_JA4H_RO: usize = S_COOKIE + 3;
/// JA4H comes last, so the module can keep it NUL-terminated right after the block for its
/// environment variable.
pub const S_JA4H: usize = S_COOKIE + 4;
const _: () = assert!(S_JA4H + 1 == STRINGS);

/// Length of a record's strings table (a u32 length per string).
pub const TABLE_LEN: usize = 4 * STRINGS;

/// The fixed-size values of a record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Head {
    pub kind: RecordKind,
    pub has_cookie: bool,
    pub has_referer: bool,
    pub ts_us: i64,
    pub conn_id: u64,
    pub client_ip: Option<IpAddr>,
    pub client_port: u16,
    pub server_ip: Option<IpAddr>,
    pub server_port: u16,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_us: u64,
    pub keepalives: u32,
}

impl Head {
    /// The head with this head's connection values (kind, connection id, addresses), for
    /// the records of one connection (each writes its [`RequestValues`] over it).
    pub fn template(&self) -> HeadTemplate {
        let mut h = [0u8; HEAD_LEN];
        h[0] = self.kind as u8;
        h[10..18].copy_from_slice(&self.conn_id.to_le_bytes());
        h[18..35].copy_from_slice(&ip_bytes(self.client_ip));
        h[35..37].copy_from_slice(&self.client_port.to_le_bytes());
        h[37..54].copy_from_slice(&ip_bytes(self.server_ip));
        h[54..56].copy_from_slice(&self.server_port.to_le_bytes());
        HeadTemplate(h)
    }

    /// This head's request values.
    pub fn request(&self) -> RequestValues {
        RequestValues {
            has_cookie: self.has_cookie,
            has_referer: self.has_referer,
            ts_us: self.ts_us,
            status: self.status,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            duration_us: self.duration_us,
            keepalives: self.keepalives,
        }
    }
}

/// The values of a record's head that are the request's own (the rest are its
/// connection's: [`HeadTemplate`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestValues {
    pub has_cookie: bool,
    pub has_referer: bool,
    pub ts_us: i64,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_us: u64,
    pub keepalives: u32,
}

/// A record head with its connection's values written once; each record sets its own.
#[derive(Debug, Clone, Copy)]
pub struct HeadTemplate([u8; HEAD_LEN]);

impl HeadTemplate {
    /// Writes the request values `v` into a head that holds the connection's.
    #[inline(always)]
    fn set(h: &mut [u8; HEAD_LEN], v: &RequestValues) {
        h[1] = u8::from(v.has_cookie) | (u8::from(v.has_referer) << 1);
        h[2..10].copy_from_slice(&v.ts_us.to_le_bytes());
        h[56..58].copy_from_slice(&v.status.to_le_bytes());
        h[58..66].copy_from_slice(&v.bytes_in.to_le_bytes());
        h[66..74].copy_from_slice(&v.bytes_out.to_le_bytes());
        h[74..82].copy_from_slice(&v.duration_us.to_le_bytes());
        h[82..86].copy_from_slice(&v.keepalives.to_le_bytes());
    }
}

/// Appends one record (length-prefixed): `head`, the connection segment as `segment` says,
/// and the strings block of `strings` (in `S_*` order). `payload_start` is where the frame's
/// payload begins in `out`; the return value is the payload offset of the segment, for a
/// [`Segment::Ref`] from a later record of the same frame (meaningful unless `segment` was
/// itself a reference).
///
/// Record body: the head ([`HEAD_LEN`] bytes), the connection segment (tag 0 and its fields,
/// or tag 1 and a u32 payload offset), the strings block: the length of every string (u32
/// each, in `S_*` order), then the bytes of the strings in that order.
pub fn write_record(
    out: &mut Vec<u8>,
    payload_start: usize,
    head: &Head,
    segment: Segment,
    strings: &[&[u8]; STRINGS],
) -> u32 {
    let lengths: [u32; STRINGS] = std::array::from_fn(|i| strings[i].len() as u32);
    let total = strings.iter().map(|s| s.len()).sum();
    let (template, values) = (head.template(), head.request());
    let at = write_record_start(
        out,
        payload_start,
        (&template, &values),
        segment,
        &lengths,
        total,
    );
    for s in strings {
        out.extend_from_slice(s);
    }
    at
}

/// [`write_record`] up to the strings' bytes: the length prefix (counting `strings_len` bytes
/// of strings), the head (the connection's template with the request's values written over
/// it in the frame), the segment and the strings table of `lengths`. The caller then
/// appends the strings' bytes in `S_*` order, `strings_len` of them in all. The module does
/// so at log time with one copy per string, straight from where the request holds them.
#[inline(always)]
pub fn write_record_start(
    out: &mut Vec<u8>,
    payload_start: usize,
    (template, values): (&HeadTemplate, &RequestValues),
    segment: Segment,
    lengths: &[u32; STRINGS],
    strings_len: usize,
) -> u32 {
    let seg_len = match segment {
        Segment::Bytes(b) => b.len(),
        Segment::Ref(_) => 5,
    };
    let len = HEAD_LEN + seg_len + TABLE_LEN + strings_len;
    out.reserve(4 + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    // The head: the connection's values, then the request's written over them in place.
    out.extend_from_slice(&template.0);
    let at = out.len() - payload_start;
    if let Some(h) = out.last_chunk_mut::<HEAD_LEN>() {
        HeadTemplate::set(h, values);
    }
    match segment {
        Segment::Bytes(b) => out.extend_from_slice(b),
        Segment::Ref(offset) => {
            let mut r = [SEGMENT_REF, 0, 0, 0, 0];
            r[1..].copy_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&r);
        }
    }
    out.extend_from_slice(lengths.map(u32::to_le_bytes).as_flattened());
    at as u32
}

impl<S: AsRef<[u8]>> Record<S> {
    /// Appends this record (length-prefixed, its connection segment from its own fields) to a
    /// batch payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut seg = Vec::new();
        self.connection_segment(&mut seg);
        self.encode_with(out, 0, Segment::Bytes(&seg));
    }

    /// [`write_record`] for this record, with its connection segment as `segment` says.
    pub fn encode_with(&self, out: &mut Vec<u8>, payload_start: usize, segment: Segment) -> u32 {
        let mut line = Vec::new();
        self.write_request_line(&mut line);
        let strings = self.strings(&line);
        write_record(out, payload_start, &self.head(), segment, &strings)
    }

    /// The record's strings in `S_*` order, its request line given.
    fn strings<'s>(&'s self, line: &'s [u8]) -> [&'s [u8]; STRINGS] {
        let mut s: [&[u8]; STRINGS] = [b""; STRINGS];
        s[S_VHOST] = self.vhost.as_ref();
        s[S_REQUEST_LINE] = line;
        s[S_HEADER_NAMES] = self.header_names.as_ref();
        for (i, v) in self.header_value_fields().into_iter().enumerate() {
            s[S_PICKED + i] = v.as_ref();
        }
        s[S_COOKIE] = self.cookie.as_ref();
        s[S_JA4H_R] = self.ja4h_r.as_ref();
        s[S_JA4H_O] = self.ja4h_o.as_ref();
        s[S_JA4H_RO] = self.ja4h_ro.as_ref();
        s[S_JA4H] = self.ja4h.as_ref();
        s
    }

    /// The request line made of the method, path, query and protocol (what
    /// [`split_request_line`] splits back). Nothing when they are all empty (an orphan record).
    fn write_request_line(&self, w: &mut Vec<u8>) {
        let (method, path, query, protocol) = (
            self.method.as_ref(),
            self.path.as_ref(),
            self.query.as_ref(),
            self.protocol.as_ref(),
        );
        if method.is_empty() && path.is_empty() && query.is_empty() && protocol.is_empty() {
            return;
        }
        w.extend_from_slice(method);
        w.push(b' ');
        w.extend_from_slice(path);
        if !query.is_empty() {
            w.push(b'?');
            w.extend_from_slice(query);
        }
        w.push(b' ');
        w.extend_from_slice(protocol);
    }

    /// The record's fixed-size values.
    pub fn head(&self) -> Head {
        Head {
            kind: self.kind,
            has_cookie: self.has_cookie,
            has_referer: self.has_referer,
            ts_us: self.ts_us,
            conn_id: self.conn_id,
            client_ip: self.client_ip,
            client_port: self.client_port,
            server_ip: self.server_ip,
            server_port: self.server_port,
            status: self.status,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            duration_us: self.duration_us,
            keepalives: self.keepalives,
        }
    }

    /// The bytes written for the connection segment: the TLS fields (`tls_version` …
    /// `ja3_r`), the transport fields (`ja4t` … `ja4s`), the SYN and the sources. Written once
    /// per connection, so plainly.
    pub fn connection_segment(&self, o: &mut Vec<u8>) {
        o.push(SEGMENT_INLINE);
        for s in self.connection_fields() {
            put_bytes(o, s.as_ref());
        }
        match &self.syn {
            None => o.push(0),
            Some(s) => {
                o.push(1 | if s.dont_fragment { 2 } else { 0 });
                o.push(s.ttl);
                put_varint(o, u64::from(s.window));
                for v in [
                    s.mss.map(u64::from),
                    s.window_scale.map(u64::from),
                    s.ip_id.map(u64::from),
                ] {
                    // Absent is 0, a value v is v + 1.
                    put_varint(o, v.map_or(0, |x| x + 1));
                }
                put_bytes(o, &s.options);
            }
        }
        o.push(self.sources);
    }

    fn connection_fields(&self) -> [&S; 15] {
        [
            &self.tls_version,
            &self.tls_cipher,
            &self.tls_sni,
            &self.tls_alpn,
            &self.ja4,
            &self.ja4_r,
            &self.ja4_o,
            &self.ja4_ro,
            &self.ja3,
            &self.ja3_r,
            &self.ja4t,
            &self.ja4ts,
            &self.ja4l_c,
            &self.ja4l_s,
            &self.ja4s,
        ]
    }

    /// [`Self::connection_fields`], in the same order, to be written (by the decoder).
    fn connection_fields_mut(&mut self) -> [&mut S; 15] {
        [
            &mut self.tls_version,
            &mut self.tls_cipher,
            &mut self.tls_sni,
            &mut self.tls_alpn,
            &mut self.ja4,
            &mut self.ja4_r,
            &mut self.ja4_o,
            &mut self.ja4_ro,
            &mut self.ja3,
            &mut self.ja3_r,
            &mut self.ja4t,
            &mut self.ja4ts,
            &mut self.ja4l_c,
            &mut self.ja4l_s,
            &mut self.ja4s,
        ]
    }

    fn fingerprint_fields(&self) -> [&S; 19] {
        [
            &self.tls_version,
            &self.tls_cipher,
            &self.tls_sni,
            &self.tls_alpn,
            &self.ja4,
            &self.ja4_r,
            &self.ja4_o,
            &self.ja4_ro,
            &self.ja3,
            &self.ja3_r,
            &self.ja4h,
            &self.ja4h_r,
            &self.ja4h_o,
            &self.ja4h_ro,
            &self.ja4t,
            &self.ja4ts,
            &self.ja4l_c,
            &self.ja4l_s,
            &self.ja4s,
        ]
    }

    /// The header names, split.
    pub fn header_name_list(&self) -> impl Iterator<Item = &[u8]> {
        let joined = self.header_names.as_ref();
        joined
            .split(|b| *b == b',')
            .filter(move |_| !joined.is_empty())
    }

    fn header_value_fields(&self) -> [&S; 11] {
        [
            &self.user_agent,
            &self.accept,
            &self.accept_language,
            &self.accept_encoding,
            &self.sec_fetch_site,
            &self.sec_fetch_mode,
            &self.sec_fetch_dest,
            &self.sec_fetch_user,
            &self.sec_ch_ua,
            &self.sec_ch_ua_mobile,
            &self.sec_ch_ua_platform,
        ]
    }
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

/// Length of a record's head (little endian, fixed layout: its connection's
/// [`Head::template`] with its [`RequestValues`] written over it).
pub const HEAD_LEN: usize = 86;

/// An address as a tag (0 none, 4, 6) and 16 bytes (IPv4 in the first four).
fn ip_bytes(a: Option<IpAddr>) -> [u8; 17] {
    let mut b = [0u8; 17];
    match a {
        None => {}
        Some(IpAddr::V4(v4)) => {
            b[0] = 4;
            b[1..5].copy_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            b[0] = 6;
            b[1..].copy_from_slice(&v6.octets());
        }
    }
    b
}

fn ip_from(b: &[u8]) -> Option<Option<IpAddr>> {
    match b.first()? {
        0 => Some(None),
        4 => Some(Some(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(b.get(1..5)?).ok()?,
        )))),
        6 => Some(Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(b.get(1..17)?).ok()?,
        )))),
        _ => None,
    }
}

/// Builds one frame, with a checksum, from encoded records (each produced by
/// [`Record::encode`]).
pub fn frame(payload: &[u8], count: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER_LEN + payload.len());
    begin_frame(&mut f);
    f.extend_from_slice(payload);
    finish_frame(&mut f, count, true);
    f
}

/// Starts a frame in `buf` (which should be empty): room for the header, filled in by
/// [`finish_frame`] once the records are appended. The payload starts at [`HEADER_LEN`].
pub fn begin_frame(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[0; HEADER_LEN]);
}

/// Writes the header of a frame begun with [`begin_frame`] holding `count` records, with the
/// payload's checksum when `checksum` (the same bytes as [`frame`] of its payload then).
pub fn finish_frame(buf: &mut [u8], count: u32, checksum: bool) {
    let len = buf.len().saturating_sub(HEADER_LEN);
    let payload = &buf[HEADER_LEN.min(buf.len())..];
    let (flags, crc) = if checksum {
        (FLAG_CHECKSUM, crc32(payload))
    } else {
        (0, 0)
    };
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&flags.to_le_bytes());
    h[8..12].copy_from_slice(&count.to_le_bytes());
    h[12..16].copy_from_slice(&(len as u32).to_le_bytes());
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    if let Some(dst) = buf.get_mut(..HEADER_LEN) {
        dst.copy_from_slice(&h);
    }
}

/// CRC-32 (IEEE) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    h.finalize()
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Reads the frame at the start of `buf`: its records and the bytes it used.
pub fn decode_frame(buf: &[u8]) -> Result<(Vec<OwnedRecord>, usize), BatchError> {
    let (records, used) = decode_frame_ref(buf)?;
    Ok((
        records
            .into_iter()
            .map(|r| {
                let mut o = r.map(|b| String::from_utf8_lossy(b).into_owned());
                o.derive_ja4h_raw();
                o
            })
            .collect(),
        used,
    ))
}

/// Records borrowing from a frame, and the bytes the frame used.
pub type BorrowedFrame<'a> = (Vec<Record<&'a [u8]>>, usize);

/// Like [`decode_frame`], borrowing every string from `buf` (no allocation per field). JA4H raw
/// forms the module left empty stay empty (see [`OwnedRecord::derive_ja4h_raw`]).
pub fn decode_frame_ref(buf: &[u8]) -> Result<BorrowedFrame<'_>, BatchError> {
    let hdr = buf.get(..HEADER_LEN).ok_or(BatchError::Incomplete)?;
    if hdr[..4] != MAGIC {
        return Err(BatchError::BadMagic);
    }
    let version = u16::from_le_bytes([hdr[4], hdr[5]]);
    if version != VERSION {
        return Err(BatchError::Version(version));
    }
    let count = u32::from_le_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
    let len = u32::from_le_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(BatchError::TooLarge(len));
    }
    let crc = u32::from_le_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]);
    let payload = buf
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or(BatchError::Incomplete)?;
    let flags = u16::from_le_bytes([hdr[6], hdr[7]]);
    if flags & FLAG_CHECKSUM != 0 && crc32(payload) != crc {
        return Err(BatchError::Checksum);
    }
    let mut r = Reader(payload);
    let mut out = Vec::with_capacity((count as usize).min(65_536));
    let mut segments = Vec::new();
    let mut index = 0u32;
    while !r.0.is_empty() {
        let body = r.record().ok_or(BatchError::Record {
            index,
            what: "length",
        })?;
        let rec = decode_record(payload, body, &mut segments, &out)
            .map_err(|what| BatchError::Record { index, what })?;
        out.push(rec);
        index += 1;
    }
    if index != count {
        return Err(BatchError::Count {
            declared: count,
            found: index,
        });
    }
    Ok((out, HEADER_LEN + len))
}

/// Length of the frame starting at `buf` once its header is complete (to skip or bound reads).
pub fn frame_len(buf: &[u8]) -> Result<usize, BatchError> {
    let hdr = buf.get(..HEADER_LEN).ok_or(BatchError::Incomplete)?;
    if hdr[..4] != MAGIC {
        return Err(BatchError::BadMagic);
    }
    let len = u32::from_le_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(BatchError::TooLarge(len));
    }
    Ok(HEADER_LEN + len)
}

/// Decodes one record of `payload`. `segments` holds the payload offsets of the inline
/// connection segments decoded so far (ascending) and the index in `earlier` (the records
/// decoded so far) of the record that carried each: a reference must name one of them, and
/// takes that record's connection fields rather than decoding the segment again.
fn decode_record<'a>(
    payload: &'a [u8],
    body: &'a [u8],
    segments: &mut Vec<(usize, usize)>,
    earlier: &[Record<&'a [u8]>],
) -> Result<Record<&'a [u8]>, &'static str> {
    let mut r = Reader(body);
    let h = r.take::<HEAD_LEN>().ok_or("head")?;
    let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap_or_default());
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let mut rec = Record {
        kind: match h[0] {
            0 => RecordKind::Request,
            1 => RecordKind::Orphan,
            _ => return Err("kind"),
        },
        has_cookie: h[1] & 1 != 0,
        has_referer: h[1] & 2 != 0,
        ts_us: u64_at(2) as i64,
        conn_id: u64_at(10),
        client_ip: ip_from(&h[18..35]).ok_or("client ip")?,
        client_port: u16_at(35),
        server_ip: ip_from(&h[37..54]).ok_or("server ip")?,
        server_port: u16_at(54),
        status: u16_at(56),
        bytes_in: u64_at(58),
        bytes_out: u64_at(66),
        duration_us: u64_at(74),
        keepalives: u32::from_le_bytes([h[82], h[83], h[84], h[85]]),
        ..Default::default()
    };
    // The connection segment: inline here, or a reference to an earlier inline one. Offsets
    // are positions in `payload`; `body` is a slice of it.
    let seg_at = r.0.as_ptr() as usize - payload.as_ptr() as usize;
    match r.0.first() {
        Some(&SEGMENT_INLINE) => {
            if segments.last().is_none_or(|&(l, _)| l < seg_at) {
                segments.push((seg_at, earlier.len()));
            }
            decode_segment(&mut r, &mut rec)?;
        }
        Some(&SEGMENT_REF) => {
            r.u8();
            let at = u32::from_le_bytes(r.take::<4>().ok_or("segment reference")?) as usize;
            let carrier = segments
                .binary_search_by_key(&at, |&(offset, _)| offset)
                .ok()
                .and_then(|i| earlier.get(segments[i].1))
                .ok_or("segment reference")?;
            rec.connection_fields_from(carrier);
        }
        _ => return Err("segment"),
    }
    let mut lens = [0usize; STRINGS];
    for l in lens.iter_mut() {
        *l = u32::from_le_bytes(r.take::<4>().ok_or("string lengths")?) as usize;
    }
    let mut strs: [&[u8]; STRINGS] = [&[]; STRINGS];
    for (s, &n) in strs.iter_mut().zip(&lens) {
        if n > r.0.len() {
            return Err("string length");
        }
        let (a, b) = r.0.split_at(n);
        *s = a;
        r.0 = b;
    }
    let [vhost, line, header_names, ua, accept, lang, enc, site, mode, dest, user, ch_ua, ch_mobile, ch_platform, cookie, ja4h_r, ja4h_o, ja4h_ro, ja4h] =
        strs;
    rec.vhost = vhost;
    (rec.method, rec.path, rec.query, rec.protocol) = split_request_line(line);
    (rec.ja4h, rec.header_names) = (ja4h, header_names);
    (
        rec.user_agent,
        rec.accept,
        rec.accept_language,
        rec.accept_encoding,
    ) = (ua, accept, lang, enc);
    (
        rec.sec_fetch_site,
        rec.sec_fetch_mode,
        rec.sec_fetch_dest,
        rec.sec_fetch_user,
    ) = (site, mode, dest, user);
    (rec.sec_ch_ua, rec.sec_ch_ua_mobile, rec.sec_ch_ua_platform) = (ch_ua, ch_mobile, ch_platform);
    (rec.cookie, rec.ja4h_r, rec.ja4h_o, rec.ja4h_ro) = (cookie, ja4h_r, ja4h_o, ja4h_ro);
    // Anything left belongs to a newer version of the format: ignored.
    Ok(rec)
}

/// The method, path, query and protocol of a request line (`GET /a?b HTTP/1.1`), as httpd
/// parses them into `r->method`, `r->parsed_uri.path`, `r->args` and `r->protocol`: the path
/// of an absolute-form target (`http://host/a`) starts at its first `/` after the authority,
/// a fragment is not part of the path or query, an authority-form target (CONNECT) has no
/// path, and a line without a protocol is HTTP/0.9. Empty parts for an empty line.
pub fn split_request_line(line: &[u8]) -> (&[u8], &[u8], &[u8], &[u8]) {
    if line.is_empty() {
        return (b"", b"", b"", b"");
    }
    let (method, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b""[..]),
    };
    let (target, protocol): (&[u8], &[u8]) = match rest.iter().rposition(|&b| b == b' ') {
        Some(i) => (rest[..i].trim_ascii(), &rest[i + 1..]),
        None => (rest.trim_ascii(), b"HTTP/0.9"),
    };
    // One scan for the end of the path: `?` (a query follows, up to any `#`) or `#`.
    let (path_part, query) = match target.iter().position(|&b| b == b'?' || b == b'#') {
        Some(i) if target[i] == b'?' => {
            let q = &target[i + 1..];
            let end = q.iter().position(|&b| b == b'#').unwrap_or(q.len());
            (&target[..i], &q[..end])
        }
        Some(i) => (&target[..i], &b""[..]),
        None => (target, &b""[..]),
    };
    let path = match path_part.first() {
        _ if method == b"CONNECT" => &b""[..],
        Some(b'/') => path_part,
        _ => match path_part.windows(3).position(|w| w == b"://") {
            Some(i) => {
                let after = &path_part[i + 3..];
                after
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(&b""[..], |j| &after[j..])
            }
            None => path_part,
        },
    };
    (method, path, query, protocol)
}

impl Record<&[u8]> {
    /// Takes the connection-segment fields of `other` (a record of the same connection).
    fn connection_fields_from(&mut self, other: &Self) {
        for (dst, src) in self
            .connection_fields_mut()
            .into_iter()
            .zip(other.connection_fields())
        {
            *dst = src;
        }
        self.syn.clone_from(&other.syn);
        self.sources = other.sources;
    }
}

/// Reads an inline connection segment (tag byte first) into `rec`.
fn decode_segment<'a>(r: &mut Reader<'a>, rec: &mut Record<&'a [u8]>) -> Result<(), &'static str> {
    if r.u8() != Some(SEGMENT_INLINE) {
        return Err("segment reference");
    }
    for v in rec.connection_fields_mut() {
        *v = r.bytes().ok_or("fingerprint")?;
    }
    let syn_flags = r.u8().ok_or("syn")?;
    if syn_flags & 1 != 0 {
        rec.syn = Some(SynRecord {
            dont_fragment: syn_flags & 2 != 0,
            ttl: r.u8().ok_or("syn ttl")?,
            window: r.u16v().ok_or("syn window")?,
            mss: r.opt().ok_or("syn mss")?.map(|v| v as u16),
            window_scale: r.opt().ok_or("syn window scale")?.map(|v| v as u8),
            ip_id: r.opt().ok_or("syn ip id")?.map(|v| v as u16),
            options: r.bytes().ok_or("syn options")?.to_vec(),
        });
    } else {
        rec.syn = None;
    }
    rec.sources = r.u8().ok_or("sources")?;
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn put_varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn u16v(&mut self) -> Option<u16> {
        u16::try_from(self.put_varint()?).ok()
    }
    fn opt(&mut self) -> Option<Option<u64>> {
        let v = self.put_varint()?;
        Some(v.checked_sub(1))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.put_varint()?).ok()?;
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    /// A u32-length-prefixed record.
    fn record(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.take::<4>()?) as usize;
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b: [u8; N] = self.0.get(..N)?.try_into().ok()?;
        self.0 = &self.0[N..];
        Some(b)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON Lines

impl<S: AsRef<[u8]>> Record<S> {
    /// Appends the record as one JSON object and a newline. Empty strings are left out.
    pub fn write_json(&self, o: &mut Vec<u8>) {
        o.push(b'{');
        let mut first = true;
        let mut key = |o: &mut Vec<u8>, k: &str| {
            if !first {
                o.push(b',');
            }
            first = false;
            o.push(b'"');
            o.extend_from_slice(k.as_bytes());
            o.extend_from_slice(b"\":");
        };
        key(o, "kind");
        json_str(
            o,
            if self.kind == RecordKind::Orphan {
                b"orphan"
            } else {
                b"request"
            },
        );
        key(o, "ts_us");
        put_i64(o, self.ts_us);
        key(o, "conn_id");
        put_u64(o, self.conn_id);
        if let Some(a) = self.client_ip {
            key(o, "client_ip");
            json_ip(o, a);
        }
        key(o, "client_port");
        put_u64(o, u64::from(self.client_port));
        if let Some(a) = self.server_ip {
            key(o, "server_ip");
            json_ip(o, a);
        }
        key(o, "server_port");
        put_u64(o, u64::from(self.server_port));
        let strs: [(&str, &S); 5] = [
            ("vhost", &self.vhost),
            ("method", &self.method),
            ("path", &self.path),
            ("query", &self.query),
            ("protocol", &self.protocol),
        ];
        for (k, v) in strs {
            if !v.as_ref().is_empty() {
                key(o, k);
                json_str(o, v.as_ref());
            }
        }
        for (k, v) in [
            ("status", u64::from(self.status)),
            ("bytes_in", self.bytes_in),
            ("bytes_out", self.bytes_out),
            ("duration_us", self.duration_us),
            ("keepalives", u64::from(self.keepalives)),
        ] {
            key(o, k);
            put_u64(o, v);
        }
        const FP: [&str; 19] = [
            "tls_version",
            "tls_cipher",
            "tls_sni",
            "tls_alpn",
            "ja4",
            "ja4_r",
            "ja4_o",
            "ja4_ro",
            "ja3",
            "ja3_r",
            "ja4h",
            "ja4h_r",
            "ja4h_o",
            "ja4h_ro",
            "ja4t",
            "ja4ts",
            "ja4l_c",
            "ja4l_s",
            "ja4s",
        ];
        for (k, v) in FP.iter().zip(self.fingerprint_fields()) {
            if !v.as_ref().is_empty() {
                key(o, k);
                json_str(o, v.as_ref());
            }
        }
        if let Some(s) = &self.syn {
            key(o, "syn");
            o.extend_from_slice(b"{\"ttl\":");
            put_u64(o, u64::from(s.ttl));
            o.extend_from_slice(b",\"window\":");
            put_u64(o, u64::from(s.window));
            for (k, v) in [
                ("mss", s.mss.map(u64::from)),
                ("window_scale", s.window_scale.map(u64::from)),
                ("ip_id", s.ip_id.map(u64::from)),
            ] {
                if let Some(v) = v {
                    o.extend_from_slice(b",\"");
                    o.extend_from_slice(k.as_bytes());
                    o.extend_from_slice(b"\":");
                    put_u64(o, v);
                }
            }
            o.extend_from_slice(b",\"options\":[");
            for (i, k) in s.options.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                put_u64(o, u64::from(*k));
            }
            o.extend_from_slice(b"],\"dont_fragment\":");
            o.extend_from_slice(if s.dont_fragment { b"true" } else { b"false" });
            o.push(b'}');
        }
        key(o, "sources");
        put_u64(o, u64::from(self.sources));
        key(o, "header_names");
        o.push(b'[');
        for (i, h) in self.header_name_list().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            json_str(o, h);
        }
        o.push(b']');
        const HV: [&str; 11] = [
            "user_agent",
            "accept",
            "accept_language",
            "accept_encoding",
            "sec_fetch_site",
            "sec_fetch_mode",
            "sec_fetch_dest",
            "sec_fetch_user",
            "sec_ch_ua",
            "sec_ch_ua_mobile",
            "sec_ch_ua_platform",
        ];
        for (k, v) in HV.iter().zip(self.header_value_fields()) {
            if !v.as_ref().is_empty() {
                key(o, k);
                json_str(o, v.as_ref());
            }
        }
        key(o, "has_cookie");
        o.extend_from_slice(if self.has_cookie { b"true" } else { b"false" });
        key(o, "has_referer");
        o.extend_from_slice(if self.has_referer { b"true" } else { b"false" });
        o.extend_from_slice(b"}\n");
    }
}

/// A JSON string; invalid UTF-8 becomes U+FFFD, quotes, backslashes and control characters are
/// escaped. Runs of plain bytes are copied at once (fingerprint strings have nothing to escape).
/// Appends `v` in decimal.
fn put_u64(o: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    o.extend_from_slice(&buf[i..]);
}

fn put_i64(o: &mut Vec<u8>, v: i64) {
    if v < 0 {
        o.push(b'-');
    }
    put_u64(o, v.unsigned_abs());
}

/// An address as a JSON string (IPv4 without the formatting machinery).
fn json_ip(o: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            o.push(b'"');
            for (i, b) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    o.push(b'.');
                }
                put_u64(o, u64::from(b));
            }
            o.push(b'"');
        }
        IpAddr::V6(v6) => json_str(o, v6.to_string().as_bytes()),
    }
}

/// Bytes that JSON strings cannot carry as they are (and non-ASCII, checked as UTF-8).
const JSON_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i < 0x20 || i == b'"' as usize || i == b'\\' as usize || i >= 0x80;
        i += 1;
    }
    t
};

/// Index of the first byte of `b` in [`JSON_SPECIAL`], eight bytes at a time.
fn first_special(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = b.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // A byte < 0x20, '"', '\\' or >= 0x80 somewhere in the word (may over-report above
        // a true hit; the exact byte is found below).
        let hit = (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | (x & HIGH);
        if hit != 0 {
            if let Some(i) = c.iter().position(|&v| JSON_SPECIAL[usize::from(v)]) {
                return Some(base + i);
            }
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&v| JSON_SPECIAL[usize::from(v)])
        .map(|i| base + i)
}

fn json_str(o: &mut Vec<u8>, b: &[u8]) {
    // Fast path: plain ASCII runs are copied whole.
    match first_special(b) {
        None => {
            o.reserve(b.len() + 2);
            o.push(b'"');
            o.extend_from_slice(b);
            o.push(b'"');
            return;
        }
        Some(i) if b[i..].is_ascii() => {
            o.push(b'"');
            o.extend_from_slice(&b[..i]);
            json_escaped(o, &b[i..]);
            o.push(b'"');
            return;
        }
        Some(_) => {}
    }
    o.push(b'"');
    for chunk in b.utf8_chunks() {
        json_escaped(o, chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            o.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    o.push(b'"');
}

/// Escapes valid UTF-8 `v` (runs without a byte to escape are copied whole; bytes ≥ 0x80
/// pass through).
fn json_escaped(o: &mut Vec<u8>, v: &[u8]) {
    let mut start = 0;
    for (i, &c) in v.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        o.extend_from_slice(&v[start..i]);
        if esc.is_empty() {
            o.extend_from_slice(b"\\u00");
            o.push(HEX_DIGITS[usize::from(c >> 4)]);
            o.push(HEX_DIGITS[usize::from(c & 0xf)]);
        } else {
            o.extend_from_slice(esc);
        }
        start = i + 1;
    }
    o.extend_from_slice(&v[start..]);
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record<&'static [u8]> {
        Record {
            kind: RecordKind::Request,
            ts_us: 1_763_700_000_123_456,
            conn_id: 42,
            client_ip: Some("2001:db8::1".parse().unwrap()),
            client_port: 50_000,
            server_ip: Some("127.0.0.1".parse().unwrap()),
            server_port: 443,
            vhost: b"www.example.com",
            method: b"GET",
            path: b"/a\"b",
            query: b"x=1",
            protocol: b"HTTP/2.0",
            status: 200,
            bytes_in: 512,
            bytes_out: 10_000,
            duration_us: 1234,
            keepalives: 3,
            tls_version: b"TLSv1.3",
            ja4: b"t13d1516h2_8daaf6152771_e5627efa2ab1",
            ja4h: b"ge20cn13enus_974ebe531c03_b66fa821d02c_e97928733c74",
            ja4t: b"64240_2-1-3-1-1-4_1460_8",
            syn: Some(SynRecord {
                ttl: 64,
                window: 64240,
                mss: Some(1460),
                window_scale: Some(8),
                options: vec![2, 1, 3, 1, 1, 4],
                ip_id: Some(0),
                dont_fragment: true,
            }),
            sources: SOURCE_INLINE_HELLO | SOURCE_SAVED_SYN,
            header_names: b"user-agent,accept,Cookie",
            cookie: b"b=2; a=1",
            user_agent: b"Mozilla/5.0 \xff\n",
            has_cookie: true,
            ..Default::default()
        }
    }

    fn owned(r: &Record<&[u8]>) -> OwnedRecord {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        OwnedRecord {
            kind: r.kind,
            ts_us: r.ts_us,
            conn_id: r.conn_id,
            client_ip: r.client_ip,
            client_port: r.client_port,
            server_ip: r.server_ip,
            server_port: r.server_port,
            vhost: s(r.vhost),
            method: s(r.method),
            path: s(r.path),
            query: s(r.query),
            protocol: s(r.protocol),
            status: r.status,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            duration_us: r.duration_us,
            keepalives: r.keepalives,
            tls_version: s(r.tls_version),
            ja4: s(r.ja4),
            ja4h: s(r.ja4h),
            ja4t: s(r.ja4t),
            syn: r.syn.clone(),
            sources: r.sources,
            header_names: s(r.header_names),
            cookie: s(r.cookie),
            user_agent: s(r.user_agent),
            has_cookie: r.has_cookie,
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_through_a_frame() {
        let recs = [
            sample(),
            Record {
                kind: RecordKind::Orphan,
                ts_us: -5,
                client_ip: None,
                ..sample()
            },
        ];
        let mut payload = Vec::new();
        for r in &recs {
            r.encode(&mut payload);
        }
        let f = frame(&payload, 2);
        let (back, used) = decode_frame(&f).unwrap();
        assert_eq!(used, f.len());
        for (got, want) in back.iter().zip(&recs) {
            let mut want = owned(want);
            want.derive_ja4h_raw();
            assert_eq!(got, &want);
        }
    }

    #[test]
    fn corrupt_frames_are_errors() {
        let mut payload = Vec::new();
        sample().encode(&mut payload);
        let f = frame(&payload, 1);
        assert_eq!(decode_frame(&f[..10]), Err(BatchError::Incomplete));
        assert_eq!(decode_frame(&f[..f.len() - 1]), Err(BatchError::Incomplete));
        let mut bad = f.clone();
        bad[0] = b'X';
        assert_eq!(decode_frame(&bad), Err(BatchError::BadMagic));
        let mut bad = f.clone();
        let n = bad.len();
        bad[n - 3] ^= 1;
        assert_eq!(decode_frame(&bad), Err(BatchError::Checksum));
        let mut bad = f.clone();
        bad[8] = 2;
        assert_eq!(
            decode_frame(&bad),
            Err(BatchError::Count {
                declared: 2,
                found: 1
            })
        );
        let mut bad = f.clone();
        bad[4] = 9;
        assert_eq!(decode_frame(&bad), Err(BatchError::Version(9)));
        let mut huge = f.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_frame(&huge), Err(BatchError::TooLarge(_))));
    }

    #[test]
    fn frames_built_in_place_equal_frame_of_the_payload() {
        let mut buf = Vec::new();
        begin_frame(&mut buf);
        for i in 0..3 {
            Record {
                status: 200 + i,
                ..sample()
            }
            .encode(&mut buf);
        }
        let payload = buf[HEADER_LEN..].to_vec();
        let mut plain = buf.clone();
        finish_frame(&mut buf, 3, true);
        assert_eq!(buf, frame(&payload, 3));
        // Without a checksum: the same records, flag clear, nothing verified.
        finish_frame(&mut plain, 3, false);
        assert_eq!(plain[6..8], [0, 0]);
        assert_eq!(decode_frame(&plain).unwrap(), decode_frame(&buf).unwrap());
        let n = plain.len();
        plain[n - 1] ^= 0x55;
        assert!(!matches!(decode_frame(&plain), Err(BatchError::Checksum)));
        let mut empty = Vec::new();
        begin_frame(&mut empty);
        finish_frame(&mut empty, 0, true);
        assert_eq!(empty, frame(&[], 0));
    }

    #[test]
    fn connection_segments_are_shared_within_a_frame() {
        let a = sample();
        let mut seg = Vec::new();
        a.connection_segment(&mut seg);
        // Later requests of the same connection: other request fields, same connection ones.
        let b = Record {
            path: &b"/next"[..],
            status: 404,
            ja4h: b"ge11nn010000_000000000000_000000000000_000000000000",
            ..sample()
        };
        let mut big_path = vec![b'p'; 20_000];
        big_path[0] = b'/';
        let c = Record {
            path: &big_path[..],
            ..sample()
        };
        for r in [&a, &b, &c] {
            let (mut plain, mut cached) = (vec![7u8], vec![7u8]);
            r.encode(&mut plain);
            r.encode_with(&mut cached, 1, Segment::Bytes(&seg));
            assert_eq!(plain, cached);
        }
        // In one frame: the first record carries the segment, the others name it.
        for first in [&a, &c] {
            let mut buf = Vec::new();
            begin_frame(&mut buf);
            let other = Record {
                conn_id: 7,
                ja4: &b"t13d0000h1_000000000000_000000000000"[..],
                ..sample()
            };
            other.encode(&mut buf);
            let at = first.encode_with(&mut buf, HEADER_LEN, Segment::Bytes(&seg));
            b.encode_with(&mut buf, HEADER_LEN, Segment::Ref(at));
            c.encode_with(&mut buf, HEADER_LEN, Segment::Ref(at));
            finish_frame(&mut buf, 4, true);
            let (back, _) = decode_frame(&buf).unwrap();
            assert_eq!(back[0].ja4, "t13d0000h1_000000000000_000000000000");
            for (got, want) in back[1..].iter().zip([first, &b, &c]) {
                let mut want = owned(want);
                want.derive_ja4h_raw();
                assert_eq!(got, &want);
            }
            // A reference to anything but an earlier segment is an error, not a panic.
            let mut bad = Vec::new();
            begin_frame(&mut bad);
            first.encode(&mut bad);
            b.encode_with(&mut bad, HEADER_LEN, Segment::Ref(at + 1));
            finish_frame(&mut bad, 2, true);
            assert!(matches!(
                decode_frame(&bad),
                Err(BatchError::Record { index: 1, .. })
            ));
        }
        // Length prefixes of one, two and three bytes all decode.
        for n in [0usize, 100, 20_000] {
            let big = Record {
                path: &*Box::leak(vec![b'p'; n].into_boxed_slice()),
                ..Record::default()
            };
            let mut payload = Vec::new();
            big.encode(&mut payload);
            let (back, _) = decode_frame(&frame(&payload, 1)).unwrap();
            assert_eq!(back[0].path.len(), n);
        }
    }

    #[test]
    fn strings_given_whole_equal_the_record_encoding() {
        // The module's way: the strings as the request holds them, the request line as sent.
        let rec = sample();
        let mut line = Vec::new();
        rec.write_request_line(&mut line);
        assert_eq!(line, b"GET /a\"b?x=1 HTTP/2.0");
        let mut strings: [&[u8]; STRINGS] = [b""; STRINGS];
        strings[S_VHOST] = rec.vhost;
        strings[S_REQUEST_LINE] = &line;
        strings[S_HEADER_NAMES] = rec.header_names;
        strings[S_PICKED] = rec.user_agent;
        strings[S_COOKIE] = rec.cookie;
        strings[S_JA4H] = rec.ja4h;
        let mut seg = Vec::new();
        rec.connection_segment(&mut seg);
        let mut out = vec![0xEE; 3];
        let at = write_record(&mut out, 3, &rec.head(), Segment::Bytes(&seg), &strings);
        assert_eq!(at as usize, 4 + HEAD_LEN);
        let mut want = Vec::new();
        rec.encode(&mut want);
        assert_eq!(out[3..], want);
        // The strings block: a length per string (zero for the empty ones), then the bytes.
        let block = &out[3 + 4 + HEAD_LEN + seg.len()..];
        let lens: Vec<u32> = (0..STRINGS)
            .map(|i| u32::from_le_bytes(block[4 * i..4 * i + 4].try_into().unwrap()))
            .collect();
        let want: Vec<u32> = strings.iter().map(|s| s.len() as u32).collect();
        assert_eq!(lens, want);
        assert_eq!(block.len(), TABLE_LEN + want.iter().sum::<u32>() as usize);
        assert!(block.ends_with(rec.ja4h));
    }

    #[test]
    fn ja4h_raw_forms_are_derived_unless_sent() {
        let (back, _) = {
            let mut p = Vec::new();
            sample().encode(&mut p);
            decode_frame(&frame(&p, 1)).unwrap()
        };
        // Parts a and b come from the JA4H sent; c and d from the Cookie value.
        use crate::hash::hash12;
        let r = &back[0];
        assert_eq!(r.ja4h_r, "ge20cn13enus_user-agent,accept_a,b_a=1,b=2");
        assert_eq!(r.ja4h_ro, "ge20cn13enus_user-agent,accept_b,a_b=2,a=1");
        let c = String::from_utf8(hash12(b"b,a").to_vec()).unwrap();
        let d = String::from_utf8(hash12(b"b=2,a=1").to_vec()).unwrap();
        assert_eq!(r.ja4h_o, format!("{}_{c}_{d}", &r.ja4h[..25]));
        // Explicit raw forms (a spooled record) are kept as they are.
        let explicit = Record {
            ja4h_r: &b"given"[..],
            ..sample()
        };
        let mut p = Vec::new();
        explicit.encode(&mut p);
        let (back, _) = decode_frame(&frame(&p, 1)).unwrap();
        assert_eq!(back[0].ja4h_r, "given");
        assert_eq!(back[0].ja4h_o, "");
    }

    #[test]
    fn newer_fields_are_ignored() {
        // Bytes after the last string belong to a newer module: skipped.
        let mut payload = Vec::new();
        sample().encode(&mut payload);
        let body_len = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
        assert_eq!(body_len + 4, payload.len());
        payload.extend_from_slice(b"future fields");
        payload[..4].copy_from_slice(&((body_len + 13) as u32).to_le_bytes());
        let (back, _) = decode_frame(&frame(&payload, 1)).unwrap();
        let mut want = owned(&sample());
        want.derive_ja4h_raw();
        assert_eq!(back[0], want);
    }

    #[test]
    fn hostile_records_are_errors() {
        let mut p = Vec::new();
        sample().encode(&mut p);
        // Every truncation of the body is an error, never a panic.
        for cut in 4..p.len() {
            let mut q = p[..cut].to_vec();
            q[..4].copy_from_slice(&((cut - 4) as u32).to_le_bytes());
            assert!(decode_frame(&frame(&q, 1)).is_err(), "cut at {cut}");
        }
        // A length beyond the payload.
        let mut q = p.clone();
        q[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_frame(&frame(&q, 1)).is_err());
    }

    #[test]
    fn json_strings_round_trip_through_a_json_parser() {
        let cases: [&[u8]; 9] = [
            b"",
            b"plain ascii",
            b"quote \" back \\ tab \t nl \n cr \r",
            b"\x00\x01\x1f\x7f",
            "caf\u{e9} \u{1f600}".as_bytes(),
            b"bad \xff utf8 \"then quote\"",
            b"\xc3",
            b"ascii then \xe2\x82\xac euro and \\",
            &[b'a'; 300],
        ];
        for c in cases {
            let mut o = Vec::new();
            json_str(&mut o, c);
            let back: String = serde_json::from_slice(&o).unwrap();
            assert_eq!(back, String::from_utf8_lossy(c), "{c:?}");
        }
        // The word-at-a-time scan finds the same byte as a plain scan, wherever it sits.
        for len in 0..40 {
            for at in 0..len {
                for special in [0u8, 0x1f, b'"', b'\\', 0x80, 0xff] {
                    let mut v = vec![b'x'; len];
                    v[at] = special;
                    if at + 1 < len {
                        v[at + 1] = 0x7f;
                    }
                    assert_eq!(first_special(&v), Some(at), "{v:?}");
                }
            }
            assert_eq!(first_special(&vec![b' '; len]), None);
            assert_eq!(first_special(&vec![0x7f; len]), None);
        }
        for v in [0u64, 9, 10, 65535, u64::MAX] {
            let mut o = Vec::new();
            put_u64(&mut o, v);
            assert_eq!(o, v.to_string().as_bytes());
        }
        let mut o = Vec::new();
        put_i64(&mut o, i64::MIN);
        assert_eq!(o, i64::MIN.to_string().as_bytes());
    }

    #[test]
    fn json_is_valid_and_escaped() {
        let mut o = Vec::new();
        sample().write_json(&mut o);
        assert_eq!(o.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&o).unwrap();
        assert_eq!(v["path"], "/a\"b");
        assert_eq!(v["user_agent"], "Mozilla/5.0 \u{fffd}\n");
        assert_eq!(v["client_ip"], "2001:db8::1");
        assert_eq!(v["syn"]["options"], serde_json::json!([2, 1, 3, 1, 1, 4]));
        assert_eq!(v["ja4"], "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert!(v.get("ja3").is_none(), "empty fields are left out");
        let mut o = Vec::new();
        json_str(&mut o, b"a\x01\x1f\\\"\t\xe2\x80\xa8\xc3");
        let back: String = serde_json::from_slice(&o).unwrap();
        assert_eq!(back, "a\u{1}\u{1f}\\\"\t\u{2028}\u{fffd}");
    }

    #[test]
    fn request_lines_split_as_httpd_parses_them() {
        let cases: [(&[u8], [&[u8]; 4]); 12] = [
            (b"GET / HTTP/1.1", [b"GET", b"/", b"", b"HTTP/1.1"]),
            (
                b"GET /a/b?x=1&y HTTP/2.0",
                [b"GET", b"/a/b", b"x=1&y", b"HTTP/2.0"],
            ),
            (b"GET /a?b?c HTTP/1.1", [b"GET", b"/a", b"b?c", b"HTTP/1.1"]),
            (b"GET /a#frag?x HTTP/1.1", [b"GET", b"/a", b"", b"HTTP/1.1"]),
            (b"GET /a? HTTP/1.0", [b"GET", b"/a", b"", b"HTTP/1.0"]),
            (
                b"GET http://h.example:8080/p?q HTTP/1.1",
                [b"GET", b"/p", b"q", b"HTTP/1.1"],
            ),
            (
                b"GET http://h.example HTTP/1.1",
                [b"GET", b"", b"", b"HTTP/1.1"],
            ),
            (b"OPTIONS * HTTP/1.1", [b"OPTIONS", b"*", b"", b"HTTP/1.1"]),
            (
                b"CONNECT h.example:443 HTTP/1.1",
                [b"CONNECT", b"", b"", b"HTTP/1.1"],
            ),
            (b"GET /old", [b"GET", b"/old", b"", b"HTTP/0.9"]),
            (b"GET  /sp   HTTP/1.1", [b"GET", b"/sp", b"", b"HTTP/1.1"]),
            (b"", [b"", b"", b"", b""]),
        ];
        for (line, [m, p, q, v]) in cases {
            assert_eq!(
                split_request_line(line),
                (m, p, q, v),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // Whatever the bytes, parts are slices of the line (no panic, no allocation).
        for line in [
            &b" "[..],
            b"  ",
            b"GET",
            b"? ?",
            b"://",
            b"a ://x b",
            b"\xff \x00 \n",
        ] {
            let (m, p, q, v) = split_request_line(line);
            assert!(m.len() + p.len() + q.len() <= line.len() + 8 && v.len() <= 8);
        }
        // A record's method, path, query and protocol survive the wire.
        let rec = Record {
            method: &b"POST"[..],
            path: b"/login",
            query: b"next=/a b",
            protocol: b"HTTP/1.1",
            ..sample()
        };
        let mut p = Vec::new();
        rec.encode(&mut p);
        let (back, _) = decode_frame(&frame(&p, 1)).unwrap();
        assert_eq!(
            (
                &*back[0].method,
                &*back[0].path,
                &*back[0].query,
                &*back[0].protocol
            ),
            ("POST", "/login", "next=/a b", "HTTP/1.1")
        );
    }

    #[test]
    fn header_roles() {
        for (i, n) in PICKED_HEADERS.iter().enumerate() {
            assert_eq!(header_role(n), HeaderRole::Picked(i));
            assert_eq!(
                header_role(n.to_ascii_uppercase().as_slice()),
                HeaderRole::Picked(i)
            );
        }
        assert_eq!(header_role(b"Cookie"), HeaderRole::Cookie);
        assert_eq!(header_role(b"REFERER"), HeaderRole::Referer);
        for other in [
            &b""[..],
            b"Host",
            b"cookies",
            b"Accept-Charset",
            b"sec-fetch-xxxx",
            b"x",
            b"Accept_Language",
            b"user\ragent",
            b"sec-ch-ua-mobilE\x00",
            b"COOKIe\x00",
        ] {
            assert_eq!(header_role(other), HeaderRole::Other, "{other:?}");
        }
        // Word-wide comparison equals the byte-wise rule for every one-byte change.
        let naive = |n: &[u8]| {
            if n.eq_ignore_ascii_case(b"cookie") {
                HeaderRole::Cookie
            } else if n.eq_ignore_ascii_case(b"referer") {
                HeaderRole::Referer
            } else {
                PICKED_HEADERS
                    .iter()
                    .position(|p| n.eq_ignore_ascii_case(p))
                    .map_or(HeaderRole::Other, HeaderRole::Picked)
            }
        };
        for base in PICKED_HEADERS
            .iter()
            .chain([&&b"cookie"[..], &&b"referer"[..]])
        {
            for at in 0..base.len() {
                for b in 0..=255u8 {
                    let mut n = base.to_vec();
                    n[at] = b;
                    assert_eq!(header_role(&n), naive(&n), "{n:?}");
                }
            }
        }
        assert_eq!(PICKED_HEADERS[PICKED_ACCEPT_LANGUAGE], b"accept-language");
    }
}
