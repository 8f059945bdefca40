//! The embedded ClickHouse engine, for real: load, create, insert, read back, errors, and data
//! that survives closing and reopening the store.

use ja4_sidecar::store::chdb::{default_library, Chdb, ChdbError};

#[test]
fn embedded_engine_round_trip_and_persistence() {
    let lib = default_library();
    assert!(
        lib.exists(),
        "{} missing: run scripts/fetch-chdb.sh",
        lib.display()
    );
    let dir = std::env::temp_dir().join(format!("ja4-chdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let db = Chdb::open(&lib, &dir).unwrap();
        assert_eq!(db.query("SELECT 1 + 1", "TSV").unwrap(), b"2\n");
        db.execute("CREATE DATABASE IF NOT EXISTS ja4").unwrap();
        db.execute("CREATE TABLE IF NOT EXISTS ja4.t (ip IPv6, ja4 LowCardinality(String), ts DateTime64(6, 'UTC')) ENGINE = MergeTree ORDER BY (ip, ts)").unwrap();
        db.execute("INSERT INTO ja4.t VALUES ('::ffff:127.0.0.1', 't13d1516h2_8daaf6152771_e5627efa2ab1', '2026-11-21 06:00:00.123456')").unwrap();
        let out = String::from_utf8(
            db.query("SELECT toString(ip), ja4, ts FROM ja4.t", "TSV")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            out,
            "::ffff:127.0.0.1\tt13d1516h2_8daaf6152771_e5627efa2ab1\t2026-11-21 06:00:00.123456\n"
        );
        // Engine errors come back with ClickHouse's message, not as a crash.
        match db.query("SELECT * FROM ja4.missing", "TSV") {
            Err(ChdbError::Query(m)) => {
                assert!(m.contains("missing") || m.contains("UNKNOWN_TABLE"), "{m}")
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    // Reopen the same directory: the row is still there.
    let db = Chdb::open(&lib, &dir).unwrap();
    assert_eq!(
        db.query("SELECT count() FROM ja4.t", "TSV").unwrap(),
        b"1\n"
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_library_is_a_clear_error() {
    let err = Chdb::open(
        std::path::Path::new("/nonexistent/libchdb.so"),
        &std::env::temp_dir(),
    )
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/libchdb.so") && msg.contains("embedded ClickHouse"),
        "{msg}"
    );
}
