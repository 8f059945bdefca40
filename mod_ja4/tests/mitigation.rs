//! In-module rate limits through a real httpd: `JA4RateLimit` buckets shared by every child
//! (prefork: separate processes), the 429 with `Retry-After`, refill, `JA4Exempt`, and count
//! mode, which decides and says so (`JA4_ACTION`) but never blocks. Needs root.

mod common;

use common::*;

/// `n` requests over new connections (one curl each), returning the status codes.
fn statuses(url: &str, n: usize, extra: &[&str]) -> Vec<String> {
    (0..n).map(|_| status_code(url, extra)).collect()
}

fn count(v: &[String], code: &str) -> usize {
    v.iter().filter(|c| *c == code).count()
}

#[test]
fn a_ja4_rate_limit_is_shared_by_every_child() {
    if !need_root() {
        return;
    }
    let logs = tempdir("ratelimit-ja4-log");
    let extra = format!(
        "JA4Mitigation Enforce\nJA4RateLimit ja4 4/60 block\nLogFormat \"%P %>s\" pids\nCustomLog {}/pids.log pids",
        logs.display()
    );
    let mut h = Httpd::start(
        "ratelimit-ja4",
        &Options {
            mpm: "prefork",
            extra: &extra,
            ..Default::default()
        },
    );
    // Twelve TLS connections from one client stack at once, so that several of prefork's
    // processes serve them: four pass, whichever process counts them.
    let url = h.url(true, "/index.html");
    let got: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..12)
            .map(|_| s.spawn(|| statuses(&url, 1, &["--http1.1"]).remove(0)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        (count(&got, "200"), count(&got, "429")),
        (4, 8),
        "{got:?}\n{}",
        h.error_log()
    );
    // The refusal says when to come back (60 s / 4 requests), and plain HTTP (no JA4) is not
    // limited by JA4.
    let out = curl(&["-D", "-", "--http1.1"], &h.url(true, "/index.html"));
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        head.contains("429") && head.contains("retry-after: 15"),
        "{head}"
    );
    let plain = statuses(&h.url(false, "/index.html"), 5, &[]);
    assert_eq!(count(&plain, "200"), 5, "{plain:?}");
    // Blocked requests are still exported, with their status.
    let recs = h.wait_requests(18);
    assert_eq!(
        recs.iter().filter(|r| r["status"] == 429).count(),
        9,
        "{recs:#?}"
    );
    let j = h.status_json();
    assert_eq!(j["counters"]["mitigation_blocked"], 9, "{j}");
    h.stop();
    let pids: std::collections::HashSet<String> = std::fs::read_to_string(logs.join("pids.log"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(
        pids.len() >= 2,
        "one process served every request: {pids:?}"
    );
    let _ = std::fs::remove_dir_all(logs);
}

#[test]
fn buckets_refill_and_exempt_networks_are_never_limited() {
    if !need_root() {
        return;
    }
    let mut h = Httpd::start(
        "ratelimit-ip",
        &Options {
            extra: "JA4Mitigation Enforce\nJA4RateLimit ip 2/2 block\nJA4Exempt ::1",
            ..Default::default()
        },
    );
    let v4 = h.url(false, "/index.html");
    let got = statuses(&v4, 3, &[]);
    assert_eq!(got, ["200", "200", "429"]);
    // One request's worth of tokens per second comes back.
    std::thread::sleep(std::time::Duration::from_millis(1_300));
    assert_eq!(statuses(&v4, 2, &[]), ["200", "429"]);
    // ::1 is exempt: never limited.
    let v6 = format!("http://[::1]:{}/index.html", h.http);
    let got = statuses(&v6, 6, &[]);
    assert_eq!(count(&got, "200"), 6, "{got:?}");
    h.stop();
}

#[test]
fn count_mode_decides_and_says_but_never_blocks() {
    if !need_root() {
        return;
    }
    let logs = tempdir("ratelimit-count-log");
    let extra = format!(
        "JA4Mitigation Count\nJA4RateLimit ip 2/60 block\nLogFormat \"%>s|%{{JA4_ACTION}}e|%{{JA4_REASON}}e\" mitigation\nCustomLog {}/mitigation.log mitigation",
        logs.display()
    );
    let mut h = Httpd::start(
        "ratelimit-count",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let got = statuses(&h.url(false, "/index.html"), 4, &[]);
    assert_eq!(count(&got, "200"), 4, "{got:?}");
    h.stop();
    let log = std::fs::read_to_string(logs.join("mitigation.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "200|allow|-",
            "200|allow|-",
            "200|count:block|ratelimit:ip",
            "200|count:block|ratelimit:ip"
        ],
        "{log}"
    );
    let _ = std::fs::remove_dir_all(logs);
}

#[test]
fn stack_labels_name_the_stack_and_catch_browser_user_agents_on_libraries() {
    if !need_root() {
        return;
    }
    let labels = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../refdata/measured/ja4-families.tsv");
    let logs = tempdir("stack-log");
    let extra = format!(
        "JA4StackLabels {}\nLogFormat \"%{{User-Agent}}i|%{{JA4_STACK}}e|%{{JA4_UA_MISMATCH}}e\" stack\nCustomLog {}/stack.log stack",
        labels.display(),
        logs.display()
    );
    let mut h = Httpd::start(
        "stack",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let url = h.url(true, "/index.html");
    let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36";
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0";
    curl(&["-A", "curl/7.88.1"], &url);
    curl(&["-A", chrome], &url);
    run(std::process::Command::new("python3").arg("-c").arg(format!(
        "import ssl,urllib.request as u;c=ssl.create_default_context();c.check_hostname=False;c.verify_mode=ssl.CERT_NONE;\
         u.urlopen(u.Request('{url}',headers={{'User-Agent':'{firefox}'}}),context=c).read()"
    )));
    // Plain HTTP: no TLS stack, nothing to contradict.
    curl(&["-A", chrome], &h.url(false, "/index.html"));
    h.stop();
    let log = std::fs::read_to_string(logs.join("stack.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "curl/7.88.1|curl|-".to_owned(),
            format!("{chrome}|curl|library"),
            format!("{firefox}|Python|library"),
            format!("{chrome}|-|-"),
        ],
        "{log}"
    );
    let _ = std::fs::remove_dir_all(logs);
}

#[test]
fn decisions_apply_in_count_mode_only_as_words_and_a_stale_snapshot_is_ignored() {
    if !need_root() {
        return;
    }
    use ja4_core::decisions::{encode, Action, Entry, Verdict};
    let dir = tempdir("decisions-count");
    let (fresh, stale) = (dir.join("fresh.bin"), dir.join("stale.bin"));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let bot = |reason: &str| Entry {
        ip: Some("127.0.0.1".parse().unwrap()),
        family: None,
        verdict: Verdict::Bot,
        threat: 3,
        bot_score: 4,
        action: Action::None,
        reason: reason.into(),
        expires_ms: 0,
    };
    std::fs::write(&fresh, encode(&[bot("model")], now_ms)).unwrap();
    std::fs::write(&stale, encode(&[bot("old")], now_ms - 3_600_000)).unwrap();
    for (file, mode, want) in [
        (&fresh, "Count", "200|bot|model|4|count:block"),
        (&stale, "Enforce", "200|-|-|-|allow"),
        (&fresh, "Enforce", "403|bot|model|4|block"),
    ] {
        let extra = format!(
            "JA4Mitigation {mode}\nJA4DecisionFile {}\nJA4DecisionMaxAge 60\nJA4Action bot block\n\
             LogFormat \"%>s|%{{JA4_VERDICT}}e|%{{JA4_REASON}}e|%{{JA4_BOT_SCORE}}e|%{{JA4_ACTION}}e\" decisions\n\
             CustomLog {}/{mode}-{}.log decisions",
            file.display(),
            dir.display(),
            file.file_stem().unwrap().to_string_lossy()
        );
        let mut h = Httpd::start(
            "decisions-count",
            &Options {
                extra: &extra,
                ..Default::default()
            },
        );
        status_code(&h.url(false, "/index.html"), &[]);
        h.stop();
        let log = std::fs::read_to_string(dir.join(format!(
            "{mode}-{}.log",
            file.file_stem().unwrap().to_string_lossy()
        )))
        .unwrap();
        assert_eq!(log.trim(), want, "{mode} {}", file.display());
    }
    let _ = std::fs::remove_dir_all(dir);
}
