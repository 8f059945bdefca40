-- ja4-platform schema, migration 0010: analysts' allow and deny lists (dashboard actions).
-- One row per (kind, value); a removal is a newer row with active = 0, so the history of an
-- entry stays in the audit log and nothing an analyst stored disappears without a trace.
-- Kept without TTL.

CREATE TABLE IF NOT EXISTS {db}.access_lists
(
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kind       LowCardinality(String),
    value      String,
    action     LowCardinality(String),
    active     UInt8,
    analyst    LowCardinality(String),
    note       String
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (kind, value);
