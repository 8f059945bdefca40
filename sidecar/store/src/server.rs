//! The ClickHouse server/cluster engine: the official `clickhouse` crate over HTTP(S), LZ4.
//!
//! Owns: the client (URL, user, password, database from the config or the environment), a
//! small private runtime so callers stay synchronous like the embedded engine, raw SQL
//! (`query_raw`: no client-side `?` binding, our SQL has regexes), RowBinary inserts of bytes
//! the [`super::rows`] encoders produced, and typed reads where the crate can check our types
//! against the live schema (`RowBinaryWithNamesAndTypes`).
//! Never: logs a password; never puts a database into a table name (`insert("db.t")` would
//! be read as one table name: the database goes through `with_database`).

use std::time::Duration;

use clickhouse::Client;

/// Connection settings of a ClickHouse server.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// `http://host:8123` or `https://host:8443`.
    pub url: String,
    /// The user (ClickHouse's `default` when None).
    pub user: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// The database of the platform's tables.
    pub database: String,
    /// LZ4 for inserts (on by default).
    pub compression: bool,
}

#[derive(Debug, thiserror::Error)]
/// A failure talking to a ClickHouse server.
pub enum ServerError {
    #[error("ClickHouse server {url}: {error}")]
    /// The client failed (connection, HTTP status, the server's error).
    Client {
        /// The server's URL.
        url: String,
        /// The client's error.
        error: clickhouse::error::Error,
    },
    #[error("cannot start the ClickHouse client runtime: {0}")]
    /// The client's runtime could not be started.
    Runtime(std::io::Error),
}

/// A ClickHouse server (or a node of a cluster).
pub struct Server {
    client: Client,
    url: String,
    rt: tokio::runtime::Runtime,
}

impl Server {
    /// A client of the server `cfg` names (nothing is sent until the first query).
    pub fn connect(cfg: &ServerConfig) -> Result<Server, ServerError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ja4-clickhouse")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        // No default database: our SQL names it, and a `database` parameter naming a database
        // that does not exist yet fails even `CREATE DATABASE`. Inserts set it per call.
        let mut client =
            Client::default()
                .with_url(&cfg.url)
                .with_compression(if cfg.compression {
                    clickhouse::Compression::Lz4
                } else {
                    clickhouse::Compression::None
                });
        if let Some(u) = &cfg.user {
            client = client.with_user(u);
        }
        if let Some(p) = &cfg.password {
            client = client.with_password(p);
        }
        Ok(Server {
            client,
            url: cfg.url.clone(),
            rt,
        })
    }

    fn err(&self, error: clickhouse::error::Error) -> ServerError {
        ServerError::Client {
            url: self.url.clone(),
            error,
        }
    }

    /// Runs a statement that returns nothing.
    pub fn execute(&self, sql: &str) -> Result<(), ServerError> {
        self.rt
            .block_on(self.client.query_raw(sql).execute())
            .map_err(|e| self.err(e))
    }

    /// Runs `sql` and returns its output in `format`.
    pub fn query(&self, sql: &str, format: &str) -> Result<Vec<u8>, ServerError> {
        self.rt
            .block_on(async {
                let mut cursor = self.client.query_raw(sql).fetch_bytes(format)?;
                cursor.collect().await
            })
            .map(|b| b.to_vec())
            .map_err(|e| self.err(e))
    }

    /// Runs `sql` with its `{name:Type}` placeholders bound by the server to `params`
    /// (`param_<name>` settings; values never become SQL text).
    pub fn query_params(
        &self,
        sql: &str,
        format: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<u8>, ServerError> {
        self.rt
            .block_on(async {
                let mut q = self.client.query_raw(sql);
                for (n, v) in params {
                    q = q.with_setting(
                        format!("param_{n}"),
                        super::chdb::escape_param(v).into_owned(),
                    );
                }
                let mut cursor = q.fetch_bytes(format)?;
                cursor.collect().await
            })
            .map(|b| b.to_vec())
            .map_err(|e| self.err(e))
    }

    /// Inserts RowBinary `rows` into `db`.`table` with `columns`.
    pub fn insert_rowbinary(
        &self,
        db: &str,
        table: &str,
        columns: &[&str],
        rows: Vec<u8>,
    ) -> Result<(), ServerError> {
        let sql = format!(
            "INSERT INTO {table} ({}) FORMAT RowBinary",
            columns.join(", ")
        );
        self.rt
            .block_on(async {
                let client = self.client.clone().with_database(db);
                let mut insert = client
                    .insert_formatted_with(sql)
                    .with_timeouts(Some(Duration::from_secs(60)), Some(Duration::from_secs(60)));
                insert.send(rows.into()).await?;
                insert.end().await
            })
            .map_err(|e| self.err(e))
    }

    /// Column names and types of `db`.`table`, read as typed rows (the crate checks our row
    /// type against the names and types the server sends with them).
    pub fn columns(&self, db: &str, table: &str) -> Result<Vec<(String, String)>, ServerError> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct Column {
            name: String,
            r#type: String,
        }
        let sql = format!(
            "SELECT name, type FROM system.columns WHERE database = {} AND table = {} ORDER BY position",
            quote(db),
            quote(table)
        );
        self.rt
            .block_on(self.client.query_raw(&sql).fetch_all::<Column>())
            .map(|cols| cols.into_iter().map(|c| (c.name, c.r#type)).collect())
            .map_err(|e| self.err(e))
    }

    /// Records a migration as applied with a typed insert (the crate describes the table and
    /// checks our row type against it before sending).
    pub fn record_migration(&self, db: &str, version: u32, name: &str) -> Result<(), ServerError> {
        #[derive(clickhouse::Row, serde::Serialize)]
        struct Applied<'a> {
            version: u32,
            name: &'a str,
        }
        self.rt
            .block_on(async {
                let client = self.client.clone().with_database(db);
                let mut insert = client.insert::<Applied<'_>>("schema_migrations").await?;
                insert.write(&Applied { version, name }).await?;
                insert.end().await
            })
            .map_err(|e| self.err(e))
    }
}

/// A ClickHouse string literal.
pub fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('\'');
    for c in s.chars() {
        match c {
            '\'' => o.push_str("\\'"),
            '\\' => o.push_str("\\\\"),
            _ => o.push(c),
        }
    }
    o.push('\'');
    o
}
