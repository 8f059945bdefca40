-- ja4-platform schema, migration 0002: reference data and the dictionaries over it.
-- `ja4-sidecar refdata load|refresh` fills the ref_* tables; the dictionaries read them through
-- the local server (a ClickHouse source with no host and no password: nothing secret lives here).
-- Lookups key on IPv6; IPv4 networks are stored as written ('192.0.2.0/24') and match the
-- IPv4-mapped addresses the module exports.

-- IP -> ASN / country (IPLocate or iptoasn data, one row per network in CIDR form).
CREATE TABLE IF NOT EXISTS {db}.ref_ip_asn
(
    network      String,
    asn          UInt32,
    country      LowCardinality(String),
    as_name      String,
    org          String,
    domain       String,
    source       LowCardinality(String),
    updated_at   DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY network;

CREATE DICTIONARY IF NOT EXISTS {db}.dict_ip_asn
(
    network String,
    asn     UInt32 DEFAULT 0,
    country String DEFAULT '',
    as_name String DEFAULT '',
    org     String DEFAULT ''
)
PRIMARY KEY network
SOURCE(CLICKHOUSE(DB '{db}' TABLE 'ref_ip_asn'))
LAYOUT(IP_TRIE)
LIFETIME(MIN 300 MAX 600);

-- Known bot networks (published crawler ranges, threat feeds).
CREATE TABLE IF NOT EXISTS {db}.ref_bot_ips
(
    network     String,
    bot_name    LowCardinality(String),
    category    LowCardinality(String),
    verified    UInt8,
    source      LowCardinality(String),
    updated_at  DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY network;

CREATE DICTIONARY IF NOT EXISTS {db}.dict_bot_ips
(
    network  String,
    bot_name String DEFAULT '',
    category String DEFAULT '',
    verified UInt8 DEFAULT 0
)
PRIMARY KEY network
SOURCE(CLICKHOUSE(DB '{db}' TABLE 'ref_bot_ips'))
LAYOUT(IP_TRIE)
LIFETIME(MIN 300 MAX 600);

-- Known JA4 fingerprints of tools and bots (e.g. FoxIO's ja4plus-mapping).
CREATE TABLE IF NOT EXISTS {db}.ref_bot_ja4
(
    ja4         String,
    application String,
    category    LowCardinality(String),
    is_bot      UInt8,
    source      LowCardinality(String),
    updated_at  DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY ja4;

CREATE DICTIONARY IF NOT EXISTS {db}.dict_bot_ja4
(
    ja4         String,
    application String DEFAULT '',
    category    String DEFAULT '',
    is_bot      UInt8 DEFAULT 0
)
PRIMARY KEY ja4
SOURCE(CLICKHOUSE(DB '{db}' TABLE 'ref_bot_ja4'))
LAYOUT(COMPLEX_KEY_HASHED())
LIFETIME(MIN 300 MAX 600);

-- ASN reputation: hosting / residential / known-abusive, with a score in [0, 1] (1 = worst).
CREATE TABLE IF NOT EXISTS {db}.ref_asn_reputation
(
    asn         UInt64,
    reputation  LowCardinality(String),
    score       Float32,
    note        String,
    updated_at  DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY asn;

CREATE DICTIONARY IF NOT EXISTS {db}.dict_asn_reputation
(
    asn        UInt64,
    reputation String DEFAULT '',
    score      Float32 DEFAULT 0
)
PRIMARY KEY asn
SOURCE(CLICKHOUSE(DB '{db}' TABLE 'ref_asn_reputation'))
LAYOUT(HASHED())
LIFETIME(MIN 300 MAX 600);

-- Crawler rules. User-agent rules are a regexp tree (id, parent_id, regexp, keys, values) with
-- the keys `name`, `action` (allow|challenge|deny|observe), `category`; a child rule refines
-- its parent. IP, ASN and country rules are plain keyed tables.
CREATE TABLE IF NOT EXISTS {db}.crawler_ua_rules
(
    id        UInt64,
    parent_id UInt64,
    regexp    String,
    keys      Array(String),
    values    Array(String)
)
ENGINE = ReplacingMergeTree
ORDER BY id;

-- A REGEXP_TREE dictionary without any expression fails every lookup (and with it every
-- insert through the enrichment view), so the table always holds one rule that cannot match a
-- user agent (HTTP forbids NUL in header values). Loaders keep it.
INSERT INTO {db}.crawler_ua_rules (id, parent_id, regexp, keys, values)
SELECT 18446744073709551615, 0, '^\\x00ja4-platform-sentinel\\x00$', ['name'], ['']
WHERE (SELECT count() FROM {db}.crawler_ua_rules WHERE id = 18446744073709551615) = 0;

CREATE DICTIONARY IF NOT EXISTS {db}.dict_crawler_ua
(
    regexp   String,
    name     String DEFAULT '',
    action   String DEFAULT '',
    category String DEFAULT ''
)
PRIMARY KEY regexp
SOURCE(CLICKHOUSE(DB '{db}' TABLE 'crawler_ua_rules'))
LAYOUT(REGEXP_TREE)
LIFETIME(MIN 300 MAX 600);

CREATE TABLE IF NOT EXISTS {db}.crawler_ip_rules
(
    network   String,
    name      LowCardinality(String),
    action    LowCardinality(String),
    category  LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY network;

CREATE DICTIONARY IF NOT EXISTS {db}.dict_crawler_ip
(
    network  String,
    name     String DEFAULT '',
    action   String DEFAULT '',
    category String DEFAULT ''
)
PRIMARY KEY network
SOURCE(CLICKHOUSE(DB '{db}' TABLE 'crawler_ip_rules'))
LAYOUT(IP_TRIE)
LIFETIME(MIN 300 MAX 600);

CREATE TABLE IF NOT EXISTS {db}.crawler_asn_rules
(
    asn       UInt64,
    name      LowCardinality(String),
    action    LowCardinality(String),
    category  LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY asn;

CREATE DICTIONARY IF NOT EXISTS {db}.dict_crawler_asn
(
    asn      UInt64,
    name     String DEFAULT '',
    action   String DEFAULT '',
    category String DEFAULT ''
)
PRIMARY KEY asn
SOURCE(CLICKHOUSE(DB '{db}' TABLE 'crawler_asn_rules'))
LAYOUT(HASHED())
LIFETIME(MIN 300 MAX 600);

CREATE TABLE IF NOT EXISTS {db}.crawler_country_rules
(
    country   String,
    name      LowCardinality(String),
    action    LowCardinality(String),
    category  LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY country;

CREATE DICTIONARY IF NOT EXISTS {db}.dict_crawler_country
(
    country  String,
    name     String DEFAULT '',
    action   String DEFAULT '',
    category String DEFAULT ''
)
PRIMARY KEY country
SOURCE(CLICKHOUSE(DB '{db}' TABLE 'crawler_country_rules'))
LAYOUT(COMPLEX_KEY_HASHED())
LIFETIME(MIN 300 MAX 600);
