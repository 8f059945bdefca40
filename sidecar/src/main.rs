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
    /// Receive the module's batches on the unix socket and store them (runs until SIGTERM).
    Serve {
        /// Configuration file.
        #[arg(long, default_value = "/etc/ja4/sidecar.toml")]
        config: PathBuf,
    },
    /// Apply pending ClickHouse migrations (sql/, embedded in this binary).
    Migrate(StoreArgs),
    /// Run a read-only query against the store and print the result.
    Query(QueryArgs),
}

/// Where the embedded store lives.
#[derive(clap::Args)]
struct StoreArgs {
    /// Data directory of the embedded ClickHouse engine.
    #[arg(long, default_value = "/var/lib/ja4/store")]
    data_dir: PathBuf,
    /// Path of libchdb.so (default: $JA4_CHDB_LIB, else the one scripts/fetch-chdb.sh installs).
    #[arg(long)]
    chdb_lib: Option<PathBuf>,
    /// Database name.
    #[arg(long, default_value = "ja4")]
    database: String,
}

#[derive(clap::Args)]
struct QueryArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = QueryFormat::Tsv)]
    format: QueryFormat,
    /// One SELECT (or SHOW/DESCRIBE/EXPLAIN) statement.
    sql: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum QueryFormat {
    Tsv,
    Json,
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
        Command::Migrate(args) => run_migrate(args),
        Command::Serve { config } => ja4_sidecar::ingest::Config::load(&config)
            .and_then(ja4_sidecar::ingest::serve)
            .map(|_| ExitCode::SUCCESS),
        Command::Query(args) => run_query(args),
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

fn open_store(args: &StoreArgs) -> Result<ja4_sidecar::store::chdb::Chdb> {
    use anyhow::Context as _;
    let lib = args
        .chdb_lib
        .clone()
        .unwrap_or_else(ja4_sidecar::store::chdb::default_library);
    ja4_sidecar::store::chdb::Chdb::open(&lib, &args.data_dir)
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))
}

fn run_migrate(args: StoreArgs) -> Result<ExitCode> {
    let store = open_store(&args)?;
    let applied = ja4_sidecar::store::migrate::migrate(&store, &args.database)?;
    if applied.is_empty() {
        println!("schema of {} is up to date", args.database);
    } else {
        println!("applied migrations {applied:?} to {}", args.database);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_query(args: QueryArgs) -> Result<ExitCode> {
    // Read-only: one statement of a reading kind, and the engine's readonly setting.
    let sql = args.sql.trim().trim_end_matches(';');
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if !matches!(
        first.as_str(),
        "SELECT" | "WITH" | "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN" | "EXISTS"
    ) || sql.contains(';')
    {
        anyhow::bail!(
            "query runs one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS)"
        );
    }
    let store = open_store(&args.store)?;
    let format = match args.format {
        QueryFormat::Tsv => "TSVWithNames",
        QueryFormat::Json => "JSONEachRow",
    };
    let out = store.query(&format!("{sql} SETTINGS readonly = 1"), format)?;
    std::io::stdout().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}
