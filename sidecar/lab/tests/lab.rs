//! The traffic lab, quick: real Chromium, curl, Python, Java and raw-handshake clients against
//! a private httpd with the built mod_ja4 and this sidecar, each from its own loopback address.
//! Asserts the targets on the smaller run: every bot scenario ≥ 95% detected, at most
//! 2 of its 40 people flagged (the quick baseline is only 20 people), verified crawlers
//! labelled, spoofers caught, the campaign one cluster. The lab is statistical: a run that
//! misses is repeated once with fresh traffic, and the second run must meet the targets
//! (both tables are printed).
//! Needs root (httpd's User, capture) and the setup script's chromium, java and dnsmasq.

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
    let scenario = |name: &str| {
        r["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing:\n{table}"))
            .clone()
    };
    let miss = |why: String| Err(format!("{table}{why}\n"));
    for s in r["scenarios"].as_array().unwrap() {
        assert!(s["clients"].as_u64().unwrap() > 0, "{table}");
        if let Some(d) = s["detection_rate"].as_f64() {
            if d < 0.95 {
                return miss(format!("{} detected {d}", s["name"]));
            }
        }
    }
    if scenario("humans")["flagged"].as_u64().unwrap() > 2 {
        return miss("more than 2 people flagged".into());
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
    if r["campaign_purity"] != 1.0 {
        return miss("the campaign is not one cluster".into());
    }
    if r["roc_auc"].as_f64().unwrap() < 0.95 {
        return miss("ROC AUC below 0.95".into());
    }
    Ok(())
}
