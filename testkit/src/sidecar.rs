//! `ja4-sidecar serve` as a child process for tests and the lab: its configuration written
//! into a directory of its own, started, waited for, read through `/metrics`, stopped (which
//! flushes what it received into the store).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::Proc;

/// How to run one sidecar.
#[derive(Debug, Clone)]
pub struct SidecarConf {
    /// The `ja4-sidecar` binary.
    pub exe: PathBuf,
    /// Its directory: `sidecar.toml`, `ingest.sock`, `store/`, `spool/`, `sidecar.log`.
    pub dir: PathBuf,
    /// The `/metrics` port (127.0.0.1).
    pub http: u16,
    /// The store database (`[store] database`).
    pub database: String,
    /// Lines added to `[ingest]`.
    pub ingest: String,
    /// Lines added to `[store]` (after the directories; batch/flush defaults are 100 / 100 ms).
    pub store: String,
    /// Whole sections after the others (`[scoring]`, `[dashboard]` replace the defaults,
    /// which turn both off).
    pub sections: String,
    /// A command the sidecar runs under (`prlimit --nofile=…`), empty for none.
    pub prefix: Vec<String>,
}

impl SidecarConf {
    /// A configuration for `exe` (the ja4-sidecar binary) with its files under `dir`: free
    /// ports, scoring and the dashboard off.
    pub fn new(exe: &Path, dir: &Path) -> SidecarConf {
        SidecarConf {
            exe: exe.to_owned(),
            dir: dir.to_owned(),
            http: crate::free_port(),
            database: "ja4".into(),
            ingest: String::new(),
            store: String::new(),
            sections: String::new(),
            prefix: Vec::new(),
        }
    }

    /// The ingest socket's path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("ingest.sock")
    }

    /// The `sidecar.toml` text.
    pub fn toml(&self) -> String {
        let mut sections = self.sections.clone();
        if !sections.contains("[scoring]") {
            sections.push_str("\n[scoring]\nenabled = false\n");
        }
        if !sections.contains("[dashboard]") {
            sections.push_str("\n[dashboard]\nenabled = false\n");
        }
        format!(
            "[ingest]\nsocket = \"{}\"\nsocket_mode = \"0666\"\n{}\n[store]\ndata_dir = \"{}\"\nspool_dir = \"{}\"\ndatabase = \"{}\"\n{}\n[http]\nlisten = \"127.0.0.1:{}\"\n{sections}",
            self.socket().display(),
            self.ingest.trim_end(),
            self.dir.join("store").display(),
            self.dir.join("spool").display(),
            self.database,
            if self.store.contains("batch_records") {
                self.store.trim_end().to_owned()
            } else {
                format!("batch_records = 100\nflush_ms = 100\n{}", self.store.trim_end())
            },
            self.http,
        )
    }

    /// Writes the configuration, starts `serve` (stderr appended to `sidecar.log`) and waits
    /// up to `timeout` for its socket and `/healthz`.
    pub fn start(&self, timeout: Duration) -> std::io::Result<Sidecar> {
        std::fs::create_dir_all(&self.dir)?;
        let config = self.dir.join("sidecar.toml");
        std::fs::write(&config, self.toml())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("sidecar.log"))?;
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&self.exe);
                c
            }
            None => Command::new(&self.exe),
        };
        cmd.args(["serve", "--config"])
            .arg(&config)
            .env(
                "JA4_LOG",
                std::env::var("JA4_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log);
        let mut proc = Proc::spawn("ja4-sidecar serve", &mut cmd)?;
        let mut s = Sidecar {
            http: self.http,
            dir: self.dir.clone(),
            proc: None,
        };
        let deadline = Instant::now() + timeout;
        while !(self.socket().exists() && s.healthz()) {
            if proc.exited() || Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "the sidecar did not come up:\n{}",
                    std::fs::read_to_string(self.dir.join("sidecar.log")).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        s.proc = Some(proc);
        Ok(s)
    }
}

/// A running sidecar, stopped (gracefully, flushing) on drop or [`Sidecar::stop`].
#[derive(Debug)]
pub struct Sidecar {
    /// The `/metrics` and `/healthz` port (127.0.0.1).
    pub http: u16,
    /// Its directory (as [`SidecarConf::dir`]).
    pub dir: PathBuf,
    proc: Option<Proc>,
}

impl Sidecar {
    /// The body of `GET path` on the metrics listener (`None` when it does not answer 200).
    pub fn get(&self, path: &str) -> Option<String> {
        http_get(self.http, path)
    }

    /// Whether `/healthz` answers 200.
    pub fn healthz(&self) -> bool {
        self.get("/healthz").is_some_and(|b| b == "ok\n")
    }

    /// The value of an unlabelled sample `name` on `/metrics`.
    pub fn metric(&self, name: &str) -> Option<u64> {
        sample(&self.get("/metrics")?, name)
    }

    /// Waits up to `timeout` until `metric(name)` is at least `at_least`; its last value.
    pub fn wait_metric(&self, name: &str, at_least: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.metric(name).unwrap_or(0);
            if v >= at_least || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and waits for the flush (up to 30 s); its exit status (None when it had to
    /// be killed, or was stopped before).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        self.proc
            .take()
            .and_then(|mut p| p.stop(Duration::from_secs(30)))
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sidecar.log")).unwrap_or_default()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The value of the unlabelled sample `name` in a Prometheus/OpenMetrics text.
pub fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(' ')))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// A plain HTTP/1.0 GET on 127.0.0.1:`port`; the body when the status is 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_are_read_by_whole_name() {
        let text = "# HELP a_total x\na_total 3\na_total_more 9\nb{reason=\"x\"} 1\nc 2.5\n";
        assert_eq!(super::sample(text, "a_total"), Some(3));
        assert_eq!(super::sample(text, "a"), None);
        assert_eq!(super::sample(text, "c"), Some(2));
        assert_eq!(super::sample(text, "b"), None);
    }
}
