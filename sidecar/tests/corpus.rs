//! The JA4+ reference corpus: every field of every expected record must match what the library
//! computes from the captures (HTTP/2 JA4H that needs TLS keys excepted), and no connection may be
//! reported that the reference does not list.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ja4_sidecar::offline::{analyze_file, offline_flow_config, write_records, OutputOptions};
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mod_ja4/core/tests/fixtures/ja4-corpus")
}

/// Fields that document other tools' output rather than ours.
const NOT_OURS: &[&str] = &[
    "ja4ts_wireshark",
    "canonical_notes",
    "ja4h_needs_tls_decryption",
];

type Key = (String, String, u64, String, u64);

fn key(v: &Value) -> Key {
    (
        v["pcap"].as_str().unwrap().to_owned(),
        v["src"].as_str().unwrap().to_owned(),
        v["src_port"].as_u64().unwrap(),
        v["dst"].as_str().unwrap().to_owned(),
        v["dst_port"].as_u64().unwrap(),
    )
}

fn computed() -> HashMap<Key, Value> {
    let mut out = HashMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join("pcap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 32, "corpus captures missing");
    for f in files {
        let analysis = analyze_file(&f, offline_flow_config())
            .unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
        assert!(
            analysis.read_error.is_none(),
            "{}: {:?}",
            f.display(),
            analysis.read_error
        );
        let mut buf = Vec::new();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        write_records(
            &mut buf,
            &name,
            &analysis.records,
            OutputOptions {
                json: true,
                raw: false,
                original_order: false,
                facts: false,
            },
        )
        .unwrap();
        for line in String::from_utf8(buf).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert!(
                out.insert(key(&v), v).is_none(),
                "duplicate connection in {name}"
            );
        }
    }
    out
}

#[test]
fn every_expected_field_matches() {
    let got = computed();
    let expected = std::fs::read_to_string(corpus().join("expected.jsonl")).unwrap();
    let mut checked_fields = 0;
    let mut failures = Vec::new();
    let mut expected_keys = Vec::new();
    for line in expected.lines() {
        let exp: Value = serde_json::from_str(line).unwrap();
        let k = key(&exp);
        expected_keys.push(k.clone());
        let Some(rec) = got.get(&k) else {
            failures.push(format!("{k:?}: connection not reported"));
            continue;
        };
        let needs_keys = exp
            .get("ja4h_needs_tls_decryption")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for (field, want) in exp.as_object().unwrap() {
            if NOT_OURS.contains(&field.as_str()) || (needs_keys && field.starts_with("ja4h")) {
                continue;
            }
            checked_fields += 1;
            if rec.get(field) != Some(want) {
                failures.push(format!(
                    "{k:?} {field}: expected {want}, got {:?}",
                    rec.get(field)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked_fields > 2000,
        "only {checked_fields} fields checked"
    );
    let extra: Vec<_> = got.keys().filter(|k| !expected_keys.contains(k)).collect();
    assert!(
        extra.is_empty(),
        "connections the reference does not list: {extra:?}"
    );
}

#[test]
fn ja4ts_agrees_with_wireshark_plugin() {
    // The Wireshark plugin prints JA4TS for each SYN-ACK; it spells "no options" as `00`, which
    // canonical rule 8 writes as an empty field, so compare with that one difference normalised.
    let got = computed();
    let expected = std::fs::read_to_string(corpus().join("expected.jsonl")).unwrap();
    let mut compared = 0;
    for line in expected.lines() {
        let exp: Value = serde_json::from_str(line).unwrap();
        let Some(ws) = exp.get("ja4ts_wireshark").and_then(|v| v[0].as_str()) else {
            continue;
        };
        let ours = got[&key(&exp)]["ja4ts"].as_str().unwrap().to_owned();
        let ws = ws.replace("_00_00_00", "__0_0");
        assert_eq!(ours, ws, "{:?}", key(&exp));
        compared += 1;
    }
    assert!(compared >= 19);
}

#[test]
fn facts_match_fingerprints() {
    // The parsed facts the detector reads must be the ones the fingerprints were built from.
    let f = corpus().join("pcap/curl.pcap");
    let a = analyze_file(&f, offline_flow_config()).unwrap();
    let tls = a.records.iter().find(|r| r.ja4.is_some()).unwrap();
    let ch = tls.facts.client_hello.as_ref().unwrap();
    assert_eq!(ch.sni.as_deref(), Some("localhost"));
    assert_eq!(ch.alpn, vec!["h2", "http/1.1"]);
    assert_eq!(ch.version, 0x0304);
    assert_eq!(ch.ciphers.len(), 31);
    let syn = tls.facts.syn.as_ref().unwrap();
    assert_eq!(
        (syn.window, syn.mss, syn.window_scale, syn.ttl),
        (65495, Some(65495), Some(10), 64)
    );
    assert_eq!(syn.options, vec![2, 4, 8, 1, 3]);
    let sh = tls.facts.server_hello.as_ref().unwrap();
    assert_eq!((sh.version, sh.cipher), (0x0304, 0x1302));
}
