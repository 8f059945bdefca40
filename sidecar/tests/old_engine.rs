//! The schema on an old engine: ClickHouse 23.10 (chDB 1.0.2 from PyPI, close to our 23.8
//! floor), so the migrations don't rely on newer syntax. The embedded flavour is applied twice
//! and fed the seed traffic (enrichment, aggregates and feature views checked); the server
//! flavour with `ON CLUSTER` and the access-control statements gets a `formatQuery` parse check.
//! `scripts/fetch-chdb-old.sh` (run by the setup script) fetches the engine.

use std::path::PathBuf;
use std::process::Command;

fn sidecar(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ja4-sidecar"))
        .args(args)
        .env("JA4_DATA_WRITER_PASSWORD", "writer-pw")
        .env("JA4_ANALYST_PASSWORD", "analyst-pw")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn schema_applies_on_clickhouse_23_10() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let site = std::env::var_os("JA4_CHDB_OLD")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/chdb-old/site"));
    assert!(
        site.join("chdb").exists(),
        "{} missing: run scripts/fetch-chdb-old.sh",
        site.display()
    );
    let dir = std::env::temp_dir().join(format!("ja4-old-engine-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.sql");
    std::fs::write(
        &plan,
        sidecar(&["migrate", "--print", "--database", "ja4old"]),
    )
    .unwrap();
    let parse = dir.join("parse.sql");
    std::fs::write(
        &parse,
        sidecar(&[
            "migrate",
            "--print",
            "--database",
            "ja4old",
            "--url",
            "http://127.0.0.1:1",
            "--cluster",
            "ja4c",
        ]),
    )
    .unwrap();
    let out = Command::new("python3")
        .arg(root.join("sidecar/tests/old_engine.py"))
        .args([
            &plan,
            &root.join("sidecar/store/tests/fixtures/seed.sql"),
            &parse,
            &dir.join("data"),
        ])
        .arg("ja4old")
        .env("PYTHONPATH", &site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|&b| b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(report["errors"], serde_json::json!([]), "{report:#}");
    let statements = std::fs::read_to_string(&plan)
        .unwrap()
        .matches(";\n")
        .count();
    assert_eq!(report["applied"], 2 * statements, "{report:#}");
    let checks = &report["checks"];
    assert_eq!(checks["http_logs"], "24");
    assert_eq!(checks["enriched"], "64501\tNL\tua\tpython-requests");
    assert_eq!(checks["agg_hits"], "20\t6");
    assert_eq!(checks["features"], "20\t0.25\t0.3");
    assert_eq!(checks["features_24h"], "5");
    assert!(report["parsed"].as_u64().unwrap() > 60, "{report:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
