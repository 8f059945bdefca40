//! Real clients, real libpcap on loopback: curl, openssl s_client and Python talk TLS and HTTP
//! to local servers over IPv4 and IPv6 while tcpdump records the same traffic through three link
//! types (`lo` = Ethernet, `any` = Linux cooked v2, `any -y LINUX_SLL` = Linux cooked v1). Every
//! capture must yield the same connections with the same fingerprints.
//!
//! Needs root (packet capture), tcpdump, openssl, curl and python3, which `scripts/setup.sh`
//! installs. Without root it is skipped with a message, except under CI where it fails.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use ja4_sidecar::offline::{analyze_file, offline_flow_config};

use ja4_testkit::free_port;
use ja4_testkit::proc::{wait_tcp, Proc};
use ja4_testkit::tcpdump::Tcpdump;

fn run(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn loopback_captures_agree_across_link_types() {
    if !ja4_testkit::need_root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ja4-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    ja4_testkit::tls::self_signed(&dir, "localhost", false).unwrap();

    let tls_port = free_port();
    let http_port = free_port();
    let _tls = Proc::spawn(
        "openssl s_server",
        Command::new("openssl")
            // A bare port listens dual-stack (IPv4 and IPv6).
            .args(["s_server", "-www", "-quiet", "-accept"])
            .arg(tls_port.to_string())
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let _http = Proc::spawn(
        "python3 http.server",
        Command::new("python3")
            .args(["-m", "http.server", "--bind", "::"])
            .arg(http_port.to_string())
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    for port in [tls_port, http_port] {
        assert!(
            wait_tcp(port, Duration::from_secs(10)),
            "server on {port} did not start"
        );
    }

    let filter = format!("tcp port {tls_port} or tcp port {http_port}");
    let caps = [
        ("lo.pcap", &["-i", "lo"][..]),
        ("any.pcap", &["-i", "any"]),
        ("any-sll1.pcap", &["-i", "any", "-y", "LINUX_SLL"]),
    ]
    .map(|(name, args)| Tcpdump::start(&dir.join(name), args, &filter).expect("tcpdump"));

    for host in ["127.0.0.1", "[::1]"] {
        run(Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "--http1.1"])
            .arg(format!("https://{host}:{tls_port}/")));
        run(Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-H",
                "Accept-Language: de-CH,de;q=0.9",
                "-H",
                "Cookie: b=2; a=1",
            ])
            .arg(format!("http://{host}:{http_port}/")));
    }
    run(Command::new("sh").arg("-c").arg(format!(
        "echo Q | openssl s_client -connect 127.0.0.1:{tls_port} -servername client.test -alpn h2,http/1.1 >/dev/null 2>&1; true"
    )));
    run(Command::new("python3").arg("-c").arg(format!(
        "import ssl,urllib.request as u;c=ssl.create_default_context();c.check_hostname=False;c.verify_mode=ssl.CERT_NONE;\
         u.urlopen('https://localhost:{tls_port}/',context=c).read()"
    )));
    std::thread::sleep(Duration::from_millis(500));

    let mut results = Vec::new();
    for cap in caps {
        let file = cap.stop();
        let a = analyze_file(&file, offline_flow_config())
            .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
        assert_eq!(a.stats.decode_errors, 0, "{}", file.display());
        let by_conn: BTreeMap<(String, u16), Vec<Option<String>>> = a
            .records
            .iter()
            .map(|r| {
                let fp = vec![
                    r.ja4.as_ref().map(|j| j.ja4_ro.clone()),
                    r.ja3.as_ref().map(|j| j.ja3.clone()),
                    r.ja4s.as_ref().map(|s| s.ja4s_r.clone()),
                    r.ja4t.clone(),
                    r.ja4ts.clone(),
                    r.tls_server_name.clone(),
                    Some(r.ja4h_ro.join("|")),
                    r.ja4l
                        .as_ref()
                        .map(|l| l.ja4l_c.split('_').nth(1).unwrap().to_owned()),
                ];
                ((r.src.to_string(), r.src_port), fp)
            })
            .collect();
        results.push((file, by_conn));
    }

    let (_, lo) = &results[0];
    assert!(
        lo.len() >= 6,
        "expected at least 6 connections on lo, got {lo:?}"
    );
    for (file, other) in &results[1..] {
        let diff: Vec<_> = lo
            .iter()
            .filter(|(k, v)| other.get(*k) != Some(*v))
            .map(|(k, v)| (k, v, other.get(k)))
            .collect();
        let extra: Vec<_> = other.keys().filter(|k| !lo.contains_key(*k)).collect();
        assert!(
            diff.is_empty() && extra.is_empty(),
            "{} disagrees with lo.pcap: {diff:?} extra {extra:?}",
            file.display()
        );
    }
    let all: Vec<&Vec<Option<String>>> = lo.values().collect();
    let tls: Vec<_> = all.iter().filter(|f| f[0].is_some()).collect();
    assert!(tls.len() >= 4, "TLS connections: {tls:?}");
    assert!(
        tls.iter()
            .all(|f| f[2].is_some() && f[3].is_some() && f[7].is_some()),
        "JA4S/JA4T/JA4L missing: {tls:?}"
    );
    assert!(
        tls.iter().any(|f| f[5].as_deref() == Some("client.test")),
        "s_client SNI"
    );
    assert!(
        tls.iter()
            .any(|f| f[0].as_deref().is_some_and(|j| j.starts_with("t13i"))),
        "curl to an IP sends no SNI"
    );
    let http: Vec<_> = all
        .iter()
        .filter(|f| f[6].as_deref().is_some_and(|h| !h.is_empty()))
        .collect();
    assert_eq!(http.len(), 2, "plaintext requests over IPv4 and IPv6");
    for h in http {
        assert_eq!(
            h[6].as_deref(),
            Some("ge11cn04dech_Host,User-Agent,Accept,Accept-Language_b,a_b=2,a=1")
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
