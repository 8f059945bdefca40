//! Capture file → JSON Lines (the `pcap` command), reported as connections/s.
//!
//! `cargo bench -p ja4-sidecar --bench pcap_to_json`

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ja4_sidecar::offline::{analyze_file, offline_flow_config, write_records, OutputOptions};

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mod_ja4/core/tests/fixtures/ja4-corpus/pcap");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let conns: u64 = files
        .iter()
        .map(|f| {
            analyze_file(f, offline_flow_config())
                .unwrap()
                .records
                .len() as u64
        })
        .sum();
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let opts = OutputOptions {
        json: true,
        raw: false,
        original_order: false,
        facts: false,
    };
    let mut g = c.benchmark_group("pcap_to_json");
    g.throughput(Throughput::Elements(conns));
    g.bench_function(
        format!(
            "corpus_{}_files_{}_conns_{}_bytes",
            files.len(),
            conns,
            bytes
        ),
        |b| {
            b.iter(|| {
                let mut sink = Vec::with_capacity(1 << 20);
                for f in &files {
                    let a = analyze_file(f, offline_flow_config()).unwrap();
                    write_records(&mut sink, "x", &a.records, opts).unwrap();
                }
                black_box(sink.len())
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
