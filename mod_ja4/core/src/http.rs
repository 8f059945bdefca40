//! HTTP/1.x requests in plaintext client streams (JA4H from captures).
//!
//! Owns: request-head parsing (request line, header names in wire order with duplicates, obs-fold
//! continuations) and [`RequestStream`], which walks a keep-alive/pipelined client stream request
//! by request, skipping bodies by Content-Length or chunked framing.
//! Never: buffers a body, accepts a head larger than its limit, or panics on hostile bytes; a
//! stream it cannot follow is marked broken and left alone.

use crate::fingerprint::HttpVersion;

/// Default limit on one request head (request line + headers).
pub const DEFAULT_MAX_HEAD: usize = 64 * 1024;
/// Headers kept per request; more are counted but not listed.
pub const MAX_HEADERS: usize = 256;

/// Why bytes are not (yet) a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// More bytes are needed.
    #[error("more bytes are needed")]
    Incomplete,
    /// The stream does not start with an HTTP/1.x request line.
    #[error("not an HTTP/1.x request")]
    NotHttp,
    /// The head exceeds the configured limit (bytes).
    #[error("request head exceeds {0} bytes")]
    TooLarge(usize),
    /// A line or field that violates RFC 9112.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// A parsed request head borrowing the stream bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// Request method.
    pub method: &'a [u8],
    /// Request target as sent.
    pub target: &'a [u8],
    /// Protocol version of the request line.
    pub version: HttpVersion,
    /// (name, value) in wire order, values trimmed.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// Headers beyond [`MAX_HEADERS`] that were not kept.
    pub headers_dropped: usize,
    /// Length of the head including the blank line.
    pub head_len: usize,
}

/// How the body after a head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// A body of this many bytes (Content-Length).
    Length(u64),
    /// A chunked body.
    Chunked,
}

impl RequestHead<'_> {
    /// First value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }

    /// Body framing per RFC 9112 §6: chunked wins over Content-Length; conflicting lengths are
    /// an error (the stream cannot be followed safely).
    pub fn body_framing(&self) -> Result<BodyFraming, HttpError> {
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case(b"transfer-encoding") {
                let last = v.rsplit(|b| *b == b',').next().map(trim).unwrap_or(&[]);
                chunked = last.eq_ignore_ascii_case(b"chunked");
                if !chunked {
                    return Err(HttpError::Malformed("transfer-encoding"));
                }
            } else if n.eq_ignore_ascii_case(b"content-length") {
                let l = parse_decimal(v).ok_or(HttpError::Malformed("content-length"))?;
                if length.is_some_and(|x| x != l) {
                    return Err(HttpError::Malformed("content-length"));
                }
                length = Some(l);
            }
        }
        Ok(if chunked {
            BodyFraming::Chunked
        } else {
            match length {
                Some(0) | None => BodyFraming::None,
                Some(l) => BodyFraming::Length(l),
            }
        })
    }
}

/// Cheap check on the first bytes of a stream: could this be an HTTP request line?
/// `Ok(true)` yes, `Ok(false)` no, `Err(Incomplete)` cannot tell yet.
pub fn looks_like_request(buf: &[u8]) -> Result<bool, HttpError> {
    for (i, b) in buf.iter().enumerate().take(24) {
        if *b == b' ' {
            return Ok(i > 0);
        }
        if !b.is_ascii_uppercase() && *b != b'-' && *b != b'_' {
            return Ok(false);
        }
    }
    if buf.len() >= 24 {
        Ok(false)
    } else {
        Err(HttpError::Incomplete)
    }
}

/// Parses one request head at the start of `buf`.
pub fn parse_request_head(buf: &[u8], max: usize) -> Result<RequestHead<'_>, HttpError> {
    let window = &buf[..buf.len().min(max)];
    let head_len = match find_head_end(window) {
        Some(n) => n,
        None if buf.len() >= max => return Err(HttpError::TooLarge(max)),
        None => return Err(HttpError::Incomplete),
    };
    let mut lines = Lines {
        rest: &buf[..head_len],
    };
    let request_line = lines.next().ok_or(HttpError::Malformed("request line"))?;
    let (method, target, version) = parse_request_line(request_line)?;
    let mut headers: Vec<(&[u8], &[u8])> = Vec::with_capacity(16);
    let mut dropped = 0;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue; // obs-fold continuation of the previous value
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue; // not a header line; httpd would reject, we just do not list it
        };
        let name = trim(&line[..colon]);
        if name.is_empty() {
            continue;
        }
        if headers.len() < MAX_HEADERS {
            headers.push((name, trim(&line[colon + 1..])));
        } else {
            dropped += 1;
        }
    }
    Ok(RequestHead {
        method,
        target,
        version,
        headers,
        headers_dropped: dropped,
        head_len,
    })
}

fn parse_request_line(line: &[u8]) -> Result<(&[u8], &[u8], HttpVersion), HttpError> {
    let mut parts = line.split(|b| *b == b' ').filter(|p| !p.is_empty());
    let method = parts.next().ok_or(HttpError::NotHttp)?;
    if method.len() > 24
        || !method
            .iter()
            .all(|b| b.is_ascii_uppercase() || *b == b'-' || *b == b'_')
    {
        return Err(HttpError::NotHttp);
    }
    let target = parts.next().ok_or(HttpError::Malformed("request target"))?;
    let version = match parts.next() {
        None => HttpVersion::Http09,
        Some(v) => match v {
            b"HTTP/1.1" => HttpVersion::Http11,
            b"HTTP/1.0" => HttpVersion::Http10,
            b"HTTP/2" | b"HTTP/2.0" => HttpVersion::Http2,
            b"HTTP/0.9" => HttpVersion::Http09,
            _ => return Err(HttpError::Malformed("HTTP version")),
        },
    };
    if parts.next().is_some() {
        return Err(HttpError::Malformed("request line"));
    }
    Ok((method, target, version))
}

/// Position just past the blank line ending the head (`\r\n\r\n` or bare `\n\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|b| *b == b'\n') {
        let nl = i + p;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self
            .rest
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(self.rest.len());
        let mut line = &self.rest[..end];
        self.rest = self.rest.get(end + 1..).unwrap_or(&[]);
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        Some(line)
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |i| i + 1);
    &s[start..end]
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// What [`RequestStream::step`] did with the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// A request head was parsed; `consumed` bytes of the buffer are done with, and the
    /// `body` bytes that follow are to be discarded (Content-Length framing).
    Request {
        /// The parsed head.
        head: RequestHead<'a>,
        /// Buffer bytes the head took.
        consumed: usize,
        /// Body bytes after the head, to discard.
        body: u64,
    },
    /// Bytes were consumed (chunk framing, stray blank lines) without a new request.
    Consumed(usize),
    /// The next `n` stream bytes are body: discard them, buffered or not yet received.
    Skip(u64),
    /// Nothing more can be done until more bytes arrive.
    NeedMore,
    /// The stream cannot be followed any further.
    Broken(HttpError),
}

/// Walks a client→server byte stream request by request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStream {
    state: State,
    max_head: usize,
    pending_skip: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    ChunkSize,
    ChunkDataEnd,
    Trailers,
    Broken,
}

impl RequestStream {
    /// A stream at its first request, with heads bounded to `max_head` bytes.
    pub fn new(max_head: usize) -> Self {
        RequestStream {
            state: State::Head,
            max_head,
            pending_skip: 0,
        }
    }

    /// The stream hit an error and will not be followed further.
    pub fn is_broken(&self) -> bool {
        self.state == State::Broken
    }

    /// Advances over the start of `buf` (the unconsumed stream bytes). Call repeatedly, removing
    /// the consumed bytes each time, until it returns `NeedMore` or `Broken`.
    pub fn step<'a>(&mut self, buf: &'a [u8]) -> Step<'a> {
        match self.state {
            State::Broken => Step::Broken(HttpError::Malformed("stream")),
            State::Head => {
                // Tolerate stray CRLFs between requests (RFC 9112 §2.2).
                let blank = buf
                    .iter()
                    .take_while(|b| **b == b'\r' || **b == b'\n')
                    .count();
                if blank > 0 {
                    return Step::Consumed(blank);
                }
                match looks_like_request(buf) {
                    Ok(true) => {}
                    Ok(false) => return self.broken(HttpError::NotHttp),
                    Err(_) => return Step::NeedMore,
                }
                match parse_request_head(buf, self.max_head) {
                    // The HTTP/2 prior-knowledge preface is not an HTTP/1 request; the frames
                    // after it cannot be followed here.
                    Ok(head) if head.method == b"PRI" && head.target == b"*" => {
                        self.broken(HttpError::NotHttp)
                    }
                    Ok(head) => {
                        let consumed = head.head_len;
                        let (state, skip) = match head.body_framing() {
                            Ok(BodyFraming::None) => (State::Head, 0),
                            Ok(BodyFraming::Length(n)) => (State::Head, n),
                            Ok(BodyFraming::Chunked) => (State::ChunkSize, 0),
                            Err(_) => (State::Broken, 0),
                        };
                        self.state = state;
                        Step::Request {
                            head,
                            consumed,
                            body: skip,
                        }
                    }
                    Err(HttpError::Incomplete) => Step::NeedMore,
                    Err(e) => self.broken(e),
                }
            }
            State::ChunkSize => match line(buf) {
                Some(Ok((l, used))) => {
                    let hex = trim(l.split(|b| *b == b';').next().unwrap_or(&[]));
                    match parse_hex(hex) {
                        Some(0) => {
                            self.state = State::Trailers;
                            Step::Consumed(used)
                        }
                        Some(n) => {
                            // The size line is consumed first; the driver then skips the data.
                            self.state = State::ChunkDataEnd;
                            self.pending_skip = n;
                            Step::Consumed(used)
                        }
                        None => self.broken(HttpError::Malformed("chunk size")),
                    }
                }
                Some(Err(e)) => self.broken(e),
                None => Step::NeedMore,
            },
            State::ChunkDataEnd if self.pending_skip > 0 => {
                let n = std::mem::take(&mut self.pending_skip);
                Step::Skip(n)
            }
            State::ChunkDataEnd => match line(buf) {
                Some(Ok((&[], used))) => {
                    self.state = State::ChunkSize;
                    Step::Consumed(used)
                }
                Some(Ok(_)) => self.broken(HttpError::Malformed("chunk terminator")),
                Some(Err(e)) => self.broken(e),
                None => Step::NeedMore,
            },
            State::Trailers => match line(buf) {
                Some(Ok((l, used))) => {
                    if l.is_empty() {
                        self.state = State::Head;
                    }
                    Step::Consumed(used)
                }
                Some(Err(e)) => self.broken(e),
                None => Step::NeedMore,
            },
        }
    }

    fn broken<'a>(&mut self, e: HttpError) -> Step<'a> {
        self.state = State::Broken;
        Step::Broken(e)
    }
}

/// One line (without its terminator) and the bytes it used; lines over 4 KiB are an error.
fn line(buf: &[u8]) -> Option<Result<(&[u8], usize), HttpError>> {
    const MAX_LINE: usize = 4096;
    match buf.iter().take(MAX_LINE).position(|b| *b == b'\n') {
        Some(nl) => {
            let l = &buf[..nl];
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            Some(Ok((l, nl + 1)))
        }
        None if buf.len() >= MAX_LINE => Some(Err(HttpError::TooLarge(MAX_LINE))),
        None => None,
    }
}

fn parse_hex(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 15 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, d| {
        Some(acc * 16 + u64::from(char::from(*d).to_digit(16)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(stream: &[u8]) -> (Vec<String>, bool) {
        let mut s = RequestStream::new(DEFAULT_MAX_HEAD);
        let mut off = 0;
        let mut reqs = Vec::new();
        loop {
            match s.step(&stream[off.min(stream.len())..]) {
                Step::Request {
                    head,
                    consumed,
                    body,
                } => {
                    reqs.push(format!(
                        "{} {}",
                        String::from_utf8_lossy(head.method),
                        String::from_utf8_lossy(head.target)
                    ));
                    off += consumed + body as usize;
                }
                Step::Consumed(n) => {
                    assert!(n > 0);
                    off += n
                }
                Step::Skip(n) => off += n as usize,
                Step::NeedMore => return (reqs, false),
                Step::Broken(_) => return (reqs, true),
            }
        }
    }

    #[test]
    fn head_with_duplicates_and_folding() {
        let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n  folded\r\nX-A: 1\r\nx-a: 2\r\n\r\nrest";
        let h = parse_request_head(raw, DEFAULT_MAX_HEAD).unwrap();
        assert_eq!(h.method, b"GET");
        assert_eq!(h.target, b"/a?b=1");
        assert_eq!(h.version, HttpVersion::Http11);
        let names: Vec<&[u8]> = h.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, vec![&b"Host"[..], b"Accept", b"X-A", b"x-a"]);
        assert_eq!(&raw[h.head_len..], b"rest");
        assert_eq!(h.header("host"), Some(&b"x"[..]));
    }

    #[test]
    fn keep_alive_with_bodies_and_chunks() {
        let stream = b"POST /login HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde\
GET /two HTTP/1.1\r\nHost: a\r\n\r\n\r\n\
PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n\
GET /four HTTP/1.0\n\n";
        let (reqs, broken) = walk(stream);
        assert_eq!(reqs, vec!["POST /login", "GET /two", "PUT /c", "GET /four"]);
        assert!(!broken);
        // Byte-at-a-time delivery finds the same requests.
        let mut s = RequestStream::new(DEFAULT_MAX_HEAD);
        let mut buf: Vec<u8> = Vec::new();
        let mut found = 0;
        let mut skip = 0u64;
        for b in stream.iter() {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            buf.push(*b);
            loop {
                match s.step(&buf) {
                    Step::Request { consumed, body, .. } => {
                        found += 1;
                        buf.drain(..consumed);
                        skip = body;
                    }
                    Step::Consumed(n) => {
                        buf.drain(..n);
                    }
                    Step::Skip(n) => skip = n,
                    Step::NeedMore => break,
                    Step::Broken(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(found, 4);
    }

    #[test]
    fn hostile_streams_break_cleanly() {
        assert!(walk(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").1);
        assert!(walk(b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").1);
        assert!(walk(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").1);
        assert!(walk(b"GET / HTTP/9.9\r\n\r\n").1);
        assert!(walk(b"\x16\x03\x01").1);
        let (reqs, broken) = walk(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04");
        assert!(
            reqs.is_empty() && broken,
            "h2c preface is not an HTTP/1 request"
        );
        let big = vec![b'A'; DEFAULT_MAX_HEAD + 10];
        assert_eq!(
            parse_request_head(&big, DEFAULT_MAX_HEAD),
            Err(HttpError::TooLarge(DEFAULT_MAX_HEAD))
        );
        assert_eq!(
            parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\n", DEFAULT_MAX_HEAD),
            Err(HttpError::Incomplete)
        );
        assert_eq!(parse_decimal(b"99999999999999999999"), None);
    }

    #[test]
    fn sniffing() {
        assert_eq!(looks_like_request(b"GET /"), Ok(true));
        assert_eq!(looks_like_request(b"GE"), Err(HttpError::Incomplete));
        assert_eq!(looks_like_request(b"\x16\x03"), Ok(false));
        assert_eq!(looks_like_request(b"SSH-2.0-OpenSSH"), Ok(false));
        assert_eq!(looks_like_request(b" GET"), Ok(false));
    }
}
