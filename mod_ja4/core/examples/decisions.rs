//! Test and bench helper: writes a decisions snapshot, or mints a challenge pass.
//!
//! `decisions snapshot PATH N [IP VERDICT]`: N decisions for addresses in 10.0.0.0/8 (bots),
//! plus one for IP with VERDICT, published now.
//! `decisions pass KEYFILE IP JA4 SECONDS`: a pass for IP and JA4 (`-` for none) valid for
//! SECONDS, as the module would set it.

use ja4_core::challenge::{pass_token, Binding, Key};
use ja4_core::decisions::{encode, Action, Entry, Verdict};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["snapshot", path, n, ref rest @ ..] => {
            let n: u32 = n.parse().map_err(|e| format!("N: {e}"))?;
            let entry = |ip: std::net::IpAddr, verdict| Entry {
                ip: Some(ip),
                prefix: None,
                family: None,
                verdict,
                threat: 2,
                bot_score: 10,
                action: Action::None,
                reason: "model".into(),
                expires_ms: 0,
            };
            let mut all: Vec<Entry> = (0..n)
                .map(|i| {
                    entry(
                        std::net::Ipv4Addr::from(0x0a00_0000 + i).into(),
                        Verdict::Bot,
                    )
                })
                .collect();
            if let [ip, verdict] = rest {
                let ip = ip.parse().map_err(|e| format!("IP: {e}"))?;
                let v = Verdict::parse(verdict).ok_or("unknown verdict")?;
                all.push(entry(ip, v));
            }
            std::fs::write(path, encode(&all, now.as_millis() as i64)).map_err(|e| e.to_string())
        }
        ["pass", keyfile, ip, ja4, secs] => {
            let key = Key::new(&std::fs::read(keyfile).map_err(|e| e.to_string())?)?;
            let ip = ip.parse().map_err(|e| format!("IP: {e}"))?;
            let ja4 = if ja4 == "-" { "" } else { ja4 };
            let secs: u64 = secs.parse().map_err(|e| format!("SECONDS: {e}"))?;
            let t = pass_token(
                &key,
                &Binding::new(ip, ja4.as_bytes()),
                now.as_secs() + secs,
            );
            println!("{t}");
            Ok(())
        }
        _ => Err(
            "usage: decisions snapshot PATH N [IP VERDICT] | pass KEYFILE IP JA4 SECONDS".into(),
        ),
    }
}
