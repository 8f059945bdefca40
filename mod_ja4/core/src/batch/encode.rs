//! Encoding records into a batch payload: varints, the connection segment, the head
//! template and the strings block the module writes at log time.

use super::*;

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

pub(super) const SEGMENT_INLINE: u8 = 0;
pub(super) const SEGMENT_REF: u8 = 1;

/// Number of strings in a record, in the order of the `S_*` indices.
pub const STRINGS: usize = 19;
/// The virtual host.
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
/// JA4H raw form.
pub const S_JA4H_R: usize = S_COOKIE + 1;
/// JA4H in wire order.
pub const S_JA4H_O: usize = S_COOKIE + 2;
/// JA4H raw form in wire order.
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
    /// Request or orphan connection.
    pub kind: RecordKind,
    /// The request carried a Cookie header.
    pub has_cookie: bool,
    /// The request carried a Referer header.
    pub has_referer: bool,
    /// When the request was read, Unix microseconds.
    pub ts_us: i64,
    /// The module's connection id: every record of one connection carries the same.
    pub conn_id: u64,
    /// Client address (`None` if httpd did not know it).
    pub client_ip: Option<IpAddr>,
    /// Client TCP port.
    pub client_port: u16,
    /// Local address the connection was accepted on.
    pub server_ip: Option<IpAddr>,
    /// Local port the connection was accepted on.
    pub server_port: u16,
    /// Final response status.
    pub status: u16,
    /// Request body bytes read (`r->read_length`).
    pub bytes_in: u64,
    /// Response body bytes sent (`r->bytes_sent`).
    pub bytes_out: u64,
    /// Request: from reading it to logging it; orphan: the connection's life. Microseconds.
    pub duration_us: u64,
    /// Requests served on the connection before this one.
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
    /// The request carried a Cookie header.
    pub has_cookie: bool,
    /// The request carried a Referer header.
    pub has_referer: bool,
    /// When the request was read, Unix microseconds.
    pub ts_us: i64,
    /// Final response status.
    pub status: u16,
    /// Request body bytes read (`r->read_length`).
    pub bytes_in: u64,
    /// Response body bytes sent (`r->bytes_sent`).
    pub bytes_out: u64,
    /// Request: from reading it to logging it; orphan: the connection's life. Microseconds.
    pub duration_us: u64,
    /// Requests served on the connection before this one.
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
/// each, in `S_*` order), then the bytes of the strings in that order; then the trailers
/// (`trailers`: each a tag byte, a length byte and that many bytes, e.g.
/// [`Mitigation::trailer`]), which a decoder that does not know a tag skips.
pub fn write_record(
    out: &mut Vec<u8>,
    payload_start: usize,
    head: &Head,
    segment: Segment,
    strings: &[&[u8]; STRINGS],
    trailers: &[u8],
) -> u32 {
    let lengths: [u32; STRINGS] = std::array::from_fn(|i| strings[i].len() as u32);
    let total = strings.iter().map(|s| s.len()).sum::<usize>() + trailers.len();
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
    out.extend_from_slice(trailers);
    at
}

/// [`write_record`] up to the strings' bytes: the length prefix (counting `tail_len` bytes
/// after the table: strings and trailers), the head (the connection's template with the
/// request's values written over it in the frame), the segment and the strings table of
/// `lengths`. The caller then appends the strings' bytes in `S_*` order and the trailers,
/// `tail_len` bytes in all. The module does so at log time with one copy per string,
/// straight from where the request holds them.
#[inline(always)]
pub fn write_record_start(
    out: &mut Vec<u8>,
    payload_start: usize,
    (template, values): (&HeadTemplate, &RequestValues),
    segment: Segment,
    lengths: &[u32; STRINGS],
    tail_len: usize,
) -> u32 {
    let seg_len = match segment {
        Segment::Bytes(b) => b.len(),
        Segment::Ref(_) => 5,
    };
    let len = HEAD_LEN + seg_len + TABLE_LEN + tail_len;
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
        let mut trailers = Vec::new();
        if self.mitigation.is_some() {
            trailers.extend_from_slice(&self.mitigation.trailer());
        }
        write_h2_trailers(&mut trailers, self.h2.as_ref(), self.h2_hash.as_ref());
        trailers.extend_from_slice(consistency_trailer(self.consistency));
        write_record(
            out,
            payload_start,
            &self.head(),
            segment,
            &strings,
            &trailers,
        )
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
    pub(super) fn write_request_line(&self, w: &mut Vec<u8>) {
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

    pub(super) fn connection_fields(&self) -> [&S; 15] {
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
    pub(super) fn connection_fields_mut(&mut self) -> [&mut S; 15] {
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

    pub(super) fn fingerprint_fields(&self) -> [&S; 19] {
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

    pub(super) fn header_value_fields(&self) -> [&S; 11] {
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

/// Length of a record's head (little endian, fixed layout: its connection's
/// [`Head::template`] with its [`RequestValues`] written over it).
pub const HEAD_LEN: usize = 86;

/// An address as a tag (0 none, 4, 6) and 16 bytes (IPv4 in the first four).
pub(super) fn ip_bytes(a: Option<IpAddr>) -> [u8; 17] {
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
