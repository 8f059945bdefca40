-- ja4-platform schema, migration 0006: views for the models and the dashboard.
-- CREATE OR REPLACE keeps them re-runnable and lets a later migration refine a definition.

-- How often an IP was detected in the last 7 days (never older: old detections must not keep
-- an IP flagged forever).
CREATE OR REPLACE VIEW {db}.view_ip_recurrence AS
SELECT
    src_ip,
    count() AS detections,
    uniqExact(toDate(detected_at)) AS days_detected,
    uniqExact(ja4) AS ja4s,
    uniqExact(host) AS hosts,
    max(score) AS max_score,
    min(detected_at) AS first_detected,
    max(detected_at) AS last_detected
FROM {db}.ml_detected_anomalies FINAL
WHERE detected_at >= now64(3) - INTERVAL 7 DAY
GROUP BY src_ip;

-- Behaviour features per (client IP, JA4, host) over the last {hours} hours: one definition,
-- read through view_ai_features_1h and view_ai_features_24h.
CREATE OR REPLACE VIEW {db}.view_ai_features AS
SELECT
    client_ip AS src_ip,
    ja4,
    -- Connections without a request have no virtual host: they count under the name the
    -- client asked for in its hello, beside that client's requests.
    if(vhost = '', tls_sni, toString(vhost)) AS host,
    count() AS hits,
    countIf(kind = 'request') AS requests,
    min(ts) AS first_seen,
    max(ts) AS last_seen,
    requests / greatest(1.0, dateDiff('second', first_seen, last_seen) / 60.0) AS hit_velocity,
    countIf(kind = 'orphan') / hits AS orphan_ratio,
    countIf(method = 'POST') / greatest(1, requests) AS post_ratio,
    uniqExact(path) / greatest(1, requests) AS path_diversity,
    varPopIf(path_depth, kind = 'request') AS url_depth_variance,
    sumIf(is_asset, kind = 'request') / greatest(1, requests) AS asset_ratio,
    countIf(kind = 'request' AND has_referer = 0) / greatest(1, requests) AS direct_access_ratio,
    countIf(status >= 400 AND status < 500) / greatest(1, requests) AS error_4xx_ratio,
    uniqExactIf(path, status = 404) / greatest(1, uniqExact(path)) AS fuzzing_index,
    avgIf(header_count, kind = 'request') AS avg_header_count,
    countIf(kind = 'request' AND accept_language != '') / greatest(1, requests) AS accept_language_ratio,
    countIf(kind = 'request' AND has_cookie = 1) / greatest(1, requests) AS cookie_ratio,
    countIf(kind = 'request' AND has_referer = 1) / greatest(1, requests) AS referer_ratio,
    avgIf(((sec_fetch_site != '') + (sec_ch_ua != '') + (accept_language != '') + (position(accept_encoding, 'br') > 0)) / 4.0, kind = 'request') AS modern_browser_score,
    countIf(kind = 'request' AND sec_fetch_site != '') / greatest(1, requests) AS sec_fetch_ratio,
    avgIf(match(user_agent, '(?i)headless|phantomjs|selenium|webdriver|puppeteer|playwright'), kind = 'request') AS headless_ratio,
    uniqExactIf(user_agent, kind = 'request') AS user_agents,
    avgIf(sec_ch_ua != '' AND position(user_agent, 'Chrom') = 0 AND position(user_agent, 'Edg') = 0, kind = 'request') AS ua_ch_mismatch_ratio,
    avgIf(tls_alpn = 'h2' AND protocol != 'HTTP/2.0', kind = 'request') AS alpn_mismatch_ratio,
    avgIf(tls_sni != '' AND tls_sni != vhost, kind = 'request') AS sni_host_mismatch_ratio,
    avg(protocol = 'HTTP/2.0') AS h2_ratio,
    avgIf(syn_window / syn_mss, syn_mss > 0) AS window_mss_ratio,
    avgIf(syn_ttl, syn_ttl > 0) AS ttl_mean,
    avgIf(syn_ip_id = 0, syn_ttl > 0) AS ip_id_zero_ratio,
    entropy(toStartOfMinute(ts)) AS temporal_entropy,
    arrayReduce('stddevPop', arrayDifference(arraySort(groupArray(1000)(toUnixTimestamp64Milli(ts))))) / 1000.0 AS jitter_seconds,
    uniqExact(client_port) / hits AS port_density,
    any(asn) AS asn,
    any(country) AS country,
    any(user_agent) AS sample_user_agent
FROM {db}.http_logs
WHERE ts >= now64(6) - toIntervalHour({hours:UInt32})
GROUP BY src_ip, ja4, host;

CREATE OR REPLACE VIEW {db}.view_ai_features_1h AS
SELECT * FROM {db}.view_ai_features(hours = 1);

CREATE OR REPLACE VIEW {db}.view_ai_features_24h AS
SELECT * FROM {db}.view_ai_features(hours = 24);

-- Dashboard: traffic per minute over the last 24 hours.
CREATE OR REPLACE VIEW {db}.view_dashboard_traffic_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    countIf(kind = 'request') AS requests,
    countIf(kind = 'orphan') AS orphans,
    uniq(client_ip) AS clients,
    countIf(crawler_name != '' OR bot_ip_name != '' OR ja4_is_bot = 1) AS known_bots,
    countIf(protocol = 'HTTP/2.0') AS h2_requests
FROM {db}.http_logs
WHERE ts >= now64(6) - INTERVAL 24 HOUR
GROUP BY minute;

-- Dashboard: JA4 fingerprints of the last 24 hours with their reach.
CREATE OR REPLACE VIEW {db}.view_dashboard_top_ja4_24h AS
SELECT
    ja4,
    count() AS requests,
    uniq(client_ip) AS clients,
    uniq(asn) AS asns,
    uniq(user_agent) AS user_agents,
    any(ja4_application) AS application,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM {db}.http_logs
WHERE ts >= now64(6) - INTERVAL 24 HOUR AND ja4 != ''
GROUP BY ja4;
