//! The feature registry: every feature the models see, defined once — its name, what it
//! means, its unit and how it is computed.
//!
//! Owns: [`FEATURES`] (the models' columns, in order), the SQL of the per-client features (one
//! aggregate over a client's `http_logs` rows in the window; the store's feature view is
//! generated from it, see [`view_columns`]), the cross-client features' pure computation
//! ([`cross`]), and the reference table of the documentation ([`markdown`]).
//! Never: changes a name or an order without the models noticing: a model records the names
//! it was trained on and is retrained when they differ from [`names`].
//!
//! ```
//! use ja4_ml::features;
//! assert_eq!(features::names()[0], "log_hits");
//! assert!(features::meaning("ja4_rarity").unwrap().contains("rare"));
//! assert!(features::view_columns().contains("AS orphan_ratio"));
//! ```

pub mod cross;

/// What a feature's value measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A share of the client's requests (or rows), 0–1.
    Ratio,
    /// `ln(1 + n)` of a count.
    LogCount,
    /// `ln(1 + r)` of requests per minute.
    LogPerMinute,
    /// A count or mean of small numbers (headers, hops).
    Count,
    /// Seconds.
    Seconds,
    /// Shannon entropy, bits.
    Bits,
    /// A ratio of two byte sizes.
    SizeRatio,
    /// A flag, 0 or 1.
    Flag,
    /// `ln` of a count.
    Ln,
    /// `-log10` of a share (higher: rarer).
    NegLog10,
}

impl Unit {
    /// How the unit is shown (docs, tooltips).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ratio => "ratio 0–1",
            Unit::LogCount => "ln(1 + count)",
            Unit::LogPerMinute => "ln(1 + per minute)",
            Unit::Count => "count",
            Unit::Seconds => "seconds",
            Unit::Bits => "bits",
            Unit::SizeRatio => "bytes/bytes",
            Unit::Flag => "0 or 1",
            Unit::Ln => "ln(count)",
            Unit::NegLog10 => "−log10(share)",
        }
    }
}

/// How a feature is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compute {
    /// An aggregate over one client's `http_logs` rows in the window (ClickHouse SQL; a value
    /// that is not finite becomes 0).
    Sql(&'static str),
    /// From the whole window's clients ([`cross::cross_client`], in registry order).
    CrossClient,
}

/// What kind of evidence a feature is: what a client *does* can only be faked by doing it;
/// what it *presents* (headers, TLS and TCP stacks) an impersonation library or a headless
/// browser presents perfectly; how it compares with the window depends on who else is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Its behaviour: what it asks for, how fast, from where it came (assets, referers,
    /// cookies, timing, errors).
    Behaviour,
    /// The request headers it presents (the user agent's claims and their consistency).
    Claims,
    /// Its TCP/IP stack (SYN window, TTL, IP ID).
    Stack,
    /// How it compares with the window's other clients (rarity, sharing, crowding).
    Population,
}

impl Evidence {
    /// How the kind is shown (docs).
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Behaviour => "behaviour",
            Evidence::Claims => "claims",
            Evidence::Stack => "stack",
            Evidence::Population => "population",
        }
    }
}

/// One feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// Its column name (in the SQL view, the model, the explanations).
    pub name: &'static str,
    /// What kind of evidence it is (the verdict rules weigh behaviour apart from claims).
    pub evidence: Evidence,
    /// What it says about a client, for analysts.
    pub meaning: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// How it is computed.
    pub compute: Compute,
}

macro_rules! sql {
    ($name:literal, $evidence:ident, $unit:ident, $meaning:literal, $sql:expr) => {
        Feature {
            name: $name,
            evidence: Evidence::$evidence,
            meaning: $meaning,
            unit: Unit::$unit,
            compute: Compute::Sql($sql),
        }
    };
}

macro_rules! cross {
    ($name:literal, $evidence:ident, $unit:ident, $meaning:literal) => {
        Feature {
            name: $name,
            evidence: Evidence::$evidence,
            meaning: $meaning,
            unit: Unit::$unit,
            compute: Compute::CrossClient,
        }
    };
}

/// Every feature, in the order of the models' columns: the per-client (SQL) ones, then the
/// cross-client ones.
pub const FEATURES: &[Feature] = &[
    sql!("log_hits", Behaviour, LogCount, "rows of the client in the window (requests and connections without one)",
        "log1p(count())"),
    sql!("log_hit_velocity", Behaviour, LogPerMinute, "requests per minute between its first and last row",
        "log1p(countIf(kind = 'request') / greatest(1.0, dateDiff('second', min(ts), max(ts)) / 60.0))"),
    sql!("orphan_ratio", Behaviour, Ratio, "connections that never sent a request (handshake-only scanners)",
        "countIf(kind = 'orphan') / count()"),
    sql!("post_ratio", Behaviour, Ratio, "requests that are POSTs (form and login abuse)",
        "countIf(method = 'POST') / greatest(1, countIf(kind = 'request'))"),
    sql!("path_diversity", Behaviour, Ratio, "distinct paths per request (crawlers and fuzzers walk many)",
        "uniqExact(path) / greatest(1, countIf(kind = 'request'))"),
    sql!("url_depth_variance", Behaviour, Count, "variance of the paths' depth",
        "varPopIf(path_depth, kind = 'request')"),
    sql!("asset_ratio", Behaviour, Ratio, "requests for styles, scripts and images (browsers load them, most bots do not)",
        "sumIf(is_asset, kind = 'request') / greatest(1, countIf(kind = 'request'))"),
    sql!("direct_access_ratio", Behaviour, Ratio, "requests without a Referer",
        "countIf(kind = 'request' AND has_referer = 0) / greatest(1, countIf(kind = 'request'))"),
    sql!("page_referer_ratio", Behaviour, Ratio, "page requests (not assets) that came with a Referer: people follow links, crawlers and scripts fetch URLs directly",
        "countIf(kind = 'request' AND is_asset = 0 AND has_referer = 1) / greatest(1, countIf(kind = 'request' AND is_asset = 0))"),
    sql!("error_4xx_ratio", Behaviour, Ratio, "requests answered 4xx",
        "countIf(status >= 400 AND status < 500) / greatest(1, countIf(kind = 'request'))"),
    sql!("fuzzing_index", Behaviour, Ratio, "distinct paths answered 404 per distinct path (path guessing)",
        "uniqExactIf(path, status = 404) / greatest(1, uniqExact(path))"),
    sql!("header_count", Claims, Count, "mean number of request headers",
        "avgIf(header_count, kind = 'request')"),
    sql!("accept_language_ratio", Claims, Ratio, "requests with an Accept-Language header",
        "countIf(kind = 'request' AND accept_language != '') / greatest(1, countIf(kind = 'request'))"),
    sql!("cookie_ratio", Behaviour, Ratio, "requests with a cookie",
        "countIf(kind = 'request' AND has_cookie = 1) / greatest(1, countIf(kind = 'request'))"),
    sql!("referer_ratio", Behaviour, Ratio, "requests with a Referer",
        "countIf(kind = 'request' AND has_referer = 1) / greatest(1, countIf(kind = 'request'))"),
    sql!("modern_browser_score", Claims, Ratio, "mean share of Sec-Fetch-Site, Sec-CH-UA, Accept-Language and br encoding present",
        "avgIf(((sec_fetch_site != '') + (sec_ch_ua != '') + (accept_language != '') + (position(accept_encoding, 'br') > 0)) / 4.0, kind = 'request')"),
    sql!("sec_fetch_ratio", Claims, Ratio, "requests with Sec-Fetch-Site",
        "countIf(kind = 'request' AND sec_fetch_site != '') / greatest(1, countIf(kind = 'request'))"),
    sql!("headless_ratio", Claims, Ratio, "requests whose user agent names a headless or automated browser",
        "avgIf(match(user_agent, '(?i)headless|phantomjs|selenium|webdriver|puppeteer|playwright'), kind = 'request')"),
    sql!("log_user_agents", Claims, LogCount, "distinct user agents of the client",
        "log1p(uniqExactIf(user_agent, kind = 'request'))"),
    sql!("ua_ch_mismatch_ratio", Claims, Ratio, "requests with client hints from a user agent that is not Chromium's",
        "avgIf(sec_ch_ua != '' AND position(user_agent, 'Chrom') = 0 AND position(user_agent, 'Edg') = 0, kind = 'request')"),
    sql!("alpn_mismatch_ratio", Claims, Ratio, "requests over HTTP/1 on a connection that offered h2 first",
        "avgIf(tls_alpn = 'h2' AND protocol != 'HTTP/2.0', kind = 'request')"),
    sql!("sni_host_mismatch_ratio", Claims, Ratio, "requests whose Host differs from the TLS server name",
        "avgIf(tls_sni != '' AND tls_sni != vhost, kind = 'request')"),
    sql!("h2_ratio", Claims, Ratio, "rows over HTTP/2",
        "avg(protocol = 'HTTP/2.0')"),
    sql!("window_mss_ratio", Stack, SizeRatio, "mean SYN window over MSS (a TCP stack's signature)",
        "avgIf(syn_window / syn_mss, syn_mss > 0)"),
    sql!("ttl_mean", Stack, Count, "mean IP TTL of the client's SYNs (hops from its stack's initial TTL)",
        "avgIf(syn_ttl, syn_ttl > 0)"),
    sql!("ip_id_zero_ratio", Stack, Ratio, "SYNs with IP ID 0",
        "avgIf(syn_ip_id = 0, syn_ttl > 0)"),
    sql!("temporal_entropy", Behaviour, Bits, "entropy of the rows over the minutes of the window (bursts are low)",
        "entropy(toStartOfMinute(ts))"),
    sql!("jitter_seconds", Behaviour, Seconds, "spread of the gaps between rows (machines are regular)",
        "arrayReduce('stddevPop', arrayDifference(arraySort(groupArray(1000)(toUnixTimestamp64Milli(ts))))) / 1000.0"),
    sql!("port_density", Behaviour, Ratio, "distinct source ports per row (connection reuse is low)",
        "uniqExact(client_port) / count()"),
    cross!("ja4s_per_ip", Population, Ln, "TLS stacks (JA4 families) its address speaks"),
    cross!("ja4_rarity", Population, NegLog10, "how rare its JA4 family is among the window's clients"),
    cross!("asn_concentration", Population, Ratio, "share of the window's clients in its ASN"),
    cross!("header_order_sharing", Population, Ratio, "requests sent with a header order another address also uses"),
    cross!("header_order_confidence", Population, Ratio, "share of its requests in its most used header order"),
    cross!("ttl_os_mismatch", Stack, Flag, "its SYN TTL does not fit the operating system its user agent names"),
];

/// Every feature's name, in order.
pub fn names() -> Vec<String> {
    FEATURES.iter().map(|f| f.name.to_owned()).collect()
}

/// Width of a feature row.
pub fn len() -> usize {
    FEATURES.len()
}

/// The per-client (SQL) features, in order (they come first).
pub fn sql_features() -> impl Iterator<Item = (&'static Feature, &'static str)> {
    FEATURES.iter().filter_map(|f| match f.compute {
        Compute::Sql(sql) => Some((f, sql)),
        Compute::CrossClient => None,
    })
}

/// How many of the features are per-client (SQL).
pub fn sql_len() -> usize {
    sql_features().count()
}

/// Position of `name` in the rows.
pub fn index(name: &str) -> Option<usize> {
    FEATURES.iter().position(|f| f.name == name)
}

/// What kind of evidence `name` is.
pub fn evidence(name: &str) -> Option<Evidence> {
    FEATURES.iter().find(|f| f.name == name).map(|f| f.evidence)
}

/// What `name` means, for explanations.
pub fn meaning(name: &str) -> Option<&'static str> {
    FEATURES.iter().find(|f| f.name == name).map(|f| f.meaning)
}

/// The SQL features as the columns of a `SELECT … GROUP BY client`: `expr AS name`, a value
/// that is not finite made 0.
pub fn view_columns() -> String {
    sql_features()
        .map(|(f, sql)| format!("ifNotFinite(toFloat64({sql}), 0) AS {}", f.name))
        .collect::<Vec<_>>()
        .join(",\n    ")
}

/// The reference table of the documentation (`docs/features.md`).
pub fn markdown() -> String {
    let mut s = String::from(
        "# Features\n\nGenerated from the feature registry (`ml/src/features/mod.rs`); `cargo test -p ja4-ml` \
         checks this file is current (`JA4_BLESS=1` rewrites it).\n\n\
         | # | feature | evidence | unit | meaning | computed |\n| ---: | --- | --- | --- | --- | --- |\n",
    );
    for (i, f) in FEATURES.iter().enumerate() {
        let how = match f.compute {
            Compute::Sql(sql) => format!("`{}`", sql.replace('|', "\\|")),
            Compute::CrossClient => "across the window's clients".to_owned(),
        };
        s.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            i + 1,
            f.name,
            f.evidence.as_str(),
            f.unit.as_str(),
            f.meaning,
            how
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_identifiers_and_sql_comes_first() {
        let mut seen = std::collections::HashSet::new();
        for f in FEATURES {
            assert!(seen.insert(f.name), "{} twice", f.name);
            assert!(f
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert!(!f.meaning.is_empty());
            if let Compute::Sql(sql) = f.compute {
                // Statements are split on ';' when the view is created.
                assert!(!sql.contains(';'), "{}", f.name);
            }
        }
        let first_cross = FEATURES
            .iter()
            .position(|f| f.compute == Compute::CrossClient)
            .unwrap();
        assert_eq!(first_cross, sql_len());
        assert_eq!(cross::CROSS_FEATURES.len(), len() - sql_len());
        assert!(FEATURES[first_cross..]
            .iter()
            .zip(cross::CROSS_FEATURES)
            .all(|(f, n)| f.name == *n));
    }

    #[test]
    fn the_documentation_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/features.md");
        let want = markdown();
        if std::env::var_os("JA4_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/features.md is not the registry's table: run JA4_BLESS=1 cargo test -p ja4-ml"
        );
    }
}
