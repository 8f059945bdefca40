//! The traffic lab, quick: people in real Chromium and Firefox ESR sessions (puppeteer-core),
//! headless Chromium crawlers, curl-impersonate scrapers presenting Chrome's and Safari's TLS
//! and HTTP/2, curl, Python, Java, Go and raw-handshake clients against a private httpd with
//! the built mod_ja4 and this sidecar, each from its own loopback address. Asserts the
//! issue's targets on the smaller run, for both ways of training (a people-only baseline and
//! the mixed window, as production trains): bots ≥ 90% detected with every bot scenario ≥ 2/3
//! of its clients, at most 1 of its 46 people flagged (2%), verified crawlers labelled,
//! spoofers caught, the campaign one cluster; then, with mod_ja4 enforcing the published
//! decisions, at most 0.5% of the people's requests challenged, at least 80% of the bots'
//! requests stopped, genuine crawlers never. The lab is statistical: a run that misses is
//! repeated once with fresh traffic, and the second run must meet the targets (both tables
//! are printed).
//! Needs root (httpd's User, capture) and the setup script's chromium, firefox-esr,
//! puppeteer-core, curl-cffi, java and dnsmasq.

use std::process::Command;

#[test]
fn quick_lab_meets_the_targets() {
    if !ja4_testkit::need_root() {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let module = root.join("target/debug/libmod_ja4.so");
    assert!(
        module.exists(),
        "{} missing: run `cargo build -p mod_ja4`",
        module.display()
    );
    let mut tables = String::new();
    for attempt in 0..2 {
        match run_once(&module, attempt) {
            Ok(()) => return,
            Err(table) if attempt == 0 => tables.push_str(&table),
            Err(table) => panic!("the lab missed its targets twice:\n{tables}\n{table}"),
        }
    }
}

/// One quick lab run; `Err(table + why)` when it misses a target.
fn run_once(module: &std::path::Path, attempt: u32) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("ja4-lab-test-{}-{attempt}", std::process::id()));
    let report = dir.with_extension("json");
    // The lab runs the production sidecar beside it (the workspace's build of it).
    let lab = std::path::Path::new(env!("CARGO_BIN_EXE_ja4-lab"));
    let sidecar = lab.with_file_name("ja4-sidecar");
    assert!(
        sidecar.exists(),
        "{} missing: run `cargo build -p ja4-sidecar`",
        sidecar.display()
    );
    let out = Command::new(lab)
        .args(["lab", "--quick", "--module"])
        .arg(module)
        .arg("--sidecar")
        .arg(&sidecar)
        .arg("--work-dir")
        .arg(&dir)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    // Infrastructure failures are not statistics: no second chance.
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report);
    let miss = |why: String| Err(format!("{table}{why}\n"));
    let variants = r["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2, "{table}");
    for v in variants {
        let training = v["training"].as_str().unwrap();
        let scenario = |name: &str| {
            v["scenarios"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .unwrap_or_else(|| panic!("{name} missing:\n{table}"))
                .clone()
        };
        for s in v["scenarios"].as_array().unwrap() {
            assert!(s["clients"].as_u64().unwrap() > 0, "{table}");
            if let Some(d) = s["detection_rate"].as_f64() {
                if d < 2.0 / 3.0 {
                    return miss(format!("{training}: {} detected {d}", s["name"]));
                }
            }
        }
        if v["bots_detected"].as_f64().unwrap() < 0.90 {
            return miss(format!("{training}: bots detected {}", v["bots_detected"]));
        }
        let people = scenario("humans")["flagged"].as_u64().unwrap()
            + scenario("humans_firefox")["flagged"].as_u64().unwrap();
        if people > 1 {
            return miss(format!("{training}: {people} people flagged"));
        }
        // Rule-based outcomes must hold every time.
        assert_eq!(
            scenario("verified_good_bots")["verified_rate"],
            1.0,
            "{table}"
        );
        assert_eq!(scenario("verified_good_bots")["flagged"], 0, "{table}");
        assert_eq!(
            scenario("spoofed_crawlers")["detection_rate"],
            1.0,
            "{table}"
        );
        if v["campaign_purity"] != 1.0 {
            return miss(format!("{training}: the campaign is not one cluster"));
        }
        if v["roc_auc"].as_f64().unwrap() < 0.95 {
            return miss(format!("{training}: ROC AUC below 0.95"));
        }
    }
    // Phase 2: mod_ja4 enforcing the published decisions.
    let m = &r["mitigation"];
    if m["people_requests_challenged"].as_f64().unwrap() > 0.005 {
        return miss(format!(
            "people challenged {}",
            m["people_requests_challenged"]
        ));
    }
    if m["bot_requests_stopped"].as_f64().unwrap() < 0.80 {
        return miss(format!(
            "bot requests stopped {}",
            m["bot_requests_stopped"]
        ));
    }
    let verified = m["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "verified_good_bots")
        .unwrap_or_else(|| panic!("verified_good_bots missing in phase 2:\n{table}"));
    assert_eq!(verified["blocked"], 0, "{table}");
    assert_eq!(verified["challenged"], 0, "{table}");
    // Challenge solvers at the next scoring run are reported, not required to be bots: a
    // headless crawler that browsed on with its pass may show people's behaviour in the
    // combined window (seen in CI: rescored legitimate_browser).
    for pair in m["solvers_rescored"].as_array().unwrap() {
        eprintln!("challenge solver rescored: {pair}");
    }
    Ok(())
}
