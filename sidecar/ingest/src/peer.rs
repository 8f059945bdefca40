//! One module connection: frames read, checked and decoded, under the shared limits.
//!
//! Owns: [`read_peer`] and its limits (a per-connection frame deadline, an idle deadline, the
//! memory budget all partly received frames share) and the backpressure that waits for the
//! writer before decoding. Never: lets one peer stall the others or hold memory past the
//! budget; never drops a frame without counting it (malformed, truncated, rejected).

use std::sync::Arc;
use std::time::Duration;

use ja4_core::batch::{self, BatchError, OwnedRecord};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::{IngestConfig, Metrics};

/// The limits one ingest connection works under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerLimits {
    budget: u64,
    frame_timeout: Duration,
    idle_timeout: Duration,
}

impl From<&IngestConfig> for PeerLimits {
    fn from(c: &IngestConfig) -> PeerLimits {
        PeerLimits {
            budget: c.memory_budget_bytes.max(1 << 20),
            frame_timeout: Duration::from_secs(c.frame_timeout_s.max(1)),
            idle_timeout: Duration::from_secs(c.idle_timeout_s.max(1)),
        }
    }
}

/// Bytes of the shared budget one connection holds; given back when it is dropped.
struct Held<'a> {
    m: &'a Metrics,
    bytes: u64,
}

impl Held<'_> {
    /// Takes `n` more bytes if the budget allows.
    fn take(&mut self, n: u64, budget: u64) -> bool {
        let before = self.m.buffered_bytes.inc_by(n as i64) as u64;
        if before + n > budget {
            self.m.buffered_bytes.dec_by(n as i64);
            return false;
        }
        self.bytes += n;
        true
    }

    fn give_back(&mut self, n: u64) {
        let n = n.min(self.bytes);
        self.m.buffered_bytes.dec_by(n as i64);
        self.bytes -= n;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.m.buffered_bytes.dec_by(self.bytes as i64);
    }
}

/// Reads one peer's frames. A frame is decoded only once the writer has room for it
/// (backpressure before the ~12× decode, not after); bytes of partial frames count against
/// the shared budget; a frame slower than `frame_timeout` or cut off by the peer is counted
/// as truncated; a connection idle for `idle_timeout` is closed.
pub(crate) async fn read_peer(
    mut s: UnixStream,
    tx: mpsc::Sender<Vec<OwnedRecord>>,
    m: Arc<Metrics>,
    queue_limit: u64,
    limits: PeerLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    m.peers.inc();
    struct Open<'a>(&'a Metrics);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            self.0.peers.dec();
        }
    }
    let _open = Open(&m);
    let peer = s
        .peer_cred()
        .map(|c| format!("pid {} uid {}", c.pid().unwrap_or(0), c.uid()))
        .unwrap_or_else(|_| "unknown peer".into());
    let mut buf: Vec<u8> = Vec::new();
    let mut held = Held { m: &m, bytes: 0 };
    let mut frame_started: Option<tokio::time::Instant> = None;
    loop {
        // Drain every complete frame in the buffer.
        loop {
            match batch::frame_len(&buf) {
                Ok(len) if buf.len() >= len => {
                    // Backpressure: wait while the writer is behind, before decoding.
                    while m.queued.get() > queue_limit as i64 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    match batch::decode_frame(&buf[..len]) {
                        Ok((records, _)) => {
                            buf.drain(..len);
                            frame_started = None;
                            m.frames.inc();
                            m.received.inc_by(records.len() as u64);
                            m.count_actions(&records);
                            m.queued.inc_by(records.len() as i64);
                            if tx.send(records).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => return malformed(&m, &peer, e),
                    }
                }
                Ok(_) | Err(BatchError::Incomplete) => break,
                Err(e) => return malformed(&m, &peer, e),
            }
        }
        // What is left is the start of the next frame (or nothing).
        held.give_back(held.bytes.saturating_sub(buf.len() as u64));
        if buf.is_empty() {
            frame_started = None;
            if buf.capacity() > 1 << 20 {
                buf = Vec::new();
            }
        }
        let deadline = if buf.is_empty() {
            tokio::time::Instant::now() + limits.idle_timeout
        } else {
            // The frame's clock starts at its first byte.
            *frame_started.get_or_insert_with(tokio::time::Instant::now) + limits.frame_timeout
        };
        buf.reserve(16 << 10);
        tokio::select! {
            n = s.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    if !buf.is_empty() {
                        m.truncated_frames.inc();
                        tracing::warn!(peer, bytes = buf.len(), "connection closed mid-frame: frame dropped");
                    }
                    return;
                }
                Ok(n) => {
                    if !held.take(n as u64, limits.budget) {
                        m.rejected.memory.inc();
                        tracing::warn!(peer, held = held.bytes, budget = limits.budget, "ingest memory budget reached: closing this connection");
                        return;
                    }
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                if buf.is_empty() {
                    m.rejected.idle.inc();
                } else {
                    m.truncated_frames.inc();
                    tracing::warn!(peer, bytes = buf.len(), "frame not completed within frame_timeout_s: closing this connection");
                }
                return;
            }
            _ = stop.changed() => return,
        }
    }
}

fn malformed(m: &Metrics, peer: &str, e: BatchError) {
    m.malformed_frames.inc();
    tracing::warn!(peer, error = %e, "malformed frame: closing this connection");
}
