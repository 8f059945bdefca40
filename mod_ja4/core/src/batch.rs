//! The export record and the batch wire format shared by mod_ja4 and the sidecar.
//!
//! Owns: [`Record`] (one request, or one connection that never produced a request), its compact
//! binary encoding, batch framing, and a JSON Lines rendering of the same record.
//!
//! Frame: `"JA4B"`, version u16, flags u16, record count u32, payload length u32, CRC-32 of the
//! payload u32, reserved u32 (little endian, 24 bytes); then the payload: each record as a varint
//! length and its fields in order. A decoder ignores fields it does not know at the end of a
//! record, so a newer module can talk to an older sidecar within one major version.
//! Never: trusts a length or a count from the wire, or allocates beyond [`MAX_PAYLOAD`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAGIC: [u8; 4] = *b"JA4B";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 24;
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
    pub header_names: Vec<S>,
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
            header_names: self.header_names.into_iter().map(&f).collect(),
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
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `b` with its varint length (also ClickHouse's RowBinary `String`).
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn ip(out: &mut Vec<u8>, a: Option<IpAddr>) {
    match a {
        None => out.push(0),
        Some(IpAddr::V4(v4)) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
}

fn opt(out: &mut Vec<u8>, v: Option<u64>) {
    put_varint(out, v.map_or(0, |x| x + 1));
}

impl<S: AsRef<[u8]>> Record<S> {
    /// Appends this record (length-prefixed) to a batch payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_with(out, None);
    }

    /// [`encode`](Self::encode), with the per-connection runs of fields taken from `segments`
    /// (`(tls, transport)`, as [`tls_segment`](Self::tls_segment) and
    /// [`transport_segment`](Self::transport_segment) wrote them for an earlier request of the
    /// same connection) instead of this record's fields. The bytes are the same; a keep-alive
    /// connection's requests skip re-encoding what cannot change.
    pub fn encode_with(&self, out: &mut Vec<u8>, segments: Option<(&[u8], &[u8])>) {
        // The length prefix is a varint written in place: two bytes reserved (records are
        // almost always 128..16383 bytes), fixed up after the body, no temporary buffer.
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        self.encode_fields(out, segments);
        let len = out.len() - start - 2;
        if len < 0x80 {
            out[start] = len as u8;
            out.remove(start + 1);
        } else if len < 0x4000 {
            out[start] = (len as u8) | 0x80;
            out[start + 1] = (len >> 7) as u8;
        } else {
            let mut prefix = Vec::with_capacity(10);
            put_varint(&mut prefix, len as u64);
            out.splice(start..start + 2, prefix);
        }
    }

    /// The bytes [`encode`](Self::encode) writes for the TLS fields (`tls_version` … `ja3_r`).
    pub fn tls_segment(&self, o: &mut Vec<u8>) {
        for s in &self.fingerprint_fields()[..10] {
            put_bytes(o, s.as_ref());
        }
    }

    /// The bytes [`encode`](Self::encode) writes for the transport fields (`ja4t` … `ja4s`),
    /// the SYN and the sources.
    pub fn transport_segment(&self, o: &mut Vec<u8>) {
        for s in &self.fingerprint_fields()[14..] {
            put_bytes(o, s.as_ref());
        }
        match &self.syn {
            None => o.push(0),
            Some(s) => {
                o.push(1 | if s.dont_fragment { 2 } else { 0 });
                o.push(s.ttl);
                put_varint(o, u64::from(s.window));
                opt(o, s.mss.map(u64::from));
                opt(o, s.window_scale.map(u64::from));
                opt(o, s.ip_id.map(u64::from));
                put_bytes(o, &s.options);
            }
        }
        o.push(self.sources);
    }

    fn encode_fields(&self, o: &mut Vec<u8>, segments: Option<(&[u8], &[u8])>) {
        o.push(self.kind as u8);
        put_varint(o, zigzag(self.ts_us));
        put_varint(o, self.conn_id);
        ip(o, self.client_ip);
        put_varint(o, u64::from(self.client_port));
        ip(o, self.server_ip);
        put_varint(o, u64::from(self.server_port));
        for s in [
            &self.vhost,
            &self.method,
            &self.path,
            &self.query,
            &self.protocol,
        ] {
            put_bytes(o, s.as_ref());
        }
        put_varint(o, u64::from(self.status));
        put_varint(o, self.bytes_in);
        put_varint(o, self.bytes_out);
        put_varint(o, self.duration_us);
        put_varint(o, u64::from(self.keepalives));
        match segments {
            Some((tls, _)) => o.extend_from_slice(tls),
            None => self.tls_segment(o),
        }
        for s in &self.fingerprint_fields()[10..14] {
            put_bytes(o, s.as_ref());
        }
        match segments {
            Some((_, transport)) => o.extend_from_slice(transport),
            None => self.transport_segment(o),
        }
        put_varint(o, self.header_names.len() as u64);
        for h in &self.header_names {
            put_bytes(o, h.as_ref());
        }
        for s in self.header_value_fields() {
            put_bytes(o, s.as_ref());
        }
        o.push(u8::from(self.has_cookie) | (u8::from(self.has_referer) << 1));
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

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Builds one frame from encoded records (each produced by [`Record::encode`]).
pub fn frame(payload: &[u8], count: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER_LEN + payload.len());
    f.extend_from_slice(&MAGIC);
    f.extend_from_slice(&VERSION.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&count.to_le_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&crc32(payload).to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// A frame of already encoded records (each as [`Record::encode`] appended it): the same bytes
/// as `frame(&records.concat(), n)`, built with one allocation and one copy.
pub fn frame_records<B: AsRef<[u8]>>(records: &[B]) -> Vec<u8> {
    let len: usize = records.iter().map(|r| r.as_ref().len()).sum();
    let mut h = crc32fast::Hasher::new();
    for r in records {
        h.update(r.as_ref());
    }
    let mut f = Vec::with_capacity(HEADER_LEN + len);
    f.extend_from_slice(&MAGIC);
    f.extend_from_slice(&VERSION.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&(records.len() as u32).to_le_bytes());
    f.extend_from_slice(&(len as u32).to_le_bytes());
    f.extend_from_slice(&h.finalize().to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    for r in records {
        f.extend_from_slice(r.as_ref());
    }
    f
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
            .map(|r| r.map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect(),
        used,
    ))
}

/// Records borrowing from a frame, and the bytes the frame used.
pub type BorrowedFrame<'a> = (Vec<Record<&'a [u8]>>, usize);

/// Like [`decode_frame`], borrowing every string from `buf` (no allocation per field).
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
    if crc32(payload) != crc {
        return Err(BatchError::Checksum);
    }
    let mut r = Reader(payload);
    let mut out = Vec::with_capacity((count as usize).min(65_536));
    let mut index = 0u32;
    while !r.0.is_empty() {
        let body = r.bytes().ok_or(BatchError::Record {
            index,
            what: "length",
        })?;
        out.push(decode_record(body).map_err(|what| BatchError::Record { index, what })?);
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

fn decode_record(body: &[u8]) -> Result<Record<&[u8]>, &'static str> {
    let mut r = Reader(body);
    fn s<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<&'a [u8], &'static str> {
        r.bytes().ok_or(what)
    }
    let mut rec = Record {
        kind: match r.u8().ok_or("kind")? {
            0 => RecordKind::Request,
            1 => RecordKind::Orphan,
            _ => return Err("kind"),
        },
        ts_us: unzigzag(r.put_varint().ok_or("timestamp")?),
        conn_id: r.put_varint().ok_or("conn id")?,
        client_ip: r.ip().ok_or("client ip")?,
        client_port: r.u16v().ok_or("client port")?,
        server_ip: r.ip().ok_or("server ip")?,
        server_port: r.u16v().ok_or("server port")?,
        ..Default::default()
    };
    rec.vhost = s(&mut r, "vhost")?;
    rec.method = s(&mut r, "method")?;
    rec.path = s(&mut r, "path")?;
    rec.query = s(&mut r, "query")?;
    rec.protocol = s(&mut r, "protocol")?;
    rec.status = r.u16v().ok_or("status")?;
    rec.bytes_in = r.put_varint().ok_or("bytes in")?;
    rec.bytes_out = r.put_varint().ok_or("bytes out")?;
    rec.duration_us = r.put_varint().ok_or("duration")?;
    rec.keepalives =
        u32::try_from(r.put_varint().ok_or("keepalives")?).map_err(|_| "keepalives")?;
    let mut fps: [&[u8]; 19] = Default::default();
    for f in fps.iter_mut() {
        *f = s(&mut r, "fingerprint")?;
    }
    let [tls_version, tls_cipher, tls_sni, tls_alpn, ja4, ja4_r, ja4_o, ja4_ro, ja3, ja3_r, ja4h, ja4h_r, ja4h_o, ja4h_ro, ja4t, ja4ts, ja4l_c, ja4l_s, ja4s] =
        fps;
    (rec.tls_version, rec.tls_cipher, rec.tls_sni, rec.tls_alpn) =
        (tls_version, tls_cipher, tls_sni, tls_alpn);
    (
        rec.ja4, rec.ja4_r, rec.ja4_o, rec.ja4_ro, rec.ja3, rec.ja3_r,
    ) = (ja4, ja4_r, ja4_o, ja4_ro, ja3, ja3_r);
    (rec.ja4h, rec.ja4h_r, rec.ja4h_o, rec.ja4h_ro) = (ja4h, ja4h_r, ja4h_o, ja4h_ro);
    (rec.ja4t, rec.ja4ts, rec.ja4l_c, rec.ja4l_s, rec.ja4s) = (ja4t, ja4ts, ja4l_c, ja4l_s, ja4s);
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
    }
    rec.sources = r.u8().ok_or("sources")?;
    let n = r.put_varint().ok_or("header count")?;
    if n > 1024 {
        return Err("header count");
    }
    for _ in 0..n {
        rec.header_names.push(s(&mut r, "header name")?);
    }
    let mut hv: [&[u8]; 11] = Default::default();
    for v in hv.iter_mut() {
        *v = s(&mut r, "header value")?;
    }
    let [ua, accept, lang, enc, site, mode, dest, user, ch_ua, ch_mobile, ch_platform] = hv;
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
    let flags = r.u8().ok_or("flags")?;
    rec.has_cookie = flags & 1 != 0;
    rec.has_referer = flags & 2 != 0;
    // Anything left belongs to a newer version of the format: ignored.
    Ok(rec)
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
    fn ip(&mut self) -> Option<Option<IpAddr>> {
        match self.u8()? {
            0 => Some(None),
            4 => {
                let b = self.take::<4>()?;
                Some(Some(IpAddr::V4(Ipv4Addr::from(b))))
            }
            6 => {
                let b = self.take::<16>()?;
                Some(Some(IpAddr::V6(Ipv6Addr::from(b))))
            }
            _ => None,
        }
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
        for (i, h) in self.header_names.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            json_str(o, h.as_ref());
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
            header_names: vec![b"user-agent", b"accept"],
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
            header_names: r.header_names.iter().map(|h| s(h)).collect(),
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
        assert_eq!(back[0], owned(&recs[0]));
        assert_eq!(back[1], owned(&recs[1]));
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
    fn frame_records_equals_frame_of_the_concatenation() {
        let recs: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                let mut v = Vec::new();
                Record {
                    status: 200 + i,
                    ..sample()
                }
                .encode(&mut v);
                v
            })
            .collect();
        assert_eq!(frame_records(&recs), frame(&recs.concat(), 3));
        assert_eq!(frame_records::<Vec<u8>>(&[]), frame(&[], 0));
    }

    #[test]
    fn cached_segments_give_the_same_bytes() {
        let a = sample();
        let (mut tls, mut transport) = (Vec::new(), Vec::new());
        a.tls_segment(&mut tls);
        a.transport_segment(&mut transport);
        // A later request of the same connection: other request fields, same connection ones.
        let b = Record {
            path: &b"/next"[..],
            status: 404,
            ja4h: b"ge11nn010000_000000000000_000000000000_000000000000",
            ..sample()
        };
        for r in [&a, &b] {
            let (mut plain, mut cached) = (vec![7u8], vec![7u8]);
            r.encode(&mut plain);
            r.encode_with(&mut cached, Some((&tls, &transport)));
            assert_eq!(plain, cached);
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
    fn newer_fields_are_ignored() {
        let mut body = Vec::new();
        sample().encode_fields(&mut body, None);
        body.extend_from_slice(b"future fields");
        let mut payload = Vec::new();
        put_bytes(&mut payload, &body);
        let (back, _) = decode_frame(&frame(&payload, 1)).unwrap();
        assert_eq!(back[0], owned(&sample()));
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
    fn zigzag_round_trips() {
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 1_763_700_000_000_000] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
