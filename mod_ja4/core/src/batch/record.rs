//! The export record: one request, or one connection that never produced a request, and
//! which request headers it carries (their roles).

use super::*;

/// Whether a record is a request or a connection without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordKind {
    /// A request (with the fingerprints of its connection).
    #[default]
    Request = 0,
    /// A connection that ended without a request (handshake-only, SYN scan).
    Orphan = 1,
}

/// SYN facts carried by a record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SynRecord {
    /// TTL / hop limit of the SYN as received.
    pub ttl: u8,
    /// TCP window of the SYN.
    pub window: u16,
    /// Maximum segment size option, if sent.
    pub mss: Option<u16>,
    /// Window scale option, if sent.
    pub window_scale: Option<u8>,
    /// Option kinds in wire order (JA4T's option list).
    pub options: Vec<u8>,
    /// IPv4 identification (`None` for IPv6).
    pub ip_id: Option<u16>,
    /// IPv4 Don't Fragment bit.
    pub dont_fragment: bool,
}

/// One exported record. `S` is `&[u8]` while the module builds it from request memory and
/// `String` once decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record<S> {
    /// Request or orphan connection.
    pub kind: RecordKind,
    /// When the request was read (or the connection ended), Unix microseconds.
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
    /// Virtual host that served the request (`r->hostname` or the server name).
    pub vhost: S,
    /// Request method.
    pub method: S,
    /// Request path, without the query string.
    pub path: S,
    /// Query string, without the `?`.
    pub query: S,
    /// Request protocol (`HTTP/1.1`, `HTTP/2.0`).
    pub protocol: S,
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
    /// Negotiated TLS version (`TLSv1.3`), empty without TLS.
    pub tls_version: S,
    /// Negotiated cipher suite name, empty without TLS.
    pub tls_cipher: S,
    /// Server name the client sent (SNI), empty if none.
    pub tls_sni: S,
    /// Negotiated ALPN protocol (`h2`, `http/1.1`), empty if none.
    pub tls_alpn: S,
    /// JA4 of the connection's ClientHello.
    pub ja4: S,
    /// JA4 raw form (`_r`).
    pub ja4_r: S,
    /// JA4 with ciphers and extensions in wire order (`_o`).
    pub ja4_o: S,
    /// JA4 raw form in wire order (`_ro`).
    pub ja4_ro: S,
    /// JA3 (MD5 of the raw string).
    pub ja3: S,
    /// JA3 raw string.
    pub ja3_r: S,
    /// JA4H of the request.
    pub ja4h: S,
    /// JA4H raw form.
    pub ja4h_r: S,
    /// JA4H with header names in wire order.
    pub ja4h_o: S,
    /// JA4H raw form in wire order.
    pub ja4h_ro: S,
    /// JA4T of the client's SYN.
    pub ja4t: S,
    /// JA4TS of the server's SYN-ACK.
    pub ja4ts: S,
    /// JA4L client half (`latency_ttl`).
    pub ja4l_c: S,
    /// JA4L server half (`latency_ttl`).
    pub ja4l_s: S,
    /// JA4S of the server's ServerHello.
    pub ja4s: S,
    /// Facts of the client's SYN, when a source saw it.
    pub syn: Option<SynRecord>,
    /// Where the fingerprints came from: `SOURCE_*` bits.
    pub sources: u8,
    /// Request header names in wire order (duplicates kept, Cookie and Referer included),
    /// joined by `,`.
    pub header_names: S,
    /// The Cookie header value (several Cookie headers joined by `; `). Carried for the JA4H
    /// raw forms; not stored by the sidecar.
    pub cookie: S,
    /// First User-Agent value.
    pub user_agent: S,
    /// First Accept value.
    pub accept: S,
    /// First Accept-Language value.
    pub accept_language: S,
    /// First Accept-Encoding value.
    pub accept_encoding: S,
    /// First Sec-Fetch-Site value.
    pub sec_fetch_site: S,
    /// First Sec-Fetch-Mode value.
    pub sec_fetch_mode: S,
    /// First Sec-Fetch-Dest value.
    pub sec_fetch_dest: S,
    /// First Sec-Fetch-User value.
    pub sec_fetch_user: S,
    /// First Sec-CH-UA value.
    pub sec_ch_ua: S,
    /// First Sec-CH-UA-Mobile value.
    pub sec_ch_ua_mobile: S,
    /// First Sec-CH-UA-Platform value.
    pub sec_ch_ua_platform: S,
    /// The request carried a Cookie header.
    pub has_cookie: bool,
    /// The request carried a Referer header.
    pub has_referer: bool,
    /// What `JA4Mitigation` decided for the request (nothing when it is off).
    pub mitigation: Mitigation,
    /// The connection's HTTP/2 fingerprint (`ja4_core::h2`, Akamai string; empty without
    /// HTTP/2). Travels as trailer [`TRAILER_H2`]; a string longer than 255 bytes arrives cut
    /// to 254 and marked with a final `~` (its hash is of the whole string).
    pub h2: S,
    /// Its short form (trailer [`TRAILER_H2_HASH`]).
    pub h2_hash: S,
    /// The request's consistency facts (`ja4_core::stack::flags`; trailer
    /// [`TRAILER_CONSISTENCY`] when any is set).
    pub consistency: u8,
}

/// Tag of the HTTP/2 fingerprint trailer.
pub const TRAILER_H2: u8 = 2;
/// Tag of the HTTP/2 fingerprint's short form.
pub const TRAILER_H2_HASH: u8 = 3;
/// Tag of the consistency facts (one byte of `ja4_core::stack::flags`).
pub const TRAILER_CONSISTENCY: u8 = 4;

/// The consistency trailer of `flags` (empty when none is set).
pub fn consistency_trailer(flags: u8) -> &'static [u8] {
    static ALL: [[u8; 3]; 256] = {
        let mut t = [[0u8; 3]; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = [TRAILER_CONSISTENCY, 1, i as u8];
            i += 1;
        }
        t
    };
    if flags == 0 {
        &[]
    } else {
        &ALL[usize::from(flags)]
    }
}

/// Bytes [`write_h2_trailers`] writes for `akamai` and `hash` (0 without a fingerprint).
pub fn h2_trailers_len(akamai: &[u8], hash: &[u8]) -> usize {
    if akamai.is_empty() {
        return 0;
    }
    4 + akamai.len().min(255) + hash.len().min(255)
}

/// Appends the HTTP/2 trailers (nothing without a fingerprint): the Akamai string (cut to
/// 254 bytes and `~` when longer than 255) and its short form.
pub fn write_h2_trailers(out: &mut Vec<u8>, akamai: &[u8], hash: &[u8]) {
    if akamai.is_empty() {
        return;
    }
    out.push(TRAILER_H2);
    if akamai.len() <= 255 {
        out.push(akamai.len() as u8);
        out.extend_from_slice(akamai);
    } else {
        out.push(255);
        out.extend_from_slice(&akamai[..254]);
        out.push(b'~');
    }
    let hash = &hash[..hash.len().min(255)];
    out.push(TRAILER_H2_HASH);
    out.push(hash.len() as u8);
    out.extend_from_slice(hash);
}

/// What the module did with a request (`JA4_ACTION`), or would have done in count mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MitigationAction {
    /// Mitigation off: nothing decided.
    #[default]
    None = 0,
    /// Served: no decision or limit against it.
    Allow = 1,
    /// Served on a valid challenge pass.
    Pass = 2,
    /// Answered with the challenge page.
    Challenge = 3,
    /// Refused: 403 (decision) or 429 (rate limit).
    Block = 4,
    /// The answer to a challenge, accepted: the pass cookie set.
    ChallengePassed = 5,
    /// The answer to a challenge, refused (wrong, forged or expired).
    ChallengeFailed = 6,
    /// Held (`JA4TarpitDelay`), then refused.
    Tarpit = 7,
}

impl MitigationAction {
    /// Its name, as in `JA4_ACTION` (without the `count:` prefix).
    pub fn as_str(self) -> &'static str {
        match self {
            MitigationAction::None => "",
            MitigationAction::Allow => "allow",
            MitigationAction::Pass => "pass",
            MitigationAction::Challenge => "challenge",
            MitigationAction::Block => "block",
            MitigationAction::ChallengePassed => "challenge_passed",
            MitigationAction::ChallengeFailed => "challenge_failed",
            MitigationAction::Tarpit => "tarpit",
        }
    }

    fn from_code(c: u8) -> Option<MitigationAction> {
        use MitigationAction::*;
        [
            None,
            Allow,
            Pass,
            Challenge,
            Block,
            ChallengePassed,
            ChallengeFailed,
            Tarpit,
        ]
        .get(usize::from(c))
        .copied()
    }
}

/// Why the module acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MitigationReason {
    /// No decision or limit named the request.
    #[default]
    None = 0,
    /// The sidecar's decision (its verdict is [`Mitigation::verdict`]).
    Decision = 1,
    /// A `JA4RateLimit ip`.
    RateLimitIp = 2,
    /// A `JA4RateLimit ja4`.
    RateLimitJa4 = 3,
    /// A `JA4RateLimit ip+ja4`.
    RateLimitIpJa4 = 4,
}

impl MitigationReason {
    /// Its name (`JA4_REASON` for limits).
    pub fn as_str(self) -> &'static str {
        match self {
            MitigationReason::None => "",
            MitigationReason::Decision => "decision",
            MitigationReason::RateLimitIp => "ratelimit:ip",
            MitigationReason::RateLimitJa4 => "ratelimit:ja4",
            MitigationReason::RateLimitIpJa4 => "ratelimit:ip+ja4",
        }
    }

    fn from_code(c: u8) -> Option<MitigationReason> {
        use MitigationReason::*;
        [None, Decision, RateLimitIp, RateLimitJa4, RateLimitIpJa4]
            .get(usize::from(c))
            .copied()
    }
}

/// The mitigation part of a record: the action taken (or, `counted`, the one count mode would
/// have taken), why, and the decision's verdict and bot score when one named the client.
/// Travels as a trailer after the strings block (tag [`TRAILER_MITIGATION`]) only when
/// mitigation is on, so records of servers without it are unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mitigation {
    /// What was done.
    pub action: MitigationAction,
    /// Count mode: `action` is what would have been done; the request was served.
    pub counted: bool,
    /// Why.
    pub reason: MitigationReason,
    /// The decision's verdict, when the sidecar's decisions named the client.
    pub verdict: Option<crate::decisions::Verdict>,
    /// The decision's bot score (1–99; 0 without a decision).
    pub bot_score: u8,
}

/// Tag of the mitigation trailer.
pub const TRAILER_MITIGATION: u8 = 1;
/// Bytes of the mitigation trailer: tag, length, then action (count mode in bit 7), reason,
/// verdict code, bot score.
pub const MITIGATION_TRAILER_LEN: usize = 6;

impl Mitigation {
    /// Whether there is anything to say (mitigation was on).
    pub fn is_some(&self) -> bool {
        self.action != MitigationAction::None
    }

    /// The trailer that carries it.
    pub fn trailer(&self) -> [u8; MITIGATION_TRAILER_LEN] {
        [
            TRAILER_MITIGATION,
            4,
            self.action as u8 | if self.counted { 0x80 } else { 0 },
            self.reason as u8,
            self.verdict.map_or(0, |v| v.code()),
            self.bot_score,
        ]
    }

    /// From a trailer's value (the 4 bytes after tag and length); `None` if malformed.
    pub fn from_trailer(v: &[u8]) -> Option<Mitigation> {
        let [a, reason, verdict, bot_score] = *v else {
            return None;
        };
        Some(Mitigation {
            action: MitigationAction::from_code(a & 0x7f)?,
            counted: a & 0x80 != 0,
            reason: MitigationReason::from_code(reason)?,
            verdict: match verdict {
                0 => None,
                c => Some(crate::decisions::Verdict::from_code(c)?),
            },
            bot_score,
        })
    }

    /// `JA4_ACTION`'s words: the action, `count:` before it in count mode.
    pub fn action_text(&self) -> String {
        let a = self.action.as_str();
        if self.counted {
            format!("count:{a}")
        } else {
            a.to_owned()
        }
    }
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
            mitigation: self.mitigation,
            h2: f(self.h2),
            h2_hash: f(self.h2_hash),
            consistency: self.consistency,
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
    /// The Cookie header: its value is kept for JA4H's cookie parts.
    Cookie,
    /// The Referer header: only its presence is kept.
    Referer,
    /// Its value goes to the record field at this index of [`PICKED_HEADERS`].
    Picked(usize),
    /// Any other header: only its name is kept.
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
