//! What a view was asked for: time range, include/exclude filters, sort and page, parsed from
//! the URL query and turned into a WHERE clause with bound parameters.
//!
//! Owns: the filterable fields of each data source (a fixed table: field name → column
//! expression and how its value is typed), range and paging limits, sort validation against
//! each view's own column list.
//! Never: puts a user's value into SQL text. Field names and sort keys are looked up in fixed
//! tables (unknown ones are rejected or reported as not applicable); values become `{pN:Type}`
//! placeholders.

use std::collections::BTreeMap;

use crate::backend::Params;

/// Where a view's rows come from; decides which filters apply and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `http_logs`: one row per request or orphan connection.
    Logs,
    /// `agg_host_ip_ja4_1h`: hourly per host, client, JA4.
    Agg,
    /// `ml_all_scores`.
    Scores,
    /// `ml_detected_anomalies`.
    Detections,
    /// `audit_logs`.
    Audit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Ip,
    Net,
    UInt,
    Int,
    /// The verdict class of the (client, JA4) pair at the end of the range.
    Verdict,
}

/// The verdict class shown everywhere: a bot's class carries its threat level.
pub const VERDICT_CLASS: &str =
    "multiIf(verdict = 'bot', concat('bot_', toString(threat_level)), toString(verdict))";

/// Every filterable field, for the UI's chips.
pub const FIELDS: &[&str] = &[
    "ip", "net", "asn", "country", "ja4", "ja4_a", "ja4_b", "ja4_c", "ja4h", "ja4t", "h2", "ua",
    "host", "path", "method", "status", "verdict", "threat", "model", "browser", "campaign",
    "actor", "action",
];

/// The column expression and value type of `field` in `source`, if it applies there.
fn field(source: Source, field: &str) -> Option<(&'static str, Kind)> {
    use Kind::*;
    use Source::*;
    let ja4 = |part| match source {
        Logs | Agg | Scores | Detections => Some((part, Text)),
        Audit => None,
    };
    Some(match (source, field) {
        (Logs | Agg, "ip") => ("client_ip", Ip),
        (Scores | Detections, "ip") => ("src_ip", Ip),
        (Logs, "net") => ("client_net", Net),
        (Agg, "net") => ("client_ip", Net),
        (Scores | Detections, "net") => ("src_ip", Net),
        (Logs | Agg | Detections, "asn") => ("asn", UInt),
        (Logs | Agg | Detections, "country") => ("country", Text),
        (Logs | Agg | Scores | Detections, "ja4") => ("ja4", Text),
        (_, "ja4_a") => return ja4("splitByChar('_', toString(ja4))[1]"),
        (_, "ja4_b") => return ja4("splitByChar('_', toString(ja4))[2]"),
        (_, "ja4_c") => return ja4("splitByChar('_', toString(ja4))[3]"),
        (Logs, "ja4h") => ("ja4h", Text),
        (Logs, "ja4t") => ("ja4t", Text),
        (Logs, "h2") => ("h2_fp", Text),
        (Logs | Detections, "ua") => ("user_agent", Text),
        (Logs, "host") => ("vhost", Text),
        (Agg | Scores | Detections, "host") => ("host", Text),
        (Logs, "path") => ("path", Text),
        (Logs, "method") => ("method", Text),
        (Logs, "status") => ("status", UInt),
        (Logs | Agg, "verdict") => ("", Verdict),
        (Scores | Detections, "verdict") => (VERDICT_CLASS, Text),
        (Scores | Detections, "threat") => ("threat_level", Text),
        (Scores | Detections, "model") => ("model_name", Text),
        (Scores | Detections, "browser") => ("browser_family", Text),
        (Scores | Detections, "campaign") => ("campaign_id", Int),
        (Audit, "actor") => ("actor", Text),
        (Audit, "action") => ("action", Text),
        (Logs, "action") => ("action", Text),
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error, PartialEq)]
/// Why a view request was refused (the analyst sees the message).
pub enum FilterError {
    #[error("unknown filter field {0:?} (known: {known})", known = FIELDS.join(", "))]
    /// A filter on a field the view does not know.
    UnknownField(String),
    #[error("a filter is written field:value, got {0:?}")]
    /// A filter that is not `field:value`.
    Malformed(String),
    #[error("{name} must be {what}, got {value:?}")]
    /// A parameter out of its range.
    Invalid {
        /// The parameter.
        name: &'static str,
        /// What it must be.
        what: &'static str,
        /// What was given.
        value: String,
    },
    #[error("cannot sort by {0:?} here")]
    /// A sort column the view does not offer.
    Sort(String),
}

/// One filter chip.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The field filtered on.
    pub field: String,
    /// The value it must (or must not) have.
    pub value: String,
    /// Exclude matching rows instead of keeping only them.
    pub exclude: bool,
}

/// A view request: time range, filters, sort, page, plus the view's own keys.
#[derive(Debug, Clone)]
pub struct ViewQuery {
    /// Milliseconds since the epoch, `from` inclusive, `to` exclusive.
    pub from_ms: i64,
    /// End of the range (exclusive).
    pub to_ms: i64,
    /// The filter chips, all applied.
    pub filters: Vec<Filter>,
    /// The column to sort by (the view's default when None).
    pub sort: Option<String>,
    /// Descending order.
    pub desc: bool,
    /// The page (from 0).
    pub page: u32,
    /// Rows per page (at most `MAX_LIMIT`).
    pub limit: u32,
    /// Answer as CSV (up to `MAX_CSV_ROWS` rows) instead of JSON.
    pub csv: bool,
    other: BTreeMap<String, String>,
}

/// The longest range a view may ask for (the store keeps seven days).
pub const MAX_RANGE_MS: i64 = 8 * 86_400_000;
/// Filter chips one view may carry (each is a condition the engine evaluates on every row).
pub const MAX_FILTERS: usize = 32;
/// Longest value of one filter chip.
pub const MAX_FILTER_VALUE: usize = 1024;
/// How far past `now` a range may end.
const MAX_AHEAD_MS: i64 = 86_400_000;
/// Rows per page at most, and rows per CSV export at most.
pub const MAX_LIMIT: u32 = 500;
/// Rows per CSV export at most.
pub const MAX_CSV_ROWS: u32 = 100_000;

fn parse_duration_ms(s: &str) -> Option<i64> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let mul = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    (n > 0).then(|| n.saturating_mul(mul))
}

impl ViewQuery {
    /// Parses a URL query string at time `now_ms`. Without a range: the last 24 hours.
    pub fn parse(query: &str, now_ms: i64) -> Result<ViewQuery, FilterError> {
        let mut q = ViewQuery {
            from_ms: now_ms - 86_400_000,
            to_ms: now_ms,
            filters: Vec::new(),
            sort: None,
            desc: true,
            page: 0,
            limit: 50,
            csv: false,
            other: BTreeMap::new(),
        };
        let (mut from, mut to, mut range) = (None, None, None);
        let num = |name: &'static str, v: &str| {
            v.parse::<i64>().map_err(|_| FilterError::Invalid {
                name,
                what: "a number",
                value: v.to_owned(),
            })
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "from" => from = Some(num("from", &v)?),
                "to" => to = Some(num("to", &v)?),
                "range" => {
                    range = Some(parse_duration_ms(&v).ok_or_else(|| FilterError::Invalid {
                        name: "range",
                        what: "a duration like 15m, 6h or 7d",
                        value: v.to_string(),
                    })?)
                }
                "f" | "x" => {
                    let (field, value) = v
                        .split_once(':')
                        .ok_or_else(|| FilterError::Malformed(v.to_string()))?;
                    if !FIELDS.contains(&field) {
                        return Err(FilterError::UnknownField(field.to_owned()));
                    }
                    if q.filters.len() >= MAX_FILTERS || value.len() > MAX_FILTER_VALUE {
                        return Err(FilterError::Invalid {
                            name: "f",
                            what: "at most 32 filters of at most 1024 bytes each",
                            value: format!("{} filters", q.filters.len() + 1),
                        });
                    }
                    q.filters.push(Filter {
                        field: field.to_owned(),
                        value: value.to_owned(),
                        exclude: k == "x",
                    });
                }
                "sort" => q.sort = Some(v.into_owned()),
                "dir" => {
                    q.desc = match &*v {
                        "desc" => true,
                        "asc" => false,
                        _ => {
                            return Err(FilterError::Invalid {
                                name: "dir",
                                what: "asc or desc",
                                value: v.into_owned(),
                            })
                        }
                    }
                }
                "page" => q.page = num("page", &v)?.clamp(0, 100_000) as u32,
                "limit" => q.limit = num("limit", &v)?.clamp(1, i64::from(MAX_LIMIT)) as u32,
                "format" => q.csv = v == "csv",
                _ => {
                    q.other.insert(k.into_owned(), v.into_owned());
                }
            }
        }
        let bad = || FilterError::Invalid {
            name: "range",
            what: "from before to, at most 8 days apart, between 1970 and tomorrow",
            value: format!("{from:?}..{to:?}"),
        };
        // Every instant in [0, now + 1 day]; differences computed checked, so no pair of
        // values can wrap around into a range that looks short.
        let sane = |t: i64| (0..=now_ms.saturating_add(MAX_AHEAD_MS)).contains(&t);
        q.to_ms = to.unwrap_or(now_ms);
        q.from_ms = match (range, from) {
            (Some(r), _) => q.to_ms.checked_sub(r).ok_or_else(bad)?,
            (None, Some(f)) => f,
            (None, None) => q.to_ms.checked_sub(86_400_000).ok_or_else(bad)?,
        };
        let span = q.to_ms.checked_sub(q.from_ms).ok_or_else(bad)?;
        if !sane(q.from_ms) || !sane(q.to_ms) || span <= 0 || span > MAX_RANGE_MS {
            return Err(bad());
        }
        if q.csv {
            q.page = 0;
            q.limit = MAX_CSV_ROWS;
        }
        Ok(q)
    }

    /// A view-specific key (`ip`, `kind`, `value`, `dim`, `id`…).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.other.get(key).map(String::as_str)
    }

    /// The validated sort key (one of `allowed`, else the first) and direction.
    pub fn order_by(&self, allowed: &[&'static str]) -> Result<String, FilterError> {
        let key = match &self.sort {
            None => allowed[0],
            Some(s) => allowed
                .iter()
                .copied()
                .find(|a| a == s)
                .ok_or_else(|| FilterError::Sort(s.clone()))?,
        };
        Ok(format!("{key} {}", if self.desc { "DESC" } else { "ASC" }))
    }

    /// `LIMIT … OFFSET …` for the page.
    pub fn page_sql(&self) -> String {
        format!(
            "LIMIT {} OFFSET {}",
            self.limit,
            u64::from(self.page) * u64::from(self.limit)
        )
    }

    /// Binds the range and returns `time_col >= … AND time_col < …`.
    pub fn range_sql(&self, time_col: &str, p: &mut Params) -> String {
        let from = p.bind("Int64", self.from_ms.to_string());
        let to = p.bind("Int64", self.to_ms.to_string());
        format!(
            "{time_col} >= fromUnixTimestamp64Milli({from}, 'UTC') AND {time_col} < fromUnixTimestamp64Milli({to}, 'UTC')"
        )
    }

    /// The filters that apply to `source` as one SQL condition (`1` when none), and the
    /// ones that do not apply there. Includes on one field are alternatives (OR); fields
    /// and excludes combine with AND.
    pub fn filter_sql(&self, source: Source, db: &str, p: &mut Params) -> (String, Vec<Filter>) {
        let mut ignored = Vec::new();
        let mut includes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut parts = Vec::new();
        for f in &self.filters {
            let Some((expr, kind)) = field(source, &f.field) else {
                ignored.push(f.clone());
                continue;
            };
            let cond = condition(source, db, expr, kind, &f.value, self, p);
            if f.exclude {
                parts.push(format!("NOT ({cond})"));
            } else {
                includes.entry(&f.field).or_default().push(cond);
            }
        }
        for (_, alts) in includes {
            parts.push(format!("({})", alts.join(" OR ")));
        }
        if parts.is_empty() {
            ("1".into(), ignored)
        } else {
            (parts.join(" AND "), ignored)
        }
    }
}

fn condition(
    source: Source,
    db: &str,
    expr: &str,
    kind: Kind,
    value: &str,
    q: &ViewQuery,
    p: &mut Params,
) -> String {
    match kind {
        Kind::Text => format!("{expr} = {}", p.bind("String", value)),
        Kind::Ip => format!("{expr} = toIPv6OrDefault({})", p.bind("String", value)),
        Kind::Net => {
            // "a.b.c.d/len" or "x::/len"; an address without a length means its /24 or /48.
            let (addr, len) = value.split_once('/').unwrap_or((value, ""));
            let v4 = addr.contains('.') && !addr.contains(':');
            let len: u8 = len.parse().unwrap_or(if v4 { 24 } else { 48 });
            let len = if v4 { 96 + len.min(32) } else { len.min(128) };
            let a = p.bind("String", addr);
            let l = p.bind("UInt8", len.to_string());
            format!("isIPAddressInRange(toString({expr}), concat(toString(toIPv6OrDefault({a})), '/', toString({l})))")
        }
        Kind::UInt => format!("{expr} = toUInt64OrZero({})", p.bind("String", value)),
        Kind::Int => format!("{expr} = toInt64OrZero({})", p.bind("String", value)),
        Kind::Verdict => {
            let ip = if source == Source::Logs || source == Source::Agg {
                "client_ip"
            } else {
                "src_ip"
            };
            let latest = latest_verdicts(q, db, p);
            // Clients are scored under their JA4 family (`ja4_ml::identity`): every variant
            // of a scored client carries its verdict.
            let fam = ja4_ml::identity::ja4_family_sql("toString(ja4)");
            if value == "unscored" {
                format!("({ip}, {fam}) NOT IN (SELECT src_ip, {fam} FROM ({latest}))")
            } else {
                let v = p.bind("String", value);
                format!("({ip}, {fam}) IN (SELECT src_ip, {fam} FROM ({latest}) WHERE cls = {v})")
            }
        }
    }
}

/// The latest verdict class (`cls`) of every (client, JA4) scored from a day before the range
/// to its end: the one definition the verdict filter and the overview's series share.
pub fn latest_verdicts(q: &ViewQuery, db: &str, p: &mut Params) -> String {
    let from = p.bind("Int64", (q.from_ms - 86_400_000).to_string());
    let to = p.bind("Int64", q.to_ms.to_string());
    format!(
        "SELECT src_ip, ja4, argMax({VERDICT_CLASS}, scored_at) AS cls FROM {db}.ml_all_scores \
         WHERE scored_at >= fromUnixTimestamp64Milli({from}, 'UTC') AND scored_at < fromUnixTimestamp64Milli({to}, 'UTC') \
         GROUP BY src_ip, ja4"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn defaults_to_the_last_day() {
        let q = ViewQuery::parse("", NOW).unwrap();
        assert_eq!((q.from_ms, q.to_ms), (NOW - 86_400_000, NOW));
        assert_eq!((q.page, q.limit, q.desc), (0, 50, true));
    }

    #[test]
    fn relative_and_absolute_ranges() {
        let q = ViewQuery::parse("range=6h", NOW).unwrap();
        assert_eq!(q.to_ms - q.from_ms, 6 * 3_600_000);
        let q = ViewQuery::parse("from=1000&to=61000", NOW).unwrap();
        assert_eq!((q.from_ms, q.to_ms), (1000, 61000));
        for bad in ["range=9d", "range=5s", "range=-1h", "from=5&to=4", "from=x"] {
            assert!(ViewQuery::parse(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_cannot_wrap_around() {
        for bad in [
            "from=-1000&to=9223372036854775000".to_owned(),
            format!("from={}&to={}", i64::MIN, i64::MAX),
            format!("from={}&to={}", i64::MAX - 10, i64::MAX),
            format!("to={}", i64::MIN),
            format!("to={}&range=1h", i64::MIN + 5),
            format!("from=-10&to={}", 3_600_000 - 10),
            format!(
                "from={}&to={}",
                NOW + 2 * 86_400_000,
                NOW + 2 * 86_400_000 + 1000
            ),
        ] {
            assert!(ViewQuery::parse(&bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn filter_chips_are_capped() {
        let many: Vec<String> = (0..MAX_FILTERS)
            .map(|i| format!("f=verdict:v{i}"))
            .collect();
        assert!(ViewQuery::parse(&many.join("&"), NOW).is_ok());
        let more = format!("{}&f=verdict:one-more", many.join("&"));
        assert!(ViewQuery::parse(&more, NOW).is_err());
        let long = format!("f=verdict:{}", "x".repeat(MAX_FILTER_VALUE + 1));
        assert!(ViewQuery::parse(&long, NOW).is_err());
    }

    #[test]
    fn filters_bind_values_and_never_inline_them() {
        let evil = "x' OR 1=1 --";
        let qs = format!(
            "f=ja4:{}&f=ja4:b&x=ua:{}&f=path:/a",
            urlenc(evil),
            urlenc("curl/8")
        );
        let q = ViewQuery::parse(&qs, NOW).unwrap();
        let mut p = Params::new();
        let (sql, ignored) = q.filter_sql(Source::Logs, "ja4", &mut p);
        assert!(!sql.contains(evil) && !sql.contains("curl"), "{sql}");
        assert_eq!(
            sql,
            "NOT (user_agent = {p2:String}) AND (ja4 = {p0:String} OR ja4 = {p1:String}) AND (path = {p3:String})"
        );
        assert!(ignored.is_empty());
        assert_eq!(p.as_slice()[0].1, evil);
        // path does not exist in the detections table: reported, not applied.
        let (sql, ignored) = q.filter_sql(Source::Detections, "ja4", &mut Params::new());
        assert!(!sql.contains("path"));
        assert_eq!(ignored.len(), 1);
    }

    #[test]
    fn unknown_fields_and_sorts_are_rejected() {
        assert_eq!(
            ViewQuery::parse("f=client_ip;DROP:1", NOW).unwrap_err(),
            FilterError::UnknownField("client_ip;DROP".into())
        );
        assert!(ViewQuery::parse("f=novalue", NOW).is_err());
        let q = ViewQuery::parse("sort=score%20DESC;--&dir=asc", NOW).unwrap();
        assert!(q.order_by(&["score", "hits"]).is_err());
        let q = ViewQuery::parse("sort=hits&dir=asc", NOW).unwrap();
        assert_eq!(q.order_by(&["score", "hits"]).unwrap(), "hits ASC");
        assert!(ViewQuery::parse("dir=sideways", NOW).is_err());
    }

    #[test]
    fn networks_default_to_slash_24_and_48() {
        let q = ViewQuery::parse("f=net:203.0.113.0", NOW).unwrap();
        let mut p = Params::new();
        q.filter_sql(Source::Logs, "ja4", &mut p);
        assert_eq!(p.as_slice()[1].1, "120");
        let q = ViewQuery::parse("f=net:2001:db8::/32", NOW).unwrap();
        let mut p = Params::new();
        q.filter_sql(Source::Logs, "ja4", &mut p);
        assert_eq!(p.as_slice()[0].1, "2001:db8::");
        assert_eq!(p.as_slice()[1].1, "32");
    }

    #[test]
    fn paging_is_bounded() {
        let q = ViewQuery::parse("limit=100000&page=3", NOW).unwrap();
        assert_eq!(q.page_sql(), "LIMIT 500 OFFSET 1500");
        let q = ViewQuery::parse("format=csv&page=3", NOW).unwrap();
        assert_eq!(q.page_sql(), format!("LIMIT {MAX_CSV_ROWS} OFFSET 0"));
    }

    fn urlenc(s: &str) -> String {
        form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }
}
