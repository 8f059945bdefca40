//! Isolation forest scoring and fitting throughput (rows/s on one thread), standard and
//! extended. `bench/forest.sh` compares against isotree on the same data.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ja4_ml::rng::Rng;
use ja4_ml::{Forest, ForestParams, Matrix};

fn data(rows: usize, cols: usize) -> Vec<f64> {
    let mut r = Rng::new(1, 1);
    (0..rows * cols).map(|_| r.normal()).collect()
}

fn forest(c: &mut Criterion) {
    let (rows, cols) = (20_000, 12);
    let d = data(rows, cols);
    let m = Matrix::new(&d, cols).unwrap();
    let mut g = c.benchmark_group("forest");
    g.sample_size(10);
    for k in [1, cols] {
        let p = ForestParams {
            features_per_split: k,
            threads: 1,
            ..Default::default()
        };
        let f = Forest::fit(m, p).unwrap();
        g.throughput(Throughput::Elements(rows as u64));
        g.bench_function(format!("score_k{k}_1thread"), |b| {
            b.iter(|| f.score(m, 1).unwrap())
        });
        g.throughput(Throughput::Elements(200));
        g.bench_function(format!("fit_200_trees_k{k}_1thread"), |b| {
            b.iter(|| Forest::fit(m, p).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, forest);
criterion_main!(benches);
