//! `ja4-sidecar serve`: the supervisor of the running sidecar.
//!
//! Owns: the configuration file (`sidecar.toml`, [`Config`]), opening and migrating the store,
//! and running side by side until SIGTERM/SIGINT: ingest (`ja4_ingest`), the scheduled
//! detection cycle (`ja4_detect::cycle`), `/metrics` (Prometheus/OpenMetrics text) and
//! `/healthz`, and the dashboard's listener; then a graceful shutdown that stores what was
//! received.
//! Never: lets scoring or the dashboard hold up ingest (they run on their own tasks, scoring
//! on the blocking pool), or starts with a configuration it could not fully read.

use std::sync::Arc;

use anyhow::{Context, Result};
use ja4_detect::cycle::{self, Counters, ScoringConfig};
use ja4_ingest::Metrics;
use ja4_store::{migrate, rows, Store, StoreConfig};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Deserialize;

/// `sidecar.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub ingest: ja4_ingest::IngestConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub scoring: ja4_detect::cycle::ScoringConfig,
    #[serde(default)]
    pub dashboard: ja4_dashboard::Config,
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
    /// Reads and checks `path`; the store's settings take the environment's overrides.
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

/// HTTP connections refused at accept (too many at once), by listener
/// (`ja4_http_refused_total{listener=…}`).
#[derive(Debug, Clone)]
struct Refused {
    family: Family<[(&'static str, &'static str); 1], Counter>,
    metrics: Counter,
    dashboard: Counter,
}

impl Default for Refused {
    fn default() -> Self {
        let family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let c = |l: &'static str| family.get_or_create(&[("listener", l)]).clone();
        Refused {
            metrics: c("metrics"),
            dashboard: c("dashboard"),
            family,
        }
    }
}

/// Everything `/metrics` shows.
struct Exposition {
    registry: Registry,
}

impl Exposition {
    fn new(ingest: &Metrics, detection: &Counters, refused: &Refused) -> Exposition {
        let mut registry = Registry::default();
        ingest.register(&mut registry);
        registry.register(
            "ja4_http_refused",
            "HTTP connections refused at accept (too many at once), by listener.",
            refused.family.clone(),
        );
        detection.register(&mut registry);
        Exposition { registry }
    }

    fn render(&self) -> String {
        let mut s = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
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
    let detection = Counters::default();
    let refused = Refused::default();
    let exposition = Arc::new(Exposition::new(&metrics, &detection, &refused));
    let listener = ja4_ingest::bind(&cfg.ingest)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ingest = tokio::spawn(ja4_ingest::serve(
        listener,
        cfg.ingest.clone(),
        cfg.store.clone(),
        Arc::clone(&store),
        Arc::clone(&metrics),
        stop_rx.clone(),
    ));
    let scorer = cfg.scoring.enabled.then(|| {
        tokio::spawn(scoring_loop(
            cfg.scoring.clone(),
            cfg.store.database.clone(),
            Arc::clone(&store),
            detection.clone(),
        ))
    });

    let http = tokio::net::TcpListener::bind(&cfg.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", cfg.http.listen))?;
    let hosts = Arc::new(loopback_hosts(&cfg.http.listen));
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/metrics",
            axum::routing::get(move || async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    exposition.render(),
                )
            }),
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
    let lists_changed = Arc::new(tokio::sync::Notify::new());
    let publisher = (!cfg.scoring.decisions_file.as_os_str().is_empty()).then(|| {
        tokio::spawn(publish_loop(
            cfg.scoring.clone(),
            cfg.store.database.clone(),
            Arc::clone(&store),
            Arc::clone(&lists_changed),
        ))
    });
    let dashboard = if cfg.dashboard.enabled {
        Some(
            spawn_dashboard(
                &cfg,
                Arc::clone(&store),
                stop_rx.clone(),
                refused.dashboard.clone(),
                lists_changed,
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
        refused.metrics.clone(),
        async move {
            let _ = http_stop.changed().await;
        },
    ));
    tracing::info!(socket = %cfg.ingest.socket.display(), http = %cfg.http.listen, "ja4-sidecar serving");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down: flushing what was received");
    if let Some(p) = publisher {
        p.abort();
    }
    if let Some(s) = scorer {
        s.abort();
    }
    let _ = stop_tx.send(true);
    let _ = ingest.await;
    let _ = http_task.await;
    if let Some(d) = dashboard {
        let _ = d.await;
    }
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
    /// The store.
    pub store: Arc<Store>,
    /// Its database.
    pub database: String,
    /// Woken when an analyst changes a list: the publisher publishes at once.
    pub lists_changed: Arc<tokio::sync::Notify>,
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

    fn lists_changed(&self) {
        self.lists_changed.notify_one();
    }
}

/// Binds the dashboard listener (HTTPS when a certificate is configured) and serves it
/// until `stop` turns true.
async fn spawn_dashboard(
    cfg: &Config,
    store: Arc<Store>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    refused: Counter,
    lists_changed: Arc<tokio::sync::Notify>,
) -> Result<tokio::task::JoinHandle<()>> {
    let d = &cfg.dashboard;
    let backend = Arc::new(DashboardBackend {
        store,
        database: cfg.store.database.clone(),
        lists_changed,
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

/// Publishes the decisions snapshot every `publish_every_s` and at once when an analyst
/// changes a list in the dashboard (blocking work on the blocking pool). A failed
/// publication leaves httpd the previous snapshot, which expires by itself.
async fn publish_loop(
    cfg: ScoringConfig,
    db: String,
    store: Arc<Store>,
    lists_changed: Arc<tokio::sync::Notify>,
) {
    let every = std::time::Duration::from_secs(cfg.publish_every_s.max(1));
    let periodic = cfg.publish_every_s > 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every), if periodic => {},
            _ = lists_changed.notified() => {},
        }
        let (path, db2, store2) = (cfg.decisions_file.clone(), db.clone(), Arc::clone(&store));
        let hours = cfg.window_hours.max(1);
        let _ = tokio::task::spawn_blocking(move || {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            match ja4_detect::decisions::publish(&store2, &db2, &path, hours, now_ms) {
                Ok(p) => {
                    tracing::debug!(scored = p.scored, listed = p.listed, "published decisions")
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "publishing decisions failed"),
            }
        })
        .await;
    }
}

/// Every `interval_s`: one detection cycle (blocking work on the blocking pool). Failures are
/// logged and counted; ingest is never affected.
async fn scoring_loop(cfg: ScoringConfig, db: String, store: Arc<Store>, counters: Counters) {
    let verifier = ja4_detect::verify::Verifier::configured(&cfg.resolver).map(Arc::new);
    let mut tick = tokio::time::interval(cfg.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut run: u64 = 0;
    loop {
        tick.tick().await;
        run += 1;
        let hours = cycle::window_for_run(&cfg, run);
        let (cfg2, db2, store2, c2, v2) = (
            cfg.clone(),
            db.clone(),
            Arc::clone(&store),
            counters.clone(),
            verifier.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = cycle::run_cycle(&cfg2, &db2, &store2, &c2, v2.as_deref(), hours) {
                c2.errors.inc();
                tracing::warn!(error = %format!("{e:#}"), "scoring run failed");
            }
        })
        .await;
    }
}
