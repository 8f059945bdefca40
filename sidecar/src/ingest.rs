//! `ja4-sidecar serve`: receive the module's batches on a unix socket and store them.
//!
//! Owns: the configuration file (`sidecar.toml`), the socket (path, mode, group), per-peer frame
//! reading with validation (a malformed frame is counted and logged with the peer, and only
//! that connection is closed), a bounded queue to the writer (backpressure instead of unbounded
//! memory), batched inserts by size and time, `/metrics` (Prometheus text) and `/healthz`, and a
//! graceful shutdown that flushes what was received.
//! Never: lets one peer stall the others or crash the process; never drops a record without a
//! counter. When the store fails, batches go to the on-disk spool and are replayed in order when
//! it returns (also after a restart); only a full spool drops (oldest first, counted).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ja4_core::batch::{self, BatchError, OwnedRecord};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::store::{
    migrate, rows,
    server::ServerConfig,
    spool::{DeadLetter, Spool},
    Store,
};

/// `sidecar.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub scoring: ScoringConfig,
    #[serde(default)]
    pub dashboard: ja4_dashboard::Config,
}

/// The scheduled detection loop of `serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    pub enabled: bool,
    /// Seconds between scoring runs.
    pub interval_s: u64,
    /// Window each run scores.
    pub window_hours: u32,
    /// Every this many runs, score the long window instead: slow bots (a request every few
    /// minutes) only stand out over a day. 0 disables the slow pass.
    pub slow_every_runs: u32,
    /// The long window of the slow pass.
    pub slow_window_hours: u32,
    /// Retrain when the model is older than this (and at start without one).
    pub retrain_hours: u64,
    /// Traffic window the model learns from.
    pub train_window_hours: u32,
    /// Fewest clean clients to train on.
    pub min_train_rows: usize,
    pub models_dir: PathBuf,
    /// DNS resolver for crawler verification (`ip:port`); empty: /etc/resolv.conf's first.
    pub resolver: String,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            enabled: true,
            interval_s: 300,
            window_hours: 1,
            slow_every_runs: 12,
            slow_window_hours: 24,
            retrain_hours: 24,
            train_window_hours: 24,
            min_train_rows: 50,
            models_dir: PathBuf::from("/var/lib/ja4/models"),
            resolver: String::new(),
        }
    }
}

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

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// ClickHouse server URL (`http://host:8123`, `https://host:8443`); empty: the embedded
    /// engine. Environment: `JA4_CLICKHOUSE_URL`.
    pub url: String,
    /// Server user (`JA4_CLICKHOUSE_USER`).
    pub user: String,
    /// Server password (`JA4_CLICKHOUSE_PASSWORD`, which is the better place for it).
    pub password: String,
    /// LZ4-compress inserts to the server.
    pub compression: bool,
    /// `ON CLUSTER` name for `migrate` on a multi-node ClickHouse.
    pub cluster: String,
    /// Let `migrate` create the `data_writer`/`analyst` users and their grants (server only;
    /// passwords from `JA4_DATA_WRITER_PASSWORD`/`JA4_ANALYST_PASSWORD`).
    pub manage_users: bool,
    /// Data directory of the embedded engine.
    pub data_dir: PathBuf,
    /// libchdb.so; empty: `JA4_CHDB_LIB` or the workspace's fetched copy.
    pub chdb_lib: Option<PathBuf>,
    pub database: String,
    /// Insert when this many records are waiting…
    pub batch_records: usize,
    /// …or this long after the first one arrived.
    pub flush_ms: u64,
    /// Where batches wait while the store is unavailable.
    pub spool_dir: PathBuf,
    /// Bound of the spool; beyond it the oldest batches are dropped (counted).
    pub spool_max_bytes: u64,
    /// Bound of the dead letters (batches the store refused for their data, kept in
    /// `<spool_dir>/dead-letter`); beyond it refused records are dropped (counted).
    pub dead_letter_max_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: String::new(),
            user: String::new(),
            password: String::new(),
            compression: true,
            cluster: String::new(),
            manage_users: true,
            data_dir: PathBuf::from("/var/lib/ja4/store"),
            chdb_lib: None,
            database: "ja4".into(),
            batch_records: 50_000,
            flush_ms: 1_000,
            spool_dir: PathBuf::from("/var/lib/ja4/spool"),
            spool_max_bytes: 1 << 30,
            dead_letter_max_bytes: 256 << 20,
        }
    }
}

impl StoreConfig {
    /// Where dead letters are kept.
    pub fn dead_letter_dir(&self) -> PathBuf {
        self.spool_dir.join("dead-letter")
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<set>"
                },
            )
            .field("database", &self.database)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl StoreConfig {
    /// Applies `JA4_CLICKHOUSE_URL`, `JA4_CLICKHOUSE_USER` and `JA4_CLICKHOUSE_PASSWORD`.
    pub fn with_env(mut self) -> StoreConfig {
        for (var, field) in [
            ("JA4_CLICKHOUSE_URL", &mut self.url),
            ("JA4_CLICKHOUSE_USER", &mut self.user),
            ("JA4_CLICKHOUSE_PASSWORD", &mut self.password),
        ] {
            if let Ok(v) = std::env::var(var) {
                *field = v;
            }
        }
        self
    }

    /// Opens the configured engine: the server when a URL is set, else the embedded one.
    pub fn open(&self) -> Result<Store> {
        if self.url.is_empty() {
            let lib = self
                .chdb_lib
                .clone()
                .unwrap_or_else(crate::store::chdb::default_library);
            Store::embedded(&lib, &self.data_dir).with_context(|| {
                format!("opening the embedded store in {}", self.data_dir.display())
            })
        } else {
            let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            Store::server(&ServerConfig {
                url: self.url.clone(),
                user: non_empty(&self.user),
                password: non_empty(&self.password),
                database: self.database.clone(),
                compression: self.compression,
            })
            .with_context(|| format!("connecting to ClickHouse at {}", self.url))
        }
    }

    /// Migration options from this configuration and the environment.
    pub fn migrate_options(&self) -> migrate::Options {
        migrate::Options {
            database: self.database.clone(),
            cluster: (!self.cluster.is_empty()).then(|| self.cluster.clone()),
            skip_access: self.url.is_empty() || !self.manage_users,
            data_writer_password: std::env::var("JA4_DATA_WRITER_PASSWORD").ok(),
            analyst_password: std::env::var("JA4_ANALYST_PASSWORD").ok(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of `/metrics` and `/healthz` (operations; the dashboard has its own listener).
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

impl Config {
    pub fn load(path: &std::path::Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut cfg: Config =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        cfg.store = cfg.store.with_env();
        u32::from_str_radix(cfg.ingest.socket_mode.trim_start_matches("0o"), 8).with_context(
            || {
                format!(
                    "{}: ingest.socket_mode '{}' is not an octal mode",
                    path.display(),
                    cfg.ingest.socket_mode
                )
            },
        )?;
        anyhow::ensure!(
            migrate::valid_database(&cfg.store.database),
            "{}: store.database '{}' is not a valid name",
            path.display(),
            cfg.store.database
        );
        anyhow::ensure!(
            cfg.store.batch_records > 0 && cfg.ingest.queue_records > 0,
            "{}: batch and queue sizes must be positive",
            path.display()
        );
        Ok(cfg)
    }
}

/// Counters exported on `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub frames: AtomicU64,
    pub received: AtomicU64,
    pub malformed_frames: AtomicU64,
    /// Frames cut off: the peer closed, or took longer than `frame_timeout_s`, mid-frame.
    pub truncated_frames: AtomicU64,
    /// Connections closed at accept: `max_peers` reached.
    pub rejected_peers: AtomicU64,
    /// Connections closed because their frame would pass `memory_budget_bytes`.
    pub rejected_memory: AtomicU64,
    /// Connections closed after `idle_timeout_s` without a byte.
    pub idle_closed: AtomicU64,
    /// Failed accepts (descriptors exhausted, …).
    pub accept_errors: AtomicU64,
    /// Bytes held in partly received frames, all peers together.
    pub buffered_bytes: AtomicU64,
    /// Connections open now.
    pub peers: AtomicU64,
    /// HTTP connections refused at accept (too many at once), `/metrics` listener.
    pub refused_http: Arc<AtomicU64>,
    /// The same on the dashboard listener.
    pub refused_dashboard: Arc<AtomicU64>,
    pub inserted: AtomicU64,
    pub insert_batches: AtomicU64,
    pub insert_errors: AtomicU64,
    pub dropped_store_error: AtomicU64,
    pub insert_micros: AtomicU64,
    pub queued: AtomicU64,
    pub spooled: AtomicU64,
    pub replayed: AtomicU64,
    pub dropped_spool_full: AtomicU64,
    pub dropped_spool_error: AtomicU64,
    /// Records stamped before the store's retention (the engine would drop them unseen).
    pub dropped_expired: AtomicU64,
    /// Records stamped too far ahead of this host's clock.
    pub dropped_future: AtomicU64,
    /// Records the store refused for their data, set aside in the dead letters.
    pub dead_lettered: AtomicU64,
    /// Records the store refused for their data with the dead letters full.
    pub dropped_dead_letter_full: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_corrupt_frames: AtomicU64,
    pub scoring_runs: AtomicU64,
    pub scoring_errors: AtomicU64,
    pub scored_clients: AtomicU64,
    pub detections: AtomicU64,
    pub trainings: AtomicU64,
    pub ae_failures: AtomicU64,
    pub classifier_trainings: AtomicU64,
    pub classifier_failures: AtomicU64,
}

impl Metrics {
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::new();
        fn line(s: &mut String, name: &str, help: &str, kind: &str, v: String) {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        /// A counter with one label, a line per value.
        fn labelled(
            s: &mut String,
            name: &str,
            help: &str,
            label: &str,
            vs: &[(&str, &AtomicU64)],
        ) {
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (value, v) in vs {
                s.push_str(&format!(
                    "{name}{{{label}=\"{value}\"}} {}\n",
                    v.load(Ordering::Relaxed)
                ));
            }
        }
        line(
            &mut s,
            "ja4_ingest_connections_total",
            "Module connections accepted.",
            "counter",
            g(&self.connections).to_string(),
        );
        line(
            &mut s,
            "ja4_ingest_frames_total",
            "Batches received.",
            "counter",
            g(&self.frames).to_string(),
        );
        line(
            &mut s,
            "ja4_ingest_received_total",
            "Records received.",
            "counter",
            g(&self.received).to_string(),
        );
        line(
            &mut s,
            "ja4_ingest_malformed_frames_total",
            "Frames rejected (bad magic, version, checksum, record).",
            "counter",
            g(&self.malformed_frames).to_string(),
        );
        line(
            &mut s,
            "ja4_store_inserted_total",
            "Records inserted into the store.",
            "counter",
            g(&self.inserted).to_string(),
        );
        line(
            &mut s,
            "ja4_store_insert_batches_total",
            "Insert statements that succeeded.",
            "counter",
            g(&self.insert_batches).to_string(),
        );
        line(
            &mut s,
            "ja4_store_insert_errors_total",
            "Insert statements that failed.",
            "counter",
            g(&self.insert_errors).to_string(),
        );
        labelled(
            &mut s,
            "ja4_dropped_total",
            "Records dropped, by reason.",
            "reason",
            &[
                ("store_error", &self.dropped_store_error),
                ("spool_full", &self.dropped_spool_full),
                ("spool_error", &self.dropped_spool_error),
                ("expired", &self.dropped_expired),
                ("future", &self.dropped_future),
                ("dead_letter_full", &self.dropped_dead_letter_full),
            ],
        );
        line(
            &mut s,
            "ja4_spool_spooled_total",
            "Records written to the spool while the store was unavailable.",
            "counter",
            g(&self.spooled).to_string(),
        );
        line(
            &mut s,
            "ja4_spool_replayed_total",
            "Records replayed from the spool into the store.",
            "counter",
            g(&self.replayed).to_string(),
        );
        line(
            &mut s,
            "ja4_spool_bytes",
            "Bytes waiting in the spool.",
            "gauge",
            g(&self.spool_bytes).to_string(),
        );
        line(
            &mut s,
            "ja4_ingest_truncated_frames_total",
            "Frames cut off mid-way (peer closed, or slower than frame_timeout_s).",
            "counter",
            g(&self.truncated_frames).to_string(),
        );
        labelled(
            &mut s,
            "ja4_ingest_rejected_total",
            "Connections closed by a limit, by limit.",
            "reason",
            &[
                ("peers", &self.rejected_peers),
                ("memory", &self.rejected_memory),
                ("idle", &self.idle_closed),
            ],
        );
        labelled(
            &mut s,
            "ja4_http_refused_total",
            "HTTP connections refused at accept (too many at once), by listener.",
            "listener",
            &[
                ("metrics", &self.refused_http),
                ("dashboard", &self.refused_dashboard),
            ],
        );
        line(
            &mut s,
            "ja4_ingest_accept_errors_total",
            "Failed accepts on the ingest socket (e.g. no descriptors left).",
            "counter",
            g(&self.accept_errors).to_string(),
        );
        line(
            &mut s,
            "ja4_ingest_buffered_bytes",
            "Bytes held in partly received frames.",
            "gauge",
            g(&self.buffered_bytes).to_string(),
        );
        line(
            &mut s,
            "ja4_ingest_peers",
            "Ingest connections open.",
            "gauge",
            g(&self.peers).to_string(),
        );
        line(
            &mut s,
            "ja4_dead_letter_records_total",
            "Records the store refused for their data, set aside in the dead letters.",
            "counter",
            g(&self.dead_lettered).to_string(),
        );
        line(
            &mut s,
            "ja4_spool_corrupt_frames_total",
            "Spool frames that failed their checksum (skipped).",
            "counter",
            g(&self.spool_corrupt_frames).to_string(),
        );
        line(
            &mut s,
            "ja4_store_insert_seconds_total",
            "Time spent in successful inserts.",
            "counter",
            format!("{:.6}", g(&self.insert_micros) as f64 / 1e6),
        );
        line(
            &mut s,
            "ja4_ingest_queue_records",
            "Records waiting for the writer.",
            "gauge",
            g(&self.queued).to_string(),
        );
        for (name, help, v) in [
            (
                "ja4_scoring_runs_total",
                "Scoring runs completed.",
                &self.scoring_runs,
            ),
            (
                "ja4_scoring_errors_total",
                "Scoring or training runs that failed.",
                &self.scoring_errors,
            ),
            (
                "ja4_scored_clients_total",
                "Clients scored.",
                &self.scored_clients,
            ),
            (
                "ja4_detections_total",
                "Suspicious and bot verdicts written.",
                &self.detections,
            ),
            (
                "ja4_model_trainings_total",
                "Models trained.",
                &self.trainings,
            ),
            (
                "ja4_classifier_trainings_total",
                "Supervised classifiers trained (enough analyst labels).",
                &self.classifier_trainings,
            ),
            (
                "ja4_classifier_failures_total",
                "Scoring runs whose classifier could not be loaded (unsupervised verdicts only).",
                &self.classifier_failures,
            ),
            (
                "ja4_model_autoencoder_failures_total",
                "Trainings whose autoencoder failed (the forest scored alone).",
                &self.ae_failures,
            ),
        ] {
            line(&mut s, name, help, "counter", g(v).to_string());
        }
        s
    }
}

/// Runs the sidecar until SIGTERM/SIGINT, then flushes and returns.
pub fn serve(cfg: Config) -> Result<()> {
    let store = cfg.store.open()?;
    let applied = migrate::migrate(&store, &cfg.store.migrate_options())?;
    rows::check_columns(&store, &cfg.store.database)?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied migrations");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(cfg, Arc::new(store)))
}

async fn run(cfg: Config, store: Arc<Store>) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let listener = bind_socket(&cfg.ingest)?;
    let (tx, rx) = mpsc::channel::<Vec<OwnedRecord>>(1024);
    let writer = tokio::spawn(writer(
        cfg.store.clone(),
        Arc::clone(&store),
        rx,
        Arc::clone(&metrics),
    ));

    let scorer = cfg.scoring.enabled.then(|| {
        tokio::spawn(scoring_loop(
            cfg.scoring.clone(),
            cfg.store.database.clone(),
            Arc::clone(&store),
            Arc::clone(&metrics),
        ))
    });

    let http = tokio::net::TcpListener::bind(&cfg.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", cfg.http.listen))?;
    let m = Arc::clone(&metrics);
    let hosts = Arc::new(loopback_hosts(&cfg.http.listen));
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/metrics",
            axum::routing::get(move || async move { m.render() }),
        )
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let hosts = Arc::clone(&hosts);
                async move {
                    let host = req
                        .headers()
                        .get(axum::http::header::HOST)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if !hosts.is_empty() && !hosts.contains(&host) {
                        return axum::response::IntoResponse::into_response((
                            axum::http::StatusCode::MISDIRECTED_REQUEST,
                            "unknown host\n",
                        ));
                    }
                    next.run(req).await
                }
            },
        ));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let dashboard = if cfg.dashboard.enabled {
        Some(
            spawn_dashboard(
                &cfg,
                Arc::clone(&store),
                stop_rx.clone(),
                Arc::clone(&metrics.refused_dashboard),
            )
            .await?,
        )
    } else {
        None
    };
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(ja4_dashboard::serve::serve(
        http,
        app,
        ja4_dashboard::serve::Limits::default(),
        Arc::clone(&metrics.refused_http),
        async move {
            let _ = http_stop.changed().await;
        },
    ));
    tracing::info!(socket = %cfg.ingest.socket.display(), http = %cfg.http.listen, "ja4-sidecar serving");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let queue_limit = cfg.ingest.queue_records as u64;
    let mut readers = tokio::task::JoinSet::new();
    let limits = PeerLimits::from(&cfg.ingest);
    let mut backoff = Duration::from_millis(10);
    loop {
        // Finished readers leave the set (no handle kept per connection ever made).
        while readers.try_join_next().is_some() {}
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff = Duration::from_millis(10);
                    metrics.connections.fetch_add(1, Ordering::Relaxed);
                    while readers.try_join_next().is_some() {}
                    if readers.len() >= cfg.ingest.max_peers {
                        let n = metrics.rejected_peers.fetch_add(1, Ordering::Relaxed);
                        if n.is_power_of_two() {
                            tracing::warn!(max_peers = cfg.ingest.max_peers, refused = n + 1, "ingest connections refused: max_peers reached");
                        }
                        drop(stream);
                        continue;
                    }
                    readers.spawn(read_peer(stream, tx.clone(), Arc::clone(&metrics), queue_limit, limits, stop_rx.clone()));
                }
                Err(e) => {
                    // Out of descriptors (or another accept failure): count, say so, and
                    // wait instead of spinning; the other listeners keep answering.
                    let n = metrics.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        tracing::error!(error = %e, failures = n + 1, "ingest accept failed; backing off");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down: flushing what was received");
    if let Some(s) = scorer {
        s.abort();
    }
    let _ = stop_tx.send(true);
    let _ = stop_rx.changed().await;
    while readers.join_next().await.is_some() {}
    drop(tx);
    let _ = writer.await;
    let _ = http_task.await;
    if let Some(d) = dashboard {
        let _ = d.await;
    }
    let _ = std::fs::remove_file(&cfg.ingest.socket);
    Ok(())
}

/// The Host names a loopback listener answers to (DNS rebinding: a page of another site whose
/// name now points at 127.0.0.1 sends that name); empty (any) for other listeners.
fn loopback_hosts(listen: &str) -> Vec<String> {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_loopback() => {
            let p = a.port();
            vec![
                format!("127.0.0.1:{p}"),
                format!("localhost:{p}"),
                format!("[::1]:{p}"),
            ]
        }
        _ => Vec::new(),
    }
}

/// The store as the dashboard's query layer: the same engine, parameters bound by it.
pub struct DashboardBackend {
    pub store: Arc<Store>,
    pub database: String,
}

impl ja4_dashboard::Backend for DashboardBackend {
    fn database(&self) -> &str {
        &self.database
    }

    fn query_json(
        &self,
        sql: &str,
        params: &ja4_dashboard::Params,
    ) -> Result<Vec<u8>, ja4_dashboard::BackendError> {
        let p: Vec<(&str, String)> = params
            .as_slice()
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        self.store
            .query_params(sql, "JSON", &p)
            .map_err(|e| ja4_dashboard::BackendError(e.to_string()))
    }
}

/// Binds the dashboard listener (HTTPS when a certificate is configured) and serves it
/// until `stop` turns true.
async fn spawn_dashboard(
    cfg: &Config,
    store: Arc<Store>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    refused: Arc<AtomicU64>,
) -> Result<tokio::task::JoinHandle<()>> {
    let d = &cfg.dashboard;
    let backend = Arc::new(DashboardBackend {
        store,
        database: cfg.store.database.clone(),
    });
    let state = ja4_dashboard::Dashboard::new(d, backend).map_err(anyhow::Error::msg)?;
    let app = ja4_dashboard::router(state);
    let limits = d.limits();
    let tcp = tokio::net::TcpListener::bind(&d.listen)
        .await
        .with_context(|| format!("binding dashboard.listen {}", d.listen))?;
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    Ok(match (&d.tls_cert, &d.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = ja4_dashboard::tls::server_config(cert, key)
                .context("dashboard.tls_cert/tls_key")?;
            let l = ja4_dashboard::tls::TlsListener::new(tcp, tls)?;
            tracing::info!(listen = %d.listen, "dashboard on https");
            tokio::spawn(ja4_dashboard::serve::serve(
                l, app, limits, refused, shutdown,
            ))
        }
        (None, None) => {
            tracing::info!(listen = %d.listen, "dashboard on http");
            tokio::spawn(ja4_dashboard::serve::serve(
                tcp, app, limits, refused, shutdown,
            ))
        }
        _ => anyhow::bail!("dashboard: set both tls_cert and tls_key, or neither"),
    })
}

/// Every `interval_s`: (re)train when due, then score the window (blocking work on the
/// blocking pool). Failures are logged and counted; ingest is never affected.
async fn scoring_loop(cfg: ScoringConfig, db: String, store: Arc<Store>, m: Arc<Metrics>) {
    let verifier = {
        let resolver = cfg
            .resolver
            .parse::<std::net::SocketAddr>()
            .ok()
            .or_else(crate::verify::system_resolver);
        resolver.map(|r| {
            let domains = crate::verify::Domains::shipped();
            Arc::new(crate::verify::Verifier::new(
                crate::dns::Resolver::new(r),
                domains,
            ))
        })
    };
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.interval_s.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut run: u64 = 0;
    loop {
        tick.tick().await;
        run += 1;
        let hours = window_for_run(&cfg, run);
        let (cfg2, db2, store2, m2, v2) = (
            cfg.clone(),
            db.clone(),
            Arc::clone(&store),
            Arc::clone(&m),
            verifier.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = scoring_step(&cfg2, &db2, &store2, &m2, v2.as_deref(), hours) {
                m2.scoring_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %format!("{e:#}"), "scoring run failed");
            }
        })
        .await;
    }
}

/// The window run number `run` (from 1) scores: the long one every `slow_every_runs` runs.
pub fn window_for_run(cfg: &ScoringConfig, run: u64) -> u32 {
    let every = u64::from(cfg.slow_every_runs);
    if every > 0 && run.is_multiple_of(every) {
        cfg.slow_window_hours.max(1)
    } else {
        cfg.window_hours.max(1)
    }
}

/// One scoring run over the last `window_hours`: train if the model is missing or old, then
/// score and write.
pub fn scoring_step(
    cfg: &ScoringConfig,
    db: &str,
    store: &Store,
    m: &Metrics,
    verifier: Option<&crate::verify::Verifier>,
    window_hours: u32,
) -> Result<()> {
    use crate::scoring;
    let current = cfg.models_dir.join("current.json");
    let age = std::fs::metadata(&current)
        .and_then(|md| md.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    // The current model, read once. One from before a feature change cannot score today's
    // rows: retrain it now.
    let mut model = age.and_then(|_| scoring::load_model(&current).ok());
    let stale_schema = model
        .as_ref()
        .is_some_and(|m| m.features != scoring::feature_names());
    if stale_schema || age.is_none_or(|a| a.as_secs() >= cfg.retrain_hours * 3600) {
        match scoring::train(
            store,
            db,
            cfg.train_window_hours,
            ja4_ml::ModelParams::default(),
            cfg.min_train_rows,
        ) {
            Ok(trained) => {
                if let Some(why) = &trained.ae_failure {
                    m.ae_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %why, "autoencoder failed: the forest scores alone");
                }
                let path = scoring::save_model(&cfg.models_dir, &trained)?;
                m.trainings.fetch_add(1, Ordering::Relaxed);
                tracing::info!(model = %path.display(), rows = trained.trained_rows, "trained a model");
                model = Some(trained);
                // The supervised classifier, when analysts have marked enough clients.
                match scoring::train_classifier(
                    store,
                    db,
                    cfg.train_window_hours,
                    &ja4_ml::classifier::ClassifierParams::default(),
                ) {
                    Ok(c) => {
                        scoring::save_classifier(&cfg.models_dir, &c)?;
                        m.classifier_trainings.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            positives = c.positives,
                            negatives = c.negatives,
                            oob_auc = c.oob_auc,
                            "trained the classifier"
                        );
                    }
                    Err(e) => tracing::info!(reason = %format!("{e:#}"), "no classifier this time"),
                }
            }
            // Not enough traffic yet: score with the old model if there is one.
            Err(e) if age.is_some() => {
                tracing::warn!(error = %format!("{e:#}"), "retraining failed; keeping the current model")
            }
            Err(e) => return Err(e.context("training the first model")),
        }
    }
    let model = match model {
        Some(m) => m,
        // Names the file and why it cannot be read.
        None => scoring::load_model(&current)?,
    };
    let classifier = scoring::load_classifier(&cfg.models_dir).unwrap_or_else(|e| {
        m.classifier_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %format!("{e:#}"), "classifier unusable: scoring without it");
        None
    });
    let results = scoring::score_with(
        store,
        db,
        window_hours,
        &model,
        classifier.as_ref(),
        verifier,
        &ja4_ml::verdict::Thresholds::default(),
    )?;
    let version = std::fs::read_dir(&cfg.models_dir)
        .ok()
        .and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("model-"))
                .max()
        })
        .unwrap_or_else(|| "current".into());
    let (all, detected) =
        scoring::write(store, db, &format!("{}h", window_hours), &version, &results)?;
    m.scoring_runs.fetch_add(1, Ordering::Relaxed);
    m.scored_clients.fetch_add(all as u64, Ordering::Relaxed);
    m.detections.fetch_add(detected as u64, Ordering::Relaxed);
    tracing::info!(clients = all, detections = detected, "scored");
    Ok(())
}

fn bind_socket(cfg: &IngestConfig) -> Result<UnixListener> {
    if let Some(dir) = cfg.socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&cfg.socket);
    let listener = UnixListener::bind(&cfg.socket)
        .with_context(|| format!("binding ingest.socket {}", cfg.socket.display()))?;
    let mode = u32::from_str_radix(cfg.socket_mode.trim_start_matches("0o"), 8).unwrap_or(0o660);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cfg.socket, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", cfg.socket.display()))?;
    if !cfg.socket_group.is_empty() {
        let status = std::process::Command::new("chgrp")
            .arg(&cfg.socket_group)
            .arg(&cfg.socket)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "chgrp {} {} failed",
            cfg.socket_group,
            cfg.socket.display()
        );
    }
    Ok(listener)
}

/// Reads frames from one module connection until it closes, sends a bad frame, or we stop.
/// The limits one ingest connection works under.
#[derive(Debug, Clone, Copy)]
struct PeerLimits {
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
        let before = self.m.buffered_bytes.fetch_add(n, Ordering::Relaxed);
        if before + n > budget {
            self.m.buffered_bytes.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        self.bytes += n;
        true
    }

    fn give_back(&mut self, n: u64) {
        let n = n.min(self.bytes);
        self.m.buffered_bytes.fetch_sub(n, Ordering::Relaxed);
        self.bytes -= n;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.m
            .buffered_bytes
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Reads one peer's frames. A frame is decoded only once the writer has room for it
/// (backpressure before the ~12× decode, not after); bytes of partial frames count against
/// the shared budget; a frame slower than `frame_timeout` or cut off by the peer is counted
/// as truncated; a connection idle for `idle_timeout` is closed.
async fn read_peer(
    mut s: UnixStream,
    tx: mpsc::Sender<Vec<OwnedRecord>>,
    m: Arc<Metrics>,
    queue_limit: u64,
    limits: PeerLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    m.peers.fetch_add(1, Ordering::Relaxed);
    struct Open<'a>(&'a Metrics);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            self.0.peers.fetch_sub(1, Ordering::Relaxed);
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
                    while m.queued.load(Ordering::Relaxed) > queue_limit {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    match batch::decode_frame(&buf[..len]) {
                        Ok((records, _)) => {
                            buf.drain(..len);
                            frame_started = None;
                            m.frames.fetch_add(1, Ordering::Relaxed);
                            m.received
                                .fetch_add(records.len() as u64, Ordering::Relaxed);
                            m.queued.fetch_add(records.len() as u64, Ordering::Relaxed);
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
                        m.truncated_frames.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer, bytes = buf.len(), "connection closed mid-frame: frame dropped");
                    }
                    return;
                }
                Ok(n) => {
                    if !held.take(n as u64, limits.budget) {
                        m.rejected_memory.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer, held = held.bytes, budget = limits.budget, "ingest memory budget reached: closing this connection");
                        return;
                    }
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                if buf.is_empty() {
                    m.idle_closed.fetch_add(1, Ordering::Relaxed);
                } else {
                    m.truncated_frames.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer, bytes = buf.len(), "frame not completed within frame_timeout_s: closing this connection");
                }
                return;
            }
            _ = stop.changed() => return,
        }
    }
}

fn malformed(m: &Metrics, peer: &str, e: BatchError) {
    m.malformed_frames.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(peer, error = %e, "malformed frame: closing this connection");
}

/// Batches records by size and time and stores them: into the store, or into the spool while
/// the store fails (and always behind a non-empty spool, to keep the order).
async fn writer(
    cfg: StoreConfig,
    store: Arc<Store>,
    mut rx: mpsc::Receiver<Vec<OwnedRecord>>,
    m: Arc<Metrics>,
) {
    let spool = match Spool::open(&cfg.spool_dir, cfg.spool_max_bytes) {
        Ok(s) => Arc::new(std::sync::Mutex::new(s)),
        Err(e) => {
            tracing::error!(error = %e, dir = %cfg.spool_dir.display(), "cannot open the spool; store failures will drop records (counted)");
            Arc::new(std::sync::Mutex::new(
                Spool::open(
                    &std::env::temp_dir().join("ja4-spool-fallback"),
                    cfg.spool_max_bytes,
                )
                .expect("temp spool"),
            ))
        }
    };
    let mut pending: Vec<OwnedRecord> = Vec::new();
    let mut first: Option<Instant> = None;
    let tick = Duration::from_millis(cfg.flush_ms);
    loop {
        let spool_waiting = spool.lock().map(|s| !s.is_empty()).unwrap_or(false);
        let wait = match first {
            Some(f) => Some((f + tick).saturating_duration_since(Instant::now())),
            None if spool_waiting => Some(tick),
            None => None,
        };
        let msg = match wait {
            Some(w) => tokio::time::timeout(w, rx.recv())
                .await
                .unwrap_or(Some(Vec::new())),
            None => rx.recv().await,
        };
        let closed = msg.is_none();
        if let Some(records) = msg {
            if !records.is_empty() {
                first.get_or_insert_with(Instant::now);
                pending.extend(records);
            }
        }
        let due = first.is_some_and(|f| f.elapsed() >= tick);
        let batch = if !pending.is_empty() && (closed || due || pending.len() >= cfg.batch_records)
        {
            first = None;
            std::mem::take(&mut pending)
        } else {
            Vec::new()
        };
        if !batch.is_empty() || spool_waiting {
            let (store, spool, m2, cfg2) = (
                Arc::clone(&store),
                Arc::clone(&spool),
                Arc::clone(&m),
                cfg.clone(),
            );
            let _ =
                tokio::task::spawn_blocking(move || store_step(&cfg2, &store, &spool, batch, &m2))
                    .await;
        }
        if closed {
            return;
        }
    }
}

/// Counts what an isolating insert did: stored, kept out for their timestamp (logged: a clock
/// problem somewhere or a spool that waited past the retention), refused for their data (set
/// aside in the dead letters, or dropped and counted when those are full), failed.
fn account(
    m: &Metrics,
    dead: &DeadLetter,
    records: &[OwnedRecord],
    done: &rows::Isolated,
    started: Instant,
) {
    let ins = done.inserted;
    if ins.stored > 0 {
        m.inserted.fetch_add(ins.stored as u64, Ordering::Relaxed);
        m.insert_batches.fetch_add(1, Ordering::Relaxed);
        m.insert_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
    m.dropped_expired
        .fetch_add(ins.expired as u64, Ordering::Relaxed);
    m.dropped_future
        .fetch_add(ins.future as u64, Ordering::Relaxed);
    if ins.expired + ins.future > 0 {
        tracing::warn!(
            expired = ins.expired,
            future = ins.future,
            retention_days = rows::RETENTION_DAYS,
            "records stamped outside the store's retention dropped"
        );
    }
    if done.unstored.is_some() {
        m.insert_errors.fetch_add(1, Ordering::Relaxed);
    }
    if done.refused.is_empty() {
        return;
    }
    m.insert_errors.fetch_add(1, Ordering::Relaxed);
    let refused = rows::pick(records, &done.refused);
    let k = refused.len() as u64;
    let why = done.refusal.as_deref().unwrap_or("refused");
    match dead.put(&refused, why) {
        Ok(true) => {
            m.dead_lettered.fetch_add(k, Ordering::Relaxed);
            tracing::error!(records = k, error = why, "the store refused records for their data: set aside in the dead letters (ja4-sidecar dead-letter list)");
        }
        Ok(false) => {
            m.dropped_dead_letter_full.fetch_add(k, Ordering::Relaxed);
            tracing::error!(records = k, error = why, "the store refused records for their data and the dead letters are full: records dropped");
        }
        Err(e) => {
            m.dropped_dead_letter_full.fetch_add(k, Ordering::Relaxed);
            tracing::error!(records = k, error = %e, "cannot write a dead letter: records dropped");
        }
    }
}

/// One writer step (blocking): replay the spool while the store takes it, then store `batch`
/// directly if the spool is empty, else behind it. Records the store refuses for their data
/// go to the dead letters, so neither the spool nor later batches wait behind them.
fn store_step(
    cfg: &StoreConfig,
    store: &Store,
    spool: &std::sync::Mutex<Spool>,
    batch: Vec<OwnedRecord>,
    m: &Metrics,
) {
    let Ok(mut spool) = spool.lock() else { return };
    let dead = DeadLetter::new(&cfg.dead_letter_dir(), cfg.dead_letter_max_bytes);
    let n = batch.len() as u64;
    // Replay, oldest first, until the store fails again.
    while let Some((path, records)) = spool.oldest() {
        let started = Instant::now();
        let done = rows::insert_isolating(store, &cfg.database, &records);
        account(m, &dead, &records, &done, started);
        m.replayed
            .fetch_add(done.inserted.stored as u64, Ordering::Relaxed);
        match &done.unstored {
            None => {
                if let Err(e) = spool.remove(&path) {
                    tracing::error!(error = %e, segment = %path.display(), "cannot remove a replayed spool segment");
                    break;
                }
                tracing::info!(records = records.len(), "replayed spooled records");
            }
            Some((e, rest)) => {
                tracing::warn!(error = %e, "store still unavailable; spool kept");
                let left = rows::pick(&records, rest);
                if left.len() < records.len() {
                    // Part of the segment is stored now: keep only the rest, not duplicates.
                    if let Err(e) = spool.rewrite(&path, &left) {
                        tracing::error!(error = %e, segment = %path.display(), "cannot rewrite a partly replayed spool segment");
                    }
                }
                break;
            }
        }
    }
    if !batch.is_empty() {
        let left: Vec<OwnedRecord> = if spool.is_empty() {
            let started = Instant::now();
            let done = rows::insert_isolating(store, &cfg.database, &batch);
            account(m, &dead, &batch, &done, started);
            match done.unstored {
                None => Vec::new(),
                Some((e, rest)) => {
                    tracing::warn!(error = %e, records = n, "insert failed; spooling");
                    rows::pick(&batch, &rest)
                }
            }
        } else {
            batch
        };
        if !left.is_empty() {
            let k = left.len() as u64;
            match spool.append(&left) {
                Ok(()) => {
                    m.spooled.fetch_add(k, Ordering::Relaxed);
                }
                Err(e) => {
                    m.dropped_spool_error.fetch_add(k, Ordering::Relaxed);
                    tracing::error!(error = %e, records = k, "cannot write to the spool: records dropped");
                }
            }
        }
        m.queued.fetch_sub(n, Ordering::Relaxed);
    }
    m.dropped_spool_full
        .store(spool.stats.dropped_full_records, Ordering::Relaxed);
    m.spool_corrupt_frames
        .store(spool.stats.corrupt_frames, Ordering::Relaxed);
    m.spool_bytes.store(spool.bytes(), Ordering::Relaxed);
}
