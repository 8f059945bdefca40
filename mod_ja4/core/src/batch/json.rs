//! JSON Lines: a record as one JSON object (what `JA4ExportFile` writes and `pcap` prints).

use super::*;

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
        if !self.h2.as_ref().is_empty() {
            key(o, "h2");
            json_str(o, self.h2.as_ref());
            key(o, "h2_hash");
            json_str(o, self.h2_hash.as_ref());
        }
        if self.consistency != 0 {
            key(o, "consistency");
            json_str(o, crate::stack::flags::names(self.consistency).as_bytes());
        }
        let m = &self.mitigation;
        if m.is_some() {
            key(o, "action");
            json_str(o, m.action_text().as_bytes());
            if m.reason != MitigationReason::None {
                key(o, "action_reason");
                json_str(o, m.reason.as_str().as_bytes());
            }
            if let Some(v) = m.verdict {
                key(o, "decision_verdict");
                json_str(o, v.as_str().as_bytes());
                key(o, "decision_bot_score");
                put_u64(o, u64::from(m.bot_score));
            }
        }
        o.extend_from_slice(b"}\n");
    }
}

/// Appends `v` in decimal.
pub(super) fn put_u64(o: &mut Vec<u8>, mut v: u64) {
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

pub(super) fn put_i64(o: &mut Vec<u8>, v: i64) {
    if v < 0 {
        o.push(b'-');
    }
    put_u64(o, v.unsigned_abs());
}

/// An address as a JSON string (IPv4 without the formatting machinery).
pub(super) fn json_ip(o: &mut Vec<u8>, a: IpAddr) {
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
pub(super) const JSON_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i < 0x20 || i == b'"' as usize || i == b'\\' as usize || i >= 0x80;
        i += 1;
    }
    t
};

/// Index of the first byte of `b` in [`JSON_SPECIAL`], eight bytes at a time.
pub(super) fn first_special(b: &[u8]) -> Option<usize> {
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

/// A JSON string; invalid UTF-8 becomes U+FFFD, quotes, backslashes and control characters are
/// escaped. Runs of plain bytes are copied at once (fingerprint strings have nothing to escape).
pub(super) fn json_str(o: &mut Vec<u8>, b: &[u8]) {
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
pub(super) fn json_escaped(o: &mut Vec<u8>, v: &[u8]) {
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

pub(super) const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
