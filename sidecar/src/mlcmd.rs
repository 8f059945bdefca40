//! `ja4-sidecar ml …`: the models on files, for benchmarks and offline analysis.
//!
//! Owns: reading a numeric CSV feature matrix (header row; an optional label column that is
//! not a feature), fitting the isolation forest, writing one score per row, and reporting ROC
//! AUC and timings.
//! Never: guesses at a cell it cannot read: the row and column are named in the error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ja4_ml::{metrics::roc_auc, Forest, ForestParams, Matrix};

/// A feature matrix read from CSV, with its labels when a label column was named.
pub struct Table {
    pub names: Vec<String>,
    pub values: Vec<f64>,
    pub labels: Option<Vec<bool>>,
}

fn label_value(cell: &str) -> Option<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "bot" | "anomaly" => Some(true),
        "false" | "no" | "human" | "normal" => Some(false),
        other => other.parse::<f64>().ok().map(|v| v != 0.0),
    }
}

/// Reads `path`: every column but `label` must hold finite numbers.
pub fn read_table(path: &Path, label: Option<&str>) -> Result<Table> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let header: Vec<String> = rd
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let label_at = match label {
        Some(l) => Some(
            header
                .iter()
                .position(|h| h == l)
                .with_context(|| format!("{}: no column named '{l}'", path.display()))?,
        ),
        None => None,
    };
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != label_at)
        .map(|(_, h)| h.clone())
        .collect();
    if names.is_empty() {
        bail!("{}: no feature columns", path.display());
    }
    let mut values = Vec::new();
    let mut labels = label_at.map(|_| Vec::new());
    for (n, rec) in rd.records().enumerate() {
        let line = n + 2;
        let rec = rec.with_context(|| format!("{}: line {line}", path.display()))?;
        if rec.len() != header.len() {
            bail!(
                "{}: line {line} has {} fields, the header {}",
                path.display(),
                rec.len(),
                header.len()
            );
        }
        for (i, cell) in rec.iter().enumerate() {
            if Some(i) == label_at {
                let v = label_value(cell).with_context(|| {
                    format!(
                        "{}: line {line}, column '{}': label '{cell}' is not 0/1 or true/false",
                        path.display(),
                        header[i]
                    )
                })?;
                if let Some(l) = labels.as_mut() {
                    l.push(v);
                }
                continue;
            }
            let v: f64 = cell
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .with_context(|| {
                    format!(
                        "{}: line {line}, column '{}': '{cell}' is not a finite number",
                        path.display(),
                        header[i]
                    )
                })?;
            values.push(v);
        }
    }
    if values.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(Table {
        names,
        values,
        labels,
    })
}

#[derive(clap::Args)]
pub struct FitScoreArgs {
    /// CSV with a header row; every column but the label is a feature.
    #[arg(long)]
    pub input: PathBuf,
    /// Label column (1/true = anomalous): not a feature; prints roc_auc=… when given.
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long, default_value_t = 200)]
    pub trees: usize,
    /// Rows sampled per tree.
    #[arg(long, default_value_t = 256)]
    pub sample: usize,
    /// 1 = standard isolation forest … number of features = fully extended.
    #[arg(long, default_value_t = 1)]
    pub features_per_split: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Output CSV: one `score` per input row, in order.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn fit_score(a: FitScoreArgs) -> Result<()> {
    let t = read_table(&a.input, a.label.as_deref())?;
    let m = Matrix::new(&t.values, t.names.len())?;
    let params = ForestParams {
        trees: a.trees,
        sample_size: a.sample,
        features_per_split: a.features_per_split,
        seed: a.seed,
        threads: a.threads,
    };
    let started = Instant::now();
    let forest = Forest::fit(m, params)?;
    let fit_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let scores = forest.score(m, a.threads)?;
    let score_s = started.elapsed().as_secs_f64();
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?,
    );
    writeln!(out, "score")?;
    for s in &scores {
        writeln!(out, "{s}")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "rows={} features={} fit_seconds={fit_s:.3} score_seconds={score_s:.3} score_rows_per_s={:.0}",
        m.rows(),
        m.cols(),
        m.rows() as f64 / score_s.max(1e-9)
    );
    if let Some(labels) = &t.labels {
        println!("roc_auc={:.6}", roc_auc(&scores, labels));
    }
    Ok(())
}
