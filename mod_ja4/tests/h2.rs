//! The HTTP/2 fingerprint (`JA4_H2`) through a real httpd with mod_http2 (event and worker,
//! every client under each):
//! real clients — curl (TLS, h2c prior knowledge, h2c upgrade), nghttp, Python httpx, Node's
//! http2, Go net/http, Java's HttpClient, headless Chromium — each asked once of httpd and
//! once of a reference server (`h2_reference.py`) that reads the same client's raw frames
//! with its own framing and the `hpack` package: the strings must be equal. HTTP/1.1
//! connections carry none; hostile prefaces are counted, never crash, and mod_http2 answers
//! them with the same bytes as without the module. Needs root (the module tests' httpd).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The published Chrome string (Akamai; browserleaks, fingerproxy) our Chromium must give.
const CHROME_PUBLISHED: &str = "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p";
/// The published Firefox string (the issue's, browserleaks).
const FIREFOX_PUBLISHED: &str = "1:65536;2:0;4:131072;5:16384|12517377|0|m,p,a,s";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv_python() -> PathBuf {
    let p = workspace().join(".cache/lab-venv/bin/python");
    assert!(p.exists(), "{} missing: run scripts/setup.sh", p.display());
    p
}

/// The reference server: its ports and the file it writes `path|akamai` lines to.
struct Reference {
    child: Child,
    tls: u16,
    clear: u16,
    out: PathBuf,
}

impl Reference {
    fn start(dir: &Path) -> Reference {
        ja4_testkit::tls::self_signed(dir, "localhost", false).unwrap();
        let (tls, clear) = (free_port(), free_port());
        let out = dir.join("reference.txt");
        let mut child = Command::new(venv_python())
            .arg(workspace().join("mod_ja4/tests/h2_reference.py"))
            .arg(dir.join("cert.pem"))
            .arg(dir.join("key.pem"))
            .args([tls.to_string(), clear.to_string()])
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead as _;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Reference {
            child,
            tls,
            clear,
            out,
        }
    }

    /// The string the reference computed for the connection whose first request was `path`.
    fn value(&self, path: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            if let Some(v) = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{path}|")))
            {
                return Some(v.to_owned());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const GO_CLIENT: &str = r#"package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
)

func main() {
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
	}}
	resp, err := c.Get(os.Args[1])
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.ProtoMajor != 2 {
		os.Stderr.WriteString("not HTTP/2: " + resp.Proto + "\n")
		os.Exit(1)
	}
}
"#;

const JAVA_CLIENT: &str = r#"import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

public class H2Client {
    public static void main(String[] a) throws Exception {
        System.setProperty("jdk.internal.httpclient.disableHostnameVerification", "true");
        TrustManager[] all = { new X509TrustManager() {
            public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
            public void checkClientTrusted(X509Certificate[] c, String t) {}
            public void checkServerTrusted(X509Certificate[] c, String t) {}
        } };
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(null, all, null);
        HttpClient c = HttpClient.newBuilder().version(HttpClient.Version.HTTP_2).sslContext(ssl).build();
        HttpResponse<String> r = c.send(HttpRequest.newBuilder(URI.create(a[0])).build(),
            HttpResponse.BodyHandlers.ofString());
        if (r.version() != HttpClient.Version.HTTP_2) { System.err.println("not HTTP/2"); System.exit(1); }
    }
}
"#;

const FIREFOX_SCRIPT: &str = r#"import puppeteer from 'puppeteer-core';
const b = await puppeteer.launch({ browser: 'firefox', executablePath: '/usr/bin/firefox-esr',
  headless: true, acceptInsecureCerts: true });
try {
  const p = await b.newPage();
  await p.goto(process.argv[2], { waitUntil: 'load' });
} finally {
  await b.close();
}
"#;

/// The application each client's string is labelled with in the shipped labels.
fn application_of(client: &str) -> &'static str {
    match client {
        "curl" | "curl-h2c" => "curl",
        "nghttp" | "nghttp-h2c" => "nghttp",
        "httpx" => "Python httpx",
        "node" => "Node.js",
        "go" => "Go",
        "java" => "Java",
        "firefox" => "Mozilla Firefox",
        "chromium" => "Chromium",
        other => panic!("no label for {other}"),
    }
}

/// A client run: its name and how it asks for a URL (`tls` base or cleartext base, path).
struct Client {
    name: &'static str,
    /// Asks over TLS (else cleartext, h2c).
    tls: bool,
    run: fn(&Path, &str),
}

fn ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn clients() -> Vec<Client> {
    vec![
        Client {
            name: "curl",
            tls: true,
            run: |_, url| {
                ok(
                    Command::new("curl").args(["-sk", "--http2", "-o", "/dev/null", url]),
                    "curl",
                )
            },
        },
        Client {
            name: "curl-h2c",
            tls: false,
            run: |_, url| {
                ok(
                    Command::new("curl").args([
                        "-s",
                        "--http2-prior-knowledge",
                        "-o",
                        "/dev/null",
                        url,
                    ]),
                    "curl h2c",
                )
            },
        },
        Client {
            name: "nghttp",
            tls: true,
            run: |_, url| ok(Command::new("nghttp").args(["-n", url]), "nghttp"),
        },
        Client {
            name: "nghttp-h2c",
            tls: false,
            run: |_, url| ok(Command::new("nghttp").args(["-n", url]), "nghttp h2c"),
        },
        Client {
            name: "httpx",
            tls: true,
            run: |_, url| {
                ok(
                    Command::new(venv_python()).arg("-c").arg(format!(
                        "import httpx\nr = httpx.Client(http2=True, verify=False).get({url:?})\n\
                         assert r.http_version == 'HTTP/2', r.http_version"
                    )),
                    "httpx",
                )
            },
        },
        Client {
            name: "node",
            tls: true,
            run: |_, url| {
                let u = origin_and_path(url);
                ok(
                    Command::new("node").arg("-e").arg(format!(
                        "const h=require('http2');const c=h.connect({o:?},{{rejectUnauthorized:false}});\
                         const r=c.request({{':path':{p:?}}});r.on('data',()=>{{}});\
                         r.on('end',()=>c.close());r.on('error',e=>{{console.error(e);process.exit(1)}});r.end();",
                        o = u.0,
                        p = u.1
                    )),
                    "node http2",
                )
            },
        },
        Client {
            name: "go",
            tls: true,
            run: |dir, url| {
                let bin = dir.join("h2_client_go");
                if !bin.exists() {
                    let src = dir.join("h2_client.go");
                    std::fs::write(&src, GO_CLIENT).unwrap();
                    ok(
                        Command::new("go")
                            .arg("build")
                            .arg("-o")
                            .arg(&bin)
                            .arg(&src)
                            .env("GO111MODULE", "off"),
                        "go build",
                    );
                }
                ok(Command::new(&bin).arg(url), "go client")
            },
        },
        Client {
            name: "java",
            tls: true,
            run: |dir, url| {
                let src = dir.join("H2Client.java");
                std::fs::write(&src, JAVA_CLIENT).unwrap();
                ok(Command::new("java").arg(&src).arg(url), "java client")
            },
        },
        Client {
            name: "firefox",
            tls: true,
            run: |dir, url| {
                // puppeteer-core (scripts/setup.sh) resolves next to its node_modules.
                let node_dir = workspace().join(".cache/node");
                let script = node_dir.join(format!("h2-firefox-{}.mjs", std::process::id()));
                std::fs::write(&script, FIREFOX_SCRIPT).unwrap();
                let home = dir.join("firefox-home");
                std::fs::create_dir_all(&home).unwrap();
                let out = Command::new("node")
                    .arg(&script)
                    .arg(url)
                    .env("HOME", &home)
                    .output()
                    .unwrap();
                let _ = std::fs::remove_file(&script);
                assert!(
                    out.status.success(),
                    "firefox: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            },
        },
        Client {
            name: "chromium",
            tls: true,
            run: |dir, url| {
                let home = dir.join("chromium-home");
                std::fs::create_dir_all(&home).unwrap();
                ok(
                    Command::new("chromium")
                        .args([
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--ignore-certificate-errors",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--no-first-run",
                            "--dump-dom",
                        ])
                        .arg(url)
                        .env("HOME", &home)
                        .stdout(Stdio::null()),
                    "chromium",
                )
            },
        },
    ]
}

/// (origin, path) of an absolute URL.
fn origin_and_path(url: &str) -> (String, String) {
    let rest = url.split_once("://").unwrap().1;
    let slash = rest.find('/').unwrap();
    (
        url[..url.len() - rest.len() + slash].to_owned(),
        rest[slash..].to_owned(),
    )
}

/// The line httpd logged for `path` (logging follows the response: wait for it).
fn logged_line(log: &Path, path: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.starts_with(&format!("{path}\t"))) {
            return Some(l.to_owned());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn real_clients_get_the_fingerprint_their_own_frames_give() {
    if !need_root() {
        return;
    }
    let dir = tempdir("h2-clients");
    let reference = Reference::start(&dir);
    let labels = ja4_core::stack::parse_h2_labels(
        &std::fs::read_to_string(workspace().join("refdata/measured/h2-fingerprints.tsv")).unwrap(),
    );
    assert!(labels.skipped.is_empty(), "{:?}", labels.skipped);
    for mpm in ["event", "worker"] {
        let mut h = Httpd::start(
            &format!("h2-{mpm}"),
            &Options {
                mpm,
                extra: &format!(
                    "Protocols h2 h2c http/1.1\n\
                     LogFormat \"%U%q\\t%H\\t%{{JA4_H2}}e\\t%{{JA4_H2_HASH}}e\" h2\nCustomLog {}/h2-{mpm}.log h2",
                    dir.display()
                ),
                ..Default::default()
            },
        );
        let log = dir.join(format!("h2-{mpm}.log"));
        let mut checked = Vec::new();
        let mut values = Vec::new();
        for c in clients() {
            let path = format!("/index.html?c={}-{mpm}", c.name);
            let (ours_base, ref_base) = if c.tls {
                (
                    format!("https://127.0.0.1:{}", h.https),
                    format!("https://127.0.0.1:{}", reference.tls),
                )
            } else {
                (
                    format!("http://127.0.0.1:{}", h.http),
                    format!("http://127.0.0.1:{}", reference.clear),
                )
            };
            (c.run)(&dir, &format!("{ref_base}{path}"));
            (c.run)(&dir, &format!("{ours_base}{path}"));
            let want = reference
                .value(&path)
                .unwrap_or_else(|| panic!("{}: the reference saw no request", c.name));
            let line = logged_line(&log, &path)
                .unwrap_or_else(|| panic!("{}: httpd logged no request {path}", c.name));
            let f: Vec<&str> = line.splitn(4, '\t').collect();
            assert_eq!(f[1], "HTTP/2.0", "{}: {line}", c.name);
            assert_eq!(f[2], want, "{} ({mpm}): httpd vs its own frames", c.name);
            assert_eq!(f[3].len(), 12, "{line}");
            if c.name == "chromium" {
                assert_eq!(
                    f[2], CHROME_PUBLISHED,
                    "Chromium vs the published Chrome string"
                );
            }
            if c.name == "firefox" {
                assert_eq!(f[2], FIREFOX_PUBLISHED, "Firefox vs the published string");
            }
            // The shipped labels were measured so: the string names this client.
            assert_eq!(
                labels.labels.get(f[2]).map(|l| l.application.as_str()),
                Some(application_of(c.name)),
                "{}: refdata/measured/h2-fingerprints.tsv does not label {} (re-measure)",
                c.name,
                f[2]
            );
            eprintln!("{mpm} {:<11} {}", c.name, f[2]);
            checked.push(c.name);
            values.push((
                format!("c={}-{mpm}", c.name),
                f[2].to_owned(),
                f[3].to_owned(),
            ));
        }
        assert!(!checked.is_empty());
        // HTTP/1.1 carries none. An h2c upgrade (nghttp -u, two requests on one connection):
        // the upgraded request was read as HTTP/1.1 before the preface came, so only the next
        // request carries the value — the same frames as nghttp's prior-knowledge connection.
        let p1 = format!("/index.html?c=h1-{mpm}");
        curl(&["--http1.1"], &h.url(true, &p1));
        let up = format!("/index.html?c=upgrade-{mpm}");
        let up2 = format!("/index.html?c=upgrade2-{mpm}");
        ok(
            Command::new("nghttp")
                .args(["-n", "-u"])
                .arg(h.url(false, &up))
                .arg(h.url(false, &up2)),
            "nghttp h2c upgrade",
        );
        logged_line(&log, &up2).expect("the second request of the upgraded connection");
        let j = h.status_json();
        h.assert_no_crash();
        h.stop();
        // The export records carry the same strings (the batch's h2 trailers).
        let records = h.records();
        for (query, akamai, hash) in &values {
            let r = records
                .iter()
                .find(|r| r["query"] == query.as_str())
                .unwrap_or_else(|| panic!("no record of {query}"));
            assert_eq!(r["h2"], akamai.as_str(), "{r}");
            assert_eq!(r["h2_hash"], hash.as_str(), "{r}");
        }
        assert!(records
            .iter()
            .filter(|r| r["protocol"] == "HTTP/1.1")
            .all(|r| r.get("h2").is_none()));
        let text = std::fs::read_to_string(&log).unwrap();
        let line = |p: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{p}\t")))
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(line(&p1), format!("{p1}\tHTTP/1.1\t-\t-"));
        let l2 = line(&up2);
        let f: Vec<&str> = l2.splitn(4, '\t').collect();
        assert_eq!(f.get(1), Some(&"HTTP/2.0"), "{text}");
        let pk = line(&format!("/index.html?c=nghttp-h2c-{mpm}"));
        let pk: Vec<&str> = pk.splitn(4, '\t').collect();
        eprintln!("{mpm} upgrade     {}", f[2]);
        // The same SETTINGS, WINDOW_UPDATE and pseudo-header order; after the upgrade nghttp
        // also prioritises stream 1 (the upgraded request), an extra PRIORITY at the end.
        let (up_parts, pk_parts): (Vec<&str>, Vec<&str>) =
            (f[2].split('|').collect(), pk[2].split('|').collect());
        assert_eq!(
            (up_parts[0], up_parts[1], up_parts[3]),
            (pk_parts[0], pk_parts[1], pk_parts[3]),
            "upgrade vs prior knowledge\n{text}"
        );
        assert!(
            up_parts[2].starts_with(pk_parts[2]),
            "{} vs {}",
            up_parts[2],
            pk_parts[2]
        );
        assert!(
            j["counters"]["h2_fingerprinted"].as_u64().unwrap() >= checked.len() as u64,
            "{j}"
        );
        assert_eq!(j["counters"]["h2_hostile"], 0, "{j}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// What the server sends back to `bytes` on a new cleartext connection, until it closes or
/// is quiet for a second.
fn exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Hostile prefaces: the scan gives up and counts them, httpd stays up, and mod_http2 sends
/// exactly what it sends when mod_ja4 is not looking (`JA4Engine Off`).
#[test]
fn hostile_prefaces_are_counted_and_mod_http2_answers_as_without_us() {
    if !need_root() {
        return;
    }
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let with = |frames: &[Vec<u8>]| {
        let mut b = preface.clone();
        for f in frames {
            b.extend(f);
        }
        b
    };
    let big_settings: Vec<u8> = (0..40u16)
        .flat_map(|i| {
            (i % 6 + 1)
                .to_be_bytes()
                .into_iter()
                .chain(100u32.to_be_bytes())
        })
        .collect();
    let mut endless = vec![frame(0x4, 0, 0, &[]), frame(0x1, 0, 1, &[0x82])];
    endless.extend((0..40).map(|_| frame(0x9, 0, 1, &[0x84])));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "oversized SETTINGS",
            with(&[frame(0x4, 0, 0, &big_settings)]),
        ),
        ("endless CONTINUATION", with(&endless)),
        (
            "bad HPACK",
            with(&[frame(0x4, 0, 0, &[]), frame(0x1, 0x5, 1, &[0x80, 0xff])]),
        ),
        (
            "oversized frame",
            with(&[frame(0x4, 0, 0, &[]), frame(0x0, 0, 1, &vec![0; 20_000])]),
        ),
    ];
    let start = |tag: &str, engine: &str| {
        Httpd::start(
            tag,
            &Options {
                extra: &format!("Protocols h2 h2c http/1.1\nJA4Engine {engine}"),
                ..Default::default()
            },
        )
    };
    let (mut ours, mut plain) = (start("h2-hostile", "On"), start("h2-hostile-off", "Off"));
    for (what, bytes) in &cases {
        let (a, b) = (exchange(ours.http, bytes), exchange(plain.http, bytes));
        assert!(!a.is_empty(), "{what}: mod_http2 said nothing");
        assert_eq!(
            a, b,
            "{what}: mod_http2's answer changed with mod_ja4 looking"
        );
    }
    // A well-formed request still gets its fingerprint afterwards.
    curl(
        &["--http2-prior-knowledge"],
        &ours.url(false, "/index.html"),
    );
    let j = ours.status_json();
    assert_eq!(j["counters"]["h2_hostile"], cases.len() as u64, "{j}");
    assert!(
        j["counters"]["h2_fingerprinted"].as_u64().unwrap() >= 1,
        "{j}"
    );
    ours.assert_no_crash();
    plain.assert_no_crash();
    ours.stop();
    plain.stop();
}

/// The per-request consistency facts (`JA4_FLAGS`, the record's `consistency`): the shipped
/// TLS and HTTP/2 labels against the user agent and each other. A real Chromium raises
/// nothing; an impersonator that copies both of Chrome's stacks only betrays the Windows its
/// user agent claims on a Linux TCP stack (`ua-os-ttl`); one that copies Chrome's ClientHello
/// but speaks Go's HTTP/2 is also `tls-h2`; curl claiming Chrome on Windows is all three of
/// its lies.
#[test]
fn consistency_flags_unmask_a_mixed_impersonator() {
    if !need_root() {
        return;
    }
    let dir = tempdir("h2-flags");
    let refdata = workspace().join("refdata/measured");
    let h = Httpd::start(
        "h2-flags",
        &Options {
            extra: &format!(
                "JA4StackLabels {}\nJA4H2Labels {}\n\
                 LogFormat \"%q\\t%{{JA4_FLAGS}}e\\t%{{JA4_UA_MISMATCH}}e\" flags\n\
                 CustomLog {}/flags.log flags",
                refdata.join("ja4-families.tsv").display(),
                refdata.join("h2-fingerprints.tsv").display(),
                dir.display()
            ),
            ..Default::default()
        },
    );
    let url = |c: &str| h.url(true, &format!("/index.html?c={c}"));
    (clients().iter().find(|c| c.name == "chromium").unwrap().run)(&dir, &url("chromium"));
    let cffi = |c: &str, akamai: &str| {
        ok(
            Command::new(venv_python()).arg("-c").arg(format!(
                "from curl_cffi import requests\n\
                 kw = {{'akamai': {akamai:?}}} if {akamai:?} else {{}}\n\
                 r = requests.get({u:?}, impersonate='chrome', verify=False, **kw)\n\
                 assert r.status_code == 200, r.status_code",
                u = url(c)
            )),
            "curl-cffi",
        )
    };
    cffi("cffi-chrome", "");
    cffi(
        "cffi-mixed",
        "2:0;4:4194304;6:10485760|1073741824|0|a,m,p,s",
    );
    let win = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36";
    curl(&["--http2", "-A", win], &url("curl-windows"));
    let log = dir.join("flags.log");
    let want = [
        ("c=chromium", "-\t-"),
        ("c=cffi-chrome", "ua-os-ttl\t-"),
        ("c=cffi-mixed", "ua-h2-library,tls-h2,ua-os-ttl\t-"),
        (
            "c=curl-windows",
            "ua-tls-library,ua-h2-library,ua-os-ttl\tlibrary",
        ),
    ];
    for (q, flags) in want {
        let line = logged_line(&log, &format!("?{q}")).unwrap_or_else(|| panic!("no request {q}"));
        assert_eq!(line, format!("?{q}\t{flags}"), "{q}");
    }
    let j = h.status_json();
    assert_eq!(j["counters"]["consistency_flagged"], 3, "{j}");
    h.assert_no_crash();
    let mut h = h;
    h.stop();
    let mixed = h
        .records()
        .into_iter()
        .find(|r| r["query"] == "c=cffi-mixed")
        .expect("the mixed impersonator's record");
    assert_eq!(
        mixed["consistency"], "ua-h2-library,tls-h2,ua-os-ttl",
        "{mixed}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
