//! The traffic lab, quick: real Chromium, curl, Python, Java and raw-handshake clients against
//! a private httpd with the built mod_ja4 and this sidecar, each from its own loopback address.
//! Asserts the targets on the smaller run: every bot scenario detected, no person
//! flagged, verified crawlers labelled, spoofers caught, the campaign one cluster.
//! Needs root (httpd's User, capture) and the setup script's chromium, java and dnsmasq.

use std::process::Command;

#[test]
fn quick_lab_meets_the_targets() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !is_root {
        assert!(
            std::env::var_os("CI").is_none(),
            "the lab test needs root under CI"
        );
        eprintln!("skipped: the lab needs root");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let module = root.join("target/debug/libmod_ja4.so");
    assert!(
        module.exists(),
        "{} missing: run `cargo build -p mod_ja4`",
        module.display()
    );
    let dir = std::env::temp_dir().join(format!("ja4-lab-test-{}", std::process::id()));
    let report = dir.with_extension("json");
    let out = Command::new(env!("CARGO_BIN_EXE_ja4-sidecar"))
        .args(["lab", "--quick", "--module"])
        .arg(&module)
        .arg("--work-dir")
        .arg(&dir)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
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
    for s in r["scenarios"].as_array().unwrap() {
        assert!(s["clients"].as_u64().unwrap() > 0, "{table}");
        if let Some(d) = s["detection_rate"].as_f64() {
            assert!(d >= 0.95, "{} detected {d}:\n{table}", s["name"]);
        }
    }
    assert_eq!(scenario("humans")["flagged"], 0, "{table}");
    assert_eq!(
        scenario("verified_good_bots")["verified_rate"],
        1.0,
        "{table}"
    );
    assert_eq!(
        scenario("spoofed_crawlers")["detection_rate"],
        1.0,
        "{table}"
    );
    assert_eq!(r["campaign_purity"], 1.0, "{table}");
    assert!(r["roc_auc"].as_f64().unwrap() >= 0.95, "{table}");
}
