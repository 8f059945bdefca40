//! mod_ja4 inside real httpd instances (event, worker, prefork) with real clients.
//!
//! Requires root (tcpdump, `User www-data`), Debian's apache2, curl, openssl and python3, which
//! `scripts/setup.sh` installs. Without root these tests are skipped with a message, except under
//! CI where they fail.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ja4_sidecar::offline::{analyze_file, offline_flow_config};
use ja4_testkit::tcpdump::Tcpdump;
use serde_json::Value;

/// Drives a mix of real clients at `h` and returns how many requests they made.
fn drive_clients(h: &Httpd) -> usize {
    let mut n = 0;
    // curl: HTTP/1.1 and HTTP/2 over TLS 1.3, TLS 1.2, plaintext, IPv6.
    curl(&["--http1.1"], &h.url(true, "/index.html"));
    curl(
        &["--http2"],
        &format!("https://localhost:{}/index.html", h.https),
    );
    curl(
        &["--tlsv1.2", "--tls-max", "1.2", "--http1.1"],
        &h.url(true, "/"),
    );
    curl(
        &[
            "-H",
            "Accept-Language: de-CH,de;q=0.9",
            "-H",
            "Cookie: b=2; a=1",
            "-e",
            "http://ref.example/",
        ],
        &h.url(false, "/index.html"),
    );
    curl(
        &["--http1.1"],
        &format!("https://[::1]:{}/index.html", h.https),
    );
    n += 5;
    // curl keep-alive: two requests on one connection.
    run(Command::new("curl")
        .args(["-sk", "--http1.1", "-o", "/dev/null", "-o", "/dev/null"])
        .arg(h.url(true, "/index.html"))
        .arg(h.url(true, "/big.bin")));
    n += 2;
    // openssl s_client with SNI and ALPN, one HTTP/1.0 request.
    run(Command::new("sh").arg("-c").arg(format!(
        "printf 'GET /index.html HTTP/1.0\\r\\nHost: client.test\\r\\nUser-Agent: s_client\\r\\n\\r\\n' | openssl s_client -quiet -connect 127.0.0.1:{} -servername client.test -alpn http/1.1 >/dev/null 2>&1; true",
        h.https
    )));
    n += 1;
    // Python's TLS stack.
    run(Command::new("python3").arg("-c").arg(format!(
        "import ssl,urllib.request as u\nc=ssl.create_default_context();c.check_hostname=False;c.verify_mode=ssl.CERT_NONE\nu.urlopen('https://localhost:{}/index.html',context=c).read()",
        h.https
    )));
    n += 1;
    n
}

/// Exported records and access-log lines agree with the offline `pcap` analysis of a tcpdump
/// capture of the same connections.
fn inline_matches_capture(mpm: &str) {
    if !need_root() {
        return;
    }
    let h = Httpd::start(
        &format!("match-{mpm}"),
        &Options {
            mpm,
            ..Default::default()
        },
    );
    let cap = Tcpdump::loopback(&h.root, &[h.https, h.http]).expect("tcpdump on lo");
    let n = drive_clients(&h);
    let pcap = cap.stop();
    let records = h.wait_requests(n);
    assert_eq!(
        records.len(),
        n,
        "one record per request:\n{records:#?}\n{}",
        h.error_log()
    );

    let offline = analyze_file(&pcap, offline_flow_config()).unwrap();
    let by_port: HashMap<u16, _> = offline.records.iter().map(|r| (r.src_port, r)).collect();
    let mut tls_checked = 0;
    let mut http_checked = 0;
    for rec in &records {
        let port = rec["client_port"].as_u64().unwrap() as u16;
        let conn = by_port
            .get(&port)
            .unwrap_or_else(|| panic!("connection from port {port} missing in the capture"));
        assert_eq!(
            rec["ja4t"].as_str(),
            conn.ja4t.as_deref(),
            "JA4T of port {port}"
        );
        assert_eq!(
            rec["syn"]["ttl"].as_u64(),
            conn.facts.syn.as_ref().map(|s| u64::from(s.ttl))
        );
        match &conn.ja4 {
            Some(j) => {
                for (k, v) in [
                    ("ja4", &j.ja4),
                    ("ja4_r", &j.ja4_r),
                    ("ja4_o", &j.ja4_o),
                    ("ja4_ro", &j.ja4_ro),
                ] {
                    assert_eq!(rec[k].as_str(), Some(v.as_str()), "{k} of port {port}");
                }
                assert_eq!(
                    rec["ja3"].as_str(),
                    conn.ja3.as_ref().map(|j| j.ja3.as_str())
                );
                assert_eq!(rec["tls_sni"].as_str(), conn.tls_server_name.as_deref());
                assert!(rec["tls_version"].as_str().unwrap().starts_with("TLSv1."));
                tls_checked += 1;
            }
            None => {
                assert!(rec.get("ja4").is_none());
                // Plaintext: JA4H from httpd's parsed request equals JA4H from the raw bytes.
                let want: Vec<&str> = conn.ja4h_ro.iter().map(String::as_str).collect();
                assert!(
                    want.contains(&rec["ja4h_ro"].as_str().unwrap()),
                    "JA4H of port {port}: {} not in {want:?}",
                    rec["ja4h_ro"]
                );
                http_checked += 1;
            }
        }
    }
    assert!(
        tls_checked >= 6 && http_checked >= 1,
        "tls {tls_checked} http {http_checked}"
    );

    // %{JA4}e and friends in the access log carry the same values.
    assert_log_carries_records(&h.access_log(), &records);
    // HTTP/2 JA4H is in wire form: lowercase names, no synthesised Host. (mod_http2 does not
    // serve h2 under prefork: there the request falls back to HTTP/1.1.)
    if mpm != "prefork" {
        let h2 = records
            .iter()
            .find(|r| r["protocol"] == "HTTP/2.0")
            .expect("an HTTP/2 request");
        assert_eq!(
            h2["ja4h_r"].as_str().unwrap().split('_').nth(1),
            Some("user-agent,accept")
        );
    }
    // The capture thread's view (shared table) agrees with the in-connection one and with the
    // offline analysis of the same traffic.
    let with_capture: Vec<&Value> = records
        .iter()
        .filter(|r| r["sources"].as_u64().unwrap() & 4 != 0)
        .collect();
    assert!(
        with_capture.len() * 2 >= records.len(),
        "only {} of {} records found their connection in the capture",
        with_capture.len(),
        records.len()
    );
    // The table fills as the capture thread sees each packet, so a record may be built before
    // the capture saw its ServerHello or handshake ACK: what is there must be right, and the
    // path must show every kind of value at least once.
    let (mut seen_ja4ts, mut seen_ja4s, mut seen_ja4l) = (0, 0, 0);
    for rec in &with_capture {
        let port = rec["client_port"].as_u64().unwrap() as u16;
        let conn = by_port[&port];
        if let Some(v) = rec["ja4ts"].as_str() {
            assert_eq!(Some(v), conn.ja4ts.as_deref(), "JA4TS of port {port}");
            seen_ja4ts += 1;
        }
        if let Some(v) = rec["ja4s"].as_str() {
            assert_eq!(
                Some(v),
                conn.ja4s.as_ref().map(|s| s.ja4s.as_str()),
                "JA4S of port {port}"
            );
            seen_ja4s += 1;
        }
        if let (Some(c), Some(sv)) = (rec["ja4l_c"].as_str(), rec["ja4l_s"].as_str()) {
            let l = conn.ja4l.as_ref().expect("handshake in the capture");
            let ttl = |v: &str| v.split('_').nth(1).unwrap().to_owned();
            assert_eq!(ttl(c), ttl(&l.ja4l_c));
            assert_eq!(ttl(sv), ttl(&l.ja4l_s));
            seen_ja4l += 1;
        }
    }
    assert!(
        seen_ja4ts > 0 && seen_ja4s > 0 && seen_ja4l > 0,
        "capture values in records: ja4ts {seen_ja4ts} ja4s {seen_ja4s} ja4l {seen_ja4l}"
    );
    let st = h.status_json();
    assert_eq!(
        st["counters"]["capture_mismatch"], 0,
        "capture and in-connection fingerprints differ: {st}"
    );
    // Compared once per connection (until its capture entry is complete, then cached).
    let connections: std::collections::HashSet<u64> = with_capture
        .iter()
        .map(|r| r["conn_id"].as_u64().unwrap())
        .collect();
    assert!(st["counters"]["capture_agree"].as_u64().unwrap() >= connections.len() as u64);
    assert_eq!(st["counters"]["capture_threads"], 1);
    assert_eq!(st["counters"]["hello_errors"], 0);
    assert!(st["counters"]["hellos"].as_u64().unwrap() >= 6);
    h.assert_no_crash();
}

/// Each record's access log line (`%{remote}p|%{JA4}e|%{JA4H}e|%{JA4T}e|%{JA4_SNI}e|
/// %{JA4_TLS_VERSION}e`) carries the record's values: the variables were set, and APR's
/// lookups (mod_log_config's) find the first, last and those between.
fn assert_log_carries_records(log: &str, records: &[Value]) {
    for rec in records {
        let port = rec["client_port"].as_u64().unwrap().to_string();
        let line = log
            .lines()
            .find(|l| l.starts_with(&format!("{port}|")))
            .unwrap_or_else(|| panic!("no access log line for {port}:\n{log}"));
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[1], rec["ja4"].as_str().unwrap_or("-"), "{line}");
        assert_eq!(f[2], rec["ja4h"].as_str().unwrap(), "{line}");
        assert_eq!(f[3], rec["ja4t"].as_str().unwrap(), "{line}");
        assert_eq!(f[4], rec["tls_sni"].as_str().unwrap_or("-"), "{line}");
        assert_eq!(f[5], rec["tls_version"].as_str().unwrap_or("-"), "{line}");
    }
}

#[test]
fn inline_matches_capture_event() {
    inline_matches_capture("event");
}

#[test]
fn inline_matches_capture_worker() {
    inline_matches_capture("worker");
}

#[test]
fn inline_matches_capture_prefork() {
    inline_matches_capture("prefork");
}

#[test]
fn handshake_without_request_is_an_orphan_record() {
    if !need_root() {
        return;
    }
    let h = Httpd::start("orphan", &Options::default());
    // Complete the TLS handshake, send nothing, close.
    run(Command::new("sh").arg("-c").arg(format!("openssl s_client -connect 127.0.0.1:{} -servername orphan.test </dev/null >/dev/null 2>&1; true", h.https)));
    // A bare TCP connect-and-close (scanner style).
    let probe = std::net::TcpStream::connect(("127.0.0.1", h.http)).unwrap();
    let probe_port = probe.local_addr().unwrap().port();
    drop(probe);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (tls, bare) = loop {
        let recs = h.records();
        let tls = recs
            .iter()
            .find(|r| r["kind"] == "orphan" && r["tls_sni"] == "orphan.test")
            .cloned();
        let bare = recs
            .iter()
            .find(|r| r["kind"] == "orphan" && r["client_port"] == probe_port)
            .cloned();
        if let (Some(t), Some(b)) = (&tls, &bare) {
            break (t.clone(), b.clone());
        }
        assert!(Instant::now() < deadline, "orphans missing: {recs:#?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(tls["ja4"].as_str().unwrap().starts_with("t13d"));
    assert!(tls["ja4t"].as_str().is_some());
    assert!(
        bare.get("ja4").is_none() && bare["ja4t"].as_str().is_some(),
        "{bare:#?}"
    );
    assert!(h.status_json()["counters"]["orphans"].as_u64().unwrap() >= 2);
}

/// Sends one bare SYN from a raw socket (the kernel answers the SYN-ACK with RST): a half-open
/// scan httpd never accepts. Returns the source port.
fn syn_scan(port: u16) -> u16 {
    let script = r#"
import random, socket, struct, sys
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
sport = random.randint(20000, 30000)
tcp = struct.pack('!HHIIBBHHH', sport, int(sys.argv[1]), 0x1234567, 0, 5 << 4, 0x02, 1024, 0, 0)
pseudo = socket.inet_aton('127.0.0.1') * 2 + struct.pack('!BBH', 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).sendto(tcp, ('127.0.0.1', 0))
print(sport)
"#;
    let out = run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(port.to_string()));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn syn_scan_is_a_capture_orphan() {
    if !need_root() {
        return;
    }
    let h = Httpd::start("synscan", &Options::default());
    let sport = syn_scan(h.https);
    let deadline = Instant::now() + Duration::from_secs(15);
    let rec = loop {
        if let Some(r) = h
            .records()
            .into_iter()
            .find(|r| r["kind"] == "orphan" && r["client_port"] == sport)
        {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no orphan for the SYN scan from port {sport}: {:#?}\n{}",
            h.records(),
            h.status_json()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        rec["sources"], 4,
        "reported by the capture, not by a child: {rec}"
    );
    assert_eq!(rec["ja4t"], "1024__0_0");
    assert!(
        rec["ja4ts"].as_str().is_some_and(|t| !t.is_empty()),
        "the server's SYN-ACK: {rec}"
    );
    assert!(
        h.status_json()["counters"]["capture_orphans"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn bad_directive_values_fail_config_test() {
    if !need_root() {
        return;
    }
    let cases = [
        ("JA4Engine maybe", "JA4Engine"),
        ("JA4SharedEntries 12", "JA4SharedEntries"),
        ("JA4BatchSize 0", "JA4BatchSize"),
        ("JA4FlushInterval soon", "JA4FlushInterval"),
        ("JA4QueueLimit -1", "JA4QueueLimit"),
        ("JA4CapturePorts 443 99999", "JA4CapturePorts"),
        ("JA4ExportSocket relative.sock", "JA4ExportSocket"),
        ("JA4ExportFile logs/x.jsonl", "JA4ExportFile"),
        ("JA4CaptureInterface a/b", "JA4CaptureInterface"),
        ("JA4RequestHeaders sometimes", "JA4RequestHeaders"),
        ("JA4Mitigation maybe", "JA4Mitigation"),
        ("JA4RateLimit asn 5/60 block", "JA4RateLimit"),
        ("JA4RateLimit ja4 5/60", "JA4RateLimit"),
        ("JA4RateLimit ja4 5/0 block", "JA4RateLimit"),
        ("JA4Exempt 10.0.0.0/40", "JA4Exempt"),
        ("JA4RateLimit ip 5/60 tarpit", "JA4RateLimit"),
        ("JA4Action bot maybe", "JA4Action"),
        ("JA4Action verified_bot challenge", "JA4Action"),
        (
            "JA4ChallengeKeyFile /nonexistent/key",
            "JA4ChallengeKeyFile",
        ),
        ("JA4ChallengeKeyFile /etc/hostname", "JA4ChallengeKeyFile"),
        ("JA4ChallengeTTL 5", "JA4ChallengeTTL"),
        ("JA4ChallengeDifficulty 40", "JA4ChallengeDifficulty"),
        ("JA4BlockResponse 200", "JA4BlockResponse"),
        (
            "JA4BlockResponse 403 /nonexistent/blocked.html",
            "JA4BlockResponse",
        ),
        ("JA4BlockResponse 403 relative.html", "JA4BlockResponse"),
        ("JA4TarpitDelay 60000", "JA4TarpitDelay"),
        (
            "<Location /a>\nJA4Mitigation sometimes\n</Location>",
            "JA4Mitigation",
        ),
        (
            "<Location /a>\nJA4Action bot maybe\n</Location>",
            "JA4Action",
        ),
        (
            "<Location /a>\nJA4RateLimit ip 5/60 block\n</Location>",
            "JA4RateLimit",
        ),
        (
            "<VirtualHost *:1>\nJA4ChallengeKeyFile /etc/hostname\n</VirtualHost>",
            "JA4ChallengeKeyFile",
        ),
        (
            "JA4StackLabels /nonexistent/ja4-families.tsv",
            "JA4StackLabels",
        ),
        // Files that exist but are not lists: the error names the directive and the line.
        ("JA4H2Labels /etc/hostname", "JA4H2Labels"),
        ("JA4KnownBad /etc/hostname", "JA4KnownBad"),
        ("JA4HTTP2Fingerprint perhaps", "JA4HTTP2Fingerprint"),
        (
            "<VirtualHost *:1>\nJA4RateLimit ip 5/60 block\n</VirtualHost>",
            "JA4RateLimit",
        ),
        (
            "<VirtualHost *:1>\nJA4SharedEntries 2048\n</VirtualHost>",
            "JA4SharedEntries",
        ),
    ];
    for (directive, name) in cases {
        let h = Httpd::prepare(
            "badconf",
            &Options {
                extra: directive,
                ..Default::default()
            },
        );
        let out = Command::new("apache2")
            .arg("-t")
            .arg("-f")
            .arg(h.root.join("httpd.conf"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{directive} was accepted");
        assert!(
            err.contains(name),
            "{directive}: error does not name {name}: {err}"
        );
    }
    // And good values pass.
    let ok = "JA4Engine On\nJA4SharedEntries 4096\nJA4CapturePorts 443 8443\nJA4BatchSize 64\nJA4QueueLimit 1000\nJA4SetEnv Off\nJA4RequestHeaders On\nJA4Mitigation Count\nJA4RateLimit ip+ja4 100/60 burst=20 block\nJA4RateLimit ip 1000/3600 block\nJA4RateLimit ja4 50/10 challenge\nJA4Exempt 10.0.0.0/8 2001:db8::/32 192.0.2.1\nJA4Action suspicious challenge\nJA4ChallengeTTL 3600\nJA4ChallengeDifficulty 14\nJA4BlockResponse 429 /etc/hostname\nJA4TarpitDelay 2000\n<Location /login>\nJA4Mitigation Enforce\nJA4Action suspicious challenge\n</Location>\n<VirtualHost *:1>\nJA4Mitigation Enforce\nJA4Action bot tarpit\nJA4Exempt 192.0.2.0/24\nJA4BlockResponse 451\n</VirtualHost>";
    let h = Httpd::prepare(
        "goodconf",
        &Options {
            extra: ok,
            ..Default::default()
        },
    );
    let out = Command::new("apache2")
        .arg("-t")
        .arg("-f")
        .arg(h.root.join("httpd.conf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn status_handler_text_and_json() {
    if !need_root() {
        return;
    }
    let h = Httpd::start("status", &Options::default());
    curl(&[], &h.url(true, "/index.html"));
    let text = run(Command::new("curl")
        .args(["-s"])
        .arg(h.url(false, "/ja4-status")))
    .stdout;
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("mod_ja4 "), "{text}");
    for k in [
        "connections",
        "hellos",
        "requests",
        "fingerprinted",
        "exported",
        "dropped_queue_full",
        "queue_depth",
    ] {
        assert!(text.contains(k), "{k} missing:\n{text}");
    }
    let j = h.status_json();
    assert!(j["shm_entries"].as_u64().unwrap() > 0, "{j}");
    assert!(j["counters"]["requests"].as_u64().unwrap() >= 2);
    assert!(j["counters"]["fingerprinted"].as_u64().unwrap() >= 1);
}

#[test]
fn env_off_and_request_headers_on() {
    if !need_root() {
        return;
    }
    // What a backend would see: mod_setenvif copies the request headers (after our
    // post_read_request) into variables that mod_headers echoes back.
    let extra = "JA4SetEnv Off\nJA4RequestHeaders On\n\
LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so\n\
LoadModule setenvif_module /usr/lib/apache2/modules/mod_setenvif.so\n\
SetEnvIf X-JA4 \"^(.*)$\" SEEN_JA4=$1\nSetEnvIf X-JA4T \"^(.*)$\" SEEN_JA4T=$1\n\
Header always set X-Seen-JA4 \"%{SEEN_JA4}e\"\nHeader always set X-Seen-JA4T \"%{SEEN_JA4T}e\"";
    let h = Httpd::start(
        "headers",
        &Options {
            extra,
            ..Default::default()
        },
    );
    let out = run(Command::new("curl")
        .args(["-sk", "-D", "-", "-o", "/dev/null", "-H", "X-JA4: spoofed"])
        .arg(h.url(true, "/index.html")));
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let seen = head
        .lines()
        .find(|l| l.starts_with("x-seen-ja4:"))
        .unwrap_or_default();
    assert!(
        seen.contains("t13i"),
        "backend sees the real JA4 (no SNI to an IP), not the client's: {head}"
    );
    assert!(!seen.contains("spoofed"));
    assert!(head.contains("x-seen-ja4t: 65495_"), "{head}");
    // JA4SetEnv Off: %{JA4}e is empty in the access log.
    assert!(
        h.access_log()
            .lines()
            .all(|l| l.split('|').nth(1) == Some("-")),
        "{}",
        h.access_log()
    );
}

#[test]
fn variables_carry_the_same_values_as_the_records() {
    if !need_root() {
        return;
    }
    // The variables (APR's public table API, one apr_table_addn each) carry the same values
    // in the access log as the records, over TLS and cleartext, with and without a cookie.
    let h = Httpd::start("variables", &Options::default());
    curl(&["--http1.1"], &h.url(true, "/index.html"));
    curl(
        &["--http1.1", "-H", "Cookie: a=1"],
        &h.url(false, "/index.html"),
    );
    let records = h.wait_requests(2);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_log_carries_records(&h.access_log(), &records);
    assert!(records.iter().any(|r| r["ja4"].is_string()));
}

#[test]
fn engine_off_is_inert() {
    if !need_root() {
        return;
    }
    let h = Httpd::start(
        "engineoff",
        &Options {
            extra: "JA4Engine Off",
            ..Default::default()
        },
    );
    curl(&[], &h.url(true, "/index.html"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.records().is_empty());
    assert!(h
        .access_log()
        .lines()
        .all(|l| l.split('|').nth(1) == Some("-")));
}

/// The header lists of [`keep_alive_clients_vary_their_headers`]: more distinct lists than a
/// connection keeps shapes for, some repeated, with cookies, several Cookie headers, languages
/// and a Referer.
fn header_lists() -> Vec<Vec<(&'static str, &'static str)>> {
    let base = [("Host", "shapes.test"), ("User-Agent", "shape-client/1")];
    let mut lists: Vec<Vec<(&str, &str)>> = Vec::new();
    for i in 0..12 {
        let mut l = base.to_vec();
        match i % 6 {
            0 => l.push(("Accept", "*/*")),
            1 => l.extend([
                ("Accept-Language", "fr-CH, fr;q=0.9"),
                ("Cookie", "b=2; a=1"),
            ]),
            2 => l.extend([
                ("Cookie", "x=1"),
                ("Referer", "http://r.test/"),
                ("cookie", "y=2"),
            ]),
            3 => l.extend([("accept", "text/html"), ("Accept-Language", "de")]),
            4 => l.extend([("Sec-Fetch-Mode", "navigate"), ("Accept-Encoding", "gzip")]),
            _ => l.extend([("Cookie", "s=3; t=4"), ("Accept-Language", "en-US")]),
        }
        // Six more lists with a header of their own: twelve distinct lists in all.
        if i >= 6 {
            l.push(if i % 2 == 0 {
                ("X-Extra", "1")
            } else {
                ("X-Other", "2")
            });
            l.insert(1, ("X-First", "0"));
        }
        lists.push(l);
    }
    // Lists seen before, in another order of arrival, and a changed cookie on a known list.
    lists.extend([
        lists[1].clone(),
        lists[0].clone(),
        lists[7].clone(),
        lists[1].clone(),
    ]);
    let mut changed = lists[1].clone();
    changed[3].1 = "b=3; a=1";
    lists.push(changed);
    lists
}

/// A keep-alive client that changes its header list from request to request (more lists than
/// the module keeps per connection, sequential and pipelined): every record and access-log
/// line carries the JA4H, header names and values of the request it belongs to.
#[test]
fn keep_alive_clients_vary_their_headers() {
    if !need_root() {
        return;
    }
    use ja4_core::fingerprint::{HttpVersion, Ja4hSet};
    let h = Httpd::start("shapes", &Options::default());
    let lists = header_lists();
    let request = |i: usize, l: &[(&str, &str)], last: bool| {
        let mut r = format!("GET /index.html?i={i} HTTP/1.1\r\n");
        for (k, v) in l {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        if last {
            r.push_str("Connection: close\r\n");
        }
        r + "\r\n"
    };
    // Python sends them on one connection: the first half one at a time, the rest pipelined.
    let half = lists.len() / 2;
    let sequential: Vec<String> = (0..half).map(|i| request(i, &lists[i], false)).collect();
    let pipelined: String = (half..lists.len())
        .map(|i| request(i, &lists[i], i + 1 == lists.len()))
        .collect();
    let script = r#"
import json, socket, sys
seq, pipe, port = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def response():
    length = 0
    while True:
        line = f.readline()
        assert line, "connection closed early"
        if line in (b"\r\n", b"\n"):
            break
        k, _, v = line.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
    f.read(length)
for r in seq:
    s.sendall(r.encode())
    response()
s.sendall(pipe.encode())
for _ in range(pipe.count("GET ")):
    response()
"#;
    run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(serde_json::to_string(&sequential).unwrap())
        .arg(&pipelined)
        .arg(h.http.to_string()));
    let records = h.wait_requests(lists.len());
    let log = h.access_log();
    for (i, l) in lists.iter().enumerate() {
        let query = format!("i={i}");
        let rec = records
            .iter()
            .find(|r| r["query"] == query.as_str())
            .unwrap_or_else(|| panic!("no record for request {i}: {records:#?}"));
        let mut wire = l.clone();
        if i + 1 == lists.len() {
            wire.push(("Connection", "close"));
        }
        // httpd merges repeated fields of an HTTP/1 request into the first, values joined by
        // ", " (RFC 9110 5.3): the request as parsed, which JA4H is computed from.
        let mut sent: Vec<(&str, String)> = Vec::new();
        for (k, v) in &wire {
            match sent.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
                Some((_, merged)) => *merged = format!("{merged}, {v}"),
                None => sent.push((k, v.to_string())),
            }
        }
        let headers = sent.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()));
        let want = Ja4hSet::compute(b"GET", HttpVersion::Http11, headers);
        assert_eq!(rec["ja4h"], want.ja4h.as_str(), "request {i}: {sent:?}");
        assert_eq!(rec["ja4h_r"], want.ja4h_r.as_str(), "request {i}: {sent:?}");
        let names: Vec<&str> = sent.iter().map(|(k, _)| *k).collect();
        assert_eq!(rec["header_names"], serde_json::json!(names), "request {i}");
        let value = |name: &str| {
            sent.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(rec["user_agent"].as_str(), value("User-Agent"));
        assert_eq!(rec["accept"].as_str(), value("Accept"), "request {i}");
        assert_eq!(
            rec["accept_language"].as_str(),
            value("Accept-Language"),
            "request {i}"
        );
        assert_eq!(rec["has_cookie"], value("Cookie").is_some(), "request {i}");
        assert_eq!(
            rec["has_referer"],
            value("Referer").is_some(),
            "request {i}"
        );
        // The access log's %{JA4H}e of the same request.
        let port = rec["client_port"].as_u64().unwrap();
        let lines: Vec<&str> = log
            .lines()
            .filter(|x| x.starts_with(&format!("{port}|")))
            .collect();
        assert_eq!(lines.len(), lists.len(), "one connection: {log}");
        assert!(lines
            .iter()
            .any(|x| x.split('|').nth(2) == Some(want.ja4h.as_str())));
    }
    // One connection carried them all.
    let ports: std::collections::HashSet<u64> = records
        .iter()
        .filter(|r| r["query"].as_str().is_some_and(|q| q.starts_with("i=")))
        .map(|r| r["client_port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports.len(), 1);
    h.assert_no_crash();
}

/// Concurrent HTTP/2 streams of one connection (curl multiplexing): each record still
/// carries its own request's values.
#[test]
fn concurrent_http2_streams_keep_their_records_apart() {
    if !need_root() {
        return;
    }
    let h = Httpd::start("h2streams", &Options::default());
    let n = 24;
    let mut cmd = Command::new("curl");
    cmd.args(["--parallel", "--parallel-max", "12"]);
    for i in 0..n {
        if i > 0 {
            cmd.arg("--next");
        }
        cmd.args(["-sk", "--http2", "-o", "/dev/null", "-H"])
            .arg(format!("X-Stream-{}: {i}", i % 3))
            .arg(format!("https://localhost:{}/index.html?s={i}", h.https));
    }
    run(&mut cmd);
    let records = h.wait_requests(n);
    let h2: Vec<&Value> = records
        .iter()
        .filter(|r| r["protocol"] == "HTTP/2.0")
        .collect();
    assert_eq!(h2.len(), n, "{records:#?}");
    for r in &h2 {
        let i: usize = r["query"].as_str().unwrap()[2..].parse().unwrap();
        let names: Vec<&str> = r["header_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["user-agent", "accept", &format!("x-stream-{}", i % 3)],
            "stream {i}"
        );
        let raw = r["ja4h_r"].as_str().unwrap();
        assert!(
            raw.contains(&format!("_user-agent,accept,x-stream-{}_", i % 3)),
            "stream {i}: {raw}"
        );
    }
    // All streams shared one connection.
    let ports: std::collections::HashSet<u64> = h2
        .iter()
        .map(|r| r["client_port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports.len(), 1);
    h.assert_no_crash();
}
