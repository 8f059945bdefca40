//! TLS handshake parsing: the first handshake message of a byte stream, the ClientHello and
//! the ServerHello.
//!
//! Owns: record-layer framing (a handshake message reassembled across TLS records), rejection of
//! SSLv2-format hellos and non-TLS bytes, and zero-copy views of ClientHello/ServerHello with the
//! extensions JA4+ reads (SNI, ALPN, supported_versions, supported_groups, ec_point_formats,
//! signature_algorithms).
//! Never: panics, trusts a length, or allocates unless a handshake message spans several records
//! (then exactly one buffer, bounded by the caller's limit).

use std::borrow::Cow;

use serde::Serialize;

use crate::hash::is_grease;
use crate::reader::{fixed, Reader};

/// Largest TLS record we accept (2^14 plaintext plus the 2048 bytes TLS allows for expansion).
pub const MAX_RECORD: usize = 16384 + 2048;
/// Default bound on a ClientHello/ServerHello message (post-quantum hellos are ~2 KB).
pub const DEFAULT_MAX_HANDSHAKE: usize = 64 * 1024;

/// Handshake message type of a ClientHello.
pub const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Handshake message type of a ServerHello.
pub const HANDSHAKE_SERVER_HELLO: u8 = 2;

/// server_name (SNI).
pub const EXT_SERVER_NAME: u16 = 0x0000;
/// supported_groups.
pub const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
/// ec_point_formats.
pub const EXT_EC_POINT_FORMATS: u16 = 0x000b;
/// signature_algorithms.
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
/// application_layer_protocol_negotiation.
pub const EXT_ALPN: u16 = 0x0010;
/// supported_versions.
pub const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// Why bytes are not (yet) a usable hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// More bytes are needed.
    #[error("more bytes are needed")]
    Incomplete,
    /// The stream does not start with a TLS handshake record.
    #[error("not a TLS handshake record")]
    NotTls,
    /// An SSLv2-format hello.
    #[error("SSLv2-format hello (not supported)")]
    SslV2,
    /// The message exceeds the limit (bytes).
    #[error("handshake message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// A length or field that does not fit.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A handshake message of another type (its type).
    #[error("handshake message type {0} is not the hello expected")]
    UnexpectedMessage(u8),
}

/// Extracts the first handshake message from the start of a TLS byte stream.
///
/// Returns the message type and its body (without the 4-byte handshake header). The body is
/// borrowed when it sits in the first record, and copied once when it spans records.
/// `Err(Incomplete)` means: call again with more bytes.
pub fn first_handshake_message(
    stream: &[u8],
    max_len: usize,
) -> Result<(u8, Cow<'_, [u8]>), TlsError> {
    let first = *stream.first().ok_or(TlsError::Incomplete)?;
    if first != 0x16 {
        // SSLv2 CLIENT-HELLO: 2-byte header with the high bit set, then message type 1.
        if first & 0x80 != 0 && stream.get(2) == Some(&0x01) {
            return Err(TlsError::SslV2);
        }
        return Err(TlsError::NotTls);
    }
    let (frag, mut rest) = record(stream)?;
    let Some(h) = fixed::<4>(frag) else {
        // A handshake header split across records is legal but odd: handle it in the slow path.
        return slow_path(stream, max_len);
    };
    let (msg_type, msg_len) = handshake_header(h);
    if msg_len > max_len {
        return Err(TlsError::TooLarge(msg_len));
    }
    let mut r = Reader::new(frag);
    r.skip(4).ok_or(TlsError::Incomplete)?;
    if let Some(body) = r.take(msg_len) {
        return Ok((msg_type, Cow::Borrowed(body)));
    }
    // Spans several records: gather fragments.
    let mut body = Vec::with_capacity(msg_len);
    body.extend_from_slice(r.rest());
    while body.len() < msg_len {
        let (frag, next) = record(rest)?;
        rest = next;
        let need = msg_len - body.len();
        body.extend_from_slice(frag.get(..need).unwrap_or(frag));
    }
    Ok((msg_type, Cow::Owned(body)))
}

/// A handshake message header: its type and body length.
fn handshake_header(h: &[u8; 4]) -> (u8, usize) {
    let [t, a, b, c] = *h;
    (t, u32::from_be_bytes([0, a, b, c]) as usize)
}

fn slow_path(stream: &[u8], max_len: usize) -> Result<(u8, Cow<'_, [u8]>), TlsError> {
    let mut rest = stream;
    let mut header = Vec::with_capacity(4);
    let mut body: Vec<u8> = Vec::new();
    loop {
        let (frag, next) = record(rest)?;
        rest = next;
        let mut r = Reader::new(frag);
        if header.len() < 4 {
            let take = (4 - header.len()).min(r.left());
            header.extend_from_slice(r.take(take).unwrap_or_default());
        }
        if let Some(h) = fixed::<4>(&header) {
            let (msg_type, msg_len) = handshake_header(h);
            if msg_len > max_len {
                return Err(TlsError::TooLarge(msg_len));
            }
            let need = msg_len - body.len();
            let rest_of_frag = r.rest();
            body.extend_from_slice(rest_of_frag.get(..need).unwrap_or(rest_of_frag));
            if body.len() == msg_len {
                return Ok((msg_type, Cow::Owned(body)));
            }
        }
    }
}

/// One handshake record: returns its fragment and the bytes after it.
fn record(stream: &[u8]) -> Result<(&[u8], &[u8]), TlsError> {
    let mut r = Reader::new(stream);
    let [kind, major, _minor, hi, lo] = r.array::<5>().ok_or(TlsError::Incomplete)?;
    if kind != 0x16 {
        return Err(TlsError::Malformed(
            "record type inside a handshake message",
        ));
    }
    if major != 0x03 {
        return Err(TlsError::NotTls);
    }
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len == 0 || len > MAX_RECORD {
        return Err(TlsError::Malformed("record length"));
    }
    let frag = r.take(len).ok_or(TlsError::Incomplete)?;
    Ok((frag, r.rest()))
}

/// A parsed ClientHello, borrowing the message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// The legacy_version field.
    pub legacy_version: u16,
    /// Raw cipher suite list (pairs of bytes).
    pub cipher_suites: &'a [u8],
    /// Raw extensions block (type, length, data)*, validated.
    pub extensions: &'a [u8],
    /// Whether a server_name extension is present (even if it carries no host name).
    pub has_sni: bool,
    /// The first host name of server_name.
    pub sni: Option<&'a [u8]>,
    /// Body of the ALPN extension's protocol list (`len(1) value` repeated), if present.
    pub alpn: Option<&'a [u8]>,
    /// signature_algorithms (0x000d) list body.
    pub signature_algorithms: &'a [u8],
    /// supported_versions list body; `None` if the extension is absent.
    pub supported_versions: Option<&'a [u8]>,
    /// supported_groups list body.
    pub supported_groups: &'a [u8],
    /// ec_point_formats list body.
    pub ec_point_formats: &'a [u8],
}

/// Parses a ClientHello message body.
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    let mut r = Reader::new(body);
    let legacy_version = r
        .be_u16()
        .ok_or(TlsError::Malformed("ClientHello version"))?;
    r.skip(32)
        .ok_or(TlsError::Malformed("ClientHello random"))?;
    let sid = r
        .vec8()
        .ok_or(TlsError::Malformed("ClientHello session id"))?;
    if sid.len() > 32 {
        return Err(TlsError::Malformed("ClientHello session id"));
    }
    let cipher_suites = r
        .vec16()
        .ok_or(TlsError::Malformed("ClientHello cipher suites"))?;
    if cipher_suites.len() % 2 != 0 {
        return Err(TlsError::Malformed("ClientHello cipher suites"));
    }
    r.vec8()
        .ok_or(TlsError::Malformed("ClientHello compression methods"))?;
    let mut ch = ClientHello {
        legacy_version,
        cipher_suites,
        extensions: &[],
        has_sni: false,
        sni: None,
        alpn: None,
        signature_algorithms: &[],
        supported_versions: None,
        supported_groups: &[],
        ec_point_formats: &[],
    };
    if r.is_empty() {
        return Ok(ch);
    }
    ch.extensions = r
        .vec16()
        .ok_or(TlsError::Malformed("ClientHello extensions"))?;
    let mut seen_sni = false;
    for ext in Extensions::new(ch.extensions) {
        let (ty, data) = ext?;
        match ty {
            EXT_SERVER_NAME if !seen_sni => {
                seen_sni = true;
                ch.has_sni = true;
                ch.sni = first_host_name(data);
            }
            EXT_ALPN if ch.alpn.is_none() => {
                ch.alpn = Some(Reader::new(data).vec16().unwrap_or(&[]))
            }
            EXT_SIGNATURE_ALGORITHMS if ch.signature_algorithms.is_empty() => {
                ch.signature_algorithms = even(Reader::new(data).vec16().unwrap_or(&[]));
            }
            EXT_SUPPORTED_VERSIONS if ch.supported_versions.is_none() => {
                ch.supported_versions = Some(even(Reader::new(data).vec8().unwrap_or(&[])));
            }
            EXT_SUPPORTED_GROUPS if ch.supported_groups.is_empty() => {
                ch.supported_groups = even(Reader::new(data).vec16().unwrap_or(&[]));
            }
            EXT_EC_POINT_FORMATS if ch.ec_point_formats.is_empty() => {
                ch.ec_point_formats = Reader::new(data).vec8().unwrap_or(&[]);
            }
            _ => {}
        }
    }
    Ok(ch)
}

impl<'a> ClientHello<'a> {
    /// Cipher suites in wire order (GREASE included).
    pub fn ciphers(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.cipher_suites)
    }
    /// Extension types in wire order (validated at parse time, so errors cannot occur here).
    pub fn extension_types(&self) -> impl Iterator<Item = u16> + 'a {
        Extensions::new(self.extensions).map_while(|e| e.ok().map(|(t, _)| t))
    }
    /// Signature algorithms in wire order.
    pub fn signature_algorithms(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.signature_algorithms)
    }
    /// Supported versions in wire order (empty if the extension is absent).
    pub fn supported_versions(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.supported_versions.unwrap_or(&[]))
    }
    /// Supported groups in wire order.
    pub fn supported_groups(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.supported_groups)
    }
    /// ALPN protocol names in order; stops at the first malformed entry.
    pub fn alpn_protocols(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut r = Reader::new(self.alpn.unwrap_or(&[]));
        std::iter::from_fn(move || r.vec8())
    }
    /// The version JA4 reports: the highest non-GREASE supported_versions entry when that
    /// extension is present and non-empty, else the legacy version field.
    pub fn ja4_version(&self) -> u16 {
        self.supported_versions()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(self.legacy_version)
    }

    /// Owned facts for records and the detector.
    pub fn facts(&self) -> ClientHelloFacts {
        let nogrease =
            |it: &mut dyn Iterator<Item = u16>| it.filter(|v| !is_grease(*v)).collect::<Vec<_>>();
        ClientHelloFacts {
            legacy_version: self.legacy_version,
            version: self.ja4_version(),
            sni: self.sni.map(|s| String::from_utf8_lossy(s).into_owned()),
            alpn: self
                .alpn_protocols()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect(),
            supported_versions: nogrease(&mut self.supported_versions()),
            ciphers: nogrease(&mut self.ciphers()),
            extensions: nogrease(&mut self.extension_types()),
            groups: nogrease(&mut self.supported_groups()),
            signature_algorithms: nogrease(&mut self.signature_algorithms()),
            ec_point_formats: self.ec_point_formats.to_vec(),
        }
    }
}

/// Parsed facts of a ClientHello (GREASE removed), in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ClientHelloFacts {
    /// The legacy_version field.
    pub legacy_version: u16,
    /// Highest version offered (supported_versions, else legacy_version).
    pub version: u16,
    /// The first host name of server_name.
    pub sni: Option<String>,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// Supported versions.
    pub supported_versions: Vec<u16>,
    /// Cipher suites.
    pub ciphers: Vec<u16>,
    /// Extension types.
    pub extensions: Vec<u16>,
    /// Supported groups.
    pub groups: Vec<u16>,
    /// Signature algorithms.
    pub signature_algorithms: Vec<u16>,
    /// ec_point_formats.
    pub ec_point_formats: Vec<u8>,
}

/// A parsed ServerHello (or HelloRetryRequest), borrowing the message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello<'a> {
    /// The legacy_version field.
    pub legacy_version: u16,
    /// Selected cipher suite.
    pub cipher: u16,
    /// Raw extensions block (type, length, data)*, validated.
    pub extensions: &'a [u8],
    /// supported_versions selected version, if present.
    pub selected_version: Option<u16>,
    /// The ALPN protocol the server chose, if any.
    pub alpn: Option<&'a [u8]>,
    /// The random is the HelloRetryRequest marker (RFC 8446 §4.1.3).
    pub is_hello_retry_request: bool,
}

const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Parses a ServerHello message body.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello<'_>, TlsError> {
    let mut r = Reader::new(body);
    let legacy_version = r
        .be_u16()
        .ok_or(TlsError::Malformed("ServerHello version"))?;
    let random = r
        .take(32)
        .ok_or(TlsError::Malformed("ServerHello random"))?;
    r.vec8()
        .ok_or(TlsError::Malformed("ServerHello session id"))?;
    let cipher = r
        .be_u16()
        .ok_or(TlsError::Malformed("ServerHello cipher"))?;
    r.skip(1)
        .ok_or(TlsError::Malformed("ServerHello compression"))?;
    let mut sh = ServerHello {
        legacy_version,
        cipher,
        extensions: &[],
        selected_version: None,
        alpn: None,
        is_hello_retry_request: random == HRR_RANDOM,
    };
    if r.is_empty() {
        return Ok(sh);
    }
    sh.extensions = r
        .vec16()
        .ok_or(TlsError::Malformed("ServerHello extensions"))?;
    for ext in Extensions::new(sh.extensions) {
        let (ty, data) = ext?;
        match ty {
            EXT_SUPPORTED_VERSIONS if sh.selected_version.is_none() => {
                sh.selected_version = Reader::new(data).be_u16()
            }
            EXT_ALPN if sh.alpn.is_none() => {
                sh.alpn = Reader::new(data)
                    .vec16()
                    .and_then(|list| Reader::new(list).vec8());
            }
            _ => {}
        }
    }
    Ok(sh)
}

impl<'a> ServerHello<'a> {
    /// Extension types in wire order (validated at parse time).
    pub fn extension_types(&self) -> impl Iterator<Item = u16> + 'a {
        Extensions::new(self.extensions).map_while(|e| e.ok().map(|(t, _)| t))
    }
    /// The negotiated version: supported_versions when present, else the legacy field.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// Iterator over (type, data) of an extensions block; yields an error once on a bad length.
struct Extensions<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Extensions<'a> {
    fn new(block: &'a [u8]) -> Self {
        Extensions {
            rest: block,
            failed: false,
        }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<(u16, &'a [u8]), TlsError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let mut r = Reader::new(self.rest);
        let parsed = r.be_u16().and_then(|t| r.vec16().map(|d| (t, d)));
        match parsed {
            Some(item) => {
                self.rest = r.rest();
                Some(Ok(item))
            }
            None => {
                self.failed = true;
                Some(Err(TlsError::Malformed("extension length")))
            }
        }
    }
}

fn first_host_name(data: &[u8]) -> Option<&[u8]> {
    let mut list = Reader::new(Reader::new(data).vec16()?);
    while !list.is_empty() {
        let kind = list.u8()?;
        let name = list.vec16()?;
        if kind == 0 {
            return Some(name);
        }
    }
    None
}

fn even(b: &[u8]) -> &[u8] {
    &b[..b.len() & !1]
}

fn u16s(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a ClientHello message body from parts (for tests across the crate).
    pub(crate) fn client_hello_body(
        version: u16,
        ciphers: &[u16],
        exts: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x11; 32]);
        b.push(0);
        b.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
        for c in ciphers {
            b.extend_from_slice(&c.to_be_bytes());
        }
        b.extend_from_slice(&[1, 0]);
        let mut block = Vec::new();
        for (t, d) in exts {
            block.extend_from_slice(&t.to_be_bytes());
            block.extend_from_slice(&(d.len() as u16).to_be_bytes());
            block.extend_from_slice(d);
        }
        b.extend_from_slice(&(block.len() as u16).to_be_bytes());
        b.extend_from_slice(&block);
        b
    }

    /// Wraps a handshake body into a handshake message split over records of `record_size`.
    pub(crate) fn records(msg_type: u8, body: &[u8], record_size: usize) -> Vec<u8> {
        let mut msg = vec![
            msg_type,
            (body.len() >> 16) as u8,
            (body.len() >> 8) as u8,
            body.len() as u8,
        ];
        msg.extend_from_slice(body);
        let mut out = Vec::new();
        for chunk in msg.chunks(record_size) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    pub(crate) fn sni_ext(name: &str) -> Vec<u8> {
        let mut d = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(&(name.len() as u16).to_be_bytes());
        d.extend_from_slice(name.as_bytes());
        d
    }

    pub(crate) fn alpn_ext(protos: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for p in protos {
            list.push(p.len() as u8);
            list.extend_from_slice(p);
        }
        let mut d = (list.len() as u16).to_be_bytes().to_vec();
        d.extend_from_slice(&list);
        d
    }

    pub(crate) fn u16_list_ext(values: &[u16], len_bytes: usize) -> Vec<u8> {
        let n = values.len() * 2;
        let mut d = if len_bytes == 1 {
            vec![n as u8]
        } else {
            (n as u16).to_be_bytes().to_vec()
        };
        for v in values {
            d.extend_from_slice(&v.to_be_bytes());
        }
        d
    }

    #[test]
    fn parses_sni_alpn_versions() {
        let body = client_hello_body(
            0x0303,
            &[0x1a1a, 0x1301, 0xc02b],
            &[
                (0x0000, sni_ext("example.com")),
                (0x0010, alpn_ext(&[b"h2", b"http/1.1"])),
                (0x002b, u16_list_ext(&[0x2a2a, 0x0304, 0x0303], 1)),
                (0x000d, u16_list_ext(&[0x0403, 0x0804], 2)),
            ],
        );
        let ch = parse_client_hello(&body).unwrap();
        assert_eq!(ch.sni, Some(&b"example.com"[..]));
        assert_eq!(
            ch.alpn_protocols().collect::<Vec<_>>(),
            vec![&b"h2"[..], b"http/1.1"]
        );
        assert_eq!(ch.ja4_version(), 0x0304);
        assert_eq!(
            ch.ciphers().collect::<Vec<_>>(),
            vec![0x1a1a, 0x1301, 0xc02b]
        );
        let f = ch.facts();
        assert_eq!(f.ciphers, vec![0x1301, 0xc02b]);
        assert_eq!(f.supported_versions, vec![0x0304, 0x0303]);
        assert_eq!(f.extensions, vec![0x0000, 0x0010, 0x002b, 0x000d]);
    }

    #[test]
    fn message_spanning_records_and_split_headers() {
        let body = client_hello_body(0x0303, &[0x1301], &[(0x0000, sni_ext("a.example"))]);
        for size in [1, 2, 3, 5, 17, 100, 10_000] {
            let stream = records(1, &body, size);
            let (t, got) = first_handshake_message(&stream, DEFAULT_MAX_HANDSHAKE).unwrap();
            assert_eq!(t, 1);
            assert_eq!(&*got, &body[..], "record size {size}");
            // Every strict prefix is incomplete, never an error.
            for cut in [0, 1, 4, 5, stream.len() / 2, stream.len() - 1] {
                assert_eq!(
                    first_handshake_message(&stream[..cut], DEFAULT_MAX_HANDSHAKE),
                    Err(TlsError::Incomplete),
                    "size {size} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn rejects_sslv2_garbage_and_oversize() {
        let v2 = [0x80, 0x2e, 0x01, 0x00, 0x02];
        assert_eq!(first_handshake_message(&v2, 1 << 16), Err(TlsError::SslV2));
        assert_eq!(
            first_handshake_message(b"GET / HTTP/1.1\r\n", 1 << 16),
            Err(TlsError::NotTls)
        );
        assert_eq!(
            first_handshake_message(&[0x16, 0x02, 0x00, 0, 1, 1], 1 << 16),
            Err(TlsError::NotTls)
        );
        assert_eq!(
            first_handshake_message(&[0x16, 0x03, 0x01, 0, 0], 1 << 16),
            Err(TlsError::Malformed("record length"))
        );
        let big = [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x10, 0x00, 0x00];
        assert_eq!(
            first_handshake_message(&big, 1 << 16),
            Err(TlsError::TooLarge(0x100000))
        );
        // An alert record in the middle of a fragmented hello.
        let body = client_hello_body(0x0303, &[0x1301], &[]);
        let mut s = records(1, &body, 10)[..15].to_vec();
        s.extend_from_slice(&[0x15, 0x03, 0x01, 0x00, 0x02, 2, 40]);
        assert!(matches!(
            first_handshake_message(&s, 1 << 16),
            Err(TlsError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_client_hellos() {
        assert!(parse_client_hello(&[3, 3]).is_err());
        let mut body = client_hello_body(0x0303, &[0x1301], &[(0x0000, sni_ext("x"))]);
        let n = body.len();
        body[n - 8] = 0xff; // the SNI extension's length now overflows the block
        assert_eq!(
            parse_client_hello(&body),
            Err(TlsError::Malformed("extension length"))
        );
        // No extensions at all is a valid (old) hello.
        let mut old = 0x0301u16.to_be_bytes().to_vec();
        old.extend_from_slice(&[0; 32]);
        old.extend_from_slice(&[0, 0, 2, 0, 0x2f, 1, 0]);
        let ch = parse_client_hello(&old).unwrap();
        assert_eq!(ch.extension_types().count(), 0);
        assert_eq!(ch.ja4_version(), 0x0301);
    }

    #[test]
    fn server_hello_and_hrr() {
        let mut b = 0x0303u16.to_be_bytes().to_vec();
        b.extend_from_slice(&HRR_RANDOM);
        b.push(0);
        b.extend_from_slice(&[0x13, 0x02, 0]);
        let exts = [
            0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, 0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, b'h',
            b'2',
        ];
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend_from_slice(&exts);
        let sh = parse_server_hello(&b).unwrap();
        assert!(sh.is_hello_retry_request);
        assert_eq!(sh.version(), 0x0304);
        assert_eq!(sh.cipher, 0x1302);
        assert_eq!(sh.alpn, Some(&b"h2"[..]));
        assert_eq!(
            sh.extension_types().collect::<Vec<_>>(),
            vec![0x002b, 0x0010]
        );
    }
}
