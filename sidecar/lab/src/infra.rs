//! The lab's servers: a private httpd with mod_ja4 serving a small site over TLS, the sidecar's
//! ingest as a child process, dnsmasq answering the reverse DNS of the lab's crawlers, and
//! CONNECT proxies that give each browser its own loopback source address.
//!
//! Owns: what is the lab's own (the site, its httpd settings, the proxies); the processes
//! themselves are the test kit's (`ja4_testkit`), in their own process groups.
//! Never: leaves a process running: every handle stops its process on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ja4_testkit::dnsmasq::Dnsmasq;
use ja4_testkit::proc::{wait_tcp, Proc};
use ja4_testkit::sidecar::{Sidecar, SidecarConf};
use ja4_testkit::{httpd, tls};

pub(crate) const SITE_HOST: &str = "shop.lab";

/// The small site the lab's clients browse: pages linking each other, styles, scripts,
/// images, a login form and a search page.
pub(crate) fn write_site(htdocs: &Path, pages: usize) -> Result<()> {
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
pub(crate) struct Httpd {
    pub proc: Proc,
    pub port: u16,
}

pub(crate) fn start_httpd(root: &Path, module: &Path, socket: &Path, extra: &str) -> Result<Httpd> {
    if !module.exists() {
        bail!(
            "{} not found: build it (`cargo build --release -p mod_ja4`) or pass --module",
            module.display()
        );
    }
    // httpd reads relative paths from its ServerRoot.
    let module = std::fs::canonicalize(module)?;
    std::fs::create_dir_all(root)?;
    write_site(&root.join("htdocs"), 40)?;
    tls::self_signed(root, SITE_HOST, true)?;
    let port = ja4_testkit::free_port();
    if ja4_testkit::is_root() {
        // Children run as www-data: they must reach the documents and the socket.
        for p in [root.to_path_buf(), root.join("htdocs")] {
            let _ = Command::new("chmod").arg("755").arg(&p).status();
        }
    }
    let mut c =
        httpd::Conf::new(root).with_modules(&["mime", "dir", "socache_shmcb", "ssl", "http2"]);
    c.server_name = SITE_HOST.into();
    c.ja4 = Some(module);
    c.mpm_tuning =
        "StartServers 2\nThreadsPerChild 32\nMaxRequestWorkers 128\nServerLimit 4".into();
    c.listen = vec![format!("127.0.0.1:{port}")];
    c.log_format = Some("%a %r %>s %{JA4}e %{JA4H}e".into());
    c.directives = format!(
        "DirectoryIndex index.html\nKeepAliveTimeout 5\nSSLSessionCache shmcb:{root}/ssl_cache(512000)\nJA4ExportSocket {socket}\nJA4FlushInterval 100\nJA4CaptureInterface lo\nJA4CapturePorts {port}\n{extra}",
        root = root.display(),
        socket = socket.display(),
    );
    c.tls = Some(httpd::TlsVhost {
        addr: format!("*:{port}"),
        h2: true,
    });
    let conf = c.write()?;
    httpd::check(&conf)
        .map_err(|e| anyhow::anyhow!("apache2 -t (the lab's httpd configuration): {e}"))?;
    let proc = Proc::spawn(
        "httpd",
        Command::new("apache2")
            .arg("-f")
            .arg(&conf)
            .arg("-DFOREGROUND")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    if !wait_tcp(port, Duration::from_secs(20)) {
        bail!(
            "httpd did not listen on port {port}: {}",
            std::fs::read_to_string(root.join("error.log")).unwrap_or_default()
        );
    }
    Ok(Httpd { proc, port })
}

/// The sidecar's ingest (`serve`) of the lab, storing into `dir/store`; stopping it flushes to
/// the store.
pub(crate) fn start_sidecar(exe: &Path, dir: &Path) -> Result<Sidecar> {
    let mut c = SidecarConf::new(exe, dir);
    c.store = "batch_records = 20000\nflush_ms = 300".into();
    Ok(c.start(Duration::from_secs(30))?)
}

/// Waits until the sidecar's inserted count stops growing for `quiet`; that count.
pub(crate) fn settle(sidecar: &Sidecar, quiet: Duration, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut last = (0, Instant::now());
    while Instant::now() < deadline {
        let n = sidecar.metric("ja4_store_inserted_total").unwrap_or(0);
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() >= quiet {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    last.0
}

/// dnsmasq answering PTR/A for the lab's genuine crawler addresses.
pub(crate) fn start_dnsmasq(records: &[(Ipv4Addr, String)]) -> Result<Dnsmasq> {
    let records: Vec<String> = records
        .iter()
        .map(|(ip, host)| format!("host-record={host},{ip}"))
        .collect();
    Ok(Dnsmasq::start(
        &["127.in-addr.arpa", "googlebot.com"],
        &records,
    )?)
}

/// An HTTP CONNECT proxy on 127.0.0.1 that opens every tunnel from `source` to the site:
/// browsers cannot choose their source address, so each simulated browser gets its own proxy.
pub(crate) struct SourceProxy {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for SourceProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

pub(crate) fn start_proxy(source: Ipv4Addr, site_port: u16) -> Result<SourceProxy> {
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
pub(crate) fn socket2_connect(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::from((source, 0)).into())?;
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(s.into())
}
