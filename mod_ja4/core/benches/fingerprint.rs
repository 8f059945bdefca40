//! ClientHello bytes → JA4 (the module's per-connection hot path) and the other fingerprints.
//!
//! `cargo bench -p ja4-core --bench fingerprint`; throughput is reported as hellos/s.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ja4_core::fingerprint::{ja4, HttpVersion, Ja3, Ja4Set, Ja4hSet};
use ja4_core::tls;

fn hellos() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/hellos");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "bin").then(|| {
                (
                    p.file_stem().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
        })
        .collect();
    v.sort();
    v
}

fn bench(c: &mut Criterion) {
    let hellos = hellos();
    let mut g = c.benchmark_group("client_hello");
    g.throughput(Throughput::Elements(hellos.len() as u64));
    g.bench_function("bytes_to_ja4", |b| {
        b.iter(|| {
            for (_, bytes) in &hellos {
                let (_, body) =
                    tls::first_handshake_message(black_box(bytes), tls::DEFAULT_MAX_HANDSHAKE)
                        .unwrap();
                let ch = tls::parse_client_hello(&body).unwrap();
                black_box(ja4(&ch));
            }
        })
    });
    g.bench_function("bytes_to_all_variants_and_ja3", |b| {
        b.iter(|| {
            for (_, bytes) in &hellos {
                let (_, body) =
                    tls::first_handshake_message(black_box(bytes), tls::DEFAULT_MAX_HANDSHAKE)
                        .unwrap();
                let ch = tls::parse_client_hello(&body).unwrap();
                black_box(Ja4Set::from_hello(&ch));
                black_box(Ja3::from_hello(&ch));
            }
        })
    });
    g.finish();

    let headers: Vec<(&[u8], &[u8])> = vec![
        (b"Host", b"www.example.com"),
        (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
        (b"Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        (b"Accept-Language", b"en-US,en;q=0.9"),
        (b"Accept-Encoding", b"gzip, deflate, br, zstd"),
        (b"Referer", b"https://www.example.com/"),
        (b"Cookie", b"session=abc123; theme=dark; _ga=GA1.2.3"),
        (b"Sec-Fetch-Site", b"same-origin"),
        (b"Sec-Fetch-Mode", b"navigate"),
        (b"Upgrade-Insecure-Requests", b"1"),
    ];
    let mut g = c.benchmark_group("http_request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("headers_to_ja4h_all_variants", |b| {
        b.iter(|| {
            black_box(Ja4hSet::compute(
                b"GET",
                HttpVersion::Http11,
                black_box(&headers).iter().copied(),
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
