//! `ja4-sidecar train` and `score`: the models on the store's traffic.
//!
//! Owns: reading the feature rows of a window (`view_ai_features(hours)`, one definition of
//! every feature in SQL) with the reference facts each decision needs, training on the clean
//! part of it (no crawler rule, known bot address or bot JA4), scoring, crawler verification,
//! the verdicts, and writing `ml_all_scores` and `ml_detected_anomalies`.
//! Never: lets the autoencoder failing stop scoring (the model falls back to the forest and
//! says so); never writes a detection without its reasons.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{bail, Context, Result};
use ja4_ml::classifier::Classifier;
use ja4_ml::verdict::{self, Claim, Facts, Thresholds, Verdict};
use ja4_ml::{features, Matrix, Model, ModelParams};

use crate::verify::{self, Verifier};
use ja4_store::rowbinary::Rows;
use ja4_store::Store;

/// Every model feature's name, in the models' column order: the registry's
/// ([`ja4_ml::features::FEATURES`]).
pub fn feature_names() -> Vec<String> {
    features::names()
}

/// Width of a feature row.
pub fn n_features() -> usize {
    features::len()
}

/// One client in the window: an address, a JA4 family ([`ja4_ml::identity`]) and a host,
/// over all its connections.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's address.
    pub src_ip: IpAddr,
    /// Its most frequent exact JA4 (empty without TLS): what labels and lists look up.
    pub ja4: String,
    /// Its JA4 family, the identity it is scored under.
    pub ja4_family: String,
    /// Every exact JA4 it showed (at most 16).
    pub ja4_variants: Vec<String>,
    /// The host it asked for.
    pub host: String,
    /// Its records in the window.
    pub hits: u64,
    /// Rows that were requests (the rest are connections without one).
    pub requests: u64,
    /// Challenges it solved (`action = 'challenge_passed'`).
    pub challenges_solved: u64,
    /// Share of its requests whose HTTP/2 stack contradicts its TLS stack or user agent
    /// (mod_ja4's `tls-h2`, `ua-h2-library`, `ua-h2-browser` flags).
    pub h2_stack_mismatch_ratio: f64,
    /// One of its User-Agents (a sample).
    pub user_agent: String,
    /// Its autonomous system (0: unknown).
    pub asn: u32,
    /// Its country.
    pub country: String,
    /// The crawler it claims to be (from its User-Agent), if any.
    pub crawler_name: String,
    /// What the crawler rules say to do with it.
    pub crawler_action: String,
    /// A known bot network it comes from, if any.
    pub bot_ip_name: String,
    /// The application its JA4 belongs to (reference data).
    pub ja4_application: String,
    /// That application's category.
    pub ja4_category: String,
    /// Whether that application is a bot.
    pub ja4_is_bot: bool,
}

impl Client {
    /// Traffic clean enough to learn "normal" from: clients that made requests and that no
    /// rule already names automation — no crawler rule, known bot address or bot JA4, no
    /// tool's user agent, no library TLS stack (a window's scrapers must not become the
    /// model's idea of normal).
    pub fn is_clean(&self) -> bool {
        self.requests > 0
            && self.crawler_name.is_empty()
            && self.bot_ip_name.is_empty()
            && !self.ja4_is_bot
            && verdict::declared_tool(&self.user_agent).is_none()
            && !matches!(self.ja4_category.as_str(), "library" | "tool")
    }

    /// It presents a browser: a browser's user agent on a browser's (or an unknown) stack.
    pub fn presents_browser(&self) -> bool {
        verdict::ua_claims_browser(&self.user_agent)
            && matches!(self.ja4_category.as_str(), "browser" | "")
    }
}

/// The feature rows of the last `hours` hours.
pub struct Window {
    /// The clients, in row order.
    pub clients: Vec<Client>,
    /// `clients.len() × n_features()`, row-major.
    pub values: Vec<f64>,
    /// Rows of the store that did not read (counted, logged, left out of the run).
    pub skipped: usize,
}

impl Window {
    /// The feature rows as a matrix.
    pub fn matrix(&self) -> Result<Matrix<'_>> {
        Ok(Matrix::new(&self.values, n_features())?)
    }
}

/// One row of `view_ai_features` with the reference facts, as the engine writes it.
#[derive(serde::Deserialize)]
struct FeatureRow {
    src_ip: String,
    ja4_family: String,
    main_ja4: String,
    ja4_variants: Vec<String>,
    /// `hex(host)`: the host's bytes, whatever the client sent (see [`crate::host`]).
    host_hex: String,
    hits: u64,
    requests: u64,
    user_agent: String,
    asn: u32,
    country: String,
    crawler_name: String,
    crawler_action: String,
    bot_ip_name: String,
    ja4_application: String,
    ja4_category: String,
    ja4_is_bot: u8,
    features: Vec<f64>,
}

/// The host key of a `hex(host)` value.
fn host_key(hex: &str) -> Option<String> {
    crate::host::from_hex(hex).map(|b| crate::host::key(&b))
}

/// Reads the window from the store. Rows are read typed ([`Store::query_rows`]): whatever a
/// client put in a string reaches us as that string; a row that does not read is skipped and
/// counted in [`Window::skipped`], never fatal to the run.
pub fn read_window(store: &Store, db: &str, hours: u32) -> Result<Window> {
    // The view computes the registry's per-client features under their names.
    let feats: Vec<&str> = features::sql_features().map(|(f, _)| f.name).collect();
    let n_sql = feats.len();
    let sql = format!(
        "SELECT toString(src_ip), toString(ja4_family), toString(main_ja4), arrayMap(j -> toString(j), ja4_variants), hex(host), hits, requests, sample_user_agent, asn, toString(country), \
         dictGetOrDefault('{db}.dict_crawler_ua', 'name', sample_user_agent, ''), \
         dictGetOrDefault('{db}.dict_crawler_ua', 'action', sample_user_agent, ''), \
         dictGetOrDefault('{db}.dict_bot_ips', 'bot_name', src_ip, ''), \
         dictGetOrDefault('{db}.dict_fingerprints', 'application', tuple('ja4', toString(main_ja4)), dictGetOrDefault('{db}.dict_fingerprints', 'application', tuple('ja4_ab', substring(toString(main_ja4), 1, 23)), dictGetOrDefault('{db}.dict_fingerprints', 'application', tuple('ja4_family', toString(ja4_family)), ''))), \
         dictGetOrDefault('{db}.dict_fingerprints', 'category', tuple('ja4', toString(main_ja4)), dictGetOrDefault('{db}.dict_fingerprints', 'category', tuple('ja4_ab', substring(toString(main_ja4), 1, 23)), dictGetOrDefault('{db}.dict_fingerprints', 'category', tuple('ja4_family', toString(ja4_family)), ''))), \
         arrayMax(j -> dictGetOrDefault('{db}.dict_bot_ja4', 'is_bot', toString(j), toUInt8(0)), ja4_variants), [{}] \
         FROM {db}.view_ai_features(hours = {hours}) ORDER BY src_ip, ja4_family, host",
        feats.join(", ")
    );
    let read = store
        .query_rows::<FeatureRow>(&sql)
        .context("reading the feature window")?;
    let mut skipped = read.skipped;
    let mut first_error = read.first_error;
    let mut clients = Vec::new();
    let mut sql_values = Vec::new();
    let mut keys = Vec::new();
    for r in read.rows {
        let (Ok(ip), Some(host), true) = (
            r.src_ip.parse::<IpAddr>(),
            host_key(&r.host_hex),
            r.features.len() == n_sql,
        ) else {
            skipped += 1;
            first_error.get_or_insert_with(|| {
                format!("row of {} with {} features", r.src_ip, r.features.len())
            });
            continue;
        };
        keys.push((r.src_ip, r.ja4_family.clone(), host.clone()));
        clients.push(Client {
            src_ip: ip.to_canonical(),
            ja4: r.main_ja4,
            ja4_family: r.ja4_family,
            ja4_variants: r.ja4_variants,
            host,
            hits: r.hits,
            requests: r.requests,
            challenges_solved: 0,
            h2_stack_mismatch_ratio: 0.0,
            user_agent: r.user_agent,
            asn: r.asn,
            country: r.country,
            crawler_name: r.crawler_name,
            crawler_action: r.crawler_action,
            bot_ip_name: r.bot_ip_name,
            ja4_application: r.ja4_application,
            ja4_category: r.ja4_category,
            ja4_is_bot: r.ja4_is_bot == 1,
        });
        sql_values.extend_from_slice(&r.features);
    }
    // Header orders per client, for the cross-client features.
    let orders = store
        .query_rows::<(String, String, String, String, u64)>(&format!(
            "SELECT toString(client_ip), toString({family}) AS family, hex(if(vhost = '', tls_sni, toString(vhost))) AS host, toString(ja4h), count() \
             FROM {db}.http_logs WHERE ts >= now64(6) - toIntervalHour({hours}) AND kind = 'request' \
             GROUP BY client_ip, family, host, ja4h",
            family = ja4_ml::identity::ja4_family_sql("ja4")
        ))
        .context("reading header orders")?;
    skipped += orders.skipped;
    let mut ja4h: std::collections::HashMap<(String, String, String), Vec<(String, u64)>> =
        Default::default();
    for (ip, ja4, host_hex, h, n) in orders.rows {
        if let Some(host) = host_key(&host_hex) {
            ja4h.entry((ip, ja4, host)).or_default().push((h, n));
        }
    }
    // Verdict facts from mod_ja4's records (not model features): challenges each client
    // solved, and the share of its requests whose HTTP/2 stack contradicts its TLS stack or
    // user agent (consistency flags 4, 8, 16).
    let facts = store
        .query_rows::<(String, String, String, u64, u64)>(&format!(
            "SELECT toString(client_ip), toString({family}) AS family, hex(if(vhost = '', tls_sni, toString(vhost))) AS host, \
             countIf(action = 'challenge_passed'), countIf(bitAnd(consistency_flags, 28) != 0 AND kind = 'request') \
             FROM {db}.http_logs WHERE ts >= now64(6) - toIntervalHour({hours}) \
             AND (action = 'challenge_passed' OR consistency_flags != 0) \
             GROUP BY client_ip, family, host",
            family = ja4_ml::identity::ja4_family_sql("ja4")
        ))
        .context("reading solved challenges and consistency flags")?;
    skipped += facts.skipped;
    let facts: std::collections::HashMap<(String, String, String), (u64, u64)> = facts
        .rows
        .into_iter()
        .filter_map(|(ip, fam, host_hex, n, h2)| Some(((ip, fam, host_key(&host_hex)?), (n, h2))))
        .collect();
    for (c, k) in clients.iter_mut().zip(&keys) {
        if let Some(&(solved, h2_flagged)) = facts.get(k) {
            c.challenges_solved = solved;
            c.h2_stack_mismatch_ratio = h2_flagged as f64 / c.requests.max(1) as f64;
        }
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            first_error = first_error.as_deref().unwrap_or(""),
            "feature rows that did not read were skipped"
        );
    }
    let ttl = features::index("ttl_mean")
        .filter(|&i| i < n_sql)
        .unwrap_or(0);
    let none = Vec::new();
    let facts: Vec<features::cross::ClientFacts> = clients
        .iter()
        .zip(&keys)
        .enumerate()
        .map(|(i, (c, k))| features::cross::ClientFacts {
            ip: c.src_ip,
            ja4: &c.ja4_family,
            asn: c.asn,
            user_agent: &c.user_agent,
            ttl_mean: sql_values.get(i * n_sql + ttl).copied().unwrap_or(0.0),
            ja4h: ja4h.get(k).unwrap_or(&none),
        })
        .collect();
    let cross = features::cross::cross_client(&facts);
    let mut values = Vec::with_capacity(clients.len() * n_features());
    for (row, x) in sql_values.chunks(n_sql.max(1)).zip(&cross) {
        values.extend_from_slice(row);
        values.extend_from_slice(x);
    }
    Ok(Window {
        clients,
        values,
        skipped,
    })
}

/// Trains a model on the clean clients of the last `hours` hours.
pub fn train(
    store: &Store,
    db: &str,
    hours: u32,
    params: ModelParams,
    min_clients: usize,
) -> Result<Model> {
    let w = read_window(store, db, hours)?;
    let n = n_features();
    let names = feature_names();
    let row = |i: usize| &w.values[i * n..(i + 1) * n];
    let candidates: Vec<usize> = (0..w.clients.len())
        .filter(|&i| w.clients[i].is_clean())
        .collect();
    // What this site's people do, from the clients that present a browser: production
    // windows hold bots, but browser-presenting ones are a minority of those.
    let browsers: Vec<f64> = candidates
        .iter()
        .filter(|&&i| w.clients[i].presents_browser())
        .flat_map(|&i| row(i).iter().copied())
        .collect();
    let presence = ja4_ml::model::presence(Matrix::new(&browsers, n)?);
    // Browsers that fetched enough pages and miss what people do are left out: they are
    // what the rules will flag, and the model must not learn them as normal.
    let pages = |i: usize| {
        let asset = features::index("asset_ratio").map_or(0.0, |j| row(i)[j]);
        w.clients[i].requests as f64 * (1.0 - asset)
    };
    let misses = |i: usize| {
        BEHAVIOURS.iter().any(|name| {
            let Some(j) = features::index(name) else {
                return false;
            };
            presence
                .get(j)
                .is_some_and(|&p| p >= verdict::EXPECTED_PRESENCE)
                && row(i)[j] <= 0.0
        })
    };
    let keep: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| {
            !(w.clients[i].presents_browser()
                && pages(i) >= verdict::MIN_PAGES_FOR_BEHAVIOUR
                && misses(i))
        })
        .collect();
    let clean: Vec<f64> = keep.iter().flat_map(|&i| row(i).iter().copied()).collect();
    let clients = keep.len();
    if clients < min_clients {
        bail!(
            "{clients} clean clients in the last {hours} h ({} left out as browsers without \
             people's behaviour): at least {min_clients} are needed to train",
            candidates.len() - clients
        );
    }
    let mut model = Model::train(Matrix::new(&clean, n)?, &names, params)?;
    if !browsers.is_empty() {
        model.presence = presence;
    }
    Ok(model)
}

/// The behaviour features whose absence counts against a client that presents a browser,
/// when most of the site's people show them.
const BEHAVIOURS: [&str; 2] = ["asset_ratio", "page_referer_ratio"];

/// One scored client.
#[derive(Debug, Clone)]
pub struct ScoredClient {
    /// The client.
    pub client: Client,
    /// The isolation forest's anomaly score.
    pub forest: f64,
    /// Autoencoder reconstruction error.
    pub ae_error: f64,
    /// Its rank against the baseline (0–1, NaN without an autoencoder).
    pub ae_rank: f64,
    /// The combined score of the detectors.
    pub score: f64,
    /// The detectors' consensus (see `ja4_ml::model::Scored::consensus`).
    pub consensus: f64,
    /// What it is judged to be, and why.
    pub decision: verdict::Decision,
    /// The features that moved the score most, with their weights.
    pub top_features: Vec<(String, f64)>,
    /// Campaign of flagged clients that behave alike on one TLS stack (−1: none).
    pub campaign_id: i64,
}

impl ScoredClient {
    /// Its bot score, 1–99 ([`verdict::bot_score`]).
    pub fn bot_score(&self) -> u8 {
        verdict::bot_score(self.decision.verdict, self.decision.threat, self.score)
    }
}

/// Scores the window with `model`, verifying crawler claims with `verifier`.
pub fn score(
    store: &Store,
    db: &str,
    hours: u32,
    model: &Model,
    verifier: Option<&Verifier>,
    t: &Thresholds,
) -> Result<Vec<ScoredClient>> {
    score_with(store, db, hours, model, None, verifier, t)
}

/// [`score`], with the supervised classifier's opinion when one was trained.
pub fn score_with(
    store: &Store,
    db: &str,
    hours: u32,
    model: &Model,
    classifier: Option<&Classifier>,
    verifier: Option<&Verifier>,
    t: &Thresholds,
) -> Result<Vec<ScoredClient>> {
    let w = read_window(store, db, hours)?;
    if w.clients.is_empty() {
        return Ok(Vec::new());
    }
    let Window {
        clients, values, ..
    } = w;
    let lists = crate::lists::AccessLists::load(store, db)?;
    let m = Matrix::new(&values, n_features())?;
    let names = feature_names();
    let scored = model.score(m, &names)?;
    // A failing classifier leaves the unsupervised verdicts standing (logged).
    let proba = classifier.and_then(|c| match c.proba(m) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "the classifier failed: scoring without it");
            None
        }
    });
    let idx = |name: &str| names.iter().position(|n| n == name).unwrap_or(0);
    // Behaviour this site's people show (most of the baseline does it): its absence in a
    // client that presents a browser is evidence.
    let expected: Vec<(&'static str, usize)> = BEHAVIOURS
        .into_iter()
        .filter(|n| {
            model
                .presence(n)
                .is_some_and(|p| p >= verdict::EXPECTED_PRESENCE)
        })
        .map(|n| (n, idx(n)))
        .collect();
    let (mb, al, ck, rf, sf) = (
        idx("modern_browser_score"),
        idx("accept_language_ratio"),
        idx("cookie_ratio"),
        idx("referer_ratio"),
        idx("sec_fetch_ratio"),
    );
    // Requests per address across its rows: a connection without a request from an address
    // that made requests (a browser's spare or speculative connection, under another JA4) is
    // not judged on its own.
    let mut requests_by_ip: std::collections::HashMap<IpAddr, u64> = Default::default();
    for c in &clients {
        *requests_by_ip.entry(c.src_ip).or_default() += c.requests;
    }
    let mut out = Vec::with_capacity(clients.len());
    for (i, (c, s)) in clients.into_iter().zip(scored).enumerate() {
        let row = m.row(i);
        let top: Vec<(String, f64)> = model.explain(row).into_iter().take(5).collect();
        let claim = if c.crawler_action == "verify" {
            match verifier {
                Some(v) => {
                    match v.verify(c.src_ip, &c.crawler_name, c.bot_ip_name == c.crawler_name) {
                        verify::Verdict::Range => Claim::Verified("published range".into()),
                        verify::Verdict::Dns(h) => Claim::Verified(format!("reverse DNS {h}")),
                        verify::Verdict::Spoofed(why) => Claim::Spoofed(why),
                        verify::Verdict::Unknown(why) => Claim::Undecided(why),
                    }
                }
                None if c.bot_ip_name == c.crawler_name => {
                    Claim::Verified("published range".into())
                }
                None => Claim::Spoofed(format!(
                    "{} is not in its published ranges (no resolver configured)",
                    c.src_ip
                )),
            }
        } else {
            Claim::None
        };
        let facts = Facts {
            score: s.score,
            consensus: s.consensus,
            crawler_rule: (!c.crawler_name.is_empty())
                .then(|| (c.crawler_name.clone(), c.crawler_action.clone())),
            claim,
            ja4_category: c.ja4_category.clone(),
            ja4_application: c.ja4_application.clone(),
            ua_claims_browser: verdict::ua_claims_browser(&c.user_agent),
            user_agent: c.user_agent.clone(),
            modern_browser_score: row[mb],
            accept_language_ratio: row[al],
            cookie_or_referer_ratio: row[ck].max(row[rf]),
            sec_fetch_ratio: row[sf],
            pages: c.requests as f64 * (1.0 - row[idx("asset_ratio")]),
            missing_behaviour: expected
                .iter()
                .filter(|(_, j)| row[*j] <= 0.0)
                .map(|(n, _)| *n)
                .collect(),
            contradictions: contradictions(
                &c.user_agent,
                row[idx("ttl_mean")],
                row[idx("ua_ch_mismatch_ratio")],
            ),
            top_features: top.clone(),
            requests: c.requests,
            orphans: c.hits.saturating_sub(c.requests),
            error_4xx_ratio: row[idx("error_4xx_ratio")],
            challenges_solved: c.challenges_solved,
            h2_stack_mismatch_ratio: c.h2_stack_mismatch_ratio,
        };
        let decision = if c.requests == 0 && requests_by_ip.get(&c.src_ip).is_some_and(|&r| r > 0) {
            verdict::Decision {
                verdict: Verdict::Human,
                threat: verdict::Threat::None,
                reasons: vec![format!(
                    "{} connection(s) without a request from an address that made requests",
                    c.hits
                )],
            }
        } else {
            verdict::decide(&facts, t)
        };
        let decision = match (&proba, classifier) {
            (Some(p), Some(cl)) => classifier_opinion(decision, p[i], cl),
            _ => decision,
        };
        let decision = lists.apply(c.src_ip, &c.ja4_variants, decision);
        out.push(ScoredClient {
            client: c,
            forest: s.forest,
            ae_error: s.ae_error,
            ae_rank: s.ae_rank,
            score: s.score,
            consensus: s.consensus,
            decision,
            top_features: top,
            campaign_id: -1,
        });
    }
    assign_campaigns(model, &m, &mut out);
    Ok(out)
}

/// What a client's TCP stack and headers contradict in what its user agent claims: the
/// SYN's initial TTL against the OS the user agent names, and client hints (only Chromium
/// sends them) under another browser's user agent.
pub fn contradictions(user_agent: &str, ttl_mean: f64, ua_ch_mismatch_ratio: f64) -> Vec<String> {
    use features::cross::{claimed_os_ttl, initial_ttl};
    let mut out = Vec::new();
    let seen = initial_ttl(ttl_mean);
    if let Some(claim) = claimed_os_ttl(user_agent) {
        if seen != 0 && seen != claim {
            out.push(format!(
                "its user agent names an OS that starts at TTL {claim}, its SYNs start at {seen}"
            ));
        }
    }
    if ua_ch_mismatch_ratio > 0.0 {
        out.push(format!(
            "client hints (Chromium only) under a non-Chromium user agent on {:.0}% of requests",
            ua_ch_mismatch_ratio * 100.0
        ));
    }
    out
}

/// The classifier's say on a verdict: a client much like confirmed bots is raised (human →
/// suspicious from p ≥ 0.7, human or suspicious → bot from p ≥ 0.9), one much like the
/// analysts' false positives (p ≤ 0.1) is cleared from suspicious. Verdicts from rules
/// (crawlers, spoofing, legitimate browsers, bots) stay.
pub fn classifier_opinion(d: verdict::Decision, p: f64, c: &Classifier) -> verdict::Decision {
    use verdict::{Decision, Threat};
    let why = |what: &str| {
        format!(
            "{what}: classifier p(bot) = {p:.2} (trained on {} bots, {} non-bots)",
            c.positives, c.negatives
        )
    };
    let with = |verdict, threat, reason: String, mut reasons: Vec<String>| {
        reasons.insert(0, reason);
        Decision {
            verdict,
            threat,
            reasons,
        }
    };
    match d.verdict {
        Verdict::Human | Verdict::Suspicious if p >= 0.9 => with(
            Verdict::Bot,
            d.threat.max(if p >= 0.97 {
                Threat::High
            } else {
                Threat::Medium
            }),
            why("like confirmed bots"),
            d.reasons,
        ),
        Verdict::Human if p >= 0.7 => with(
            Verdict::Suspicious,
            d.threat.max(Threat::Low),
            why("resembles confirmed bots"),
            d.reasons,
        ),
        Verdict::Suspicious if p <= 0.1 => with(
            Verdict::Human,
            Threat::None,
            why("like analysts' false positives"),
            d.reasons,
        ),
        _ => d,
    }
}

/// Minimum analyst marks before the classifier trains (below, it would only learn the
/// rules back).
pub const MIN_ANALYST_LABELS: usize = 5;

/// Labels of the window's clients: analyst marks (by IP, then JA4/JA4H/JA4T) first, then
/// confirmed detections of the last 7 days (bot at high or critical threat = bot;
/// legitimate browser or verified good bot = not a bot). Returns (row, label) pairs and the
/// number of analyst-labelled rows.
pub fn window_labels(store: &Store, db: &str, w: &Window) -> Result<(Vec<(usize, bool)>, usize)> {
    use std::collections::HashMap;
    let marks = store
        .query_rows::<(String, String, String)>(&format!(
            "SELECT toString(subject_kind), subject, toString(label) FROM {db}.ml_labels FINAL"
        ))
        .context("reading analyst labels")?;
    let mut by_subject: HashMap<(String, String), bool> = HashMap::new();
    for (kind, subject, label) in marks.rows {
        let subject = match kind.as_str() {
            "ip" => subject
                .parse::<IpAddr>()
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
            _ => subject,
        };
        by_subject.insert((kind, subject), label == "confirmed_bot");
    }
    let confirmed = store
        .query_rows::<(String, String, String, String, String)>(&format!(
            "SELECT toString(src_ip), toString(ja4), toString(host), toString(argMax(verdict, scored_at)), toString(argMax(threat_level, scored_at)) \
             FROM {db}.ml_all_scores WHERE scored_at >= now64(3) - INTERVAL 7 DAY GROUP BY src_ip, ja4, host"
        ))
        .context("reading confirmed detections")?;
    let mut by_client: HashMap<(String, String, String), bool> = HashMap::new();
    for (ip, ja4, host, verdict, threat) in confirmed.rows {
        let ip = ip
            .parse::<IpAddr>()
            .map(|ip| ip.to_canonical())
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let label = match (verdict.as_str(), threat.as_str()) {
            ("bot", "high" | "critical") => Some(true),
            ("legitimate_browser" | "verified_bot", _) => Some(false),
            _ => None,
        };
        if let Some(b) = label {
            by_client.insert((ip, ja4, host), b);
        }
    }
    if marks.skipped + confirmed.skipped > 0 {
        tracing::warn!(
            skipped = marks.skipped + confirmed.skipped,
            "label rows that did not read were skipped"
        );
    }
    let mut out = Vec::new();
    let mut analyst = 0;
    for (i, c) in w.clients.iter().enumerate() {
        let ip = c.src_ip.to_string();
        let mark = by_subject
            .get(&("ip".to_owned(), ip.clone()))
            .or_else(|| by_subject.get(&("ja4".to_owned(), c.ja4.clone())));
        if let Some(b) = mark {
            analyst += 1;
            out.push((i, *b));
        } else if let Some(b) = by_client.get(&(ip, c.ja4.clone(), c.host.clone())) {
            out.push((i, *b));
        }
    }
    Ok((out, analyst))
}

/// Trains the supervised classifier on the labelled clients of the last `hours` hours.
pub fn train_classifier(
    store: &Store,
    db: &str,
    hours: u32,
    params: &ja4_ml::classifier::ClassifierParams,
) -> Result<Classifier> {
    let w = read_window(store, db, hours)?;
    let (labels, analyst) = window_labels(store, db, &w)?;
    if analyst < MIN_ANALYST_LABELS {
        bail!(
            "{analyst} clients marked by analysts in the last {hours} h: the classifier needs at least {MIN_ANALYST_LABELS}"
        );
    }
    let n = n_features();
    let rows: Vec<f64> = labels
        .iter()
        .flat_map(|(i, _)| w.values[i * n..(i + 1) * n].iter().copied())
        .collect();
    let y: Vec<bool> = labels.iter().map(|(_, b)| *b).collect();
    Ok(Classifier::train(
        Matrix::new(&rows, n)?,
        &y,
        &feature_names(),
        params,
    )?)
}

/// `<dir>/classifier.json`.
pub fn save_classifier(dir: &Path, c: &Classifier) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("classifier.json");
    let tmp = dir.join(".classifier.json.tmp");
    std::fs::write(&tmp, c.to_json()?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(path)
}

/// The classifier in `dir`, if one was trained (a file that fails to load is an error).
pub fn load_classifier(dir: &Path) -> Result<Option<Classifier>> {
    let path = dir.join("classifier.json");
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(
        Classifier::from_json(&text).with_context(|| format!("loading {}", path.display()))?,
    ))
}

/// Groups the flagged clients by behaviour (HDBSCAN on the autoencoder's latent codes):
/// campaign ids are the window's hour (Unix hours) × 1000 + the cluster label.
fn assign_campaigns(model: &Model, m: &Matrix, out: &mut [ScoredClient]) {
    let Some(ae) = model.autoencoder() else {
        return;
    };
    let flagged: Vec<usize> = (0..out.len())
        .filter(|&i| matches!(out[i].decision.verdict, Verdict::Bot | Verdict::Suspicious))
        .collect();
    let rows: Vec<f64> = flagged
        .iter()
        .flat_map(|&i| m.row(i).iter().copied())
        .collect();
    let Ok(sub) = Matrix::new(&rows, m.cols()) else {
        return;
    };
    let Ok(latent) = ae.latent(sub) else {
        return;
    };
    let labels = ja4_ml::campaign::cluster(
        &latent,
        ja4_ml::autoencoder::HIDDEN[2],
        ja4_ml::campaign::CampaignParams::default(),
    );
    let hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 3600) as i64;
    // A campaign is one tool behaving alike: a behaviour cluster is split by TLS stack (JA4
    // family), and a stack alone in its cluster is no campaign.
    let mut groups: std::collections::BTreeMap<(i32, &str), Vec<usize>> = Default::default();
    for (&i, &l) in flagged.iter().zip(&labels) {
        if l >= 0 {
            groups
                .entry((l, out[i].client.ja4_family.as_str()))
                .or_default()
                .push(i);
        }
    }
    let groups: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() >= 2).collect();
    for (n, members) in groups.into_iter().enumerate() {
        for i in members {
            out[i].campaign_id = hour * 1000 + n as i64;
        }
    }
}

/// Columns of `ml_all_scores` in the order [`write`] encodes them.
const ALL_SCORES: &[&str] = &[
    "scored_at",
    "window",
    "src_ip",
    "ja4",
    "host",
    "model_name",
    "model_version",
    "hits",
    "forest_score",
    "ae_recon_error",
    "score",
    "threat_level",
    "verdict",
    "browser_family",
    "campaign_id",
    "reasons",
    "features",
    "bot_score",
    "ae_rank",
];

/// Columns of `ml_detected_anomalies` in the order [`write`] encodes them.
const DETECTED: &[&str] = &[
    "detected_at",
    "window",
    "src_ip",
    "ja4",
    "host",
    "model_name",
    "model_version",
    "hits",
    "score",
    "threat_level",
    "verdict",
    "browser_family",
    "campaign_id",
    "asn",
    "country",
    "user_agent",
    "reasons",
    "top_features",
    "bot_score",
];

/// The model family the verdicts name.
const MODEL_NAME: &str = "eif+ae";

/// Writes every score to `ml_all_scores` and the suspicious and bot verdicts to
/// `ml_detected_anomalies`, as RowBinary rows (client values never become SQL text).
pub fn write(
    store: &Store,
    db: &str,
    window: &str,
    model_version: &str,
    results: &[ScoredClient],
) -> Result<(usize, usize)> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (mut all, mut detected) = (Rows::new(ALL_SCORES), Rows::new(DETECTED));
    let (mut n_all, mut n_detected) = (0, 0);
    for r in results {
        let c = &r.client;
        let d = &r.decision;
        all.datetime64_ms(now_ms)
            .string(window)
            .ipv6(c.src_ip)
            .string(&c.ja4)
            .string(&c.host)
            .string(MODEL_NAME)
            .string(model_version)
            .u64(c.hits)
            .f32(r.forest)
            .f32(r.ae_error)
            .f32(r.score)
            .string(d.threat.as_str())
            .string(d.verdict.as_str())
            .string(&c.ja4_application)
            .i64(r.campaign_id)
            .strings(&d.reasons)
            .map_f32(&r.top_features)
            .u8(r.bot_score())
            .f32(if r.ae_rank.is_finite() {
                r.ae_rank
            } else {
                0.0
            })
            .end_row();
        if matches!(d.verdict, Verdict::Bot | Verdict::Suspicious) {
            detected
                .datetime64_ms(now_ms)
                .string(window)
                .ipv6(c.src_ip)
                .string(&c.ja4)
                .string(&c.host)
                .string(MODEL_NAME)
                .string(model_version)
                .u64(c.hits)
                .f32(r.score)
                .string(d.threat.as_str())
                .string(d.verdict.as_str())
                .string(&c.ja4_application)
                .i64(r.campaign_id)
                .u32(c.asn)
                .string(&c.country)
                .string(&c.user_agent)
                .strings(&d.reasons)
                .map_f32(&r.top_features)
                .u8(r.bot_score())
                .end_row();
        }
        if all.len() >= 5000 {
            n_all += all
                .insert(store, db, "ml_all_scores")
                .context("writing ml_all_scores")?;
        }
        if detected.len() >= 5000 {
            n_detected += detected
                .insert(store, db, "ml_detected_anomalies")
                .context("writing ml_detected_anomalies")?;
        }
    }
    n_all += all
        .insert(store, db, "ml_all_scores")
        .context("writing ml_all_scores")?;
    n_detected += detected
        .insert(store, db, "ml_detected_anomalies")
        .context("writing ml_detected_anomalies")?;
    Ok((n_all, n_detected))
}

/// Where models are kept: `<dir>/model-<unix time>.json` and `<dir>/current.json`.
pub fn save_model(dir: &Path, model: &Model) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = dir.join(format!("model-{ts}.json"));
    std::fs::write(&path, model.to_json())
        .with_context(|| format!("writing {}", path.display()))?;
    let current = dir.join("current.json");
    let tmp = dir.join(".current.json.tmp");
    std::fs::write(&tmp, model.to_json()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &current).with_context(|| format!("replacing {}", current.display()))?;
    Ok(path)
}

/// The model saved at `path`.
pub fn load_model(path: &Path) -> Result<Model> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Model::from_json(&text).with_context(|| format!("loading {}", path.display()))
}
