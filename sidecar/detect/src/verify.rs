//! Good-bot verification: a client whose user agent names a crawler is that crawler only when
//! its address is in the crawler's published ranges or passes forward-confirmed reverse DNS
//! (PTR to a name under the crawler's domains, and that name's A/AAAA back to the address).
//!
//! Owns: the verdict, its cache (the answers' TTL, bounded), and the crawler → domains table.
//! Never: calls a client a spoofer because the resolver failed: that is `Unknown`, not cached
//! for long.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::dns::Resolver;

/// How a claim was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// In the crawler's published ranges.
    Range,
    /// Forward-confirmed reverse DNS: the confirming host name.
    Dns(String),
    /// The claim is false; why.
    Spoofed(String),
    /// Could not be decided (resolver failure, no way to verify this crawler).
    Unknown(String),
}

impl Verdict {
    /// Whether the crawler is who it claims to be.
    pub fn verified(&self) -> bool {
        matches!(self, Verdict::Range | Verdict::Dns(_))
    }
}

/// Crawler name → domain suffixes its reverse DNS names must end in.
#[derive(Debug, Clone, Default)]
pub struct Domains(HashMap<String, Vec<String>>);

impl Domains {
    /// From `refdata/crawler_domains.tsv` (`name<TAB>suffix,suffix…`, `#` comments, header).
    pub fn parse(text: &str) -> Domains {
        let mut m = HashMap::new();
        for l in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            if let Some((name, suffixes)) = l.split_once('\t') {
                if name == "name" {
                    continue;
                }
                m.insert(
                    name.trim().to_owned(),
                    suffixes
                        .split(',')
                        .map(|s| s.trim().trim_matches('.').to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect(),
                );
            }
        }
        Domains(m)
    }

    /// The shipped table (`crawler_domains.tsv` in the reference data directory); empty when
    /// it is missing (then only published ranges verify).
    pub fn shipped() -> Domains {
        Domains::parse(
            &std::fs::read_to_string(crate::refdata::package_dir(None).join("crawler_domains.tsv"))
                .unwrap_or_default(),
        )
    }

    /// The verification domains of `crawler`.
    pub fn get(&self, crawler: &str) -> Option<&[String]> {
        self.0.get(crawler).map(Vec::as_slice)
    }
}

/// `host` is `suffix` or a name under it (case-insensitive, trailing dot ignored).
pub fn host_matches(host: &str, suffixes: &[String]) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    suffixes.iter().any(|s| {
        h == *s
            || (h.len() > s.len()
                && h.ends_with(s.as_str())
                && h.as_bytes()[h.len() - s.len() - 1] == b'.')
    })
}

/// The first nameserver of /etc/resolv.conf, port 53.
pub fn system_resolver() -> Option<std::net::SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|t| {
            t.lines()
                .filter_map(|l| l.strip_prefix("nameserver"))
                .find_map(|a| a.trim().parse::<IpAddr>().ok())
                .map(|ip| std::net::SocketAddr::new(ip, 53))
        })
}

/// Verifies crawler claims, caching verdicts.
pub struct Verifier {
    resolver: Resolver,
    domains: Domains,
    cache: Mutex<HashMap<(IpAddr, String), (Verdict, Instant)>>,
    /// DNS queries sent (for metrics and tests).
    pub queries: AtomicU64,
    /// Most verdicts kept in the cache.
    pub max_entries: usize,
}

const MIN_TTL: u32 = 60;
const MAX_TTL: u32 = 86_400;

impl Verifier {
    /// The verifier of `serve` and `score`: the shipped crawler domains, asking `resolver`
    /// (`ip:port`), or when that is empty the first nameserver of /etc/resolv.conf; None
    /// without either (then only published ranges verify).
    pub fn configured(resolver: &str) -> Option<Verifier> {
        let server = resolver
            .parse::<std::net::SocketAddr>()
            .ok()
            .or_else(system_resolver)?;
        match Resolver::new(server) {
            Ok(r) => Some(Verifier::new(r, Domains::shipped())),
            Err(e) => {
                tracing::warn!(error = %e, "no DNS client: crawlers verify by published ranges only");
                None
            }
        }
    }

    /// A verifier asking `resolver`, with the crawlers' `domains`.
    pub fn new(resolver: Resolver, domains: Domains) -> Verifier {
        Verifier {
            resolver,
            domains,
            cache: Mutex::new(HashMap::new()),
            queries: AtomicU64::new(0),
            max_entries: 100_000,
        }
    }

    /// Is `ip` the crawler `crawler` its user agent claims? `in_published_range`: the address
    /// is in that crawler's published ranges (from the reference data).
    pub fn verify(&self, ip: IpAddr, crawler: &str, in_published_range: bool) -> Verdict {
        if in_published_range {
            return Verdict::Range;
        }
        let ip = ip.to_canonical();
        let key = (ip, crawler.to_owned());
        if let Ok(c) = self.cache.lock() {
            if let Some((v, until)) = c.get(&key) {
                if Instant::now() < *until {
                    return v.clone();
                }
            }
        }
        let (verdict, ttl) = self.check_dns(ip, crawler);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= self.max_entries {
                let now = Instant::now();
                c.retain(|_, (_, until)| *until > now);
                if c.len() >= self.max_entries {
                    c.clear();
                }
            }
            c.insert(
                key,
                (
                    verdict.clone(),
                    Instant::now() + Duration::from_secs(u64::from(ttl)),
                ),
            );
        }
        verdict
    }

    /// The DNS part of the verdict and how long it may be cached (seconds).
    fn check_dns(&self, ip: IpAddr, crawler: &str) -> (Verdict, u32) {
        let Some(suffixes) = self.domains.get(crawler) else {
            return (
                Verdict::Spoofed(format!(
                    "not in {crawler}'s published ranges (no DNS verification for it)"
                )),
                MAX_TTL / 24,
            );
        };
        self.queries.fetch_add(1, Ordering::Relaxed);
        let ptrs = match self.resolver.reverse(ip) {
            Ok(l) => l,
            Err(e) => return (Verdict::Unknown(format!("PTR lookup: {e}")), 30),
        };
        let mut ttl = ptrs.ttl.clamp(MIN_TTL, MAX_TTL);
        let names = ptrs.found;
        if names.is_empty() {
            return (
                Verdict::Spoofed(format!("{ip} has no reverse DNS name")),
                ttl,
            );
        }
        for host in names.iter().filter(|h| host_matches(h, suffixes)) {
            self.queries.fetch_add(1, Ordering::Relaxed);
            match self.resolver.addresses(host, ip.is_ipv4()) {
                Ok(fwd) => {
                    if !fwd.found.is_empty() {
                        ttl = ttl.min(fwd.ttl.clamp(MIN_TTL, MAX_TTL));
                    }
                    if fwd.found.contains(&ip) {
                        return (Verdict::Dns(host.clone()), ttl);
                    }
                }
                Err(e) => return (Verdict::Unknown(format!("lookup of {host}: {e}")), 30),
            }
        }
        (
            Verdict::Spoofed(format!(
                "reverse DNS {} is not a forward-confirmed name under {}",
                names.join(", "),
                suffixes.join(", ")
            )),
            ttl,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_matching() {
        let s = vec!["googlebot.com".to_owned(), "google.com".to_owned()];
        assert!(host_matches("crawl-66-249-66-1.googlebot.com.", &s));
        assert!(host_matches("GoogleBot.com", &s));
        assert!(!host_matches("evilgooglebot.com", &s));
        assert!(!host_matches("googlebot.com.evil.net", &s));
        assert!(!host_matches("com", &s));
    }

    #[test]
    fn domains_file() {
        let d = Domains::parse(include_str!("../../../refdata/crawler_domains.tsv"));
        assert_eq!(d.get("bingbot"), Some(&["search.msn.com".to_owned()][..]));
        assert!(d
            .get("googlebot")
            .unwrap()
            .contains(&"googlebot.com".to_owned()));
        assert!(d.get("name").is_none());
    }
}
