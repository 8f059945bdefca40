-- The detector's per-client features, generated from the feature registry
-- (`ml/src/features/mod.rs`, `{ml_features}` below): each feature is defined there once, and
-- this view is re-created by every `migrate` so that it always matches the binary reading it.
-- Identity and context columns stay as 0006 defined them.
-- reapply
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
    {ml_features},
    any(asn) AS asn,
    any(country) AS country,
    any(user_agent) AS sample_user_agent
FROM {db}.http_logs
WHERE ts >= now64(6) - toIntervalHour({hours:UInt32})
GROUP BY src_ip, ja4, host;

-- The fixed windows read through the view; re-created with it so that they carry its columns.
CREATE OR REPLACE VIEW {db}.view_ai_features_1h AS
SELECT * FROM {db}.view_ai_features(hours = 1);

CREATE OR REPLACE VIEW {db}.view_ai_features_24h AS
SELECT * FROM {db}.view_ai_features(hours = 24);
