//! `ja4-lab`: the development and demo tools next to the product, never shipped with it.
//!
//! Owns: `lab` (real clients against httpd + mod_ja4 + the real `ja4-sidecar`, labelled by
//! scenario, trained on a baseline and scored: the proof that detection works) and `synth`
//! (realistic generated traffic for dashboards, demos and benchmarks).
//! Never: goes into the RPM or the production binary; never labels a client by what the model
//! says (labels come from the scenario that drove it).

mod clients;
mod infra;
mod lab;
mod synth;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ja4-lab",
    version,
    about = "ja4-platform's traffic lab and generated traffic (development and demos)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The traffic lab: real clients against httpd + mod_ja4 + ja4-sidecar, labelled by
    /// scenario, trained on a baseline and scored; prints a table, writes a JSON report.
    Lab(LabArgs),
    /// Generates realistic synthetic traffic into the store (dashboards, demos, benchmarks).
    Synth(SynthArgs),
}

#[derive(clap::Args)]
struct LabArgs {
    /// A smaller run (the test suite's).
    #[arg(long)]
    quick: bool,
    /// JSON report file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// mod_ja4.so to load (default: the workspace's release, then debug build).
    #[arg(long)]
    module: Option<PathBuf>,
    /// The ja4-sidecar binary (default: the one beside this binary, else /usr/bin's).
    #[arg(long)]
    sidecar: Option<PathBuf>,
    /// Working directory (default: a new one under the temp directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the working directory (store, logs) afterwards.
    #[arg(long)]
    keep: bool,
}

#[derive(clap::Args)]
struct SynthArgs {
    #[command(flatten)]
    store: ja4_sidecar::args::StoreArgs,
    /// Requests to generate.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Spread over the last HOURS hours.
    #[arg(long, default_value_t = 24)]
    hours: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Browsing people (clients of the largest population).
    #[arg(long, default_value_t = 3000)]
    people: u32,
}

fn main() -> ExitCode {
    ja4_sidecar::args::init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lab(a) => run_lab(a),
        Command::Synth(a) => run_synth(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ja4-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_lab(a: LabArgs) -> Result<ExitCode> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let module = a.module.unwrap_or_else(|| {
        ["target/release/libmod_ja4.so", "target/debug/libmod_ja4.so"]
            .iter()
            .map(|p| root.join(p))
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("/usr/lib64/httpd/modules/mod_ja4.so"))
    });
    let sidecar = match a.sidecar {
        Some(p) => p,
        None => {
            let exe = std::env::current_exe().context("locating this binary")?;
            exe.parent()
                .map(|d| d.join("ja4-sidecar"))
                .filter(|p| p.exists())
                .unwrap_or_else(|| PathBuf::from("/usr/bin/ja4-sidecar"))
        }
    };
    anyhow::ensure!(
        sidecar.exists(),
        "{} missing: build it (cargo build -p ja4-sidecar) or pass --sidecar",
        sidecar.display()
    );
    let opts = lab::LabOptions {
        quick: a.quick,
        module,
        sidecar,
        work_dir: a.work_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("ja4-lab-{}", std::process::id()))
        }),
        keep: a.keep,
        tools: root.join(".cache"),
    };
    let report = lab::run(&opts)?;
    print!("{}", lab::table(&report));
    if let Some(p) = a.report {
        std::fs::write(&p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_synth(a: SynthArgs) -> Result<ExitCode> {
    let cfg = a.store.store_config()?;
    let store = cfg.open()?;
    ja4_store::migrate::migrate(&store, &cfg.migrate_options())?;
    let started = std::time::Instant::now();
    let written = synth::generate(
        &store,
        &cfg.database,
        synth::Synth {
            requests: a.requests,
            hours: a.hours,
            seed: a.seed,
            people: a.people,
        },
    )?;
    for (name, rows) in &written {
        println!("{name:>24}: {rows} rows");
    }
    println!(
        "generated {} rows in {:.1}s",
        written.iter().map(|w| w.1).sum::<u64>(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
