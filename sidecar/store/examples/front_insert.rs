//! Insert throughput through the ClickHouse HTTP path: the server writer (`clickhouse` crate,
//! RowBinary, LZ4) into the test-only HTTP front over the embedded engine, in batches, with the
//! schema's views running. Prints records/s. Used by `bench/ingest.sh`.
//! Usage: front_insert [RECORDS] [BATCH]

#[path = "../tests/support/clickhouse_front.rs"]
mod clickhouse_front;

use std::sync::Arc;

use ja4_core::batch::Record;
use ja4_store::chdb::{default_library, Chdb};
use ja4_store::server::ServerConfig;
use ja4_store::{migrate, rows, Store};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let batch: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50_000);
    let dir = std::env::temp_dir().join(format!("ja4-front-bench-{}", std::process::id()));
    let chdb = Arc::new(Chdb::open(&default_library(), &dir.join("data"))?);
    let rt = tokio::runtime::Runtime::new()?;
    let url = rt.block_on(clickhouse_front::start(Arc::clone(&chdb), dir.join("tmp")));
    let server = Store::server(&ServerConfig {
        url,
        database: "ja4".into(),
        compression: true,
        ..Default::default()
    })?;
    migrate::migrate(
        &server,
        &migrate::Options {
            skip_access: true,
            ..migrate::Options::new("ja4")
        },
    )?;
    // Stamped now: the store drops rows older than its TTL at insert.
    let t0 = ja4_store::rows::now_us();
    let paths: Vec<String> = (0..batch).map(|k| format!("/page/{}", k % 500)).collect();
    let records: Vec<Record<&[u8]>> = (0..batch)
        .map(|k| Record {
            ts_us: t0 + k as i64,
            conn_id: k as u64,
            client_ip: Some(std::net::Ipv4Addr::from(0x0a00_0000 + k as u32).into()),
            vhost: &b"www.example.com"[..],
            method: b"GET",
            path: paths[k].as_bytes(),
            protocol: b"HTTP/2.0",
            status: 200,
            ja4: b"t13d1516h2_8daaf6152771_e5627efa2ab1",
            ja4h: b"ge20cn13enus_974ebe531c03_b66fa821d02c_e97928733c74",
            user_agent: b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0",
            header_names: &b"user-agent,accept"[..],
            ..Default::default()
        })
        .collect();
    let started = std::time::Instant::now();
    let mut sent = 0;
    while sent < total {
        rows::insert(&server, "ja4", &records)?;
        sent += batch;
    }
    let http = sent as f64 / started.elapsed().as_secs_f64();
    println!("HTTP front (clickhouse crate, LZ4): {sent} records, {http:.0} records/s");
    drop(server);
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
