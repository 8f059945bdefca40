//! The `ja4-sidecar pcap` command as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ja4-sidecar"))
}

fn pcap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mod_ja4/core/tests/fixtures/ja4-corpus/pcap")
        .join(name)
}

#[test]
fn json_lines_with_every_variant() {
    let out = bin()
        .args(["pcap"])
        .arg(pcap("curl.pcap"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let tls = &lines[0];
    for f in [
        "pcap",
        "src",
        "src_port",
        "dst",
        "dst_port",
        "ja4",
        "ja4_r",
        "ja4_o",
        "ja4_ro",
        "ja3",
        "ja3_r",
        "ja4s",
        "ja4s_r",
        "ja4t",
        "ja4ts",
        "ja4l_c",
        "ja4l_s",
        "tls_server_name",
    ] {
        assert!(tls.get(f).is_some(), "missing {f}");
    }
    assert_eq!(tls["pcap"], "curl.pcap");
    let http = &lines[1];
    for f in ["ja4h", "ja4h_r", "ja4h_o", "ja4h_ro"] {
        assert!(http[f].is_array(), "missing {f}");
    }
    // --raw / --original-order do not change the JSON: it always has every variant.
    let again = bin()
        .args(["pcap", "--raw", "--original-order"])
        .arg(pcap("curl.pcap"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), text);
}

#[test]
fn unreadable_files_are_named_and_others_still_processed() {
    let dir = std::env::temp_dir().join(format!("ja4-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file at all").unwrap();
    let missing = dir.join("missing.pcap");
    // A capture cut in the middle of a packet record.
    let full = std::fs::read(pcap("wget.pcap")).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 100]).unwrap();

    let out = bin()
        .arg("pcap")
        .arg(&garbage)
        .arg(pcap("curl.pcap"))
        .arg(&missing)
        .arg(&cut)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "exit status must report the failures"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("garbage.pcap"), "{err}");
    assert!(err.contains("missing.pcap"), "{err}");
    assert!(err.contains("cut.pcap"), "{err}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("\"curl.pcap\""))
            .count(),
        2,
        "good file still processed"
    );
    // What was read before the truncation is still reported.
    assert!(
        stdout.lines().any(|l| l.contains("\"cut.pcap\"")),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn text_mode_follows_raw_and_order_flags() {
    let run = |flags: &[&str]| {
        let out = bin()
            .arg("pcap")
            .args(["--format", "text"])
            .args(flags)
            .arg(pcap("http1-with-cookies.pcapng"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run(&[]).contains("ja4h     ge11cr04da00_8ddaef5d77af_280f366eaa04_c2fb0fe53442"));
    assert!(run(&["--raw", "--original-order"]).contains(
        "ja4h_ro  ge11cr04da00_Host,User-Agent,Accept,Accept-Language_yummy_cookie,tasty_cookie_"
    ));
}

#[test]
fn stats_and_facts_flags() {
    let out = bin()
        .args(["pcap", "--stats", "--facts"])
        .arg(pcap("curl.pcap"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats: serde_json::Value = serde_json::from_str(
        String::from_utf8(out.stderr)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stats["stats"]["flow"]["client_hellos"], 1);
    assert!(stats["stats"]["packets"].as_u64().unwrap() > 10);
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["facts"]["client_hello"]["sni"], "localhost");
}

#[test]
fn migrate_then_query_the_embedded_store() {
    let dir = std::env::temp_dir().join(format!("ja4-cli-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = ["--data-dir", dir.to_str().unwrap(), "--database", "clitest"];
    let out = bin().arg("migrate").args(store).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every shipped migration, in order (the list comes from the store crate, not from here).
    let all: Vec<u32> = ja4_store::migrate::MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("applied migrations {all:?}")),
        "{stdout}"
    );
    assert!(all.len() >= 15 && all.windows(2).all(|w| w[1] == w[0] + 1));
    let again = bin().arg("migrate").args(store).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));
    let q = bin()
        .arg("query")
        .args(store)
        .args([
            "--format",
            "json",
            "SELECT version, name FROM clitest.schema_migrations WHERE version = 1",
        ])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    assert_eq!(
        String::from_utf8_lossy(&q.stdout).trim(),
        r#"{"version":1,"name":"requests_raw"}"#
    );
    // Writes are refused, by the command and by the engine's readonly setting.
    for bad in [
        "DROP TABLE clitest.requests_raw",
        "SELECT 1; DROP TABLE clitest.requests_raw",
    ] {
        let out = bin().arg("query").args(store).arg(bad).output().unwrap();
        assert!(!out.status.success(), "{bad} was run");
    }
    let out = bin()
        .arg("query")
        .args(store)
        .arg("SELECT * FROM clitest.nope")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn migrate_print_for_a_cluster_and_for_a_server() {
    // The embedded flavour skips users and grants; a cluster gets ON CLUSTER everywhere.
    let out = bin()
        .args([
            "migrate",
            "--print",
            "--cluster",
            "ja4c",
            "--database",
            "prod",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CREATE DATABASE IF NOT EXISTS prod ON CLUSTER ja4c;"));
    assert!(text.contains(
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/prod/http_logs', '{replica}')"
    ));
    assert!(text.contains("CREATE TABLE IF NOT EXISTS prod.http_logs_all ON CLUSTER ja4c AS prod.http_logs ENGINE = Distributed(ja4c, prod, http_logs, rand())"));
    assert!(!text.contains("CREATE USER"));
    // A server needs the users' passwords, and stores only their SHA-256.
    let out = bin()
        .args(["migrate", "--print", "--url", "http://127.0.0.1:1"])
        .env_remove("JA4_DATA_WRITER_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JA4_DATA_WRITER_PASSWORD"));
    let out = bin()
        .args(["migrate", "--print", "--url", "http://127.0.0.1:1"])
        .env("JA4_DATA_WRITER_PASSWORD", "pw-writer-123")
        .env("JA4_ANALYST_PASSWORD", "pw-analyst-456")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CREATE USER IF NOT EXISTS data_writer IDENTIFIED WITH sha256_hash BY '"));
    assert!(!text.contains("pw-writer-123") && !text.contains("pw-analyst-456"));
}

#[test]
fn ml_fit_score_on_a_csv() {
    let dir = std::env::temp_dir().join(format!("ja4-cli-ml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 2000 rows on a line with noise, 20 rows off it; label in the middle column.
    let mut csv = String::from("x,is_bot,y\n");
    for i in 0..2020u32 {
        let t = f64::from(i % 200) / 10.0;
        let (x, y, bot) = if i >= 2000 {
            (t, 40.0 - t, 1)
        } else {
            (t, t + f64::from(i % 7) / 10.0, 0)
        };
        csv.push_str(&format!("{x},{bot},{y}\n"));
    }
    let input = dir.join("x.csv");
    std::fs::write(&input, csv).unwrap();
    let out_path = dir.join("scores.csv");
    let run = |extra: &[&str]| {
        bin()
            .args(["ml", "fit-score", "--input", input.to_str().unwrap()])
            .args(["--out", out_path.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    for k in ["1", "2"] {
        let out = run(&[
            "--label",
            "is_bot",
            "--features-per-split",
            k,
            "--seed",
            "3",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let auc: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .strip_prefix("roc_auc=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(auc > 0.95, "k={k} auc={auc}");
        let scores = std::fs::read_to_string(&out_path).unwrap();
        assert_eq!(scores.lines().count(), 2021);
        assert_eq!(scores.lines().next(), Some("score"));
    }
    // Without a label nothing is reported, but every row is scored.
    let out = run(&[]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    // Errors name what is wrong.
    let out = run(&["--label", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no column named 'nope'"));
    std::fs::write(&input, "a,b\n1,2\n3,oops\n").unwrap();
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3, column 'b': 'oops'"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_lists_only_production_commands() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        [
            "pcap",
            "serve",
            "migrate",
            "query",
            "ml",
            "refdata",
            "train",
            "score",
            "user",
            "dead-letter",
            "lists",
            "decisions",
            "help"
        ],
        "{help}"
    );
    // The dev tools are another binary: the production one refuses them.
    for dev in ["lab", "synth"] {
        let out = bin().arg(dev).output().unwrap();
        assert!(!out.status.success(), "{dev} ran");
    }
}

#[test]
fn lists_are_added_shown_expired_removed_and_audited() {
    let dir = std::env::temp_dir().join(format!("ja4-cli-lists-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = ["--data-dir", dir.to_str().unwrap(), "--database", "lists"];
    let run = |args: &[&str]| {
        let out = bin().args(args).args(store).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "lists",
        "add",
        "--kind",
        "ip",
        "--value",
        "::ffff:203.0.113.9",
        "--action",
        "deny",
        "--reason",
        "credential stuffing",
        "--analyst",
        "alice",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "deny ip 203.0.113.9 (by alice)");
    let (ok, _, err) = run(&[
        "lists",
        "add",
        "--kind",
        "ja4",
        "--value",
        "T13D1516H2_8daaf6152771_02713d6af862",
        "--action",
        "challenge",
        "--expires",
        "2s",
        "--analyst",
        "bob",
    ]);
    assert!(ok, "{err}");
    // Bad values and expiries are refused with what is wrong, and nothing is written.
    for (args, why) in [
        (
            &[
                "--kind",
                "net",
                "--value",
                "10.0.0.0/33",
                "--action",
                "deny",
            ][..],
            "bad prefix length",
        ),
        (
            &[
                "--kind",
                "ja4",
                "--value",
                "t13d'); DROP",
                "--action",
                "deny",
            ][..],
            "not a JA4",
        ),
        (
            &[
                "--kind",
                "ip",
                "--value",
                "10.0.0.1",
                "--action",
                "deny",
                "--expires",
                "soon",
            ][..],
            "--expires",
        ),
        (
            &["--kind", "ip", "--value", "10.0.0.1", "--action", "block"][..],
            "invalid value",
        ),
    ] {
        let mut a = vec!["lists", "add"];
        a.extend_from_slice(args);
        let (ok, _, err) = run(&a);
        assert!(!ok && err.contains(why), "{args:?}: {err}");
    }
    let (ok, shown, err) = run(&["lists", "show"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    assert!(lines[0].starts_with("kind\tvalue\taction"));
    assert!(shown.contains("ip\t203.0.113.9\tdeny\talice\t"), "{shown}");
    assert!(shown.contains("\tnever\tcredential stuffing"), "{shown}");
    assert!(
        shown.contains("ja4\tt13d1516h2_8daaf6152771_02713d6af862\tchallenge\tbob\t"),
        "{shown}"
    );
    // Both changes are in the audit log, by whom and from the CLI.
    let (ok, audit, err) = run(&[
        "query",
        "SELECT actor, action, target FROM lists.audit_logs WHERE role = 'cli' ORDER BY actor",
    ]);
    assert!(ok, "{err}");
    assert!(audit.contains("alice\tlist_add\tip:203.0.113.9"), "{audit}");
    assert!(
        audit.contains("bob\tlist_add\tja4:t13d1516h2_8daaf6152771_02713d6af862"),
        "{audit}"
    );
    // The challenge entry expires; the deny entry is removed; neither row is deleted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, shown, _) = run(&["lists", "show"]);
        if !shown.contains("challenge") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never expired: {shown}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let (ok, out, err) = run(&[
        "lists",
        "remove",
        "--kind",
        "ip",
        "--value",
        "203.0.113.9",
        "--reason",
        "false positive",
        "--analyst",
        "alice",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "removed ip 203.0.113.9 (by alice)");
    let (_, shown, _) = run(&["lists", "show"]);
    assert_eq!(shown.lines().count(), 1, "{shown}");
    let (_, rows, _) = run(&["query", "SELECT count() FROM lists.access_lists"]);
    assert_eq!(rows.lines().last().unwrap().trim(), "3", "{rows}");
    let _ = std::fs::remove_dir_all(&dir);
}
