-- ja4-platform schema, migration 0016: the connection's HTTP/2 fingerprint (mod_ja4's JA4_H2,
-- `ja4_core::h2`): `h2_fp` the Akamai string (SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-header
-- order; cut to 254 bytes and `~` when longer), `h2_fp_hash` its short form (first 12 hex
-- digits of its SHA-256). Empty for HTTP/1.x. Few distinct values: LowCardinality.
-- http_logs first: the enrichment view selects every column of requests_raw into it.
ALTER TABLE {db}.http_logs
    ADD COLUMN IF NOT EXISTS h2_fp      LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS h2_fp_hash LowCardinality(String) DEFAULT '';

ALTER TABLE {db}.requests_raw
    ADD COLUMN IF NOT EXISTS h2_fp      LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS h2_fp_hash LowCardinality(String) DEFAULT '';
