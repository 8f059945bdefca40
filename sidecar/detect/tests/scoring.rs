//! Train and score on the real embedded engine with the shipped reference data: synthetic
//! humans, scrapers, credential stuffers, fuzzers, a verified Googlebot and a spoofed one.
//! The traffic lab does the same with real clients; this checks the pipeline's wiring and
//! decisions: features from the SQL view, model, verdicts, both ML tables.

use ja4_core::batch::Record;
use ja4_detect::refdata::{self, Sources};
use ja4_detect::scoring;
use ja4_ml::rng::Rng;
use ja4_ml::verdict::Thresholds;
use ja4_ml::{AeParams, ForestParams, ModelParams};
use ja4_store::{chdb::default_library, migrate, rows, Store};

const CHROME: &[u8] = b"t13d1516h2_8daaf6152771_02713d6af862";
const PYTHON: &[u8] = b"t13d4312h1_c7886603b240_b26ce05bbdd6";
const CHROME_UA: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0 Safari/537.36";
const FIREFOX_ESR: &[u8] = b"t13d1617h2_86a278354501_6fd0a1b4cb36";
const FIREFOX_UA: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0";
const GOOGLEBOT_UA: &[u8] =
    b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

struct Gen {
    rng: Rng,
    now: i64,
    paths: Vec<String>,
}

impl Gen {
    fn ts(&mut self, within_s: f64) -> i64 {
        self.now - (self.rng.f64() * within_s * 1e6) as i64
    }
}

#[test]
fn train_and_score_synthetic_traffic() {
    let dir = std::env::temp_dir().join(format!("ja4-scoring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::embedded(&default_library(), &dir.join("data")).unwrap();
    migrate::migrate(&store, &migrate::Options::new("ja4m")).unwrap();
    refdata::load(&store, "ja4m", &Sources::default()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let mut g = Gen {
        rng: Rng::new(42, 0),
        now,
        paths: (0..4000).map(|i| format!("/p/{i}/item")).collect(),
    };
    let assets = ["/static/app.js", "/static/site.css", "/img/logo.png"];
    let mut recs: Vec<Record<Vec<u8>>> = Vec::new();
    let mut push = |ip: String,
                    ja4: &[u8],
                    ua: &[u8],
                    method: &[u8],
                    path: String,
                    status: u16,
                    browser: bool,
                    ts: i64| {
        recs.push(Record {
            ts_us: ts,
            conn_id: recs.len() as u64,
            client_ip: Some(ip.parse().unwrap()),
            client_port: 40000 + (recs.len() % 20000) as u16,
            vhost: b"shop.example".to_vec(),
            method: method.to_vec(),
            path: path.into_bytes(),
            protocol: if browser {
                b"HTTP/2.0".to_vec()
            } else {
                b"HTTP/1.1".to_vec()
            },
            status,
            tls_alpn: if browser {
                b"h2".to_vec()
            } else {
                b"http/1.1".to_vec()
            },
            ja4: ja4.to_vec(),
            user_agent: ua.to_vec(),
            header_names: if browser {
                b"host,user-agent,accept,accept-language,accept-encoding,sec-fetch-site,sec-fetch-mode,cookie,referer"
                    .to_vec()
            } else {
                b"host,user-agent,accept".to_vec()
            },
            accept_language: if browser {
                b"en-US,en;q=0.9".to_vec()
            } else {
                Vec::new()
            },
            accept_encoding: if browser {
                b"gzip, deflate, br".to_vec()
            } else {
                b"gzip".to_vec()
            },
            sec_fetch_site: if browser {
                b"same-origin".to_vec()
            } else {
                Vec::new()
            },
            sec_ch_ua: if browser {
                b"\"Chromium\";v=\"141\"".to_vec()
            } else {
                Vec::new()
            },
            has_cookie: browser,
            has_referer: browser,
            ..Default::default()
        });
    };
    // 150 people browsing: a few pages with their assets, spread over the hour.
    for h in 0..150 {
        let ip = format!("10.1.{}.{}", h / 200, h % 200 + 1);
        let pages = 3 + g.rng.below(8);
        for _ in 0..pages {
            let p = g.paths[g.rng.below(200)].clone();
            let t = g.ts(3500.0);
            push(ip.clone(), CHROME, CHROME_UA, b"GET", p, 200, true, t);
            for a in assets.iter().take(1 + g.rng.below(3)) {
                push(
                    ip.clone(),
                    CHROME,
                    CHROME_UA,
                    b"GET",
                    (*a).to_owned(),
                    200,
                    true,
                    t + 50_000,
                );
            }
        }
    }
    // 10 scrapers: python, hundreds of distinct pages in minutes, no assets.
    for s in 0..10 {
        let ip = format!("203.0.113.{}", s + 1);
        for i in 0..300 {
            let p = g.paths[(s * 300 + i) % 4000].clone();
            let t = g.ts(300.0);
            push(
                ip.clone(),
                PYTHON,
                b"python-requests/2.31.0",
                b"GET",
                p,
                200,
                false,
                t,
            );
        }
    }
    // 3 credential stuffers: POST bursts on the login, a browser user agent over python's TLS.
    for s in 0..3 {
        let ip = format!("198.18.0.{}", s + 1);
        for _ in 0..150 {
            let t = g.ts(120.0);
            push(
                ip.clone(),
                PYTHON,
                CHROME_UA,
                b"POST",
                "/login".into(),
                401,
                false,
                t,
            );
        }
    }
    // 2 path fuzzers: 404 storms.
    for s in 0..2 {
        let ip = format!("198.18.1.{}", s + 1);
        for i in 0..400 {
            let t = g.ts(200.0);
            push(
                ip.clone(),
                b"t13d311100_e8f1e7e78f70_1f22a2ca17c4",
                b"curl/8.5.0",
                b"GET",
                format!("/.{i}/admin.php"),
                404,
                false,
                t,
            );
        }
    }
    // Googlebot from its published range, and a spoofer with the same user agent.
    for (ip, n) in [("2001:4860:4801:10::7", 40), ("198.51.100.5", 40)] {
        for i in 0..n {
            let t = g.ts(3000.0);
            push(
                ip.into(),
                b"t13d1715h2_5b57614c22b0_7121afd63204",
                GOOGLEBOT_UA,
                b"GET",
                format!("/p/{i}/item"),
                200,
                false,
                t,
            );
        }
    }
    // Browsers that are not people: 3 impersonators (Chrome's TLS, headers and a cookie jar,
    // pages only, no Referer) and 3 headless crawlers (Chrome rendering each page with its
    // assets, but every page fetched directly, in two minutes).
    for s in 0..3 {
        let ip = format!("198.18.2.{}", s + 1);
        for i in 0..80 {
            let t = g.ts(600.0);
            let p = g.paths[(s * 80 + i) % 4000].clone();
            push(ip.clone(), CHROME, CHROME_UA, b"GET", p, 200, true, t);
        }
        let ip = format!("198.18.3.{}", s + 1);
        for i in 0..40 {
            let t = g.ts(120.0);
            let p = g.paths[(1000 + s * 40 + i) % 4000].clone();
            push(ip.clone(), CHROME, CHROME_UA, b"GET", p, 200, true, t);
            for a in &assets[..2] {
                push(
                    ip.clone(),
                    CHROME,
                    CHROME_UA,
                    b"GET",
                    (*a).to_owned(),
                    200,
                    true,
                    t + 30_000,
                );
            }
        }
    }
    // 6 people on Firefox ESR, a TLS stack the reference data does not know, clicking
    // through 6 to 10 pages with their assets.
    for h in 0..6 {
        let ip = format!("10.2.0.{}", h + 1);
        for _ in 0..6 + g.rng.below(5) {
            let p = g.paths[g.rng.below(200)].clone();
            let t = g.ts(3500.0);
            push(ip.clone(), FIREFOX_ESR, FIREFOX_UA, b"GET", p, 200, true, t);
            for a in assets.iter().take(1 + g.rng.below(3)) {
                push(
                    ip.clone(),
                    FIREFOX_ESR,
                    FIREFOX_UA,
                    b"GET",
                    (*a).to_owned(),
                    200,
                    true,
                    t + 50_000,
                );
            }
        }
    }
    for r in &mut recs {
        let ip = r.client_ip.unwrap().to_string();
        if ip.starts_with("198.18.2.")
            || (ip.starts_with("198.18.3.")
                && !r.path.starts_with(b"/static")
                && !r.path.starts_with(b"/img"))
        {
            r.has_referer = false;
        }
        if ip.starts_with("10.2.0.") {
            // Firefox sends no client hints.
            r.sec_ch_ua.clear();
        }
    }
    for chunk in recs.chunks(20_000) {
        let done = rows::insert(&store, "ja4m", chunk).unwrap();
        assert_eq!(
            done.stored,
            chunk.len(),
            "fixtures outside the retention: {done:?}"
        );
    }

    let params = ModelParams {
        forest: ForestParams {
            seed: 1,
            ..Default::default()
        },
        autoencoder: AeParams {
            epochs: 40,
            seed: 1,
            ..Default::default()
        },
        ae_weight: 0.3,
    };
    let model = scoring::train(&store, "ja4m", 1, params, 50).unwrap();
    assert!(model.ae_failure.is_none());
    // Trained on the mixed window, as production does: what no rule names automation (the
    // fuzzers' curl user agent does) and no browser that misses people's behaviour (the
    // impersonators and headless crawlers).
    assert_eq!(
        model.trained_rows,
        150 + 6,
        "the Chromium and Firefox people"
    );
    let models = dir.join("models");
    let path = scoring::save_model(&models, &model).unwrap();
    let model = scoring::load_model(&models.join("current.json")).unwrap();
    assert!(path.exists());
    let results = scoring::score(&store, "ja4m", 1, &model, None, &Thresholds::default()).unwrap();
    assert_eq!(results.len(), 150 + 10 + 3 + 2 + 2 + 3 + 3 + 6);
    let verdict_of = |ip: &str| {
        results
            .iter()
            .find(|r| r.client.src_ip.to_string() == ip)
            .map(|r| (r.decision.verdict.as_str(), r.decision.reasons.join("; ")))
            .unwrap()
    };
    let flagged =
        |r: &&scoring::ScoredClient| matches!(r.decision.verdict.as_str(), "bot" | "suspicious");
    let humans_flagged = results
        .iter()
        .filter(|r| r.client.src_ip.to_string().starts_with("10.1."))
        .filter(flagged)
        .count();
    assert!(
        humans_flagged <= 2,
        "{humans_flagged} of 150 humans flagged"
    );
    let firefox_flagged: Vec<String> = results
        .iter()
        .filter(|r| r.client.src_ip.to_string().starts_with("10.2.0."))
        .filter(flagged)
        .map(|r| format!("{}: {}", r.client.src_ip, r.decision.reasons.join("; ")))
        .collect();
    assert!(
        firefox_flagged.len() <= 1,
        "Firefox people flagged: {firefox_flagged:#?}"
    );
    for prefix in ["198.18.2.", "198.18.3."] {
        for r in results
            .iter()
            .filter(|r| r.client.src_ip.to_string().starts_with(prefix))
        {
            assert!(flagged(&r), "{} passed: {:?}", r.client.src_ip, r.decision);
            assert!(
                r.decision
                    .reasons
                    .iter()
                    .any(|x| x.contains("does not behave like this site's people")),
                "{:?}",
                r.decision.reasons
            );
        }
    }
    for prefix in ["203.0.113.", "198.18.0.", "198.18.1."] {
        let (n, caught) = results
            .iter()
            .filter(|r| r.client.src_ip.to_string().starts_with(prefix))
            .fold((0, 0), |(n, c), r| (n + 1, c + usize::from(flagged(&r))));
        assert_eq!(caught, n, "{prefix}: {caught} of {n} caught");
    }
    // The ten scrapers behave alike: one campaign.
    let scraper_campaigns: std::collections::HashSet<i64> = results
        .iter()
        .filter(|r| r.client.src_ip.to_string().starts_with("203.0.113."))
        .map(|r| r.campaign_id)
        .collect();
    assert_eq!(scraper_campaigns.len(), 1, "{scraper_campaigns:?}");
    assert!(scraper_campaigns.iter().all(|&c| c >= 0));
    let campaign = *scraper_campaigns.iter().next().unwrap();
    assert!(
        results
            .iter()
            .filter(|r| r.campaign_id == campaign)
            .all(|r| r.client.src_ip.to_string().starts_with("203.0.113.")),
        "the campaign holds only the scrapers: {:?}",
        results
            .iter()
            .filter(|r| r.campaign_id == campaign)
            .map(|r| r.client.src_ip.to_string())
            .collect::<Vec<_>>()
    );
    let (v, why) = verdict_of("198.18.0.1");
    assert_eq!(v, "bot");
    assert!(
        why.contains("browser user agent on a non-browser TLS stack (Python)"),
        "{why}"
    );
    assert_eq!(verdict_of("2001:4860:4801:10::7").0, "verified_bot");
    let (v, why) = verdict_of("198.51.100.5");
    assert_eq!(v, "bot");
    assert!(why.contains("claims to be googlebot"), "{why}");

    // Analysts' allow/deny lists override the models, with a reason naming the entry; a
    // removed entry no longer applies.
    let human_ip = results
        .iter()
        .find(|r| {
            r.client.src_ip.to_string().starts_with("10.1.")
                && !matches!(r.decision.verdict.as_str(), "bot" | "suspicious")
        })
        .unwrap()
        .client
        .src_ip
        .to_string();
    let human_verdict = verdict_of(&human_ip).0;
    store
        .execute(&format!(
            "INSERT INTO ja4m.access_lists (kind, value, action, active, analyst, note) VALUES \
             ('ip', '{human_ip}', 'deny', 1, 'alice', 'seen stuffing'), ('net', '203.0.113.0/24', 'allow', 1, 'bob', 'partner')"
        ))
        .unwrap();
    let listed = scoring::score(&store, "ja4m", 1, &model, None, &Thresholds::default()).unwrap();
    let of = |ip: &str| {
        listed
            .iter()
            .find(|r| r.client.src_ip.to_string() == ip)
            .unwrap()
    };
    assert_eq!(of(&human_ip).decision.verdict.as_str(), "bot");
    assert_eq!(
        of(&human_ip).decision.reasons[0],
        format!("deny-listed (ip {human_ip}) by alice: seen stuffing")
    );
    for r in listed
        .iter()
        .filter(|r| r.client.src_ip.to_string().starts_with("203.0.113."))
    {
        assert_eq!(r.decision.verdict.as_str(), "human");
        assert!(r.decision.reasons[0].starts_with("allow-listed (net 203.0.113.0/24) by bob"));
    }
    store
        .execute(&format!(
            "INSERT INTO ja4m.access_lists (kind, value, action, active, analyst, note) VALUES ('ip', '{human_ip}', '', 0, 'alice', '')"
        ))
        .unwrap();
    let unlisted = scoring::score(&store, "ja4m", 1, &model, None, &Thresholds::default()).unwrap();
    let again = unlisted
        .iter()
        .find(|r| r.client.src_ip.to_string() == human_ip)
        .unwrap();
    assert_eq!(
        again.decision.verdict.as_str(),
        human_verdict,
        "a removed entry no longer applies"
    );
    store.execute("TRUNCATE TABLE ja4m.access_lists").unwrap();

    let (all, detected) = scoring::write(&store, "ja4m", "1h", "test", &results).unwrap();
    assert_eq!(all, results.len());
    let q = |sql: &str| {
        String::from_utf8(store.query(sql, "TSV").unwrap())
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(q("SELECT count() FROM ja4m.ml_all_scores"), all.to_string());
    assert_eq!(
        q("SELECT count() FROM ja4m.ml_detected_anomalies FINAL"),
        detected.to_string()
    );
    assert_eq!(
        q("SELECT countIf(empty(reasons) OR empty(top_features)) FROM ja4m.ml_detected_anomalies"),
        "0"
    );
    assert_eq!(
        q("SELECT verdict FROM ja4m.ml_all_scores WHERE src_ip = toIPv6('2001:4860:4801:10::7')"),
        "verified_bot"
    );
    // The bot score follows the verdict: below 30 exactly for what is flagged or verified.
    assert_eq!(
        q("SELECT countIf((bot_score < 30) != (verdict IN ('bot', 'suspicious', 'verified_bot'))), \
           countIf(bot_score = 0 OR bot_score > 99), min(bot_score) FROM ja4m.ml_all_scores"),
        "0\t0\t1"
    );
    assert_eq!(
        q("SELECT countIf(bot_score >= 30) FROM ja4m.ml_detected_anomalies FINAL"),
        "0"
    );

    // The supervised classifier: refused without analyst marks; with them (and the
    // confirmed detections just written) it learns to tell the scrapers from the humans.
    let cp = ja4_ml::classifier::ClassifierParams {
        min_per_class: 3,
        ..Default::default()
    };
    let err = scoring::train_classifier(&store, "ja4m", 1, &cp).unwrap_err();
    assert!(format!("{err:#}").contains("marked by analysts"), "{err:#}");
    let humans: Vec<String> = results
        .iter()
        .map(|r| r.client.src_ip.to_string())
        .filter(|ip| ip.starts_with("10.1."))
        .take(4)
        .collect();
    let mut marks: Vec<String> = humans
        .iter()
        .map(|ip| format!("('ip', '{ip}', 'false_positive', 'bob', '')"))
        .collect();
    marks.extend((1..=3).map(|i| format!("('ip', '203.0.113.{i}', 'confirmed_bot', 'bob', '')")));
    store
        .execute(&format!(
            "INSERT INTO ja4m.ml_labels (subject_kind, subject, label, analyst, note) VALUES {}",
            marks.join(", ")
        ))
        .unwrap();
    let c = scoring::train_classifier(&store, "ja4m", 1, &cp).unwrap();
    assert!(c.positives >= 3 && c.negatives >= 4, "{c:?}");
    let w = scoring::read_window(&store, "ja4m", 1).unwrap();
    let p = c.proba(w.matrix().unwrap()).unwrap();
    let mean = |prefix: &str| {
        let v: Vec<f64> = w
            .clients
            .iter()
            .zip(&p)
            .filter(|(cl, _)| cl.src_ip.to_string().starts_with(prefix))
            .map(|(_, p)| *p)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (bots, people) = (mean("203.0.113."), mean("10.1."));
    assert!(
        bots > 0.7 && people < 0.3,
        "p(bot): scrapers {bots:.2}, humans {people:.2}"
    );
    let saved = scoring::save_classifier(&dir.join("clf"), &c).unwrap();
    assert!(saved.exists());
    let c = scoring::load_classifier(&dir.join("clf")).unwrap().unwrap();
    let with = scoring::score_with(
        &store,
        "ja4m",
        1,
        &model,
        Some(&c),
        None,
        &Thresholds::default(),
    )
    .unwrap();
    for ip in &humans {
        let r = with
            .iter()
            .find(|r| &r.client.src_ip.to_string() == ip)
            .unwrap();
        assert_ne!(
            r.decision.verdict.as_str(),
            "bot",
            "{ip}: {:?}",
            r.decision.reasons
        );
    }

    // The loop of `serve`: trains a first model, scores; the next run reuses the model.
    let cfg = ja4_detect::cycle::ScoringConfig {
        models_dir: dir.join("serve-models"),
        train_window_hours: 1,
        ..Default::default()
    };
    let m = ja4_detect::cycle::Counters::default();
    for run in 1..=2 {
        let hours = ja4_detect::cycle::window_for_run(&cfg, run);
        assert_eq!(hours, 1);
        ja4_detect::cycle::run_cycle(&cfg, "ja4m", &store, &m, None, hours).unwrap();
    }
    assert_eq!((m.trainings.get(), m.runs.get()), (1, 2));
    assert_eq!(m.scored_clients.get(), 2 * results.len() as u64);
    assert!(m.detections.get() >= 2 * 15);
    let mut registry = prometheus_client::registry::Registry::default();
    m.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(&format!("\nja4_detections_total {}\n", m.detections.get())),
        "{text}"
    );
    // Both runs wrote the verdicts under the saved model's name.
    let versions = String::from_utf8(
        store
            .query(
                "SELECT DISTINCT model_version FROM ja4m.ml_all_scores WHERE window = '1h' AND model_version LIKE 'model-%'",
                "TSV",
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(versions.lines().count(), 1, "{versions}");
    assert!(!versions.contains(".json"), "{versions}");

    // The slow pass: a bot with one failed login an hour is one request in any hour; over
    // the day it stands out.
    assert_eq!(ja4_detect::cycle::window_for_run(&cfg, 12), 24);
    store
        .execute(
            "INSERT INTO ja4m.requests_raw (ts, kind, client_ip, vhost, method, path, protocol, status, ja4, user_agent, header_names) \
             SELECT now64(6) - toIntervalMinute(number * 60 + 30), 'request', toIPv6('198.18.9.9'), 'shop.test', 'POST', '/login', \
             'HTTP/1.1', 401, 't13d190900_9dc949149365_97f8aa674fd9', 'python-requests/2.31', ['host', 'user-agent', 'accept-encoding', 'accept'] \
             FROM numbers(24)",
        )
        .unwrap();
    ja4_detect::cycle::run_cycle(&cfg, "ja4m", &store, &m, None, 24).unwrap();
    let slow = |window: &str| {
        String::from_utf8(
            store
                .query(
                    &format!(
                        "SELECT hits, verdict FROM ja4m.ml_all_scores WHERE src_ip = toIPv6('198.18.9.9') AND window = '{window}' ORDER BY scored_at DESC LIMIT 1"
                    ),
                    "TSV",
                )
                .unwrap(),
        )
        .unwrap()
        .trim()
        .to_owned()
    };
    let day = slow("24h");
    assert!(day.starts_with("24\t"), "{day}");
    assert!(day.ends_with("bot") || day.ends_with("suspicious"), "{day}");
    ja4_detect::cycle::run_cycle(&cfg, "ja4m", &store, &m, None, 1).unwrap();
    let hour = slow("1h");
    assert!(hour.is_empty() || hour.starts_with("1\t"), "{hour}");

    // Solved challenges (mod_ja4's records of the answer) and HTTP/2 contradictions (its
    // consistency flags) reach the verdict's facts.
    store
        .execute(
            "INSERT INTO ja4m.requests_raw (ts, kind, client_ip, vhost, method, path, protocol, status, ja4, user_agent, header_names, action, consistency_flags) \
             SELECT now64(6) - toIntervalSecond(number + 1), 'request', toIPv6('198.18.7.7'), 'shop.test', 'POST', '/.ja4/challenge', \
             'HTTP/1.1', 303, 't13d1516h2_8daaf6152771_02713d6af862', 'Mozilla/5.0', ['host'], if(number < 3, 'challenge_passed', 'allow'), \
             if(number < 4, 16 + 4, 32) \
             FROM numbers(5)",
        )
        .unwrap();
    let w = scoring::read_window(&store, "ja4m", 1).unwrap();
    let solved: Vec<u64> = w
        .clients
        .iter()
        .filter(|c| c.src_ip.to_string() == "198.18.7.7")
        .map(|c| c.challenges_solved)
        .collect();
    assert_eq!(solved, [3]);
    let h2: Vec<f64> = w
        .clients
        .iter()
        .filter(|c| c.src_ip.to_string() == "198.18.7.7")
        .map(|c| c.h2_stack_mismatch_ratio)
        .collect();
    assert_eq!(
        h2,
        [0.8],
        "4 of 5 requests carry tls-h2 (32 alone is the OS flag)"
    );
    assert!(w
        .clients
        .iter()
        .filter(|c| c.src_ip.to_string() != "198.18.7.7")
        .all(|c| c.challenges_solved == 0));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Verdicts are RowBinary rows: a client's own strings (quotes, backslashes, newlines, tabs,
/// braces, non-ASCII) come back byte for byte, and nothing of them is ever SQL text.
#[test]
fn verdicts_keep_hostile_values_byte_for_byte() {
    use ja4_detect::scoring::{Client, ScoredClient};
    use ja4_ml::verdict::{Decision, Threat, Verdict};
    let dir = std::env::temp_dir().join(format!("ja4-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::embedded(&default_library(), &dir.join("data")).unwrap();
    migrate::migrate(&store, &migrate::Options::new("ja4h")).unwrap();
    let ua = "x', 'y'); DROP TABLE ja4h.ml_all_scores; --\\\n\t\u{1F916}é\"{}";
    let client = Client {
        src_ip: "2001:db8::7".parse().unwrap(),
        ja4: "t13d1516h2_8daaf6152771_02713d6af862".into(),
        ja4_family: "t13d_8daaf6152771".into(),
        ja4_variants: vec!["t13d1516h2_8daaf6152771_02713d6af862".into()],
        host: "shop'.test".into(),
        hits: 3,
        requests: 3,
        challenges_solved: 0,
        h2_stack_mismatch_ratio: 0.0,
        user_agent: ua.into(),
        asn: 64_500,
        country: "ZZ".into(),
        crawler_name: String::new(),
        crawler_action: String::new(),
        bot_ip_name: String::new(),
        ja4_application: "curl\\".into(),
        ja4_category: String::new(),
        ja4_is_bot: false,
    };
    let scored = ScoredClient {
        client,
        forest: 0.7,
        ae_error: f64::NAN,
        ae_rank: f64::NAN,
        score: 0.9,
        consensus: 1.0,
        decision: Decision {
            verdict: Verdict::Bot,
            threat: Threat::High,
            reasons: vec!["it's a 'bot'".into(), "line\nbreak".into()],
        },
        top_features: vec![("rate}'".into(), 2.5), ("errors".into(), f64::INFINITY)],
        campaign_id: -1,
    };
    let (all, detected) = scoring::write(
        &store,
        "ja4h",
        "1h",
        "model-1",
        std::slice::from_ref(&scored),
    )
    .unwrap();
    assert_eq!((all, detected), (1, 1));
    let rows = store
        .query_rows::<(String, String, String, Vec<String>, f64)>(
            "SELECT toString(src_ip), host, user_agent, reasons, top_features['rate}\\''] FROM ja4h.ml_detected_anomalies",
        )
        .unwrap();
    assert_eq!(rows.skipped, 0);
    assert_eq!(
        rows.rows,
        [(
            "2001:db8::7".to_owned(),
            "shop'.test".to_owned(),
            ua.to_owned(),
            vec!["it's a 'bot'".to_owned(), "line\nbreak".to_owned()],
            2.5
        )]
    );
    let scores = store
        .query_rows::<(String, f64, f64, String)>(
            "SELECT browser_family, ae_recon_error, features['errors'], model_version FROM ja4h.ml_all_scores",
        )
        .unwrap();
    assert_eq!(
        scores.rows,
        [("curl\\".to_owned(), 0.0, 0.0, "model-1".to_owned())]
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
