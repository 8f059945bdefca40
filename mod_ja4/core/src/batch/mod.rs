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

/// First four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"JA4B";
/// Wire format version written; decoders reject any other.
pub const VERSION: u16 = 3;
/// Frame header: magic, version, flags, record count, payload length, CRC-32.
pub const HEADER_LEN: usize = 24;
/// Frame flag: the CRC-32 field holds the payload's checksum.
pub const FLAG_CHECKSUM: u16 = 1;
/// Largest payload accepted in one frame.
pub const MAX_PAYLOAD: usize = 32 << 20;

/// Where a record's fingerprints came from (bit flags in [`Record::sources`]).
pub const SOURCE_INLINE_HELLO: u8 = 1;
/// JA4T from the accepted socket's saved SYN (`TCP_SAVED_SYN`).
pub const SOURCE_SAVED_SYN: u8 = 2;
/// Fingerprints from the capture thread's shared table.
pub const SOURCE_CAPTURE: u8 = 4;

/// Why bytes are not a valid batch frame. Every case is a counted drop at the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The frame is not complete yet.
    #[error("more bytes are needed")]
    Incomplete,
    /// The bytes do not start with [`MAGIC`].
    #[error("bad magic (not a JA4 batch)")]
    BadMagic,
    /// A version other than [`VERSION`].
    #[error("unsupported batch version {0}")]
    Version(u16),
    /// The declared payload exceeds [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The payload does not match its CRC-32.
    #[error("checksum mismatch")]
    Checksum,
    /// A record that does not decode.
    #[error("malformed record {index}: {what}")]
    Record {
        /// Its position in the frame, from 0.
        index: u32,
        /// The field that failed.
        what: &'static str,
    },
    /// The header's record count disagrees with the payload.
    #[error("{declared} records declared, {found} found")]
    Count {
        /// Records the header declares.
        declared: u32,
        /// Records the payload holds.
        found: u32,
    },
}
