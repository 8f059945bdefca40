//! The ClickHouse store: one SQL dialect, two engines.
//!
//! Owns: choosing the engine from the configuration — a ClickHouse server or cluster node
//! ([`server`], the official `clickhouse` crate over HTTP) when a URL is configured, else the
//! embedded engine ([`chdb`], the ClickHouse engine as a library loaded at run time) — and the
//! three operations everything else uses: run a statement, run a query returning a format,
//! insert RowBinary rows. Migrations ([`migrate`]), row encoders ([`rows`]) and the on-disk
//! spool ([`spool`]) build on them.
//! Never: builds SQL from strings a user typed; never loses a batch silently.

pub mod chdb;
pub mod migrate;
pub mod rows;
pub mod server;
pub mod spool;

use std::path::{Path, PathBuf};

use chdb::{Chdb, ChdbError};
use server::{Server, ServerConfig, ServerError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Embedded(#[from] ChdbError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("{0}")]
    Schema(String),
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
}

/// Where the data lives.
pub enum Store {
    /// chDB in a data directory; inserts go through a temporary RowBinary file.
    Embedded { chdb: Chdb, tmp_dir: PathBuf },
    /// A ClickHouse server over HTTP(S).
    Server(Box<Server>),
}

impl Store {
    /// The embedded engine from `lib`, storing into `data_dir`.
    pub fn embedded(lib: &Path, data_dir: &Path) -> Result<Store, StoreError> {
        Ok(Store::Embedded {
            chdb: Chdb::open(lib, data_dir)?,
            tmp_dir: data_dir.join("ja4-insert"),
        })
    }

    /// A ClickHouse server.
    pub fn server(cfg: &ServerConfig) -> Result<Store, StoreError> {
        Ok(Store::Server(Box::new(Server::connect(cfg)?)))
    }

    /// True for the embedded engine (which has no users, grants or clusters).
    pub fn is_embedded(&self) -> bool {
        matches!(self, Store::Embedded { .. })
    }

    /// Runs a statement that returns nothing.
    pub fn execute(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Store::Embedded { chdb, .. } => Ok(chdb.execute(sql)?),
            Store::Server(s) => Ok(s.execute(sql)?),
        }
    }

    /// Runs `sql` and returns its output in `format` (`TSV`, `JSONEachRow`, `RowBinary`…).
    pub fn query(&self, sql: &str, format: &str) -> Result<Vec<u8>, StoreError> {
        match self {
            Store::Embedded { chdb, .. } => Ok(chdb.query(sql, format)?),
            Store::Server(s) => Ok(s.query(sql, format)?),
        }
    }

    /// Runs `sql` with `{name:Type}` placeholders bound to `params` by the engine: how every
    /// value a user typed reaches SQL.
    pub fn query_params(
        &self,
        sql: &str,
        format: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<u8>, StoreError> {
        match self {
            Store::Embedded { chdb, .. } => Ok(chdb.query_params(sql, format, params)?),
            Store::Server(s) => Ok(s.query_params(sql, format, params)?),
        }
    }

    /// Column names and types of `db`.`table`, in order.
    pub fn columns(&self, db: &str, table: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Store::Embedded { chdb, .. } => {
                let out = chdb.query(
                    &format!(
                        "SELECT name, type FROM system.columns WHERE database = {} AND table = {} ORDER BY position",
                        server::quote(db),
                        server::quote(table)
                    ),
                    "TSV",
                )?;
                Ok(String::from_utf8_lossy(&out)
                    .lines()
                    .filter_map(|l| l.split_once('\t'))
                    .map(|(n, t)| (n.to_owned(), t.to_owned()))
                    .collect())
            }
            Store::Server(s) => Ok(s.columns(db, table)?),
        }
    }

    /// Inserts RowBinary `rows` (encoded for `columns`) into `db.table`.
    pub fn insert_rowbinary(
        &self,
        db: &str,
        table: &str,
        columns: &[&str],
        rows: Vec<u8>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Embedded { chdb, tmp_dir } => {
                let file = temp_file(tmp_dir)?;
                std::fs::write(&file, &rows).map_err(|error| StoreError::Io {
                    context: format!("writing {}", file.display()),
                    error,
                })?;
                let sql = format!(
                    "INSERT INTO {db}.{table} ({}) FROM INFILE {} SETTINGS parallel_view_processing = 1 FORMAT RowBinary",
                    columns.join(", "),
                    server::quote(&file.to_string_lossy())
                );
                let res = chdb.execute(&sql);
                let _ = std::fs::remove_file(&file);
                Ok(res?)
            }
            Store::Server(s) => Ok(s.insert_rowbinary(db, table, columns, rows)?),
        }
    }
}

fn temp_file(dir: &Path) -> Result<PathBuf, StoreError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir).map_err(|error| StoreError::Io {
        context: format!("creating {}", dir.display()),
        error,
    })?;
    Ok(dir.join(format!(
        "batch-{}-{}.rowbinary",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )))
}
