-- ja4-platform schema, migration 0003: the canonical, enriched request log.
-- `http_logs` has every column of `requests_raw` plus what the enrichment view derives at
-- insert time from the reference dictionaries of 0002 and from the request itself. Features,
-- detections and the dashboard read this table; `requests_raw` stays the landing table.

CREATE TABLE IF NOT EXISTS {db}.http_logs AS {db}.requests_raw
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (toStartOfHour(ts), vhost, client_ip, ts)
TTL toDateTime(ts) + INTERVAL 7 DAY
SETTINGS ttl_only_drop_parts = 1;

ALTER TABLE {db}.http_logs
    ADD COLUMN IF NOT EXISTS client_net       IPv6,
    ADD COLUMN IF NOT EXISTS asn              UInt32,
    ADD COLUMN IF NOT EXISTS country          LowCardinality(String),
    ADD COLUMN IF NOT EXISTS as_name          LowCardinality(String),
    ADD COLUMN IF NOT EXISTS asn_reputation   LowCardinality(String),
    ADD COLUMN IF NOT EXISTS asn_score        Float32,
    ADD COLUMN IF NOT EXISTS bot_ip_name      LowCardinality(String),
    ADD COLUMN IF NOT EXISTS bot_ip_category  LowCardinality(String),
    ADD COLUMN IF NOT EXISTS bot_ip_verified  UInt8,
    ADD COLUMN IF NOT EXISTS ja4_application  LowCardinality(String),
    ADD COLUMN IF NOT EXISTS ja4_is_bot       UInt8,
    ADD COLUMN IF NOT EXISTS crawler_rule     LowCardinality(String),
    ADD COLUMN IF NOT EXISTS crawler_name     LowCardinality(String),
    ADD COLUMN IF NOT EXISTS crawler_action   LowCardinality(String),
    ADD COLUMN IF NOT EXISTS crawler_category LowCardinality(String),
    ADD COLUMN IF NOT EXISTS path_depth       UInt8,
    ADD COLUMN IF NOT EXISTS is_asset         UInt8,
    ADD COLUMN IF NOT EXISTS header_count     UInt16;

-- Enrichment at insert. Crawler rules apply in the order user agent, IP, ASN, country: the
-- first that names the client wins, and `crawler_rule` says which one it was.
-- client_net is the client's /24 (IPv4) or /48 (IPv6).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv_http_logs TO {db}.http_logs AS
WITH
    dictGetOrDefault('{db}.dict_ip_asn', ('asn', 'country', 'as_name'), client_ip, (toUInt32(0), '', '')) AS geo,
    dictGetOrDefault('{db}.dict_asn_reputation', ('reputation', 'score'), toUInt64(geo.1), ('', toFloat32(0))) AS rep,
    dictGetOrDefault('{db}.dict_bot_ips', ('bot_name', 'category', 'verified'), client_ip, ('', '', toUInt8(0))) AS bot,
    dictGetOrDefault('{db}.dict_bot_ja4', ('application', 'is_bot'), ja4, ('', toUInt8(0))) AS app,
    dictGetOrDefault('{db}.dict_crawler_ua', ('name', 'action', 'category'), user_agent, ('', '', '')) AS c_ua,
    dictGetOrDefault('{db}.dict_crawler_ip', ('name', 'action', 'category'), client_ip, ('', '', '')) AS c_ip,
    dictGetOrDefault('{db}.dict_crawler_asn', ('name', 'action', 'category'), toUInt64(geo.1), ('', '', '')) AS c_asn,
    dictGetOrDefault('{db}.dict_crawler_country', ('name', 'action', 'category'), tuple(geo.2), ('', '', '')) AS c_cc,
    multiIf(c_ua.1 != '', 'ua', c_ip.1 != '', 'ip', c_asn.1 != '', 'asn', c_cc.1 != '', 'country', '') AS rule,
    multiIf(rule = 'ua', c_ua, rule = 'ip', c_ip, rule = 'asn', c_asn, c_cc) AS crawler
SELECT
    *,
    IPv6CIDRToRange(client_ip, if(IPv6CIDRToRange(client_ip, 96).1 = toIPv6('::ffff:0.0.0.0'), 120, 48)).1 AS client_net,
    geo.1 AS asn,
    geo.2 AS country,
    geo.3 AS as_name,
    rep.1 AS asn_reputation,
    rep.2 AS asn_score,
    bot.1 AS bot_ip_name,
    bot.2 AS bot_ip_category,
    bot.3 AS bot_ip_verified,
    app.1 AS ja4_application,
    app.2 AS ja4_is_bot,
    rule AS crawler_rule,
    crawler.1 AS crawler_name,
    crawler.2 AS crawler_action,
    crawler.3 AS crawler_category,
    toUInt8(least(255, countSubstrings(path, '/'))) AS path_depth,
    toUInt8(match(lower(path), '\\.(css|js|mjs|map|png|jpe?g|gif|svg|ico|webp|avif|bmp|woff2?|ttf|otf|eot|mp4|webm|mp3)$')) AS is_asset,
    toUInt16(length(header_names)) AS header_count
FROM {db}.requests_raw;
