//! A private httpd for tests: its own ServerRoot in a temp dir, 127.0.0.1 high ports, the chosen
//! MPM, mod_ssl with a generated self-signed certificate, mod_http2, and the freshly built
//! mod_ja4. Plus real clients (curl, openssl s_client, python) and tcpdump on loopback.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ja4_testkit::httpd::{Conf, TlsVhost};

/// The mod_ja4.so cargo built next to this test binary. Cargo does not build a cdylib for
/// integration tests, so `scripts/test.sh` runs `cargo build -p mod_ja4` first; a missing or
/// stale module fails here instead of testing old code.
pub(crate) fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let so = dir.join("libmod_ja4.so");
    let built = std::fs::metadata(&so)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is not built: run `cargo build -p mod_ja4`",
                so.display()
            )
        });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for src in ["mod_ja4/src", "mod_ja4/core/src", "apr-sys/src"] {
        if let Some(newest) = newest_mtime(&root.join(src)) {
            assert!(
                newest <= built,
                "{} is older than {src}: run `cargo build -p mod_ja4`",
                so.display()
            );
        }
    }
    so
}

fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            newest_mtime(&p)
        } else {
            e.metadata().ok().and_then(|m| m.modified().ok())
        };
        newest = newest.max(t);
    }
    newest
}

pub(crate) use ja4_testkit::{free_port, is_root, need_root, run, tempdir};

pub(crate) struct Httpd {
    pub root: PathBuf,
    pub https: u16,
    pub http: u16,
    pub module: PathBuf,
    child: Option<Child>,
}

pub(crate) struct Options<'a> {
    pub mpm: &'a str,
    /// Extra directives for the main server.
    pub extra: &'a str,
    /// Use this module file instead of the built one.
    pub module: Option<PathBuf>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            mpm: "event",
            extra: "",
            module: None,
        }
    }
}

impl Httpd {
    pub(crate) fn config(
        root: &Path,
        https: u16,
        http: u16,
        module: &Path,
        opts: &Options<'_>,
    ) -> String {
        let mut c = Conf::new(root).with_modules(&["mime", "socache_shmcb", "ssl", "http2"]);
        c.mpm = opts.mpm.to_owned();
        c.mpm_tuning = match opts.mpm {
            "prefork" => "StartServers 2\nMinSpareServers 2\nMaxSpareServers 4\nMaxRequestWorkers 16\n",
            _ => "StartServers 1\nThreadsPerChild 8\nMaxRequestWorkers 16\nServerLimit 2\nMinSpareThreads 8\nMaxSpareThreads 16\n",
        }
        .into();
        c.ja4 = Some(module.to_owned());
        c.listen = [https, http]
            .iter()
            .flat_map(|p| [format!("127.0.0.1:{p}"), format!("[::1]:{p}")])
            .collect();
        c.log_format =
            Some("%{remote}p|%{JA4}e|%{JA4H}e|%{JA4T}e|%{JA4_SNI}e|%{JA4_TLS_VERSION}e".into());
        c.directives = format!(
            "LogLevel info\nSSLSessionCache shmcb:{root}/ssl_cache(512000)\nJA4ExportFile {root}/ja4.jsonl\nJA4FlushInterval 50\n<Location /ja4-status>\n  SetHandler ja4-status\n</Location>\n{extra}",
            root = root.display(),
            extra = opts.extra
        );
        c.tls = Some(TlsVhost {
            addr: format!("*:{https}"),
            h2: true,
        });
        c.render()
    }

    /// Writes the ServerRoot (config, cert, documents) without starting httpd.
    pub(crate) fn prepare(tag: &str, opts: &Options<'_>) -> Httpd {
        let root = tempdir(tag);
        std::fs::create_dir_all(root.join("htdocs")).unwrap();
        std::fs::write(root.join("htdocs/index.html"), "hello from httpd\n").unwrap();
        std::fs::write(root.join("htdocs/big.bin"), vec![b'x'; 200_000]).unwrap();
        ja4_testkit::tls::self_signed(&root, "localhost", false).unwrap();
        let (https, http) = (free_port(), free_port());
        let module = opts.module.clone().unwrap_or_else(module_path);
        std::fs::write(
            root.join("httpd.conf"),
            Self::config(&root, https, http, &module, opts),
        )
        .unwrap();
        if is_root() {
            // The children (www-data) write the TLS session cache; logs are opened by root.
            let _ = Command::new("chown").arg("www-data").arg(&root).status();
        }
        Httpd {
            root,
            https,
            http,
            module,
            child: None,
        }
    }

    pub(crate) fn start(tag: &str, opts: &Options<'_>) -> Httpd {
        let mut h = Self::prepare(tag, opts);
        h.spawn();
        h
    }

    pub(crate) fn spawn(&mut self) {
        use std::os::unix::process::CommandExt;
        let child = Command::new("apache2")
            .arg("-f")
            .arg(self.root.join("httpd.conf"))
            .arg("-DFOREGROUND")
            // httpd signals its whole process group at shutdown: give it its own.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("apache2 starts");
        self.child = Some(child);
        self.wait_generation(1);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.http)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", self.https)).is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "httpd did not start:\n{}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Generations httpd has started: its "resuming normal operations" lines. Listening
    /// sockets accept connections before that, but signal handlers are only in place after it.
    pub(crate) fn generations(&self) -> usize {
        self.error_log()
            .matches("resuming normal operations")
            .count()
    }

    /// Waits until httpd has started `n` generations.
    pub(crate) fn wait_generation(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.generations() < n {
            assert!(
                Instant::now() < deadline,
                "httpd did not reach generation {n}:\n{}",
                self.error_log()
            );
            if let Some(c) = &self.child {
                assert!(
                    Path::new(&format!("/proc/{}", c.id())).exists(),
                    "httpd exited:\n{}",
                    self.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A graceful restart (SIGUSR1), waiting until the new generation runs.
    pub(crate) fn graceful(&self) {
        let n = self.generations();
        self.signal("USR1");
        self.wait_generation(n + 1);
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub(crate) fn signal(&self, sig: &str) {
        run(Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string()));
    }

    /// Graceful stop: children finish and flush their exporters.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-WINCH")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn url(&self, tls: bool, path: &str) -> String {
        if tls {
            format!("https://127.0.0.1:{}{path}", self.https)
        } else {
            format!("http://127.0.0.1:{}{path}", self.http)
        }
    }

    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.join("error.log")).unwrap_or_default()
    }

    pub(crate) fn access_log(&self) -> String {
        std::fs::read_to_string(self.root.join("access.log")).unwrap_or_default()
    }

    /// Records of JA4ExportFile.
    pub(crate) fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.root.join("ja4.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
            .collect()
    }

    /// Waits until `n` records were exported.
    pub(crate) fn wait_records(&self, n: usize) -> Vec<serde_json::Value> {
        self.wait_for(n, |_| true)
    }

    /// The request records of JA4ExportFile (orphans left out: the harness's readiness
    /// probes make some), once there are `n` of them or 10 s have passed.
    pub(crate) fn wait_requests(&self, n: usize) -> Vec<serde_json::Value> {
        self.wait_for(n, |r| r["kind"] == "request")
    }

    /// The records `keep` accepts, once there are `n` of them or 10 s have passed.
    fn wait_for(
        &self,
        n: usize,
        keep: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r: Vec<serde_json::Value> = self.records().into_iter().filter(&keep).collect();
            if r.len() >= n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn status_json(&self) -> serde_json::Value {
        self.status_json_from(&[])
    }

    /// The status page as JSON, fetched with more curl arguments (another source address,
    /// when mitigation would answer 127.0.0.1 otherwise).
    pub(crate) fn status_json_from(&self, extra: &[&str]) -> serde_json::Value {
        let out = run(Command::new("curl")
            .args(["-s", "--max-time", "5"])
            .args(extra)
            .arg(self.url(false, "/ja4-status?json")));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Crash markers httpd writes when a child dies of a signal.
    pub(crate) fn assert_no_crash(&self) {
        let log = self.error_log();
        for bad in ["exit signal", "Segmentation", "seg fault", "panicked"] {
            assert!(!log.contains(bad), "httpd error log shows '{bad}':\n{log}");
        }
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
        if std::env::var_os("JA4_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// The status code curl gets for `url` over a new connection (`extra`: more curl arguments).
pub(crate) fn status_code(url: &str, extra: &[&str]) -> String {
    let out = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn curl(args: &[&str], url: &str) -> Output {
    run(Command::new("curl")
        .args(["-sk", "--max-time", "10", "-o", "/dev/null"])
        .args(args)
        .arg(url))
}

/// The status code curl gets for `url` from source address `from`.
pub(crate) fn status_from(url: &str, from: &str) -> String {
    status_code(url, &["--interface", from])
}

/// Polls until `from` gets `want`, returning how long that took (panics after 10 s).
pub(crate) fn wait_status(url: &str, from: &str, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        let got = status_from(url, from);
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{from} still gets {got}, not {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
