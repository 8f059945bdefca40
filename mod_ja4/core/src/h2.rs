//! The HTTP/2 client fingerprint in the Akamai format (Black Hat EU 2017, "Passive
//! Fingerprinting of HTTP/2 Clients"): `S|WU|P|PS` — the client's first SETTINGS frame as
//! `id:value` pairs in the order sent (`;`), the increment of its first connection-level
//! WINDOW_UPDATE (`00` when it sent none, as the paper says), its PRIORITY frames before the
//! first request as `stream:exclusive:depends_on:weight` with the weight as RFC 9113 counts
//! it, 1–256 (`,`; `0` when none), and the first request's pseudo-header fields
//! (`m`ethod, `a`uthority, `s`cheme, `p`ath; `r` for `:protocol`, `x` for any other).
//! Its short form ([`Fingerprint::hash`]) is the first 12 hex digits of the string's
//! SHA-256, for grouping.
//!
//! Owns: [`Scanner`], which reads the bytes a client sends from the start of its connection
//! — as mod_http2 receives them, decrypted — until the first request's header block is
//! complete: the connection preface (prior knowledge or ALPN `h2`), or an HTTP/1.1
//! `Upgrade: h2c` request (its `HTTP2-Settings` stand in for a preface without SETTINGS),
//! then frames; and the hostile cases it gives up on, each named ([`Hostile`]).
//! Never: decides anything about the connection (mod_http2 does; the scanner only
//! observes), reads more than [`MAX_BYTES`] or [`MAX_FRAMES`], buffers more than one
//! header block of [`MAX_HEADER_BLOCK`] bytes, or panics on any input.
//!
//! ```
//! use ja4_core::h2::{Scanner, Step};
//! let mut s = Scanner::new();
//! let mut bytes = ja4_core::h2::PREFACE.to_vec();
//! // SETTINGS (3:100, 4:10485760), WINDOW_UPDATE 1048510465, HEADERS :method GET, :scheme
//! // https, :path /, :authority (literal value).
//! bytes.extend([0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100, 0, 4, 0, 0xa0, 0, 0]);
//! bytes.extend([0, 0, 4, 8, 0, 0, 0, 0, 0, 0x3e, 0x7f, 0, 1]);
//! bytes.extend([0, 0, 6, 1, 5, 0, 0, 0, 1, 0x82, 0x87, 0x84, 0x41, 0x01, b'h']);
//! let Step::Done(Ok(fp)) = s.feed(&bytes) else { panic!() };
//! assert_eq!(fp.akamai(), "3:100;4:10485760|1048510465|0|m,s,p,a");
//! assert_eq!(fp.hash().len(), 12);
//! ```

mod hpack;
mod huffman_table;

pub use hpack::{pseudo_order, HpackError};

/// The client connection preface (RFC 9113, 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes of a connection the scanner reads at most before it gives up.
pub const MAX_BYTES: usize = 65_536;
/// Frames it reads at most before the first request's header block.
pub const MAX_FRAMES: u32 = 64;
/// Longest header block (HEADERS and its CONTINUATIONs) it buffers.
pub const MAX_HEADER_BLOCK: usize = 16_384;
/// CONTINUATION frames it follows at most.
pub const MAX_CONTINUATIONS: u32 = 8;
/// SETTINGS entries kept (a longer frame is hostile).
pub const MAX_SETTINGS: usize = 32;
/// PRIORITY frames kept (more are counted, not listed).
pub const MAX_PRIORITIES: usize = 32;
/// Longest HTTP/1.1 request head read for an `Upgrade: h2c`.
pub const MAX_UPGRADE_HEAD: usize = 8_192;

/// How the connection speaks HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The preface first: over TLS (ALPN `h2`) or cleartext with prior knowledge.
    Preface,
    /// An HTTP/1.1 request with `Upgrade: h2c` first.
    Upgrade,
}

/// A PRIORITY frame (or a HEADERS frame's priority fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// The stream it is about.
    pub stream: u32,
    /// The exclusive bit.
    pub exclusive: bool,
    /// The stream it depends on.
    pub depends_on: u32,
    /// Its weight, 1–256 (the wire byte plus one).
    pub weight: u16,
}

impl Priority {
    fn parse(stream: u32, b: &[u8]) -> Option<Priority> {
        let w = u32::from_be_bytes(b.get(..4)?.try_into().ok()?);
        Some(Priority {
            stream,
            exclusive: w & 0x8000_0000 != 0,
            depends_on: w & 0x7fff_ffff,
            weight: u16::from(*b.get(4)?) + 1,
        })
    }
}

/// What a client's first frames say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Its first SETTINGS frame's entries, in order.
    pub settings: Vec<(u16, u32)>,
    /// The increment of its first connection-level WINDOW_UPDATE.
    pub window_update: Option<u32>,
    /// PRIORITY frames before the first request (at most [`MAX_PRIORITIES`]).
    pub priorities: Vec<Priority>,
    /// The first request's pseudo-header fields, as letters.
    pub pseudo: Vec<u8>,
    /// The first request's HEADERS priority fields, when it carried them (not part of the
    /// Akamai string; kept for the record).
    pub headers_priority: Option<Priority>,
    /// How the connection came to HTTP/2.
    pub via: Via,
}

impl Fingerprint {
    /// The Akamai string.
    pub fn akamai(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(96);
        for (i, (id, v)) in self.settings.iter().enumerate() {
            if i > 0 {
                s.push(';');
            }
            let _ = write!(s, "{id}:{v}");
        }
        s.push('|');
        match self.window_update {
            Some(w) => {
                let _ = write!(s, "{w}");
            }
            None => s.push_str("00"),
        }
        s.push('|');
        if self.priorities.is_empty() {
            s.push('0');
        }
        for (i, p) in self.priorities.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{}:{}:{}:{}",
                p.stream,
                u8::from(p.exclusive),
                p.depends_on,
                p.weight
            );
        }
        s.push('|');
        for (i, l) in self.pseudo.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push(char::from(*l));
        }
        s
    }

    /// The short form: the first 12 hex digits of the SHA-256 of [`Fingerprint::akamai`].
    pub fn hash(&self) -> String {
        let h = crate::hash::hash12(self.akamai().as_bytes());
        String::from_utf8_lossy(&h).into_owned()
    }
}

/// Why the scanner gave up on a connection that looked like HTTP/2 (counted by the caller;
/// mod_http2 still decides what happens to the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Hostile {
    /// A SETTINGS frame with more than [`MAX_SETTINGS`] entries, or a length that is not a
    /// multiple of 6.
    #[error("oversized or malformed SETTINGS")]
    Settings,
    /// A frame longer than the 16,384 bytes a client may send before the server allows more.
    #[error("frame longer than 16384 bytes")]
    FrameSize,
    /// More than [`MAX_CONTINUATIONS`] CONTINUATION frames, or a block beyond
    /// [`MAX_HEADER_BLOCK`].
    #[error("endless CONTINUATION or oversized header block")]
    Continuation,
    /// A frame where the header block's CONTINUATION had to be.
    #[error("header block interrupted")]
    Interrupted,
    /// A header block HPACK cannot read.
    #[error("bad HPACK: {0}")]
    Hpack(HpackError),
    /// Padding longer than its frame, or a frame too short for its fields.
    #[error("malformed frame")]
    Malformed,
    /// [`MAX_FRAMES`] frames or [`MAX_BYTES`] bytes without a request.
    #[error("no request within the first frames")]
    NoRequest,
}

/// What [`Scanner::feed`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Not done: give it the next bytes.
    More,
    /// Not HTTP/2 (an HTTP/1.x connection without `Upgrade: h2c`, or anything else): the
    /// caller stops looking.
    NotH2,
    /// Done: the fingerprint, or why there is none.
    Done(Result<Fingerprint, Hostile>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the first bytes: the preface, or an HTTP/1.1 request head.
    Start,
    /// Skipping the upgrade request's body, then the preface.
    UpgradeBody(usize),
    /// Matching the preface after an upgrade (bytes matched).
    Preface(usize),
    /// Reading frames.
    Frames,
    /// Finished.
    Finished,
}

/// Reads a client's first bytes, fed in the order they arrive, in pieces of any size.
#[derive(Debug, Clone)]
pub struct Scanner {
    state: State,
    /// Bytes kept across pieces: the request head, a frame's header and wanted payload.
    buf: Vec<u8>,
    /// Payload bytes of the current frame still to skip.
    skip: usize,
    seen: usize,
    frames: u32,
    via: Via,
    settings: Option<Vec<(u16, u32)>>,
    upgrade_settings: Option<Vec<(u16, u32)>>,
    window_update: Option<u32>,
    priorities: Vec<Priority>,
    block: Vec<u8>,
    /// A HEADERS frame without END_HEADERS was read: CONTINUATION must follow.
    in_block: bool,
    block_stream: u32,
    continuations: u32,
    headers_priority: Option<Priority>,
    /// Whether an HTTP/1.1 `Upgrade: h2c` request may come first (cleartext only).
    upgrade: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

/// Frame types.
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const PRIORITY: u8 = 2;
const SETTINGS: u8 = 4;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;
/// Flags.
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;
/// The largest frame payload a client may send before the server's SETTINGS allow more.
const MAX_FRAME: usize = 16_384;

fn settings_of(payload: &[u8]) -> Result<Vec<(u16, u32)>, Hostile> {
    if payload.len() % 6 != 0 || payload.len() / 6 > MAX_SETTINGS {
        return Err(Hostile::Settings);
    }
    Ok(payload
        .chunks_exact(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect())
}

/// base64url without padding (RFC 4648, 5), as `HTTP2-Settings` carries it.
fn base64url(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        }))
    };
    let s: Vec<u8> = s.iter().copied().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | val(c)?;
        }
        let bits = chunk.len() * 6;
        acc <<= 24 - bits;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..1 + bits / 8]);
    }
    Some(out)
}

/// What an HTTP/1.x request head says about h2c: `Some(settings)` for `Upgrade: h2c`, with
/// its body length.
fn upgrade_of(head: &[u8]) -> Option<(Vec<(u16, u32)>, usize)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let request = lines.next()?;
    if !request.ends_with("HTTP/1.1") {
        return None;
    }
    let (mut upgrade, mut settings, mut body) = (false, None, 0usize);
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("upgrade") {
            upgrade |= v.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c"));
        } else if k.eq_ignore_ascii_case("http2-settings") {
            settings = base64url(v.as_bytes()).and_then(|p| settings_of(&p).ok());
        } else if k.eq_ignore_ascii_case("content-length") {
            body = v.parse().ok()?;
        }
    }
    (upgrade && settings.is_some()).then(|| (settings.unwrap_or_default(), body))
}

impl Scanner {
    /// A scanner at the start of a connection.
    pub fn new() -> Scanner {
        Scanner {
            state: State::Start,
            buf: Vec::new(),
            skip: 0,
            seen: 0,
            frames: 0,
            via: Via::Preface,
            settings: None,
            upgrade_settings: None,
            window_update: None,
            priorities: Vec::new(),
            block: Vec::new(),
            in_block: false,
            block_stream: 0,
            continuations: 0,
            headers_priority: None,
            upgrade: true,
        }
    }

    /// A scanner for a TLS connection: HTTP/2 there starts with the preface (ALPN `h2`); any
    /// other first byte ends the scan at once (no request head is read).
    pub fn tls() -> Scanner {
        Scanner {
            upgrade: false,
            ..Scanner::new()
        }
    }

    /// Whether it has finished (a fingerprint, not HTTP/2, or given up).
    pub fn finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Reads the next bytes of the connection.
    pub fn feed(&mut self, mut data: &[u8]) -> Step {
        if self.state == State::Finished {
            return Step::More;
        }
        while !data.is_empty() {
            if self.seen >= MAX_BYTES {
                return self.finish(Err(Hostile::NoRequest));
            }
            let room = (MAX_BYTES - self.seen).min(data.len());
            let (now, rest) = data.split_at(room);
            data = rest;
            let step = match self.state {
                State::Start => self.start(now),
                State::UpgradeBody(left) => {
                    let n = left.min(now.len());
                    self.seen += n;
                    self.state = if left > n {
                        State::UpgradeBody(left - n)
                    } else {
                        State::Preface(0)
                    };
                    match now.get(n..) {
                        Some(r) if !r.is_empty() => self.feed_inner(r),
                        _ => Step::More,
                    }
                }
                _ => self.feed_inner(now),
            };
            if step != Step::More {
                return step;
            }
        }
        Step::More
    }

    fn feed_inner(&mut self, data: &[u8]) -> Step {
        match self.state {
            State::Preface(m) => {
                let n = (PREFACE.len() - m).min(data.len());
                if data[..n] != PREFACE[m..m + n] {
                    return self.not_h2();
                }
                self.seen += n;
                if m + n < PREFACE.len() {
                    self.state = State::Preface(m + n);
                    return Step::More;
                }
                self.state = State::Frames;
                self.frames_in(&data[n..])
            }
            State::Frames => self.frames_in(data),
            _ => self.feed(data),
        }
    }

    fn not_h2(&mut self) -> Step {
        self.state = State::Finished;
        self.buf = Vec::new();
        Step::NotH2
    }

    fn finish(&mut self, r: Result<Fingerprint, Hostile>) -> Step {
        self.state = State::Finished;
        self.buf = Vec::new();
        self.block = Vec::new();
        Step::Done(r)
    }

    /// The first bytes: the preface, or a request head (kept until its end). Bytes that may
    /// still become the preface are kept until they do or cannot.
    fn start(&mut self, data: &[u8]) -> Step {
        let before = self.buf.len();
        let take = (MAX_UPGRADE_HEAD - before).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        let n = PREFACE.len().min(self.buf.len());
        if self.buf[..n] == PREFACE[..n] {
            if n < PREFACE.len() {
                return Step::More;
            }
            let buffered = std::mem::take(&mut self.buf);
            self.state = State::Preface(0);
            let step = self.feed_inner(&buffered);
            if step != Step::More {
                return step;
            }
            return self.feed(&data[take..]);
        }
        // An HTTP/1.x request: is it an upgrade to h2c? Read its head.
        if !self.upgrade {
            return self.not_h2();
        }
        let Some(end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() >= MAX_UPGRADE_HEAD || !self.buf.iter().all(|&c| c != 0) {
                return self.not_h2();
            }
            self.seen += take;
            return Step::More;
        };
        let Some((settings, body)) = upgrade_of(&self.buf[..end]) else {
            return self.not_h2();
        };
        self.via = Via::Upgrade;
        self.upgrade_settings = Some(settings);
        let used = end + 4 - before;
        self.seen += used;
        self.buf.clear();
        self.state = State::UpgradeBody(body);
        self.feed(&data[used..])
    }

    /// Frames: headers and the payloads of the frames that count, the rest skipped.
    fn frames_in(&mut self, mut data: &[u8]) -> Step {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                self.seen += n;
                data = &data[n..];
                continue;
            }
            // The frame header, then (for the frames that count) its payload.
            let need_header = 9usize.saturating_sub(self.buf.len());
            if need_header > 0 {
                let n = need_header.min(data.len());
                self.buf.extend_from_slice(&data[..n]);
                self.seen += n;
                data = &data[n..];
                if self.buf.len() < 9 {
                    return Step::More;
                }
                let len = usize::from(self.buf[0]) << 16
                    | usize::from(self.buf[1]) << 8
                    | usize::from(self.buf[2]);
                if len > MAX_FRAME {
                    return self.finish(Err(Hostile::FrameSize));
                }
                self.frames += 1;
                if self.frames > MAX_FRAMES {
                    return self.finish(Err(Hostile::NoRequest));
                }
                let (ty, flags) = (self.buf[3], self.buf[4]);
                if self.in_block != (ty == CONTINUATION) {
                    return self.finish(Err(Hostile::Interrupted));
                }
                if !self.wanted(ty, flags) {
                    self.buf.clear();
                    self.skip = len;
                    continue;
                }
            }
            let len = usize::from(self.buf[0]) << 16
                | usize::from(self.buf[1]) << 8
                | usize::from(self.buf[2]);
            let have = self.buf.len() - 9;
            let n = (len - have).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            self.seen += n;
            data = &data[n..];
            if self.buf.len() < 9 + len {
                return Step::More;
            }
            let frame = std::mem::take(&mut self.buf);
            if let Some(step) = self.frame(&frame) {
                return step;
            }
        }
        Step::More
    }

    /// Whether a frame of type `ty` counts for the fingerprint (its payload is kept).
    fn wanted(&self, ty: u8, flags: u8) -> bool {
        match ty {
            SETTINGS => flags & ACK == 0 && self.settings.is_none(),
            WINDOW_UPDATE => self.window_update.is_none(),
            PRIORITY | HEADERS | CONTINUATION => true,
            DATA => false,
            _ => false,
        }
    }

    /// One whole frame that counts; `Some` when the scanner is done.
    fn frame(&mut self, f: &[u8]) -> Option<Step> {
        let (ty, flags) = (f[3], f[4]);
        let stream = u32::from_be_bytes([f[5], f[6], f[7], f[8]]) & 0x7fff_ffff;
        let p = &f[9..];
        match ty {
            SETTINGS if stream == 0 => match settings_of(p) {
                Ok(s) => self.settings = Some(s),
                Err(h) => return Some(self.finish(Err(h))),
            },
            WINDOW_UPDATE if stream == 0 => {
                let Some(w) = p.get(..4) else {
                    return Some(self.finish(Err(Hostile::Malformed)));
                };
                self.window_update =
                    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]) & 0x7fff_ffff);
            }
            PRIORITY => match Priority::parse(stream, p) {
                Some(pr) if self.priorities.len() < MAX_PRIORITIES => self.priorities.push(pr),
                Some(_) => {}
                None => return Some(self.finish(Err(Hostile::Malformed))),
            },
            HEADERS => {
                let mut at = 0;
                let mut pad = 0;
                if flags & PADDED != 0 {
                    let Some(&n) = p.first() else {
                        return Some(self.finish(Err(Hostile::Malformed)));
                    };
                    (at, pad) = (1, usize::from(n));
                }
                if flags & PRIORITY_FLAG != 0 {
                    let Some(pr) = p.get(at..).and_then(|b| Priority::parse(stream, b)) else {
                        return Some(self.finish(Err(Hostile::Malformed)));
                    };
                    self.headers_priority = Some(pr);
                    at += 5;
                }
                let Some(frag) = p.len().checked_sub(pad).and_then(|end| p.get(at..end)) else {
                    return Some(self.finish(Err(Hostile::Malformed)));
                };
                self.block_stream = stream;
                self.block.extend_from_slice(frag);
                if flags & END_HEADERS != 0 {
                    return Some(self.headers_done());
                }
                self.in_block = true;
            }
            CONTINUATION => {
                self.continuations += 1;
                if self.continuations > MAX_CONTINUATIONS
                    || self.block.len() + p.len() > MAX_HEADER_BLOCK
                {
                    return Some(self.finish(Err(Hostile::Continuation)));
                }
                if stream != self.block_stream {
                    return Some(self.finish(Err(Hostile::Interrupted)));
                }
                self.block.extend_from_slice(p);
                if flags & END_HEADERS != 0 {
                    return Some(self.headers_done());
                }
            }
            _ => {}
        }
        None
    }

    fn headers_done(&mut self) -> Step {
        let mut letters = [0u8; 8];
        let r = match pseudo_order(&self.block, &mut letters) {
            Ok(n) => Ok(Fingerprint {
                settings: self
                    .settings
                    .take()
                    .or_else(|| self.upgrade_settings.take())
                    .unwrap_or_default(),
                window_update: self.window_update,
                priorities: std::mem::take(&mut self.priorities),
                pseudo: letters[..n].to_vec(),
                headers_priority: self.headers_priority,
                via: self.via,
            }),
            Err(e) => Err(Hostile::Hpack(e)),
        };
        self.finish(r)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
