//! The ClickHouse server writer (the `clickhouse` crate over HTTP, LZ4) end to end against the
//! real engine, through the test-only HTTP front of `support/clickhouse_front.rs`: migrations
//! over HTTP (typed inserts the crate validates against `DESCRIBE`-like metadata), batches in
//! LZ4 blocks, and rows that read back exactly as the embedded path stores the same records —
//! which proves our RowBinary types (IPv6, DateTime64, LowCardinality, Array, Map) encode as
//! the engine reads them on both paths.

#[path = "support/clickhouse_front.rs"]
mod clickhouse_front;
use ja4_testkit::clock;

use std::sync::Arc;

use ja4_core::batch::{Record, RecordKind, SynRecord};
use ja4_store::chdb::{default_library, Chdb};
use ja4_store::server::ServerConfig;
use ja4_store::{migrate, rows, Store, StoreError};

/// `n` records stamped from `t0` on, one every 1,001 µs.
fn records(t0: i64, n: usize) -> Vec<Record<Vec<u8>>> {
    (0..n)
        .map(|i| Record {
            kind: if i % 7 == 6 {
                RecordKind::Orphan
            } else {
                RecordKind::Request
            },
            ts_us: t0 + i as i64 * 1_001,
            conn_id: i as u64,
            client_ip: Some(if i % 2 == 0 {
                format!("198.51.100.{}", i % 250).parse().unwrap()
            } else {
                format!("2001:db8::{:x}", i).parse().unwrap()
            }),
            client_port: 40_000 + i as u16,
            server_ip: Some("127.0.0.1".parse().unwrap()),
            server_port: 443,
            vhost: b"shop.example".to_vec(),
            method: if i % 3 == 0 {
                b"POST".to_vec()
            } else {
                b"GET".to_vec()
            },
            path: format!("/p/{i}/'quote'\\back\u{e9}").into_bytes(),
            query: b"a=1&b=%20".to_vec(),
            protocol: b"HTTP/2.0".to_vec(),
            status: 200 + (i % 3) as u16 * 100,
            bytes_in: i as u64,
            bytes_out: 1 << 40,
            duration_us: 1234,
            keepalives: 3,
            tls_version: b"TLSv1.3".to_vec(),
            ja4: b"t13d1516h2_8daaf6152771_e5627efa2ab1".to_vec(),
            ja4_r: vec![b'x'; 300],
            ja4h: b"ge20cn13enus_974ebe531c03_b66fa821d02c_e97928733c74".to_vec(),
            ja4t: b"64240_2-1-3-1-1-4_1460_8".to_vec(),
            syn: (i % 5 != 0).then(|| SynRecord {
                ttl: 64,
                window: 64240,
                mss: Some(1460),
                window_scale: Some(7),
                options: vec![2, 1, 3, 1, 1, 4],
                ip_id: Some(i as u16),
                dont_fragment: true,
            }),
            header_names: b"Host,User-Agent,\xff\t".to_vec(),
            user_agent: b"Mozilla/5.0 \"quoted\"\n".to_vec(),
            sec_ch_ua: b"\"Chromium\";v=\"141\"".to_vec(),
            has_cookie: i % 2 == 0,
            has_referer: i % 3 == 0,
            ..Default::default()
        })
        .collect()
}

fn text(store: &Store, sql: &str) -> String {
    String::from_utf8_lossy(
        &store
            .query(sql, "TSV")
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
    )
    .into_owned()
}

#[test]
fn server_writer_through_http_front_matches_the_embedded_path() {
    let dir = std::env::temp_dir().join(format!("ja4-front-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let chdb = Arc::new(Chdb::open(&default_library(), &dir.join("data")).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt.block_on(clickhouse_front::start(
        Arc::clone(&chdb),
        dir.join("front-tmp"),
    ));

    let server = Store::server(&ServerConfig {
        url: url.clone(),
        user: None,
        password: None,
        database: "ja4srv".into(),
        compression: true,
    })
    .unwrap();
    assert!(!server.is_embedded());

    // Migrations over HTTP; the front runs on chDB, which has no access control.
    let opts = migrate::Options {
        skip_access: true,
        ..migrate::Options::new("ja4srv")
    };
    let all: Vec<u32> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(migrate::migrate(&server, &opts).unwrap(), all);
    assert!(migrate::migrate(&server, &opts).unwrap().is_empty());
    assert_eq!(migrate::applied(&server, "ja4srv").unwrap(), all);
    rows::check_columns(&server, "ja4srv").unwrap();
    let cols = server.columns("ja4srv", "requests_raw").unwrap();
    assert_eq!(cols[0], ("ts".into(), "DateTime64(6, 'UTC')".into()));

    // The same records: LZ4 over HTTP into one database, the embedded path into another.
    let t0 = clock::now_second_us();
    let recs = records(t0, 3000);
    assert_eq!(rows::insert(&server, "ja4srv", &recs).unwrap().stored, 3000);
    let embedded = {
        // chDB allows one connection per process: the embedded path's INFILE insert runs on
        // the front's connection.
        chdb.execute("CREATE DATABASE IF NOT EXISTS ja4emb")
            .unwrap();
        chdb.execute("CREATE TABLE IF NOT EXISTS ja4emb.requests_raw AS ja4srv.requests_raw ENGINE = MergeTree ORDER BY conn_id")
            .unwrap();
        let mut rowbin = Vec::new();
        for r in &recs {
            rows::encode(r, &mut rowbin);
        }
        let file = dir.join("emb.rowbinary");
        std::fs::write(&file, &rowbin).unwrap();
        chdb.execute(&format!(
            "INSERT INTO ja4emb.requests_raw ({}) FROM INFILE '{}' FORMAT RowBinary",
            rows::COLUMNS.join(", "),
            file.display()
        ))
        .unwrap();
        "ja4emb"
    };
    // requests_raw is a Null landing table: the server path's rows are in http_logs.
    let select = |table: &str| {
        format!(
            "SELECT {} FROM {table} ORDER BY conn_id FORMAT TSV",
            rows::COLUMNS.join(", ")
        )
    };
    let via_server = server.query(&select("ja4srv.http_logs"), "TSV").unwrap();
    let direct = chdb
        .query(&select(&format!("{embedded}.requests_raw")), "TSV")
        .unwrap();
    assert_eq!(via_server.iter().filter(|&&b| b == b'\n').count(), 3000);
    assert!(
        via_server == direct,
        "server and embedded paths store different rows"
    );
    // Spot-check the types the engine decoded.
    let row = text(
        &server,
        "SELECT toString(client_ip), ts, path, header_names, syn_options, bytes_out, kind FROM ja4srv.http_logs WHERE conn_id = 1",
    );
    assert_eq!(
        row,
        format!(
            "2001:db8::1\t{}\t/p/1/\\'quote\\'\\\\back\u{e9}\t['Host','User-Agent','\u{fffd}\\t']\t[2,1,3,1,1,4]\t1099511627776\trequest\n",
            clock::utc(t0 + 1_001)
        )
    );
    // The enrichment view fired for the HTTP inserts too.
    assert_eq!(
        text(&server, "SELECT count() FROM ja4srv.http_logs"),
        "3000\n"
    );

    // Engine errors arrive as errors with ClickHouse's code and message.
    let err = server
        .query("SELECT * FROM ja4srv.nope", "TSV")
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Server(_)), "{msg}");
    assert!(
        msg.contains(&url) && msg.contains("60") && msg.contains("nope"),
        "{msg}"
    );
    // A batch the schema rejects is an error, not a silent loss.
    let bad = server.insert_rowbinary("ja4srv", "requests_raw", &["ts", "nonexistent"], vec![0; 9]);
    assert!(bad.is_err());

    drop(server);
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The clock guard (`scripts/clock-guard.sh`) really moved this binary's clock.
#[test]
fn clock_guard_is_in_effect() {
    clock::assert_clock_guard_in_effect();
}
