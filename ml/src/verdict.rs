//! From a score and what the reference data says about a client to a verdict an analyst can
//! read: verified good bot, legitimate browser, human, suspicious or bot, a threat level, and
//! the reasons.
//!
//! Owns: the rules on top of the models — crawler claims (verified or spoofed), crawler rule
//! actions, the browser-UA-on-a-non-browser-TLS-stack spoofing signal, the LEGITIMATE_BROWSER
//! rule and the threat thresholds on the mixed score. The legitimate-browser pass needs three
//! things: a browser's *claims* (browser JA4, modern headers, Accept-Language, cookies or
//! referers, Sec-Fetch: ≥ 4 of 5), a browser's *behaviour* (what this site's people show —
//! page assets, followed links — it shows too, once it has fetched enough pages to tell), and
//! no contradiction (the SYN's TTL fits the OS its user agent names; client hints only from
//! Chromium). A client that presents a browser without behaving like one is what an
//! impersonation library or a headless crawler looks like: no page assets alone takes the pass
//! away (a warm cache; its score decides), no followed links makes it suspicious, missing both
//! makes it a bot, and a high anomaly score driven by behaviour overrules the pass at the
//! ordinary `high` threshold.
//! Never: lets a browser user agent pass on its own: with a non-browser JA4 it is evidence
//! against the client; never lets claims alone pass a client that fetched enough pages to show
//! behaviour.

use serde::{Deserialize, Serialize};

/// What the analyst sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Behaves like a person.
    Human,
    /// A browser whose every signal is consistent (the legitimate-browser rule).
    LegitimateBrowser,
    /// A crawler that proved who it is (published ranges or forward-confirmed DNS).
    VerifiedBot,
    /// Unusual, not proven a bot.
    Suspicious,
    /// A bot.
    Bot,
}

impl Verdict {
    /// Its name in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Human => "human",
            Verdict::LegitimateBrowser => "legitimate_browser",
            Verdict::VerifiedBot => "verified_bot",
            Verdict::Suspicious => "suspicious",
            Verdict::Bot => "bot",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// How urgent a verdict is.
pub enum Threat {
    /// Nothing to do.
    None,
    /// Unusual enough to note (above `Thresholds::low`).
    Low,
    /// Likely automated (above `Thresholds::medium`).
    Medium,
    /// Automated (above `Thresholds::high`, or a spoofed crawler).
    High,
    /// The top of the score range (above `Thresholds::critical`).
    Critical,
}

impl Threat {
    /// Its name in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Threat::None => "none",
            Threat::Low => "low",
            Threat::Medium => "medium",
            Threat::High => "high",
            Threat::Critical => "critical",
        }
    }

    /// The level of a mixed score in [0, 1] (its rank against the clean baseline).
    pub fn of_score(score: f64, t: &Thresholds) -> Threat {
        if score >= t.critical {
            Threat::Critical
        } else if score >= t.high {
            Threat::High
        } else if score >= t.medium {
            Threat::Medium
        } else if score >= t.low {
            Threat::Low
        } else {
            Threat::None
        }
    }
}

/// Score thresholds of the threat levels. Scores are ranks against people's baseline, so a
/// threshold is also the share of people below it: about 2% of people score "high" by chance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Score from which the threat is low.
    pub low: f64,
    /// Score from which it is medium.
    pub medium: f64,
    /// Score from which it is high.
    pub high: f64,
    /// Score from which it is critical.
    pub critical: f64,
    /// The detectors' consensus from which a consistent browser's threat is high (the
    /// LEGITIMATE_BROWSER rule then no longer applies): about one person in 500 by chance,
    /// against the ≤ 1% of people flagged the rule exists for.
    pub browser_high: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            low: 0.90,
            medium: 0.95,
            high: 0.98,
            critical: 0.995,
            browser_high: 0.998,
        }
    }
}

/// Whether a crawler claim (user agent naming a crawler that must be verified) held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The user agent names no crawler that must be verified.
    None,
    /// It names one and proved it (how).
    Verified(String),
    /// It names one and did not (why).
    Spoofed(String),
    /// It could not be decided (DNS failed; why).
    Undecided(String),
}

/// What is known about one client in one window besides its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Mixed model score in [0, 1].
    pub score: f64,
    /// The detectors' consensus in [0, 1] (see `model::Scored::consensus`): what overrules a
    /// legitimate browser.
    pub consensus: f64,
    /// Matching crawler rule (`name`, `action`), if any.
    pub crawler_rule: Option<(String, String)>,
    /// Whether its crawler claim held.
    pub claim: Claim,
    /// Category of the client's JA4 in the reference data (`browser`, `library`, …; empty if
    /// unknown) and its application label.
    pub ja4_category: String,
    /// The application label of its JA4.
    pub ja4_application: String,
    /// The user agent says it is a browser (Mozilla/… without bot words).
    pub ua_claims_browser: bool,
    /// Its user agent (a request's).
    pub user_agent: String,
    /// Browser consistency signals, each in [0, 1].
    pub modern_browser_score: f64,
    /// Share of its requests with Accept-Language.
    pub accept_language_ratio: f64,
    /// Share with a cookie or a Referer.
    pub cookie_or_referer_ratio: f64,
    /// Share with Sec-Fetch-* headers.
    pub sec_fetch_ratio: f64,
    /// Page requests it made (requests that are not assets).
    pub pages: f64,
    /// Behaviour this site's people show and this client does not (feature names, e.g.
    /// `asset_ratio`, `page_referer_ratio`), judged once it has fetched enough pages
    /// ([`MIN_PAGES_FOR_BEHAVIOUR`]).
    pub missing_behaviour: Vec<&'static str>,
    /// What its TCP stack or headers contradict in its claims (one sentence each).
    pub contradictions: Vec<String>,
    /// The top features of the score, strongest first.
    pub top_features: Vec<(String, f64)>,
    /// Requests and connections-without-request of the client in the window.
    pub requests: u64,
    /// Connections that made no request.
    pub orphans: u64,
    /// Share of its requests answered 4xx.
    pub error_4xx_ratio: f64,
    /// Challenges it solved in the window (mod_ja4's proof of work: it runs a JavaScript
    /// engine).
    pub challenges_solved: u64,
    /// Share of its requests whose HTTP/2 stack contradicts its TLS stack or user agent
    /// (`h2_stack_mismatch_ratio`).
    pub h2_stack_mismatch_ratio: f64,
}

/// The decision with its reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What it is.
    pub verdict: Verdict,
    /// How urgent.
    pub threat: Threat,
    /// Why, one sentence each (for the analyst).
    pub reasons: Vec<String>,
}

/// Pages a client must have fetched before the absence of a behaviour counts against it:
/// a person who opened two pages from a bookmark has shown nothing yet.
pub const MIN_PAGES_FOR_BEHAVIOUR: f64 = 5.0;

/// A baseline share from which a behaviour is "what this site's people show" (its absence in
/// a browser-like client is evidence): 60% of the baseline's clients show it.
pub const EXPECTED_PRESENCE: f64 = 0.6;

/// How the absence of a behaviour reads for an analyst.
fn missing_text(name: &str) -> &str {
    match name {
        "asset_ratio" => "no page assets",
        "page_referer_ratio" => "no followed links",
        "cookie_ratio" => "no cookies kept",
        other => other,
    }
}

/// Whether `name` is a behavioural feature (see `features::Evidence`).
fn behavioural(name: &str) -> bool {
    crate::features::evidence(name) == Some(crate::features::Evidence::Behaviour)
}

/// Consistency of a browser claim, 0..=5: known browser JA4, modern browser headers,
/// Accept-Language, cookies/referers, Sec-Fetch.
pub fn browser_consistency(f: &Facts) -> u8 {
    u8::from(f.ja4_category == "browser")
        + u8::from(f.modern_browser_score >= 0.75)
        + u8::from(f.accept_language_ratio >= 0.5)
        + u8::from(f.cookie_or_referer_ratio > 0.0)
        + u8::from(f.sec_fetch_ratio >= 0.5)
}

/// Decides one client.
pub fn decide(f: &Facts, t: &Thresholds) -> Decision {
    let mut reasons = Vec::new();
    let score_threat = Threat::of_score(f.score, t);
    let top = |n: usize| {
        f.top_features
            .iter()
            .take(n)
            .map(|(k, v)| format!("{k} ({:.0}%)", v * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Crawler claims first: they are settled by the network, not by behaviour.
    match &f.claim {
        Claim::Verified(how) => {
            let name = f.crawler_rule.as_ref().map_or("crawler", |r| r.0.as_str());
            reasons.push(format!("verified {name} ({how})"));
            return Decision {
                verdict: Verdict::VerifiedBot,
                threat: Threat::None,
                reasons,
            };
        }
        Claim::Spoofed(why) => {
            let name = f
                .crawler_rule
                .as_ref()
                .map_or("a crawler", |r| r.0.as_str());
            reasons.push(format!("claims to be {name} but {why}"));
            return Decision {
                verdict: Verdict::Bot,
                threat: score_threat.max(Threat::High),
                reasons,
            };
        }
        Claim::Undecided(why) => reasons.push(format!("crawler claim undecided: {why}")),
        Claim::None => {}
    }
    if let Some((name, action)) = &f.crawler_rule {
        if action == "deny" || action == "challenge" {
            reasons.push(format!("crawler rule {name} ({action})"));
            return Decision {
                verdict: Verdict::Bot,
                threat: score_threat.max(if action == "deny" {
                    Threat::High
                } else {
                    Threat::Medium
                }),
                reasons,
            };
        }
    }
    // A browser user agent over a TLS stack known not to be a browser's.
    if f.ua_claims_browser && !f.ja4_category.is_empty() && f.ja4_category != "browser" {
        reasons.push(format!(
            "browser user agent on a non-browser TLS stack ({})",
            if f.ja4_application.is_empty() {
                f.ja4_category.as_str()
            } else {
                f.ja4_application.as_str()
            }
        ));
        return Decision {
            verdict: Verdict::Bot,
            threat: score_threat.max(Threat::High),
            reasons,
        };
    }
    // An HTTP/2 stack that is not what its TLS stack and user agent say: a copied ClientHello
    // over another client's HTTP/2 (mod_ja4's flags, decided per request).
    if f.requests > 0 && f.h2_stack_mismatch_ratio >= 0.5 {
        reasons.push(format!(
            "its HTTP/2 stack contradicts its TLS stack or user agent on {:.0}% of requests (an impersonator)",
            f.h2_stack_mismatch_ratio * 100.0
        ));
        return Decision {
            verdict: Verdict::Bot,
            threat: score_threat.max(Threat::High),
            reasons,
        };
    }
    // Automation that says so: a tool's user agent (or none), or a library's TLS stack
    // (crawlers a rule names are that rule's business).
    let named_crawler = f.crawler_rule.is_some();
    if let Some(tool) = declared_tool(&f.user_agent).filter(|_| !named_crawler && f.requests > 0) {
        reasons.push(format!("automated client: its user agent is {tool}"));
        return Decision {
            verdict: Verdict::Bot,
            threat: score_threat.max(Threat::Medium),
            reasons,
        };
    }
    if !named_crawler && (f.ja4_category == "library" || f.ja4_category == "tool") {
        reasons.push(format!(
            "automated client: a {} TLS stack ({})",
            f.ja4_category,
            if f.ja4_application.is_empty() {
                "unnamed"
            } else {
                f.ja4_application.as_str()
            }
        ));
        return Decision {
            verdict: Verdict::Bot,
            threat: score_threat.max(Threat::Medium),
            reasons,
        };
    }
    // Behaviour no browser shows: handshakes that never ask for anything, and 4xx storms.
    if f.requests == 0 && f.orphans >= 2 {
        reasons.push(format!("{} TLS handshakes without a request", f.orphans));
        return Decision {
            verdict: Verdict::Bot,
            threat: score_threat.max(Threat::Medium),
            reasons,
        };
    }
    if f.requests >= 20 && f.error_4xx_ratio >= 0.5 {
        reasons.push(format!(
            "{:.0}% of {} requests answered 4xx (probing)",
            f.error_4xx_ratio * 100.0,
            f.requests
        ));
        return Decision {
            verdict: Verdict::Bot,
            threat: score_threat.max(Threat::Medium),
            reasons,
        };
    }
    let consistency = browser_consistency(f);
    if score_threat != Threat::None {
        reasons.push(format!("anomaly score {:.3}: {}", f.score, top(3)));
    }
    reasons.extend(f.contradictions.iter().cloned());
    // Presents a browser: its user agent, headers and (when labelled) TLS stack say so.
    let presents_browser = f.ua_claims_browser
        && consistency >= 3
        && (f.ja4_category.is_empty() || f.ja4_category == "browser");
    let judged = f.pages >= MIN_PAGES_FOR_BEHAVIOUR;
    let missing = if judged && presents_browser {
        f.missing_behaviour.as_slice()
    } else {
        &[]
    };
    if !missing.is_empty() {
        reasons.push(format!(
            "presents a browser but does not behave like this site's people: {} over {:.0} pages",
            missing
                .iter()
                .map(|m| missing_text(m))
                .collect::<Vec<_>>()
                .join(", "),
            f.pages
        ));
    }
    // A high score whose strongest reasons are behaviour (not rarity or the stack) overrules
    // claims at the ordinary `high` threshold; otherwise it takes the detectors' consensus
    // past `browser_high`.
    let behaviour_high = f.score >= t.high
        && f.top_features
            .iter()
            .take(3)
            .any(|(name, _)| behavioural(name));
    // LEGITIMATE_BROWSER: a browser by its claims (a known browser JA4, consistent on ≥ 4 of
    // 5 counts — or a TLS stack we do not know that shows every behaviour people show), that
    // behaves like this site's people and contradicts nothing, is not flagged unless the
    // threat is high. Ranks are calibrated on people, so about one person in fifty sits past
    // "high" by chance; overruling the pass on rarity alone takes both detectors placing it
    // where one person in 500 goes.
    let known_browser = f.ja4_category == "browser";
    let unknown_stack_behaving = f.ja4_category.is_empty()
        && f.ua_claims_browser
        && judged
        && f.missing_behaviour.is_empty();
    if (known_browser || unknown_stack_behaving)
        && consistency >= 4
        && missing.is_empty()
        && f.contradictions.is_empty()
        && !behaviour_high
        && f.consensus < t.browser_high
    {
        reasons.push(format!("legitimate browser (consistency {consistency}/5)"));
        return Decision {
            verdict: Verdict::LegitimateBrowser,
            threat: Threat::None,
            reasons,
        };
    }
    // Missing behaviour: no assets alone only takes the pass away (a returning visitor with a
    // warm cache fetches none); pages never reached by a link make a client suspicious (people
    // click through a site); none of what people do makes it a bot.
    let floor = match missing {
        [] => Threat::None,
        [one] if *one == "asset_ratio" => Threat::None,
        [_] => Threat::Low,
        _ => Threat::Medium,
    };
    let mut threat = score_threat.max(floor);
    // A solved challenge proves a JavaScript engine, not a person: one that solved it and
    // still does not browse like this site's people is a browser under a script (a headless
    // crawler passes the challenge; it does not follow links as people do).
    if f.challenges_solved > 0 {
        if missing.is_empty() {
            reasons.push(format!("solved {} challenge(s)", f.challenges_solved));
        } else {
            reasons.push(format!(
                "solved {} challenge(s) yet does not browse like this site's people: a scripted browser",
                f.challenges_solved
            ));
            threat = threat.max(Threat::Medium);
        }
    }
    let verdict = match threat {
        Threat::None => Verdict::Human,
        Threat::Low => Verdict::Suspicious,
        Threat::Medium if missing.is_empty() => Verdict::Suspicious,
        _ => Verdict::Bot,
    };
    Decision {
        verdict,
        threat,
        reasons,
    }
}

/// The tool a user agent declares (HTTP libraries, command-line clients, frameworks), or
/// `an empty one`; `None` for anything else. Crawlers are the crawler rules' business.
pub fn declared_tool(ua: &str) -> Option<&'static str> {
    const TOOLS: [(&str, &str); 28] = [
        ("curl/", "curl"),
        ("wget/", "Wget"),
        ("python-requests", "python-requests"),
        ("python-urllib", "Python urllib"),
        ("python-httpx", "HTTPX"),
        ("aiohttp", "aiohttp"),
        ("httpx/", "HTTPX"),
        ("go-http-client", "Go net/http"),
        ("java/", "Java"),
        ("java-http-client", "Java HttpClient"),
        ("okhttp", "OkHttp"),
        ("apache-httpclient", "Apache HttpClient"),
        ("node-fetch", "node-fetch"),
        ("undici", "Node undici"),
        ("axios/", "axios"),
        ("libwww-perl", "libwww-perl"),
        ("scrapy", "Scrapy"),
        ("guzzlehttp", "Guzzle"),
        ("ruby", "Ruby"),
        ("postmanruntime", "Postman"),
        ("insomnia", "Insomnia"),
        ("httpie", "HTTPie"),
        ("powershell", "PowerShell"),
        ("headlesschrome", "HeadlessChrome"),
        ("libcurl", "libcurl"),
        ("reqwest", "reqwest"),
        ("deno/", "Deno"),
        ("dart/", "Dart"),
    ];
    if ua.trim().is_empty() {
        return Some("empty");
    }
    let l = ua.to_ascii_lowercase();
    // Node's fetch (undici) says only `node`.
    if l.trim() == "node" {
        return Some("Node fetch");
    }
    TOOLS
        .iter()
        .find(|(k, _)| l.contains(k))
        .map(|(_, name)| *name)
}

/// The bot score of a decision, 1–99 on the scale operators know from Cloudflare: 1 is
/// certainly automated, 99 the most human-like. Bands follow the verdict, so the score never
/// contradicts it: 1 for a verified crawler or a bot at high threat; 2–9 a bot; 10–29
/// suspicious; 30–99 a human or legitimate browser. Within a band the mixed anomaly score
/// `score` (0–1) places it: the higher, the lower the bot score. Below 30 is what the
/// detector flags or knows to be automated.
pub fn bot_score(verdict: Verdict, threat: Threat, score: f64) -> u8 {
    let s = if score.is_finite() {
        score.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let band = |lo: f64, hi: f64, x: f64| (hi - (hi - lo) * x).round() as u8;
    match verdict {
        Verdict::VerifiedBot => 1,
        Verdict::Bot if threat >= Threat::High => 1,
        Verdict::Bot => band(2.0, 9.0, s),
        Verdict::Suspicious => band(10.0, 29.0, ((s - 0.5) / 0.5).clamp(0.0, 1.0)),
        Verdict::Human | Verdict::LegitimateBrowser => band(30.0, 99.0, s),
    }
}

/// Whether a user agent presents itself as a browser (and not as a bot).
pub fn ua_claims_browser(ua: &str) -> bool {
    let l = ua.to_ascii_lowercase();
    l.starts_with("mozilla/")
        && ![
            "bot",
            "crawl",
            "spider",
            "slurp",
            "headless",
            "python",
            "curl",
            "wget",
            "http-client",
        ]
        .iter()
        .any(|w| l.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Facts {
        Facts {
            score: 0.5,
            consensus: 0.5,
            crawler_rule: None,
            claim: Claim::None,
            ja4_category: String::new(),
            ja4_application: String::new(),
            ua_claims_browser: false,
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/153.0".into(),
            modern_browser_score: 0.0,
            accept_language_ratio: 0.0,
            cookie_or_referer_ratio: 0.0,
            sec_fetch_ratio: 0.0,
            pages: 10.0,
            missing_behaviour: Vec::new(),
            contradictions: Vec::new(),
            top_features: vec![("post_ratio".into(), 0.6), ("hits".into(), 0.3)],
            requests: 10,
            orphans: 0,
            error_4xx_ratio: 0.0,
            challenges_solved: 0,
            h2_stack_mismatch_ratio: 0.0,
        }
    }

    #[test]
    fn crawler_claims_decide_first() {
        let t = Thresholds::default();
        let f = Facts {
            score: 0.999,
            crawler_rule: Some(("googlebot".into(), "verify".into())),
            claim: Claim::Verified("published range".into()),
            ..base()
        };
        assert_eq!(decide(&f, &t).verdict, Verdict::VerifiedBot);
        let f = Facts {
            claim: Claim::Spoofed("66.0.0.1 has no reverse DNS name".into()),
            score: 0.1,
            ..f
        };
        let d = decide(&f, &t);
        assert_eq!((d.verdict, d.threat), (Verdict::Bot, Threat::High));
        assert!(d.reasons[0].contains("claims to be googlebot"));
    }

    #[test]
    fn browser_ua_on_a_library_stack_is_caught_and_legitimate_browsers_pass() {
        let t = Thresholds::default();
        let spoof = Facts {
            ua_claims_browser: true,
            ja4_category: "library".into(),
            ja4_application: "Python".into(),
            ..base()
        };
        let d = decide(&spoof, &t);
        assert_eq!(d.verdict, Verdict::Bot);
        assert!(d.reasons[0].contains("Python"));
        let browser = Facts {
            score: 0.96,
            ua_claims_browser: true,
            ja4_category: "browser".into(),
            modern_browser_score: 1.0,
            accept_language_ratio: 1.0,
            cookie_or_referer_ratio: 0.5,
            sec_fetch_ratio: 0.0,
            // Flagged for being rare (a browser the window has few of), not for behaviour.
            top_features: vec![
                ("ja4_rarity".into(), 0.5),
                ("asn_concentration".into(), 0.2),
            ],
            ..base()
        };
        assert_eq!(browser_consistency(&browser), 4);
        assert_eq!(decide(&browser, &t).verdict, Verdict::LegitimateBrowser);
        // Unless the threat is high on both detectors.
        let d = decide(
            &Facts {
                score: 0.999,
                consensus: 0.9985,
                ..browser.clone()
            },
            &t,
        );
        assert_eq!((d.verdict, d.threat), (Verdict::Bot, Threat::Critical));
        // Past "high" on both, but where one person in a hundred goes: still a browser.
        let d = decide(
            &Facts {
                score: 0.99,
                consensus: 0.989,
                ..browser.clone()
            },
            &t,
        );
        assert_eq!(d.verdict, Verdict::LegitimateBrowser);
        // One detector alone far out (the mix high, the other detector ordinary) does not
        // overrule a consistent browser.
        let d = decide(
            &Facts {
                score: 0.99,
                consensus: 0.9,
                ..browser.clone()
            },
            &t,
        );
        assert_eq!(d.verdict, Verdict::LegitimateBrowser);
        // Three of five is not enough.
        let d = decide(
            &Facts {
                accept_language_ratio: 0.0,
                ..browser
            },
            &t,
        );
        assert_eq!(d.verdict, Verdict::Suspicious);
        assert!(d.reasons[0].contains("ja4_rarity (50%)"), "{:?}", d.reasons);
    }

    /// A consistent browser on paper: what an impersonation library or a headless browser
    /// presents.
    fn presents_browser() -> Facts {
        Facts {
            score: 0.5,
            ua_claims_browser: true,
            ja4_category: "browser".into(),
            modern_browser_score: 1.0,
            accept_language_ratio: 1.0,
            cookie_or_referer_ratio: 1.0,
            sec_fetch_ratio: 1.0,
            pages: 40.0,
            ..base()
        }
    }

    #[test]
    fn claims_without_behaviour_do_not_pass() {
        let t = Thresholds::default();
        // Everything a browser claims, none of what this site's people do: a bot, even
        // at an ordinary score.
        let imp = Facts {
            missing_behaviour: vec!["asset_ratio", "page_referer_ratio"],
            ..presents_browser()
        };
        let d = decide(&imp, &t);
        assert_eq!(
            (d.verdict, d.threat),
            (Verdict::Bot, Threat::Medium),
            "{d:?}"
        );
        assert!(
            d.reasons
                .iter()
                .any(|r| r.contains("no page assets, no followed links over 40 pages")),
            "{:?}",
            d.reasons
        );
        // No followed links: suspicious; with a medium score: a bot. No assets alone (a warm
        // cache) only takes the pass away: the score decides.
        let one = Facts {
            missing_behaviour: vec!["page_referer_ratio"],
            ..presents_browser()
        };
        assert_eq!(decide(&one, &t).verdict, Verdict::Suspicious);
        let cached = Facts {
            missing_behaviour: vec!["asset_ratio"],
            ..presents_browser()
        };
        assert_eq!(decide(&cached, &t).verdict, Verdict::Human);
        assert_eq!(
            decide(
                &Facts {
                    score: 0.96,
                    ..one.clone()
                },
                &t
            )
            .verdict,
            Verdict::Bot
        );
        // Too few pages to tell: claims decide, as before.
        let thin = Facts {
            pages: 2.0,
            ..imp.clone()
        };
        assert_eq!(decide(&thin, &t).verdict, Verdict::LegitimateBrowser);
        // An unknown TLS stack with a browser's claims and every behaviour passes; one that
        // shows none does not.
        let unknown = Facts {
            ja4_category: String::new(),
            ..presents_browser()
        };
        assert_eq!(decide(&unknown, &t).verdict, Verdict::LegitimateBrowser);
        assert_ne!(
            decide(
                &Facts {
                    missing_behaviour: vec!["asset_ratio"],
                    ..unknown
                },
                &t
            )
            .verdict,
            Verdict::LegitimateBrowser
        );
    }

    #[test]
    fn an_http2_stack_that_contradicts_the_tls_stack_is_an_impersonator() {
        let t = Thresholds::default();
        let imp = Facts {
            h2_stack_mismatch_ratio: 1.0,
            ..presents_browser()
        };
        let d = decide(&imp, &t);
        assert_eq!((d.verdict, d.threat), (Verdict::Bot, Threat::High), "{d:?}");
        assert!(d.reasons[0].contains("HTTP/2 stack"), "{:?}", d.reasons);
        // One odd request in ten (a proxy's retry, say) does not decide.
        let once = Facts {
            h2_stack_mismatch_ratio: 0.1,
            ..presents_browser()
        };
        assert_eq!(decide(&once, &t).verdict, Verdict::LegitimateBrowser);
    }

    #[test]
    fn a_solved_challenge_without_peoples_behaviour_is_a_scripted_browser() {
        let t = Thresholds::default();
        let headless = Facts {
            missing_behaviour: vec!["page_referer_ratio"],
            challenges_solved: 2,
            ..presents_browser()
        };
        let d = decide(&headless, &t);
        assert_eq!(
            (d.verdict, d.threat),
            (Verdict::Bot, Threat::Medium),
            "{d:?}"
        );
        assert!(
            d.reasons.iter().any(|r| r.contains("a scripted browser")),
            "{:?}",
            d.reasons
        );
        // Without the solve it was only suspicious (challenged).
        let unsolved = Facts {
            challenges_solved: 0,
            ..headless
        };
        assert_eq!(decide(&unsolved, &t).verdict, Verdict::Suspicious);
        // A person who solved one and browses as people do keeps the pass.
        let person = Facts {
            challenges_solved: 1,
            ..presents_browser()
        };
        let d = decide(&person, &t);
        assert_eq!(d.verdict, Verdict::LegitimateBrowser, "{d:?}");
    }

    #[test]
    fn behaviour_overrules_claims_at_the_ordinary_high_threshold() {
        let t = Thresholds::default();
        let f = Facts {
            score: 0.985,
            consensus: 0.97,
            top_features: vec![
                ("direct_access_ratio".into(), 0.4),
                ("ja4_rarity".into(), 0.2),
            ],
            ..presents_browser()
        };
        let d = decide(&f, &t);
        assert_eq!((d.verdict, d.threat), (Verdict::Bot, Threat::High), "{d:?}");
        // The same score for rarity alone leaves a consistent, behaving browser alone.
        let rare = Facts {
            top_features: vec![
                ("ja4_rarity".into(), 0.6),
                ("header_order_sharing".into(), 0.2),
            ],
            ..f
        };
        assert_eq!(decide(&rare, &t).verdict, Verdict::LegitimateBrowser);
    }

    #[test]
    fn contradictions_block_the_pass_and_are_reasons() {
        let t = Thresholds::default();
        let f = Facts {
            contradictions: vec![
                "user agent names Windows, its SYN's TTL is 64 (Linux, macOS)".into(),
            ],
            ..presents_browser()
        };
        let d = decide(&f, &t);
        // Not a verdict on its own (proxies terminate TCP): the score decides.
        assert_eq!(d.verdict, Verdict::Human);
        assert!(d.reasons[0].contains("TTL is 64"), "{:?}", d.reasons);
        let d = decide(&Facts { score: 0.96, ..f }, &t);
        assert_eq!(d.verdict, Verdict::Suspicious);
    }

    #[test]
    fn bot_scores_follow_the_verdict_bands() {
        use Threat::*;
        assert_eq!(bot_score(Verdict::VerifiedBot, None, 0.2), 1);
        assert_eq!(bot_score(Verdict::Bot, High, 0.5), 1);
        assert_eq!(bot_score(Verdict::Bot, Medium, 0.0), 9);
        assert_eq!(bot_score(Verdict::Bot, Medium, 1.0), 2);
        assert_eq!(bot_score(Verdict::Suspicious, Low, 0.5), 29);
        assert_eq!(bot_score(Verdict::Suspicious, Low, 1.0), 10);
        assert_eq!(bot_score(Verdict::Human, None, 0.0), 99);
        assert_eq!(bot_score(Verdict::LegitimateBrowser, None, 1.0), 30);
        assert_eq!(bot_score(Verdict::Human, None, f64::NAN), 65);
        // Every verdict's scores stay in its band, whatever the score.
        for i in 0..=100 {
            let x = f64::from(i) / 100.0;
            assert!((2..=9).contains(&bot_score(Verdict::Bot, Medium, x)));
            assert!((10..=29).contains(&bot_score(Verdict::Suspicious, Low, x)));
            assert!((30..=99).contains(&bot_score(Verdict::Human, None, x)));
        }
    }

    #[test]
    fn declared_automation_is_a_bot() {
        let t = Thresholds::default();
        for ua in [
            "curl/8.5.0",
            "python-requests/2.32.3",
            "Go-http-client/2.0",
            "Java/17.0.15",
            "",
        ] {
            let d = decide(
                &Facts {
                    user_agent: ua.into(),
                    score: 0.1,
                    ..base()
                },
                &t,
            );
            assert_eq!(
                (d.verdict, d.threat),
                (Verdict::Bot, Threat::Medium),
                "{ua}"
            );
            assert!(
                d.reasons[0].starts_with("automated client"),
                "{:?}",
                d.reasons
            );
        }
        // A library stack under a user agent of its own.
        let d = decide(
            &Facts {
                user_agent: "InventorySync/4.2".into(),
                ja4_category: "library".into(),
                ja4_application: "Python".into(),
                score: 0.1,
                ..base()
            },
            &t,
        );
        assert_eq!(d.verdict, Verdict::Bot);
        assert!(
            d.reasons[0].contains("library TLS stack (Python)"),
            "{:?}",
            d.reasons
        );
        assert_eq!(
            declared_tool("Mozilla/5.0 (X11; Linux x86_64) Firefox/153.0"),
            None
        );
    }

    #[test]
    fn thresholds_and_rules() {
        let t = Thresholds::default();
        assert_eq!(decide(&base(), &t).verdict, Verdict::Human);
        assert_eq!(Threat::of_score(0.999, &t), Threat::Critical);
        assert_eq!(Threat::of_score(0.91, &t), Threat::Low);
        let d = decide(
            &Facts {
                crawler_rule: Some(("scanner".into(), "deny".into())),
                ..base()
            },
            &t,
        );
        assert_eq!((d.verdict, d.threat), (Verdict::Bot, Threat::High));
        assert!(ua_claims_browser(
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
        ));
        assert!(!ua_claims_browser(
            "Mozilla/5.0 (compatible; Googlebot/2.1)"
        ));
        assert!(!ua_claims_browser("python-requests/2.31"));
    }
}
