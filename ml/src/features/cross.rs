//! Cross-client features: what a client's traffic looks like next to everyone else's in the
//! window — how many JA4 families its address speaks, how rare its family is, how crowded
//! its ASN is,
//! how many addresses share its header order and how consistently it uses it, and whether
//! its TCP TTL fits the operating system its user agent claims.
//!
//! Owns: their computation, as pure functions over the window's clients (their names and
//! meanings are the registry's, [`super::FEATURES`]; the per-client features are SQL).
//! Never: reads the store; never depends on the order of the clients.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Names, in the order [`cross_client`] returns them (the registry's last ones).
pub const CROSS_FEATURES: &[&str] = &[
    "ja4s_per_ip",
    "ja4_rarity",
    "asn_concentration",
    "header_order_sharing",
    "header_order_confidence",
    "ttl_os_mismatch",
];

/// What the cross-client features need to know about one client (IP, JA4, host).
#[derive(Debug, Clone)]
pub struct ClientFacts<'a> {
    /// The client's address.
    pub ip: IpAddr,
    /// Its JA4 family ([`crate::identity::ja4_family`]): one browser's variants count once.
    pub ja4: &'a str,
    /// Its autonomous system (0: unknown).
    pub asn: u32,
    /// One of its User-Agents.
    pub user_agent: &'a str,
    /// Mean SYN TTL seen (0: none).
    pub ttl_mean: f64,
    /// Requests per JA4H (header order) of this client.
    pub ja4h: &'a [(String, u64)],
}

pub use ja4_core::stack::{claimed_os_ttl, initial_ttl};

/// The cross-client features of every client, in input order.
pub fn cross_client(clients: &[ClientFacts]) -> Vec<[f64; 6]> {
    let total = clients.len().max(1) as f64;
    let mut ja4s_by_ip: HashMap<IpAddr, HashSet<&str>> = HashMap::new();
    let mut clients_by_ja4: HashMap<&str, usize> = HashMap::new();
    let mut clients_by_asn: HashMap<u32, usize> = HashMap::new();
    let top = |c: &ClientFacts| -> Option<(String, f64)> {
        let sum: u64 = c.ja4h.iter().map(|(_, n)| n).sum();
        c.ja4h
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .filter(|(h, _)| !h.is_empty())
            .map(|(h, n)| (h.clone(), *n as f64 / sum.max(1) as f64))
    };
    let tops: Vec<Option<(String, f64)>> = clients.iter().map(top).collect();
    // Which addresses use each header order, whatever else they use.
    let mut ips_by_header: HashMap<&str, HashSet<IpAddr>> = HashMap::new();
    for c in clients {
        ja4s_by_ip.entry(c.ip).or_default().insert(c.ja4);
        *clients_by_ja4.entry(c.ja4).or_default() += 1;
        *clients_by_asn.entry(c.asn).or_default() += 1;
        for (h, _) in c.ja4h.iter().filter(|(h, n)| !h.is_empty() && *n > 0) {
            ips_by_header.entry(h.as_str()).or_default().insert(c.ip);
        }
    }
    clients
        .iter()
        .zip(&tops)
        .map(|(c, t)| {
            let ja4s = ja4s_by_ip.get(&c.ip).map_or(1, HashSet::len) as f64;
            let ja4_share = clients_by_ja4.get(c.ja4).copied().unwrap_or(1) as f64 / total;
            let asn_share = if c.asn == 0 {
                0.0
            } else {
                clients_by_asn.get(&c.asn).copied().unwrap_or(1) as f64 / total
            };
            // Share of the client's requests sent with a header order another address also
            // uses: browsers of one version share theirs (≈1), a tool's own order does not.
            let total_req: u64 = c.ja4h.iter().map(|(_, n)| n).sum();
            let shared: u64 = c
                .ja4h
                .iter()
                .filter(|(h, _)| ips_by_header.get(h.as_str()).is_some_and(|s| s.len() > 1))
                .map(|(_, n)| n)
                .sum();
            let sharing = if total_req == 0 {
                0.0
            } else {
                shared as f64 / total_req as f64
            };
            let confidence = t.as_ref().map_or(0.0, |(_, conf)| *conf);
            let mismatch = match (claimed_os_ttl(c.user_agent), initial_ttl(c.ttl_mean)) {
                (Some(claim), seen) if seen != 0 && seen != claim => 1.0,
                _ => 0.0,
            };
            [
                ja4s.ln(),
                -ja4_share.log10(),
                asn_share,
                sharing,
                confidence,
                mismatch,
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c<'a>(
        ip: &str,
        ja4: &'a str,
        asn: u32,
        ua: &'a str,
        ttl: f64,
        h: &'a [(String, u64)],
    ) -> ClientFacts<'a> {
        ClientFacts {
            ip: ip.parse().unwrap(),
            ja4,
            asn,
            user_agent: ua,
            ttl_mean: ttl,
            ja4h: h,
        }
    }

    #[test]
    fn ttl_against_the_claimed_os() {
        assert_eq!(initial_ttl(57.0), 64);
        assert_eq!(initial_ttl(116.0), 128);
        assert_eq!(initial_ttl(0.0), 0);
        assert_eq!(
            claimed_os_ttl("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
            Some(128)
        );
        assert_eq!(claimed_os_ttl("Mozilla/5.0 (X11; Linux x86_64)"), Some(64));
        assert_eq!(claimed_os_ttl("curl/8.5.0"), None);
    }

    #[test]
    fn cross_client_features() {
        let shared = vec![("ge11cr".to_owned(), 9), ("ge11nn".to_owned(), 1)];
        let own = vec![("po11nn".to_owned(), 4)];
        let win = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131";
        let clients = [
            c("10.0.0.1", "t13d_chrome", 100, win, 120.0, &shared),
            c("10.0.0.2", "t13d_chrome", 100, win, 120.0, &shared),
            c("10.0.0.3", "t13d_chrome", 200, win, 60.0, &shared),
            c(
                "10.0.0.3",
                "t13d_python",
                200,
                "python-requests/2.32",
                60.0,
                &own,
            ),
        ];
        let f = cross_client(&clients);
        // Two JA4s from 10.0.0.3; one from the others.
        assert_eq!(f[0][0], 0.0);
        assert!((f[3][0] - 2f64.ln()).abs() < 1e-12);
        // Chrome's JA4 is common (3 of 4), python's unique (1 of 4).
        assert!((f[0][1] - -(0.75f64).log10()).abs() < 1e-12);
        assert!((f[3][1] - 4f64.log10()).abs() < 1e-12);
        // Half the clients are in ASN 100.
        assert_eq!(f[0][2], 0.5);
        // Chrome's header orders are used by three addresses: all its requests are shared;
        // 90% of them use its top order. Python's order is its own.
        assert_eq!(f[0][3], 1.0);
        assert!((f[0][4] - 0.9).abs() < 1e-12);
        assert_eq!(f[3][3], 0.0);
        assert_eq!(f[3][4], 1.0);
        // "Windows" at TTL 64: the spoofer; Windows at 128 and no claim: fine.
        assert_eq!(f[2][5], 1.0);
        assert_eq!(f[0][5], 0.0);
        assert_eq!(f[3][5], 0.0);
        // Order does not matter.
        let mut rev = clients.to_vec();
        rev.reverse();
        let g = cross_client(&rev);
        assert_eq!(g[0], f[3]);
    }
}
