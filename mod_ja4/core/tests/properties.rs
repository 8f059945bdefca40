//! Property tests: no input panics, hangs or grows without bound, and reassembly never changes a
//! fingerprint however the bytes are cut, reordered or repeated.

mod common;

use common::*;
use ja4_core::decode::{self, LinkType};
use ja4_core::fingerprint::{HttpVersion, Ja4Set, Ja4hSet};
use ja4_core::flow::{FlowConfig, FlowTable};
use ja4_core::http::{RequestStream, Step};
use ja4_core::tcp::TcpOptions;
use ja4_core::tls;
use proptest::prelude::*;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
];

fn is_token(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_any_bytes(link in 0usize..8, frame in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(Some(p)) = decode::decode(LINKS[link], &frame) {
            prop_assert!(p.options.len() <= 40);
            prop_assert!(p.payload.len() <= frame.len());
        }
    }

    #[test]
    fn decode_mutated_ip_packets(flips in proptest::collection::vec((0usize..80, any::<u8>()), 1..6)) {
        let mut f = Seg::client(ACK, 1, b"payload bytes here").with_options(&[2, 4, 5, 0xb4]).frame();
        for (i, b) in flips {
            let n = f.len();
            f[i % n] = b;
        }
        let _ = decode::decode(LinkType::Raw, &f);
    }

    #[test]
    fn tls_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = tls::first_handshake_message(&data, 1 << 16);
        if let Ok(ch) = tls::parse_client_hello(&data) {
            let set = Ja4Set::from_hello(&ch);
            prop_assert_eq!(set.ja4.len(), 36);
            prop_assert!(is_token(&set.ja4) && is_token(&set.ja4_o));
            let fast = ja4_core::fingerprint::ja4(&ch);
            prop_assert_eq!(fast.as_str(), set.ja4.as_str());
        }
        if let Ok(sh) = tls::parse_server_hello(&data) {
            let s = ja4_core::fingerprint::Ja4sSet::from_hello(&sh);
            prop_assert!(is_token(&s.ja4s));
        }
    }

    #[test]
    fn tls_records_header_then_noise(noise in proptest::collection::vec(any::<u8>(), 0..300), len in 0u16..400) {
        let mut data = vec![0x16, 0x03, 0x01];
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(&noise);
        let _ = tls::first_handshake_message(&data, 1 << 16);
    }

    #[test]
    fn tcp_options_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..60)) {
        let o = TcpOptions::parse(&raw);
        prop_assert!(o.kinds().len() <= 40);
    }

    #[test]
    fn http_stream_always_progresses(data in proptest::collection::vec(any::<u8>(), 0..400), prefix in 0usize..3) {
        let starts: [&[u8]; 3] = [b"", b"GET / HTTP/1.1\r\n", b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"];
        let mut buf = starts[prefix].to_vec();
        buf.extend_from_slice(&data);
        let mut rs = RequestStream::new(1024);
        let mut off = 0usize;
        for _ in 0..=buf.len() + 2 {
            match rs.step(&buf[off.min(buf.len())..]) {
                Step::Request { consumed, body, head } => {
                    prop_assert!(consumed > 0);
                    let s = Ja4hSet::compute(head.method, head.version, head.headers.iter().copied());
                    prop_assert!(s.ja4h.len() >= 12);
                    off += consumed + body.min(1 << 20) as usize;
                }
                Step::Consumed(n) => { prop_assert!(n > 0); off += n; }
                Step::Skip(n) => { prop_assert!(n > 0); off += n.min(1 << 20) as usize; }
                Step::NeedMore | Step::Broken(_) => return Ok(()),
            }
        }
        prop_assert!(false, "stream did not settle");
    }

    #[test]
    fn ja4h_any_headers(headers in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..12), proptest::collection::vec(any::<u8>(), 0..30)), 0..30),
                        method in proptest::collection::vec(any::<u8>(), 0..8)) {
        let s = Ja4hSet::compute(&method, HttpVersion::Http11, headers.iter().map(|(n, v)| (&n[..], &v[..])));
        let a = &s.ja4h[..12];
        prop_assert!(a.is_ascii());
        prop_assert_eq!(s.ja4h.split('_').count(), 4);
    }

    /// However a hello is cut into segments and records, reordered and duplicated, the flow table
    /// computes the JA4 the hello has.
    #[test]
    fn reassembly_preserves_fingerprint(
        key_share in 32usize..2500,
        record_size in 40usize..2000,
        cuts in proptest::collection::vec(1usize..3000, 0..8),
        order_seed in any::<u64>(),
        dup in proptest::collection::vec(any::<bool>(), 12),
        isn in any::<u32>(),
    ) {
        let body = client_hello("prop.example", key_share);
        let want = Ja4Set::from_hello(&tls::parse_client_hello(&body).unwrap());
        let stream = tls_records(1, &body, record_size);
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c % stream.len()).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        points.dedup();
        let mut segs: Vec<(u32, Vec<u8>)> = points.windows(2).map(|w| (isn.wrapping_add(1 + w[0] as u32), stream[w[0]..w[1]].to_vec())).collect();
        // Deterministic shuffle and duplication.
        let mut s = order_seed;
        for i in (1..segs.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            segs.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut frames = vec![(0i64, Seg::client(SYN, isn, b"").frame())];
        for (i, (seq, data)) in segs.iter().enumerate() {
            frames.push((i as i64 + 1, Seg::client(ACK, *seq, data).frame()));
            if dup.get(i).copied().unwrap_or(false) {
                frames.push((i as i64 + 1, Seg::client(ACK, *seq, data).frame()));
            }
        }
        let (recs, _) = run(&frames, FlowConfig::default());
        prop_assert_eq!(recs[0].ja4.as_ref(), Some(&want));
    }

    /// Random frames from a handful of endpoints never break the table's bounds.
    #[test]
    fn flow_table_bounded_under_noise(pkts in proptest::collection::vec((0u16..6, any::<u32>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..200)) {
        let cfg = FlowConfig { max_connections: 4, ..FlowConfig::default() };
        let mut table = FlowTable::new(cfg);
        let mut emitted = 0u64;
        for (i, (port, seq, flags, payload)) in pkts.iter().enumerate() {
            let mut seg = Seg::client(*flags, *seq, payload).with_ports(1000 + port, 443);
            if port % 2 == 1 { std::mem::swap(&mut seg.src, &mut seg.dst); std::mem::swap(&mut seg.sport, &mut seg.dport); }
            let f = seg.frame();
            let p = decode::decode(LinkType::Raw, &f).unwrap().unwrap();
            table.process(i as i64, &p, &mut |_| emitted += 1);
            prop_assert!(table.len() <= 4);
        }
        table.drain(&mut |_| emitted += 1);
        prop_assert_eq!(emitted, table.stats().connections);
    }
}
