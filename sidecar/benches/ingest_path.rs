//! The sidecar's own per-record cost on the ingest side: a frame of 1000 module records (the
//! shape `bench/ingest.sh` sends) decoded and validated as the socket reader does, then encoded
//! as the RowBinary rows both store engines receive. Throughput is records/s on one core; the
//! store engine's own insert cost is measured end to end by `bench/ingest.sh`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ja4_core::batch::{self, Record, SynRecord};
use ja4_store::rows;

fn frame(n: usize) -> Vec<u8> {
    // Stamped now, as the module stamps them (the store drops rows older than its TTL).
    let t0 = rows::now_us();
    let ja4_r = b"t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601";
    let mut payload = Vec::new();
    for k in 0..n {
        let path = format!("/page/{}", k % 500);
        Record {
            ts_us: t0 + k as i64,
            conn_id: (k / 10) as u64,
            client_ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                0x0a00_0000 + k as u32,
            ))),
            client_port: 40_000,
            server_ip: Some("127.0.0.1".parse().unwrap()),
            server_port: 443,
            vhost: &b"www.example.com"[..],
            method: b"GET",
            path: path.as_bytes(),
            protocol: b"HTTP/2.0",
            status: 200,
            bytes_out: 5120,
            tls_version: b"TLSv1.3",
            tls_cipher: b"TLS_AES_128_GCM_SHA256",
            tls_sni: b"www.example.com",
            tls_alpn: b"h2",
            ja4: b"t13d1516h2_8daaf6152771_e5627efa2ab1",
            ja4_r,
            ja3: b"cd08e31494f9531f560d64c695473da9",
            ja4h: b"ge20cn13enus_974ebe531c03_b66fa821d02c_e97928733c74",
            ja4t: b"64240_2-1-3-1-1-4_1460_8",
            syn: Some(SynRecord {
                ttl: 64,
                window: 64240,
                mss: Some(1460),
                window_scale: Some(8),
                options: vec![2, 1, 3, 1, 1, 4],
                ip_id: Some(0),
                dont_fragment: true,
            }),
            header_names: &b"user-agent,accept,accept-language,cookie"[..],
            user_agent: b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            accept: b"text/html",
            accept_language: b"en-US,en;q=0.9",
            has_cookie: true,
            ..Default::default()
        }
        .encode(&mut payload);
    }
    batch::frame(&payload, n as u32)
}

fn ingest(c: &mut Criterion) {
    let n = 1000;
    let f = frame(n);
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("decode_validate_rowbinary_1000", |b| {
        let mut out = Vec::with_capacity(n * 1024);
        b.iter(|| {
            let (records, _) = batch::decode_frame(&f).unwrap();
            out.clear();
            for r in &records {
                rows::encode(r, &mut out);
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
