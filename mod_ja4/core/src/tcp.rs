//! TCP options and the facts of a SYN (or SYN-ACK) that JA4T/JA4TS and the detector use.
//!
//! Owns: option parsing in wire order (EOL and trailing padding included), MSS, window scale,
//! timestamps, SACK-permitted, and [`SynFacts`], the plain record of one handshake packet.
//! Never: allocates (a TCP header has at most 40 option bytes) or panics on malformed options;
//! a bad length simply ends the option list.

use serde::Serialize;

use crate::decode::TcpPacket;
use crate::reader::Reader;

/// Maximum number of option kinds a TCP header can carry (40 bytes of one-byte options).
pub const MAX_OPTIONS: usize = 40;

/// Parsed TCP options, in the order they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    kinds: [u8; MAX_OPTIONS],
    len: u8,
    /// Maximum segment size (option 2).
    pub mss: Option<u16>,
    /// Window scale shift (option 3).
    pub window_scale: Option<u8>,
    /// SACK permitted (option 4).
    pub sack_permitted: bool,
    /// (TSval, TSecr)
    pub timestamp: Option<(u32, u32)>,
}

impl TcpOptions {
    /// Parses raw option bytes. Each EOL/padding byte counts as an option of kind 0 (JA4T
    /// canonical rule 8); a truncated or zero-length option ends the list.
    pub fn parse(raw: &[u8]) -> Self {
        let mut o = TcpOptions {
            kinds: [0; MAX_OPTIONS],
            len: 0,
            mss: None,
            window_scale: None,
            sack_permitted: false,
            timestamp: None,
        };
        let mut r = Reader::new(raw);
        while usize::from(o.len) < MAX_OPTIONS {
            let Some(kind) = r.u8() else { break };
            o.kinds[usize::from(o.len)] = kind;
            o.len += 1;
            if kind <= 1 {
                continue;
            }
            // Length (kind and length bytes included), then the value.
            let Some(v) = r.u8().and_then(|l| r.take(usize::from(l).checked_sub(2)?)) else {
                break;
            };
            let mut v = Reader::new(v);
            match (kind, v.left()) {
                (2, 2) if o.mss.is_none() => o.mss = v.be_u16(),
                (3, 1) if o.window_scale.is_none() => o.window_scale = v.u8(),
                (4, 0) => o.sack_permitted = true,
                (8, 8) if o.timestamp.is_none() => o.timestamp = v.be_u32().zip(v.be_u32()),
                _ => {}
            }
        }
        o
    }

    /// Option kinds in wire order.
    pub fn kinds(&self) -> &[u8] {
        &self.kinds[..usize::from(self.len)]
    }
}

/// What one SYN (client) or SYN-ACK (server) says about the sender's TCP stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynFacts {
    /// Capture timestamp in microseconds.
    pub ts_us: i64,
    /// TCP window, unscaled.
    pub window: u16,
    /// The SYN's options.
    pub options: TcpOptions,
    /// TTL of the innermost IP header.
    pub ttl: u8,
    /// TTL of the outermost IP header (differs from `ttl` only inside tunnels).
    pub outer_ttl: u8,
    /// IPv4 identification (`None` for IPv6).
    pub ip_id: Option<u16>,
    /// IPv4 Don't Fragment bit.
    pub dont_fragment: bool,
    /// ECE|CWR on a SYN: the client asks for ECN.
    pub ecn_setup: bool,
    /// Initial sequence number.
    pub isn: u32,
}

impl SynFacts {
    /// The facts of a SYN or SYN-ACK captured at `ts_us`.
    pub fn from_packet(ts_us: i64, p: &TcpPacket<'_>) -> Self {
        use crate::decode::flags::{CWR, ECE};
        SynFacts {
            ts_us,
            window: p.window,
            options: TcpOptions::parse(p.options),
            ttl: p.ttl,
            outer_ttl: p.outer_ttl,
            ip_id: p.ip_id,
            dont_fragment: p.dont_fragment,
            ecn_setup: p.has(ECE) && p.has(CWR),
            isn: p.seq,
        }
    }

    /// The plain facts for export and storage.
    pub fn summary(&self) -> SynSummary {
        SynSummary {
            window: self.window,
            options: self.options.kinds().to_vec(),
            mss: self.options.mss,
            window_scale: self.options.window_scale,
            ttl: self.ttl,
            ip_id: self.ip_id,
            dont_fragment: self.dont_fragment,
            ecn_setup: self.ecn_setup,
            has_timestamp: self.options.timestamp.is_some(),
            isn: self.isn,
        }
    }
}

/// Owned, serializable view of [`SynFacts`] for records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SynSummary {
    /// TCP window, unscaled.
    pub window: u16,
    /// Option kinds in wire order.
    pub options: Vec<u8>,
    /// Maximum segment size (option 2).
    pub mss: Option<u16>,
    /// Window scale shift (option 3).
    pub window_scale: Option<u8>,
    /// TTL of the innermost IP header.
    pub ttl: u8,
    /// IPv4 identification (`None` for IPv6).
    pub ip_id: Option<u16>,
    /// IPv4 Don't Fragment bit.
    pub dont_fragment: bool,
    /// The SYN asked for ECN (ECE|CWR).
    pub ecn_setup: bool,
    /// The timestamp option was present.
    pub has_timestamp: bool,
    /// Initial sequence number: with the client address it identifies the connection.
    pub isn: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macos_options_with_trailing_eol_padding() {
        // MSS 1460, NOP, WS 6, NOP, NOP, TS, SACK-permitted, EOL, EOL.
        let raw = [
            2, 4, 5, 0xb4, 1, 3, 3, 6, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 4, 2, 0, 0,
        ];
        let o = TcpOptions::parse(&raw);
        assert_eq!(o.kinds(), &[2, 1, 3, 1, 1, 8, 4, 0, 0]);
        assert_eq!(o.mss, Some(1460));
        assert_eq!(o.window_scale, Some(6));
        assert!(o.sack_permitted);
        assert_eq!(o.timestamp, Some((1, 0)));
    }

    #[test]
    fn malformed_lengths_end_the_list() {
        assert_eq!(TcpOptions::parse(&[2, 0, 5, 0xb4]).kinds(), &[2]);
        assert_eq!(TcpOptions::parse(&[2, 40]).kinds(), &[2]);
        assert_eq!(TcpOptions::parse(&[2]).kinds(), &[2]);
        assert_eq!(TcpOptions::parse(&[]).kinds(), &[] as &[u8]);
        let o = TcpOptions::parse(&[2, 3, 5]); // MSS with the wrong length is not an MSS
        assert_eq!(o.mss, None);
        assert_eq!(TcpOptions::parse(&[1; 60]).kinds().len(), MAX_OPTIONS);
    }
}
