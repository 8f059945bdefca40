-- ja4-platform schema, migration 0005: what the models write.
-- `ml_all_scores` keeps every score of every scoring run (observability of the models);
-- `ml_detected_anomalies` keeps the latest detection per (client IP, JA4, host, model): a
-- ReplacingMergeTree on that whole key, not on the IP alone, which would collapse every
-- detection of an IP into one row.

CREATE TABLE IF NOT EXISTS {db}.ml_all_scores
(
    scored_at       DateTime64(3, 'UTC'),
    window          LowCardinality(String),
    src_ip          IPv6,
    ja4             LowCardinality(String),
    host            LowCardinality(String),
    model_name      LowCardinality(String),
    model_version   LowCardinality(String),
    hits            UInt64,
    forest_score    Float32,
    ae_recon_error  Float32,
    score           Float32,
    threat_level    LowCardinality(String),
    verdict         LowCardinality(String),
    browser_family  LowCardinality(String),
    campaign_id     Int64,
    reasons         Array(String),
    features        Map(LowCardinality(String), Float32)
)
ENGINE = MergeTree
PARTITION BY toDate(scored_at)
ORDER BY (src_ip, ja4, host, scored_at)
TTL toDateTime(scored_at) + INTERVAL 7 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS {db}.ml_detected_anomalies
(
    detected_at     DateTime64(3, 'UTC'),
    window          LowCardinality(String),
    src_ip          IPv6,
    ja4             LowCardinality(String),
    host            LowCardinality(String),
    model_name      LowCardinality(String),
    model_version   LowCardinality(String),
    hits            UInt64,
    score           Float32,
    threat_level    LowCardinality(String),
    verdict         LowCardinality(String),
    browser_family  LowCardinality(String),
    campaign_id     Int64,
    asn             UInt32,
    country         LowCardinality(String),
    user_agent      String,
    reasons         Array(String),
    top_features    Map(LowCardinality(String), Float32)
)
ENGINE = ReplacingMergeTree(detected_at)
PARTITION BY toDate(detected_at)
ORDER BY (src_ip, ja4, host, model_name)
TTL toDateTime(detected_at) + INTERVAL 7 DAY
SETTINGS ttl_only_drop_parts = 1;

-- Labels analysts give (false positive, confirmed bot) feed the supervised model.
CREATE TABLE IF NOT EXISTS {db}.ml_labels
(
    labeled_at   DateTime64(3, 'UTC') DEFAULT now64(3),
    subject_kind LowCardinality(String),
    subject      String,
    label        LowCardinality(String),
    analyst      LowCardinality(String),
    note         String
)
ENGINE = ReplacingMergeTree(labeled_at)
ORDER BY (subject_kind, subject);
