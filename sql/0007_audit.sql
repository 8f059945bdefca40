-- ja4-platform schema, migration 0007: the dashboard's audit trail.
-- Kept without TTL: an audit log that expires silently is not an audit log.

CREATE TABLE IF NOT EXISTS {db}.audit_logs
(
    ts        DateTime64(3, 'UTC') DEFAULT now64(3),
    actor     LowCardinality(String),
    role      LowCardinality(String),
    action    LowCardinality(String),
    target    String,
    success   UInt8,
    client_ip IPv6,
    details   Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, actor);
