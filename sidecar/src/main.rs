//! `ja4-sidecar` command line.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use ja4_sidecar::offline::{self, OutputOptions};

#[derive(Parser)]
#[command(name = "ja4-sidecar", version = VERSION.as_str(), about = "ja4-platform sidecar: fingerprints, store, detection, dashboard")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(ja4_platform::long_version);

#[derive(Subcommand)]
enum Command {
    /// Fingerprint capture files (pcap or pcapng): one JSON object per TCP connection.
    Pcap(PcapArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// JSON Lines with every fingerprint variant.
    Json,
    /// Human-readable; --raw and --original-order pick the variant shown.
    Text,
}

#[derive(clap::Args)]
struct PcapArgs {
    /// Text mode: show raw (unhashed) fingerprints. JSON always carries every variant.
    #[arg(short = 'r', long)]
    raw: bool,
    /// Text mode: show original-order variants. JSON always carries every variant.
    #[arg(short = 'O', long)]
    original_order: bool,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// JSON mode: add the parsed facts (TLS lists, SYN options, timing) under `facts`.
    #[arg(long)]
    facts: bool,
    /// Print per-file counters (packets, decode errors, evictions…) to stderr as JSON.
    #[arg(long)]
    stats: bool,
    /// Capture files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JA4_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pcap(args) => run_pcap(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ja4-sidecar: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_pcap(args: PcapArgs) -> Result<ExitCode> {
    let opts = OutputOptions {
        json: args.format == Format::Json,
        raw: args.raw,
        original_order: args.original_order,
        facts: args.facts,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for path in &args.files {
        let name = offline::display_name(path);
        match offline::analyze_file(path, offline::offline_flow_config()) {
            Ok(analysis) => {
                offline::write_records(&mut out, &name, &analysis.records, opts)?;
                if let Some(e) = &analysis.read_error {
                    failed += 1;
                    out.flush()?;
                    eprintln!(
                        "ja4-sidecar: {}: read error after {} packets: {e}",
                        path.display(),
                        analysis.stats.packets
                    );
                }
                if args.stats {
                    out.flush()?;
                    eprintln!(
                        "{}",
                        serde_json::json!({ "pcap": name, "stats": analysis.stats })
                    );
                }
            }
            Err(e) => {
                failed += 1;
                out.flush()?;
                eprintln!("ja4-sidecar: {}: {e:#}", path.display());
            }
        }
    }
    out.flush()?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
