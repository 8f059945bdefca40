//! Serving HTTP/1.1 with bounds: the dashboard's listener and the sidecar's `/metrics`.
//!
//! Owns: the accept loop over any axum [`Listener`] (plain TCP or [`crate::tls::TlsListener`]),
//! a cap on connections served at once (more are closed at accept and counted), hyper's header
//! read timeout (a client that sends its request head slowly is cut off), the client address
//! as [`ConnectInfo`]`<`[`Peer`]`>` for every request, and graceful shutdown (bounded).
//! Never: lets slow or idle clients hold more than the cap of connections, or the process
//! wait on them at shutdown longer than [`SHUTDOWN_GRACE`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

use crate::api::Peer;

/// How long shutdown waits for connections still answering.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send a request head (the first and every keep-alive one).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes. Connections refused for the cap are
/// counted in `refused`.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: Limits,
    refused: prometheus_client::metrics::counter::Counter,
    shutdown: impl Future<Output = ()> + Send,
) where
    L: Listener<Addr = SocketAddr>,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (close_tx, close_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        let (io, addr) = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            let n = refused.inc();
            if n.is_power_of_two() {
                tracing::warn!(
                    max = limits.max_connections,
                    refused = n + 1,
                    "HTTP connections refused: too many at once"
                );
            }
            drop(io);
            continue;
        };
        let app = app.clone();
        let mut close = close_rx.clone();
        conns.spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(Peer(addr)));
                app.clone().oneshot(req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(io), svc);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = close.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let _ = close_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}
