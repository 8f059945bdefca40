//! `ja4-lab lab`: the proof. Real clients against a real httpd with mod_ja4 and the real
//! sidecar and store, each simulated client from its own loopback address, every client
//! labelled by scenario; then the models are trained on a baseline of people browsing and the
//! mixed traffic is scored.
//!
//! Owns: the scenarios (people in headless Chromium, verified and spoofed crawlers, scrapers in
//! curl/Python/Java, credential stuffing, path fuzzing, a browser user agent on a non-browser
//! TLS stack, a distributed campaign, handshake-only scanners), the two phases (baseline, then
//! mixed), and the report: detection and false-positive rates per scenario, ROC AUC, campaign
//! purity, time to detect.
//! Never: labels from what the model says: labels come from which scenario drove the client.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::clients::{self, Browser, Browsing, CHROME_UA, GOOGLEBOT_UA};

/// OpenAI's crawler, claimed from addresses that are not OpenAI's.
const GPTBOT_UA: &str =
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)";
use crate::infra;
use ja4_store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    Humans,
    HumansFirefox,
    VerifiedGoodBots,
    SpoofedCrawlers,
    SpoofedAiCrawlers,
    ScrapersCurl,
    ScrapersPython,
    ScrapersJava,
    ScrapersGo,
    SlowScrapers,
    CredentialStuffing,
    PathFuzzers,
    BrowserUaSpoofer,
    Impersonators,
    RotatingImpersonators,
    HeadlessCrawlers,
    DistributedCampaign,
    HandshakeOnly,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 18] = [
        Scenario::Humans,
        Scenario::HumansFirefox,
        Scenario::VerifiedGoodBots,
        Scenario::SpoofedCrawlers,
        Scenario::SpoofedAiCrawlers,
        Scenario::ScrapersCurl,
        Scenario::ScrapersPython,
        Scenario::ScrapersJava,
        Scenario::ScrapersGo,
        Scenario::SlowScrapers,
        Scenario::CredentialStuffing,
        Scenario::PathFuzzers,
        Scenario::BrowserUaSpoofer,
        Scenario::Impersonators,
        Scenario::RotatingImpersonators,
        Scenario::HeadlessCrawlers,
        Scenario::DistributedCampaign,
        Scenario::HandshakeOnly,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Humans => "humans",
            Scenario::HumansFirefox => "humans_firefox",
            Scenario::VerifiedGoodBots => "verified_good_bots",
            Scenario::SpoofedCrawlers => "spoofed_crawlers",
            Scenario::SpoofedAiCrawlers => "spoofed_ai_crawlers",
            Scenario::ScrapersCurl => "scrapers_curl",
            Scenario::ScrapersPython => "scrapers_python",
            Scenario::ScrapersJava => "scrapers_java",
            Scenario::ScrapersGo => "scrapers_go",
            Scenario::SlowScrapers => "slow_scrapers",
            Scenario::CredentialStuffing => "credential_stuffing",
            Scenario::PathFuzzers => "path_fuzzers",
            Scenario::BrowserUaSpoofer => "browser_ua_spoofer",
            Scenario::Impersonators => "impersonators",
            Scenario::RotatingImpersonators => "rotating_impersonators",
            Scenario::HeadlessCrawlers => "headless_crawlers",
            Scenario::DistributedCampaign => "distributed_campaign",
            Scenario::HandshakeOnly => "handshake_only",
        }
    }

    /// Clients that should not be flagged.
    pub(crate) fn legitimate(self) -> bool {
        matches!(
            self,
            Scenario::Humans | Scenario::HumansFirefox | Scenario::VerifiedGoodBots
        )
    }

    /// Bots whose requests mitigation should stop (not the genuine crawlers).
    pub(crate) fn bot(self) -> bool {
        !self.legitimate()
    }

    /// Bots that fetch pages (the handshake-only clients make no request to refuse).
    pub(crate) fn fetches_pages(self) -> bool {
        self.bot() && self != Scenario::HandshakeOnly
    }

    /// People (the false-positive target is about them).
    pub(crate) fn people(self) -> bool {
        matches!(self, Scenario::Humans | Scenario::HumansFirefox)
    }

    fn index(self) -> u8 {
        Scenario::ALL.iter().position(|s| *s == self).unwrap_or(0) as u8
    }

    /// The `n`-th client address of this scenario (phase 0 = baseline).
    pub(crate) fn addr(self, phase: u8, n: usize) -> Ipv4Addr {
        Ipv4Addr::new(
            127,
            30 + self.index() * 2 + phase,
            (n / 250) as u8,
            (n % 250 + 1) as u8,
        )
    }

    /// Clients of this scenario in phase 1 (people on Chromium also browse in phase 0, the
    /// baseline: [`BASELINE_PEOPLE`]; people on Firefox never do: the model meets their
    /// browser first when it scores them).
    fn clients(self, quick: bool) -> usize {
        let (q, f) = match self {
            Scenario::Humans => (20, 60),
            Scenario::HumansFirefox => (6, 12),
            Scenario::VerifiedGoodBots | Scenario::SpoofedCrawlers => (3, 5),
            Scenario::SpoofedAiCrawlers => (3, 3),
            Scenario::ScrapersCurl
            | Scenario::ScrapersPython
            | Scenario::ScrapersJava
            | Scenario::ScrapersGo => (2, 4),
            Scenario::SlowScrapers => (3, 3),
            Scenario::CredentialStuffing | Scenario::PathFuzzers | Scenario::BrowserUaSpoofer => {
                (3, 4)
            }
            Scenario::Impersonators | Scenario::RotatingImpersonators => (3, 4),
            Scenario::HeadlessCrawlers => (3, 4),
            Scenario::DistributedCampaign => (20, 50),
            Scenario::HandshakeOnly => (3, 5),
        };
        if quick {
            q
        } else {
            f
        }
    }
}

/// Lab settings.
#[derive(Debug, Clone)]
pub(crate) struct LabOptions {
    pub quick: bool,
    pub module: PathBuf,
    /// The `ja4-sidecar` binary the lab runs (`serve`).
    pub sidecar: PathBuf,
    pub work_dir: PathBuf,
    pub keep: bool,
    /// The setup script's `.cache` (puppeteer-core, the curl-cffi venv).
    pub tools: PathBuf,
}

/// One scenario's line of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScenarioReport {
    pub name: &'static str,
    pub clients: usize,
    pub flagged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detection_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_positive_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_rate: Option<f64>,
}

/// The lab's report: one [`VariantReport`] per way of training.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// `clean` (trained on the people-only baseline) and `mixed` (trained on the mixed
    /// window, as production trains).
    pub variants: Vec<VariantReport>,
    pub time_to_detect_s: f64,
    pub records: u64,
    /// Phase 2: the same clients again, with mod_ja4 enforcing the published decisions.
    pub mitigation: MitigationReport,
}

/// What mod_ja4 did with the decisions of the scoring run (phase 2): `JA4Mitigation
/// Enforce`, `JA4Action bot block`, `JA4Action suspicious challenge`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MitigationReport {
    pub scenarios: Vec<ScenarioMitigation>,
    /// Share of the bots' requests (genuine crawlers apart) blocked, tarpitted or answered
    /// with the challenge (or a refused answer to it).
    pub bot_requests_stopped: f64,
    /// Share of the people's requests answered with the challenge or blocked.
    pub people_requests_challenged: f64,
    /// Scrapers (bots that fetch pages): median seconds from their first request (phase 1) to
    /// their first refused one, the whole loop of score, publish and enforce.
    pub time_to_first_block_s: Option<f64>,
    /// The scoring run after phase 2: clients that solved a challenge, as (scenario, whether
    /// it is a bot scenario, verdict).
    pub solvers_rescored: Vec<(&'static str, bool, &'static str)>,
}

/// One scenario's requests in phase 2, by what mod_ja4 did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScenarioMitigation {
    pub name: &'static str,
    pub requests: u64,
    pub allowed: u64,
    pub challenged: u64,
    pub solved: u64,
    pub blocked: u64,
}

/// Detection and false positives of the models of one way of training.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VariantReport {
    pub training: &'static str,
    pub trained_clients: usize,
    pub scenarios: Vec<ScenarioReport>,
    /// Share of bot clients (addresses) flagged, every bot scenario together.
    pub bots_detected: f64,
    /// Share of people flagged (Chromium and Firefox).
    pub people_flagged: f64,
    /// Every person or genuine crawler flagged, with why (what to look at when the
    /// false-positive rate moves).
    pub false_positives: Vec<Finding>,
    /// Every bot not flagged, with what it was judged and why.
    pub missed: Vec<Finding>,
    pub roc_auc: f64,
    pub campaign_purity: f64,
    /// The bot score's calibration on this run: per band, the addresses whose lowest bot
    /// score falls in it, bots and people apart.
    pub bot_score_bands: Vec<Band>,
}

/// Addresses in one band of the bot score.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Band {
    pub band: &'static str,
    pub bots: usize,
    pub people: usize,
}

/// One scored client of a person flagged or a bot missed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    pub scenario: &'static str,
    pub ip: String,
    pub ja4: String,
    pub verdict: String,
    pub threat: String,
    pub score: f64,
    pub consensus: f64,
    pub reasons: Vec<String>,
}

fn pages(n: usize, offset: usize) -> Vec<String> {
    (0..n)
        .map(|i| match (i + offset) % 10 {
            0 => "/".to_owned(),
            9 => "/search.html".to_owned(),
            k => format!("/p/{k}.html"),
        })
        .collect()
}

/// People browsing in the baseline (phase 0): (quick, full).
const BASELINE_PEOPLE: (usize, usize) = (20, 40);

/// Runs one scenario's clients (in parallel, a few at a time).
fn run_scenario(
    dir: &Path,
    tools: &Path,
    s: Scenario,
    phase: u8,
    quick: bool,
    port: u16,
) -> Result<Vec<Ipv4Addr>> {
    let n = match (s, phase) {
        (Scenario::Humans, 0) if quick => BASELINE_PEOPLE.0,
        (Scenario::Humans, 0) => BASELINE_PEOPLE.1,
        _ => s.clients(quick),
    };
    let addrs: Vec<Ipv4Addr> = (0..n).map(|i| s.addr(phase, i)).collect();
    let langs = ["en-US", "de-DE", "fr-FR", "es-ES", "nl-NL", "pt-BR"];
    // Browsers are heavy: a few at a time.
    let parallel = match s {
        Scenario::Humans | Scenario::HumansFirefox | Scenario::HeadlessCrawlers => 3,
        _ => 8,
    };
    for chunk in addrs
        .chunks(parallel)
        .enumerate()
        .map(|(c, a)| (c * parallel, a))
    {
        let (base, group) = chunk;
        std::thread::scope(|sc| -> Result<()> {
            let handles: Vec<_> = group
                .iter()
                .enumerate()
                .map(|(k, &ip)| {
                    let i = base + k;
                    sc.spawn(move || -> Result<()> {
                        let seq = |n: usize, pat: &str| -> Vec<String> {
                            (0..n).map(|j| pat.replace("{i}", &(i * 1000 + j).to_string())).collect()
                        };
                        // A person clicks 3 to 6 links (4 to 7 pages), thinking 0.3–1.5 s.
                        let person = Browsing::Person {
                            clicks: 3 + i % 4,
                            think: (Duration::from_millis(300), Duration::from_millis(1500)),
                        };
                        match s {
                            Scenario::Humans => clients::browse(dir, tools, Browser::Chromium, ip, port, langs[i % langs.len()], &person),
                            Scenario::HumansFirefox => clients::browse(dir, tools, Browser::Firefox, ip, port, langs[i % langs.len()], &person),
                            Scenario::VerifiedGoodBots | Scenario::SpoofedCrawlers => {
                                clients::curl(ip, port, GOOGLEBOT_UA, "GET", &pages(12, i))
                            }
                            Scenario::SpoofedAiCrawlers => clients::curl(ip, port, GPTBOT_UA, "GET", &pages(12, i)),
                            Scenario::ScrapersCurl => {
                                clients::curl(ip, port, "curl/7.88.1", "GET", &seq(60, "/search.html?q={i}"))
                            }
                            Scenario::ScrapersPython => clients::python(dir, "get", ip, port, "python-requests/2.31.0", 60, "/search.html?page={i}"),
                            Scenario::ScrapersJava => clients::java(dir, ip, port, "Java/17.0.15", 60, "/search.html?item={i}"),
                            Scenario::ScrapersGo => clients::go(dir, ip, port, "Go-http-client/2.0", 60, "/search.html?sku={i}"),
                            Scenario::SlowScrapers => clients::python(dir, "slow", ip, port, CHROME_UA, 8, "/p/{i}.html"),
                            Scenario::CredentialStuffing => clients::python(dir, "post", ip, port, CHROME_UA, 40, "/login.html"),
                            Scenario::PathFuzzers => {
                                clients::curl(ip, port, "Mozilla/5.0 (compatible; scanner)", "GET", &seq(60, "/.{i}/wp-admin.php"))?;
                                clients::curl(ip, port, "Mozilla/5.0 (compatible; scanner)", "PROPFIND", &seq(10, "/dav{i}/"))
                            }
                            Scenario::BrowserUaSpoofer => clients::python(dir, "chrome-headers", ip, port, CHROME_UA, 30, "/p/{i}.html"),
                            Scenario::Impersonators => clients::impersonate(dir, tools, ip, port, 30, "/p/{i}.html", "chrome"),
                            Scenario::RotatingImpersonators => clients::impersonate(dir, tools, ip, port, 30, "/p/{i}.html", "chrome,safari,firefox"),
                            Scenario::HeadlessCrawlers => clients::browse(dir, tools, Browser::Chromium, ip, port, "en-US", &Browsing::Crawler { urls: (1..=20).map(|k| format!("/p/{}.html", (k + i * 7) % 30 + 1)).collect() }),
                            Scenario::DistributedCampaign => clients::python(dir, "get", ip, port, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/128.0", 6, "/search.html?q=deal-{i}"),
                            Scenario::HandshakeOnly => clients::python(dir, "handshake", ip, port, "-", 3, "/"),
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a {} client panicked", s.name()))??;
            }
            Ok(())
        })?;
    }
    Ok(addrs)
}

/// Runs the lab and returns its report.
pub(crate) fn run(opts: &LabOptions) -> Result<Report> {
    let dir = &opts.work_dir;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    if ja4_testkit::is_root() {
        let _ = std::process::Command::new("chmod")
            .arg("755")
            .arg(dir)
            .status();
    }
    let socket = dir.join("ingest.sock");
    let db = "ja4";

    // Genuine crawlers: reverse DNS under googlebot.com, confirmed forward.
    let good: Vec<(Ipv4Addr, String)> = (0..Scenario::VerifiedGoodBots.clients(opts.quick))
        .map(|i| {
            let ip = Scenario::VerifiedGoodBots.addr(1, i);
            (
                ip,
                format!("crawl-{}.googlebot.com", ip.to_string().replace('.', "-")),
            )
        })
        .collect();
    let dns = infra::start_dnsmasq(&good)?;
    let resolver = dns.addr;

    // Reference data first (its own store session).
    {
        let store = Store::embedded(&ja4_store::chdb::default_library(), &dir.join("store"))?;
        ja4_store::migrate::migrate(&store, &ja4_store::migrate::Options::new(db))?;
        ja4_detect::refdata::load(&store, db, &ja4_detect::refdata::Sources::default())?;
    }
    let mut httpd = infra::start_httpd(&dir.join("httpd"), &opts.module, &socket, "")?;

    // Phase 0: the baseline, people browsing.
    eprintln!(
        "lab: baseline: {} people browsing…",
        if opts.quick {
            BASELINE_PEOPLE.0
        } else {
            BASELINE_PEOPLE.1
        }
    );
    let mut sidecar = infra::start_sidecar(&opts.sidecar, dir)?;
    let tools = opts.tools.as_path();
    let baseline = run_scenario(dir, tools, Scenario::Humans, 0, opts.quick, httpd.port)?;
    let mut records = infra::settle(&sidecar, Duration::from_secs(2), Duration::from_secs(60));
    sidecar.stop();
    let model = {
        let store = Store::embedded(&ja4_store::chdb::default_library(), &dir.join("store"))?;
        ja4_detect::scoring::train(
            &store,
            db,
            1,
            ja4_ml::ModelParams::default(),
            baseline.len().min(10),
        )
        .context("training on the baseline")?
    };

    // Phase 1: everything at once.
    eprintln!("lab: mixed traffic…");
    let sidecar = infra::start_sidecar(&opts.sidecar, dir)?;
    let started = Instant::now();
    let mut by_ip: HashMap<IpAddr, Scenario> = baseline
        .iter()
        .map(|&ip| (IpAddr::V4(ip), Scenario::Humans))
        .collect();
    let results: Vec<Result<Vec<Ipv4Addr>>> = std::thread::scope(|sc| {
        let hs: Vec<_> = Scenario::ALL
            .iter()
            .map(|&s| {
                let port = httpd.port;
                let quick = opts.quick;
                sc.spawn(move || run_scenario(dir, tools, s, 1, quick, port))
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a scenario panicked")))
            })
            .collect()
    });
    for (s, r) in Scenario::ALL.iter().zip(results) {
        for ip in r.with_context(|| format!("scenario {}", s.name()))? {
            by_ip.insert(IpAddr::V4(ip), *s);
        }
    }
    let mut sidecar = sidecar;
    records += infra::settle(&sidecar, Duration::from_secs(3), Duration::from_secs(120));
    sidecar.stop();
    httpd.proc.stop(Duration::from_secs(10));

    // Score everything of the last hour, with each model.
    let store = Store::embedded(&ja4_store::chdb::default_library(), &dir.join("store"))?;
    let verifier = ja4_detect::verify::Verifier::new(
        ja4_detect::dns::Resolver::new(resolver)?,
        ja4_detect::verify::Domains::shipped(),
    );
    // The production way: trained on the window as it is (bots included, only those a rule
    // already names left out).
    let mixed = ja4_detect::scoring::train(&store, db, 1, ja4_ml::ModelParams::default(), 10)
        .context("training on the mixed window")?;
    let mut variants = Vec::new();
    for (training, model) in [("clean", &model), ("mixed", &mixed)] {
        let scored = ja4_detect::scoring::score(
            &store,
            db,
            1,
            model,
            Some(&verifier),
            &ja4_ml::verdict::Thresholds::default(),
        )?;
        ja4_detect::scoring::write(&store, db, "lab", &format!("lab-{training}"), &scored)?;
        variants.push(evaluate(training, model.trained_rows, &scored, &by_ip));
    }
    let time_to_detect_s = started.elapsed().as_secs_f64();

    // Phase 2: publish the decisions (the mixed model's, scored last, as production would)
    // and let every client come back to an httpd that enforces them.
    eprintln!("lab: enforcing the decisions…");
    let decisions = dir.join("decisions.bin");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    ja4_detect::decisions::publish(&store, db, &decisions, 1, now_ms)
        .context("publishing the decisions")?;
    drop(store);
    if ja4_testkit::is_root() {
        let _ = std::process::Command::new("chmod")
            .arg("644")
            .arg(&decisions)
            .status();
    }
    let phase2_us = ja4_testkit::clock::now_second_us();
    let enforce = format!(
        "JA4Mitigation Enforce\nJA4DecisionFile {}\nJA4Action bot block\nJA4Action suspicious challenge\nJA4ChallengeDifficulty 12",
        decisions.display()
    );
    let mut httpd = infra::start_httpd(&dir.join("httpd"), &opts.module, &socket, &enforce)?;
    let sidecar = infra::start_sidecar(&opts.sidecar, dir)?;
    std::thread::scope(|sc| {
        let hs: Vec<_> = Scenario::ALL
            .iter()
            .map(|&s| {
                let port = httpd.port;
                let quick = opts.quick;
                sc.spawn(move || run_scenario(dir, tools, s, 1, quick, port))
            })
            .collect();
        // A client turned away early is what we measure; its errors are not the lab's.
        for h in hs {
            let _ = h.join();
        }
    });
    let mut sidecar = sidecar;
    records += infra::settle(&sidecar, Duration::from_secs(3), Duration::from_secs(120));
    sidecar.stop();
    httpd.proc.stop(Duration::from_secs(10));
    let store = Store::embedded(&ja4_store::chdb::default_library(), &dir.join("store"))?;
    let mut mitigation = mitigation_report(&store, db, phase2_us, &by_ip)?;
    // The next scoring run sees who solved a challenge (a JavaScript engine, not a person).
    let rescored = ja4_detect::scoring::score(
        &store,
        db,
        1,
        &mixed,
        Some(&verifier),
        &ja4_ml::verdict::Thresholds::default(),
    )
    .context("scoring after enforcement")?;
    mitigation.solvers_rescored = rescored
        .iter()
        .filter(|c| c.client.challenges_solved > 0)
        .filter_map(|c| {
            let ip = match c.client.src_ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(c.client.src_ip, IpAddr::V4),
                v4 => v4,
            };
            let sc = by_ip.get(&ip)?;
            Some((sc.name(), sc.bot(), c.decision.verdict.as_str()))
        })
        .collect();

    let report = Report {
        variants,
        time_to_detect_s,
        records,
        mitigation,
    };
    if !opts.keep {
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(report)
}

/// Phase 2's requests by scenario and action, and the scrapers' time to their first refusal.
fn mitigation_report(
    store: &Store,
    db: &str,
    phase2_us: i64,
    by_ip: &HashMap<IpAddr, Scenario>,
) -> Result<MitigationReport> {
    let rows = store
        .query_rows::<(String, String, u64)>(&format!(
            "SELECT toString(client_ip), action, count() FROM {db}.http_logs \
             WHERE kind = 'request' AND ts >= fromUnixTimestamp64Micro({phase2_us}) \
             GROUP BY client_ip, action"
        ))
        .context("reading phase 2's actions")?;
    let ip_of = |s: &str| -> Option<IpAddr> {
        let ip: IpAddr = s.parse().ok()?;
        Some(match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        })
    };
    let mut per: HashMap<Scenario, ScenarioMitigation> = HashMap::new();
    for (ip, action, n) in &rows.rows {
        let Some(s) = ip_of(ip).and_then(|ip| by_ip.get(&ip)) else {
            continue;
        };
        let e = per.entry(*s).or_insert(ScenarioMitigation {
            name: s.name(),
            requests: 0,
            allowed: 0,
            challenged: 0,
            solved: 0,
            blocked: 0,
        });
        e.requests += n;
        match action.as_str() {
            "challenge" | "challenge_failed" => e.challenged += n,
            "challenge_passed" => e.solved += n,
            "block" | "tarpit" => e.blocked += n,
            _ => e.allowed += n,
        }
    }
    let scenarios: Vec<ScenarioMitigation> = Scenario::ALL
        .iter()
        .filter_map(|s| per.get(s).cloned())
        .collect();
    let sum = |f: &dyn Fn(&&ScenarioMitigation) -> bool, g: &dyn Fn(&ScenarioMitigation) -> u64| {
        scenarios.iter().filter(f).map(g).sum::<u64>()
    };
    let is = |name: &str| Scenario::ALL.iter().find(|s| s.name() == name).copied();
    let bot = |m: &&ScenarioMitigation| is(m.name).is_some_and(|s| s.bot());
    let person = |m: &&ScenarioMitigation| is(m.name).is_some_and(|s| s.people());
    let share = |k: u64, n: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    // Scrapers: the first request ever against the first refused one.
    let firsts = store
        .query_rows::<(String, i64, i64)>(&format!(
            "SELECT toString(client_ip), toUnixTimestamp64Micro(min(ts)), \
             toUnixTimestamp64Micro(minIf(ts, action IN ('block', 'tarpit', 'challenge'))) \
             FROM {db}.http_logs WHERE kind = 'request' GROUP BY client_ip \
             HAVING countIf(action IN ('block', 'tarpit', 'challenge')) > 0"
        ))
        .context("reading the first refusals")?;
    let mut waits: Vec<f64> = firsts
        .rows
        .iter()
        .filter(|(ip, _, _)| {
            ip_of(ip)
                .and_then(|ip| by_ip.get(&ip))
                .is_some_and(|s| s.bot() && s.fetches_pages())
        })
        .map(|(_, first, refused)| (refused - first) as f64 / 1e6)
        .collect();
    waits.sort_by(f64::total_cmp);
    Ok(MitigationReport {
        bot_requests_stopped: share(
            sum(&bot, &|m| m.challenged + m.blocked),
            sum(&bot, &|m| m.requests),
        ),
        people_requests_challenged: share(
            sum(&person, &|m| m.challenged + m.blocked),
            sum(&person, &|m| m.requests),
        ),
        time_to_first_block_s: waits.get(waits.len() / 2).copied(),
        scenarios,
        solvers_rescored: Vec::new(),
    })
}

/// One training variant's report from its scored clients; `by_ip` labels every address by
/// the scenario that drove it.
fn evaluate(
    training: &'static str,
    trained_clients: usize,
    scored: &[ja4_detect::scoring::ScoredClient],
    by_ip: &HashMap<IpAddr, Scenario>,
) -> VariantReport {
    // Per address: flagged if any of its clients is; its score is its highest.
    #[derive(Default)]
    struct Seen {
        flagged: bool,
        verified: bool,
        score: f64,
        campaign: i64,
        bot_score: u8,
    }
    let flagged = |r: &ja4_detect::scoring::ScoredClient| {
        matches!(r.decision.verdict.as_str(), "bot" | "suspicious")
    };
    let mut per: HashMap<IpAddr, Seen> = HashMap::new();
    for r in scored {
        let e = per.entry(r.client.src_ip).or_insert(Seen {
            campaign: -1,
            bot_score: 99,
            ..Default::default()
        });
        e.bot_score = e.bot_score.min(r.bot_score());
        e.flagged |= flagged(r);
        e.verified |= r.decision.verdict.as_str() == "verified_bot";
        e.score = e.score.max(r.score);
        if r.campaign_id >= 0 {
            e.campaign = r.campaign_id;
        }
    }
    let mut scenarios = Vec::new();
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    let (mut bots, mut bots_flagged, mut people, mut people_flagged) = (0, 0, 0, 0);
    for s in Scenario::ALL {
        let ips: Vec<&IpAddr> = by_ip
            .iter()
            .filter(|(_, v)| **v == s)
            .map(|(k, _)| k)
            .collect();
        let seen: Vec<&Seen> = ips.iter().filter_map(|ip| per.get(*ip)).collect();
        let n_flagged = seen.iter().filter(|x| x.flagged).count();
        let n = ips.len();
        let rate = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        if s.people() {
            people += n;
            people_flagged += n_flagged;
        } else if !s.legitimate() {
            bots += n;
            bots_flagged += n_flagged;
        }
        scenarios.push(ScenarioReport {
            name: s.name(),
            clients: n,
            flagged: n_flagged,
            detection_rate: (!s.legitimate()).then(|| rate(n_flagged)),
            false_positive_rate: s.legitimate().then(|| rate(n_flagged)),
            verified_rate: (s == Scenario::VerifiedGoodBots)
                .then(|| rate(seen.iter().filter(|x| x.verified).count())),
        });
        if s != Scenario::VerifiedGoodBots {
            for ip in &ips {
                scores.push(per.get(*ip).map_or(0.0, |x| {
                    if x.flagged {
                        1.0 + x.score
                    } else {
                        x.score
                    }
                }));
                labels.push(!s.legitimate());
            }
        }
    }
    let campaign: Vec<i64> = by_ip
        .iter()
        .filter(|(_, s)| **s == Scenario::DistributedCampaign)
        .map(|(ip, _)| per.get(ip).map_or(-1, |x| x.campaign))
        .collect();
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for c in campaign.iter().filter(|c| **c >= 0) {
        *counts.entry(*c).or_default() += 1;
    }
    let campaign_purity = if campaign.is_empty() {
        0.0
    } else {
        counts.values().copied().max().unwrap_or(0) as f64 / campaign.len() as f64
    };
    let finding = |r: &ja4_detect::scoring::ScoredClient, s: Scenario| Finding {
        scenario: s.name(),
        ip: r.client.src_ip.to_canonical().to_string(),
        ja4: r.client.ja4.clone(),
        verdict: r.decision.verdict.as_str().to_owned(),
        threat: r.decision.threat.as_str().to_owned(),
        score: r.score,
        consensus: r.consensus,
        reasons: r.decision.reasons.clone(),
    };
    let false_positives = scored
        .iter()
        .filter(|r| flagged(r))
        .filter_map(|r| {
            let s = *by_ip.get(&r.client.src_ip)?;
            s.legitimate().then(|| finding(r, s))
        })
        .collect();
    // Bots none of whose clients was flagged, each with what it was judged.
    let missed = scored
        .iter()
        .filter_map(|r| {
            let s = *by_ip.get(&r.client.src_ip)?;
            let caught = per.get(&r.client.src_ip).is_some_and(|x| x.flagged);
            (!s.legitimate() && !caught).then(|| finding(r, s))
        })
        .collect();
    let bands: [(&'static str, std::ops::RangeInclusive<u8>); 5] = [
        ("1", 1..=1),
        ("2-9", 2..=9),
        ("10-29", 10..=29),
        ("30-59", 30..=59),
        ("60-99", 60..=99),
    ];
    let bot_score_bands = bands
        .into_iter()
        .map(|(band, range)| {
            let count = |pick: fn(Scenario) -> bool| {
                by_ip
                    .iter()
                    .filter(|(ip, s)| {
                        pick(**s) && per.get(*ip).is_some_and(|x| range.contains(&x.bot_score))
                    })
                    .count()
            };
            Band {
                band,
                bots: count(|s| !s.legitimate()),
                people: count(Scenario::people),
            }
        })
        .collect();
    let share = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    VariantReport {
        training,
        trained_clients,
        scenarios,
        bots_detected: share(bots_flagged, bots),
        people_flagged: share(people_flagged, people),
        false_positives,
        missed,
        roc_auc: ja4_ml::metrics::roc_auc(&scores, &labels),
        campaign_purity,
        bot_score_bands,
    }
}

/// The report as tables, one per training variant.
pub(crate) fn table(r: &Report) -> String {
    let mut s = String::new();
    let pct = |v: Option<f64>| v.map_or("-".to_owned(), |x| format!("{:.1}%", x * 100.0));
    for v in &r.variants {
        s.push_str(&format!(
            "training: {} ({} clients)\n{:<24} {:>7} {:>7} {:>10} {:>10} {:>10}\n",
            v.training,
            v.trained_clients,
            "scenario",
            "clients",
            "flagged",
            "detected",
            "false_pos",
            "verified"
        ));
        for sc in &v.scenarios {
            s.push_str(&format!(
                "{:<24} {:>7} {:>7} {:>10} {:>10} {:>10}\n",
                sc.name,
                sc.clients,
                sc.flagged,
                pct(sc.detection_rate),
                pct(sc.false_positive_rate),
                pct(sc.verified_rate)
            ));
        }
        s.push_str(&format!(
            "bots detected {:.1}%  people flagged {:.1}%  roc_auc {:.4}  campaign_purity {:.2}\n",
            v.bots_detected * 100.0,
            v.people_flagged * 100.0,
            v.roc_auc,
            v.campaign_purity
        ));
        s.push_str("bot score (lowest per address): ");
        s.push_str(
            &v.bot_score_bands
                .iter()
                .map(|b| format!("{} → {} bots, {} people", b.band, b.bots, b.people))
                .collect::<Vec<_>>()
                .join("; "),
        );
        s.push('\n');
        for (what, list) in [
            ("false positive", &v.false_positives),
            ("missed", &v.missed),
        ] {
            for f in list {
                s.push_str(&format!(
                    "{what}: {} {} {} {} ({} threat, score {:.4}, consensus {:.4}): {}\n",
                    f.scenario,
                    f.ip,
                    f.ja4,
                    f.verdict,
                    f.threat,
                    f.score,
                    f.consensus,
                    f.reasons.join("; ")
                ));
            }
        }
        s.push('\n');
    }
    let m = &r.mitigation;
    s.push_str(&format!(
        "enforcing the decisions (phase 2)\n{:<24} {:>8} {:>8} {:>10} {:>7} {:>8}\n",
        "scenario", "requests", "allowed", "challenged", "solved", "blocked"
    ));
    for sc in &m.scenarios {
        s.push_str(&format!(
            "{:<24} {:>8} {:>8} {:>10} {:>7} {:>8}\n",
            sc.name, sc.requests, sc.allowed, sc.challenged, sc.solved, sc.blocked
        ));
    }
    s.push_str(&format!(
        "bot requests stopped {:.1}%  people's requests challenged {:.2}%  scrapers' first refusal after {}\n\n",
        m.bot_requests_stopped * 100.0,
        m.people_requests_challenged * 100.0,
        m.time_to_first_block_s
            .map_or("-".to_owned(), |t| format!("{t:.1}s (median)"))
    ));
    if !m.solvers_rescored.is_empty() {
        s.push_str("challenge solvers at the next scoring run:");
        for (name, _, verdict) in &m.solvers_rescored {
            s.push_str(&format!(" {name}={verdict}"));
        }
        s.push_str("\n\n");
    }
    s.push_str(&format!(
        "time_to_detect {:.1}s  records {}\n",
        r.time_to_detect_s, r.records
    ));
    s
}
