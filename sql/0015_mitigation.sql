-- ja4-platform schema, migration 0015: what mod_ja4's mitigation did with each request.
-- `action`: allow, pass (a challenge pass), challenge, block, challenge_passed,
-- challenge_failed; `count:` before it when JA4Mitigation Count only said what it would do;
-- empty when mitigation was off. `action_reason`: decision, ratelimit:ip|ja4|ip+ja4.
-- `decision_verdict`/`decision_bot_score`: the sidecar's decision that named the client.
-- http_logs first: the enrichment view selects every column of requests_raw into it.
ALTER TABLE {db}.http_logs
    ADD COLUMN IF NOT EXISTS action             LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS action_reason      LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS decision_verdict   LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS decision_bot_score UInt8 DEFAULT 0;

ALTER TABLE {db}.requests_raw
    ADD COLUMN IF NOT EXISTS action             LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS action_reason      LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS decision_verdict   LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS decision_bot_score UInt8 DEFAULT 0;
