-- ja4-platform schema, migration 0001: the database and the raw ingest table.
-- {db} is replaced by the configured database name (a validated identifier).
-- Every statement is idempotent; `ja4-sidecar migrate` records applied versions.

CREATE DATABASE IF NOT EXISTS {db};

-- One row per exported record (a request, or a connection without one: kind = 'orphan').
-- The landing table stores nothing itself (Null engine): the views of later migrations read
-- each inserted block (the enriched `http_logs` keeps every column) so rows are written once.
-- An insert whose views fail fails as a whole, and the sidecar spools it.
CREATE TABLE IF NOT EXISTS {db}.requests_raw
(
    ts                 DateTime64(6, 'UTC'),
    kind               LowCardinality(String),
    conn_id            UInt64,
    client_ip          IPv6,
    client_port        UInt16,
    server_ip          IPv6,
    server_port        UInt16,
    vhost              LowCardinality(String),
    method             LowCardinality(String),
    path               String,
    query              String,
    protocol           LowCardinality(String),
    status             UInt16,
    bytes_in           UInt64,
    bytes_out          UInt64,
    duration_us        UInt64,
    keepalives         UInt32,
    tls_version        LowCardinality(String),
    tls_cipher         LowCardinality(String),
    tls_sni            String,
    tls_alpn           LowCardinality(String),
    ja4                LowCardinality(String),
    ja4_r              String,
    ja4_o              String,
    ja4_ro             String,
    ja3                LowCardinality(String),
    ja3_r              String,
    ja4h               LowCardinality(String),
    ja4h_r             String,
    ja4h_o             String,
    ja4h_ro            String,
    ja4t               LowCardinality(String),
    ja4ts              LowCardinality(String),
    ja4l_c             String,
    ja4l_s             String,
    ja4s               LowCardinality(String),
    syn_ttl            UInt8,
    syn_window         UInt16,
    syn_mss            UInt16,
    syn_window_scale   UInt8,
    syn_options        Array(UInt8),
    syn_ip_id          UInt16,
    syn_dont_fragment  UInt8,
    sources            UInt8,
    header_names       Array(String),
    user_agent         String,
    accept             String,
    accept_language    String,
    accept_encoding    String,
    sec_fetch_site     LowCardinality(String),
    sec_fetch_mode     LowCardinality(String),
    sec_fetch_dest     LowCardinality(String),
    sec_fetch_user     LowCardinality(String),
    sec_ch_ua          String,
    sec_ch_ua_mobile   LowCardinality(String),
    sec_ch_ua_platform LowCardinality(String),
    has_cookie         UInt8,
    has_referer        UInt8
)
ENGINE = Null;
