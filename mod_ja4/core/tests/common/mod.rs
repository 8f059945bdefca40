//! Builders for raw frames and TLS/HTTP payloads used by the integration and property tests.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use ja4_core::decode::{self, LinkType, TcpPacket};
use ja4_core::flow::{ConnectionRecord, FlowConfig, FlowTable};

pub(crate) const SYN: u8 = 0x02;
pub(crate) const ACK: u8 = 0x10;
pub(crate) const PSH: u8 = 0x08;
pub(crate) const FIN: u8 = 0x01;

/// One IPv4/TCP frame (raw IP link type).
pub(crate) struct Seg {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub flags: u8,
    pub window: u16,
    pub ttl: u8,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Seg {
    pub(crate) fn client(flags: u8, seq: u32, payload: &[u8]) -> Seg {
        Seg {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            sport: 50000,
            dport: 443,
            seq,
            flags,
            window: 64240,
            ttl: 64,
            options: vec![],
            payload: payload.to_vec(),
        }
    }
    pub(crate) fn server(flags: u8, seq: u32, payload: &[u8]) -> Seg {
        Seg {
            src: Ipv4Addr::new(10, 0, 0, 2),
            dst: Ipv4Addr::new(10, 0, 0, 1),
            sport: 443,
            dport: 50000,
            ttl: 57,
            ..Seg::client(flags, seq, payload)
        }
    }
    pub(crate) fn with_options(mut self, o: &[u8]) -> Seg {
        self.options = o.to_vec();
        self
    }
    pub(crate) fn with_ports(mut self, sport: u16, dport: u16) -> Seg {
        self.sport = sport;
        self.dport = dport;
        self
    }
    pub(crate) fn frame(&self) -> Vec<u8> {
        let mut opts = self.options.clone();
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let tcp_len = 20 + opts.len();
        let total = 20 + tcp_len + self.payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            self.ttl,
            6,
            0,
            0,
        ];
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&self.sport.to_be_bytes());
        p.extend_from_slice(&self.dport.to_be_bytes());
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.push(((tcp_len / 4) as u8) << 4);
        p.push(self.flags);
        p.extend_from_slice(&self.window.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(&opts);
        p.extend_from_slice(&self.payload);
        p
    }
}

/// Runs frames (timestamp µs, frame) through a flow table and returns the finished records.
pub(crate) fn run(
    frames: &[(i64, Vec<u8>)],
    cfg: FlowConfig,
) -> (Vec<ConnectionRecord>, ja4_core::flow::FlowStats) {
    let mut table = FlowTable::new(cfg);
    let mut out = Vec::new();
    for (ts, f) in frames {
        let pkt: TcpPacket<'_> = decode::decode(LinkType::Raw, f)
            .expect("decodes")
            .expect("is tcp");
        table.process(*ts, &pkt, &mut |r| out.push(r));
    }
    table.drain(&mut |r| out.push(r));
    out.sort_by_key(|r| r.stream);
    (out, table.stats().clone())
}

/// A handshake message wrapped in TLS records of at most `record_size` bytes.
pub(crate) fn tls_records(msg_type: u8, body: &[u8], record_size: usize) -> Vec<u8> {
    let mut msg = vec![
        msg_type,
        (body.len() >> 16) as u8,
        (body.len() >> 8) as u8,
        body.len() as u8,
    ];
    msg.extend_from_slice(body);
    let mut out = Vec::new();
    for chunk in msg.chunks(record_size) {
        out.extend_from_slice(&[0x16, 0x03, 0x01]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// A ClientHello body: TLS 1.3, SNI, ALPN h2, and a key share of `key_share_len` bytes
/// (1216 for X25519MLKEM768 makes the hello larger than one MTU).
pub(crate) fn client_hello(sni: &str, key_share_len: usize) -> Vec<u8> {
    let mut b = 0x0303u16.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x42; 32]);
    b.push(32);
    b.extend_from_slice(&[0x24; 32]);
    let ciphers = [0x3a3au16, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f];
    b.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
    for c in ciphers {
        b.extend_from_slice(&c.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]);
    let mut exts: Vec<(u16, Vec<u8>)> = Vec::new();
    exts.push((0x0a0a, vec![]));
    let mut s = ((sni.len() + 3) as u16).to_be_bytes().to_vec();
    s.push(0);
    s.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    s.extend_from_slice(sni.as_bytes());
    exts.push((0x0000, s));
    exts.push((0x0010, vec![0, 3, 2, b'h', b'2']));
    exts.push((0x002b, vec![4, 0x03, 0x04, 0x03, 0x03]));
    exts.push((0x000d, vec![0, 4, 0x04, 0x03, 0x08, 0x04]));
    let mut ks = ((key_share_len + 4) as u16).to_be_bytes().to_vec();
    ks.extend_from_slice(&0x11ecu16.to_be_bytes());
    ks.extend_from_slice(&(key_share_len as u16).to_be_bytes());
    ks.extend(std::iter::repeat_n(0x77u8, key_share_len));
    exts.push((0x0033, ks));
    let mut block = Vec::new();
    for (t, d) in exts {
        block.extend_from_slice(&t.to_be_bytes());
        block.extend_from_slice(&(d.len() as u16).to_be_bytes());
        block.extend_from_slice(&d);
    }
    b.extend_from_slice(&(block.len() as u16).to_be_bytes());
    b.extend_from_slice(&block);
    b
}

/// A TLS 1.3 ServerHello body (or a HelloRetryRequest).
pub(crate) fn server_hello(cipher: u16, hrr: bool) -> Vec<u8> {
    let mut b = 0x0303u16.to_be_bytes().to_vec();
    if hrr {
        b.extend_from_slice(&[
            0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65,
            0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2,
            0xc8, 0xa8, 0x33, 0x9c,
        ]);
    } else {
        b.extend_from_slice(&[9; 32]);
    }
    b.push(0);
    b.extend_from_slice(&cipher.to_be_bytes());
    b.push(0);
    let exts = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(&exts);
    b
}

/// Client SYN / server SYN-ACK / client ACK of a connection, at t=0, 100 µs, 150 µs.
pub(crate) fn handshake(isn_c: u32, isn_s: u32) -> Vec<(i64, Vec<u8>)> {
    vec![
        (
            0,
            Seg::client(SYN, isn_c, b"")
                .with_options(&[
                    2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
                ])
                .frame(),
        ),
        (
            100,
            Seg::server(SYN | ACK, isn_s, b"")
                .with_options(&[2, 4, 5, 0x64, 1, 1, 4, 2, 1, 3, 3, 9])
                .frame(),
        ),
        (150, Seg::client(ACK, isn_c.wrapping_add(1), b"").frame()),
    ]
}
