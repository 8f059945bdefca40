//! In-order reassembly of one direction of a TCP connection.
//!
//! Owns: turning segments (retransmitted, overlapping, out of order, wrapping the sequence
//! space) into a contiguous byte buffer the protocol parsers read from the front, and skipping
//! bytes (HTTP bodies) without buffering them.
//! Never: holds more than its limits — `max_buffer` contiguous bytes and `max_pending` bytes in at
//! most `MAX_PENDING_SEGMENTS` out-of-order segments. What does not fit is dropped and counted.

use std::collections::BTreeMap;

/// Out-of-order segments held per direction.
pub const MAX_PENDING_SEGMENTS: usize = 64;
/// A segment further ahead than this is not plausible and is ignored.
const MAX_AHEAD: u64 = 1 << 22;

/// Limits for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Contiguous bytes waiting for the parser.
    pub max_buffer: usize,
    /// Out-of-order bytes held.
    pub max_pending: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_buffer: 64 * 1024,
            max_pending: 64 * 1024,
        }
    }
}

/// What happened to a pushed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushOutcome {
    /// New contiguous bytes became available.
    pub advanced: bool,
    /// Bytes dropped because a limit was reached.
    pub dropped: usize,
}

/// One direction of a TCP stream, reassembled in order within [`Limits`].
#[derive(Debug, Clone, Default)]
pub struct Reassembler {
    /// Sequence number of stream offset 0 (`None` until the SYN or first data segment).
    base: Option<u32>,
    /// Stream offset one past the last contiguous byte received (buffered, skipped or dropped).
    received: u64,
    buf: Vec<u8>,
    start: usize,
    /// Bytes still to be discarded as they arrive (HTTP bodies).
    skip: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    limits: Limits,
    /// Bytes thrown away because of limits, over the life of the stream.
    pub dropped_bytes: u64,
}

impl Reassembler {
    /// An unanchored stream with these limits.
    pub fn new(limits: Limits) -> Self {
        Reassembler {
            limits,
            ..Default::default()
        }
    }

    /// Anchors the stream at a SYN: data starts at `isn + 1`. Ignored once anchored.
    pub fn set_isn(&mut self, isn: u32) {
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    /// The stream's start is known (SYN or first data segment seen).
    pub fn is_anchored(&self) -> bool {
        self.base.is_some()
    }

    /// The contiguous bytes not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks `n` bytes at the front as read.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len() - self.start);
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Discards the next `n` stream bytes, buffered or still to come.
    pub fn skip(&mut self, n: u64) {
        let have = (self.buf.len() - self.start) as u64;
        let now = n.min(have);
        self.consume(now as usize);
        self.skip += n - now;
    }

    /// Frees all memory; later segments are ignored.
    pub fn release(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
        self.pending.clear();
        self.pending_bytes = 0;
        self.limits = Limits {
            max_buffer: 0,
            max_pending: 0,
        };
    }

    /// Bytes held in memory (buffer capacity + out-of-order segments).
    pub fn held_bytes(&self) -> usize {
        self.buf.capacity() + self.pending_bytes
    }

    /// Adds a segment carrying `payload` at sequence number `seq`.
    pub fn push(&mut self, seq: u32, payload: &[u8]) -> PushOutcome {
        let mut out = PushOutcome::default();
        if payload.is_empty() {
            return out;
        }
        let base = *self.base.get_or_insert(seq);
        // Position of the segment relative to the next expected byte, in the 32-bit space.
        let expected = base.wrapping_add(self.received as u32);
        let delta = seq.wrapping_sub(expected) as i32;
        if delta <= 0 {
            let overlap = delta.unsigned_abs() as usize;
            if overlap >= payload.len() {
                return out; // retransmission of bytes we have
            }
            self.append(&payload[overlap..], &mut out);
            self.drain_pending(&mut out);
        } else {
            if delta as u64 > MAX_AHEAD {
                return out;
            }
            let at = self.received + delta as u64;
            if self.pending.contains_key(&at) {
                return out;
            }
            if self.pending.len() >= MAX_PENDING_SEGMENTS
                || self.pending_bytes + payload.len() > self.limits.max_pending
            {
                out.dropped += payload.len();
                self.dropped_bytes += payload.len() as u64;
                return out;
            }
            self.pending_bytes += payload.len();
            self.pending.insert(at, payload.to_vec());
        }
        out
    }

    fn append(&mut self, mut data: &[u8], out: &mut PushOutcome) {
        self.received += data.len() as u64;
        if self.skip > 0 {
            let n = self.skip.min(data.len() as u64);
            self.skip -= n;
            data = &data[n as usize..];
            out.advanced |= n > 0;
        }
        let room = self
            .limits
            .max_buffer
            .saturating_sub(self.buf.len() - self.start);
        let take = room.min(data.len());
        if take < data.len() {
            out.dropped += data.len() - take;
            self.dropped_bytes += (data.len() - take) as u64;
        }
        if take > 0 {
            self.buf.extend_from_slice(&data[..take]);
            out.advanced = true;
        }
    }

    fn drain_pending(&mut self, out: &mut PushOutcome) {
        while let Some(entry) = self.pending.first_entry() {
            let at = *entry.key();
            if at > self.received {
                break;
            }
            let seg = entry.remove();
            self.pending_bytes -= seg.len();
            let overlap = (self.received - at) as usize;
            if overlap < seg.len() {
                self.append(&seg[overlap..], out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Reassembler {
        Reassembler::new(Limits::default())
    }

    #[test]
    fn in_order_retransmit_overlap() {
        let mut s = r();
        s.set_isn(999);
        s.push(1000, b"hello ");
        s.push(1000, b"hello "); // retransmission
        s.push(1003, b"lo wor"); // overlap
        s.push(1009, b"ld");
        assert_eq!(s.data(), b"hello world");
    }

    #[test]
    fn out_of_order_and_wraparound() {
        let mut s = r();
        let isn = u32::MAX - 3;
        s.set_isn(isn);
        let base = isn.wrapping_add(1);
        s.push(base.wrapping_add(6), b"world");
        assert_eq!(s.data(), b"");
        s.push(base.wrapping_add(3), b"lo ");
        s.push(base, b"hel");
        assert_eq!(s.data(), b"hello world");
        s.consume(6);
        assert_eq!(s.data(), b"world");
    }

    #[test]
    fn skip_discards_future_bytes() {
        let mut s = r();
        s.push(1, b"HEAD");
        s.consume(4);
        s.skip(10);
        s.push(5, b"0123456");
        s.push(12, b"789NEXT");
        assert_eq!(s.data(), b"NEXT");
    }

    #[test]
    fn limits_drop_and_count() {
        let mut s = Reassembler::new(Limits {
            max_buffer: 8,
            max_pending: 4,
        });
        let o = s.push(0, b"0123456789");
        assert_eq!(o.dropped, 2);
        assert_eq!(s.data(), b"01234567");
        let o = s.push(100, b"toolong");
        assert_eq!(o.dropped, 7);
        assert_eq!(s.dropped_bytes, 9);
        for i in 0..100u32 {
            s.push(20 + i * 2, b"x");
        }
        assert!(s.pending.len() <= MAX_PENDING_SEGMENTS);
        assert!(s.pending_bytes <= 4);
        s.release();
        s.push(10, b"more");
        assert_eq!(s.data(), b"");
    }
}
