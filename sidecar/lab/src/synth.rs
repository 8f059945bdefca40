//! `ja4-lab synth`: realistic generated traffic for dashboards, demos and benchmarks.
//!
//! Owns: one `INSERT … SELECT … FROM numbers()` per client population (browsing humans with
//! assets, cookies and referers; scrapers on library TLS stacks; credential stuffing; path
//! fuzzers; verified and spoofed crawlers; a distributed campaign; handshake-only scanners),
//! written through `requests_raw` so the real enrichment and aggregate views fill
//! `http_logs` and the hourly tables, plus the reference rows (ASNs, countries, bot ranges)
//! the populations come from, and the shipped reference data (crawler rules, bot ranges).
//! Deterministic for a seed.
//! Never: stands in for measurements of detection quality (that is the traffic lab, with
//! real clients); never writes outside the configured database.

use anyhow::{Context, Result};

use ja4_store::Store;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Synth {
    /// Requests in total (orphan connections come on top, ~1%).
    pub requests: u64,
    /// Spread over the last `hours` hours.
    pub hours: u32,
    pub seed: u64,
    /// Browsing people (the largest population; the others keep their sizes).
    pub people: u32,
}

const COLUMNS: &str = "ts, kind, conn_id, client_ip, client_port, server_ip, server_port, vhost, method, path, query, \
    protocol, status, bytes_out, duration_us, tls_version, tls_sni, tls_alpn, ja4, ja3, ja4h, ja4t, syn_ttl, \
    syn_window, syn_mss, header_names, user_agent, accept, accept_language, accept_encoding, sec_fetch_site, \
    sec_fetch_mode, sec_fetch_dest, sec_ch_ua, sec_ch_ua_platform, has_cookie, has_referer, sources, \
    action, action_reason, decision_verdict, decision_bot_score, h2_fp";

/// The reference rows behind the generated addresses.
const REFERENCE: &str =
    "INSERT INTO {db}.ref_ip_asn (network, asn, country, as_name, org, domain, source) VALUES
    ('81.2.0.0/16', 3320, 'DE', 'DTAG', 'Deutsche Telekom AG', 'telekom.de', 'synth'),
    ('81.3.0.0/16', 3215, 'FR', 'ORANGE', 'Orange SA', 'orange.fr', 'synth'),
    ('81.4.0.0/16', 2856, 'GB', 'BT', 'British Telecommunications', 'bt.com', 'synth'),
    ('81.5.0.0/16', 7922, 'US', 'COMCAST', 'Comcast Cable', 'comcast.net', 'synth'),
    ('81.6.0.0/16', 1136, 'NL', 'KPN', 'KPN B.V.', 'kpn.com', 'synth'),
    ('81.7.0.0/16', 3352, 'ES', 'TELEFONICA', 'Telefonica de Espana', 'telefonica.es', 'synth'),
    ('81.8.0.0/16', 12322, 'FR', 'FREE', 'Free SAS', 'free.fr', 'synth'),
    ('81.9.0.0/16', 7018, 'US', 'ATT', 'AT&T Services', 'att.com', 'synth'),
    ('81.10.0.0/16', 5089, 'GB', 'VIRGIN', 'Virgin Media', 'virginmedia.com', 'synth'),
    ('81.11.0.0/16', 3269, 'IT', 'TIM', 'Telecom Italia', 'telecomitalia.it', 'synth'),
    ('45.10.0.0/16', 14061, 'US', 'DIGITALOCEAN', 'DigitalOcean LLC', 'digitalocean.com', 'synth'),
    ('45.11.0.0/16', 16509, 'US', 'AMAZON-02', 'Amazon.com Inc.', 'amazon.com', 'synth'),
    ('45.12.0.0/16', 24940, 'DE', 'HETZNER', 'Hetzner Online GmbH', 'hetzner.com', 'synth'),
    ('45.13.0.0/16', 16276, 'FR', 'OVH', 'OVH SAS', 'ovh.net', 'synth'),
    ('66.249.64.0/19', 15169, 'US', 'GOOGLE', 'Google LLC', 'google.com', 'synth');
INSERT INTO {db}.ref_asn_reputation (asn, reputation, score, note, source) VALUES
    (14061, 'hosting', 0.7, 'cloud', 'synth'), (16509, 'hosting', 0.6, 'cloud', 'synth'),
    (24940, 'hosting', 0.7, 'cloud', 'synth'), (16276, 'hosting', 0.7, 'cloud', 'synth');
INSERT INTO {db}.ref_bot_ips (network, bot_name, category, verified, source) VALUES
    ('66.249.64.0/19', 'googlebot', 'search', 1, 'synth');
SYSTEM RELOAD DICTIONARIES";

/// One population: share of the requests and the SELECT list (in `COLUMNS` order) over
/// `number`, with `h(k)` a per-row hash and `c` the client index.
struct Population {
    name: &'static str,
    share: f64,
    kind: &'static str,
    clients: u32,
    /// IPv4 of client `c` as a UInt32 expression.
    ip: &'static str,
    method: &'static str,
    path: &'static str,
    status: &'static str,
    ja4: &'static str,
    ua: &'static str,
    /// Browser-like headers (1) or a tool's (0).
    browser: &'static str,
    /// Requests cluster in bursts within this many seconds per client (0 = spread).
    burst_s: u32,
    /// What mod_ja4's mitigation did (a site in `JA4Mitigation Enforce`): a
    /// `(action, action_reason, decision_verdict, decision_bot_score)` tuple expression.
    mitigation: &'static str,
}

const CHROME: &str = "t13d1516h2_8daaf6152771_02713d6af862";
const FIREFOX: &str = "t13d1715h2_5b57614c22b0_3d5424432f57";
const SAFARI: &str = "t13d2014h2_a09f3c656075_14788d8d241b";
/// The browsers' HTTP/2 fingerprints (refdata/measured/h2-fingerprints.tsv; Safari's as
/// curl-cffi copies it).
const H2_CHROME: &str = "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p";
const H2_FIREFOX: &str = "1:65536;2:0;4:131072;5:16384|12517377|0|m,p,a,s";
const H2_SAFARI: &str = "2:0;3:100;4:2097152;9:1|10420225|0|m,s,a,p";

fn populations() -> Vec<Population> {
    vec![
        Population {
            name: "humans",
            share: 0.70,
            kind: "request",
            clients: 3000,
            ip: "(81 * 16777216) + ((2 + c % 10) * 65536) + 256 + intDiv(c, 10)",
            method: "'GET'",
            path: "multiIf(h(3) % 10 < 5, ['/static/app.js', '/static/site.css', concat('/img/p', toString(h(4) % 40), '.jpg'), '/favicon.ico'][h(5) % 4 + 1], \
                   ['/', '/products', concat('/product/', toString(h(4) % 200)), '/cart', '/about', '/search'][h(6) % 6 + 1])",
            status: "if(h(7) % 20 = 0, 304, 200)",
            ja4: "[CHROME, FIREFOX, SAFARI][c % 3 + 1]",
            ua: "['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', \
                 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0', \
                 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15'][c % 3 + 1]",
            browser: "1",
            burst_s: 1800,
            // A few people land on the challenge (a shared address a rule named): most solve it
            // once and browse on with the pass.
            mitigation: "multiIf(c % 150 = 7 AND h(9) % 10 = 0, ('challenge', 'decision', 'suspicious', toUInt8(28)), \
                         c % 150 = 7 AND h(9) % 10 = 1, ('challenge_passed', '', '', toUInt8(0)), \
                         c % 150 = 7, ('pass', 'decision', 'suspicious', toUInt8(28)), ('allow', '', '', toUInt8(0)))",
        },
        Population {
            name: "scrapers",
            share: 0.10,
            kind: "request",
            clients: 40,
            ip: "(45 * 16777216) + ((10 + c % 3) * 65536) + 512 + c",
            method: "'GET'",
            path: "concat('/product/', toString(h(4) % 5000))",
            status: "if(h(7) % 50 = 0, 404, 200)",
            ja4: "['t13d190900_9dc949149365_97f8aa674fd9', 't13d3112h2_e8f1e7e78f70_6bebaf5329ac', 't13d1312h2_f57a46bbacb6_e7c285222651', 't13d5911h1_a33745022dd6_1f22a2ca17c4'][c % 4 + 1]",
            ua: "['python-requests/2.32.3', 'curl/8.5.0', 'Go-http-client/2.0', 'Java/21.0.5'][c % 4 + 1]",
            browser: "0",
            burst_s: 600,
            mitigation: "multiIf(h(9) % 4 = 0, ('block', 'ratelimit:ja4', '', toUInt8(0)), \
                         h(9) % 4 = 1, ('block', 'decision', 'bot', toUInt8(2)), ('allow', '', '', toUInt8(0)))",
        },
        Population {
            name: "credential stuffing",
            share: 0.04,
            kind: "request",
            clients: 15,
            ip: "(45 * 16777216) + (13 * 65536) + 768 + c",
            method: "'POST'",
            path: "'/login'",
            status: "if(h(7) % 25 = 0, 302, 401)",
            ja4: "'t13d190900_9dc949149365_97f8aa674fd9'",
            ua: "'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'",
            browser: "0",
            burst_s: 300,
            mitigation: "if(h(9) % 5 = 0, ('challenge_failed', '', '', toUInt8(0)), ('challenge', 'decision', 'bot', toUInt8(4)))",
        },
        Population {
            name: "path fuzzers",
            share: 0.05,
            kind: "request",
            clients: 6,
            ip: "(45 * 16777216) + (12 * 65536) + 1024 + c",
            method: "['GET', 'GET', 'HEAD', 'PROPFIND', 'OPTIONS'][h(8) % 5 + 1]",
            path: "['/.env', '/wp-admin/setup-config.php', '/phpmyadmin/index.php', '/.git/config', '/cgi-bin/luci', '/admin/config.bak', concat('/backup', toString(h(4) % 999), '.zip'), '/vendor/phpunit/eval-stdin.php'][h(5) % 8 + 1]",
            status: "if(h(7) % 30 = 0, 403, 404)",
            ja4: "'t13d3112h2_e8f1e7e78f70_6bebaf5329ac'",
            ua: "['Mozilla/5.0 zgrab/0.x', 'Nuclei - Open-source project (github.com/projectdiscovery/nuclei)', 'curl/7.88.1'][c % 3 + 1]",
            browser: "0",
            burst_s: 120,
            mitigation: "if(h(9) % 3 = 0, ('tarpit', 'decision', 'bot', toUInt8(1)), ('block', 'decision', 'bot', toUInt8(1)))",
        },
        Population {
            name: "crawlers",
            share: 0.05,
            kind: "request",
            clients: 20,
            // Half from Google's published range (verified), half spoofing from a cloud.
            ip: "if(c % 2 = 0, (66 * 16777216) + (249 * 65536) + (66 * 256) + c, (45 * 16777216) + (11 * 65536) + 1280 + c)",
            method: "'GET'",
            path: "['/', '/products', concat('/product/', toString(h(4) % 200)), '/about', '/robots.txt', '/sitemap.xml'][h(6) % 6 + 1]",
            status: "200",
            ja4: "if(c % 2 = 0, 't13d1516h2_8daaf6152771_d8a2da3f94cd', 't13d190900_9dc949149365_97f8aa674fd9')",
            ua: "'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'",
            browser: "0",
            burst_s: 3600,
            mitigation: "if(c % 2 = 0, ('allow', 'decision', 'verified_bot', toUInt8(99)), ('block', 'decision', 'bot', toUInt8(3)))",
        },
        Population {
            name: "campaign",
            share: 0.05,
            kind: "request",
            clients: 50,
            ip: "(45 * 16777216) + ((10 + c % 4) * 65536) + 2048 + c * 3",
            method: "'GET'",
            path: "concat('/api/price/', toString(h(4) % 900 + 100))",
            status: "200",
            ja4: "'t13d1312h2_f57a46bbacb6_e7c285222651'",
            ua: "['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', \
                 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15', \
                 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0'][h(9) % 3 + 1]",
            browser: "0",
            burst_s: 900,
            // A campaign met in count mode first: what would have been challenged.
            mitigation: "if(h(9) % 2 = 0, ('count:challenge', 'decision', 'bot', toUInt8(9)), ('count:challenge', 'ratelimit:ip+ja4', '', toUInt8(0)))",
        },
        Population {
            name: "handshake-only scanners",
            share: 0.01,
            kind: "orphan",
            clients: 10,
            ip: "(45 * 16777216) + (12 * 65536) + 4096 + c",
            method: "''",
            path: "''",
            status: "0",
            ja4: "'t13d311100_e8f1e7e78f70_d41ae481755e'",
            ua: "''",
            browser: "0",
            burst_s: 60,
            mitigation: "('', '', '', toUInt8(0))",
        },
    ]
}

fn insert_sql(p: &Population, rows: u64, hours: u32, seed: u64, offset: u64) -> String {
    let span_us = u64::from(hours) * 3_600_000_000;
    let burst_us = u64::from(p.burst_s) * 1_000_000;
    let h = |k: u32| format!("cityHash64(number, {seed}, {k})");
    // Each client has an anchor time; with bursts its requests gather around it.
    let ts = if p.burst_s == 0 {
        format!("now64(6) - toIntervalMicrosecond({} % {span_us})", h(1))
    } else {
        format!(
            "now64(6) - toIntervalMicrosecond(least({span_us} - 1, cityHash64(c, {seed}, 99) % {span_us} + {} % {burst_us}))",
            h(1)
        )
    };
    let sub = |s: &str| {
        let mut s = s.replace("CHROME", &format!("'{CHROME}'"));
        s = s.replace("FIREFOX", &format!("'{FIREFOX}'"));
        s = s.replace("SAFARI", &format!("'{SAFARI}'"));
        for k in 0..10 {
            s = s.replace(&format!("h({k})"), &h(k));
        }
        s
    };
    let b = p.browser;
    format!(
        "INSERT INTO {{db}}.requests_raw ({COLUMNS}) SELECT \
         {ts}, '{kind}', {offset} + number, toIPv6(toIPv4({ip})), toUInt16(1024 + {h2} % 60000), \
         toIPv6(toIPv4('10.0.0.1')), 443, 'shop.example', {method}, {path}, '', \
         if({b} = 1 AND {h3} % 3 > 0, 'HTTP/2.0', 'HTTP/1.1'), {status}, {h4} % 40000, 200 + {h5} % 90000, \
         '1.3', 'shop.example', if({b} = 1, 'h2', 'http/1.1'), {ja4}, lower(hex({h6})), \
         concat(if({method} = 'POST', 'po', 'ge'), '11', if({b} = 1, 'c', 'n'), if({b} = 1, 'r', 'n'), if({b} = 1, '14', '04'), if({b} = 1, ['enus', 'dede', 'frfr', 'engb'][c % 4 + 1], '0000'), '_', \
                substring(lower(hex(cityHash64({ja4}, {b}))), 1, 12), '_000000000000_000000000000'), \
         if({b} = 1, ['64240_2-4-8-1-3_1460_8', '65535_2-1-3-1-1-4_1460_6', '65535_2-4-8-1-3_1460_7'][c % 3 + 1], '64240_2-4-8-1-3_1460_7'), \
         if({b} = 1, [128, 64, 64][c % 3 + 1], 64), 64240, 1460, \
         if({b} = 1, ['host', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'referer', 'cookie', 'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest', 'upgrade-insecure-requests', 'priority', 'te', 'connection'], \
                     ['host', 'user-agent', 'accept-encoding', 'accept']), \
         {ua}, if({b} = 1, 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', '*/*'), \
         if({b} = 1, ['en-US,en;q=0.9', 'de-DE,de;q=0.9,en;q=0.8', 'fr-FR,fr;q=0.9', 'en-GB,en;q=0.8'][c % 4 + 1], ''), \
         if({b} = 1, 'gzip, deflate, br, zstd', 'gzip, deflate'), \
         if({b} = 1, 'same-origin', ''), if({b} = 1, 'navigate', ''), if({b} = 1, 'document', ''), \
         if({b} = 1 AND c % 3 = 0, '\"Chromium\";v=\"131\", \"Google Chrome\";v=\"131\"', ''), if({b} = 1 AND c % 3 = 0, '\"Windows\"', ''), \
         if({b} = 1 AND {h7} % 10 > 0, 1, 0), if({b} = 1 AND {h8} % 10 > 1, 1, 0), 3, \
         tupleElement({mit}, 1), tupleElement({mit}, 2), tupleElement({mit}, 3), tupleElement({mit}, 4), \
         if({b} = 1 AND {h3} % 3 > 0, multiIf({ja4} = '{CHROME}', '{H2_CHROME}', {ja4} = '{FIREFOX}', '{H2_FIREFOX}', \
            {ja4} = '{SAFARI}', '{H2_SAFARI}', ''), '') \
         FROM (SELECT number, cityHash64(number, {seed}, 0) % {clients} AS c FROM numbers({rows}))",
        kind = p.kind,
        ip = p.ip,
        method = sub(p.method),
        path = sub(p.path),
        status = sub(p.status),
        ja4 = sub(p.ja4),
        ua = sub(p.ua),
        mit = sub(p.mitigation),
        clients = p.clients,
        h2 = h(2),
        h3 = h(3),
        h4 = h(4),
        h5 = h(5),
        h6 = h(6),
        h7 = h(7),
        h8 = h(8),
    )
}

/// Writes the reference rows and every population; returns (population, rows) written.
pub(crate) fn generate(store: &Store, db: &str, s: Synth) -> Result<Vec<(&'static str, u64)>> {
    // The shipped crawler rules and bot ranges, so crawler claims are judged as in production.
    ja4_detect::refdata::load(store, db, &ja4_detect::refdata::Sources::default())
        .context("loading the shipped reference data")?;
    for stmt in REFERENCE.split(";\n") {
        store
            .execute(&stmt.replace("{db}", db))
            .context("writing the synthetic reference rows")?;
    }
    let mut out = Vec::new();
    let mut offset = s.seed << 40;
    for mut p in populations() {
        if p.name == "humans" {
            p.clients = s.people.max(1);
        }
        let rows = ((s.requests as f64) * p.share).round().max(1.0) as u64;
        let sql = insert_sql(&p, rows, s.hours.max(1), s.seed, offset).replace("{db}", db);
        store
            .execute(&sql)
            .with_context(|| format!("generating {} ({rows} rows)", p.name))?;
        offset += rows;
        out.push((p.name, rows));
    }
    Ok(out)
}
