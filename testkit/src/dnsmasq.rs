//! dnsmasq as a real DNS server for tests and the lab: authoritative for the zones it is
//! given, answering from the records it is given and from nothing else.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::Proc;

/// A running dnsmasq on 127.0.0.1, stopped on drop.
#[derive(Debug)]
pub struct Dnsmasq {
    /// Where it answers (UDP and TCP on 127.0.0.1).
    pub addr: SocketAddr,
    _proc: Proc,
}

impl Dnsmasq {
    /// Starts dnsmasq on a free UDP port, answering only under `zones` (`googlebot.com`,
    /// `2.0.192.in-addr.arpa`) from `records` (dnsmasq options without their dashes, e.g.
    /// `host-record=crawl.googlebot.com,192.0.2.10`, `ptr-record=…`), with a TTL of 300 s.
    /// Returns once it serves.
    pub fn start(zones: &[&str], records: &[String]) -> std::io::Result<Dnsmasq> {
        let port = crate::free_udp_port();
        let user = if crate::is_root() {
            "root".to_owned()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "root".into())
        };
        let mut cmd = Command::new("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--local-ttl=300",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--user={user}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        for z in zones {
            cmd.arg(format!("--local=/{z}/"));
        }
        for r in records {
            cmd.arg(format!("--{r}"));
        }
        let mut proc = Proc::spawn("dnsmasq", &mut cmd)?;
        // Serving once it holds the port: binding it then fails.
        let deadline = Instant::now() + Duration::from_secs(10);
        while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            if proc.exited() || Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "dnsmasq did not listen on 127.0.0.1:{port} (Debian package dnsmasq-base)"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Dnsmasq {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _proc: proc,
        })
    }
}
