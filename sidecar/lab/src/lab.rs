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

use crate::clients::{self, CHROME_UA, GOOGLEBOT_UA};
use crate::infra;
use ja4_store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    Humans,
    VerifiedGoodBots,
    SpoofedCrawlers,
    ScrapersCurl,
    ScrapersPython,
    ScrapersJava,
    ScrapersGo,
    CredentialStuffing,
    PathFuzzers,
    BrowserUaSpoofer,
    DistributedCampaign,
    HandshakeOnly,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 12] = [
        Scenario::Humans,
        Scenario::VerifiedGoodBots,
        Scenario::SpoofedCrawlers,
        Scenario::ScrapersCurl,
        Scenario::ScrapersPython,
        Scenario::ScrapersJava,
        Scenario::ScrapersGo,
        Scenario::CredentialStuffing,
        Scenario::PathFuzzers,
        Scenario::BrowserUaSpoofer,
        Scenario::DistributedCampaign,
        Scenario::HandshakeOnly,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Humans => "humans",
            Scenario::VerifiedGoodBots => "verified_good_bots",
            Scenario::SpoofedCrawlers => "spoofed_crawlers",
            Scenario::ScrapersCurl => "scrapers_curl",
            Scenario::ScrapersPython => "scrapers_python",
            Scenario::ScrapersJava => "scrapers_java",
            Scenario::ScrapersGo => "scrapers_go",
            Scenario::CredentialStuffing => "credential_stuffing",
            Scenario::PathFuzzers => "path_fuzzers",
            Scenario::BrowserUaSpoofer => "browser_ua_spoofer",
            Scenario::DistributedCampaign => "distributed_campaign",
            Scenario::HandshakeOnly => "handshake_only",
        }
    }

    /// Clients that should not be flagged.
    pub(crate) fn legitimate(self) -> bool {
        matches!(self, Scenario::Humans | Scenario::VerifiedGoodBots)
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

    /// Clients of this scenario in phase 1 (people also browse in phase 0, the baseline:
    /// [`BASELINE_PEOPLE`]). The full run's 40 + 60 people make a single person flagged 1%,
    /// so the ≤ 1% target can be read off one run.
    fn clients(self, quick: bool) -> usize {
        let (q, f) = match self {
            Scenario::Humans => (20, 60),
            Scenario::VerifiedGoodBots | Scenario::SpoofedCrawlers => (3, 5),
            Scenario::ScrapersCurl
            | Scenario::ScrapersPython
            | Scenario::ScrapersJava
            | Scenario::ScrapersGo => (2, 4),
            Scenario::CredentialStuffing | Scenario::PathFuzzers | Scenario::BrowserUaSpoofer => {
                (2, 4)
            }
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

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub scenarios: Vec<ScenarioReport>,
    /// Every person or genuine crawler flagged, with why (what to look at when the
    /// false-positive rate moves).
    pub false_positives: Vec<FalsePositive>,
    pub roc_auc: f64,
    pub campaign_purity: f64,
    pub time_to_detect_s: f64,
    pub baseline_clients: usize,
    pub records: u64,
}

/// One flagged row of a client that should not have been.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FalsePositive {
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
    let parallel = if s == Scenario::Humans { 4 } else { 8 };
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
                        match s {
                            Scenario::Humans => clients::chromium(
                                dir,
                                ip,
                                port,
                                langs[i % langs.len()],
                                &pages(3 + i % 3, i),
                                Duration::from_millis(300 + (i as u64 % 5) * 150),
                            ),
                            Scenario::VerifiedGoodBots | Scenario::SpoofedCrawlers => {
                                clients::curl(ip, port, GOOGLEBOT_UA, "GET", &pages(12, i))
                            }
                            Scenario::ScrapersCurl => {
                                clients::curl(ip, port, "curl/7.88.1", "GET", &seq(60, "/search.html?q={i}"))
                            }
                            Scenario::ScrapersPython => clients::python(dir, "get", ip, port, "python-requests/2.31.0", 60, "/search.html?page={i}"),
                            Scenario::ScrapersJava => clients::java(dir, ip, port, "Java/17.0.15", 60, "/search.html?item={i}"),
                            Scenario::ScrapersGo => clients::go(dir, ip, port, "Go-http-client/2.0", 60, "/search.html?sku={i}"),
                            Scenario::CredentialStuffing => clients::python(dir, "post", ip, port, CHROME_UA, 40, "/login.html"),
                            Scenario::PathFuzzers => {
                                clients::curl(ip, port, "Mozilla/5.0 (compatible; scanner)", "GET", &seq(60, "/.{i}/wp-admin.php"))?;
                                clients::curl(ip, port, "Mozilla/5.0 (compatible; scanner)", "PROPFIND", &seq(10, "/dav{i}/"))
                            }
                            Scenario::BrowserUaSpoofer => clients::python(dir, "get", ip, port, CHROME_UA, 30, "/p/{i}.html"),
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
    let mut httpd = infra::start_httpd(&dir.join("httpd"), &opts.module, &socket)?;

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
    let baseline = run_scenario(dir, Scenario::Humans, 0, opts.quick, httpd.port)?;
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
                sc.spawn(move || run_scenario(dir, s, 1, quick, port))
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

    // Score everything of the last hour.
    let store = Store::embedded(&ja4_store::chdb::default_library(), &dir.join("store"))?;
    let verifier = ja4_detect::verify::Verifier::new(
        ja4_detect::dns::Resolver::new(resolver)?,
        ja4_detect::verify::Domains::shipped(),
    );
    let scored = ja4_detect::scoring::score(
        &store,
        db,
        1,
        &model,
        Some(&verifier),
        &ja4_ml::verdict::Thresholds::default(),
    )?;
    ja4_detect::scoring::write(&store, db, "lab", "lab", &scored)?;
    let time_to_detect_s = started.elapsed().as_secs_f64();

    // Per client: flagged if any of its rows is; its score is its highest.
    #[derive(Default)]
    struct Seen {
        flagged: bool,
        verified: bool,
        score: f64,
        campaign: i64,
    }
    let mut per: HashMap<IpAddr, Seen> = HashMap::new();
    for r in &scored {
        let e = per.entry(r.client.src_ip).or_insert(Seen {
            campaign: -1,
            ..Default::default()
        });
        e.flagged |= matches!(r.decision.verdict.as_str(), "bot" | "suspicious");
        e.verified |= r.decision.verdict.as_str() == "verified_bot";
        e.score = e.score.max(r.score);
        if r.campaign_id >= 0 {
            e.campaign = r.campaign_id;
        }
    }
    let mut scenarios = Vec::new();
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for s in Scenario::ALL {
        let ips: Vec<&IpAddr> = by_ip
            .iter()
            .filter(|(_, v)| **v == s)
            .map(|(k, _)| k)
            .collect();
        let seen: Vec<&Seen> = ips.iter().filter_map(|ip| per.get(*ip)).collect();
        let flagged = seen.iter().filter(|x| x.flagged).count();
        let n = ips.len();
        let rate = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        scenarios.push(ScenarioReport {
            name: s.name(),
            clients: n,
            flagged,
            detection_rate: (!s.legitimate()).then(|| rate(flagged)),
            false_positive_rate: s.legitimate().then(|| rate(flagged)),
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
    let false_positives = scored
        .iter()
        .filter(|r| matches!(r.decision.verdict.as_str(), "bot" | "suspicious"))
        .filter_map(|r| {
            let s = by_ip.get(&r.client.src_ip)?;
            s.legitimate().then(|| FalsePositive {
                scenario: s.name(),
                ip: r.client.src_ip.to_canonical().to_string(),
                ja4: r.client.ja4.clone(),
                verdict: r.decision.verdict.as_str().to_owned(),
                threat: r.decision.threat.as_str().to_owned(),
                score: r.score,
                consensus: r.consensus,
                reasons: r.decision.reasons.clone(),
            })
        })
        .collect();
    let report = Report {
        scenarios,
        false_positives,
        roc_auc: ja4_ml::metrics::roc_auc(&scores, &labels),
        campaign_purity,
        time_to_detect_s,
        baseline_clients: model.trained_rows,
        records,
    };
    if !opts.keep {
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(report)
}

/// The report as a table.
pub(crate) fn table(r: &Report) -> String {
    let mut s = format!(
        "{:<22} {:>7} {:>7} {:>10} {:>10} {:>10}\n",
        "scenario", "clients", "flagged", "detected", "false_pos", "verified"
    );
    let pct = |v: Option<f64>| v.map_or("-".to_owned(), |x| format!("{:.1}%", x * 100.0));
    for sc in &r.scenarios {
        s.push_str(&format!(
            "{:<22} {:>7} {:>7} {:>10} {:>10} {:>10}\n",
            sc.name,
            sc.clients,
            sc.flagged,
            pct(sc.detection_rate),
            pct(sc.false_positive_rate),
            pct(sc.verified_rate)
        ));
    }
    s.push_str(&format!(
        "roc_auc {:.4}  campaign_purity {:.2}  time_to_detect {:.1}s  baseline {} clients  records {}\n",
        r.roc_auc, r.campaign_purity, r.time_to_detect_s, r.baseline_clients, r.records
    ));
    for f in &r.false_positives {
        s.push_str(&format!(
            "false positive: {} {} {} ({} threat, score {:.4}, consensus {:.4}): {}\n",
            f.scenario,
            f.ip,
            f.verdict,
            f.threat,
            f.score,
            f.consensus,
            f.reasons.join("; ")
        ));
    }
    s
}
