//! The store's part of `sidecar.toml` (`[store]`): which engine, where, and the bounds of the
//! writer, spool and dead letters.
//!
//! Owns: [`StoreConfig`], its defaults, the environment overrides and opening the engine it
//! names. Never: prints the password (its `Debug` says only whether one is set).

use std::path::PathBuf;

use serde::Deserialize;

use crate::server::ServerConfig;
use crate::{migrate, Store, StoreError};

/// `[store]` of `sidecar.toml`.
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
    /// The database of the platform's tables (`ja4` by default).
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
    pub fn open(&self) -> Result<Store, StoreError> {
        if self.url.is_empty() {
            let lib = self
                .chdb_lib
                .clone()
                .unwrap_or_else(crate::chdb::default_library);
            Store::embedded(&lib, &self.data_dir).map_err(|e| StoreError::Open {
                what: format!("opening the embedded store in {}", self.data_dir.display()),
                source: Box::new(e),
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
            .map_err(|e| StoreError::Open {
                what: format!("connecting to ClickHouse at {}", self.url),
                source: Box::new(e),
            })
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
