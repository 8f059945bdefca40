//! Who a client is, on the real engine: the store's feature view groups one browser's JA4
//! variants (resumed session, an HTTP/1.1 connection, a preconnect that never asks for
//! anything) into one client, keeps a different TLS stack from the same address apart, and
//! the SQL family expression agrees with `ja4_ml::identity::ja4_family` on every input.

use ja4_core::batch::{Record, RecordKind};
use ja4_detect::scoring;
use ja4_ml::identity::{ja4_family, ja4_family_sql};
use ja4_store::{chdb::default_library, migrate, rows, Store};

const FIRST: &str = "t13d1516h2_8daaf6152771_02713d6af862";
const RESUMED: &str = "t13d1517h2_8daaf6152771_b6f405a00624";
const H1: &str = "t13d1516h1_8daaf6152771_02713d6af862";
const PYTHON: &str = "t13d1812h1_85036bcba153_b26ce05bbdd6";

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn record(ip: &str, ja4: &str, kind: RecordKind, path: &str, ts: i64) -> Record<Vec<u8>> {
    Record {
        kind,
        ts_us: ts,
        conn_id: ts as u64,
        client_ip: Some(ip.parse().unwrap()),
        client_port: 40_000 + (ts % 20_000) as u16,
        vhost: if kind == RecordKind::Request {
            b"shop.example".to_vec()
        } else {
            Vec::new()
        },
        tls_sni: b"shop.example".to_vec(),
        method: b"GET".to_vec(),
        path: path.as_bytes().to_vec(),
        protocol: b"HTTP/2.0".to_vec(),
        status: 200,
        ja4: ja4.as_bytes().to_vec(),
        user_agent: b"Mozilla/5.0 (X11; Linux x86_64) Chrome/141.0".to_vec(),
        ..Default::default()
    }
}

#[test]
fn one_browser_is_one_client_across_its_ja4_variants() {
    let dir = std::env::temp_dir().join(format!("ja4-identity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::embedded(&default_library(), &dir.join("data")).unwrap();
    migrate::migrate(&store, &migrate::Options::new("ja4i")).unwrap();

    // The SQL twin agrees with the Rust definition, odd values included.
    let inputs = [
        FIRST,
        RESUMED,
        H1,
        PYTHON,
        "",
        "t13d1516h2_8daaf6152771",
        "T13D1516H2_8daaf6152771_02713d6af862",
        "t13d1516h2_8daaf6152771_02713d6af86é",
        "q13d0312h3_55b375c5d22e_06cda9e17597",
        "x'); DROP TABLE t; --",
    ];
    for j in inputs {
        let lit = j.replace('\\', "\\\\").replace('\'', "\\'");
        let sql = format!("SELECT {}", ja4_family_sql(&format!("'{lit}'")));
        let got = String::from_utf8(store.query(&sql, "TSVRaw").unwrap()).unwrap();
        assert_eq!(got.trim_end_matches('\n'), ja4_family(j), "{j}");
    }

    // One person: pages over h2, a resumed session, a fallback HTTP/1.1 connection and two
    // preconnects that never sent a request; and a Python script from the same address.
    let now = now_us();
    let mut recs = Vec::new();
    // Preconnects first: they carry no user agent, and the client's must be a request's.
    for k in 0..2 {
        let mut r = record(
            "10.9.0.1",
            FIRST,
            RecordKind::Orphan,
            "",
            now - 70_000_000 + k,
        );
        r.user_agent.clear();
        recs.push(r);
    }
    for (i, ja4) in [FIRST, FIRST, FIRST, RESUMED, RESUMED, H1]
        .iter()
        .enumerate()
    {
        recs.push(record(
            "10.9.0.1",
            ja4,
            RecordKind::Request,
            &format!("/p/{i}"),
            now - 60_000_000 + i as i64 * 1_000_000,
        ));
    }
    for i in 0..3 {
        recs.push(record(
            "10.9.0.1",
            PYTHON,
            RecordKind::Request,
            &format!("/api/{i}"),
            now - 20_000_000 + i,
        ));
    }
    let done = rows::insert(&store, "ja4i", &recs).unwrap();
    assert_eq!(done.stored, recs.len(), "{done:?}");

    let w = scoring::read_window(&store, "ja4i", 1).unwrap();
    assert_eq!(w.skipped, 0);
    assert_eq!(w.clients.len(), 2, "{:#?}", w.clients);
    let browser = w
        .clients
        .iter()
        .find(|c| c.ja4_family == ja4_family(FIRST))
        .expect("the browser is one client");
    assert_eq!(browser.hits, 8, "six requests and two preconnects");
    assert_eq!(browser.requests, 6);
    assert_eq!(
        browser.ja4, FIRST,
        "the most frequent variant represents it"
    );
    let mut variants = browser.ja4_variants.clone();
    variants.sort();
    assert_eq!(variants, [H1, FIRST, RESUMED]);
    assert_eq!(browser.host, "shop.example");
    assert!(
        browser.user_agent.contains("Chrome/141"),
        "{:?}",
        browser.user_agent
    );
    let python = w
        .clients
        .iter()
        .find(|c| c.ja4_family == ja4_family(PYTHON))
        .expect("another TLS stack is another client");
    assert_eq!((python.hits, python.ja4.as_str()), (3, PYTHON));
    let _ = std::fs::remove_dir_all(dir);
}
