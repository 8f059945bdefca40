-- ja4-platform schema, migration 0009: where reference rows came from, and application labels
-- for every kind of fingerprint.
-- `ja4-sidecar refdata load|refresh` replaces the rows of one source at a time, so the crawler
-- rule tables and ASN reputation get a `source` column like the other reference tables.

ALTER TABLE {db}.crawler_ua_rules ADD COLUMN IF NOT EXISTS source LowCardinality(String);
ALTER TABLE {db}.crawler_ip_rules ADD COLUMN IF NOT EXISTS source LowCardinality(String);
ALTER TABLE {db}.crawler_asn_rules ADD COLUMN IF NOT EXISTS source LowCardinality(String);
ALTER TABLE {db}.crawler_country_rules ADD COLUMN IF NOT EXISTS source LowCardinality(String);
ALTER TABLE {db}.ref_asn_reputation ADD COLUMN IF NOT EXISTS source LowCardinality(String);

-- Application labels of fingerprints (FoxIO's ja4plus-mapping and local additions):
-- kind is ja4, ja4s, ja4h, ja4x, ja4t or ja4tscan.
CREATE TABLE IF NOT EXISTS {db}.ref_fingerprints
(
    kind        LowCardinality(String),
    value       String,
    application String,
    library     String,
    device      String,
    os          String,
    category    LowCardinality(String),
    is_bot      UInt8,
    notes       String,
    source      LowCardinality(String),
    updated_at  DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (kind, value);

CREATE DICTIONARY IF NOT EXISTS {db}.dict_fingerprints
(
    kind        String,
    value       String,
    application String DEFAULT '',
    category    String DEFAULT '',
    is_bot      UInt8 DEFAULT 0
)
PRIMARY KEY kind, value
SOURCE(CLICKHOUSE(DB '{db}' TABLE 'ref_fingerprints'))
LAYOUT(COMPLEX_KEY_HASHED())
LIFETIME(MIN 300 MAX 600);
