//! Export to the sidecar's unix socket: delivery, and requests never waiting for a sidecar that
//! is absent or stalled (drops are counted instead).

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;
use ja4_core::batch::{self, OwnedRecord, RecordKind};

/// A receiver that decodes every frame from every connection.
fn receiver(path: &std::path::Path) -> Arc<Mutex<Vec<OwnedRecord>>> {
    let listener = UnixListener::bind(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let g = Arc::clone(&g);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    loop {
                        match batch::decode_frame(&buf) {
                            Ok((recs, used)) => {
                                g.lock().unwrap().extend(recs);
                                buf.drain(..used);
                            }
                            Err(batch::BatchError::Incomplete) => break,
                            Err(e) => panic!("bad frame from mod_ja4: {e}"),
                        }
                    }
                }
            });
        }
    });
    got
}

/// `n` HTTPS requests on one keep-alive connection; returns the slowest request's seconds.
fn requests(h: &Httpd, n: usize) -> f64 {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "--http1.1", "-w", "%{time_total}\\n"]);
    for _ in 0..n {
        cmd.args(["-o", "/dev/null"])
            .arg(h.url(true, "/index.html"));
    }
    let out = run(&mut cmd);
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(times.len(), n);
    times.into_iter().fold(0.0, f64::max)
}

fn counter(h: &Httpd, k: &str) -> u64 {
    h.status_json()["counters"][k].as_u64().unwrap()
}

#[test]
fn records_arrive_over_the_socket() {
    if !need_root() {
        return;
    }
    let dir = tempdir("sock");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = dir.join("ingest.sock");
    let got = receiver(&sock);
    let extra = format!(
        "JA4ExportSocket {}\nJA4BatchSize 4\nJA4FlushInterval 50",
        sock.display()
    );
    let mut h = Httpd::start(
        "sock",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    requests(&h, 10);
    curl(&[], &h.url(false, "/index.html?q=1&x=a%20b"));
    // The exporters take every record within their flush interval: the queue depth (derived
    // from queued, taken and dropped) comes back to zero. Each status request is itself a
    // record queued after its answer, so a poll may see the previous one still waiting.
    let drained = (0..20).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let c = h.status_json()["counters"].clone();
        c["queue_depth"] == 0 && c["dequeued"].as_u64().unwrap() >= 11
    });
    assert!(drained, "{}", h.status_json());
    h.stop(); // children flush at exit
    let recs = got.lock().unwrap().clone();
    let reqs: Vec<&OwnedRecord> = recs
        .iter()
        .filter(|r| r.kind == RecordKind::Request && r.path == "/index.html")
        .collect();
    assert_eq!(reqs.len(), 11, "{recs:#?}");
    // The request line travels whole and is split back as httpd parsed it.
    assert!(reqs
        .iter()
        .all(|r| r.method == "GET" && r.protocol.starts_with("HTTP/") && !r.vhost.is_empty()));
    let with_query: Vec<_> = reqs.iter().filter(|r| !r.query.is_empty()).collect();
    assert_eq!(with_query.len(), 1, "{reqs:#?}");
    assert_eq!(with_query[0].query, "q=1&x=a%20b");
    assert_eq!(with_query[0].protocol, "HTTP/1.1");
    let tls: Vec<_> = reqs.iter().filter(|r| !r.ja4.is_empty()).collect();
    assert_eq!(tls.len(), 10);
    assert!(tls.iter().all(|r| r.ja4.starts_with("t13i")
        && r.tls_version == "TLSv1.3"
        && r.status == 200
        && !r.ja4t.is_empty()));
    // One connection, ten requests: one conn id, keep-alive counts up.
    assert!(tls.iter().all(|r| r.conn_id == tls[0].conn_id));
    assert!(reqs
        .iter()
        .all(|r| !r.ja4h.is_empty() && r.header_names.split(',').any(|h| h == "User-Agent")));
    assert!(reqs
        .iter()
        .all(|r| r.syn.as_ref().is_some_and(|s| s.ttl == 64)));
    // The JSON file carries the same records.
    assert_eq!(
        h.records()
            .iter()
            .filter(|r| r["path"] == "/index.html")
            .count(),
        11
    );
}

#[test]
fn absent_sidecar_never_blocks_requests_and_drops_are_counted() {
    if !need_root() {
        return;
    }
    let dir = tempdir("nosock");
    let extra = format!(
        "JA4ExportSocket {}/missing.sock\nJA4QueueLimit 16\nJA4BatchSize 8\nJA4FlushInterval 20",
        dir.display()
    );
    let h = Httpd::start(
        "nosock",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let slowest = requests(&h, 200);
    // Not a speed test: a request that waited on the exporter would take its connect/write
    // timeouts (>= 0.5 s); local requests take milliseconds.
    assert!(slowest < 0.5, "a request waited {slowest}s");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let queued = counter(&h, "queued");
    assert!(queued >= 200);
    assert!(counter(&h, "export_errors") > 0);
    let dropped = counter(&h, "dropped_export") + counter(&h, "dropped_queue_full");
    assert!(
        dropped >= 150,
        "only {dropped} of {queued} counted as dropped"
    );
    assert_eq!(counter(&h, "exported"), 0);
    h.assert_no_crash();
}

#[test]
fn stalled_sidecar_never_blocks_requests() {
    if !need_root() {
        return;
    }
    let dir = tempdir("stall");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = dir.join("stalled.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    // Accept and never read: the socket buffer fills and writes time out in the exporter.
    let held = Arc::new(Mutex::new(Vec::new()));
    let h2 = Arc::clone(&held);
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            h2.lock().unwrap().push(s);
        }
    });
    let extra = format!(
        "JA4ExportSocket {}\nJA4QueueLimit 64\nJA4BatchSize 16\nJA4FlushInterval 20",
        sock.display()
    );
    let h = Httpd::start(
        "stall",
        &Options {
            extra: &extra,
            ..Default::default()
        },
    );
    let mut slowest: f64 = 0.0;
    for _ in 0..4 {
        slowest = slowest.max(requests(&h, 150));
    }
    assert!(slowest < 0.5, "a request waited {slowest}s");
    assert!(!held.lock().unwrap().is_empty(), "the exporter connected");
    h.assert_no_crash();
}
