//! What ja4-platform's tests, the traffic lab and the benches run against, in one place: the
//! clock tests derive their timestamps from ([`clock`]), child processes that are always
//! stopped ([`proc`]), TLS certificates ([`tls`]), packet captures ([`tcpdump`]), httpd's configuration with the module
//! ([`httpd`]), dnsmasq for real DNS ([`dnsmasq`]), the sidecar process ([`sidecar`]), and
//! free ports, root checks and scratch directories.
//!
//! Owns: starting and stopping those real parts for a test and cleaning up after it.
//! Never: stands in for one of them (no mocks), or is linked into a production binary (it is
//! a dev-dependency everywhere but the lab and the bench scripts' helper).
//!
//! ```
//! let now = ja4_testkit::clock::now_second_us();
//! assert!(ja4_testkit::clock::utc(now).starts_with("20"));
//! let port = ja4_testkit::free_port();
//! assert!(port > 0);
//! ```

#![warn(missing_docs)]

pub mod clock;
pub mod dnsmasq;
pub mod httpd;
pub mod proc;
pub mod sidecar;
pub mod tcpdump;
pub mod tls;

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port on 127.0.0.1")
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port on 127.0.0.1")
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .map(|u| u == "0")
        })
        .unwrap_or(false)
}

/// Whether the root-only tests can run; without root they are skipped with a message, except
/// under CI where that is a failure.
pub fn need_root() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the root-only tests as root"
    );
    eprintln!("skipped: needs root");
    false
}

/// A fresh, empty directory under the temp directory, unique to this process and call.
pub fn tempdir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "ja4-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("creating {}: {e}", d.display()));
    d
}

/// Runs `cmd` to completion and panics, with its output, unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_dirs_are_fresh() {
        assert_ne!(free_port(), 0);
        assert_ne!(free_udp_port(), 0);
        let (a, b) = (tempdir("kit"), tempdir("kit"));
        assert_ne!(a, b);
        assert!(a.is_dir() && std::fs::read_dir(&a).unwrap().next().is_none());
        let _ = (std::fs::remove_dir_all(a), std::fs::remove_dir_all(b));
        let out = run(Command::new("sh").args(["-c", "echo hi"]));
        assert_eq!(out.stdout, b"hi\n");
    }
}
