//! Writes fuzz seed corpora from capture files: raw frames for `packet_decode` (first byte = link
//! type selector), client/server stream starts for `tls_hello`, plaintext request streams for
//! `http_request`, and frame sequences for `flow`.
//!
//! Usage: cargo run -p ja4-sidecar --example fuzz_seeds -- OUT_DIR CAPTURE...

use std::collections::HashMap;
use std::path::PathBuf;

use ja4_core::decode::{decode, LinkType};

const LINKS: [i32; 8] = [1, 113, 276, 0, 108, 101, 228, 229];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: fuzz_seeds OUT_DIR CAPTURE..."))?,
    );
    for t in [
        "packet_decode",
        "tls_hello",
        "http_request",
        "flow",
        "batch_decode",
    ] {
        std::fs::create_dir_all(out.join(t))?;
    }
    let mut n = 0usize;
    for path in args {
        let path = PathBuf::from(path);
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Ok(mut cap) = pcap::Capture::from_file(&path) else {
            continue;
        };
        let dlt = cap.get_datalink().0;
        let Some(link) = LinkType::from_dlt(dlt) else {
            continue;
        };
        let sel = LINKS
            .iter()
            .position(|d| *d == dlt || (*d == 101 && matches!(dlt, 12 | 14)))
            .unwrap_or(0) as u8;
        let mut streams: HashMap<(String, u16, u16), Vec<u8>> = HashMap::new();
        let mut flow = Vec::new();
        let mut i = 0;
        while let Ok(p) = cap.next_packet() {
            i += 1;
            if i <= 40 {
                let mut seed = vec![sel];
                seed.extend_from_slice(p.data);
                std::fs::write(out.join("packet_decode").join(format!("{stem}-{i}")), seed)?;
            }
            let Ok(Some(t)) = decode(link, p.data) else {
                continue;
            };
            if flow.len() < 16 * 1024 {
                // Re-encode as a raw IPv4 frame sequence for the flow target (IPv4 only).
                if let (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) = (t.src, t.dst) {
                    let frame = raw_ipv4(s, d, &t);
                    flow.extend_from_slice(&(frame.len() as u16).to_be_bytes());
                    flow.extend_from_slice(&frame);
                }
            }
            if !t.payload.is_empty() {
                let s = streams
                    .entry((t.src.to_string(), t.src_port, t.dst_port))
                    .or_default();
                if s.len() < 8192 {
                    s.extend_from_slice(t.payload);
                }
            }
        }
        std::fs::write(out.join("flow").join(&stem), &flow)?;
        for (j, (_, s)) in streams.iter().enumerate() {
            let target = match s.first() {
                Some(0x16) => "tls_hello",
                Some(b'A'..=b'Z') => "http_request",
                _ => continue,
            };
            std::fs::write(out.join(target).join(format!("{stem}-{j}")), s)?;
            n += 1;
        }
    }
    eprintln!("wrote {n} stream seeds to {}", out.display());
    batch_seeds(&out.join("batch_decode"))?;
    Ok(())
}

fn raw_ipv4(
    s: std::net::Ipv4Addr,
    d: std::net::Ipv4Addr,
    t: &ja4_core::decode::TcpPacket<'_>,
) -> Vec<u8> {
    let tcp_len = 20 + t.options.len();
    let total = 20 + tcp_len + t.payload.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        t.ttl,
        6,
        0,
        0,
    ];
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(&t.src_port.to_be_bytes());
    p.extend_from_slice(&t.dst_port.to_be_bytes());
    p.extend_from_slice(&t.seq.to_be_bytes());
    p.extend_from_slice(&t.ack.to_be_bytes());
    p.push(((tcp_len / 4) as u8) << 4);
    p.push(t.flags as u8);
    p.extend_from_slice(&t.window.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(t.options);
    p.extend_from_slice(t.payload);
    p
}

/// Frames as the module sends them (a connection segment written once, then referenced) and as
/// the spool stores them (with a checksum).
fn batch_seeds(dir: &std::path::Path) -> anyhow::Result<()> {
    use ja4_core::batch::{self, Record, Segment, SynRecord, HEADER_LEN};
    let rec = Record {
        ts_us: 1_763_700_000_000_000,
        conn_id: 7,
        client_ip: Some("192.0.2.1".parse()?),
        client_port: 50_000,
        server_ip: Some("2001:db8::1".parse()?),
        server_port: 443,
        vhost: &b"www.example.com"[..],
        method: b"GET",
        path: b"/",
        protocol: b"HTTP/1.1",
        status: 200,
        ja4: b"t13d1516h2_8daaf6152771_e5627efa2ab1",
        ja4h: b"ge11cr030000_a6e4e8e0a9c1_000000000000_000000000000",
        header_names: b"Host,Cookie,Referer",
        cookie: b"a=1; b",
        syn: Some(SynRecord {
            ttl: 64,
            window: 64240,
            mss: Some(1460),
            window_scale: Some(7),
            options: vec![2, 4, 8, 1, 3],
            ip_id: None,
            dont_fragment: true,
        }),
        has_cookie: true,
        has_referer: true,
        ..Default::default()
    };
    let mut seg = Vec::new();
    rec.connection_segment(&mut seg);
    let mut frame = Vec::new();
    batch::begin_frame(&mut frame);
    let at = rec.encode_with(&mut frame, HEADER_LEN, Segment::Bytes(&seg));
    rec.encode_with(&mut frame, HEADER_LEN, Segment::Ref(at));
    batch::finish_frame(&mut frame, 2, false);
    std::fs::write(dir.join("module"), &frame)?;
    let mut payload = Vec::new();
    rec.encode(&mut payload);
    std::fs::write(dir.join("spool"), batch::frame(&payload, 1))?;
    Ok(())
}
