//! Crawler verification against a real DNS server on loopback (dnsmasq) serving the PTR and
//! A/AAAA records of genuine and spoofed crawlers: forward-confirmed reverse DNS, published
//! ranges without lookups, cached verdicts, and a dead resolver giving "unknown", not "spoofed".

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use ja4_detect::dns::Resolver;
use ja4_detect::verify::{Domains, Verdict, Verifier};
use ja4_testkit::dnsmasq::Dnsmasq;

/// Addresses of `big.googlebot.com`: more A records than fit a 512-byte UDP answer.
const BIG: u8 = 60;

fn start_dnsmasq() -> Dnsmasq {
    let mut records: Vec<String> = [
        // A genuine Googlebot address, IPv4 and IPv6 (host-record adds PTR and A/AAAA).
        "host-record=crawl-192-0-2-10.googlebot.com,192.0.2.10",
        "host-record=crawl-v6.googlebot.com,2001:db8::10",
        // PTR into googlebot.com, but the name resolves elsewhere.
        "ptr-record=20.2.0.192.in-addr.arpa,fake.googlebot.com",
        "host-record=fake.googlebot.com,192.0.2.99",
        // Forward-confirmed, but not a Google domain.
        "host-record=crawler.evil.example,192.0.2.30",
        // A loopback address the server names (the lab's crawlers): asked of the server,
        // not answered "localhost" by RFC 6761 special-use rules in the client.
        "host-record=crawl-127-33-0-9.googlebot.com,127.33.0.9",
    ]
    .iter()
    .map(|r| r.to_string())
    .collect();
    records.extend((1..=BIG).map(|i| format!("address=/big.googlebot.com/198.51.100.{i}")));
    // Answer from these records only; anything else under these zones does not exist.
    Dnsmasq::start(
        &[
            "2.0.192.in-addr.arpa",
            "8.b.d.0.1.0.0.2.ip6.arpa",
            "googlebot.com",
            "evil.example",
            "33.127.in-addr.arpa",
        ],
        &records,
    )
    .expect("dnsmasq (Debian dnsmasq-base, installed by scripts/setup.sh)")
}

#[test]
fn forward_confirmed_reverse_dns_against_a_real_server() {
    let dns = start_dnsmasq();
    let domains = Domains::parse(include_str!("../../../refdata/crawler_domains.tsv"));
    let v = Verifier::new(Resolver::new(dns.addr).unwrap(), domains);
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
    let dead = Resolver::with_timeout(
        SocketAddr::from(([127, 0, 0, 1], ja4_testkit::free_udp_port())),
        Duration::from_millis(200),
    )
    .unwrap();
    let v = Verifier::new(
        dead,
        Domains::parse(include_str!("../../../refdata/crawler_domains.tsv")),
    );
    assert!(matches!(
        v.verify(ip("192.0.2.10"), "googlebot", false),
        Verdict::Unknown(_)
    ));
}

#[test]
fn lookups_carry_ttls_and_fall_back_to_tcp() {
    let dns = start_dnsmasq();
    let r = Resolver::new(dns.addr).unwrap();
    let ptr = r.reverse("192.0.2.10".parse().unwrap()).unwrap();
    assert_eq!(ptr.found, ["crawl-192-0-2-10.googlebot.com"]);
    assert_eq!(ptr.ttl, 300, "dnsmasq's --local-ttl");
    // No records is an answer, not a failure.
    let none = r.reverse("192.0.2.40".parse().unwrap()).unwrap();
    assert!(none.found.is_empty());
    // Loopback is the server's to name too.
    let lo = r.reverse("127.33.0.9".parse().unwrap()).unwrap();
    assert_eq!(lo.found, ["crawl-127-33-0-9.googlebot.com"]);
    let back = r.addresses("crawl-127-33-0-9.googlebot.com", true).unwrap();
    assert_eq!(back.found, [IpAddr::from([127, 33, 0, 9])]);
    let none = r.addresses("nothing.googlebot.com", true).unwrap();
    assert!(none.found.is_empty());
    // 60 A records do not fit a 512-byte UDP answer: the truncated answer is asked again
    // over TCP and comes back whole.
    let big = r.addresses("big.googlebot.com", true).unwrap();
    let mut got: Vec<IpAddr> = big.found;
    got.sort();
    let want: Vec<IpAddr> = (1..=BIG).map(|i| IpAddr::from([198, 51, 100, i])).collect();
    assert_eq!(got.len(), usize::from(BIG));
    assert!(want.iter().all(|w| got.contains(w)));
    // A name that is not one is an error, not an empty answer.
    assert!(r.addresses(&"x".repeat(300), true).is_err());
}

/// The scoring loop owns its verifier inside `serve`'s runtime: stopping the sidecar drops it
/// there, which must not panic ("Cannot drop a runtime in a context where blocking is not
/// allowed", seen at every shutdown before).
#[test]
fn a_resolver_is_dropped_inside_a_runtime_quietly() {
    let dns = start_dnsmasq();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let found = rt.block_on(async move {
        let r = Resolver::new(dns.addr).unwrap();
        let found = r.reverse("192.0.2.10".parse().unwrap()).unwrap().found;
        drop(r);
        found
    });
    assert_eq!(found, ["crawl-192-0-2-10.googlebot.com"]);
}
