//! The lab's servers: a private httpd with mod_ja4 serving a small site over TLS, the sidecar's
//! ingest as a child process, dnsmasq answering the reverse DNS of the lab's crawlers, and
//! CONNECT proxies that give each browser its own loopback source address.
//!
//! Owns: starting, waiting for and stopping each of them, in their own process groups.
//! Never: leaves a process running: every handle stops its process on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub const SITE_HOST: &str = "shop.lab";

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process stopped (SIGTERM, then SIGKILL) on drop.
pub struct Proc {
    pub name: &'static str,
    child: Child,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Result<Proc> {
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc { name, child })
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM to its process group and wait (up to `patience`), then SIGKILL.
    pub fn stop(&mut self, patience: Duration) {
        let group = format!("-{}", self.child.id());
        let signal = |sig: &str| {
            let _ = Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal("-KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.alive() {
            self.stop(Duration::from_secs(5));
        }
    }
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_tcp(port: u16, what: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not listen on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The small site the lab's clients browse: pages linking each other, styles, scripts,
/// images, a login form and a search page.
pub fn write_site(htdocs: &Path, pages: usize) -> Result<()> {
    std::fs::create_dir_all(htdocs.join("static"))?;
    std::fs::create_dir_all(htdocs.join("p"))?;
    let nav: String = (1..=pages)
        .map(|i| format!("<a href=\"/p/{i}.html\">Item {i}</a> "))
        .collect();
    let page = |title: &str, body: &str| {
        format!(
            "<!doctype html><html><head><title>{title}</title><link rel=\"stylesheet\" href=\"/static/site.css\"><script src=\"/static/app.js\"></script></head><body><img src=\"/static/logo.png\" alt=\"\"><nav>{nav}<a href=\"/login.html\">Login</a></nav><h1>{title}</h1>{body}<img src=\"/static/photo.png\" alt=\"\"></body></html>\n"
        )
    };
    std::fs::write(htdocs.join("index.html"), page("Shop", "<p>Welcome.</p>"))?;
    for i in 1..=pages {
        std::fs::write(
            htdocs.join(format!("p/{i}.html")),
            page(
                &format!("Item {i}"),
                &format!("<p>Item {i} costs {i}0 EUR.</p>"),
            ),
        )?;
    }
    std::fs::write(
        htdocs.join("login.html"),
        page("Login", "<form method=\"post\" action=\"/login.html\"><input name=\"u\"><input name=\"p\" type=\"password\"></form>"),
    )?;
    std::fs::write(
        htdocs.join("search.html"),
        page("Search", "<p>Results.</p>"),
    )?;
    std::fs::write(
        htdocs.join("static/site.css"),
        "body{font-family:sans-serif}\n".repeat(40),
    )?;
    std::fs::write(
        htdocs.join("static/app.js"),
        "document.cookie='session=lab'+Math.floor(Math.random()*1e9)+'; path=/';\n",
    )?;
    // A tiny valid PNG.
    let png: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0,
        0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 13, 0x49, 0x44, 0x41,
        0x54, 0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    std::fs::write(htdocs.join("static/logo.png"), png)?;
    std::fs::write(htdocs.join("static/photo.png"), png)?;
    Ok(())
}

/// A private httpd with mod_ja4 exporting to `socket`.
pub struct Httpd {
    pub proc: Proc,
    pub port: u16,
    pub root: PathBuf,
}

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

pub fn start_httpd(root: &Path, module: &Path, socket: &Path) -> Result<Httpd> {
    const M: &str = "/usr/lib/apache2/modules";
    if !module.exists() {
        bail!(
            "{} not found: build it (`cargo build --release -p mod_ja4`) or pass --module",
            module.display()
        );
    }
    // httpd reads relative paths from its ServerRoot.
    let module = &std::fs::canonicalize(module)?;
    std::fs::create_dir_all(root)?;
    write_site(&root.join("htdocs"), 8)?;
    run(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
            ])
            .args([
                "-subj",
                &format!("/CN={SITE_HOST}"),
                "-addext",
                &format!("subjectAltName=DNS:{SITE_HOST}"),
            ])
            .arg("-keyout")
            .arg(root.join("key.pem"))
            .arg("-out")
            .arg(root.join("cert.pem")),
        "openssl req",
    )?;
    let port = free_port()?;
    let user = if is_root() {
        // Children run as www-data: they must reach the documents and the socket.
        for p in [root.to_path_buf(), root.join("htdocs")] {
            let _ = Command::new("chmod").arg("755").arg(&p).status();
        }
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    let conf = format!(
        r#"ServerRoot {root}
PidFile {root}/httpd.pid
ServerName {SITE_HOST}
{user}
LoadModule mpm_event_module {M}/mod_mpm_event.so
LoadModule authz_core_module {M}/mod_authz_core.so
LoadModule mime_module {M}/mod_mime.so
LoadModule dir_module {M}/mod_dir.so
LoadModule socache_shmcb_module {M}/mod_socache_shmcb.so
LoadModule ssl_module {M}/mod_ssl.so
LoadModule http2_module {M}/mod_http2.so
LoadModule ja4_module {module}
StartServers 2
ThreadsPerChild 32
MaxRequestWorkers 128
ServerLimit 4
TypesConfig /etc/mime.types
DirectoryIndex index.html
Listen 127.0.0.1:{port}
ErrorLog {root}/error.log
LogFormat "%a %r %>s %{{JA4}}e %{{JA4H}}e" lab
CustomLog {root}/access.log lab
DocumentRoot {root}/htdocs
KeepAliveTimeout 5
SSLSessionCache shmcb:{root}/ssl_cache(512000)
JA4ExportSocket {socket}
JA4FlushInterval 100
JA4CaptureInterface lo
JA4CapturePorts {port}
<VirtualHost *:{port}>
  Protocols h2 http/1.1
  SSLEngine on
  SSLCertificateFile {root}/cert.pem
  SSLCertificateKeyFile {root}/key.pem
</VirtualHost>
"#,
        root = root.display(),
        module = module.display(),
        socket = socket.display(),
    );
    std::fs::write(root.join("httpd.conf"), conf)?;
    run(
        Command::new("apache2")
            .arg("-t")
            .arg("-f")
            .arg(root.join("httpd.conf")),
        "apache2 -t (the lab's httpd configuration)",
    )?;
    let proc = Proc::spawn(
        "httpd",
        Command::new("apache2")
            .arg("-f")
            .arg(root.join("httpd.conf"))
            .arg("-DFOREGROUND")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    wait_tcp(port, "httpd", Duration::from_secs(20))
        .with_context(|| std::fs::read_to_string(root.join("error.log")).unwrap_or_default())?;
    Ok(Httpd {
        proc,
        port,
        root: root.to_owned(),
    })
}

/// The sidecar's ingest (`serve`) as a child process; stopping it flushes to the store.
pub struct Sidecar {
    pub proc: Proc,
    pub metrics_port: u16,
}

pub fn start_sidecar(dir: &Path, socket: &Path) -> Result<Sidecar> {
    let metrics_port = free_port()?;
    let cfg = dir.join("sidecar.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ingest]\nsocket = \"{}\"\nsocket_mode = \"0666\"\n[store]\ndata_dir = \"{}\"\nspool_dir = \"{}\"\nbatch_records = 20000\nflush_ms = 300\n[http]\nlisten = \"127.0.0.1:{metrics_port}\"\n[scoring]\nenabled = false\n[dashboard]\nenabled = false\n",
            socket.display(),
            dir.join("store").display(),
            dir.join("spool").display()
        ),
    )?;
    let exe = std::env::current_exe()?;
    let proc = Proc::spawn(
        "ja4-sidecar serve",
        Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&cfg)
            .env("JA4_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    )?;
    wait_tcp(metrics_port, "the sidecar", Duration::from_secs(30))?;
    Ok(Sidecar { proc, metrics_port })
}

impl Sidecar {
    /// A counter from `/metrics`.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let mut s = TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        body.lines()
            .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    /// Waits until the inserted count stops growing for `quiet`.
    pub fn settle(&self, quiet: Duration, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut last = (0, Instant::now());
        while Instant::now() < deadline {
            let n = self.metric("ja4_store_inserted_total").unwrap_or(0);
            if n != last.0 {
                last = (n, Instant::now());
            } else if last.1.elapsed() >= quiet {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        last.0
    }
}

/// dnsmasq answering PTR/A for the lab's genuine crawler addresses.
pub fn start_dnsmasq(records: &[(Ipv4Addr, String)]) -> Result<(Proc, SocketAddr)> {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
        s.local_addr()?.port()
    };
    let user = if is_root() {
        "root".to_owned()
    } else {
        std::env::var("USER").unwrap_or_default()
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
        "--local=/127.in-addr.arpa/",
        "--local=/googlebot.com/",
    ])
    .arg(format!("--port={port}"))
    .arg(format!("--user={user}"))
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (ip, host) in records {
        cmd.arg(format!("--host-record={host},{ip}"));
    }
    let p = Proc::spawn("dnsmasq", &mut cmd)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let r = crate::dns::Resolver::new(addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.query("localhost.googlebot.com", crate::dns::A).is_err() {
        if Instant::now() > deadline {
            bail!("dnsmasq did not answer on port {port} (Debian package dnsmasq-base)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((p, addr))
}

/// An HTTP CONNECT proxy on 127.0.0.1 that opens every tunnel from `source` to the site:
/// browsers cannot choose their source address, so each simulated browser gets its own proxy.
pub struct SourceProxy {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for SourceProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

pub fn start_proxy(source: Ipv4Addr, site_port: u16) -> Result<SourceProxy> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = std::sync::Arc::clone(&stop);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop2.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let Ok(client) = conn else { continue };
            std::thread::spawn(move || {
                let _ = tunnel(client, source, site_port);
            });
        }
    });
    Ok(SourceProxy { port, stop })
}

fn tunnel(mut client: TcpStream, source: Ipv4Addr, site_port: u16) -> std::io::Result<()> {
    // Read the CONNECT request head.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        if client.read(&mut b)? == 0 {
            return Ok(());
        }
        head.push(b[0]);
    }
    // Only the site: the browser's own background traffic (update checks, accounts) is refused.
    if !head.starts_with(format!("CONNECT {SITE_HOST}:").as_bytes()) {
        client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n")?;
        return Ok(());
    }
    let sock = socket2_connect(source, site_port)?;
    client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
    let (mut c2, mut s2) = (client.try_clone()?, sock.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let (mut s3, mut c3) = (sock, client);
    let _ = std::io::copy(&mut s3, &mut c3);
    let _ = c3.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    Ok(())
}

/// A TCP connection to the site on 127.0.0.1 from `source`.
pub fn socket2_connect(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::from((source, 0)).into())?;
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(s.into())
}
