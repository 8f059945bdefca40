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
//! The parts: [`record`](self) types and header roles (`record.rs`), the encoding (`encode.rs`),
//! frames and their checksum (`frame.rs`), decoding (`decode.rs`, over
//! [`crate::reader::Reader`]) and JSON Lines (`json.rs`).
//!
//! Never: trusts a length, a count or a segment offset from the wire, or allocates beyond
//! [`MAX_PAYLOAD`].

mod decode;
mod encode;
mod frame;
mod json;
mod record;
#[cfg(test)]
mod tests;

pub use decode::*;
pub use encode::*;
pub use frame::*;
pub use record::*;

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
