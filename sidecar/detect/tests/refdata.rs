//! Reference data into the real embedded engine: generated IPLocate and iptoasn files, the
//! shipped Anubis rules and FoxIO mapping, local rule files (one with a regex the engine
//! rejects), reloaded twice without duplicates, and requests enriched by all of it — a
//! crawler user agent from its published range versus the same user agent from elsewhere.

use ja4_testkit::clock;

use ja4_core::batch::Record;
use ja4_detect::refdata::{self, Sources};
use ja4_store::{chdb::default_library, migrate, rows, Store};

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
fn reference_data_loads_reloads_and_enriches() {
    let dir = std::env::temp_dir().join(format!("ja4-refdata-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let w = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let sources = Sources {
        iplocate: Some(w(
            "ip.csv",
            "network,asn,country_code,name,org,domain\n66.249.64.0/19,AS15169,US,GOOGLE,Google LLC,google.com\n203.0.113.0/24,64501,NL,EXAMPLENET,Example BV,example.net\n",
        )),
        iptoasn: Some(w(
            "ip2asn.tsv",
            "2001:db8::\t2001:db8:ffff:ffff:ffff:ffff:ffff:ffff\t64502\tDE\tDOCNET\n198.51.100.0\t198.51.100.127\t64503\tUS\tSCANCO\n",
        )),
        asn_reputation: Some(w("rep.tsv", "asn\treputation\tscore\tnote\n64501\thosting\t0.8\tdatacenter\nAS64503\tabusive\t1.5\tout of range\n")),
        ua_rules: Some(w(
            "ua.tsv",
            "name\taction\tcategory\tregexp\nmy-scanner\tdeny\tscanner\tMyScanner/\\d+\nbroken\tdeny\tscanner\t(unclosed\n",
        )),
        country_rules: Some(w("cc.tsv", "country\tname\taction\tcategory\nDE\tde-watch\tobserve\tgeo\n")),
        ..Default::default()
    };
    let store = Store::embedded(&default_library(), &dir.join("data")).unwrap();
    migrate::migrate(&store, &migrate::Options::new("ja4r")).unwrap();
    for round in 0..2 {
        let report = refdata::load(&store, "ja4r", &sources).unwrap();
        let find = |table: &str, source: &str| {
            report
                .iter()
                .find(|l| l.table == table && l.source == source)
                .unwrap_or_else(|| panic!("{table} {source} not in {report:?}"))
        };
        assert_eq!(find("ref_ip_asn", "iplocate").rows, 2);
        assert_eq!(find("ref_ip_asn", "iptoasn").rows, 2);
        let ua = find("crawler_ua_rules", "local");
        assert_eq!((ua.rows, ua.skipped), (1, 1), "round {round}");
        assert!(ua.reasons[0].contains("broken"), "{:?}", ua.reasons);
        let rep = find("ref_asn_reputation", "local");
        assert_eq!((rep.rows, rep.skipped), (1, 1));
        assert!(find("crawler_ua_rules", "anubis").rows > 20);
        assert!(find("ref_bot_ips", "anubis").rows > 100);
        assert!(find("ref_fingerprints", "foxio").rows > 50);
    }
    // Reloading replaced rows instead of adding them.
    assert_eq!(q(&store, "SELECT count() FROM ja4r.ref_ip_asn FINAL"), "4");
    assert_eq!(
        q(
            &store,
            "SELECT count() FROM ja4r.crawler_ua_rules WHERE source = 'local'"
        ),
        "1"
    );
    let anubis_ua = q(
        &store,
        "SELECT count() FROM ja4r.crawler_ua_rules WHERE source = 'anubis'",
    );
    assert_eq!(
        anubis_ua,
        (std::fs::read_to_string(refdata::package_dir(None).join("anubis/crawler_ua_rules.tsv"))
            .unwrap()
            .lines()
            .count()
            - 1)
        .to_string()
    );

    // Requests: Googlebot from its range, the same user agent from a hosting network, our
    // local scanner rule, a python client, an IPv6 client from Germany.
    // Recent timestamps: rows past the 7-day TTL are dropped on insert.
    let now = clock::now_second_us();
    let googlebot = b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let recs: Vec<Record<&[u8]>> = vec![
        Record {
            ts_us: now,
            conn_id: 1,
            client_ip: Some("66.249.66.1".parse().unwrap()),
            user_agent: googlebot,
            ..Default::default()
        },
        Record {
            ts_us: now,
            conn_id: 2,
            client_ip: Some("203.0.113.9".parse().unwrap()),
            user_agent: googlebot,
            ..Default::default()
        },
        Record {
            ts_us: now,
            conn_id: 3,
            client_ip: Some("198.51.100.7".parse().unwrap()),
            user_agent: b"MyScanner/2",
            ..Default::default()
        },
        Record {
            ts_us: now,
            conn_id: 4,
            client_ip: Some("203.0.113.10".parse().unwrap()),
            user_agent: b"python-requests/2.31",
            ja4: b"t13d4312h1_c7886603b240_b26ce05bbdd6",
            ..Default::default()
        },
        Record {
            ts_us: now,
            conn_id: 5,
            client_ip: Some("2001:db8::7".parse().unwrap()),
            user_agent: b"Mozilla/5.0 Firefox/140.0",
            ..Default::default()
        },
    ];
    assert_eq!(
        rows::insert(&store, "ja4r", &recs).unwrap().stored,
        recs.len(),
        "fixtures stamped outside the store's retention"
    );
    assert_eq!(
        q(&store, "SELECT conn_id, asn, country, asn_reputation, bot_ip_name, bot_ip_verified, crawler_rule, crawler_name, crawler_action, ja4_application, ja4_is_bot FROM ja4r.http_logs ORDER BY conn_id"),
        [
            "1\t15169\tUS\t\tgooglebot\t1\tua\tgooglebot\tverify\t\t0",
            "2\t64501\tNL\thosting\t\t0\tua\tgooglebot\tverify\t\t0",
            "3\t64503\tUS\t\t\t0\tua\tmy-scanner\tdeny\t\t0",
            "4\t64501\tNL\thosting\t\t0\t\t\t\tPython\t1",
            "5\t64502\tDE\t\t\t0\tcountry\tde-watch\tobserve\t\t0",
        ]
        .join("\n")
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The clock guard (`scripts/clock-guard.sh`) really moved this binary's clock.
#[test]
fn clock_guard_is_in_effect() {
    clock::assert_clock_guard_in_effect();
}
