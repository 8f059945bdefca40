//! Connection tracking end to end on hand-built packets.

mod common;

use common::*;
use ja4_core::flow::FlowConfig;

const ISN_C: u32 = 0xffff_ff00; // wraps inside the hello
const ISN_S: u32 = 7_000;

fn expected_ja4(body: &[u8]) -> String {
    let ch = ja4_core::tls::parse_client_hello(body).unwrap();
    ja4_core::fingerprint::ja4(&ch).to_string()
}

#[test]
fn handshake_gives_ja4t_ja4ts_ja4l() {
    let (recs, _) = run(&handshake(ISN_C, ISN_S), FlowConfig::default());
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(
        (r.src.to_string().as_str(), r.src_port, r.dst_port),
        ("10.0.0.1", 50000, 443)
    );
    assert_eq!(r.ja4t.as_deref(), Some("64240_2-4-8-1-3_1460_7"));
    assert_eq!(r.ja4ts.as_deref(), Some("64240_2-1-1-4-1-3_1380_9"));
    let l = r.ja4l.as_ref().unwrap();
    assert_eq!((l.ja4l_s.as_str(), l.ja4l_c.as_str()), ("50_57", "25_64"));
}

#[test]
fn post_quantum_hello_split_reordered_retransmitted() {
    let body = client_hello("pq.example", 1216 + 36 + 517);
    let stream = tls_records(1, &body, 16384);
    assert!(stream.len() > 1500, "hello must exceed one MTU");
    let want = expected_ja4(&body);
    let mut frames = handshake(ISN_C, ISN_S);
    // Three segments delivered 3, 1, 1 (retransmission), 2.
    let base = ISN_C.wrapping_add(1);
    let cuts = [0, 600, 1300, stream.len()];
    let seg = |i: usize| {
        Seg::client(
            ACK | PSH,
            base.wrapping_add(cuts[i] as u32),
            &stream[cuts[i]..cuts[i + 1]],
        )
        .frame()
    };
    frames.push((200, seg(2)));
    frames.push((210, seg(0)));
    frames.push((220, seg(0)));
    frames.push((230, seg(1)));
    frames.push((
        300,
        Seg::server(
            ACK | PSH,
            ISN_S + 1,
            &tls_records(2, &server_hello(0x1301, false), 16384),
        )
        .frame(),
    ));
    let (recs, stats) = run(&frames, FlowConfig::default());
    let r = &recs[0];
    assert_eq!(r.ja4.as_ref().map(|j| j.ja4.as_str()), Some(want.as_str()));
    assert_eq!(r.tls_server_name.as_deref(), Some("pq.example"));
    assert_eq!(r.ja4s.as_ref().unwrap().ja4s_r, "t130100_1301_002b");
    assert_eq!(stats.client_hellos, 1);
}

#[test]
fn hello_fragmented_across_tls_records_without_syn() {
    let body = client_hello("records.example", 32);
    let stream = tls_records(1, &body, 100);
    // Mid-stream capture: no handshake seen, segments of 50 bytes.
    let frames: Vec<_> = stream
        .chunks(50)
        .enumerate()
        .map(|(i, c)| {
            (
                i as i64,
                Seg::client(ACK, 1000 + (i * 50) as u32, c).frame(),
            )
        })
        .collect();
    let (recs, _) = run(&frames, FlowConfig::default());
    assert_eq!(recs[0].ja4.as_ref().unwrap().ja4, expected_ja4(&body));
    assert!(recs[0].ja4t.is_none() && recs[0].ja4l.is_none());
}

#[test]
fn only_first_client_hello_counts() {
    let mut frames = handshake(ISN_C, ISN_S);
    let first = tls_records(1, &client_hello("first.example", 32), 16384);
    let second = tls_records(1, &client_hello("second.example", 1216), 16384);
    frames.push((200, Seg::client(ACK, ISN_C.wrapping_add(1), &first).frame()));
    frames.push((
        300,
        Seg::server(
            ACK,
            ISN_S + 1,
            &tls_records(2, &server_hello(0x1302, true), 16384),
        )
        .frame(),
    ));
    frames.push((
        400,
        Seg::client(ACK, ISN_C.wrapping_add(1 + first.len() as u32), &second).frame(),
    ));
    let (recs, _) = run(&frames, FlowConfig::default());
    assert_eq!(recs[0].tls_server_name.as_deref(), Some("first.example"));
    assert!(
        recs[0]
            .facts
            .server_hello
            .as_ref()
            .unwrap()
            .hello_retry_request
    );
}

#[test]
fn garbage_and_sslv2_are_counted_not_fingerprinted() {
    let mut frames = handshake(ISN_C, ISN_S);
    frames.push((
        200,
        Seg::client(
            ACK,
            ISN_C.wrapping_add(1),
            &[0x80, 0x2e, 0x01, 0x00, 0x02, 0, 0],
        )
        .frame(),
    ));
    let other = Seg::client(ACK, 5, &[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
        .with_ports(50001, 443)
        .frame();
    frames.push((210, other));
    let (recs, stats) = run(&frames, FlowConfig::default());
    assert!(recs.iter().all(|r| r.ja4.is_none()));
    assert_eq!(stats.sslv2_hellos, 1);
    assert_eq!(stats.tls_errors, 2);
}

#[test]
fn keep_alive_http_requests_in_order() {
    let mut frames = handshake(ISN_C, ISN_S);
    let reqs = b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Language: fr-CH, fr;q=0.9\r\n\r\n\
POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nCookie: s=1\r\n\r\nuser=x&pw=y\
GET /next HTTP/1.1\r\nHost: a\r\nReferer: http://a/\r\n\r\n";
    for (i, chunk) in reqs.chunks(7).enumerate() {
        frames.push((
            200 + i as i64,
            Seg::client(ACK, ISN_C.wrapping_add(1 + (i * 7) as u32), chunk)
                .with_ports(50000, 443)
                .frame(),
        ));
    }
    let (recs, stats) = run(&frames, FlowConfig::default());
    let r = &recs[0];
    assert_eq!(
        r.ja4h_r,
        vec![
            "ge11nn02frch_Host,Accept-Language__",
            "po11cn020000_Host,Content-Length_s_s=1",
            "ge11nr010000_Host__"
        ]
    );
    assert_eq!(stats.http_requests, 3);
}

#[test]
fn port_reuse_starts_a_new_connection() {
    let mut frames = handshake(100, 200);
    frames.push((200, Seg::client(FIN | ACK, 101, b"").frame()));
    frames.extend(
        handshake(90_000, 300)
            .into_iter()
            .map(|(t, f)| (t + 1_000, f)),
    );
    let (recs, stats) = run(&frames, FlowConfig::default());
    assert_eq!(recs.len(), 2);
    assert_eq!((recs[0].stream, recs[1].stream), (0, 1));
    assert_eq!(stats.port_reuse, 1);
}

#[test]
fn retransmitted_syn_is_the_same_connection() {
    let mut frames = vec![
        (0, Seg::client(SYN, 5, b"").frame()),
        (1_000_000, Seg::client(SYN, 5, b"").frame()),
    ];
    frames.extend(
        handshake(5, 9)
            .into_iter()
            .skip(1)
            .map(|(t, f)| (t + 2_000_000, f)),
    );
    let (recs, _) = run(&frames, FlowConfig::default());
    assert_eq!(recs.len(), 1);
    // JA4L measures from the first SYN.
    assert_eq!(recs[0].ja4l.as_ref().unwrap().server_us, 1_000_050);
}

#[test]
fn syn_only_scan_has_ja4t_but_no_ja4l() {
    let frames: Vec<_> = (0..5u16)
        .map(|i| {
            (
                i64::from(i),
                Seg::client(SYN, 1, b"").with_ports(40000 + i, 22).frame(),
            )
        })
        .collect();
    let (recs, _) = run(&frames, FlowConfig::default());
    assert_eq!(recs.len(), 5);
    assert!(recs.iter().all(|r| r.ja4t.is_some() && r.ja4l.is_none()));
}

#[test]
fn table_is_bounded_and_evictions_counted() {
    let cfg = FlowConfig {
        max_connections: 10,
        idle_timeout_us: 1_000,
        ..FlowConfig::default()
    };
    let mut frames: Vec<_> = (0..25u16)
        .map(|i| {
            (
                i64::from(i),
                Seg::client(SYN, 1, b"").with_ports(30000 + i, 80).frame(),
            )
        })
        .collect();
    // Much later: everything left is idle.
    frames.push((
        1_000_000,
        Seg::client(SYN, 1, b"").with_ports(1, 80).frame(),
    ));
    let (recs, stats) = run(&frames, cfg);
    assert_eq!(recs.len(), 26, "every connection is reported exactly once");
    assert_eq!(stats.evicted_capacity, 15);
    assert_eq!(stats.evicted_idle, 10);
}

#[test]
fn ecn_syn_still_counts_as_the_first_syn() {
    // Canonical rule 8: a SYN with ECE|CWR (ECN setup) is the client's SYN.
    let mut frames = handshake(ISN_C, ISN_S);
    let mut syn = Seg::client(SYN, ISN_C, b"").with_options(&[2, 4, 5, 0xb4]);
    syn.flags |= 0x40 | 0x80;
    frames[0] = (0, syn.frame());
    let (recs, _) = run(&frames, FlowConfig::default());
    assert_eq!(recs[0].ja4t.as_deref(), Some("64240_2_1460_0"));
    assert!(recs[0].facts.syn.as_ref().unwrap().ecn_setup);
    assert!(recs[0].ja4l.is_some());
}

#[test]
fn progress_is_reported_as_the_handshake_advances() {
    use ja4_core::decode::{self, LinkType};
    use ja4_core::flow::FlowTable;
    let mut frames = handshake(ISN_C, ISN_S);
    frames.push((
        200,
        Seg::client(
            ACK,
            ISN_C.wrapping_add(1),
            &tls_records(1, &client_hello("p.example", 32), 16384),
        )
        .frame(),
    ));
    frames.push((
        300,
        Seg::server(
            ACK,
            ISN_S + 1,
            &tls_records(2, &server_hello(0x1301, false), 16384),
        )
        .frame(),
    ));
    frames.push((
        400,
        Seg::client(ACK, ISN_C.wrapping_add(500), b"encrypted stuff").frame(),
    ));
    frames.push((
        500,
        Seg::client(FIN | ACK, ISN_C.wrapping_add(600), b"").frame(),
    ));
    let mut table = FlowTable::new(FlowConfig::default());
    let mut seen = Vec::new();
    for (ts, f) in &frames {
        let p = decode::decode(LinkType::Raw, f).unwrap().unwrap();
        table.process_observed(*ts, &p, &mut |_| {}, &mut |pr| {
            seen.push((
                pr.syn.map(|s| s.isn),
                pr.ja4l().map(|l| l.ja4l_c),
                pr.ja4.is_some(),
                pr.ja4s.is_some(),
                pr.closed,
            ))
        });
    }
    // SYN, SYN-ACK, ACK, hello, server hello, FIN: six steps; the encrypted data is not one.
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(seen.iter().all(|s| s.0 == Some(ISN_C)));
    assert_eq!(seen[2].1.as_deref(), Some("25_64"));
    assert!(seen[3].2 && !seen[3].3 && seen[4].3 && seen[5].4);
}

#[test]
fn closed_connections_finish_after_the_linger() {
    let cfg = FlowConfig {
        closed_linger_us: 1_000,
        idle_timeout_us: 1_000_000_000,
        ..FlowConfig::default()
    };
    let mut frames = handshake(10, 20);
    frames.push((200, Seg::client(FIN | ACK, 11, b"").frame()));
    // Another connection, much later, drives the clock.
    frames.push((
        10_000,
        Seg::client(SYN, 1, b"").with_ports(50001, 443).frame(),
    ));
    let (recs, stats) = run(&frames, cfg);
    assert_eq!(recs.len(), 2);
    assert_eq!(
        stats.evicted_idle, 1,
        "the closed connection left after its linger"
    );
}
