//! The SQL behind each view: pure functions from a [`ViewQuery`] to statements with bound
//! parameters. `{db}` stands for the configured database.
//!
//! Owns: which table each view reads (the hourly aggregate where it answers the question,
//! the request log where it must), bucket sizes of time series, the column lists and sort
//! keys of every table view, display forms (IPv4 without its `::ffff:` prefix).
//! Never: reads outside the requested time range or without a LIMIT; never formats a
//! user-supplied value into SQL (everything goes through [`Params`]).

use crate::backend::Params;
use crate::filters::{FilterError, Source, ViewQuery, VERDICT_CLASS};

/// A statement and its parameters.
pub struct Stmt {
    /// The SQL, with `{pN:Type}` placeholders.
    pub sql: String,
    /// The placeholders' values.
    pub params: Params,
    /// Filters of the request that do not apply to this view's data.
    pub ignored: Vec<crate::filters::Filter>,
}

/// An address as people write it: IPv4 without the mapped prefix.
pub fn ip_display(col: &str) -> String {
    format!("replaceRegexpOne(toString({col}), '^::ffff:', '')")
}

/// Seconds per bucket so a range shows at most ~120 bars.
pub fn bucket_seconds(q: &ViewQuery) -> u32 {
    const STEPS: [u32; 10] = [60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
    let span = ((q.to_ms - q.from_ms) / 1000).max(1) as u64;
    STEPS
        .into_iter()
        .find(|s| span / u64::from(*s) <= 120)
        .unwrap_or(86400)
}

/// Ranges of at least this long are answered from the hourly aggregate (hourly buckets).
pub const AGG_FROM_MS: i64 = 12 * 3_600_000;

/// The overview's bucket: hourly from [`AGG_FROM_MS`] on, so the aggregate can answer.
pub fn overview_bucket(q: &ViewQuery) -> u32 {
    let b = bucket_seconds(q);
    if q.to_ms - q.from_ms >= AGG_FROM_MS {
        b.max(3600)
    } else {
        b
    }
}

/// True when the hourly aggregate can answer `q`: a long range and every filter applies to it.
pub fn use_aggregate(q: &ViewQuery) -> bool {
    q.to_ms - q.from_ms >= AGG_FROM_MS && {
        let mut scratch = Params::new();
        q.filter_sql(Source::Agg, "{db}", &mut scratch).1.is_empty()
    }
}

/// The aggregate's hour range: from the start of `from`'s hour.
fn agg_range(q: &ViewQuery, p: &mut Params) -> String {
    let from = p.bind("Int64", q.from_ms.to_string());
    let to = p.bind("Int64", q.to_ms.to_string());
    format!(
        "hour >= toStartOfHour(fromUnixTimestamp64Milli({from}, 'UTC')) AND hour < fromUnixTimestamp64Milli({to}, 'UTC')"
    )
}

/// Latest verdict class per (client, JA4), as the CTE `v`.
fn verdicts_cte(q: &ViewQuery, p: &mut Params) -> String {
    format!("v AS ({})", crate::filters::latest_verdicts(q, "{db}", p))
}

/// Totals over the range: requests, connections without a request, clients, fingerprints.
pub fn overview_totals(q: &ViewQuery) -> Stmt {
    if use_aggregate(q) {
        let mut p = Params::new();
        let range = agg_range(q, &mut p);
        let (filters, ignored) = q.filter_sql(Source::Agg, "{db}", &mut p);
        let sql = format!(
            "SELECT sum(hits - orphans) AS requests, sum(orphans) AS orphans, uniq(client_ip) AS clients, \
             uniq(IPv6CIDRToRange(client_ip, if(IPv6CIDRToRange(client_ip, 96).1 = toIPv6('::ffff:0.0.0.0'), 120, 48)).1) AS networks, \
             uniqIf(ja4, ja4 != '') AS ja4s, uniqMerge(ja4hs) AS ja4hs, uniq(asn) AS asns, uniq(country) AS countries, \
             round(sum(h2) / greatest(1, sum(hits - orphans)), 4) AS h2_share, \
             round(sum(errors_4xx) / greatest(1, sum(hits - orphans)), 4) AS error_4xx_share \
             FROM {{db}}.agg_host_ip_ja4_1h WHERE {range} AND {filters}"
        );
        return Stmt {
            sql,
            params: p,
            ignored,
        };
    }
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let (filters, ignored) = q.filter_sql(Source::Logs, "{db}", &mut p);
    let sql = format!(
        "SELECT countIf(kind = 'request') AS requests, countIf(kind = 'orphan') AS orphans, \
         uniq(client_ip) AS clients, uniq(client_net) AS networks, uniqIf(ja4, ja4 != '') AS ja4s, \
         uniqIf(ja4h, ja4h != '') AS ja4hs, uniq(asn) AS asns, uniq(country) AS countries, \
         round(countIf(protocol = 'HTTP/2.0') / greatest(1, countIf(kind = 'request')), 4) AS h2_share, \
         round(countIf(status >= 400 AND status < 500) / greatest(1, countIf(kind = 'request')), 4) AS error_4xx_share \
         FROM {{db}}.http_logs WHERE {range} AND {filters}"
    );
    Stmt {
        sql,
        params: p,
        ignored,
    }
}

/// Requests and clients per time bucket and verdict class. Reads the hourly aggregate when
/// the buckets are hours or longer and every filter applies to it.
pub fn overview_series(q: &ViewQuery) -> Stmt {
    let step = overview_bucket(q);
    let mut p = Params::new();
    let cte = verdicts_cte(q, &mut p);
    let step_ph = p.bind("UInt32", step.to_string());
    // Counted per bucket and client first, then joined with the verdicts: the join sees
    // thousands of rows, not millions.
    let (inner, ignored) = if use_aggregate(q) {
        let range = agg_range(q, &mut p);
        let (f, ign) = q.filter_sql(Source::Agg, "{db}", &mut p);
        (
            format!(
                "SELECT toUnixTimestamp(toStartOfInterval(hour, toIntervalSecond({step_ph}))) AS t, client_ip, ja4, \
                 sum(hits - orphans) AS n FROM {{db}}.agg_host_ip_ja4_1h WHERE {range} AND {f} GROUP BY t, client_ip, ja4"
            ),
            ign,
        )
    } else {
        let range = q.range_sql("ts", &mut p);
        let (f, ign) = q.filter_sql(Source::Logs, "{db}", &mut p);
        (
            format!(
                "SELECT toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({step_ph}))) AS t, client_ip, ja4, \
                 count() AS n FROM {{db}}.http_logs WHERE {range} AND kind = 'request' AND {f} GROUP BY t, client_ip, ja4"
            ),
            ign,
        )
    };
    // Clients are scored under their JA4 family: every variant carries the verdict.
    let (lf, vf) = (
        ja4_ml::identity::ja4_family_sql("toString(l.ja4)"),
        ja4_ml::identity::ja4_family_sql("toString(v.ja4)"),
    );
    let sql = format!(
        "WITH {cte} SELECT l.t AS t, if(v.cls = '', 'unscored', v.cls) AS cls, sum(l.n) AS requests, \
         uniq(l.client_ip) AS clients \
         FROM ({inner}) AS l LEFT JOIN v ON l.client_ip = v.src_ip AND {lf} = {vf} \
         GROUP BY t, cls ORDER BY t, cls LIMIT 10000"
    );
    Stmt {
        sql,
        params: p,
        ignored,
    }
}

/// Latest score per scored client: clients per verdict class and a score histogram.
pub fn overview_scores(q: &ViewQuery) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("scored_at", &mut p);
    let (f, ignored) = q.filter_sql(Source::Scores, "{db}", &mut p);
    let sql = format!(
        "SELECT cls, floor(s * 20) / 20 AS bucket, count() AS clients FROM \
         (SELECT argMax({VERDICT_CLASS}, scored_at) AS cls, argMax(score, scored_at) AS s \
          FROM {{db}}.ml_all_scores WHERE {range} AND {f} GROUP BY src_ip, ja4, host) \
         GROUP BY cls, bucket ORDER BY bucket, cls LIMIT 1000"
    );
    Stmt {
        sql,
        params: p,
        ignored,
    }
}

/// The dimensions of the top-N panels: (name, value expression, label expression).
pub fn dimension(dim: &str) -> Option<(String, &'static str)> {
    Some(match dim {
        "ip" => (ip_display("client_ip"), "any(country)"),
        "net" => (
            format!(
                "concat({}, if(startsWith(toString(client_net), '::ffff:'), '/24', '/48'))",
                ip_display("client_net")
            ),
            "any(as_name)",
        ),
        "asn" => ("toString(asn)".into(), "any(as_name)"),
        "country" => ("toString(country)".into(), "''"),
        "ja4" => ("toString(ja4)".into(), "any(ja4_application)"),
        "ja4_a" => ("splitByChar('_', toString(ja4))[1]".into(), "''"),
        "ja4_b" => ("splitByChar('_', toString(ja4))[2]".into(), "''"),
        "ja4_c" => ("splitByChar('_', toString(ja4))[3]".into(), "''"),
        "ja4h" => ("toString(ja4h)".into(), "''"),
        "ja4t" => ("toString(ja4t)".into(), "''"),
        "h2" => (
            "toString(h2_fp)".into(),
            "dictGetOrDefault('{db}.dict_fingerprints', 'application', tuple('h2', any(toString(h2_fp))), '')",
        ),
        "ua" => ("user_agent".into(), "''"),
        "host" => ("toString(vhost)".into(), "''"),
        "path" => ("path".into(), "''"),
        _ => return None,
    })
}

/// The dimensions the hourly aggregate holds: (value expression, label expression).
fn agg_dimension(dim: &str) -> Option<(String, String)> {
    let net = "IPv6CIDRToRange(client_ip, if(IPv6CIDRToRange(client_ip, 96).1 = toIPv6('::ffff:0.0.0.0'), 120, 48)).1";
    Some(match dim {
        "ip" => (ip_display("client_ip"), "any(country)".into()),
        "net" => (
            format!(
                "concat({}, if(startsWith(toString({net}), '::ffff:'), '/24', '/48'))",
                ip_display(net)
            ),
            "dictGetOrDefault('{db}.dict_ip_asn', 'as_name', any(client_ip), '')".into(),
        ),
        "asn" => (
            "toString(asn)".into(),
            "dictGetOrDefault('{db}.dict_ip_asn', 'as_name', any(client_ip), '')".into(),
        ),
        "country" => ("toString(country)".into(), "''".into()),
        "ja4" => (
            "toString(ja4)".into(),
            "dictGetOrDefault('{db}.dict_bot_ja4', 'application', any(toString(ja4)), '')".into(),
        ),
        "ja4_a" | "ja4_b" | "ja4_c" => (dimension(dim)?.0, "''".into()),
        "host" => ("toString(host)".into(), "''".into()),
        _ => return None,
    })
}

/// What the breakdown view may group by.
pub const DIMENSIONS: &[&str] = &[
    "net", "asn", "country", "ja4", "ja4_a", "ja4_b", "ja4_c", "ja4h", "ja4t", "h2", "ua", "host",
    "path", "ip",
];

/// Top values of `dim` by requests.
pub fn top(q: &ViewQuery, dim: &str) -> Result<Stmt, FilterError> {
    let (expr, label) = dimension(dim).ok_or(FilterError::Invalid {
        name: "dim",
        what: "a known dimension",
        value: dim.to_owned(),
    })?;
    let limit = q.limit.min(100);
    if let Some((expr, label)) = agg_dimension(dim).filter(|_| use_aggregate(q)) {
        let mut p = Params::new();
        let range = agg_range(q, &mut p);
        let (f, ignored) = q.filter_sql(Source::Agg, "{db}", &mut p);
        return Ok(Stmt {
            sql: format!(
                "SELECT {expr} AS value, sum(hits - orphans) AS requests, uniq(client_ip) AS clients, {label} AS label \
                 FROM {{db}}.agg_host_ip_ja4_1h WHERE {range} AND {f} \
                 GROUP BY value HAVING value != '' AND requests > 0 ORDER BY requests DESC LIMIT {limit}"
            ),
            params: p,
            ignored,
        });
    }
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let (f, ignored) = q.filter_sql(Source::Logs, "{db}", &mut p);
    Ok(Stmt {
        sql: format!(
            "SELECT {expr} AS value, count() AS requests, uniq(client_ip) AS clients, {label} AS label \
             FROM {{db}}.http_logs WHERE {range} AND kind = 'request' AND {f} \
             GROUP BY value HAVING value != '' ORDER BY requests DESC LIMIT {limit}"
        ),
        params: p,
        ignored,
    })
}

/// Columns the detections view sorts by.
pub const DETECTION_SORTS: &[&str] = &[
    "detected_at",
    "score",
    "threat_rank",
    "hits",
    "recurrence",
    "ip",
    "asn",
    "country",
    "campaign_id",
    "host",
];

/// `ml_detected_anomalies` (latest per client, JA4, host, model) with recurrence: how many
/// scoring runs in the range flagged the address.
pub fn detections(q: &ViewQuery) -> Result<Stmt, FilterError> {
    let order = q.order_by(DETECTION_SORTS)?;
    let mut p = Params::new();
    let range = q.range_sql("detected_at", &mut p);
    let (f, ignored) = q.filter_sql(Source::Detections, "{db}", &mut p);
    let range2 = q.range_sql("scored_at", &mut p);
    let ip = ip_display("d.src_ip");
    Ok(Stmt {
        sql: format!(
            "SELECT toUnixTimestamp64Milli(detected_at) AS detected_at, {ip} AS ip, d.ja4 AS ja4, host, \
             model_name AS model, threat_level AS threat, \
             indexOf(['none', 'low', 'medium', 'high', 'critical'], toString(threat_level)) AS threat_rank, \
             {VERDICT_CLASS} AS verdict, round(score, 4) AS score, hits, browser_family AS browser, \
             campaign_id, asn, country, user_agent AS ua, reasons, top_features, \
             coalesce(r.runs, 0) AS recurrence, count() OVER () AS _total \
             FROM (SELECT * FROM {{db}}.ml_detected_anomalies FINAL WHERE {range} AND {f}) AS d \
             LEFT JOIN (SELECT src_ip, count() AS runs FROM {{db}}.ml_all_scores \
                        WHERE {range2} AND verdict IN ('suspicious', 'bot') GROUP BY src_ip) AS r \
             ON d.src_ip = r.src_ip \
             ORDER BY {order} {} SETTINGS join_use_nulls = 1",
            q.page_sql()
        ),
        params: p,
        ignored,
    })
}

/// Columns the scores view sorts by.
pub const SCORE_SORTS: &[&str] = &[
    "scored_at",
    "score",
    "forest_score",
    "ae_recon_error",
    "ae_rank",
    "bot_score",
    "hits",
    "ip",
    "campaign_id",
];

/// Everything scored.
pub fn scores(q: &ViewQuery) -> Result<Stmt, FilterError> {
    let order = q.order_by(SCORE_SORTS)?;
    let mut p = Params::new();
    let range = q.range_sql("scored_at", &mut p);
    let (f, ignored) = q.filter_sql(Source::Scores, "{db}", &mut p);
    let ip = ip_display("src_ip");
    Ok(Stmt {
        sql: format!(
            "SELECT toUnixTimestamp64Milli(scored_at) AS scored_at, window, {ip} AS ip, ja4, host, \
             model_name AS model, model_version AS version, hits, round(forest_score, 4) AS forest_score, \
             round(ae_recon_error, 4) AS ae_recon_error, round(ae_rank, 4) AS ae_rank, bot_score, round(score, 4) AS score, threat_level AS threat, \
             {VERDICT_CLASS} AS verdict, browser_family AS browser, campaign_id, reasons, count() OVER () AS _total \
             FROM {{db}}.ml_all_scores WHERE {range} AND {f} ORDER BY {order} {}",
            q.page_sql()
        ),
        params: p,
        ignored,
    })
}

/// Columns the campaigns view sorts by.
pub const CAMPAIGN_SORTS: &[&str] = &[
    "clients",
    "max_score",
    "total_hits",
    "last_seen",
    "campaign_id",
];

/// Clusters of clients the scoring runs grouped.
pub fn campaigns(q: &ViewQuery) -> Result<Stmt, FilterError> {
    let order = q.order_by(CAMPAIGN_SORTS)?;
    let mut p = Params::new();
    let range = q.range_sql("scored_at", &mut p);
    let (f, ignored) = q.filter_sql(Source::Scores, "{db}", &mut p);
    Ok(Stmt {
        sql: format!(
            "SELECT campaign_id, uniqExact(src_ip) AS clients, uniqExact(ja4) AS ja4_count, \
             groupUniqArray(5)(toString(ja4)) AS ja4s, groupUniqArray(5)(toString(host)) AS hosts, \
             sum(hits) AS total_hits, round(avg(score), 4) AS mean_score, round(max(score), 4) AS max_score, \
             topK(1)({VERDICT_CLASS})[1] AS verdict, \
             toUnixTimestamp64Milli(min(scored_at)) AS first_seen, toUnixTimestamp64Milli(max(scored_at)) AS last_seen, \
             count() OVER () AS _total \
             FROM {{db}}.ml_all_scores WHERE {range} AND campaign_id >= 0 AND {f} \
             GROUP BY campaign_id ORDER BY {order} {}",
            q.page_sql()
        ),
        params: p,
        ignored,
    })
}

/// A campaign's members (latest score per member).
pub fn campaign_members(q: &ViewQuery, id: i64) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("scored_at", &mut p);
    let idp = p.bind("Int64", id.to_string());
    let ip = ip_display("src_ip");
    Stmt {
        sql: format!(
            "SELECT {ip} AS ip, ja4, host, sum(hits) AS hits, round(argMax(score, scored_at), 4) AS score, \
             argMax({VERDICT_CLASS}, scored_at) AS verdict, argMax(reasons, scored_at) AS reasons \
             FROM {{db}}.ml_all_scores WHERE {range} AND campaign_id = {idp} \
             GROUP BY src_ip, ja4, host ORDER BY sum(hits) DESC LIMIT 500"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// What a campaign's members share in their requests.
pub fn campaign_traffic(q: &ViewQuery, id: i64) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let members = campaign_members_in(q, id, &mut p);
    Stmt {
        sql: format!(
            "SELECT count() AS requests, topK(5)(toString(ja4h)) AS ja4hs, topK(5)(toString(ja4t)) AS ja4ts, \
             topK(5)(asn) AS asns, topK(5)(toString(country)) AS countries, \
             topK(8)(replaceRegexpAll(path, '[0-9]+', 'N')) AS path_patterns, topK(5)(user_agent) AS uas \
             FROM {{db}}.http_logs WHERE {range} AND kind = 'request' AND {members}"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// A campaign's requests per bucket.
pub fn campaign_timeline(q: &ViewQuery, id: i64) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let members = campaign_members_in(q, id, &mut p);
    let step = p.bind("UInt32", bucket_seconds(q).to_string());
    Stmt {
        sql: format!(
            "SELECT toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({step}))) AS t, 'requests' AS cls, \
             count() AS requests FROM {{db}}.http_logs WHERE {range} AND {members} \
             GROUP BY t ORDER BY t LIMIT 10000"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

fn campaign_members_in(q: &ViewQuery, id: i64, p: &mut Params) -> String {
    let range = q.range_sql("scored_at", p);
    let idp = p.bind("Int64", id.to_string());
    let fam = ja4_ml::identity::ja4_family_sql("toString(ja4)");
    format!(
        "(client_ip, {fam}) IN (SELECT src_ip, {fam} FROM {{db}}.ml_all_scores WHERE {range} AND campaign_id = {idp})"
    )
}

/// The kinds of fingerprint pages and their column in the request log.
pub fn fingerprint_column(kind: &str) -> Option<&'static str> {
    match kind {
        "ja4" => Some("ja4"),
        "ja4h" => Some("ja4h"),
        "ja4t" => Some("ja4t"),
        "h2" => Some("h2_fp"),
        _ => None,
    }
}

/// A fingerprint's reach over the range and its known application.
pub fn fingerprint_summary(q: &ViewQuery, col: &'static str, value: &str) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let v = p.bind("String", value);
    let kind = p.bind("String", col);
    Stmt {
        sql: format!(
            "SELECT count() AS requests, uniq(client_ip) AS clients, uniq(asn) AS asns, \
             uniq(user_agent) AS user_agents, uniq(path) AS paths, uniq(vhost) AS hosts, \
             toUnixTimestamp64Milli(min(ts)) AS first_seen, toUnixTimestamp64Milli(max(ts)) AS last_seen, \
             round(countIf(protocol = 'HTTP/2.0') / greatest(1, count()), 4) AS h2_share, \
             topK(5)(user_agent) AS top_uas, \
             any(ja4_application) AS ja4_application, \
             dictGetOrDefault('{{db}}.dict_fingerprints', 'application', tuple({kind}, {v}), '') AS application, \
             dictGetOrDefault('{{db}}.dict_fingerprints', 'category', tuple({kind}, {v}), '') AS category \
             FROM {{db}}.http_logs WHERE {range} AND {col} = {v}"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// Clients using a fingerprint.
pub fn fingerprint_clients(q: &ViewQuery, col: &'static str, value: &str) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let v = p.bind("String", value);
    let ip = ip_display("client_ip");
    Stmt {
        sql: format!(
            "SELECT {ip} AS ip, count() AS requests, any(user_agent) AS ua, any(asn) AS asn, \
             any(as_name) AS as_name, any(country) AS country, uniq(path) AS paths, \
             toUnixTimestamp64Milli(max(ts)) AS last_seen \
             FROM {{db}}.http_logs WHERE {range} AND {col} = {v} \
             GROUP BY client_ip ORDER BY requests DESC LIMIT 200"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// Requests per bucket for one condition (`col = value`), by status class.
pub fn timeline(q: &ViewQuery, col: &'static str, value: &str, value_type: &str) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let v = p.bind(value_type, value);
    let step = p.bind("UInt32", bucket_seconds(q).to_string());
    Stmt {
        sql: format!(
            "SELECT toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({step}))) AS t, \
             multiIf(kind = 'orphan', 'no request', status >= 500, '5xx', status >= 400, '4xx', status >= 300, '3xx', '2xx') AS cls, \
             count() AS requests FROM {{db}}.http_logs WHERE {range} AND {col} = {v} \
             GROUP BY t, cls ORDER BY t LIMIT 10000"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// One client's identity and enrichment.
pub fn client_summary(q: &ViewQuery, ip: &str) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let a = p.bind("String", ip);
    Stmt {
        sql: format!(
            "SELECT count() AS events, countIf(kind = 'request') AS requests, countIf(kind = 'orphan') AS orphans, \
             any(asn) AS asn, any(as_name) AS as_name, any(country) AS country, any(asn_reputation) AS asn_reputation, \
             any(crawler_rule) AS crawler_rule, any(crawler_name) AS crawler_name, any(crawler_action) AS crawler_action, \
             any(bot_ip_name) AS bot_ip_name, max(bot_ip_verified) AS bot_ip_verified, \
             uniq(vhost) AS hosts, uniq(path) AS paths, \
             toUnixTimestamp64Milli(min(ts)) AS first_seen, toUnixTimestamp64Milli(max(ts)) AS last_seen \
             FROM {{db}}.http_logs WHERE {range} AND client_ip = toIPv6OrDefault({a})"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// Every fingerprint combination a client used.
pub fn client_fingerprints(q: &ViewQuery, ip: &str) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let a = p.bind("String", ip);
    Stmt {
        sql: format!(
            "SELECT ja4, ja4h, ja4t, toString(h2_fp) AS h2, user_agent AS ua, tls_version, tls_alpn AS alpn, protocol, count() AS requests, \
             any(ja4_application) AS application, groupBitOr(consistency_flags) AS consistency, \
             toUnixTimestamp64Milli(max(ts)) AS last_seen \
             FROM {{db}}.http_logs WHERE {range} AND client_ip = toIPv6OrDefault({a}) \
             GROUP BY ja4, ja4h, ja4t, h2, ua, tls_version, alpn, protocol ORDER BY requests DESC LIMIT 100"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// A client's scores over time with the features behind them.
pub fn client_scores(q: &ViewQuery, ip: &str) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("scored_at", &mut p);
    let a = p.bind("String", ip);
    Stmt {
        sql: format!(
            "SELECT toUnixTimestamp64Milli(scored_at) AS scored_at, ja4, host, model_name AS model, \
             round(score, 4) AS score, round(forest_score, 4) AS forest_score, round(ae_recon_error, 4) AS ae_recon_error, \
             round(ae_rank, 4) AS ae_rank, bot_score, \
             {VERDICT_CLASS} AS verdict, threat_level AS threat, campaign_id, reasons, features \
             FROM {{db}}.ml_all_scores WHERE {range} AND src_ip = toIPv6OrDefault({a}) \
             ORDER BY scored_at DESC LIMIT 200"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// A client's raw requests, newest first, with their headers.
pub fn client_requests(q: &ViewQuery, ip: &str) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let a = p.bind("String", ip);
    Stmt {
        sql: format!(
            "SELECT toUnixTimestamp64Milli(ts) AS ts, kind, method, vhost AS host, path, query, protocol, status, \
             bytes_out, client_port, ja4, ja4h, ja4t, toString(h2_fp) AS h2, consistency_flags AS consistency, \
             tls_version, tls_sni AS sni, user_agent AS ua, action, \
             header_names, accept, accept_language, accept_encoding, sec_fetch_site, sec_fetch_mode, \
             sec_fetch_dest, sec_ch_ua, sec_ch_ua_platform, has_cookie, has_referer, syn_ttl, syn_window, syn_mss, \
             count() OVER () AS _total \
             FROM {{db}}.http_logs WHERE {range} AND client_ip = toIPv6OrDefault({a}) \
             ORDER BY ts DESC {}",
            q.page_sql()
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// Actions that held a request back (what "mitigated" counts): challenged, refused, held,
/// and what count mode would have done. Allowed, passed and solved requests are not.
const MITIGATED: &str = "action NOT IN ('', 'allow', 'pass', 'challenge_passed')";

/// The mitigation view's statements over `q`'s range and filters.
fn mitigation_stmt(q: &ViewQuery, body: impl FnOnce(&str, &mut Params) -> String) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let (filters, ignored) = q.filter_sql(Source::Logs, "{db}", &mut p);
    let wher = format!("{range} AND {filters} AND kind = 'request' AND action != ''");
    let sql = body(&wher, &mut p);
    Stmt {
        sql,
        params: p,
        ignored,
    }
}

/// Requests and clients per action (count mode's as `count:<action>`), and the challenge's
/// solve figures: clients shown the page, clients that solved it.
pub fn mitigation_totals(q: &ViewQuery) -> Stmt {
    mitigation_stmt(q, |w, _| {
        format!(
            "SELECT action, count() AS requests, uniq(client_ip) AS clients,              uniqIf(client_ip, action = 'challenge') AS challenged_clients,              uniqIf(client_ip, action = 'challenge_passed') AS solved_clients              FROM {{db}}.http_logs WHERE {w} GROUP BY action ORDER BY requests DESC"
        )
    })
}

/// Requests per time bucket and action.
pub fn mitigation_series(q: &ViewQuery) -> Stmt {
    let step = bucket_seconds(q);
    mitigation_stmt(q, |w, p| {
        let step = p.bind("UInt32", step.to_string());
        format!(
            "SELECT toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({step}))) AS t, action AS cls,              count() AS requests FROM {{db}}.http_logs WHERE {w} GROUP BY t, cls ORDER BY t LIMIT 20000"
        )
    })
}

/// Mitigated requests by reason: the decision's verdict or the rate limit.
pub fn mitigation_reasons(q: &ViewQuery) -> Stmt {
    mitigation_stmt(q, |w, _| {
        format!(
            "SELECT action, action_reason AS reason, decision_verdict AS verdict, count() AS requests,              uniq(client_ip) AS clients FROM {{db}}.http_logs WHERE {w} AND {MITIGATED}              GROUP BY action, reason, verdict ORDER BY requests DESC LIMIT 50"
        )
    })
}

/// The most mitigated clients (`by` = `ip`) or JA4s (`by` = `ja4`).
pub fn mitigation_top(q: &ViewQuery, by_ja4: bool) -> Stmt {
    let ip = ip_display("client_ip");
    mitigation_stmt(q, |w, _| {
        let (key, other) = if by_ja4 {
            (
                "ja4 AS value",
                format!("uniq(client_ip) AS clients, any({ip}) AS example"),
            )
        } else {
            (
                "client_ip AS key_ip",
                format!("{ip} AS value, uniq(ja4) AS ja4s, any(ja4) AS example"),
            )
        };
        let group = if by_ja4 { "value" } else { "key_ip" };
        format!(
            "SELECT {key}, {other}, count() AS mitigated, argMax(action, ts) AS last_action,              toUnixTimestamp64Milli(max(ts)) AS last_seen, any(decision_verdict) AS verdict              FROM {{db}}.http_logs WHERE {w} AND {MITIGATED} GROUP BY {group}              ORDER BY mitigated DESC LIMIT 20"
        )
    })
}

/// One client's requests per action.
pub fn client_actions(q: &ViewQuery, ip: &str) -> Stmt {
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let a = p.bind("String", ip);
    Stmt {
        sql: format!(
            "SELECT action, action_reason AS reason, count() AS requests,              toUnixTimestamp64Milli(max(ts)) AS last_seen FROM {{db}}.http_logs              WHERE {range} AND client_ip = toIPv6OrDefault({a}) AND action != ''              GROUP BY action, reason ORDER BY requests DESC"
        ),
        params: p,
        ignored: Vec::new(),
    }
}

/// Columns the audit trail sorts by.
pub const AUDIT_SORTS: &[&str] = &["ts", "actor", "action"];

/// The audit trail's page for `q`.
pub fn audit(q: &ViewQuery) -> Result<Stmt, FilterError> {
    let order = q.order_by(AUDIT_SORTS)?;
    let mut p = Params::new();
    let range = q.range_sql("ts", &mut p);
    let (f, ignored) = q.filter_sql(Source::Audit, "{db}", &mut p);
    let ip = ip_display("client_ip");
    Ok(Stmt {
        sql: format!(
            "SELECT toUnixTimestamp64Milli(ts) AS ts, actor, role, action, target, success, {ip} AS client_ip, details, count() OVER () AS _total \
             FROM {{db}}.audit_logs WHERE {range} AND {f} ORDER BY {order} {}",
            q.page_sql()
        ),
        params: p,
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_series_short() {
        let q = |r| ViewQuery::parse(&format!("range={r}"), 1_800_000_000_000).unwrap();
        assert_eq!(bucket_seconds(&q("1h")), 60);
        assert_eq!(bucket_seconds(&q("24h")), 900);
        assert_eq!(bucket_seconds(&q("7d")), 7200);
    }

    #[test]
    fn series_reads_the_aggregate_only_when_it_can() {
        let now = 1_800_000_000_000;
        let s = overview_series(&ViewQuery::parse("range=7d&f=ja4:x", now).unwrap());
        assert!(s.sql.contains("agg_host_ip_ja4_1h"));
        let s = overview_series(&ViewQuery::parse("range=7d&f=path:/x", now).unwrap());
        assert!(s.sql.contains("http_logs") && !s.sql.contains("agg_host"));
        let s = overview_series(&ViewQuery::parse("range=1h&f=ja4:x", now).unwrap());
        assert!(!s.sql.contains("agg_host"));
        let t = overview_totals(&ViewQuery::parse("range=24h&f=ja4:x&x=country:DE", now).unwrap());
        assert!(t.sql.contains("agg_host_ip_ja4_1h"));
        let t = overview_totals(&ViewQuery::parse("range=24h&f=ua:curl", now).unwrap());
        assert!(t.sql.contains("http_logs"));
        let q = ViewQuery::parse("range=24h", now).unwrap();
        assert!(top(&q, "ja4").unwrap().sql.contains("agg_host"));
        assert!(top(&q, "path").unwrap().sql.contains("http_logs"));
    }

    #[test]
    fn every_table_view_is_bounded() {
        let q = ViewQuery::parse("range=6h", 1_800_000_000_000).unwrap();
        for s in [
            detections(&q).unwrap(),
            scores(&q).unwrap(),
            campaigns(&q).unwrap(),
            audit(&q).unwrap(),
            top(&q, "path").unwrap(),
            client_requests(&q, "1.2.3.4"),
        ] {
            assert!(s.sql.contains("LIMIT"), "{}", s.sql);
            assert!(s.sql.contains("fromUnixTimestamp64Milli"), "{}", s.sql);
        }
        assert!(top(&q, "password").is_err());
    }
}
