//! The embedded ClickHouse engine, for real: load, create, insert, read back, errors, and data
//! that survives closing and reopening the store.

use ja4_testkit::clock;

use ja4_store::chdb::{default_library, Chdb, ChdbError};

/// chDB allows one open connection per process: tests in this binary take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn embedded_engine_round_trip_and_persistence() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
        let ts = clock::utc(clock::now_second_us() + 123_456);
        db.execute(&format!("INSERT INTO ja4.t VALUES ('::ffff:127.0.0.1', 't13d1516h2_8daaf6152771_e5627efa2ab1', '{ts}')")).unwrap();
        let out = String::from_utf8(
            db.query("SELECT toString(ip), ja4, ts FROM ja4.t", "TSV")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            out,
            format!("::ffff:127.0.0.1\tt13d1516h2_8daaf6152771_e5627efa2ab1\t{ts}\n")
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

#[test]
fn migrations_apply_twice_and_records_round_trip() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    use ja4_core::batch::{self, Record, RecordKind, SynRecord};
    use ja4_store::{migrate, rows};
    let dir = std::env::temp_dir().join(format!("ja4-chdb-mig-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = ja4_store::Store::embedded(&default_library(), &dir.join("data")).unwrap();
    let opts = migrate::Options::new("ja4test");
    let all: Vec<u32> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(migrate::migrate(&db, &opts).unwrap(), all);
    assert_eq!(
        migrate::migrate(&db, &opts).unwrap(),
        Vec::<u32>::new(),
        "second run applies nothing"
    );
    assert_eq!(migrate::applied(&db, "ja4test").unwrap(), all);
    assert!(matches!(
        migrate::migrate(&db, &migrate::Options::new("bad;name")),
        Err(migrate::MigrateError::Name(..))
    ));

    // Records go through the module's wire format first, as the ingest will receive them.
    let t0 = clock::now_second_us();
    let recs = [
        Record {
            kind: RecordKind::Request,
            ts_us: t0 + 371_154,
            conn_id: 7,
            client_ip: Some("2001:db8::42".parse().unwrap()),
            client_port: 50_000,
            server_ip: Some("127.0.0.1".parse().unwrap()),
            server_port: 443,
            vhost: &b"www.example.com"[..],
            method: b"GET",
            path: b"/a'b\\c",
            protocol: b"HTTP/2.0",
            status: 200,
            bytes_out: 1234,
            ja4: b"t13d1516h2_8daaf6152771_e5627efa2ab1",
            ja4h: b"ge20cn13enus_974ebe531c03_b66fa821d02c_e97928733c74",
            ja4t: b"64240_2-1-3-1-1-4_1460_8",
            syn: Some(SynRecord {
                ttl: 64,
                window: 64240,
                mss: Some(1460),
                window_scale: Some(8),
                options: vec![2, 1, 3, 1, 1, 4],
                ip_id: Some(7),
                dont_fragment: true,
            }),
            header_names: &b"user-agent,accept"[..],
            user_agent: b"Mozilla/5.0",
            has_cookie: true,
            mitigation: batch::Mitigation {
                action: batch::MitigationAction::Challenge,
                counted: true,
                reason: batch::MitigationReason::Decision,
                verdict: Some(ja4_core::decisions::Verdict::Suspicious),
                bot_score: 12,
            },
            ..Default::default()
        },
        Record {
            kind: RecordKind::Orphan,
            ts_us: t0,
            client_ip: None,
            ja4t: &b"1024__0_0"[..],
            ..Default::default()
        },
    ];
    let mut payload = Vec::new();
    for r in &recs {
        r.encode(&mut payload);
    }
    let frame = batch::frame(&payload, 2);
    let (decoded, _) = batch::decode_frame_ref(&frame).unwrap();
    assert_eq!(rows::insert(&db, "ja4test", &decoded).unwrap().stored, 2);
    let out = String::from_utf8(
        db.query(
            "SELECT ts, kind, toString(client_ip), client_port, toString(server_ip), path, status, ja4, ja4t, syn_ttl, syn_mss, syn_options, header_names, user_agent, has_cookie FROM ja4test.http_logs ORDER BY ts DESC",
            "TSV",
        )
        .unwrap(),
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        format!("{}\trequest\t2001:db8::42\t50000\t::ffff:127.0.0.1\t/a\\'b\\\\c\t200\tt13d1516h2_8daaf6152771_e5627efa2ab1\t64240_2-1-3-1-1-4_1460_8\t64\t1460\t[2,1,3,1,1,4]\t['user-agent','accept']\tMozilla/5.0\t1", clock::utc(t0 + 371_154))
    );
    assert!(
        lines[1].starts_with(&format!("{}\torphan\t::\t0\t", clock::utc(t0))),
        "{}",
        lines[1]
    );
    // What mitigation did reaches the enriched log; a record without it stays empty.
    let m = db
        .query(
            "SELECT kind, action, action_reason, decision_verdict, decision_bot_score FROM ja4test.http_logs ORDER BY ts DESC",
            "TSV",
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(m).unwrap(),
        "request\tcount:challenge\tdecision\tsuspicious\t12\norphan\t\t\t\t0\n"
    );
    // Records the store would drop unseen (older than its TTL) or keep past it (stamped ahead
    // of the clock) are kept out and counted, not sent.
    let day = 86_400_000_000;
    let now = clock::now_second_us();
    let stale = [
        Record::<&[u8]> {
            ts_us: now - (rows::RETENTION_DAYS + 1) * day,
            ..Default::default()
        },
        Record {
            ts_us: now + 2 * rows::MAX_AHEAD_US,
            ..Default::default()
        },
        Record {
            ts_us: now,
            conn_id: 9,
            ..Default::default()
        },
    ];
    assert_eq!(
        rows::insert(&db, "ja4test", &stale).unwrap(),
        rows::Inserted {
            stored: 1,
            expired: 1,
            future: 1
        }
    );
    assert_eq!(
        db.query("SELECT count() FROM ja4test.http_logs", "TSV")
            .unwrap(),
        b"3\n"
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The engine reads the kernel's clock: TTLs and `now()` windows are judged against the time
/// the tests stamp their rows with. Under the clock guard the process clock is moved and the
/// engine's is not (chDB calls the vDSO itself, out of libfaketime's reach): that is why the
/// guard relies on `rows::insert` judging ages by the process clock, and why tests whose SQL
/// windows end at the engine's `now()` are not run under it.
#[test]
fn engine_clock_is_the_kernel_clock() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("ja4-chdb-clock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Chdb::open(&default_library(), &dir).unwrap();
    let engine: i64 = String::from_utf8(db.query("SELECT toUnixTimestamp(now())", "TSV").unwrap())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ahead_days: i64 = std::env::var("JA4_CLOCK_AHEAD_DAYS").map_or(0, |d| d.parse().unwrap());
    let ours = clock::now_second_us() / 1_000_000 - ahead_days * 86_400;
    assert!(
        (engine - ours).abs() < 3_600,
        "engine clock {engine}, kernel clock {ours}"
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One connection serves ingest, scoring and the dashboard: an insert that arrives while a
/// long read runs goes next, before the reads that were already waiting.
#[test]
fn inserts_go_before_waiting_reads() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("ja4-chdb-turn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Chdb::open(&default_library(), &dir).unwrap();
    db.execute("CREATE DATABASE IF NOT EXISTS t").unwrap();
    db.execute("CREATE TABLE IF NOT EXISTS t.x (n UInt32) ENGINE = MergeTree ORDER BY n")
        .unwrap();
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        // A long read holds the connection for about two seconds.
        s.spawn(|| {
            db.query(
                "SELECT sleepEachRow(0.5) FROM numbers(4) FORMAT Null",
                "TSV",
            )
            .unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        // Four reads queue up (the dashboard)…
        for i in 0..4 {
            let (db, done) = (&db, &done);
            s.spawn(move || {
                db.query("SELECT 1", "TSV").unwrap();
                done.lock().unwrap().push(format!("read {i}"));
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        // …then an insert (ingest) arrives.
        s.spawn(|| {
            db.insert("INSERT INTO t.x VALUES (1)").unwrap();
            done.lock().unwrap().push("insert".into());
        });
    });
    let order = done.into_inner().unwrap();
    assert_eq!(order.len(), 5);
    assert_eq!(order[0], "insert", "{order:?}");
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The clock guard (`scripts/clock-guard.sh`) really moved this binary's clock.
#[test]
fn clock_guard_is_in_effect() {
    clock::assert_clock_guard_in_effect();
}
