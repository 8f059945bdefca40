//! Encodes a typical keep-alive request record N times into one frame buffer: run under
//! `valgrind --tool=callgrind` to see the per-record instruction cost of the encoder.
use ja4_core::batch::{self, Record, Segment};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let rec = Record {
        ts_us: 1_763_700_000_123_456,
        conn_id: 42,
        client_ip: Some("127.0.0.1".parse().unwrap()),
        client_port: 50_000,
        server_ip: Some("127.0.0.1".parse().unwrap()),
        server_port: 80,
        vhost: &b"localhost"[..],
        method: b"GET",
        path: b"/index.html",
        protocol: b"HTTP/1.0",
        status: 200,
        bytes_in: 96,
        bytes_out: 290,
        duration_us: 120,
        keepalives: 3,
        ja4h: b"ge10nn030000_6a5a4d5c2c3e_000000000000_000000000000",
        header_names: b"Connection,Host,User-Agent,Accept",
        user_agent: b"ApacheBench/2.3",
        accept: b"*/*",
        ..Default::default()
    };
    let mut seg = Vec::new();
    rec.connection_segment(&mut seg);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut total = 0;
    for i in 0..n {
        if i % 256 == 0 {
            total += buf.len();
            buf.clear();
            batch::begin_frame(&mut buf);
        }
        rec.encode_with(&mut buf, batch::HEADER_LEN, Segment::Bytes(&seg));
    }
    println!("{} bytes/record", (total + buf.len()) / n);
}
