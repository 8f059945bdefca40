//! Child processes a test or the lab starts: each in its own process group, stopped with its
//! children (SIGTERM, then SIGKILL) when dropped, so nothing outlives a failed test.

use std::io;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running child, stopped on drop.
#[derive(Debug)]
pub struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    /// Starts `cmd` (stdin closed) in a new process group.
    pub fn spawn(name: &'static str, cmd: &mut Command) -> io::Result<Proc> {
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
        Ok(Proc { name, child })
    }

    /// What the process is, as given at start.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        self.status().is_some()
    }

    /// Its exit status, once it has exited.
    pub fn status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` (`TERM`, `USR1`, …) to its process group.
    pub fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stderr(Stdio::null())
            .status();
    }

    /// SIGTERM to the group, up to `grace` to exit, then SIGKILL; reaped either way. The
    /// exit status when it exited by itself or on SIGTERM (None: it had to be killed).
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.status() {
            return Some(s);
        }
        self.signal_group("TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(s) = self.status() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal_group("KILL");
        let _ = self.child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(10));
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_tcp(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_process_is_stopped_with_its_children() {
        let dir = crate::tempdir("proc");
        let pidfile = dir.join("grandchild");
        let p = Proc::spawn(
            "sh",
            Command::new("sh")
                .arg("-c")
                .arg(format!("sleep 300 & echo $! > {}; wait", pidfile.display())),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pidfile.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        let grandchild = std::fs::read_to_string(&pidfile).unwrap();
        let alive = |pid: &str| std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
        assert!(alive(&grandchild));
        drop(p);
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(&grandchild) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // A zombie until its reaper runs counts as gone.
        let state = std::fs::read_to_string(format!("/proc/{}/stat", grandchild.trim()))
            .unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z "), "{state}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn wait_tcp_sees_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(wait_tcp(port, Duration::from_secs(1)));
        drop(l);
        assert!(!wait_tcp(port, Duration::from_millis(100)));
    }
}
