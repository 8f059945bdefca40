//! Decoding frames and records, every read through [`crate::reader::Reader`].

use super::*;
use crate::reader::Reader;

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
    let mut r = Reader::new(payload);
    let mut out = Vec::with_capacity((count as usize).min(65_536));
    let mut segments = Vec::new();
    let mut index = 0u32;
    while !r.is_empty() {
        let body = r.le_vec32().ok_or(BatchError::Record {
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

/// Decodes one record of `payload`. `segments` holds the payload offsets of the inline
/// connection segments decoded so far (ascending) and the index in `earlier` (the records
/// decoded so far) of the record that carried each: a reference must name one of them, and
/// takes that record's connection fields rather than decoding the segment again.
pub(super) fn decode_record<'a>(
    payload: &'a [u8],
    body: &'a [u8],
    segments: &mut Vec<(usize, usize)>,
    earlier: &[Record<&'a [u8]>],
) -> Result<Record<&'a [u8]>, &'static str> {
    let mut r = Reader::new(body);
    let h = r.array::<HEAD_LEN>().ok_or("head")?;
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
    let seg_at = r.rest().as_ptr() as usize - payload.as_ptr() as usize;
    match r.rest().first() {
        Some(&SEGMENT_INLINE) => {
            if segments.last().is_none_or(|&(l, _)| l < seg_at) {
                segments.push((seg_at, earlier.len()));
            }
            decode_segment(&mut r, &mut rec)?;
        }
        Some(&SEGMENT_REF) => {
            r.u8();
            let at = r.le_u32().ok_or("segment reference")? as usize;
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
        *l = r.le_u32().ok_or("string lengths")? as usize;
    }
    let mut strs: [&[u8]; STRINGS] = [&[]; STRINGS];
    for (s, &n) in strs.iter_mut().zip(&lens) {
        *s = r.take(n).ok_or("string length")?;
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
    // Trailers: tag, length, value. Tags this decoder does not know (a newer module's) are
    // skipped; a malformed mitigation trailer is left out, the record kept.
    while let (Some(tag), Some(len)) = (r.u8(), r.u8()) {
        let v = r.take(usize::from(len)).ok_or("trailer length")?;
        match tag {
            TRAILER_MITIGATION => rec.mitigation = Mitigation::from_trailer(v).unwrap_or_default(),
            TRAILER_H2 => rec.h2 = v,
            TRAILER_H2_HASH => rec.h2_hash = v,
            TRAILER_CONSISTENCY => rec.consistency = v.first().copied().unwrap_or(0),
            _ => {}
        }
    }
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
pub(super) fn decode_segment<'a>(
    r: &mut Reader<'a>,
    rec: &mut Record<&'a [u8]>,
) -> Result<(), &'static str> {
    if r.u8() != Some(SEGMENT_INLINE) {
        return Err("segment reference");
    }
    for v in rec.connection_fields_mut() {
        *v = r.var_bytes().ok_or("fingerprint")?;
    }
    let syn_flags = r.u8().ok_or("syn")?;
    if syn_flags & 1 != 0 {
        rec.syn = Some(SynRecord {
            dont_fragment: syn_flags & 2 != 0,
            ttl: r.u8().ok_or("syn ttl")?,
            window: r
                .varint()
                .and_then(|v| u16::try_from(v).ok())
                .ok_or("syn window")?,
            mss: r
                .varint()
                .map(|v| v.checked_sub(1))
                .ok_or("syn mss")?
                .map(|v| v as u16),
            window_scale: r
                .varint()
                .map(|v| v.checked_sub(1))
                .ok_or("syn window scale")?
                .map(|v| v as u8),
            ip_id: r
                .varint()
                .map(|v| v.checked_sub(1))
                .ok_or("syn ip id")?
                .map(|v| v as u16),
            options: r.var_bytes().ok_or("syn options")?.to_vec(),
        });
    } else {
        rec.syn = None;
    }
    rec.sources = r.u8().ok_or("sources")?;
    Ok(())
}

pub(super) fn ip_from(b: &[u8]) -> Option<Option<IpAddr>> {
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
