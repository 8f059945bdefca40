//! What the commands of `ja4-sidecar` (and the dev tools built on it) share: choosing the
//! store from flags, file and environment ([`StoreArgs`]), and logging.
//!
//! Owns: the flags' meaning and precedence (flag over `--config`'s `[store]` over defaults;
//! `JA4_CLICKHOUSE_*` over the file). Never: opens anything (callers open the store).

use std::path::PathBuf;

use anyhow::Result;

/// Logs to stderr, filtered by `JA4_LOG` (`warn` by default).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JA4_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Which store: `--config` (the `[store]` of sidecar.toml), overridden by the flags and by
/// `JA4_CLICKHOUSE_URL`/`_USER`/`_PASSWORD`.
#[derive(clap::Args)]
pub struct StoreArgs {
    /// sidecar.toml whose [store] section to use.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// ClickHouse server URL (default: the embedded engine).
    #[arg(long)]
    pub url: Option<String>,
    /// Data directory of the embedded ClickHouse engine.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Path of libchdb.so (default: $JA4_CHDB_LIB, else the one scripts/fetch-chdb.sh installs).
    #[arg(long)]
    pub chdb_lib: Option<PathBuf>,
    /// Database name.
    #[arg(long)]
    pub database: Option<String>,
}

impl StoreArgs {
    /// The store configuration these flags, the file and the environment name.
    pub fn store_config(&self) -> Result<ja4_store::StoreConfig> {
        let mut cfg = match &self.config {
            Some(path) => crate::serve::Config::load(path)?.store,
            None => ja4_store::StoreConfig::default().with_env(),
        };
        if let Some(u) = &self.url {
            cfg.url = u.clone();
        }
        if let Some(d) = &self.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(l) = &self.chdb_lib {
            cfg.chdb_lib = Some(l.clone());
        }
        if let Some(d) = &self.database {
            cfg.database = d.clone();
        }
        Ok(cfg)
    }
}
