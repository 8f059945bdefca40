-- The detector's per-client features, generated from the feature registry
-- (`ml/src/features/mod.rs`, `{ml_features}` below): each feature is defined there once, and
-- this view is re-created by every `migrate` so that it always matches the binary reading it.
-- A client is (address, JA4 family, host) (`ml/src/identity.rs`, `{ja4_family}` below): one
-- browser's resumed sessions, h1/h2 connections and preconnects are one client.
-- reapply
CREATE OR REPLACE VIEW {db}.view_ai_features AS
SELECT
    client_ip AS src_ip,
    {ja4_family} AS ja4_family,
    -- The client's most frequent exact JA4 (labels and lists look it up) and its variants.
    topK(1)(ja4)[1] AS main_ja4,
    groupUniqArray(16)(ja4) AS ja4_variants,
    -- Connections without a request have no virtual host: they count under the name the
    -- client asked for in its hello, beside that client's requests.
    if(vhost = '', tls_sni, toString(vhost)) AS host,
    count() AS hits,
    countIf(kind = 'request') AS requests,
    min(ts) AS first_seen,
    max(ts) AS last_seen,
    {ml_features},
    any(asn) AS asn,
    any(country) AS country,
    -- A request's user agent: connections without a request (preconnects) carry none.
    anyIf(user_agent, kind = 'request' AND user_agent != '') AS sample_user_agent
FROM {db}.http_logs
WHERE ts >= now64(6) - toIntervalHour({hours:UInt32})
GROUP BY src_ip, ja4_family, host;

-- The fixed windows read through the view; re-created with it so that they carry its columns.
CREATE OR REPLACE VIEW {db}.view_ai_features_1h AS
SELECT * FROM {db}.view_ai_features(hours = 1);

CREATE OR REPLACE VIEW {db}.view_ai_features_24h AS
SELECT * FROM {db}.view_ai_features(hours = 24);
