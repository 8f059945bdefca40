//! httpd + mod_ja4 → unix socket → `ja4-sidecar serve` → embedded ClickHouse: every request
//! becomes a row, a malformed frame from another peer is counted without disturbing the rest.

use ja4_testkit::clock;
#[path = "../../mod_ja4/tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ja4_testkit::sidecar::{Sidecar, SidecarConf};

fn metric(port: u16, name: &str) -> u64 {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn query(dir: &std::path::Path, sql: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ja4-sidecar"))
        .args(["query", "--data-dir"])
        .arg(dir.join("store"))
        .args(["--database", "e2e", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap_or("")
        .to_owned()
}

/// A fresh directory for a sidecar and its store, readable by httpd's `User`.
fn sidecar_dir(name: &str) -> std::path::PathBuf {
    let dir = tempdir(name);
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

/// Starts `ja4-sidecar serve` with a config in `dir` and waits until it serves.
fn start_sidecar(dir: &std::path::Path, http: u16) -> Sidecar {
    start_sidecar_with(dir, http, "", &[])
}

/// [`start_sidecar`] with more `[ingest]` settings (which may end with whole sections after a
/// line `---`), under `prefix` (e.g. `prlimit …`).
fn start_sidecar_with(
    dir: &std::path::Path,
    http: u16,
    ingest_extra: &str,
    prefix: &[&str],
) -> Sidecar {
    let (ingest, sections) = ingest_extra
        .split_once("---\n")
        .unwrap_or((ingest_extra, ""));
    let mut c = SidecarConf::new(std::path::Path::new(env!("CARGO_BIN_EXE_ja4-sidecar")), dir);
    c.http = http;
    c.database = "e2e".into();
    c.ingest = ingest.into();
    c.sections = sections.into();
    c.prefix = prefix.iter().map(|p| p.to_string()).collect();
    c.start(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Stops the sidecar (SIGTERM: it flushes) and checks it exited cleanly.
fn stop_sidecar(mut sidecar: Sidecar, _dir: &std::path::Path) {
    let status = sidecar.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        sidecar.log()
    );
}

fn wait_metric(http: u16, name: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(http, name) < at_least {
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {} (< {at_least})",
            metric(http, name)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn https_requests(h: &Httpd, n: usize) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "--http1.1"]);
    for _ in 0..n {
        cmd.args(["-o", "/dev/null"])
            .arg(h.url(true, "/index.html"));
    }
    run(&mut cmd);
}

#[test]
fn store_outage_and_restart_lose_nothing() {
    if !need_root() {
        return;
    }
    let dir = sidecar_dir("outage");
    let http = free_port();
    let sidecar = start_sidecar(&dir, http);
    // The store fails: inserts cannot write their RowBinary file (a file where the directory
    // must be), exactly as on a full or broken disk.
    let blocker = dir.join("store/ja4-insert");
    std::fs::write(&blocker, b"not a directory").unwrap();

    let extra = format!(
        "JA4ExportSocket {}\nJA4BatchSize 8\nJA4FlushInterval 50",
        dir.join("ingest.sock").display()
    );
    let mut h = Httpd::start(
        "outage",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    https_requests(&h, 30);
    wait_metric(http, "ja4_spool_spooled_total", 30);
    assert_eq!(metric(http, "ja4_store_inserted_total"), 0);

    // Restart the sidecar during the outage: the spool survives.
    stop_sidecar(sidecar, &dir);
    let sidecar = start_sidecar(&dir, http);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        metric(http, "ja4_spool_bytes") > 0,
        "spool resumed after restart"
    );
    assert_eq!(metric(http, "ja4_store_inserted_total"), 0);

    // The store comes back: everything is replayed, then new traffic goes straight in.
    std::fs::remove_file(&blocker).unwrap();
    wait_metric(http, "ja4_spool_replayed_total", 30);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(http, "ja4_spool_bytes") != 0 {
        assert!(Instant::now() < deadline, "spool not drained");
        std::thread::sleep(Duration::from_millis(100));
    }
    https_requests(&h, 5);
    h.stop();
    wait_metric(
        http,
        "ja4_store_inserted_total",
        metric(http, "ja4_spool_replayed_total") + 5,
    );
    let dropped: u64 = ["store_error", "spool_full", "spool_error"]
        .iter()
        .map(|r| metric(http, &format!("ja4_dropped_total{{reason=\"{r}\"}}")))
        .sum();
    assert_eq!(dropped, 0);
    stop_sidecar(sidecar, &dir);
    assert_eq!(
        query(
            &dir,
            "SELECT count() FROM e2e.http_logs WHERE kind = 'request' AND path = '/index.html'"
        ),
        "35",
        "inserted rows == sent requests"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn requests_reach_the_store() {
    if !need_root() {
        return;
    }
    let dir = sidecar_dir("e2e");
    let http = free_port();
    let sidecar = start_sidecar(&dir, http);
    let sock = dir.join("ingest.sock");
    let extra = format!(
        "JA4ExportSocket {}\nJA4BatchSize 8\nJA4FlushInterval 50",
        sock.display()
    );
    let mut h = Httpd::start(
        "e2e",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    https_requests(&h, 20);
    // Another peer sends garbage: it is counted, its connection closed, nothing else disturbed.
    let mut bad = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    bad.write_all(b"definitely not a JA4 batch frame, just noise")
        .unwrap();
    drop(bad);
    for _ in 0..5 {
        curl(&[], &h.url(false, "/index.html"));
    }
    // Three HTTP/2 requests on one connection: the h2 fingerprint reaches the store.
    let mut h2 = Command::new("curl");
    h2.args(["-sk", "--http2"]);
    for _ in 0..3 {
        h2.args(["-o", "/dev/null"]).arg(h.url(true, "/h2.html"));
    }
    run(&mut h2);
    h.stop(); // children flush their exporters at exit
    wait_metric(http, "ja4_store_inserted_total", 28);
    assert_eq!(metric(http, "ja4_ingest_malformed_frames_total"), 1);
    assert_eq!(metric(http, "ja4_store_insert_errors_total"), 0);
    stop_sidecar(sidecar, &dir);

    assert_eq!(
        query(
            &dir,
            "SELECT count() FROM e2e.http_logs WHERE kind = 'request' AND path = '/index.html'"
        ),
        "25"
    );
    assert_eq!(query(&dir, "SELECT count() FROM e2e.http_logs WHERE path = '/index.html' AND ja4 LIKE 't13i%' AND tls_version = 'TLSv1.3'"), "20");
    assert_eq!(query(&dir, "SELECT countIf(ja4t = '' OR ja4h = '' OR syn_ttl != 64) FROM e2e.http_logs WHERE path = '/index.html'"), "0");
    assert_eq!(
        query(
            &dir,
            "SELECT uniqExact(conn_id) FROM e2e.http_logs WHERE path = '/index.html' AND ja4 != ''"
        ),
        "1",
        "20 keep-alive requests on one connection"
    );
    assert_eq!(
        query(
            &dir,
            "SELECT count(), uniqExact(h2_fp), any(length(h2_fp_hash)), any(h2_fp LIKE '%|%|%|m,p,s,a') FROM e2e.http_logs WHERE path = '/h2.html' AND protocol = 'HTTP/2.0'"
        ),
        "3\t1\t12\t1",
        "curl's HTTP/2 connection, its fingerprint in every row"
    );
    assert_eq!(
        query(
            &dir,
            "SELECT countIf(h2_fp != '') FROM e2e.http_logs WHERE path = '/index.html'"
        ),
        "0",
        "HTTP/1.1 rows carry none"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs an admin subcommand of `ja4-sidecar` on the test's store; returns (success, output).
fn admin(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ja4-sidecar"))
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("store"))
        .args(["--database", "e2e"])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A ClientHello whose server name holds a TAB and a newline, sent to httpd as any client
/// could, ends as an orphan record in the store. `train` and `score` still run, score that
/// client under a marked host key, and keep every other client.
#[test]
fn hostile_server_name_does_not_stop_scoring() {
    if !need_root() {
        return;
    }
    let dir = sidecar_dir("sni");
    let http = free_port();
    let sidecar = start_sidecar(&dir, http);
    let extra = format!(
        "JA4ExportSocket {}\nJA4BatchSize 8\nJA4FlushInterval 50",
        dir.join("ingest.sock").display()
    );
    let mut h = Httpd::start(
        "sni",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    // Twelve ordinary clients, each from its own address over HTTP/1.1 and HTTP/2 (one
    // client: the two ALPN variants of one TLS stack are one JA4 family).
    for n in 2..14 {
        for proto in ["--http1.1", "--http2"] {
            let mut cmd = Command::new("curl");
            // A browser's user agent: curl's own names a tool, which training leaves out.
            cmd.args(["-sk", proto, "--interface", &format!("127.0.0.{n}")])
                .args([
                    "-A",
                    "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0",
                ]);
            for p in ["/index.html", "/a", "/b"] {
                cmd.args(["-o", "/dev/null"]).arg(h.url(true, p));
            }
            run(&mut cmd);
        }
    }
    // The hostile handshake: OpenSSL's client sends the name as given.
    run(Command::new("sh").arg("-c").arg(format!(
        "openssl s_client -connect 127.0.0.1:{} -servername \"$(printf 'evil\\tsni\\nx')\" </dev/null >/dev/null 2>&1; true",
        h.https
    )));
    h.stop();
    wait_metric(http, "ja4_store_inserted_total", 73);
    stop_sidecar(sidecar, &dir);
    assert_eq!(
        query(
            &dir,
            "SELECT count() FROM e2e.http_logs WHERE tls_sni = 'evil\\tsni\\nx' AND kind = 'orphan'"
        ),
        "1",
        "the hostile server name is stored as sent"
    );

    let models = dir.join("models");
    let models = models.to_str().unwrap();
    let (ok, out) = admin(
        &dir,
        &[
            "train",
            "--hours",
            "1",
            "--min-clients",
            "10",
            "--trees",
            "50",
            "--models-dir",
            models,
        ],
    );
    assert!(ok, "train: {out}");
    let (ok, out) = admin(&dir, &["score", "--hours", "1", "--models-dir", models]);
    assert!(ok, "score: {out}");
    assert_eq!(
        query(
            &dir,
            "SELECT count() FROM e2e.ml_all_scores WHERE host = 'invalid-sni:6576696c09736e690a78'"
        ),
        "1",
        "the hostile client is scored under its marked host key"
    );
    assert_eq!(
        query(
            &dir,
            "SELECT count(), uniqExact(src_ip) FROM e2e.ml_all_scores WHERE host = '127.0.0.1'"
        ),
        "12\t12",
        "every ordinary client is scored, once over both protocols"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One batch frame of `paths`, each record stamped `ts_us`, as a peer of the socket sends it.
fn frame_of(paths: &[(&str, i64)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (k, (path, ts_us)) in paths.iter().enumerate() {
        ja4_core::batch::Record {
            ts_us: *ts_us,
            conn_id: k as u64,
            client_ip: Some("192.0.2.7".parse().unwrap()),
            vhost: &b"shop.example"[..],
            method: b"GET",
            path: path.as_bytes(),
            protocol: b"HTTP/1.1",
            status: 200,
            ..Default::default()
        }
        .encode(&mut payload);
    }
    ja4_core::batch::frame(&payload, paths.len() as u32)
}

/// A poison batch (records spanning years, one the store refuses for its data) must not stop
/// ingest: what the store keeps is stored, what it would drop is counted, the refused record
/// is set aside in the dead letters, and good frames from another peer — in the same insert
/// or after — are stored, also across a restart.
#[test]
fn poison_frame_is_set_aside_and_ingest_goes_on() {
    if !need_root() {
        return;
    }
    let dir = sidecar_dir("poison");
    // The operator's schema refuses one kind of row: a real engine refusal for data. Set up in
    // a process of its own (this binary, one test), so that no engine of this process is left
    // with the data directory while the sidecar uses it.
    let setup = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "poison_schema_setup", "--nocapture"])
        .env("JA4_POISON_STORE", dir.join("store"))
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let http = free_port();
    let sidecar = start_sidecar(&dir, http);
    let now = clock::now_second_us();
    let day = 86_400_000_000;
    let sock = dir.join("ingest.sock");
    let mut poison = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let mut good = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    poison
        .write_all(&frame_of(&[
            ("/old", now - 150 * day),
            ("/poison", now),
            ("/mixed", now),
            ("/far-future", now + 400 * day),
        ]))
        .unwrap();
    let goods: Vec<(&str, i64)> = (0..10).map(|k| ("/good", now + k)).collect();
    good.write_all(&frame_of(&goods)).unwrap();
    wait_metric(http, "ja4_store_inserted_total", 11);
    wait_metric(http, "ja4_dead_letter_records_total", 1);
    assert_eq!(metric(http, "ja4_dropped_total{reason=\"expired\"}"), 1);
    assert_eq!(metric(http, "ja4_dropped_total{reason=\"future\"}"), 1);
    assert_eq!(
        metric(http, "ja4_spool_bytes"),
        0,
        "nothing waits in the spool"
    );

    // After a restart the spool is empty and new frames go straight in.
    drop((poison, good));
    stop_sidecar(sidecar, &dir);
    let sidecar = start_sidecar(&dir, http);
    let mut good = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    good.write_all(&frame_of(&goods)).unwrap();
    wait_metric(http, "ja4_store_inserted_total", 10);
    assert_eq!(metric(http, "ja4_spool_bytes"), 0);
    drop(good);
    stop_sidecar(sidecar, &dir);
    assert_eq!(
        query(
            &dir,
            "SELECT countIf(path = '/good'), countIf(path = '/mixed'), countIf(path = '/poison') FROM e2e.http_logs"
        ),
        "20\t1\t0"
    );

    // The dead letter: listed with the engine's reason, shown, refused again on retry, removed.
    let dl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ja4-sidecar"))
            .arg("dead-letter")
            .args(args)
            .arg("--spool-dir")
            .arg(dir.join("spool"))
            .arg("--data-dir")
            .arg(dir.join("store"))
            .args(["--database", "e2e"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, list) = dl(&["list"]);
    assert_eq!(code, Some(0));
    assert!(
        list.starts_with("1\t1 records\t") && list.contains("no_poison"),
        "{list}"
    );
    let (code, shown) = dl(&["show", "1"]);
    assert_eq!(code, Some(0));
    assert!(
        shown.contains("\"/poison\"") && shown.lines().count() == 1,
        "{shown}"
    );
    let (code, retried) = dl(&["retry", "1"]);
    assert_eq!(code, Some(1), "{retried}");
    assert!(retried.contains("1 refused again"), "{retried}");
    let (code, _) = dl(&["remove", "2"]);
    assert_eq!(code, Some(0));
    let (_, list) = dl(&["list"]);
    assert!(list.starts_with("no dead letters"), "{list}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The schema of `poison_frame_is_set_aside_and_ingest_goes_on`, when that test runs this one
/// in a process of its own (`JA4_POISON_STORE` set); otherwise it does nothing.
#[test]
fn poison_schema_setup() {
    use ja4_store::{chdb::default_library, migrate, Store};
    let Some(dir) = std::env::var_os("JA4_POISON_STORE") else {
        return;
    };
    let store = Store::embedded(&default_library(), std::path::Path::new(&dir)).unwrap();
    migrate::migrate(&store, &migrate::Options::new("e2e")).unwrap();
    store
        .execute("ALTER TABLE e2e.http_logs ADD CONSTRAINT no_poison CHECK path != '/poison'")
        .unwrap();
}

fn healthz(http: u16) -> bool {
    Command::new("curl")
        .args(["-sf", "--max-time", "3"])
        .arg(format!("http://127.0.0.1:{http}/healthz"))
        .status()
        .unwrap()
        .success()
}

/// True once the peer closed `s` (a read returns end of file or an error).
fn closed_by_peer(s: &mut std::os::unix::net::UnixStream, within: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    matches!(s.read(&mut [0u8; 16]), Ok(0) | Err(_)) && {
        // A timeout is an error too: tell it apart.
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        !matches!(s.read(&mut [0u8; 16]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// Hostile peers of the ingest socket: more connections than `max_peers`, frames half sent
/// and left, frames larger than the memory budget, connections cut mid-frame and silent
/// ones. Each is closed and counted, the sidecar's memory stays within the budget, and a
/// good peer is served all along.
#[test]
fn hostile_ingest_peers_are_bounded_and_counted() {
    if !need_root() {
        return;
    }
    use std::os::unix::net::UnixStream;
    let dir = sidecar_dir("peers");
    let http = free_port();
    let sidecar = start_sidecar_with(
        &dir,
        http,
        "max_peers = 8\nmemory_budget_bytes = 1048576\nframe_timeout_s = 2\nidle_timeout_s = 3\n",
        &[],
    );
    let sock = dir.join("ingest.sock");
    let now = clock::now_second_us();

    // More connections than max_peers: the extra ones are closed at once, counted.
    let mut idle: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    wait_metric(http, "ja4_ingest_rejected_total{reason=\"peers\"}", 12);
    assert_eq!(metric(http, "ja4_ingest_peers"), 8);
    assert!(healthz(http));
    // Silent connections are closed after idle_timeout_s.
    assert!(closed_by_peer(&mut idle[0], Duration::from_secs(10)));
    wait_metric(http, "ja4_ingest_rejected_total{reason=\"idle\"}", 8);
    drop(idle);

    // A frame announced at 4 MiB and left half sent: closed after frame_timeout_s, counted.
    let big = frame_of(&vec![("/x".repeat(2000).leak() as &str, now); 1000]);
    assert!(big.len() > 2 << 20, "{}", big.len());
    let mut slow = UnixStream::connect(&sock).unwrap();
    slow.write_all(&big[..1000]).unwrap();
    assert!(closed_by_peer(&mut slow, Duration::from_secs(10)));
    wait_metric(http, "ja4_ingest_truncated_frames_total", 1);

    // Past the 1 MiB budget: closed, counted, and the budget is given back.
    let mut greedy = UnixStream::connect(&sock).unwrap();
    let _ = greedy.write_all(&big[..(2 << 20)]);
    wait_metric(http, "ja4_ingest_rejected_total{reason=\"memory\"}", 1);
    assert!(closed_by_peer(&mut greedy, Duration::from_secs(10)));

    // Cut mid-frame by the peer: counted as truncated.
    let mut cut = UnixStream::connect(&sock).unwrap();
    cut.write_all(&big[..5000]).unwrap();
    drop(cut);
    wait_metric(http, "ja4_ingest_truncated_frames_total", 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(http, "ja4_ingest_buffered_bytes") != 0 {
        assert!(Instant::now() < deadline, "buffered bytes not given back");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A good peer is served throughout.
    let mut good = UnixStream::connect(&sock).unwrap();
    let goods: Vec<(&str, i64)> = (0..10).map(|k| ("/good", now + k)).collect();
    good.write_all(&frame_of(&goods)).unwrap();
    wait_metric(http, "ja4_store_inserted_total", 10);
    drop(good);
    stop_sidecar(sidecar, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Out of descriptors: the accept loop counts the failures and backs off instead of spinning,
/// and once connections go away the sidecar serves again (/healthz, new peers).
#[test]
fn descriptor_exhaustion_is_counted_and_survived() {
    if !need_root() {
        return;
    }
    use std::os::unix::net::UnixStream;
    let dir = sidecar_dir("nofile");
    let http = free_port();
    // The cap below the descriptor limit: a flood of connections is refused at accept, the
    // sidecar keeps answering and storing during it.
    let sidecar = start_sidecar_with(&dir, http, "max_peers = 64\n", &["prlimit", "--nofile=160"]);
    let sock = dir.join("ingest.sock");
    // The module's connection is there first (it keeps one per child).
    let mut good = UnixStream::connect(&sock).unwrap();
    wait_metric(http, "ja4_ingest_peers", 1);
    let flood: Vec<UnixStream> = (0..400)
        .filter_map(|_| UnixStream::connect(&sock).ok())
        .collect();
    assert!(flood.len() > 200, "{}", flood.len());
    wait_metric(http, "ja4_ingest_rejected_total{reason=\"peers\"}", 300);
    assert!(healthz(http), "/healthz during the flood");
    let now = clock::now_second_us();
    good.write_all(&frame_of(&[("/during", now)])).unwrap();
    drop(flood);
    wait_metric(http, "ja4_store_inserted_total", 1);
    drop(good);
    assert_eq!(metric(http, "ja4_ingest_accept_errors_total"), 0);
    stop_sidecar(sidecar, &dir);

    // A cap above the descriptor limit (a misconfiguration): accepts fail for want of
    // descriptors; they are counted and backed off, and the sidecar serves again once the
    // connections go. (Scoring off: what the engine does without descriptors is not this
    // test's subject.)
    let sidecar = start_sidecar_with(
        &dir,
        http,
        "max_peers = 100000\n---\n[scoring]\nenabled = false\n",
        &["prlimit", "--nofile=160"],
    );
    // 400 connections for 160 descriptors: the sidecar runs out while they are open (and
    // cannot answer /metrics meanwhile: no descriptor for it either).
    let conns: Vec<UnixStream> = (0..400)
        .filter_map(|_| UnixStream::connect(&sock).ok())
        .collect();
    assert!(conns.len() > 200, "{}", conns.len());
    std::thread::sleep(Duration::from_secs(3));
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthz(http) {
        assert!(Instant::now() < deadline, "sidecar did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(metric(http, "ja4_ingest_accept_errors_total") > 0);
    let mut good = UnixStream::connect(&sock).unwrap();
    good.write_all(&frame_of(&[("/after", now)])).unwrap();
    wait_metric(http, "ja4_store_inserted_total", 1);
    drop(good);
    stop_sidecar(sidecar, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_analysts_deny_entry_is_enforced_by_httpd_and_lifted() {
    if !need_root() {
        return;
    }
    let dir = sidecar_dir("decisions");
    let snapshot = dir.join("decisions.bin");
    let logs = tempdir("decisions-log");
    let extra = format!(
        "JA4Mitigation Enforce\nJA4DecisionFile {}\nJA4Action bot block\n\
         LogFormat \"%a %>s|%{{JA4_VERDICT}}e|%{{JA4_REASON}}e|%{{JA4_BOT_SCORE}}e|%{{JA4_ACTION}}e\" decisions\n\
         CustomLog {}/decisions.log decisions",
        snapshot.display(),
        logs.display()
    );
    let mut h = Httpd::start(
        "decisions",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let url = h.url(true, "/index.html");
    assert_eq!(
        status_from(&url, "127.0.0.5"),
        "200",
        "no snapshot yet: fail-open"
    );
    let publish = snapshot.to_str().unwrap();
    let (ok, out) = admin(
        &dir,
        &[
            "lists",
            "add",
            "--kind",
            "ip",
            "--value",
            "127.0.0.5",
            "--action",
            "deny",
            "--reason",
            "stuffing",
            "--analyst",
            "alice",
            "--publish",
            publish,
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("published 0 scored and 1 listed"), "{out}");
    let took = wait_status(&url, "127.0.0.5", "403");
    eprintln!("deny took effect after {took:?}");
    // Other clients are unaffected.
    assert_eq!(status_from(&url, "127.0.0.6"), "200");
    let (ok, out) = admin(
        &dir,
        &[
            "lists",
            "remove",
            "--kind",
            "ip",
            "--value",
            "127.0.0.5",
            "--analyst",
            "alice",
            "--publish",
            publish,
        ],
    );
    assert!(ok, "{out}");
    let took = wait_status(&url, "127.0.0.5", "200");
    eprintln!("removal took effect after {took:?}");
    h.stop();
    let log = std::fs::read_to_string(logs.join("decisions.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l == "127.0.0.5 403|bot|list:deny|1|block"),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l == "127.0.0.6 200|-|-|-|allow"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(logs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One HTTP/1.1 exchange with the dashboard on 127.0.0.1:`port`: status, headers, body.
fn dashboard_req(
    port: u16,
    method: &str,
    path: &str,
    hdrs: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in hdrs {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    s.write_all(r.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// An analyst's deny entry for a network made in the dashboard: the sidecar publishes at once
/// (no periodic publication here: `publish_every_s = 0`), httpd refuses every address of the
/// network within 2 s and no other; the dashboard's removal lifts it.
#[test]
fn a_dashboard_deny_entry_for_a_network_is_enforced_by_httpd() {
    if !need_root() {
        return;
    }
    let dir = sidecar_dir("dash-deny");
    let snapshot = dir.join("decisions.bin");
    let (http, port) = (free_port(), free_port());
    let mut c = SidecarConf::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_ja4-sidecar")),
        &dir,
    );
    c.http = http;
    c.database = "e2e".into();
    c.sections = format!(
        "[dashboard]\nlisten = \"127.0.0.1:{port}\"\nusers_file = \"{d}/users.json\"\n\
         [scoring]\nenabled = false\ndecisions_file = \"{s}\"\npublish_every_s = 0\n",
        d = dir.display(),
        s = snapshot.display()
    );
    let cfg = dir.join("sidecar.toml");
    std::fs::write(&cfg, c.toml()).unwrap();
    let mut add = Command::new(env!("CARGO_BIN_EXE_ja4-sidecar"))
        .args(["user", "add", "alice", "--role", "admin", "--config"])
        .arg(&cfg)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"amber-falcon-71\n")
        .unwrap();
    assert!(add.wait().unwrap().success());
    let sidecar = c
        .start(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let extra = format!(
        "JA4Mitigation Enforce\nJA4DecisionFile {}\nJA4Action bot block",
        snapshot.display()
    );
    let mut h = Httpd::start(
        "dash-deny",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let url = h.url(true, "/index.html");
    assert_eq!(status_from(&url, "127.0.0.9"), "200");

    let (status, head, body) = dashboard_req(
        port,
        "POST",
        "/api/login",
        &[],
        r#"{"user":"alice","password":"amber-falcon-71"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let csrf = body
        .split("\"csrf\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let list = |action: &str| {
        let (status, _, body) = dashboard_req(
            port,
            "POST",
            "/api/lists",
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            &format!(r#"{{"kind":"net","value":"127.0.0.8/30","action":"{action}","note":"e2e"}}"#),
        );
        assert_eq!(status, 200, "{body}");
    };
    list("deny");
    let took = wait_status(&url, "127.0.0.9", "403");
    eprintln!("the dashboard's network deny took effect after {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(status_from(&url, "127.0.0.11"), "403", "the whole network");
    assert_eq!(status_from(&url, "127.0.0.12"), "200", "outside it");
    list("remove");
    let took = wait_status(&url, "127.0.0.9", "200");
    eprintln!("the dashboard's removal took effect after {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    h.assert_no_crash();
    h.stop();
    stop_sidecar(sidecar, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Seconds curl takes for `n` keep-alive-less requests to `url` from `from`: the median.
fn median_latency(url: &str, from: &str, n: usize) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let out = Command::new("curl")
                .args([
                    "-sk",
                    "--max-time",
                    "10",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{time_total}",
                ])
                .args(["--interface", from])
                .arg(url)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .parse()
                .unwrap_or(f64::NAN)
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[n / 2]
}

/// The sidecar killed (SIGKILL, no goodbye): httpd keeps serving, its exporters drop what the
/// sidecar cannot take (counted), the deny entry holds until the snapshot is older than
/// `JA4DecisionMaxAge` and then expires (fail-open).
#[test]
fn a_killed_sidecar_fails_open_and_requests_keep_flowing() {
    if !need_root() {
        return;
    }
    let dir = sidecar_dir("killed");
    let snapshot = dir.join("decisions.bin");
    // The entry is in the store before the sidecar starts (one engine per data directory).
    let (ok, out) = admin(
        &dir,
        &[
            "lists",
            "add",
            "--kind",
            "ip",
            "--value",
            "127.0.0.5",
            "--action",
            "deny",
            "--reason",
            "kill test",
            "--analyst",
            "alice",
        ],
    );
    assert!(ok, "{out}");
    let http = free_port();
    let mut sidecar = start_sidecar_with(
        &dir,
        http,
        &format!(
            "---\n[scoring]\nenabled = false\ndecisions_file = \"{}\"\npublish_every_s = 1\n",
            snapshot.display()
        ),
        &[],
    );
    let extra = format!(
        "JA4ExportSocket {}\nJA4BatchSize 4\nJA4FlushInterval 50\nJA4Mitigation Enforce\n\
         JA4DecisionFile {}\nJA4DecisionMaxAge 10\nJA4Action bot block",
        dir.join("ingest.sock").display(),
        snapshot.display()
    );
    let mut h = Httpd::start(
        "killed",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let url = h.url(true, "/index.html");
    wait_status(&url, "127.0.0.5", "403");
    let before = median_latency(&url, "127.0.0.6", 40);
    let pid = sidecar.pid().unwrap();
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let killed = Instant::now();
    let _ = sidecar.stop();
    // Served at once and throughout; the exporters' records have nowhere to go.
    let after = median_latency(&url, "127.0.0.6", 40);
    eprintln!("median latency before the kill {before:.6} s, after {after:.6} s");
    assert_eq!(
        status_from(&url, "127.0.0.5"),
        "403",
        "the table holds meanwhile"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_from(&url, "127.0.0.5") != "200" {
        assert!(Instant::now() < deadline, "the stale table never expired");
        assert_eq!(status_from(&url, "127.0.0.6"), "200");
        std::thread::sleep(Duration::from_millis(200));
    }
    let expired = killed.elapsed();
    eprintln!("fail-open {expired:?} after the kill (JA4DecisionMaxAge 10)");
    assert!(expired >= Duration::from_secs(8), "{expired:?}");
    let j = h.status_json();
    assert!(j["counters"]["decision_stale"].as_u64().unwrap() > 0, "{j}");
    assert!(j["counters"]["export_errors"].as_u64().unwrap() > 0, "{j}");
    h.assert_no_crash();
    h.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
