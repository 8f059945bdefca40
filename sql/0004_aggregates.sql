-- ja4-platform schema, migration 0004: hourly aggregates kept up to date at insert.
-- Read them with the -Merge combinators (uniqMerge(paths)) or sum() for the simple columns.

-- Per host, client IP and JA4 and hour: the volume and shape of a client's traffic.
CREATE TABLE IF NOT EXISTS {db}.agg_host_ip_ja4_1h
(
    hour         DateTime('UTC'),
    host         LowCardinality(String),
    client_ip    IPv6,
    ja4          LowCardinality(String),
    hits         SimpleAggregateFunction(sum, UInt64),
    orphans      SimpleAggregateFunction(sum, UInt64),
    posts        SimpleAggregateFunction(sum, UInt64),
    errors_4xx   SimpleAggregateFunction(sum, UInt64),
    assets       SimpleAggregateFunction(sum, UInt64),
    bytes_out    SimpleAggregateFunction(sum, UInt64),
    first_seen   SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    last_seen    SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    paths        AggregateFunction(uniq, String),
    user_agents  AggregateFunction(uniq, String),
    ja4hs        AggregateFunction(uniq, String),
    asn          SimpleAggregateFunction(any, UInt32),
    country      SimpleAggregateFunction(any, LowCardinality(String))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(hour)
ORDER BY (hour, host, client_ip, ja4)
TTL hour + INTERVAL 7 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_agg_host_ip_ja4_1h TO {db}.agg_host_ip_ja4_1h AS
SELECT
    toStartOfHour(toDateTime(ts, 'UTC')) AS hour,
    vhost AS host,
    client_ip,
    ja4,
    count() AS hits,
    countIf(kind = 'orphan') AS orphans,
    countIf(method = 'POST') AS posts,
    countIf(status >= 400 AND status < 500) AS errors_4xx,
    sum(is_asset) AS assets,
    sum(bytes_out) AS bytes_out,
    min(ts) AS first_seen,
    max(ts) AS last_seen,
    uniqState(path) AS paths,
    uniqState(user_agent) AS user_agents,
    uniqState(ja4h) AS ja4hs,
    any(asn) AS asn,
    any(country) AS country
FROM {db}.http_logs
GROUP BY hour, host, client_ip, ja4;

-- Per header fingerprint (JA4H) and hour: how widely a header order is shared.
CREATE TABLE IF NOT EXISTS {db}.agg_header_fingerprint_1h
(
    hour         DateTime('UTC'),
    ja4h         LowCardinality(String),
    hits         SimpleAggregateFunction(sum, UInt64),
    clients      AggregateFunction(uniq, IPv6),
    ja4s         AggregateFunction(uniq, String),
    user_agents  AggregateFunction(uniq, String),
    hosts        AggregateFunction(uniq, String),
    first_seen   SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    last_seen    SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    header_names SimpleAggregateFunction(any, Array(String))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(hour)
ORDER BY (hour, ja4h)
TTL hour + INTERVAL 7 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_agg_header_fingerprint_1h TO {db}.agg_header_fingerprint_1h AS
SELECT
    toStartOfHour(toDateTime(ts, 'UTC')) AS hour,
    ja4h,
    count() AS hits,
    uniqState(client_ip) AS clients,
    uniqState(toString(ja4)) AS ja4s,
    uniqState(user_agent) AS user_agents,
    uniqState(toString(vhost)) AS hosts,
    min(ts) AS first_seen,
    max(ts) AS last_seen,
    any(header_names) AS header_names
FROM {db}.http_logs
WHERE kind = 'request'
GROUP BY hour, ja4h;
