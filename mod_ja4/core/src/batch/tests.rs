//! The batch format's tests: round trips, framing, hostile input, JSON.

use super::json::*;
use super::*;

fn sample() -> Record<&'static [u8]> {
    Record {
        kind: RecordKind::Request,
        ts_us: 1_763_700_000_123_456,
        conn_id: 42,
        client_ip: Some("2001:db8::1".parse().unwrap()),
        client_port: 50_000,
        server_ip: Some("127.0.0.1".parse().unwrap()),
        server_port: 443,
        vhost: b"www.example.com",
        method: b"GET",
        path: b"/a\"b",
        query: b"x=1",
        protocol: b"HTTP/2.0",
        status: 200,
        bytes_in: 512,
        bytes_out: 10_000,
        duration_us: 1234,
        keepalives: 3,
        tls_version: b"TLSv1.3",
        ja4: b"t13d1516h2_8daaf6152771_e5627efa2ab1",
        ja4h: b"ge20cn13enus_974ebe531c03_b66fa821d02c_e97928733c74",
        ja4t: b"64240_2-1-3-1-1-4_1460_8",
        syn: Some(SynRecord {
            ttl: 64,
            window: 64240,
            mss: Some(1460),
            window_scale: Some(8),
            options: vec![2, 1, 3, 1, 1, 4],
            ip_id: Some(0),
            dont_fragment: true,
        }),
        sources: SOURCE_INLINE_HELLO | SOURCE_SAVED_SYN,
        header_names: b"user-agent,accept,Cookie",
        cookie: b"b=2; a=1",
        user_agent: b"Mozilla/5.0 \xff\n",
        has_cookie: true,
        ..Default::default()
    }
}

fn owned(r: &Record<&[u8]>) -> OwnedRecord {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    OwnedRecord {
        kind: r.kind,
        ts_us: r.ts_us,
        conn_id: r.conn_id,
        client_ip: r.client_ip,
        client_port: r.client_port,
        server_ip: r.server_ip,
        server_port: r.server_port,
        vhost: s(r.vhost),
        method: s(r.method),
        path: s(r.path),
        query: s(r.query),
        protocol: s(r.protocol),
        status: r.status,
        bytes_in: r.bytes_in,
        bytes_out: r.bytes_out,
        duration_us: r.duration_us,
        keepalives: r.keepalives,
        tls_version: s(r.tls_version),
        ja4: s(r.ja4),
        ja4h: s(r.ja4h),
        ja4t: s(r.ja4t),
        syn: r.syn.clone(),
        sources: r.sources,
        header_names: s(r.header_names),
        cookie: s(r.cookie),
        user_agent: s(r.user_agent),
        has_cookie: r.has_cookie,
        ..Default::default()
    }
}

#[test]
fn round_trip_through_a_frame() {
    let recs = [
        sample(),
        Record {
            kind: RecordKind::Orphan,
            ts_us: -5,
            client_ip: None,
            ..sample()
        },
    ];
    let mut payload = Vec::new();
    for r in &recs {
        r.encode(&mut payload);
    }
    let f = frame(&payload, 2);
    let (back, used) = decode_frame(&f).unwrap();
    assert_eq!(used, f.len());
    for (got, want) in back.iter().zip(&recs) {
        let mut want = owned(want);
        want.derive_ja4h_raw();
        assert_eq!(got, &want);
    }
}

#[test]
fn corrupt_frames_are_errors() {
    let mut payload = Vec::new();
    sample().encode(&mut payload);
    let f = frame(&payload, 1);
    assert_eq!(decode_frame(&f[..10]), Err(BatchError::Incomplete));
    assert_eq!(decode_frame(&f[..f.len() - 1]), Err(BatchError::Incomplete));
    let mut bad = f.clone();
    bad[0] = b'X';
    assert_eq!(decode_frame(&bad), Err(BatchError::BadMagic));
    let mut bad = f.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    assert_eq!(decode_frame(&bad), Err(BatchError::Checksum));
    let mut bad = f.clone();
    bad[8] = 2;
    assert_eq!(
        decode_frame(&bad),
        Err(BatchError::Count {
            declared: 2,
            found: 1
        })
    );
    let mut bad = f.clone();
    bad[4] = 9;
    assert_eq!(decode_frame(&bad), Err(BatchError::Version(9)));
    let mut huge = f.clone();
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(decode_frame(&huge), Err(BatchError::TooLarge(_))));
}

#[test]
fn frames_built_in_place_equal_frame_of_the_payload() {
    let mut buf = Vec::new();
    begin_frame(&mut buf);
    for i in 0..3 {
        Record {
            status: 200 + i,
            ..sample()
        }
        .encode(&mut buf);
    }
    let payload = buf[HEADER_LEN..].to_vec();
    let mut plain = buf.clone();
    finish_frame(&mut buf, 3, true);
    assert_eq!(buf, frame(&payload, 3));
    // Without a checksum: the same records, flag clear, nothing verified.
    finish_frame(&mut plain, 3, false);
    assert_eq!(plain[6..8], [0, 0]);
    assert_eq!(decode_frame(&plain).unwrap(), decode_frame(&buf).unwrap());
    let n = plain.len();
    plain[n - 1] ^= 0x55;
    assert!(!matches!(decode_frame(&plain), Err(BatchError::Checksum)));
    let mut empty = Vec::new();
    begin_frame(&mut empty);
    finish_frame(&mut empty, 0, true);
    assert_eq!(empty, frame(&[], 0));
}

#[test]
fn connection_segments_are_shared_within_a_frame() {
    let a = sample();
    let mut seg = Vec::new();
    a.connection_segment(&mut seg);
    // Later requests of the same connection: other request fields, same connection ones.
    let b = Record {
        path: &b"/next"[..],
        status: 404,
        ja4h: b"ge11nn010000_000000000000_000000000000_000000000000",
        ..sample()
    };
    let mut big_path = vec![b'p'; 20_000];
    big_path[0] = b'/';
    let c = Record {
        path: &big_path[..],
        ..sample()
    };
    for r in [&a, &b, &c] {
        let (mut plain, mut cached) = (vec![7u8], vec![7u8]);
        r.encode(&mut plain);
        r.encode_with(&mut cached, 1, Segment::Bytes(&seg));
        assert_eq!(plain, cached);
    }
    // In one frame: the first record carries the segment, the others name it.
    for first in [&a, &c] {
        let mut buf = Vec::new();
        begin_frame(&mut buf);
        let other = Record {
            conn_id: 7,
            ja4: &b"t13d0000h1_000000000000_000000000000"[..],
            ..sample()
        };
        other.encode(&mut buf);
        let at = first.encode_with(&mut buf, HEADER_LEN, Segment::Bytes(&seg));
        b.encode_with(&mut buf, HEADER_LEN, Segment::Ref(at));
        c.encode_with(&mut buf, HEADER_LEN, Segment::Ref(at));
        finish_frame(&mut buf, 4, true);
        let (back, _) = decode_frame(&buf).unwrap();
        assert_eq!(back[0].ja4, "t13d0000h1_000000000000_000000000000");
        for (got, want) in back[1..].iter().zip([first, &b, &c]) {
            let mut want = owned(want);
            want.derive_ja4h_raw();
            assert_eq!(got, &want);
        }
        // A reference to anything but an earlier segment is an error, not a panic.
        let mut bad = Vec::new();
        begin_frame(&mut bad);
        first.encode(&mut bad);
        b.encode_with(&mut bad, HEADER_LEN, Segment::Ref(at + 1));
        finish_frame(&mut bad, 2, true);
        assert!(matches!(
            decode_frame(&bad),
            Err(BatchError::Record { index: 1, .. })
        ));
    }
    // Length prefixes of one, two and three bytes all decode.
    for n in [0usize, 100, 20_000] {
        let big = Record {
            path: &*Box::leak(vec![b'p'; n].into_boxed_slice()),
            ..Record::default()
        };
        let mut payload = Vec::new();
        big.encode(&mut payload);
        let (back, _) = decode_frame(&frame(&payload, 1)).unwrap();
        assert_eq!(back[0].path.len(), n);
    }
}

#[test]
fn strings_given_whole_equal_the_record_encoding() {
    // The module's way: the strings as the request holds them, the request line as sent.
    let rec = sample();
    let mut line = Vec::new();
    rec.write_request_line(&mut line);
    assert_eq!(line, b"GET /a\"b?x=1 HTTP/2.0");
    let mut strings: [&[u8]; STRINGS] = [b""; STRINGS];
    strings[S_VHOST] = rec.vhost;
    strings[S_REQUEST_LINE] = &line;
    strings[S_HEADER_NAMES] = rec.header_names;
    strings[S_PICKED] = rec.user_agent;
    strings[S_COOKIE] = rec.cookie;
    strings[S_JA4H] = rec.ja4h;
    let mut seg = Vec::new();
    rec.connection_segment(&mut seg);
    let mut out = vec![0xEE; 3];
    let at = write_record(
        &mut out,
        3,
        &rec.head(),
        Segment::Bytes(&seg),
        &strings,
        &[],
    );
    assert_eq!(at as usize, 4 + HEAD_LEN);
    let mut want = Vec::new();
    rec.encode(&mut want);
    assert_eq!(out[3..], want);
    // The strings block: a length per string (zero for the empty ones), then the bytes.
    let block = &out[3 + 4 + HEAD_LEN + seg.len()..];
    let lens: Vec<u32> = (0..STRINGS)
        .map(|i| u32::from_le_bytes(block[4 * i..4 * i + 4].try_into().unwrap()))
        .collect();
    let want: Vec<u32> = strings.iter().map(|s| s.len() as u32).collect();
    assert_eq!(lens, want);
    assert_eq!(block.len(), TABLE_LEN + want.iter().sum::<u32>() as usize);
    assert!(block.ends_with(rec.ja4h));
}

#[test]
fn ja4h_raw_forms_are_derived_unless_sent() {
    let (back, _) = {
        let mut p = Vec::new();
        sample().encode(&mut p);
        decode_frame(&frame(&p, 1)).unwrap()
    };
    // Parts a and b come from the JA4H sent; c and d from the Cookie value.
    use crate::hash::hash12;
    let r = &back[0];
    assert_eq!(r.ja4h_r, "ge20cn13enus_user-agent,accept_a,b_a=1,b=2");
    assert_eq!(r.ja4h_ro, "ge20cn13enus_user-agent,accept_b,a_b=2,a=1");
    let c = String::from_utf8(hash12(b"b,a").to_vec()).unwrap();
    let d = String::from_utf8(hash12(b"b=2,a=1").to_vec()).unwrap();
    assert_eq!(r.ja4h_o, format!("{}_{c}_{d}", &r.ja4h[..25]));
    // Explicit raw forms (a spooled record) are kept as they are.
    let explicit = Record {
        ja4h_r: &b"given"[..],
        ..sample()
    };
    let mut p = Vec::new();
    explicit.encode(&mut p);
    let (back, _) = decode_frame(&frame(&p, 1)).unwrap();
    assert_eq!(back[0].ja4h_r, "given");
    assert_eq!(back[0].ja4h_o, "");
}

#[test]
fn newer_trailers_are_skipped_and_mitigation_round_trips() {
    use crate::decisions::Verdict;
    // A trailer with a tag this decoder does not know (a newer module's) is skipped.
    let mut payload = Vec::new();
    sample().encode(&mut payload);
    let body_len = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
    assert_eq!(body_len + 4, payload.len());
    payload.extend_from_slice(&[9, 3, b'n', b'e', b'w']);
    payload[..4].copy_from_slice(&((body_len + 5) as u32).to_le_bytes());
    let (back, _) = decode_frame(&frame(&payload, 1)).unwrap();
    let mut want = owned(&sample());
    want.derive_ja4h_raw();
    assert_eq!(back[0], want);
    // A trailer longer than its record is an error, not a read past it.
    let mut bad = Vec::new();
    sample().encode(&mut bad);
    bad.extend_from_slice(&[9, 200, 1]);
    bad[..4].copy_from_slice(&((body_len + 3) as u32).to_le_bytes());
    assert!(decode_frame(&frame(&bad, 1)).is_err());
    // The mitigation trailer: present only when mitigation was on, and back as it went.
    let m = Mitigation {
        action: MitigationAction::Challenge,
        counted: true,
        reason: MitigationReason::Decision,
        verdict: Some(Verdict::Suspicious),
        bot_score: 17,
    };
    let with = Record {
        mitigation: m,
        ..sample()
    };
    let mut p2 = Vec::new();
    with.encode(&mut p2);
    assert_eq!(p2.len(), payload.len() - 5 + MITIGATION_TRAILER_LEN);
    let (back, _) = decode_frame(&frame(&p2, 1)).unwrap();
    assert_eq!(back[0].mitigation, m);
    let mut json = Vec::new();
    with.write_json(&mut json);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["action"], "count:challenge");
    assert_eq!(v["action_reason"], "decision");
    assert_eq!(v["decision_verdict"], "suspicious");
    assert_eq!(v["decision_bot_score"], 17);
    // Every action and reason survives the trailer.
    for a in 0..=7u8 {
        for counted in [false, true] {
            let t = [
                TRAILER_MITIGATION,
                4,
                a | if counted { 0x80 } else { 0 },
                2,
                0,
                0,
            ];
            let m = Mitigation::from_trailer(&t[2..]).unwrap();
            assert_eq!(m.trailer(), t);
        }
    }
    assert_eq!(Mitigation::from_trailer(&[8, 0, 0, 0]), None);
    let mut plain = Vec::new();
    sample().write_json(&mut plain);
    assert!(!String::from_utf8_lossy(&plain).contains("\"action\""));
}

#[test]
fn hostile_records_are_errors() {
    let mut p = Vec::new();
    sample().encode(&mut p);
    // Every truncation of the body is an error, never a panic.
    for cut in 4..p.len() {
        let mut q = p[..cut].to_vec();
        q[..4].copy_from_slice(&((cut - 4) as u32).to_le_bytes());
        assert!(decode_frame(&frame(&q, 1)).is_err(), "cut at {cut}");
    }
    // A length beyond the payload.
    let mut q = p.clone();
    q[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode_frame(&frame(&q, 1)).is_err());
}

#[test]
fn json_strings_round_trip_through_a_json_parser() {
    let cases: [&[u8]; 9] = [
        b"",
        b"plain ascii",
        b"quote \" back \\ tab \t nl \n cr \r",
        b"\x00\x01\x1f\x7f",
        "caf\u{e9} \u{1f600}".as_bytes(),
        b"bad \xff utf8 \"then quote\"",
        b"\xc3",
        b"ascii then \xe2\x82\xac euro and \\",
        &[b'a'; 300],
    ];
    for c in cases {
        let mut o = Vec::new();
        json_str(&mut o, c);
        let back: String = serde_json::from_slice(&o).unwrap();
        assert_eq!(back, String::from_utf8_lossy(c), "{c:?}");
    }
    // The word-at-a-time scan finds the same byte as a plain scan, wherever it sits.
    for len in 0..40 {
        for at in 0..len {
            for special in [0u8, 0x1f, b'"', b'\\', 0x80, 0xff] {
                let mut v = vec![b'x'; len];
                v[at] = special;
                if at + 1 < len {
                    v[at + 1] = 0x7f;
                }
                assert_eq!(first_special(&v), Some(at), "{v:?}");
            }
        }
        assert_eq!(first_special(&vec![b' '; len]), None);
        assert_eq!(first_special(&vec![0x7f; len]), None);
    }
    for v in [0u64, 9, 10, 65535, u64::MAX] {
        let mut o = Vec::new();
        put_u64(&mut o, v);
        assert_eq!(o, v.to_string().as_bytes());
    }
    let mut o = Vec::new();
    put_i64(&mut o, i64::MIN);
    assert_eq!(o, i64::MIN.to_string().as_bytes());
}

#[test]
fn json_is_valid_and_escaped() {
    let mut o = Vec::new();
    sample().write_json(&mut o);
    assert_eq!(o.last(), Some(&b'\n'));
    let v: serde_json::Value = serde_json::from_slice(&o).unwrap();
    assert_eq!(v["path"], "/a\"b");
    assert_eq!(v["user_agent"], "Mozilla/5.0 \u{fffd}\n");
    assert_eq!(v["client_ip"], "2001:db8::1");
    assert_eq!(v["syn"]["options"], serde_json::json!([2, 1, 3, 1, 1, 4]));
    assert_eq!(v["ja4"], "t13d1516h2_8daaf6152771_e5627efa2ab1");
    assert!(v.get("ja3").is_none(), "empty fields are left out");
    let mut o = Vec::new();
    json_str(&mut o, b"a\x01\x1f\\\"\t\xe2\x80\xa8\xc3");
    let back: String = serde_json::from_slice(&o).unwrap();
    assert_eq!(back, "a\u{1}\u{1f}\\\"\t\u{2028}\u{fffd}");
}

#[test]
fn request_lines_split_as_httpd_parses_them() {
    let cases: [(&[u8], [&[u8]; 4]); 12] = [
        (b"GET / HTTP/1.1", [b"GET", b"/", b"", b"HTTP/1.1"]),
        (
            b"GET /a/b?x=1&y HTTP/2.0",
            [b"GET", b"/a/b", b"x=1&y", b"HTTP/2.0"],
        ),
        (b"GET /a?b?c HTTP/1.1", [b"GET", b"/a", b"b?c", b"HTTP/1.1"]),
        (b"GET /a#frag?x HTTP/1.1", [b"GET", b"/a", b"", b"HTTP/1.1"]),
        (b"GET /a? HTTP/1.0", [b"GET", b"/a", b"", b"HTTP/1.0"]),
        (
            b"GET http://h.example:8080/p?q HTTP/1.1",
            [b"GET", b"/p", b"q", b"HTTP/1.1"],
        ),
        (
            b"GET http://h.example HTTP/1.1",
            [b"GET", b"", b"", b"HTTP/1.1"],
        ),
        (b"OPTIONS * HTTP/1.1", [b"OPTIONS", b"*", b"", b"HTTP/1.1"]),
        (
            b"CONNECT h.example:443 HTTP/1.1",
            [b"CONNECT", b"", b"", b"HTTP/1.1"],
        ),
        (b"GET /old", [b"GET", b"/old", b"", b"HTTP/0.9"]),
        (b"GET  /sp   HTTP/1.1", [b"GET", b"/sp", b"", b"HTTP/1.1"]),
        (b"", [b"", b"", b"", b""]),
    ];
    for (line, [m, p, q, v]) in cases {
        assert_eq!(
            split_request_line(line),
            (m, p, q, v),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    // Whatever the bytes, parts are slices of the line (no panic, no allocation).
    for line in [
        &b" "[..],
        b"  ",
        b"GET",
        b"? ?",
        b"://",
        b"a ://x b",
        b"\xff \x00 \n",
    ] {
        let (m, p, q, v) = split_request_line(line);
        assert!(m.len() + p.len() + q.len() <= line.len() + 8 && v.len() <= 8);
    }
    // A record's method, path, query and protocol survive the wire.
    let rec = Record {
        method: &b"POST"[..],
        path: b"/login",
        query: b"next=/a b",
        protocol: b"HTTP/1.1",
        ..sample()
    };
    let mut p = Vec::new();
    rec.encode(&mut p);
    let (back, _) = decode_frame(&frame(&p, 1)).unwrap();
    assert_eq!(
        (
            &*back[0].method,
            &*back[0].path,
            &*back[0].query,
            &*back[0].protocol
        ),
        ("POST", "/login", "next=/a b", "HTTP/1.1")
    );
}

#[test]
fn header_roles() {
    for (i, n) in PICKED_HEADERS.iter().enumerate() {
        assert_eq!(header_role(n), HeaderRole::Picked(i));
        assert_eq!(
            header_role(n.to_ascii_uppercase().as_slice()),
            HeaderRole::Picked(i)
        );
    }
    assert_eq!(header_role(b"Cookie"), HeaderRole::Cookie);
    assert_eq!(header_role(b"REFERER"), HeaderRole::Referer);
    for other in [
        &b""[..],
        b"Host",
        b"cookies",
        b"Accept-Charset",
        b"sec-fetch-xxxx",
        b"x",
        b"Accept_Language",
        b"user\ragent",
        b"sec-ch-ua-mobilE\x00",
        b"COOKIe\x00",
    ] {
        assert_eq!(header_role(other), HeaderRole::Other, "{other:?}");
    }
    // Word-wide comparison equals the byte-wise rule for every one-byte change.
    let naive = |n: &[u8]| {
        if n.eq_ignore_ascii_case(b"cookie") {
            HeaderRole::Cookie
        } else if n.eq_ignore_ascii_case(b"referer") {
            HeaderRole::Referer
        } else {
            PICKED_HEADERS
                .iter()
                .position(|p| n.eq_ignore_ascii_case(p))
                .map_or(HeaderRole::Other, HeaderRole::Picked)
        }
    };
    for base in PICKED_HEADERS
        .iter()
        .chain([&&b"cookie"[..], &&b"referer"[..]])
    {
        for at in 0..base.len() {
            for b in 0..=255u8 {
                let mut n = base.to_vec();
                n[at] = b;
                assert_eq!(header_role(&n), naive(&n), "{n:?}");
            }
        }
    }
    assert_eq!(PICKED_HEADERS[PICKED_ACCEPT_LANGUAGE], b"accept-language");
}

#[test]
fn the_h2_fingerprint_travels_as_trailers() {
    let akamai = b"1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p";
    let with = Record {
        consistency: crate::stack::flags::TLS_H2 | crate::stack::flags::UA_H2_LIBRARY,
        h2: &akamai[..],
        h2_hash: &b"b95b8e312a5e"[..],
        mitigation: Mitigation {
            action: MitigationAction::Allow,
            ..Mitigation::default()
        },
        ..sample()
    };
    let (mut plain, mut p) = (Vec::new(), Vec::new());
    sample().encode(&mut plain);
    with.encode(&mut p);
    assert_eq!(
        p.len(),
        plain.len() + MITIGATION_TRAILER_LEN + h2_trailers_len(akamai, b"b95b8e312a5e") + 3
    );
    let (back, _) = decode_frame(&frame(&p, 1)).unwrap();
    assert_eq!(back[0].h2.as_bytes(), &akamai[..]);
    assert_eq!(back[0].h2_hash, "b95b8e312a5e");
    assert_eq!(back[0].mitigation.action, MitigationAction::Allow);
    assert_eq!(back[0].consistency, with.consistency);
    let mut json = Vec::new();
    with.write_json(&mut json);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["h2"], std::str::from_utf8(akamai).unwrap());
    assert_eq!(v["h2_hash"], "b95b8e312a5e");
    assert_eq!(v["consistency"], "ua-h2-library,tls-h2");
    // A string beyond 255 bytes arrives cut and marked, never a malformed record.
    let long = vec![b'9'; 400];
    let mut out = Vec::new();
    write_h2_trailers(&mut out, &long, b"abc");
    assert_eq!(out.len(), h2_trailers_len(&long, b"abc"));
    assert_eq!((out[0], out[1], out[256]), (TRAILER_H2, 255, b'~'));
    let mut none = Vec::new();
    write_h2_trailers(&mut none, b"", b"");
    assert!(none.is_empty());
}
