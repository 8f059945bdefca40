//! Crawler verification against a real DNS server on loopback (dnsmasq) serving the PTR and
//! A/AAAA records of genuine and spoofed crawlers: forward-confirmed reverse DNS, published
//! ranges without lookups, cached verdicts, and a dead resolver giving "unknown", not "spoofed".

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ja4_detect::dns::{self, Resolver};
use ja4_detect::verify::{Domains, Verdict, Verifier};

struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_dnsmasq(port: u16) -> Dnsmasq {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let child = Command::new("dnsmasq")
        .args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--local-ttl=300",
            &format!("--port={port}"),
            &format!("--user={user}"),
            // Answer from these records only; anything else under them does not exist.
            "--local=/2.0.192.in-addr.arpa/",
            "--local=/8.b.d.0.1.0.0.2.ip6.arpa/",
            "--local=/googlebot.com/",
            "--local=/evil.example/",
            // A genuine Googlebot address, IPv4 and IPv6 (host-record adds PTR and A/AAAA).
            "--host-record=crawl-192-0-2-10.googlebot.com,192.0.2.10",
            "--host-record=crawl-v6.googlebot.com,2001:db8::10",
            // PTR into googlebot.com, but the name resolves elsewhere.
            "--ptr-record=20.2.0.192.in-addr.arpa,fake.googlebot.com",
            "--host-record=fake.googlebot.com,192.0.2.99",
            // Forward-confirmed, but not a Google domain.
            "--host-record=crawler.evil.example,192.0.2.30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (Debian dnsmasq-base, installed by scripts/setup.sh)");
    let d = Dnsmasq(child);
    let r = Resolver::new(SocketAddr::from(([127, 0, 0, 1], port)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.query("crawl-192-0-2-10.googlebot.com", dns::A).is_err() {
        assert!(
            Instant::now() < deadline,
            "dnsmasq did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

#[test]
fn forward_confirmed_reverse_dns_against_a_real_server() {
    let port = free_udp_port();
    let _dns = start_dnsmasq(port);
    let domains = Domains::parse(include_str!("../../../refdata/crawler_domains.tsv"));
    let v = Verifier::new(
        Resolver::new(SocketAddr::from(([127, 0, 0, 1], port))),
        domains,
    );
    let ip = |s: &str| s.parse().unwrap();

    assert_eq!(
        v.verify(ip("192.0.2.10"), "googlebot", false),
        Verdict::Dns("crawl-192-0-2-10.googlebot.com".into())
    );
    // IPv4-mapped addresses (as the module exports them) verify the same way.
    assert!(v
        .verify(ip("::ffff:192.0.2.10"), "googlebot", false)
        .verified());
    assert_eq!(
        v.verify(ip("2001:db8::10"), "googlebot", false),
        Verdict::Dns("crawl-v6.googlebot.com".into())
    );
    for (addr, why) in [
        ("192.0.2.20", "resolves elsewhere"),
        ("192.0.2.30", "not a Google domain"),
        ("192.0.2.40", "no reverse name"),
    ] {
        let verdict = v.verify(ip(addr), "googlebot", false);
        assert!(
            matches!(verdict, Verdict::Spoofed(_)),
            "{addr} ({why}): {verdict:?}"
        );
    }
    // Published ranges need no lookup; cached verdicts neither.
    let before = v.queries.load(Ordering::Relaxed);
    assert_eq!(
        v.verify(ip("66.249.66.1"), "googlebot", true),
        Verdict::Range
    );
    assert!(v.verify(ip("192.0.2.10"), "googlebot", false).verified());
    assert!(matches!(
        v.verify(ip("192.0.2.20"), "googlebot", false),
        Verdict::Spoofed(_)
    ));
    assert_eq!(
        v.queries.load(Ordering::Relaxed),
        before,
        "answered from the cache"
    );
    // A crawler that publishes only ranges: outside them it is a spoofer, no lookup needed.
    assert!(matches!(
        v.verify(ip("192.0.2.10"), "openai-gptbot", false),
        Verdict::Spoofed(_)
    ));
    assert_eq!(v.queries.load(Ordering::Relaxed), before);

    // A resolver that does not answer decides nothing.
    let mut dead = Resolver::new(SocketAddr::from(([127, 0, 0, 1], free_udp_port())));
    dead.timeout = Duration::from_millis(200);
    let v = Verifier::new(
        dead,
        Domains::parse(include_str!("../../../refdata/crawler_domains.tsv")),
    );
    assert!(matches!(
        v.verify(ip("192.0.2.10"), "googlebot", false),
        Verdict::Unknown(_)
    ));
}
