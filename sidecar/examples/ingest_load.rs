//! Sends synthetic but realistic records to a running `ja4-sidecar serve` socket as fast as it
//! takes them. Usage: ingest_load SOCKET RECORDS [BATCH]
use std::io::Write;

use ja4_core::batch::{self, Record, SynRecord};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let sock = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: ingest_load SOCKET RECORDS [BATCH]"))?;
    let total: usize = args.next().unwrap_or_else(|| "100000".into()).parse()?;
    let per: usize = args.next().unwrap_or_else(|| "1000".into()).parse()?;
    let mut s = std::os::unix::net::UnixStream::connect(&sock)?;
    let ja4_r = "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601";
    let mut sent = 0usize;
    // Stamped now: the store drops rows older than its TTL at insert.
    let t0 = ja4_store::rows::now_us();
    let started = std::time::Instant::now();
    while sent < total {
        let n = per.min(total - sent);
        let mut payload = Vec::with_capacity(n * 900);
        for i in 0..n {
            let k = sent + i;
            let path = format!("/page/{}", k % 500);
            let r = Record {
                ts_us: t0 + k as i64,
                conn_id: (k / 10) as u64,
                client_ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + (k % 65_000) as u32))),
                client_port: 40_000 + (k % 20_000) as u16,
                server_ip: Some("127.0.0.1".parse()?),
                server_port: 443,
                vhost: &b"www.example.com"[..],
                method: b"GET",
                path: path.as_bytes(),
                protocol: b"HTTP/2.0",
                status: 200,
                bytes_out: 5120,
                tls_version: b"TLSv1.3",
                tls_cipher: b"TLS_AES_128_GCM_SHA256",
                tls_sni: b"www.example.com",
                tls_alpn: b"h2",
                ja4: b"t13d1516h2_8daaf6152771_e5627efa2ab1",
                ja4_r: ja4_r.as_bytes(),
                ja3: b"cd08e31494f9531f560d64c695473da9",
                ja4h: b"ge20cn13enus_974ebe531c03_b66fa821d02c_e97928733c74",
                ja4t: b"64240_2-1-3-1-1-4_1460_8",
                syn: Some(SynRecord { ttl: 64, window: 64240, mss: Some(1460), window_scale: Some(8), options: vec![2, 1, 3, 1, 1, 4], ip_id: Some(0), dont_fragment: true }),
                header_names: &b"user-agent,accept,accept-language,accept-encoding,cookie"[..],
                user_agent: b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
                accept: b"text/html",
                accept_language: b"en-US,en;q=0.9",
                has_cookie: true,
                ..Default::default()
            };
            r.encode(&mut payload);
        }
        s.write_all(&batch::frame(&payload, n as u32))?;
        sent += n;
    }
    eprintln!(
        "sent {total} records in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
