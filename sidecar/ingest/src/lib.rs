//! `ja4-ingest`: the module's batches from the unix socket into the store.
//!
//! Owns: the socket (path, mode, group: [`bind`]), per-peer frame reading with validation (a
//! malformed frame is counted and logged with the peer, and only that connection is closed),
//! the limits every peer works under (connections, a shared memory budget, frame and idle
//! deadlines), a bounded queue to the writer (backpressure instead of unbounded memory),
//! batched inserts by size and time, the spool while the store fails and the dead letters
//! for what it refuses, and the [`Metrics`] of all that.
//! Never: lets one peer stall the others or crash the process; never drops a record without
//! a counter. When the store fails, batches go to the on-disk spool and are replayed in order
//! when it returns (also after a restart); only a full spool drops (oldest first, counted).
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<ja4_store::Store>) -> Result<(), ja4_ingest::IngestError> {
//! use std::sync::Arc;
//! let cfg = ja4_ingest::IngestConfig::default();
//! let listener = ja4_ingest::bind(&cfg)?;
//! let (stop_tx, stop) = tokio::sync::watch::channel(false);
//! let metrics = Arc::new(ja4_ingest::Metrics::default());
//! let ingest = tokio::spawn(ja4_ingest::serve(
//!     listener, cfg, ja4_store::StoreConfig::default(), store, metrics, stop,
//! ));
//! // … until the process is told to stop: what was received is stored, then it returns.
//! let _ = stop_tx.send(true);
//! let _ = ingest.await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod metrics;
mod peer;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ja4_core::batch::OwnedRecord;
use ja4_store::{Store, StoreConfig};
use serde::Deserialize;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};

pub use metrics::{Dropped, Metrics, Rejected};

/// Setting up the socket failed; `what` says which step and on which path.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Binding, listening on or setting the mode of the socket.
    #[error("{what}: {source}")]
    Io {
        /// The step and the path.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Giving the socket to `SocketGroup` (so httpd's children may connect).
    #[error("chgrp {group} {path} failed")]
    Group {
        /// The group asked for.
        group: String,
        /// The socket's path.
        path: String,
    },
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> IngestError {
    move |source| IngestError::Io { what, source }
}

/// `[ingest]` of `sidecar.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Unix socket the module's `JA4ExportSocket` points to.
    pub socket: PathBuf,
    /// Socket file mode, octal (children of httpd run as its `User` and must be able to connect).
    pub socket_mode: String,
    /// Group owning the socket (e.g. the group of httpd's `User`); empty keeps the default.
    pub socket_group: String,
    /// Records queued between the socket readers and the writer.
    pub queue_records: usize,
    /// Connections served at once (every httpd child keeps one); more are closed at accept
    /// and counted.
    pub max_peers: usize,
    /// Bytes all peers together may hold in partly received frames; a peer that would go
    /// past it is closed and counted.
    pub memory_budget_bytes: u64,
    /// A frame must arrive whole within this many seconds of its first byte.
    pub frame_timeout_s: u64,
    /// A connection that sends nothing for this long is closed (the module reconnects when
    /// it next has records).
    pub idle_timeout_s: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            socket: PathBuf::from("/run/ja4/ingest.sock"),
            socket_mode: "0660".into(),
            socket_group: String::new(),
            queue_records: 200_000,
            max_peers: 1024,
            memory_budget_bytes: 256 << 20,
            frame_timeout_s: 30,
            idle_timeout_s: 600,
        }
    }
}

/// Binds the socket `cfg` names (its directory made, a stale socket replaced) with its mode
/// and group.
pub fn bind(cfg: &IngestConfig) -> Result<UnixListener, IngestError> {
    let path = cfg.socket.display().to_string();
    if let Some(dir) = cfg.socket.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    let _ = std::fs::remove_file(&cfg.socket);
    let listener =
        UnixListener::bind(&cfg.socket).map_err(io(format!("binding ingest.socket {path}")))?;
    let mode = u32::from_str_radix(cfg.socket_mode.trim_start_matches("0o"), 8).unwrap_or(0o660);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cfg.socket, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {path}")))?;
    if !cfg.socket_group.is_empty() {
        let status = std::process::Command::new("chgrp")
            .arg(&cfg.socket_group)
            .arg(&cfg.socket)
            .status()
            .map_err(io(format!("running chgrp for {path}")))?;
        if !status.success() {
            return Err(IngestError::Group {
                group: cfg.socket_group.clone(),
                path,
            });
        }
    }
    Ok(listener)
}

/// Accepts module connections on `listener` and stores what they send until `stop` turns
/// true; then stops reading, stores what was received (into the store or the spool) and
/// removes the socket.
pub async fn serve(
    listener: UnixListener,
    cfg: IngestConfig,
    store_cfg: StoreConfig,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let (tx, rx) = mpsc::channel::<Vec<OwnedRecord>>(1024);
    let writer = tokio::spawn(writer::writer(store_cfg, store, rx, Arc::clone(&metrics)));
    let queue_limit = cfg.queue_records as u64;
    let mut readers = tokio::task::JoinSet::new();
    let limits = peer::PeerLimits::from(&cfg);
    let mut backoff = Duration::from_millis(10);
    loop {
        // Finished readers leave the set (no handle kept per connection ever made).
        while readers.try_join_next().is_some() {}
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff = Duration::from_millis(10);
                    metrics.connections.inc();
                    while readers.try_join_next().is_some() {}
                    if readers.len() >= cfg.max_peers {
                        let n = metrics.rejected.peers.inc();
                        if n.is_power_of_two() {
                            tracing::warn!(max_peers = cfg.max_peers, refused = n + 1, "ingest connections refused: max_peers reached");
                        }
                        drop(stream);
                        continue;
                    }
                    readers.spawn(peer::read_peer(stream, tx.clone(), Arc::clone(&metrics), queue_limit, limits, stop.clone()));
                }
                Err(e) => {
                    // Out of descriptors (or another accept failure): count, say so, and
                    // wait instead of spinning; the other listeners keep answering.
                    let n = metrics.accept_errors.inc();
                    if n.is_power_of_two() {
                        tracing::error!(error = %e, failures = n + 1, "ingest accept failed; backing off");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
            _ = stop.changed() => break,
        }
    }
    while readers.join_next().await.is_some() {}
    drop(tx);
    let _ = writer.await;
    let _ = std::fs::remove_file(&cfg.socket);
}
