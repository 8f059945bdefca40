//! The schema of `sql/` on the real embedded engine: migrations apply cleanly twice, the
//! enrichment view fills `http_logs` from the dictionaries, the aggregate views fill the
//! hourly tables, the feature views compute known values for seeded traffic, the ML tables keep
//! one detection per (IP, JA4, host, model), and the cluster and access-control variants of
//! every statement parse (`formatQuery`).

use ja4_store::{chdb::default_library, migrate, Store};

/// The statements of `tests/fixtures/seed.sql` for database `db`.
pub fn seed_statements(db: &str) -> Vec<String> {
    let text: String = include_str!("fixtures/seed.sql")
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(";\n")
        .map(|s| s.trim().trim_end_matches(';').replace("{db}", db))
        .filter(|s| !s.is_empty())
        .collect()
}

fn q(store: &Store, sql: &str) -> String {
    String::from_utf8(
        store
            .query(sql, "TSV")
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
    )
    .unwrap()
    .trim_end()
    .to_owned()
}

#[test]
fn schema_applies_twice_and_derived_tables_fill() {
    let dir = std::env::temp_dir().join(format!("ja4-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::embedded(&default_library(), &dir).unwrap();
    let opts = migrate::Options::new("ja4s");
    let all: Vec<u32> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(migrate::migrate(&store, &opts).unwrap(), all);
    assert!(migrate::migrate(&store, &opts).unwrap().is_empty());
    // The feature view is generated from the registry and re-created by every migrate: a
    // stale one is replaced, and nothing is reported as newly applied.
    store
        .execute("CREATE OR REPLACE VIEW ja4s.view_ai_features AS SELECT 1 AS stale")
        .unwrap();
    assert!(migrate::migrate(&store, &opts).unwrap().is_empty());
    let header = q(
        &store,
        "SELECT * FROM ja4s.view_ai_features(hours = 1) LIMIT 0 FORMAT TSVWithNames",
    );
    let columns: Vec<&str> = header.split('\t').collect();
    for (f, _) in ja4_ml::features::sql_features() {
        assert!(columns.contains(&f.name), "{} missing: {header}", f.name);
    }
    assert!(!columns.contains(&"stale"));
    // Re-running every statement of every migration (not just the pending ones) is harmless.
    for (_, stmts) in migrate::plan(&migrate::Options {
        skip_access: true,
        ..opts.clone()
    })
    .unwrap()
    {
        for s in stmts {
            store.execute(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }
    assert_eq!(migrate::applied(&store, "ja4s").unwrap(), all);

    for s in seed_statements("ja4s") {
        store.execute(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
    }

    // Enrichment: ASN/country, reputation, known bot IP and JA4, the crawler rule that won.
    assert_eq!(
        q(&store, "SELECT toString(client_ip), toString(client_net), asn, country, as_name, asn_reputation, bot_ip_name, bot_ip_verified, ja4_application, ja4_is_bot, crawler_rule, crawler_name, crawler_action FROM ja4s.http_logs WHERE client_port IN (0, 40000) ORDER BY client_ip"),
        [
            "::ffff:66.249.66.1\t::ffff:66.249.66.0\t15169\tUS\tGOOGLE\tsearch\tgooglebot\t1\t\t0\tua\tgooglebot\tallow",
            "::ffff:198.51.100.9\t::ffff:198.51.100.0\t64503\tUS\tSCANCO\t\t\t0\t\t0\tip\tscanner-net\tdeny",
            "::ffff:203.0.113.7\t::ffff:203.0.113.0\t64501\tNL\tEXAMPLENET\thosting\t\t0\tpython-requests\t1\tua\tpython-requests\tchallenge",
            "::ffff:203.0.113.8\t::ffff:203.0.113.0\t64501\tNL\tEXAMPLENET\thosting\t\t0\t\t0\tasn\texamplenet\tobserve",
            "2001:db8::5\t2001:db8::\t64502\tDE\tDOCNET\t\t\t0\t\t0\tcountry\tde-traffic\tobserve",
        ]
        .join("\n")
    );
    assert_eq!(q(&store, "SELECT count(), sum(is_asset), max(path_depth), any(header_count) FROM ja4s.http_logs WHERE client_ip = toIPv6('::ffff:203.0.113.7')"), "20\t2\t2\t3");

    // Hourly aggregates, filled by their materialized views.
    assert_eq!(
        q(&store, "SELECT sum(hits), sum(posts), sum(errors_4xx), sum(assets), uniqMerge(paths), uniqMerge(user_agents) FROM ja4s.agg_host_ip_ja4_1h WHERE client_ip = toIPv6('::ffff:203.0.113.7')"),
        "20\t5\t4\t2\t6\t1"
    );
    assert_eq!(
        q(&store, "SELECT sum(orphans) FROM ja4s.agg_host_ip_ja4_1h"),
        "1"
    );
    assert_eq!(
        q(&store, "SELECT sum(hits), uniqMerge(clients), any(header_names) FROM ja4s.agg_header_fingerprint_1h WHERE ja4h = 'ge11nn030000_a6e4e8e0a9c1_000000000000_000000000000'"),
        "20\t1\t['Host','User-Agent','Accept']"
    );

    // Features of client A over 1 h and 24 h (same traffic, same values), under the
    // registry's names (the view is generated from it).
    for view in ["view_ai_features_1h", "view_ai_features_24h"] {
        assert_eq!(
            q(&store, &format!("SELECT hits, post_ratio, path_diversity, asset_ratio, error_4xx_ratio, round(fuzzing_index, 4), direct_access_ratio, alpn_mismatch_ratio, header_count, round(exp(log_user_agents) - 1, 6), ttl_mean, window_mss_ratio > 43, port_density FROM ja4s.{view} WHERE src_ip = toIPv6('::ffff:203.0.113.7')")),
            "20\t0.25\t0.3\t0.1\t0.2\t0.1667\t1\t1\t3\t1\t64\t1\t1",
            "{view}"
        );
    }
    assert_eq!(
        q(&store, "SELECT count() FROM ja4s.view_ai_features_1h"),
        "5"
    );
    assert_eq!(q(&store, "SELECT sum(requests), sum(orphans), sum(known_bots) FROM ja4s.view_dashboard_traffic_1m"), "23\t1\t24");
    assert_eq!(q(&store, "SELECT application, requests FROM ja4s.view_dashboard_top_ja4_24h WHERE ja4 = 't13d190900_9dc949149365_97f8aa674fd9'"), "python-requests\t20");

    // Detections: one row per (IP, JA4, host, model) after merges, the newest one kept; a
    // second host of the same IP is a second detection (ORDER BY (src_ip) collapsed them).
    store.execute("INSERT INTO ja4s.ml_detected_anomalies (detected_at, src_ip, ja4, host, model_name, score, top_features) VALUES (now64(3) - 60, toIPv6('::ffff:203.0.113.7'), 'j', 'a.example', 'eif', 0.7, {'hits': 1.5}), (now64(3), toIPv6('::ffff:203.0.113.7'), 'j', 'a.example', 'eif', 0.9, {'hits': 2.5}), (now64(3), toIPv6('::ffff:203.0.113.7'), 'j', 'b.example', 'eif', 0.8, {}), (now64(3) - INTERVAL 8 DAY, toIPv6('::ffff:198.51.100.9'), 'j', 'a.example', 'eif', 0.8, {})").unwrap();
    assert_eq!(
        q(&store, "SELECT host, score, top_features['hits'] FROM ja4s.ml_detected_anomalies FINAL WHERE src_ip = toIPv6('::ffff:203.0.113.7') ORDER BY host"),
        "a.example\t0.9\t2.5\nb.example\t0.8\t0"
    );
    // Recurrence covers 7 days only: the 8-day-old detection does not count.
    assert_eq!(q(&store, "SELECT toString(src_ip), detections, hosts FROM ja4s.view_ip_recurrence ORDER BY src_ip"), "::ffff:203.0.113.7\t2\t2");

    // Every cluster and access-control statement parses on this engine.
    let server = migrate::Options {
        cluster: Some("ja4_cluster".into()),
        data_writer_password: Some("w".into()),
        analyst_password: Some("a".into()),
        ..opts.clone()
    };
    let mut checked = 0;
    for (_, stmts) in migrate::plan(&server).unwrap() {
        for s in stmts {
            let lit = ja4_store::server::quote(&s);
            store
                .query(&format!("SELECT formatQuery({lit})"), "TSV")
                .unwrap_or_else(|e| panic!("does not parse: {s}\n{e}"));
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
