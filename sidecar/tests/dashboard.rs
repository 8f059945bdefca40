//! The dashboard API against a real `ja4-sidecar serve` on the embedded engine, with traffic
//! from `synth` scored by the real models: every endpoint, 401/403 paths, CSRF, roles,
//! injection attempts on every filter and sort parameter, CSV export, the audit trail and
//! the login rate limit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ja4_testkit::sidecar::{Sidecar, SidecarConf};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ja4-sidecar");

/// Runs `ja4-sidecar`, or for `synth` the dev tool `ja4-lab` built beside it.
fn run(args: &[&str], stdin: Option<&str>) -> String {
    let bin = if args.first() == Some(&"synth") {
        let lab = Path::new(BIN).with_file_name("ja4-lab");
        assert!(
            lab.exists(),
            "{} missing: run `cargo build -p ja4-lab`",
            lab.display()
        );
        lab
    } else {
        Path::new(BIN).to_path_buf()
    };
    let mut c = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

use ja4_testkit::free_port;

struct Resp {
    status: u16,
    headers: String,
    body: String,
}

impl Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

struct Server {
    sidecar: Sidecar,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.sidecar.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// Raw bytes to the listener; whatever comes back (or nothing), as text.
    fn req_raw(&self, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(bytes);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut r = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.port
        );
        for (k, v) in headers {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            r.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        r.push_str("\r\n");
        if let Some(b) = body {
            r.push_str(b);
        }
        s.write_all(r.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Resp {
            status,
            headers: head.to_owned(),
            body,
        }
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

struct Login {
    cookie: String,
    csrf: String,
}

impl Login {
    fn get(&self, s: &Server, path: &str) -> Resp {
        s.req("GET", path, &[("Cookie", &self.cookie)], None)
    }
    fn post(&self, s: &Server, path: &str, body: &str) -> Resp {
        s.req(
            "POST",
            path,
            &[("Cookie", &self.cookie), ("X-CSRF-Token", &self.csrf)],
            Some(body),
        )
    }
}

fn login(s: &Server, user: &str, pw: &str) -> Login {
    let r = s.req(
        "POST",
        "/api/login",
        &[],
        Some(&format!(r#"{{"user":"{user}","password":"{pw}"}}"#)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let c = r.header("set-cookie").unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    assert!(!c.contains("Secure"), "plain HTTP: no Secure flag: {c}");
    Login {
        cookie: c.split(';').next().unwrap().to_owned(),
        csrf: r.json()["csrf"].as_str().unwrap().to_owned(),
    }
}

fn start(dir: &Path) -> Server {
    start_with(dir, 6, "")
}

fn start_with(dir: &Path, hours: u32, dashboard_extra: &str) -> Server {
    let h = hours.to_string();
    let data = dir.join("store");
    let d = data.to_str().unwrap();
    run(
        &[
            "synth",
            "--data-dir",
            d,
            "--requests",
            "30000",
            "--hours",
            &h,
        ],
        None,
    );
    let models = dir.join("models");
    let m = models.to_str().unwrap();
    run(
        &[
            "train",
            "--data-dir",
            d,
            "--models-dir",
            m,
            "--hours",
            &h,
            "--trees",
            "50",
        ],
        None,
    );
    run(
        &[
            "score",
            "--data-dir",
            d,
            "--models-dir",
            m,
            "--hours",
            &h,
            "--resolver",
            "127.0.0.1:9",
        ],
        None,
    );
    let port = free_port();
    let mut conf = SidecarConf::new(Path::new(BIN), dir);
    conf.sections = format!(
        "[dashboard]\nlisten = \"127.0.0.1:{port}\"\nusers_file = \"{}/users.json\"\nlogin_max_failures = 5\n{dashboard_extra}",
        dir.display()
    );
    let cfg = dir.join("sidecar.toml");
    std::fs::write(&cfg, conf.toml()).unwrap();
    let c = cfg.to_str().unwrap();
    run(
        &["user", "add", "alice", "--role", "admin", "--config", c],
        Some("amber-falcon-71\n"),
    );
    run(
        &["user", "add", "bob", "--role", "analyst", "--config", c],
        Some("quiet-harbor-12\n"),
    );
    assert!(run(&["user", "list", "--config", c], None).contains("bob\tanalyst"));
    let sidecar = conf
        .start(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    Server {
        sidecar,
        port,
        dir: dir.to_owned(),
    }
}

const GET_ENDPOINTS: &[&str] = &[
    "/api/session",
    "/api/overview",
    "/api/top?dim=ja4",
    "/api/detections",
    "/api/scores",
    "/api/campaigns",
    "/api/campaign?id=1",
    "/api/fingerprint?kind=ja4&value=t13d1516h2_8daaf6152771_02713d6af862",
    "/api/top?dim=h2",
    "/api/fingerprint?kind=h2&value=1:65536%3B2:0%3B4:6291456%3B6:262144%7C15663105%7C0%7Cm,a,s,p",
    "/api/detections?filter=h2:1:65536%3B2:0%3B4:6291456%3B6:262144%7C15663105%7C0%7Cm,a,s,p",
    "/api/client?ip=81.2.1.1",
    "/api/client/requests?ip=81.2.1.1",
    "/api/audit",
    "/api/mitigation",
    "/api/labels",
    "/api/lists",
    "/api/users",
];

#[test]
fn dashboard_api() {
    let dir = std::env::temp_dir().join(format!("ja4-dash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = start(&dir);

    // Public: health, the app shell, assets. Everything else needs a session.
    assert_eq!(s.req("GET", "/healthz", &[], None).status, 200);
    let index = s.req("GET", "/", &[], None);
    assert_eq!(index.status, 200);
    let csp = index.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(index.header("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(s.req("GET", "/assets/app.js", &[], None).status, 200);
    assert_eq!(
        s.req("GET", "/assets/..%2Fsrc%2Flib.rs", &[], None).status,
        404
    );
    for ep in GET_ENDPOINTS {
        assert_eq!(s.req("GET", ep, &[], None).status, 401, "{ep}");
        assert_eq!(
            s.req("GET", ep, &[("Cookie", "ja4_session=forged")], None)
                .status,
            401,
            "{ep}"
        );
    }

    let admin = login(&s, "alice", "amber-falcon-71");
    let analyst = login(&s, "bob", "quiet-harbor-12");

    // Every view answers with data from the store.
    for ep in GET_ENDPOINTS {
        let r = admin.get(&s, ep);
        assert_eq!(r.status, 200, "{ep}: {}", r.body);
        r.json();
    }
    // HTTP/2 fingerprints: the browsers' strings lead the top list, and a page shows one.
    let top = admin.get(&s, "/api/top?dim=h2").json();
    let values: Vec<&str> = top["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["value"].as_str())
        .collect();
    assert!(
        values.contains(&"1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p"),
        "{top}"
    );
    let fp = admin
        .get(
            &s,
            "/api/fingerprint?kind=h2&value=1:65536%3B2:0%3B4:6291456%3B6:262144%7C15663105%7C0%7Cm,a,s,p",
        )
        .json();
    assert!(fp["summary"].to_string().contains("requests"), "{fp}");
    let o = admin.get(&s, "/api/overview?range=6h").json();
    assert!(
        o["totals"]["requests"].as_u64().unwrap() >= 25_000,
        "{}",
        o["totals"]
    );
    assert!(!o["series"].as_array().unwrap().is_empty());
    assert!(!o["scores"].as_array().unwrap().is_empty());
    // Mitigation: what the module did, by action and reason, and who it held back most.
    let m = admin.get(&s, "/api/mitigation?range=6h").json();
    let actions: std::collections::HashMap<String, u64> = m["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    for a in [
        "allow",
        "pass",
        "challenge",
        "challenge_passed",
        "challenge_failed",
        "block",
        "tarpit",
        "count:challenge",
    ] {
        assert!(actions.get(a).copied().unwrap_or(0) > 0, "{a}: {m}");
    }
    assert!(!actions.contains_key(""), "orphans have no action: {m}");
    let top = &m["clients"][0];
    assert!(
        top["mitigated"].as_u64().unwrap() > 0 && top["value"].as_str().is_some(),
        "{m}"
    );
    assert!(m["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["reason"] == "ratelimit:ja4" && r["action"] == "block"));
    // Filtering on an action narrows every panel to it.
    let blocked = admin
        .get(&s, "/api/mitigation?range=6h&f=action:block")
        .json();
    assert_eq!(blocked["actions"].as_array().unwrap().len(), 1, "{blocked}");
    let c = admin.get(&s, "/api/client?ip=45.10.2.3").json();
    assert!(
        c["actions"].as_array().is_some_and(|a| !a.is_empty()),
        "{c}"
    );
    let d = admin.get(&s, "/api/detections?range=6h&limit=5").json();
    assert!(d["total"].as_u64().unwrap() > 0, "{d}");
    assert!(d["rows"].as_array().unwrap().len() <= 5);
    // Paging: the total is exact, the next page holds the next rows.
    let total = d["total"].as_u64().unwrap();
    let all = admin.get(&s, "/api/detections?range=6h&limit=500").json();
    assert_eq!(all["rows"].as_array().unwrap().len() as u64, total.min(500));
    assert!(!all["columns"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "_total"));
    if total > 5 {
        let p1 = admin
            .get(
                &s,
                "/api/detections?range=6h&limit=5&page=1&sort=ip&dir=asc",
            )
            .json();
        let p0 = admin
            .get(
                &s,
                "/api/detections?range=6h&limit=5&page=0&sort=ip&dir=asc",
            )
            .json();
        assert_ne!(p0["rows"][0], p1["rows"][0]);
        assert_eq!(p1["total"], total);
    }

    // Long ranges are answered from the hourly aggregate; a filter only the raw log has (an
    // exclusion that matches nothing) forces the raw path: both agree.
    let agg = admin.get(&s, "/api/overview?range=24h").json();
    let raw = admin
        .get(&s, "/api/overview?range=24h&x=path:/never-requested")
        .json();
    for k in [
        "requests",
        "orphans",
        "clients",
        "networks",
        "ja4s",
        "asns",
        "countries",
        "h2_share",
        "error_4xx_share",
    ] {
        assert_eq!(
            agg["totals"][k], raw["totals"][k],
            "{k}: aggregate vs raw log"
        );
    }
    assert_eq!(agg["bucket_seconds"], 3600);
    let sum = |o: &serde_json::Value| -> u64 {
        o["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["requests"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum(&agg), sum(&raw), "series totals");

    // Filters do what they say: include, exclude, not-applicable reported.
    let chrome = "t13d1516h2_8daaf6152771_02713d6af862";
    let t = admin
        .get(&s, &format!("/api/top?dim=ja4&f=ja4:{chrome}"))
        .json();
    let rows = t["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["value"], chrome);
    let t = admin
        .get(&s, &format!("/api/top?dim=ja4&x=ja4:{chrome}"))
        .json();
    assert!(t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["value"] != chrome));
    let d = admin.get(&s, "/api/detections?f=path:/login").json();
    assert_eq!(d["ignored_filters"][0], "path:/login");
    let all = admin.get(&s, "/api/overview?range=6h").json()["totals"]["requests"]
        .as_u64()
        .unwrap();
    // The verdict class with the most clients (people: human or legitimate browser).
    let mut by_class: std::collections::HashMap<String, u64> = Default::default();
    for r in o["scores"].as_array().unwrap() {
        *by_class
            .entry(r["cls"].as_str().unwrap().to_owned())
            .or_default() += r["clients"].as_u64().unwrap();
    }
    let (class, _) = by_class.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(
        matches!(class.as_str(), "human" | "legitimate_browser"),
        "{by_class:?}"
    );
    let people = admin
        .get(&s, &format!("/api/overview?range=6h&f=verdict:{class}"))
        .json()["totals"]["requests"]
        .as_u64()
        .unwrap();
    assert!(people > 0 && people < all, "{people} of {all}");

    // Injection attempts on every filter field, the sort and the dimension: the values are
    // bound, so they match nothing (200) or are refused (400), never break a query (500).
    let payloads = [
        "' OR 1=1 --",
        "x'); DROP TABLE ja4.http_logs; --",
        "\\' OR \\'1\\'=\\'1",
        "{p0:String}",
        "1 UNION ALL SELECT name FROM system.users",
        "%00\t\n",
    ];
    let before = admin.get(&s, "/api/overview?range=7d").json();
    let fields = s_fields(&admin, &s);
    for f in &fields {
        for p in payloads {
            let v = urlenc(&format!("{f}:{p}"));
            for ep in [
                "/api/overview",
                "/api/detections",
                "/api/scores",
                "/api/campaigns",
                "/api/audit",
                "/api/top?dim=ja4",
            ] {
                let sep = if ep.contains('?') { '&' } else { '?' };
                let r = admin.get(&s, &format!("{ep}{sep}f={v}&x={v}"));
                assert!(
                    r.status == 200 || r.status == 400,
                    "{ep} {f}:{p}: {} {}",
                    r.status,
                    r.body
                );
            }
        }
    }
    for bad in [
        "/api/detections?sort=score%3BDROP%20TABLE%20x",
        "/api/detections?sort=score&dir=desc%2C%20sleep(3)",
        "/api/top?dim=path%20FROM%20system.users%20--",
        "/api/detections?f=client_ip%20OR%201:1",
        "/api/client?ip=1.2.3.4'%20OR%20'1",
        "/api/fingerprint?kind=ja4&value=a'%20OR%20'1",
        "/api/campaign?id=1%20OR%201=1",
        "/api/scores?range=99d",
    ] {
        let r = admin.get(&s, bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let o2 = admin.get(&s, "/api/overview?range=7d").json();
    assert_eq!(
        o2["totals"]["requests"], before["totals"]["requests"],
        "data intact"
    );

    // CSRF and origin on state-changing requests.
    let label =
        r#"{"subject_kind":"ip","subject":"81.2.1.1","label":"false_positive","note":"test"}"#;
    let no_token = s.req(
        "POST",
        "/api/labels",
        &[("Cookie", &analyst.cookie)],
        Some(label),
    );
    assert_eq!(no_token.status, 403);
    let wrong = s.req(
        "POST",
        "/api/labels",
        &[("Cookie", &analyst.cookie), ("X-CSRF-Token", &admin.csrf)],
        Some(label),
    );
    assert_eq!(wrong.status, 403, "another session's token");
    let cross = s.req(
        "POST",
        "/api/labels",
        &[
            ("Cookie", &analyst.cookie),
            ("X-CSRF-Token", &analyst.csrf),
            ("Origin", "https://evil.example"),
        ],
        Some(label),
    );
    assert_eq!(cross.status, 403);

    // Roles: analysts mark and export; admins also manage lists and users.
    assert_eq!(analyst.post(&s, "/api/labels", label).status, 200);
    assert_eq!(
        analyst
            .post(
                &s,
                "/api/labels",
                r#"{"subject_kind":"ip","subject":"nope","label":"false_positive"}"#
            )
            .status,
        400
    );
    let deny = r#"{"kind":"ip","value":"45.13.3.1","action":"deny","note":"stuffing"}"#;
    assert_eq!(analyst.post(&s, "/api/lists", deny).status, 403);
    assert_eq!(analyst.get(&s, "/api/users").status, 403);
    assert_eq!(admin.post(&s, "/api/lists", deny).status, 200);
    let lists = admin.get(&s, "/api/lists").json();
    assert_eq!(lists["rows"][0]["value"], "45.13.3.1");
    let c = admin.get(&s, "/api/client?ip=45.13.3.1").json();
    assert_eq!(c["lists"][0]["action"], "deny");
    let labels = admin.get(&s, "/api/labels").json();
    assert_eq!(labels["rows"][0]["subject"], "81.2.1.1");
    assert_eq!(labels["rows"][0]["analyst"], "bob");

    // CSV export, audited.
    let csv = analyst.get(&s, "/api/detections?format=csv");
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));
    assert!(
        csv.body.starts_with("detected_at,ip,ja4,"),
        "{}",
        &csv.body[..80.min(csv.body.len())]
    );
    assert!(!csv.body.lines().next().unwrap().contains("_total"));

    // Users: admin adds one, who can log in; a disabled user's session ends.
    assert_eq!(
        admin
            .post(
                &s,
                "/api/users",
                r#"{"name":"carol","role":"analyst","password":"maple-signal-31"}"#
            )
            .status,
        200
    );
    let carol = login(&s, "carol", "maple-signal-31");
    let session = carol.get(&s, "/api/session");
    assert_eq!(session.status, 200);
    // The explanations' vocabulary: every model feature with its meaning and unit.
    let features = session.json()["features"].as_array().unwrap().clone();
    assert_eq!(features.len(), ja4_ml::features::len());
    let rarity = features.iter().find(|f| f["name"] == "ja4_rarity").unwrap();
    assert!(
        rarity["meaning"].as_str().unwrap().contains("rare"),
        "{rarity}"
    );
    assert_eq!(
        admin
            .post(&s, "/api/users", r#"{"name":"carol","disabled":true}"#)
            .status,
        200
    );
    assert_eq!(carol.get(&s, "/api/session").status, 401);

    // Logout ends the session.
    assert_eq!(carol.post(&s, "/api/logout", "{}").status, 401);
    let bob2 = login(&s, "bob", "quiet-harbor-12");
    assert_eq!(bob2.post(&s, "/api/logout", "{}").status, 200);
    assert_eq!(bob2.get(&s, "/api/session").status, 401);

    // Login rate limit: five failures, then 429 with Retry-After, even for the right password.
    for _ in 0..5 {
        let r = s.req(
            "POST",
            "/api/login",
            &[],
            Some(r#"{"user":"alice","password":"wrong-password"}"#),
        );
        assert_eq!(r.status, 401);
    }
    let r = s.req(
        "POST",
        "/api/login",
        &[],
        Some(r#"{"user":"alice","password":"amber-falcon-71"}"#),
    );
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());

    // The audit trail has it all.
    let a = admin.get(&s, "/api/audit?limit=200").json();
    let actions: Vec<&str> = a["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for want in [
        "login",
        "login_failed",
        "login_blocked",
        "label",
        "list_add",
        "export",
        "user_set",
        "user_disable",
        "logout",
    ] {
        assert!(actions.contains(&want), "{want} not in {actions:?}");
    }
}

fn s_fields(l: &Login, s: &Server) -> Vec<String> {
    l.get(s, "/api/session").json()["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The whole UI in real headless Chromium (playwright-core from `scripts/setup.sh`):
/// login, every view, a filter from a top-N panel, a client drill-down, a false-positive
/// mark found in the audit log, no script error or CSP violation. Screenshots of every
/// view in both themes land in `target/e2e-screenshots/`.
#[test]
fn dashboard_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let modules = root.join(".cache/node/node_modules");
    assert!(
        modules.join("playwright-core").exists(),
        "playwright-core missing: run scripts/setup.sh"
    );
    let dir = std::env::temp_dir().join(format!("ja4-dash-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = start_with(&dir, 24, "");
    let out = root.join("target/e2e-screenshots");
    let status = Command::new("node")
        .arg(root.join("dashboard/e2e/dashboard.e2e.mjs"))
        .arg(format!("http://127.0.0.1:{}", s.port))
        .args(["alice", "amber-falcon-71"])
        .env("JA4_NODE_MODULES", &modules)
        .env("JA4_E2E_OUT", &out)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the browser test failed (screenshots in {})",
        out.display()
    );
    for view in [
        "overview",
        "detections",
        "scores",
        "campaigns",
        "campaign",
        "fingerprint",
        "client",
        "audit",
        "admin",
    ] {
        for theme in ["light", "dark"] {
            assert!(
                out.join(format!("{view}-{theme}.png")).exists(),
                "{view}-{theme}"
            );
        }
    }
}

/// HTTPS on the dashboard listener with a certificate from `openssl`, reached by curl: the
/// session cookie is `Secure`, plain HTTP gets nothing, and a bad key file fails start-up
/// with a message naming the setting.
#[test]
fn dashboard_over_tls() {
    let dir = std::env::temp_dir().join(format!("ja4-dash-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl req");
    let extra = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let s = start_with(&dir, 1, &extra);
    let url = format!("https://127.0.0.1:{}/api/login", s.port);
    let out = Command::new("curl")
        .args([
            "-sk",
            "-D",
            "-",
            "-H",
            "content-type: application/json",
            "-d",
        ])
        .arg(r#"{"user":"alice","password":"amber-falcon-71"}"#)
        .arg(&url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(text.contains("\"csrf\""), "{text}");
    // Plain HTTP to the TLS port is not answered with data.
    let plain = s.req_raw(b"GET /api/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(!plain.contains("\"user\""), "{plain}");
    drop(s);

    // A certificate without its key: serve refuses to start and says why.
    let dir2 = std::env::temp_dir().join(format!("ja4-dash-tls2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir2);
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::write(dir2.join("empty.pem"), "").unwrap();
    let cfg = dir2.join("sidecar.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ingest]\nsocket = \"{0}/s.sock\"\n[store]\ndata_dir = \"{0}/store\"\nspool_dir = \"{0}/spool\"\n[http]\nlisten = \"127.0.0.1:{1}\"\n[scoring]\nenabled = false\n[dashboard]\nlisten = \"127.0.0.1:{2}\"\ntls_cert = \"{0}/empty.pem\"\ntls_key = \"{0}/empty.pem\"\n",
            dir2.display(),
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls_cert") && err.contains("no PEM certificate"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir2);
}

/// What an attacker tried against the dashboard (issue 18's medium and low items): parallel
/// guesses past the limit, lockout of the owner, oversized and invalid names flooding the
/// audit log, sessions surviving a password reset, unbounded sessions, weak passwords, ranges
/// that wrap around, foreign Host names and origins of another scheme.
#[test]
fn dashboard_resists_abuse() {
    let dir = std::env::temp_dir().join(format!("ja4-dash-abuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The test's connections come from 127.0.0.1, a trusted proxy here: X-Forwarded-For
    // names the client each request stands for.
    let s = start_with(
        &dir,
        2,
        "trusted_proxies = [\"127.0.0.1\"]\nsessions_per_user = 3\nmax_connections = 32\nheader_read_timeout_s = 2\n",
    );
    let from = |ip: &str, user: &str, pw: &str| {
        s.req(
            "POST",
            "/api/login",
            &[("X-Forwarded-For", &format!("198.51.100.200, {ip}"))],
            Some(&format!(r#"{{"user":"{user}","password":"{pw}"}}"#)),
        )
    };

    // 3. Thirty guesses at once: the attempts are counted before their passwords are
    // verified, so at most five (login_max_failures) are verified.
    let statuses: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..30)
            .map(|_| sc.spawn(|| from("203.0.113.1", "alice", "wrong-guess-9").status))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let verified = statuses.iter().filter(|&&c| c == 401).count();
    assert!(
        verified <= 5 && statuses.iter().all(|&c| c == 401 || c == 429 || c == 503),
        "{statuses:?}"
    );
    // 6. The owner, from their own address, is not locked out by it.
    assert_eq!(from("203.0.113.2", "alice", "amber-falcon-71").status, 200);
    // …while the guessing address keeps waiting, even with the right password.
    let r = from("203.0.113.1", "alice", "amber-falcon-71");
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());

    // 4. Names no user can have are refused before they are counted or audited; a body
    // larger than a login needs is refused whole.
    let long = "n".repeat(100);
    assert_eq!(from("203.0.113.3", &long, "whatever-pw-1").status, 401);
    let huge = "u".repeat(2 << 20);
    assert_eq!(from("203.0.113.3", &huge, "whatever-pw-1").status, 413);
    // Repeated refusals of one blocked pair are one audit entry.
    for _ in 0..10 {
        assert_eq!(from("203.0.113.1", "alice", "wrong-guess-9").status, 429);
    }
    let admin = login(&s, "alice", "amber-falcon-71");
    let audit = admin.get(&s, "/api/audit?limit=500").json();
    let rows = audit["rows"].as_array().unwrap();
    let count = |action: &str, target: &str| {
        rows.iter()
            .filter(|r| r["action"] == action && r["target"] == target)
            .count()
    };
    assert!(
        count("login_blocked", "alice") <= 2,
        "{}",
        count("login_blocked", "alice")
    );
    assert!(rows
        .iter()
        .all(|r| r["target"].as_str().unwrap_or("").len() <= 64));

    // 5. A password reset ends the user's sessions; a reset does not enable a disabled user.
    let bob = login(&s, "bob", "quiet-harbor-12");
    assert_eq!(bob.get(&s, "/api/session").status, 200);
    let set = |body: &str| admin.post(&s, "/api/users", body).status;
    assert_eq!(
        set(r#"{"name":"bob","role":"analyst","password":"violet-anchor-33"}"#),
        200
    );
    assert_eq!(
        bob.get(&s, "/api/session").status,
        401,
        "old session after reset"
    );
    assert_eq!(set(r#"{"name":"bob","disabled":true}"#), 200);
    assert_eq!(
        set(r#"{"name":"bob","role":"analyst","password":"violet-anchor-34"}"#),
        200
    );
    assert_eq!(
        from("203.0.113.4", "bob", "violet-anchor-34").status,
        401,
        "a reset does not enable a disabled user"
    );

    // 13. Weak passwords are refused with the reason.
    for (pw, why) in [
        ("aaaaaaaaaa", "different characters"),
        ("qwertyuiop", "common"),
        ("my-carol-key-1", "user name"),
    ] {
        let r = admin.post(
            &s,
            "/api/users",
            &format!(r#"{{"name":"carol","role":"analyst","password":"{pw}"}}"#),
        );
        assert_eq!(r.status, 400, "{pw}");
        assert!(r.body.contains(why), "{pw}: {}", r.body);
    }

    // 14. At most three sessions per user here: a fourth login ends the oldest.
    let first = login(&s, "alice", "amber-falcon-71");
    for _ in 0..3 {
        login(&s, "alice", "amber-falcon-71");
    }
    assert_eq!(first.get(&s, "/api/session").status, 401);

    // 11. Ranges that would wrap around are refused, not read as "everything".
    let admin = login(&s, "alice", "amber-falcon-71");
    for q in [
        "from=-1000&to=9223372036854775000",
        "from=-9223372036854775808&to=9223372036854775807",
    ] {
        assert_eq!(admin.get(&s, &format!("/api/audit?{q}")).status, 400, "{q}");
    }
    // 10. Filter chips are capped.
    let chips: Vec<String> = (0..500).map(|i| format!("f=verdict:v{i}")).collect();
    assert_eq!(
        admin
            .get(&s, &format!("/api/detections?{}", chips.join("&")))
            .status,
        400
    );

    // 15. Another Host (DNS rebinding) gets 421; an Origin of another scheme is refused.
    let raw =
        s.req_raw(b"GET /healthz HTTP/1.1\r\nHost: rebind.example:80\r\nConnection: close\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.1 421"), "{raw}");
    let origin = format!("https://127.0.0.1:{}", s.port);
    let r = s.req(
        "POST",
        "/api/labels",
        &[
            ("Cookie", &admin.cookie),
            ("X-CSRF-Token", &admin.csrf),
            ("Origin", &origin),
        ],
        Some(r#"{"subject_kind":"ip","subject":"192.0.2.1","label":"confirmed_bot"}"#),
    );
    assert_eq!(r.status, 403, "{}", r.body);

    // 12. A body that does not read gets our words, not the parser's; a simple cross-site
    // form (no JSON content type) gets 415.
    let r = admin.post(&s, "/api/labels", r#"{"bogus":1}"#);
    assert_eq!(r.status, 400);
    assert!(
        !r.body.contains("missing field") && !r.body.contains("line 1"),
        "{}",
        r.body
    );
    let r = s.req(
        "POST",
        "/api/login",
        &[("Content-Type", "text/plain")],
        Some(r#"{"user":"alice","password":"amber-falcon-71"}"#),
    );
    assert_eq!(r.status, 415, "{}", r.body);

    // 8. Slow request heads: each connection is cut off after header_read_timeout_s, and
    // past max_connections new ones are closed at accept; then the dashboard answers again.
    let mut slow: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .unwrap();
            c
        })
        .collect();
    let started = Instant::now();
    let mut closed = 0;
    for c in &mut slow {
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut b = [0u8; 256];
        match c.read(&mut b) {
            // The server ended it: closed, or an error status before closing.
            Ok(_) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(e) => panic!("slow connection still open: {e}"),
        }
    }
    assert_eq!(closed, 40);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.req("GET", "/healthz", &[], None).status, 200);
}
