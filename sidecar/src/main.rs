//! `ja4-sidecar` command line.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ja4_sidecar::offline::{self, OutputOptions};

#[derive(Parser)]
#[command(name = "ja4-sidecar", version = VERSION.as_str(), about = "ja4-platform sidecar: fingerprints, store, detection, dashboard")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(ja4_platform::long_version);

// Parsed once at start: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
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
    Migrate(MigrateArgs),
    /// Run a read-only query against the store and print the result.
    Query(QueryArgs),
    /// The detection models on files.
    #[command(subcommand)]
    Ml(MlCommand),
    /// Reference data (IP→ASN, known bots, crawler rules, fingerprint labels) into the store.
    #[command(subcommand)]
    Refdata(RefdataCommand),
    /// Train the detection model on the store's clean traffic of the last hours.
    Train(TrainArgs),
    /// Score the clients of the last hours and write ml_all_scores / ml_detected_anomalies.
    Score(ScoreArgs),
    /// Dashboard users: add (or reset), list, disable, enable.
    #[command(subcommand)]
    User(UserCommand),
    /// Batches the store refused for their data, set aside so that ingest goes on: list,
    /// show (JSON Lines), retry (insert again, e.g. after a schema fix), remove.
    DeadLetter(DeadLetterArgs),
    /// Allow, challenge and deny lists by address, network or JA4 (the dashboard's lists):
    /// add, remove, show. Every change is audited.
    #[command(subcommand)]
    Lists(ListsCommand),
    /// The decisions snapshot mod_ja4 enforces (`JA4DecisionFile`): publish it now.
    #[command(subcommand)]
    Decisions(DecisionsCommand),
}

#[derive(Subcommand)]
enum DecisionsCommand {
    /// Writes the latest verdict of every client scored in the last HOURS and the active
    /// lists to OUT (atomically).
    Publish {
        /// The snapshot file (default: `[scoring] decisions_file` of --config).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 24)]
        hours: u32,
        #[command(flatten)]
        store: ja4_sidecar::args::StoreArgs,
    },
}

/// One list entry's subject.
#[derive(clap::Args)]
struct ListSubject {
    /// What the entry matches.
    #[arg(long, value_parser = ["ip", "net", "ja4"])]
    kind: String,
    /// The address, network (address/length) or JA4.
    #[arg(long)]
    value: String,
}

#[derive(Subcommand)]
enum ListsCommand {
    /// Adds (or replaces) an entry.
    Add {
        #[command(flatten)]
        subject: ListSubject,
        /// What to do with matching clients.
        #[arg(long, value_parser = ["allow", "challenge", "deny"])]
        action: String,
        /// Why (shown with every verdict it decides; at most 500 characters).
        #[arg(long, default_value = "")]
        reason: String,
        /// How long it applies: `30m`, `12h`, `7d` (default: until removed).
        #[arg(long)]
        expires: Option<String>,
        /// Who does it, for the audit log (default: $USER).
        #[arg(long)]
        analyst: Option<String>,
        /// Publish the decisions snapshot to this file after the change (mod_ja4 applies it
        /// within a second).
        #[arg(long)]
        publish: Option<PathBuf>,
        #[command(flatten)]
        store: ja4_sidecar::args::StoreArgs,
    },
    /// Removes an entry (a newer inactive row: its history stays).
    Remove {
        #[command(flatten)]
        subject: ListSubject,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// Who does it, for the audit log (default: $USER).
        #[arg(long)]
        analyst: Option<String>,
        /// Publish the decisions snapshot to this file after the change.
        #[arg(long)]
        publish: Option<PathBuf>,
        #[command(flatten)]
        store: ja4_sidecar::args::StoreArgs,
    },
    /// Prints the active, unexpired entries, newest first (tab-separated, with a header).
    Show {
        #[command(flatten)]
        store: ja4_sidecar::args::StoreArgs,
    },
}

#[derive(clap::Args)]
struct DeadLetterArgs {
    #[command(subcommand)]
    action: DeadLetterAction,
}

/// Where the dead letters (and, for `retry`, the store) are.
#[derive(clap::Args)]
struct DeadLetterPlace {
    #[command(flatten)]
    store: ja4_sidecar::args::StoreArgs,
    /// Spool directory (default: `store.spool_dir` of --config); dead letters are in its
    /// `dead-letter` folder.
    #[arg(long)]
    spool_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum DeadLetterAction {
    /// Lists the batches: number, records, bytes, why.
    List(DeadLetterPlace),
    /// Prints one batch's records as JSON Lines.
    Show {
        seq: u64,
        #[command(flatten)]
        place: DeadLetterPlace,
    },
    /// Inserts one batch again; removed once stored, kept (with the new reason) if refused.
    Retry {
        seq: u64,
        #[command(flatten)]
        place: DeadLetterPlace,
    },
    /// Removes one batch for good.
    Remove {
        seq: u64,
        #[command(flatten)]
        place: DeadLetterPlace,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Adds a user or sets an existing user's role and password. The password is read from
    /// stdin (one line) or, on a terminal, prompted for twice.
    Add {
        name: String,
        #[arg(long, value_parser = ["analyst", "admin"], default_value = "analyst")]
        role: String,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// Lists users and their roles.
    List {
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// Disables a user (their sessions end at their next request).
    Disable {
        name: String,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// Enables a disabled user.
    Enable {
        name: String,
        #[command(flatten)]
        file: UsersFileArgs,
    },
}

#[derive(clap::Args)]
struct UsersFileArgs {
    /// The users file (default: `dashboard.users_file` of --config).
    #[arg(long)]
    users_file: Option<PathBuf>,
    #[arg(long, default_value = "/etc/ja4/sidecar.toml")]
    config: PathBuf,
}

impl UsersFileArgs {
    fn users(&self) -> Result<ja4_dashboard::auth::Users> {
        let path = match &self.users_file {
            Some(p) => p.clone(),
            None if self.config.exists() => {
                ja4_sidecar::serve::Config::load(&self.config)?
                    .dashboard
                    .users_file
            }
            None => ja4_dashboard::Config::default().users_file,
        };
        Ok(ja4_dashboard::auth::Users::new(&path))
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    store: ja4_sidecar::args::StoreArgs,
    /// Window of traffic to learn from.
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// Where models are saved (model-<time>.json and current.json).
    #[arg(long, default_value = "/var/lib/ja4/models")]
    models_dir: PathBuf,
    #[arg(long, default_value_t = 200)]
    trees: usize,
    /// Features per split (1 = standard isolation forest).
    #[arg(long, default_value_t = 1)]
    features_per_split: usize,
    /// Share of the autoencoder in the score (0 = forest only).
    #[arg(long, default_value_t = 0.30)]
    ae_weight: f64,
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fewest clean clients to train on: a client is an address, a JA4 family and a host
    /// over all its connections, not a row (`--min-rows` is the old name).
    #[arg(long, alias = "min-rows", default_value_t = 50)]
    min_clients: usize,
}

#[derive(clap::Args)]
struct ScoreArgs {
    #[command(flatten)]
    store: ja4_sidecar::args::StoreArgs,
    #[arg(long, default_value_t = 1)]
    hours: u32,
    /// Model file (default: current.json in --models-dir).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value = "/var/lib/ja4/models")]
    models_dir: PathBuf,
    /// DNS resolver for crawler verification (default: the first nameserver of
    /// /etc/resolv.conf; without one, only published ranges verify).
    #[arg(long)]
    resolver: Option<std::net::SocketAddr>,
}

#[derive(Subcommand)]
enum RefdataCommand {
    /// Load the shipped data and the named files, replacing what each source loaded before.
    Load(RefdataArgs),
    /// The same, meant for a timer: re-read every source and reload the dictionaries.
    Refresh(RefdataArgs),
    /// Is this address the crawler its user agent claims? (published ranges, else
    /// forward-confirmed reverse DNS). Exit code 0 verified, 1 not, 2 undecided.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    #[command(flatten)]
    store: ja4_sidecar::args::StoreArgs,
    /// Client address.
    #[arg(long)]
    ip: std::net::IpAddr,
    /// The user agent it sent.
    #[arg(long)]
    user_agent: String,
    /// DNS resolver (default: the first nameserver of /etc/resolv.conf).
    #[arg(long)]
    resolver: Option<std::net::SocketAddr>,
}

#[derive(clap::Args)]
struct RefdataArgs {
    #[command(flatten)]
    store: ja4_sidecar::args::StoreArgs,
    #[command(flatten)]
    sources: ja4_detect::refdata::Sources,
}

#[derive(Subcommand)]
enum MlCommand {
    /// Fit the isolation forest on a CSV feature matrix and write one score per row.
    FitScore(ja4_sidecar::mlcmd::FitScoreArgs),
}

#[derive(clap::Args)]
struct MigrateArgs {
    #[command(flatten)]
    store: ja4_sidecar::args::StoreArgs,
    /// Multi-node ClickHouse: run every statement ON CLUSTER with Replicated engines and
    /// Distributed `<table>_all` tables.
    #[arg(long)]
    cluster: Option<String>,
    /// Print every statement instead of running it (nothing is opened).
    #[arg(long)]
    print: bool,
}

#[derive(clap::Args)]
struct QueryArgs {
    #[command(flatten)]
    store: ja4_sidecar::args::StoreArgs,
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
    ja4_sidecar::args::init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pcap(args) => run_pcap(args),
        Command::Migrate(args) => run_migrate(args),
        Command::Serve { config } => ja4_sidecar::serve::Config::load(&config)
            .and_then(ja4_sidecar::serve::serve)
            .map(|_| ExitCode::SUCCESS),
        Command::Query(args) => run_query(args),
        Command::Refdata(RefdataCommand::Load(a) | RefdataCommand::Refresh(a)) => run_refdata(a),
        Command::Refdata(RefdataCommand::Verify(a)) => run_verify(a),
        Command::Train(a) => run_train(a),
        Command::Score(a) => run_score(a),
        Command::User(c) => run_user(c),
        Command::DeadLetter(a) => run_dead_letter(a),
        Command::Lists(c) => run_lists(c),
        Command::Decisions(DecisionsCommand::Publish { out, hours, store }) => {
            run_publish(out, hours, &store)
        }
        Command::Ml(MlCommand::FitScore(args)) => {
            ja4_sidecar::mlcmd::fit_score(args).map(|_| ExitCode::SUCCESS)
        }
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

fn run_migrate(args: MigrateArgs) -> Result<ExitCode> {
    let cfg = args.store.store_config()?;
    let mut opts = cfg.migrate_options();
    if let Some(c) = args.cluster {
        opts.cluster = Some(c);
    }
    if args.print {
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        for (m, stmts) in ja4_store::migrate::plan(&opts)? {
            writeln!(out, "-- {:04} {}", m.version, m.name)?;
            for s in stmts {
                writeln!(out, "{s};\n")?;
            }
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = cfg.open()?;
    let applied = ja4_store::migrate::migrate(&store, &opts)?;
    if applied.is_empty() {
        println!("schema of {} is up to date", opts.database);
    } else {
        println!("applied migrations {applied:?} to {}", opts.database);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_refdata(args: RefdataArgs) -> Result<ExitCode> {
    let cfg = args.store.store_config()?;
    let store = cfg.open()?;
    ja4_store::migrate::migrate(&store, &cfg.migrate_options())?;
    let report = ja4_detect::refdata::load(&store, &cfg.database, &args.sources)?;
    let mut skipped = 0;
    for l in &report {
        println!(
            "{:<8} {:<22} {:>8} rows  {:>5} skipped",
            l.source, l.table, l.rows, l.skipped
        );
        for r in &l.reasons {
            println!("         {r}");
        }
        skipped += l.skipped;
    }
    Ok(if skipped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn run_train(a: TrainArgs) -> Result<ExitCode> {
    use ja4_ml::{AeParams, ForestParams, ModelParams};
    let cfg = a.store.store_config()?;
    let store = cfg.open()?;
    ja4_store::migrate::migrate(&store, &cfg.migrate_options())?;
    let params = ModelParams {
        forest: ForestParams {
            trees: a.trees,
            features_per_split: a.features_per_split,
            seed: a.seed,
            ..Default::default()
        },
        autoencoder: AeParams {
            epochs: a.epochs,
            seed: a.seed,
            ..Default::default()
        },
        ae_weight: a.ae_weight,
    };
    // Progress on stderr: a spinner with the elapsed time on a terminal, a plain line
    // otherwise (logs, CI).
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let msg = format!(
        "training the forest, the autoencoder and the classifier on the last {} h",
        a.hours
    );
    if bar.is_hidden() {
        eprintln!("{msg}");
    }
    bar.set_message(msg);
    let started = std::time::Instant::now();
    let trained = ja4_detect::cycle::train_and_save(
        &store,
        &cfg.database,
        &a.models_dir,
        a.hours,
        params,
        a.min_clients,
    )?;
    bar.finish_and_clear();
    let model = &trained.model;
    if let Some(why) = &model.ae_failure {
        println!("autoencoder failed ({why}): the forest scores alone");
    }
    println!(
        "trained on {} clients ({} features) in {:.1}s: {}",
        model.trained_rows,
        model.features.len(),
        started.elapsed().as_secs_f64(),
        trained.path.display()
    );
    match &trained.classifier {
        Ok((c, p)) => println!(
            "classifier: {} bots, {} non-bots, out-of-bag ROC AUC {:.3}: {}",
            c.positives,
            c.negatives,
            c.oob_auc,
            p.display()
        ),
        Err(e) => println!("no classifier: {e:#}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn run_score(a: ScoreArgs) -> Result<ExitCode> {
    let cfg = a.store.store_config()?;
    let store = cfg.open()?;
    let path = a.model.unwrap_or_else(|| a.models_dir.join("current.json"));
    let model = ja4_detect::scoring::load_model(&path)?;
    let resolver = a.resolver.map(|r| r.to_string()).unwrap_or_default();
    let verifier = ja4_detect::verify::Verifier::configured(&resolver);
    let scored = ja4_detect::cycle::score_and_write(
        &store,
        &cfg.database,
        a.hours,
        &model,
        &ja4_detect::cycle::model_version(&path),
        &a.models_dir,
        verifier.as_ref(),
    )?;
    if let Some(e) = &scored.classifier_error {
        eprintln!("warning: classifier unusable, scored without it: {e}");
    }
    println!(
        "scored {} clients, {} detections",
        scored.clients, scored.detections
    );
    Ok(ExitCode::SUCCESS)
}

fn run_dead_letter(args: DeadLetterArgs) -> Result<ExitCode> {
    use anyhow::Context as _;
    use ja4_store::{rows, spool::DeadLetter};
    let place = match &args.action {
        DeadLetterAction::List(p)
        | DeadLetterAction::Show { place: p, .. }
        | DeadLetterAction::Retry { place: p, .. }
        | DeadLetterAction::Remove { place: p, .. } => p,
    };
    let mut cfg = place.store.store_config()?;
    if let Some(d) = &place.spool_dir {
        cfg.spool_dir = d.clone();
    }
    let dir = cfg.dead_letter_dir();
    let dead = DeadLetter::new(&dir, cfg.dead_letter_max_bytes);
    let find = |seq: u64| {
        dead.read(seq)
            .with_context(|| format!("no dead letter {seq} in {}", dir.display()))
    };
    match args.action {
        DeadLetterAction::List(_) => {
            let all = dead
                .list()
                .with_context(|| format!("reading {}", dir.display()))?;
            if all.is_empty() {
                println!("no dead letters in {}", dir.display());
            }
            for d in all {
                let (records, _) = DeadLetter::contents(&d);
                let why = d.why.lines().nth(1).unwrap_or("");
                println!(
                    "{}\t{} records\t{} bytes\t{why}",
                    d.seq,
                    records.len(),
                    d.bytes
                );
            }
        }
        DeadLetterAction::Show { seq, .. } => {
            let (_, records, corrupt) = find(seq)?;
            let mut out = Vec::new();
            for r in &records {
                r.write_json(&mut out);
            }
            std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?;
            if corrupt > 0 {
                eprintln!("{corrupt} corrupt frame(s) at the end of the file were skipped");
            }
        }
        DeadLetterAction::Retry { seq, .. } => {
            let (_, records, _) = find(seq)?;
            let store = cfg.open()?;
            let done = rows::insert_isolating(&store, &cfg.database, &records);
            if let Some((e, _)) = done.unstored {
                anyhow::bail!("the store is unavailable: {e}");
            }
            let refused = rows::pick(&records, &done.refused);
            if !refused.is_empty() {
                // The refused records become a new dead letter (with the new reason) before
                // the old one goes: nothing is ever only in memory.
                let why = done.refusal.unwrap_or_default();
                if !dead.put(&refused, &why)? {
                    anyhow::bail!(
                        "{} records refused again and the dead letters are full",
                        refused.len()
                    );
                }
                dead.remove(seq)?;
                println!(
                    "stored {}, {} refused again (kept as a new dead letter): {why}",
                    done.inserted.stored,
                    refused.len()
                );
                return Ok(ExitCode::from(1));
            }
            dead.remove(seq)?;
            println!(
                "stored {} (expired {}, future {})",
                done.inserted.stored, done.inserted.expired, done.inserted.future
            );
        }
        DeadLetterAction::Remove { seq, .. } => {
            find(seq)?;
            dead.remove(seq)
                .with_context(|| format!("removing dead letter {seq}"))?;
            println!("removed dead letter {seq}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_verify(args: VerifyArgs) -> Result<ExitCode> {
    use anyhow::Context as _;
    use ja4_detect::verify::{Domains, Verdict, Verifier};
    let cfg = args.store.store_config()?;
    let store = cfg.open()?;
    let db = &cfg.database;
    let ip6 = match args.ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().to_string(),
        std::net::IpAddr::V6(v6) => v6.to_string(),
    };
    let row = String::from_utf8(store.query_params(
        &format!(
            "SELECT dictGetOrDefault('{db}.dict_crawler_ua', 'name', {{ua:String}}, ''), dictGetOrDefault('{db}.dict_crawler_ua', 'action', {{ua:String}}, ''), dictGetOrDefault('{db}.dict_bot_ips', 'bot_name', toIPv6({{ip:String}}), '')"
        ),
        "TSV",
        &[("ua", args.user_agent.clone()), ("ip", ip6)],
    )?)?;
    let f: Vec<&str> = row.trim_end_matches('\n').split('\t').collect();
    let (crawler, action, range_bot) = (
        f.first().copied().unwrap_or(""),
        f.get(1).copied().unwrap_or(""),
        f.get(2).copied().unwrap_or(""),
    );
    if crawler.is_empty() {
        println!("the user agent names no known crawler");
        return Ok(ExitCode::from(1));
    }
    let resolver = match args.resolver {
        Some(r) => r,
        None => ja4_detect::verify::system_resolver()
            .context("no nameserver in /etc/resolv.conf: pass --resolver")?,
    };
    let domains = Domains::shipped();
    let v = Verifier::new(ja4_detect::dns::Resolver::new(resolver)?, domains);
    let verdict = v.verify(args.ip, crawler, range_bot == crawler);
    println!("claims {crawler} (rule action {action}): {verdict:?}");
    Ok(match verdict {
        Verdict::Range | Verdict::Dns(_) => ExitCode::SUCCESS,
        Verdict::Spoofed(_) => ExitCode::from(1),
        Verdict::Unknown(_) => ExitCode::from(2),
    })
}

/// A `;` outside quoted strings and identifiers (a second statement).
fn has_statement_separator(sql: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in sql.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
            None if c == ';' => return true,
            None => {}
        }
    }
    false
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
    ) || has_statement_separator(sql)
    {
        anyhow::bail!(
            "query runs one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS)"
        );
    }
    let store = args.store.store_config()?.open()?;
    let format = match args.format {
        QueryFormat::Tsv => "TSVWithNames",
        QueryFormat::Json => "JSONEachRow",
    };
    let out = store.query(&format!("{sql} SETTINGS readonly = 1"), format)?;
    std::io::stdout().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("password: ").context("reading the password")?;
        let b = rpassword::prompt_password("again: ").context("reading the password")?;
        anyhow::ensure!(a == b, "the passwords differ");
        Ok(a)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// `30m`, `12h`, `7d`, `90s` as milliseconds.
fn duration_ms(s: &str) -> Result<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .with_context(|| format!("--expires {s:?}: a number and a unit (s, m, h, d)"))?;
    let per = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("--expires {s:?}: the unit is s, m, h or d"),
    };
    anyhow::ensure!(n > 0, "--expires {s:?}: must be in the future");
    n.checked_mul(per)
        .with_context(|| format!("--expires {s:?}: too far"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Publishes the decisions snapshot (to `out`, else the configured `decisions_file`).
fn run_publish(
    out: Option<PathBuf>,
    hours: u32,
    store: &ja4_sidecar::args::StoreArgs,
) -> Result<ExitCode> {
    let configured = match &store.config {
        Some(p) => ja4_sidecar::serve::Config::load(p)?.scoring.decisions_file,
        None => PathBuf::new(),
    };
    let out = out
        .or_else(|| (!configured.as_os_str().is_empty()).then_some(configured))
        .context("--out, or [scoring] decisions_file in --config, names the snapshot")?;
    let cfg = store.store_config()?;
    let s = cfg.open()?;
    ja4_store::migrate::migrate(&s, &cfg.migrate_options())?;
    let p = ja4_detect::decisions::publish(&s, &cfg.database, &out, hours, now_ms())?;
    println!(
        "published {} scored and {} listed decisions to {} ({} network entries too wide to hold \
         apply in scoring only)",
        p.scored,
        p.listed,
        out.display(),
        p.networks_skipped
    );
    Ok(ExitCode::SUCCESS)
}

fn run_lists(c: ListsCommand) -> Result<ExitCode> {
    use ja4_detect::lists::{self, Action, Change};
    let analyst = |a: Option<String>| {
        a.or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "cli".to_owned())
    };
    let open = |store: &ja4_sidecar::args::StoreArgs| -> Result<(ja4_store::Store, String)> {
        let cfg = store.store_config()?;
        let s = cfg.open()?;
        ja4_store::migrate::migrate(&s, &cfg.migrate_options())?;
        Ok((s, cfg.database.clone()))
    };
    let change = |store: &ja4_sidecar::args::StoreArgs,
                  subject: &ListSubject,
                  action: Option<Action>,
                  note: &str,
                  expires_ms: Option<i64>,
                  who: Option<String>|
     -> Result<(String, String)> {
        let (s, db) = open(store)?;
        let who = analyst(who);
        let value = lists::write(
            &s,
            &db,
            &Change {
                kind: &subject.kind,
                value: &subject.value,
                action,
                note,
                expires_ms,
                actor: &who,
                role: "cli",
            },
        )?;
        Ok((value, who))
    };
    match c {
        ListsCommand::Add {
            subject,
            action,
            reason,
            expires,
            analyst: who,
            publish,
            store,
        } => {
            let expires_ms = match expires.as_deref() {
                Some(e) => Some(now_ms() + duration_ms(e)?),
                None => None,
            };
            let (value, who) = change(
                &store,
                &subject,
                Action::parse(&action),
                &reason,
                expires_ms,
                who,
            )?;
            println!("{action} {} {value} (by {who})", subject.kind);
            if publish.is_some() {
                run_publish(publish, 24, &store)?;
            }
        }
        ListsCommand::Remove {
            subject,
            reason,
            analyst: who,
            publish,
            store,
        } => {
            let (value, who) = change(&store, &subject, None, &reason, None, who)?;
            println!("removed {} {value} (by {who})", subject.kind);
            if publish.is_some() {
                run_publish(publish, 24, &store)?;
            }
        }
        ListsCommand::Show { store } => {
            let (s, db) = open(&store)?;
            println!("kind\tvalue\taction\tanalyst\tupdated_at\texpires_at\treason");
            for e in lists::show(&s, &db)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    e.kind,
                    e.value,
                    e.action,
                    e.analyst,
                    e.updated_at,
                    if e.expires_at.is_empty() {
                        "never"
                    } else {
                        &e.expires_at
                    },
                    e.note.replace(['\t', '\n'], " ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_user(c: UserCommand) -> Result<ExitCode> {
    match c {
        UserCommand::Add { name, role, file } => {
            let users = file.users()?;
            let role: ja4_dashboard::auth::Role = role.parse()?;
            let pw = read_password()?;
            users
                .upsert(&name, role, &pw)
                .with_context(|| format!("adding {name} to {}", users.path().display()))?;
            println!(
                "user {name} ({}) saved in {}",
                role.as_str(),
                users.path().display()
            );
        }
        UserCommand::List { file } => {
            for u in file.users()?.list()? {
                println!(
                    "{}\t{}{}",
                    u.name,
                    u.role.as_str(),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        UserCommand::Disable { name, file } => {
            anyhow::ensure!(file.users()?.set_disabled(&name, true)?, "no user {name}");
            println!("user {name} disabled");
        }
        UserCommand::Enable { name, file } => {
            anyhow::ensure!(file.users()?.set_disabled(&name, false)?, "no user {name}");
            println!("user {name} enabled");
        }
    }
    Ok(ExitCode::SUCCESS)
}
