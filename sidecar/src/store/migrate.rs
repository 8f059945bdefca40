//! Numbered, idempotent ClickHouse migrations from `sql/`, applied in order and recorded in
//! `{db}.schema_migrations`.
//!
//! Owns: reading the migration files (embedded in the binary, so a deployed sidecar needs no
//! source tree), substituting the validated database name, splitting statements, and applying
//! what is pending. Safe to re-run: applied versions are skipped and every statement is
//! idempotent on its own.
//! Never: interpolates anything but the validated database identifier into SQL.

use super::chdb::{Chdb, ChdbError};

/// A migration file: `NNNN_name.sql`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "requests_raw",
    sql: include_str!("../../../sql/0001_requests_raw.sql"),
}];

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "'{0}' is not a valid database name (letters, digits and _; not starting with a digit)"
    )]
    Database(String),
    #[error("migration {version} ({name}): {source}")]
    Statement {
        version: u32,
        name: &'static str,
        source: ChdbError,
    },
    #[error("reading applied migrations: {0}")]
    Applied(ChdbError),
}

/// A database name is an identifier we can put into SQL unquoted.
pub fn valid_database(db: &str) -> bool {
    !db.is_empty()
        && db.len() <= 64
        && db.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !db.as_bytes()[0].is_ascii_digit()
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
        .map(|s| s.trim().replace("{db}", db))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Applies pending migrations; returns the versions applied now.
pub fn migrate(store: &Chdb, db: &str) -> Result<Vec<u32>, MigrateError> {
    if !valid_database(db) {
        return Err(MigrateError::Database(db.to_owned()));
    }
    let bootstrap = [
        format!("CREATE DATABASE IF NOT EXISTS {db}"),
        format!("CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"),
    ];
    for sql in &bootstrap {
        store
            .execute(sql)
            .map_err(|source| MigrateError::Statement {
                version: 0,
                name: "schema_migrations",
                source,
            })?;
    }
    let applied = applied(store, db)?;
    let mut now = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        for sql in statements(m, db) {
            store
                .execute(&sql)
                .map_err(|source| MigrateError::Statement {
                    version: m.version,
                    name: m.name,
                    source,
                })?;
        }
        store
            .execute(&format!(
                "INSERT INTO {db}.schema_migrations (version, name) VALUES ({}, '{}')",
                m.version, m.name
            ))
            .map_err(|source| MigrateError::Statement {
                version: m.version,
                name: m.name,
                source,
            })?;
        now.push(m.version);
    }
    Ok(now)
}

/// Versions recorded as applied.
pub fn applied(store: &Chdb, db: &str) -> Result<Vec<u32>, MigrateError> {
    let out = store
        .query(
            &format!("SELECT version FROM {db}.schema_migrations ORDER BY version"),
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
        assert!(s.iter().all(|x| !x.contains("{db}") && !x.contains("--")));
        // Versions are strictly increasing.
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }
}
