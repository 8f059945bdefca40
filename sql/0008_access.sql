-- ja4-platform schema, migration 0008: least-privilege users (ClickHouse server only; the
-- embedded engine has no access control and skips this migration).
-- No password is written here: `ja4-sidecar migrate` substitutes the SHA-256 of the passwords
-- it reads from JA4_DATA_WRITER_PASSWORD and JA4_ANALYST_PASSWORD.
-- server-only

CREATE ROLE IF NOT EXISTS ja4_writer;
CREATE ROLE IF NOT EXISTS ja4_reader;

-- The sidecar inserts rows and runs migrations; it never drops data.
GRANT INSERT, SELECT ON {db}.* TO ja4_writer;
GRANT CREATE TABLE, CREATE VIEW, CREATE DICTIONARY, ALTER ADD COLUMN, dictGet ON {db}.* TO ja4_writer;
GRANT SELECT, dictGet ON {db}.* TO ja4_reader;
GRANT INSERT ON {db}.audit_logs TO ja4_reader;
GRANT INSERT ON {db}.ml_labels TO ja4_reader;

CREATE USER IF NOT EXISTS data_writer IDENTIFIED WITH sha256_hash BY '{data_writer_sha256}' DEFAULT ROLE ja4_writer DEFAULT DATABASE {db};
CREATE USER IF NOT EXISTS analyst IDENTIFIED WITH sha256_hash BY '{analyst_sha256}' DEFAULT ROLE ja4_reader DEFAULT DATABASE {db} SETTINGS readonly = 2;

GRANT ja4_writer TO data_writer;
GRANT ja4_reader TO analyst;
