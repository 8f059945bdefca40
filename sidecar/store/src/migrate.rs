//! Numbered, idempotent ClickHouse migrations from `sql/`, applied in order and recorded in
//! `{db}.schema_migrations`.
//!
//! Owns: reading the migration files (embedded in the binary, so a deployed sidecar needs no
//! source tree), substituting the validated database name and the password hashes of the
//! access migration, splitting statements, the `ON CLUSTER` rewrite for a multi-node
//! ClickHouse (Replicated engines, a Distributed `<table>_all` per table, views reading them),
//! and applying what is pending. Safe to re-run: applied versions are skipped and every
//! statement is idempotent on its own.
//! Never: interpolates anything but validated identifiers and hex digests into SQL; never
//! writes a password (only its SHA-256) into a statement.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::{Store, StoreError};

/// A migration file: `NNNN_name.sql`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number (the file name's prefix; applied in order).
    pub version: u32,
    /// Its file name without the number and `.sql`.
    pub name: &'static str,
    /// Its statements.
    pub sql: &'static str,
}

impl Migration {
    /// Migrations marked `-- server-only` (users and grants) are skipped by the embedded
    /// engine, which has no access control.
    pub fn server_only(&self) -> bool {
        self.sql.lines().any(|l| l.trim() == "-- server-only")
    }

    /// Migrations marked `-- reapply` (objects generated from code, such as the feature view)
    /// run again on every `migrate`, after their first time recorded like the others.
    pub fn reapplied(&self) -> bool {
        self.sql.lines().any(|l| l.trim() == "-- reapply")
    }
}

macro_rules! migration {
    ($v:literal, $name:literal, $file:literal) => {
        Migration {
            version: $v,
            name: $name,
            sql: include_str!(concat!("../../../sql/", $file)),
        }
    };
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "requests_raw", "0001_requests_raw.sql"),
    migration!(2, "reference", "0002_reference.sql"),
    migration!(3, "http_logs", "0003_http_logs.sql"),
    migration!(4, "aggregates", "0004_aggregates.sql"),
    migration!(5, "ml", "0005_ml.sql"),
    migration!(6, "views", "0006_views.sql"),
    migration!(7, "audit", "0007_audit.sql"),
    migration!(8, "access", "0008_access.sql"),
    migration!(9, "refdata_sources", "0009_refdata_sources.sql"),
    migration!(10, "access_lists", "0010_access_lists.sql"),
    migration!(11, "agg_h2", "0011_agg_h2.sql"),
    migration!(12, "feature_view", "0012_feature_view.sql"),
    migration!(13, "bot_score", "0013_bot_score.sql"),
    migration!(14, "list_expiry", "0014_list_expiry.sql"),
    migration!(15, "mitigation", "0015_mitigation.sql"),
    migration!(16, "h2_fingerprint", "0016_h2_fingerprint.sql"),
];

#[derive(Debug, thiserror::Error)]
/// A migration that could not be applied.
pub enum MigrateError {
    #[error("'{0}' is not a valid {1} name (letters, digits and _; not starting with a digit)")]
    /// A database or cluster name that is not an identifier (the name, what it names).
    Name(String, &'static str),
    #[error("migration {version} ({name}): {error}")]
    /// A statement of a migration failed.
    Statement {
        /// The migration's number.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// The store's error.
        error: StoreError,
    },
    #[error("reading applied migrations: {0}")]
    /// The list of applied migrations could not be read.
    Applied(StoreError),
    #[error("migration {version} ({name}) creates users: set {env} (its SHA-256 is stored, never the password)")]
    /// A migration that creates users needs their password in the environment.
    Secret {
        /// The migration's number.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// The environment variable to set.
        env: &'static str,
    },
}

/// How to apply the migrations.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The database to migrate.
    pub database: String,
    /// `ON CLUSTER` name for a multi-node ClickHouse.
    pub cluster: Option<String>,
    /// Skip the server-only migrations (users and grants): the embedded engine has no access
    /// control, and some servers have their users managed elsewhere.
    pub skip_access: bool,
    /// Password of the `data_writer` user (server only).
    pub data_writer_password: Option<String>,
    /// Password of the `analyst` user (server only).
    pub analyst_password: Option<String>,
}

impl Options {
    /// Options for `database`, on one node.
    pub fn new(database: &str) -> Options {
        Options {
            database: database.to_owned(),
            ..Default::default()
        }
    }
}

/// An identifier we can put into SQL unquoted.
pub fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// A database name is an identifier.
pub fn valid_database(db: &str) -> bool {
    valid_identifier(db)
}

/// The statements of a migration for database `db`: comments removed, split on `;`.
pub fn statements(m: &Migration, db: &str) -> Vec<String> {
    let text: String = m
        .sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(|s| {
            s.trim()
                .replace("{ml_features}", &ja4_ml::features::view_columns())
                .replace("{ja4_family}", &ja4_ml::identity::ja4_family_sql("ja4"))
                .replace("{db}", db)
        })
        .filter(|s| !s.is_empty())
        .collect()
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fills the password-hash placeholders of `stmt`.
fn with_secrets(stmt: String, m: &Migration, opts: &Options) -> Result<String, MigrateError> {
    let mut stmt = stmt;
    for (placeholder, value, env) in [
        (
            "{data_writer_sha256}",
            &opts.data_writer_password,
            "JA4_DATA_WRITER_PASSWORD",
        ),
        (
            "{analyst_sha256}",
            &opts.analyst_password,
            "JA4_ANALYST_PASSWORD",
        ),
    ] {
        if stmt.contains(placeholder) {
            let Some(p) = value.as_deref().filter(|p| !p.is_empty()) else {
                return Err(MigrateError::Secret {
                    version: m.version,
                    name: m.name,
                    env,
                });
            };
            stmt = stmt.replace(placeholder, &sha256_hex(p));
        }
    }
    Ok(stmt)
}

/// Rewrites statements for a cluster: `ON CLUSTER`, Replicated engines, one Distributed
/// `<table>_all` per MergeTree table, and plain views reading the Distributed tables.
/// Materialized views keep reading and writing the local tables (they fire on each node's
/// local inserts).
#[derive(Debug)]
pub struct ClusterRewrite {
    cluster: String,
    db: String,
    tables: HashSet<String>,
}

const NAME_KEYWORDS: &[&str] = &[
    "CREATE",
    "OR",
    "REPLACE",
    "DATABASE",
    "TABLE",
    "VIEW",
    "MATERIALIZED",
    "DICTIONARY",
    "ROLE",
    "USER",
    "IF",
    "NOT",
    "EXISTS",
    "ALTER",
    "DROP",
];

impl ClusterRewrite {
    /// Adds `ON CLUSTER cluster` to the DDL of database `db`.
    pub fn new(cluster: &str, db: &str) -> ClusterRewrite {
        ClusterRewrite {
            cluster: cluster.to_owned(),
            db: db.to_owned(),
            tables: HashSet::new(),
        }
    }

    /// The statements to run for `stmt` on the cluster.
    pub fn rewrite(&mut self, stmt: &str) -> Vec<String> {
        let on = format!("ON CLUSTER {}", self.cluster);
        if let Some(rest) = stmt.strip_prefix("GRANT ") {
            return vec![format!("GRANT {on} {rest}")];
        }
        let Some((name_end, name)) = object_name(stmt) else {
            return vec![stmt.to_owned()];
        };
        let head = &stmt[..name_end];
        let mut tail = stmt[name_end..].to_owned();
        let upper = head.to_ascii_uppercase();
        let is_view = upper.contains(" VIEW ") && !upper.contains("MATERIALIZED");
        if is_view {
            tail = self.read_distributed(&tail);
        }
        let mut out = vec![format!("{head} {on}{}", replicated(&tail, &name))];
        let table = name.rsplit('.').next().unwrap_or(&name).to_owned();
        if upper.starts_with("ALTER TABLE") && self.tables.contains(&table) {
            // The Distributed table mirrors the local one's columns.
            out.push(format!("ALTER TABLE {}.{table}_all {on}{tail}", self.db));
        }
        if upper.starts_with("CREATE TABLE") && engine_is_merge_tree(&tail) {
            out.push(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{table}_all {on} AS {db}.{table} ENGINE = Distributed({c}, {db}, {table}, rand())",
                db = self.db,
                c = self.cluster
            ));
            self.tables.insert(table);
        }
        out
    }

    /// Points `FROM db.t` of a plain view at `db.t_all`.
    fn read_distributed(&self, sql: &str) -> String {
        let mut s = sql.to_owned();
        for t in &self.tables {
            for sep in [" ", "\n", ")"] {
                s = s.replace(
                    &format!("FROM {}.{t}{sep}", self.db),
                    &format!("FROM {}.{t}_all{sep}", self.db),
                );
            }
            if s.ends_with(&format!("FROM {}.{t}", self.db)) {
                s.push_str("_all");
            }
        }
        s
    }
}

/// Byte offset just past the object name of a CREATE/ALTER statement, and the name.
fn object_name(stmt: &str) -> Option<(usize, String)> {
    let mut pos = 0;
    let bytes = stmt.as_bytes();
    let mut saw_keyword = false;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'(' {
            pos += 1;
        }
        if start == pos {
            return None;
        }
        let word = &stmt[start..pos];
        if NAME_KEYWORDS.contains(&word.to_ascii_uppercase().as_str()) {
            saw_keyword = true;
            continue;
        }
        return saw_keyword.then(|| (pos, word.to_owned()));
    }
}

fn engine_is_merge_tree(tail: &str) -> bool {
    engine_span(tail).is_some_and(|(_, _, name)| name.ends_with("MergeTree"))
}

/// (start of the engine name, end of the engine clause, engine name) after `ENGINE = `.
fn engine_span(tail: &str) -> Option<(usize, usize, String)> {
    let at = tail.find("ENGINE = ")? + "ENGINE = ".len();
    let rest = &tail[at..];
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let name = rest[..name_len].to_owned();
    let mut end = at + name_len;
    if tail[end..].starts_with('(') {
        end += tail[end..].find(')')? + 1;
    }
    Some((at, end, name))
}

/// `ENGINE = XMergeTree(args)` → `ENGINE = ReplicatedXMergeTree('path', '{replica}', args)`.
fn replicated(tail: &str, name: &str) -> String {
    let Some((start, end, engine)) = engine_span(tail) else {
        return tail.to_owned();
    };
    if !engine.ends_with("MergeTree") || engine.starts_with("Replicated") {
        return tail.to_owned();
    }
    let clause = &tail[start..end];
    let args = clause[engine.len()..]
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    let path = format!(
        "'/clickhouse/tables/{{shard}}/{}', '{{replica}}'",
        name.replace('.', "/")
    );
    let args = if args.is_empty() {
        path
    } else {
        format!("{path}, {args}")
    };
    format!(
        "{}Replicated{engine}({args}){}",
        &tail[..start],
        &tail[end..]
    )
}

/// Every statement of every migration as it would run, in order (`migrate --print`).
pub fn plan(opts: &Options) -> Result<Vec<(Migration, Vec<String>)>, MigrateError> {
    Ok(in_running_order(plan_running(opts, |_| true)?))
}

/// The order migrations run in: by version, but objects generated from code (`-- reapply`,
/// the feature view) last — they read the columns every newer migration adds (the view has
/// existed since 0006 for the migrations in between).
fn in_running_order(plan: Vec<(Migration, Vec<String>)>) -> Vec<(Migration, Vec<String>)> {
    let (generated, mut plain): (Vec<_>, Vec<_>) =
        plan.into_iter().partition(|(m, _)| m.reapplied());
    plain.extend(generated);
    plain
}

/// [`plan`], where only the migrations `runs` accepts need their secrets (the others' statements
/// are still rewritten, for the cluster rewrite's knowledge of earlier tables).
fn plan_running(
    opts: &Options,
    runs: impl Fn(&Migration) -> bool,
) -> Result<Vec<(Migration, Vec<String>)>, MigrateError> {
    check_names(opts)?;
    let mut cluster = opts
        .cluster
        .as_deref()
        .map(|c| ClusterRewrite::new(c, &opts.database));
    let mut out = Vec::new();
    for m in MIGRATIONS {
        if opts.skip_access && m.server_only() {
            out.push((*m, Vec::new()));
            continue;
        }
        let mut stmts = Vec::new();
        for s in statements(m, &opts.database) {
            let s = if runs(m) {
                with_secrets(s, m, opts)?
            } else {
                s
            };
            match cluster.as_mut() {
                Some(c) => stmts.extend(c.rewrite(&s)),
                None => stmts.push(s),
            }
        }
        out.push((*m, stmts));
    }
    Ok(out)
}

fn check_names(opts: &Options) -> Result<(), MigrateError> {
    if !valid_identifier(&opts.database) {
        return Err(MigrateError::Name(opts.database.clone(), "database"));
    }
    if let Some(c) = &opts.cluster {
        if !valid_identifier(c) {
            return Err(MigrateError::Name(c.clone(), "cluster"));
        }
    }
    Ok(())
}

/// The bootstrap statements: the database and `schema_migrations`.
fn bootstrap(opts: &Options) -> Vec<String> {
    let db = &opts.database;
    let stmts = [
        format!("CREATE DATABASE IF NOT EXISTS {db}"),
        format!("CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"),
    ];
    match &opts.cluster {
        None => stmts.to_vec(),
        Some(c) => {
            let mut rw = ClusterRewrite::new(c, db);
            stmts.iter().flat_map(|s| rw.rewrite(s)).collect()
        }
    }
}

/// Applies pending migrations; returns the versions applied now.
pub fn migrate(store: &Store, opts: &Options) -> Result<Vec<u32>, MigrateError> {
    let mut opts = opts.clone();
    opts.skip_access |= store.is_embedded();
    check_names(&opts)?;
    for sql in bootstrap(&opts) {
        store
            .execute(&sql)
            .map_err(|error| MigrateError::Statement {
                version: 0,
                name: "schema_migrations",
                error,
            })?;
    }
    let applied = applied(store, &opts.database)?;
    let pending: Vec<Migration> = MIGRATIONS
        .iter()
        .filter(|m| !applied.contains(&m.version) || m.reapplied())
        .copied()
        .collect();
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    // The whole plan is built first, so a missing secret fails before anything runs; the
    // cluster rewrite needs every earlier statement to know which tables are Distributed.
    let plan = in_running_order(plan_running(&opts, |m| {
        pending.iter().any(|p| p.version == m.version)
    })?);
    let mut now = Vec::new();
    for (m, stmts) in plan
        .iter()
        .filter(|(m, _)| !applied.contains(&m.version) || m.reapplied())
    {
        for sql in stmts {
            store
                .execute(sql)
                .map_err(|error| MigrateError::Statement {
                    version: m.version,
                    name: m.name,
                    error,
                })?;
        }
        if applied.contains(&m.version) {
            // Re-created, not newly applied.
            continue;
        }
        let recorded = match store {
            Store::Server(s) if opts.cluster.is_none() => s
                .record_migration(&opts.database, m.version, m.name)
                .map_err(StoreError::from),
            _ => store.execute(&format!(
                "INSERT INTO {}.schema_migrations (version, name) VALUES ({}, '{}')",
                opts.database, m.version, m.name
            )),
        };
        recorded.map_err(|error| MigrateError::Statement {
            version: m.version,
            name: m.name,
            error,
        })?;
        now.push(m.version);
    }
    now.sort_unstable();
    Ok(now)
}

/// Versions recorded as applied.
pub fn applied(store: &Store, db: &str) -> Result<Vec<u32>, MigrateError> {
    let out = store
        .query(
            &format!("SELECT DISTINCT version FROM {db}.schema_migrations ORDER BY version"),
            "TSV",
        )
        .map_err(MigrateError::Applied)?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names() {
        assert!(valid_database("ja4") && valid_database("ja4_prod2"));
        for bad in [
            "",
            "1ja4",
            "ja4; DROP TABLE x",
            "ja-4",
            "ja4`",
            &"a".repeat(65),
        ] {
            assert!(!valid_database(bad), "{bad}");
        }
    }

    #[test]
    fn statements_are_split_and_named() {
        let s = statements(&MIGRATIONS[0], "mydb");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], "CREATE DATABASE IF NOT EXISTS mydb");
        assert!(s[1].starts_with("CREATE TABLE IF NOT EXISTS mydb.requests_raw"));
        for m in MIGRATIONS {
            assert!(statements(m, "mydb")
                .iter()
                .all(|x| !x.contains("{db}") && !x.contains("\n--")));
        }
        // Versions are strictly increasing; only the access migration is server-only.
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        let server_only: Vec<_> = MIGRATIONS
            .iter()
            .filter(|m| m.server_only())
            .map(|m| m.name)
            .collect();
        assert_eq!(server_only, ["access"]);
    }

    #[test]
    fn passwords_are_required_and_only_hashed() {
        let mut opts = Options::new("ja4");
        let err = plan(&opts).unwrap_err().to_string();
        assert!(err.contains("JA4_DATA_WRITER_PASSWORD"), "{err}");
        opts.data_writer_password = Some("s3cret-w".into());
        opts.analyst_password = Some("s3cret-a".into());
        let all: Vec<String> = plan(&opts)
            .unwrap()
            .into_iter()
            .flat_map(|(_, s)| s)
            .collect();
        let text = all.join("\n");
        assert!(!text.contains("s3cret"));
        assert!(text.contains(&sha256_hex("s3cret-w")) && text.contains(&sha256_hex("s3cret-a")));
        // The embedded engine needs no secrets: it skips the access migration.
        let embedded = Options {
            skip_access: true,
            ..Options::new("ja4")
        };
        assert!(plan(&embedded).is_ok());
    }

    #[test]
    fn cluster_rewrite() {
        let mut rw = ClusterRewrite::new("prod", "ja4");
        let out = rw.rewrite("CREATE TABLE IF NOT EXISTS ja4.t\n(\n    a UInt8\n)\nENGINE = ReplacingMergeTree(updated_at)\nORDER BY a");
        assert_eq!(out.len(), 2);
        assert!(out[0].starts_with("CREATE TABLE IF NOT EXISTS ja4.t ON CLUSTER prod\n("));
        assert!(out[0].contains("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ja4/t', '{replica}', updated_at)\nORDER BY a"), "{}", out[0]);
        assert_eq!(out[1], "CREATE TABLE IF NOT EXISTS ja4.t_all ON CLUSTER prod AS ja4.t ENGINE = Distributed(prod, ja4, t, rand())");
        let out =
            rw.rewrite("CREATE TABLE IF NOT EXISTS ja4.u AS ja4.t\nENGINE = MergeTree\nORDER BY a");
        assert!(out[0].contains("ON CLUSTER prod AS ja4.t\nENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/ja4/u', '{replica}')\nORDER BY a"), "{}", out[0]);
        // Plain views read the Distributed tables, materialized views the local ones.
        let v = rw.rewrite("CREATE OR REPLACE VIEW ja4.v AS SELECT a FROM ja4.t WHERE a > 1");
        assert_eq!(v, ["CREATE OR REPLACE VIEW ja4.v ON CLUSTER prod AS SELECT a FROM ja4.t_all WHERE a > 1"]);
        let mv = rw.rewrite(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS ja4.mv TO ja4.u AS SELECT a FROM ja4.t",
        );
        assert_eq!(mv, ["CREATE MATERIALIZED VIEW IF NOT EXISTS ja4.mv ON CLUSTER prod TO ja4.u AS SELECT a FROM ja4.t"]);
        assert_eq!(
            rw.rewrite("GRANT SELECT ON ja4.* TO r"),
            ["GRANT ON CLUSTER prod SELECT ON ja4.* TO r"]
        );
        assert_eq!(
            rw.rewrite("CREATE ROLE IF NOT EXISTS r"),
            ["CREATE ROLE IF NOT EXISTS r ON CLUSTER prod"]
        );
        assert_eq!(
            rw.rewrite("ALTER TABLE ja4.u\n    ADD COLUMN IF NOT EXISTS b UInt8"),
            [
                "ALTER TABLE ja4.u ON CLUSTER prod\n    ADD COLUMN IF NOT EXISTS b UInt8",
                "ALTER TABLE ja4.u_all ON CLUSTER prod\n    ADD COLUMN IF NOT EXISTS b UInt8"
            ]
        );
        // Dictionaries and the database get ON CLUSTER, no engine change.
        assert_eq!(
            rw.rewrite("CREATE DATABASE IF NOT EXISTS ja4"),
            ["CREATE DATABASE IF NOT EXISTS ja4 ON CLUSTER prod"]
        );
    }
}
