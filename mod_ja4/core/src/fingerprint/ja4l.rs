//! JA4L (light distance): half the handshake round trips in microseconds, with the observed TTL.
//!
//! `ja4l_s` = (SYN-ACK − SYN)/2 with the server's TTL, `ja4l_c` = (ACK − SYN-ACK)/2 with the
//! client's TTL, both from the first SYN, first SYN-ACK and the client's first ACK after it. The
//! TTL is the one observed on the wire at the capture point (the outermost IP header when the
//! capture is tunnelled), as the reference output does.

use serde::Serialize;

/// JA4L of one connection: both halves as printed and the latencies behind them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ja4l {
    /// Client half: `client_us_ttl`.
    pub ja4l_c: String,
    /// Server half: `server_us_ttl`.
    pub ja4l_s: String,
    /// Client-side one-way latency in microseconds.
    pub client_us: i64,
    /// Server-side one-way latency in microseconds.
    pub server_us: i64,
}

impl Ja4l {
    /// Timestamps in microseconds; negative intervals (clock steps) are clamped to zero.
    pub fn new(syn_us: i64, synack_us: i64, ack_us: i64, client_ttl: u8, server_ttl: u8) -> Self {
        let client_us = (ack_us.saturating_sub(synack_us) / 2).max(0);
        let server_us = (synack_us.saturating_sub(syn_us) / 2).max(0);
        Ja4l {
            ja4l_c: format!("{client_us}_{client_ttl}"),
            ja4l_s: format!("{server_us}_{server_ttl}"),
            client_us,
            server_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_and_truncates() {
        let l = Ja4l::new(1_000_000, 1_000_065, 1_000_072, 64, 57);
        assert_eq!(l.ja4l_s, "32_57");
        assert_eq!(l.ja4l_c, "3_64");
        let l = Ja4l::new(10, 5, 4, 1, 2);
        assert_eq!((l.ja4l_c.as_str(), l.ja4l_s.as_str()), ("0_1", "0_2"));
    }
}
