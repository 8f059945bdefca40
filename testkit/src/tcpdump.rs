//! tcpdump writing a pcap while a test drives real clients: started only once it reports
//! it is listening, stopped with SIGINT so the file is flushed and closed.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running tcpdump; killed on drop if [`Tcpdump::stop`] was not called.
#[derive(Debug)]
pub struct Tcpdump {
    child: Child,
    file: PathBuf,
}

impl Tcpdump {
    /// Starts `tcpdump <args> --immediate-mode -U -n -s 0 -w <file> <filter>` (`args` picks
    /// the interface and link type, e.g. `["-i", "lo"]`) and returns once it listens.
    pub fn start(file: &Path, args: &[&str], filter: &str) -> io::Result<Tcpdump> {
        let mut child = Command::new("tcpdump")
            .args(args)
            .args([
                "--immediate-mode",
                "-B",
                "32768",
                "-U",
                "-n",
                "-s",
                "0",
                "-w",
            ])
            .arg(file)
            .arg(filter)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting tcpdump: {e}")))?;
        let mut err = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let mut line = String::new();
        while err.read_line(&mut line)? > 0 && !line.contains("listening on") {
            line.clear();
        }
        if !line.contains("listening on") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!("tcpdump did not start: {line}")));
        }
        Ok(Tcpdump {
            child,
            file: file.to_owned(),
        })
    }

    /// Starts tcpdump on `lo` for TCP on any of `ports`, writing `dir/capture.pcap`.
    pub fn loopback(dir: &Path, ports: &[u16]) -> io::Result<Tcpdump> {
        let filter = ports
            .iter()
            .map(|p| format!("tcp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        Tcpdump::start(&dir.join("capture.pcap"), &["-i", "lo"], &filter)
    }

    /// Lets the last packets arrive, stops tcpdump with SIGINT (it flushes and closes the
    /// file) and returns the pcap's path.
    pub fn stop(mut self) -> PathBuf {
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        self.file.clone()
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
