-- ja4-platform schema, migration 0016: the connection's HTTP/2 fingerprint (mod_ja4's JA4_H2,
-- `ja4_core::h2`): `h2_fp` the Akamai string (SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-header
-- order; cut to 254 bytes and `~` when longer), `h2_fp_hash` its short form (first 12 hex
-- digits of its SHA-256). Empty for HTTP/1.x. Few distinct values: LowCardinality.
-- `consistency_flags`: what the request's stacks contradict (`ja4_core::stack::flags`): 1 a
-- browser user agent on a library TLS stack, 2 on another browser's TLS stack, 4 on a library
-- HTTP/2 stack, 8 on another browser's HTTP/2 stack, 16 a browser TLS stack under another
-- HTTP/2 stack, 32 the SYN's TTL is not the user agent's OS's.
-- http_logs first: the enrichment view selects every column of requests_raw into it.
ALTER TABLE {db}.http_logs
    ADD COLUMN IF NOT EXISTS h2_fp      LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS h2_fp_hash LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS consistency_flags UInt8 DEFAULT 0;

ALTER TABLE {db}.requests_raw
    ADD COLUMN IF NOT EXISTS h2_fp      LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS h2_fp_hash LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS consistency_flags UInt8 DEFAULT 0;
