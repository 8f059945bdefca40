//! In-module rate limits through a real httpd: `JA4RateLimit` buckets shared by every child
//! (prefork: separate processes), the 429 with `Retry-After`, refill, `JA4Exempt`, and count
//! mode, which decides and says so (`JA4_ACTION`) but never blocks. Needs root.

mod common;

use common::*;
use ja4_core::decisions::{Action, Entry, Verdict};

/// Now, Unix ms (decision snapshots are stamped with the clock, never a fixed date).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A model's decision about one address: `verdict`, bot score `score`, reason `model`, the
/// action left to `JA4Action`.
fn decision(ip: &str, verdict: Verdict, score: u8) -> Entry {
    Entry {
        ip: Some(ip.parse().unwrap()),
        prefix: None,
        family: None,
        verdict,
        threat: 3,
        bot_score: score,
        action: Action::None,
        reason: "model".into(),
        expires_ms: 0,
    }
}

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
    // One request's worth of tokens per second comes back: served again, then limited again
    // (a loaded machine's slow requests may earn one more token meanwhile).
    std::thread::sleep(std::time::Duration::from_millis(1_300));
    let again = statuses(&v4, 4, &[]);
    assert_eq!(again[0], "200", "{again:?}");
    assert!(again[1..].contains(&"429".to_owned()), "{again:?}");
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
    use ja4_core::decisions::encode;
    let dir = tempdir("decisions-count");
    let (fresh, stale) = (dir.join("fresh.bin"), dir.join("stale.bin"));
    let now_ms = now_ms();
    let bot = |reason: &str| Entry {
        reason: reason.into(),
        ..decision("127.0.0.1", Verdict::Bot, 4)
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

/// The value of `data-<name>="…"` in a challenge page.
fn page_data(page: &str, name: &str) -> String {
    let tag = format!("data-{name}=\"");
    page.split(&tag)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no data-{name} in {page}"))
        .to_owned()
}

/// A curl request's status, headers and body (`extra`: more curl arguments).
fn fetch(url: &str, extra: &[&str]) -> (String, String, String) {
    let out = run(std::process::Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "10",
            "-D",
            "/dev/stderr",
            "-w",
            "\n%{http_code}",
        ])
        .args(extra)
        .arg(url));
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = all.rsplit_once('\n').unwrap();
    (
        code.to_owned(),
        String::from_utf8_lossy(&out.stderr).to_ascii_lowercase(),
        body.to_owned(),
    )
}

/// Python's urllib (OpenSSL, its own JA4) asking for `url` with `cookie`: the status.
fn python_status(url: &str, cookie: &str) -> String {
    let out = run(std::process::Command::new("python3").arg("-c").arg(format!(
        "import ssl, urllib.request, urllib.error\n\
         ctx = ssl._create_unverified_context()\n\
         req = urllib.request.Request({url:?}, headers={{'Cookie': {cookie:?}}})\n\
         try:\n    print(urllib.request.urlopen(req, context=ctx, timeout=10).status)\n\
         except urllib.error.HTTPError as e:\n    print(e.code)\n"
    )));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn chromium_passes_the_challenge_and_scripts_never_do() {
    if !need_root() {
        return;
    }
    use ja4_core::challenge::{self, Binding, Key};
    use ja4_core::decisions::encode;
    let dir = tempdir("challenge");
    std::fs::write(
        dir.join("key"),
        "this-is-the-challenge-key-of-the-test-0123456789\n",
    )
    .unwrap();
    let key = Key::new(&std::fs::read(dir.join("key")).unwrap()).unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let entry = |ip: &str, verdict: Verdict, action: Action| Entry {
        action,
        ..decision(ip, verdict, 20)
    };
    std::fs::write(
        dir.join("decisions.bin"),
        encode(
            &[
                entry("127.0.0.1", Verdict::Suspicious, Action::None),
                entry("127.0.0.2", Verdict::Suspicious, Action::None),
                // A verified crawler is never challenged, whatever its entry says; nor is an
                // exempt network.
                entry("127.0.0.3", Verdict::VerifiedBot, Action::Challenge),
                entry("127.0.0.4", Verdict::Suspicious, Action::None),
            ],
            now_s as i64 * 1000,
        ),
    )
    .unwrap();
    let extra = format!(
        "JA4Mitigation Enforce\nJA4DecisionFile {d}/decisions.bin\nJA4Action suspicious challenge\n\
         JA4ChallengeKeyFile {d}/key\nJA4ChallengeDifficulty 10\nJA4Exempt 127.0.0.4\n\
         LogFormat \"%a|%U|%>s|%{{JA4_ACTION}}e|%{{JA4}}e\" challenge\nCustomLog {d}/challenge.log challenge",
        d = dir.display()
    );
    let mut h = Httpd::start(
        "challenge",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let url = h.url(true, "/index.html?x=1");

    // curl gets the page, never the document, and the page is never cached.
    let (code, head, page) = fetch(&url, &[]);
    assert_eq!(code, "403", "{head}{page}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert!(
        page.contains("data-nonce") && !page.contains("hello from httpd"),
        "{page}"
    );
    // Following redirects does not help a client that runs no script; nor does Python.
    assert_eq!(fetch(&url, &["-L"]).0, "403");
    assert_eq!(python_status(&url, ""), "403");

    // Chromium runs the page's script, is sent back with its pass, and gets the document.
    let profile = dir.join("chromium");
    let out = run(std::process::Command::new("chromium").args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--ignore-certificate-errors",
        &format!("--user-data-dir={}", profile.display()),
        "--virtual-time-budget=20000",
        "--dump-dom",
        &url,
    ]));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("hello from httpd"),
        "{dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same answer computed here for curl's connection: a pass cookie and a way back.
    let verify = page_data(&page, "verify");
    let (nonce, bits) = (page_data(&page, "nonce"), page_data(&page, "bits"));
    let bits: u32 = bits.parse().unwrap();
    let counter = (0..)
        .find(|&c| challenge::work_bits(&nonce, c) >= bits)
        .unwrap();
    let wrong = (0..)
        .find(|&c| challenge::work_bits(&nonce, c) < bits)
        .unwrap();
    let base = h.url(true, "");
    let (code, head, _) = fetch(&format!("{base}{verify}{wrong}"), &[]);
    assert_eq!(code, "403", "a wrong answer: {head}");
    let (code, head, _) = fetch(&format!("{base}{verify}{counter}"), &[]);
    assert_eq!(code, "303", "{head}");
    assert!(head.contains("location: /index.html?x=1"), "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no pass cookie: {head}"))
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        head.contains("httponly") && head.contains("secure"),
        "{head}"
    );
    // Lower-cased with the headers: the token is hex and digits, its name is lower case.
    let cookie_hdr = format!("Cookie: {cookie}");
    assert_eq!(fetch(&url, &["-H", &cookie_hdr]).0, "200");
    // Replayed from another address, or by another TLS stack from the same one: refused.
    assert_eq!(
        fetch(&url, &["-H", &cookie_hdr, "--interface", "127.0.0.2"]).0,
        "403"
    );
    assert_eq!(python_status(&url, &cookie), "403");
    // Forged and expired passes are refused; one the key file's key makes is accepted (curl's
    // JA4 from its wrong answer, which only curl sent).
    let log = std::fs::read_to_string(dir.join("challenge.log")).unwrap();
    let curl_ja4 = log
        .lines()
        .find(|l| l.contains("|/.ja4/challenge|403|"))
        .and_then(|l| l.rsplit('|').next())
        .unwrap()
        .to_owned();
    let me = Binding::new("127.0.0.1".parse().unwrap(), curl_ja4.as_bytes());
    let mut forged = cookie.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(fetch(&url, &["-H", &format!("Cookie: {forged}")]).0, "403");
    let expired = challenge::pass_token(&key, &me, now_s - 10);
    assert_eq!(
        fetch(&url, &["-H", &format!("Cookie: ja4_pass={expired}")]).0,
        "403"
    );
    let minted = challenge::pass_token(&key, &me, now_s + 600);
    assert_eq!(
        fetch(&url, &["-H", &format!("Cookie: a=b; ja4_pass={minted}")]).0,
        "200"
    );

    // Verified crawlers and exempt networks are never challenged.
    let log = || std::fs::read_to_string(dir.join("challenge.log")).unwrap();
    assert_eq!(
        fetch(&url, &["--interface", "127.0.0.3"]).0,
        "200",
        "{}",
        log()
    );
    assert_eq!(
        fetch(&url, &["--interface", "127.0.0.4"]).0,
        "200",
        "{}",
        log()
    );

    // The export records carry the action and the decision that led to it.
    let recs = h.records();
    let of = |action: &str| recs.iter().filter(|r| r["action"] == action).count();
    assert!(
        of("challenge") >= 6 && of("challenge_passed") >= 2 && of("pass") >= 3,
        "{recs:#?}"
    );
    assert!(of("challenge_failed") >= 1, "{recs:#?}");
    let challenged = recs.iter().find(|r| r["action"] == "challenge").unwrap();
    assert_eq!(challenged["decision_verdict"], "suspicious", "{challenged}");
    assert_eq!(challenged["decision_bot_score"], 20, "{challenged}");
    assert_eq!(challenged["action_reason"], "decision", "{challenged}");
    // The status page too is behind the challenge: read it from the exempt address.
    let (_, _, status) = fetch(
        &h.url(false, "/ja4-status?json"),
        &["--interface", "127.0.0.4"],
    );
    let j: serde_json::Value = serde_json::from_str(&status).unwrap();
    let c = &j["counters"];
    assert!(c["challenge_issued"].as_u64() >= Some(6), "{j}");
    assert!(c["challenge_passed"].as_u64() >= Some(2), "{j}");
    assert!(c["challenge_failed"].as_u64() >= Some(1), "{j}");
    assert!(c["challenge_pass_refused"].as_u64() >= Some(4), "{j}");
    h.stop();
    // Chromium's own requests: the page, the answer, then the document on its pass.
    let log = std::fs::read_to_string(dir.join("challenge.log")).unwrap();
    let chromium: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("127.0.0.1|") && !l.contains(&curl_ja4))
        .collect();
    let steps: Vec<String> = chromium
        .iter()
        .map(|l| l.split('|').skip(1).take(3).collect::<Vec<_>>().join("|"))
        .collect();
    assert!(
        steps.windows(3).any(|w| w
            == [
                "/index.html|403|challenge",
                "/.ja4/challenge|303|challenge:passed",
                "/index.html|200|pass"
            ]),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn count_mode_says_it_would_challenge() {
    if !need_root() {
        return;
    }
    let logs = tempdir("challenge-count");
    let extra = format!(
        "JA4Mitigation Count\nJA4RateLimit ip 1/60 challenge\nLogFormat \"%>s|%{{JA4_ACTION}}e|%{{JA4_REASON}}e\" m\nCustomLog {}/m.log m",
        logs.display()
    );
    let mut h = Httpd::start(
        "challenge-count",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let got = statuses(&h.url(false, "/index.html"), 3, &[]);
    assert_eq!(count(&got, "200"), 3, "{got:?}");
    // The export records say it too.
    let recs = h.wait_requests(3);
    let actions: Vec<(String, String)> = recs
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("").to_owned(),
                r["action_reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("allow".into(), "".into()),
            ("count:challenge".into(), "ratelimit:ip".into()),
            ("count:challenge".into(), "ratelimit:ip".into())
        ],
        "{recs:#?}"
    );
    h.stop();
    let log = std::fs::read_to_string(logs.join("m.log")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "200|allow|-",
            "200|count:challenge|ratelimit:ip",
            "200|count:challenge|ratelimit:ip"
        ],
        "{log}"
    );
    let _ = std::fs::remove_dir_all(logs);
}

#[test]
fn tarpits_hold_then_refuse_with_the_configured_response() {
    if !need_root() {
        return;
    }
    use ja4_core::decisions::encode;
    let dir = tempdir("tarpit");
    let now_ms = now_ms();
    let entry = decision("127.0.0.1", Verdict::Bot, 2);
    std::fs::write(dir.join("decisions.bin"), encode(&[entry], now_ms)).unwrap();
    std::fs::write(
        dir.join("blocked.html"),
        "<p>automated traffic is not served here</p>\n",
    )
    .unwrap();
    let extra = format!(
        "JA4Mitigation Enforce\nJA4DecisionFile {d}/decisions.bin\nJA4Action bot tarpit\nJA4TarpitDelay 600\n\
         JA4BlockResponse 429 {d}/blocked.html",
        d = dir.display()
    );
    let mut h = Httpd::start(
        "tarpit",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let started = std::time::Instant::now();
    let (code, _, body) = fetch(&h.url(false, "/index.html"), &[]);
    let held = started.elapsed();
    assert_eq!(code, "429");
    assert_eq!(body, "<p>automated traffic is not served here</p>\n");
    assert!(
        held >= std::time::Duration::from_millis(600),
        "held {held:?}"
    );
    let recs = h.wait_requests(1);
    assert_eq!(recs[0]["action"], "tarpit", "{recs:#?}");
    let j = h.status_json_from(&["--interface", "127.0.0.2"]);
    assert_eq!(j["counters"]["tarpit_held"], 1, "{j}");
    h.stop();
    let _ = std::fs::remove_dir_all(dir);
}

/// The shared decisions table: every child of every MPM answers from it at once, a new
/// snapshot reaches them all within the refresh second, a graceful restart starts the new
/// generation with the table loaded, and a file that is not a snapshot is counted and the
/// live table kept.
#[test]
fn the_decisions_table_is_shared_and_survives_a_graceful_restart() {
    if !need_root() {
        return;
    }
    use ja4_core::decisions::encode;
    for mpm in ["prefork", "event"] {
        let dir = tempdir("decisions-shared");
        let file = dir.join("decisions.bin");
        let bot = |ip: &str| decision(ip, Verdict::Bot, 2);
        std::fs::write(&file, encode(&[bot("127.0.0.1")], now_ms())).unwrap();
        let extra = format!(
            "JA4Mitigation Enforce\nJA4DecisionFile {}\nJA4DecisionEntries 2048\nJA4Action bot block",
            file.display()
        );
        let mut h = Httpd::start(
            "decisions-shared",
            &Options {
                mpm,
                extra: &extra,
                ..Default::default()
            },
        );
        let url = h.url(false, "/index.html");
        // Every connection, whichever child takes it, is refused from the first request.
        let got = statuses(&url, 8, &[]);
        assert_eq!(count(&got, "403"), 8, "{mpm}: {got:?}");
        assert_eq!(fetch(&url, &["--interface", "127.0.0.2"]).0, "200");
        // A new snapshot: 127.0.0.2 is the bot now. Within the refresh second every child
        // answers from it.
        std::fs::write(&file, encode(&[bot("127.0.0.2")], now_ms())).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1_200));
        let (a, b) = (
            statuses(&url, 6, &[]),
            statuses(&url, 6, &["--interface", "127.0.0.2"]),
        );
        assert_eq!(
            (count(&a, "200"), count(&b, "403")),
            (6, 6),
            "{mpm}: {a:?} {b:?}"
        );
        // A graceful restart under load: the new generation starts with the table, so the
        // client is refused by every child of both generations, before and after.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let during = std::thread::scope(|s| {
            let load = s.spawn(|| {
                let mut got = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || got.len() < 20 {
                    got.push(status_code(&url, &["--interface", "127.0.0.2"]));
                }
                got
            });
            std::thread::sleep(std::time::Duration::from_millis(300));
            h.graceful();
            std::thread::sleep(std::time::Duration::from_millis(300));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            load.join().unwrap()
        });
        assert_eq!(
            count(&during, "403"),
            during.len(),
            "{mpm} during the restart: {during:?}"
        );
        let b = statuses(&url, 6, &["--interface", "127.0.0.2"]);
        assert_eq!(count(&b, "403"), 6, "{mpm} after restart: {b:?}");
        // A broken file is refused (counted), the live table stays.
        std::fs::write(&file, b"not a snapshot").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1_200));
        let b = statuses(&url, 4, &["--interface", "127.0.0.2"]);
        assert_eq!(count(&b, "403"), 4, "{mpm} after a broken file: {b:?}");
        // Counted once (the file is not read again until it changes). The counters are the
        // new generation's: it loaded nothing, it kept the table.
        let j = h.status_json();
        assert_eq!(j["counters"]["decision_errors"], 1, "{j}");
        assert_eq!(j["counters"]["decision_loads"], 0, "{j}");
        h.assert_no_crash();
        h.stop();
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn rate_limit_buckets_survive_a_graceful_restart() {
    if !need_root() {
        return;
    }
    let mut h = Httpd::start(
        "ratelimit-restart",
        &Options {
            extra: "JA4Mitigation Enforce\nJA4RateLimit ip 2/3600 block",
            ..Default::default()
        },
    );
    let url = h.url(false, "/index.html");
    assert_eq!(statuses(&url, 3, &[]), ["200", "200", "429"]);
    // The new generation finds the same buckets: the client is still over its limit.
    h.graceful();
    assert_eq!(statuses(&url, 2, &[]), ["429", "429"]);
    assert_eq!(statuses(&url, 1, &["--interface", "127.0.0.2"]), ["200"]);
    h.assert_no_crash();
    h.stop();
}

/// `JA4Mitigation` and `JA4Action` in `<Location>` sections: the server counts, a shop
/// enforces, a part of it challenges instead, a health path is off; the records say what
/// was done where.
#[test]
fn locations_set_their_own_mitigation() {
    if !need_root() {
        return;
    }
    use ja4_core::decisions::encode;
    let dir = tempdir("mitigation-dirs");
    let now_ms = now_ms();
    let bot = decision("127.0.0.1", Verdict::Bot, 3);
    std::fs::write(dir.join("decisions.bin"), encode(&[bot], now_ms)).unwrap();
    let extra = format!(
        "JA4Mitigation Count\nJA4DecisionFile {d}/decisions.bin\nJA4Action bot block\n\
         <Location /shop>\n  JA4Mitigation Enforce\n</Location>\n\
         <Location /shop/browse>\n  JA4Action bot challenge\n</Location>\n\
         <Location /healthz>\n  JA4Mitigation Off\n</Location>\n\
         LogFormat \"%U %>s %{{JA4_ACTION}}e\" m\nCustomLog {d}/m.log m",
        d = dir.display()
    );
    let mut h = Httpd::start(
        "mitigation-dirs",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let get = |path: &str| fetch(&h.url(false, path), &[]);
    assert_eq!(get("/index.html").0, "200", "the server only counts");
    assert_eq!(get("/shop/cart").0, "403", "the shop enforces");
    let (code, _, page) = get("/shop/browse/item");
    assert_eq!(code, "403");
    assert!(
        page.contains("data-nonce"),
        "browsing is challenged, not blocked: {page}"
    );
    assert_eq!(
        get("/healthz").0,
        "404",
        "off: the request goes on (no such file)"
    );
    let recs = h.wait_requests(4);
    h.stop();
    let log = std::fs::read_to_string(dir.join("m.log")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "/index.html 200 count:block",
            "/shop/cart 403 block",
            "/shop/browse/item 403 challenge",
            "/healthz 404 -"
        ],
        "{log}"
    );
    let actions: Vec<&str> = recs
        .iter()
        .map(|r| r["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        ["count:block", "block", "challenge", ""],
        "{recs:#?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// What a request sees without a scoring run of its own: a network entry of the decisions
/// table (the longest network wins, other addresses are untouched), a verified crawler's name
/// (`JA4_VERIFIED_BOT`) and the connection's JA4 on the known-bad list (`JA4_KNOWN_BAD`,
/// read at configuration time: a graceful restart picks up a new list).
#[test]
fn networks_verified_crawlers_and_known_bad_ja4s_reach_the_request() {
    if !need_root() {
        return;
    }
    use ja4_core::decisions::encode;
    let dir = tempdir("decision-kinds");
    let known_bad = dir.join("known-bad.tsv");
    std::fs::write(
        &known_bad,
        "# none of ours yet\nt13d190900_9dc949149365_97f8aa674fd9\tSliver Agent\n",
    )
    .unwrap();
    let net = |cidr: &str, verdict: Verdict, action: Action, reason: &str| {
        let (a, l) = cidr.split_once('/').unwrap();
        Entry {
            prefix: Some(l.parse().unwrap()),
            action,
            reason: reason.into(),
            ..decision(a, verdict, 2)
        }
    };
    let entries = [
        net("127.0.0.0/29", Verdict::Suspicious, Action::None, "net29"),
        net("127.0.0.0/30", Verdict::Bot, Action::Block, "list:deny"),
        Entry {
            reason: "verified:googlebot".into(),
            ..decision("127.0.0.6", Verdict::VerifiedBot, 99)
        },
    ];
    std::fs::write(dir.join("decisions.bin"), encode(&entries, now_ms())).unwrap();
    let extra = format!(
        "JA4Mitigation Enforce\nJA4DecisionFile {d}/decisions.bin\nJA4KnownBad {kb}\n\
         JA4Action suspicious block\n\
         LogFormat \"%a|%>s|%{{JA4_VERDICT}}e|%{{JA4_REASON}}e|%{{JA4_VERIFIED_BOT}}e|%{{JA4_KNOWN_BAD}}e|%{{JA4}}e\" kinds\n\
         CustomLog {d}/kinds.log kinds",
        d = dir.display(),
        kb = known_bad.display()
    );
    let mut h = Httpd::start(
        "decision-kinds",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let url = h.url(true, "/index.html");
    for from in ["127.0.0.2", "127.0.0.5", "127.0.0.6", "127.0.0.9"] {
        curl(&["--interface", from], &url);
    }
    // curl's JA4, as the module saw it, goes on the list; the restart reads it.
    let log = || std::fs::read_to_string(dir.join("kinds.log")).unwrap_or_default();
    let first = log();
    let curl_ja4 = first
        .lines()
        .next()
        .and_then(|l| l.rsplit('|').next())
        .unwrap()
        .to_owned();
    assert!(ja4_core::knownbad::is_ja4(&curl_ja4), "{first}");
    std::fs::write(
        &known_bad,
        format!("{curl_ja4}\tour test tool\tthis test\n"),
    )
    .unwrap();
    h.graceful();
    curl(&["--interface", "127.0.0.9"], &url);
    python_status(&url, "");
    h.assert_no_crash();
    h.stop();
    let all = log();
    let lines: Vec<String> = all
        .lines()
        .map(|l| l.rsplit_once('|').unwrap().0.to_owned())
        .collect();
    assert_eq!(
        lines,
        [
            "127.0.0.2|403|bot|list:deny|-|-",
            "127.0.0.5|403|suspicious|net29|-|-",
            "127.0.0.6|200|verified_bot|verified:googlebot|googlebot|-",
            "127.0.0.9|200|-|-|-|-",
            "127.0.0.9|200|-|-|-|our test tool",
            "127.0.0.1|403|bot|list:deny|-|-",
        ],
        "{all}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
