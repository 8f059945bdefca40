//! The lab's clients: real programs, each from its own loopback address — Chromium and
//! Firefox ESR driven by puppeteer-core (through a per-browser CONNECT proxy bound to its
//! address) as people clicking through the shop or as headless crawlers, curl-impersonate
//! (PyPI curl-cffi) presenting real browsers' TLS and HTTP/2, curl, Python's `ssl`/`http`,
//! Go's and Java's TLS stacks.
//!
//! Owns: driving one simulated client of a scenario to completion.
//! Never: fakes a fingerprint: every request comes from the named client's own TLS stack.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::infra::{start_proxy, SITE_HOST};

pub(crate) const CHROME_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36";
pub(crate) const GOOGLEBOT_UA: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// The Python client: GET/POST bursts over one keep-alive TLS connection (`get`, `post`),
/// slowly (`slow`: one page every 5 s), with Chrome's full header set in Chrome's order
/// (`chrome-headers`), or handshakes only.
pub(crate) const PYTHON_CLIENT: &str = r#"
import http.client, socket, ssl, sys, time
mode, src, port, ua, count, pattern = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
CHROME = [("sec-ch-ua", '"Chromium";v="141", "Not?A_Brand";v="8"'), ("sec-ch-ua-mobile", "?0"),
  ("sec-ch-ua-platform", '"Linux"'), ("upgrade-insecure-requests", "1"), ("user-agent", ua),
  ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"),
  ("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate"), ("sec-fetch-user", "?1"),
  ("sec-fetch-dest", "document"), ("accept-encoding", "gzip, deflate"), ("accept-language", "en-US,en;q=0.9")]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def sock():
    s = socket.create_connection(("127.0.0.1", port), source_address=(src, 0), timeout=10)
    return ctx.wrap_socket(s, server_hostname="shop.lab")
if mode == "handshake":
    for _ in range(count):
        sock().close()
    sys.exit(0)
class Conn(http.client.HTTPSConnection):
    def connect(self):
        self.sock = sock()
c = Conn("shop.lab", port, context=ctx)
for i in range(count):
    path = pattern.replace("{i}", str(i))
    body = ("u=user%d&p=secret%d" % (i, i)) if mode == "post" else None
    headers = dict(CHROME) if mode == "chrome-headers" else {"User-Agent": ua, "Accept": "*/*"}
    if mode == "slow" and i > 0:
        time.sleep(5)
    if body: headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        c.request("POST" if mode == "post" else "GET", path, body=body, headers=headers)
        c.getresponse().read()
    except Exception:
        c = Conn("shop.lab", port, context=ctx)
"#;

/// The Java client: GETs over one keep-alive connection with Java's own TLS stack.
pub(crate) const JAVA_CLIENT: &str = r#"
import java.io.*; import java.net.*; import javax.net.ssl.*; import java.security.cert.X509Certificate;
public class LabClient {
  public static void main(String[] a) throws Exception {
    String src = a[0]; int port = Integer.parseInt(a[1]); String ua = a[2]; int n = Integer.parseInt(a[3]); String pattern = a[4];
    TrustManager[] all = { new X509TrustManager() {
      public void checkClientTrusted(X509Certificate[] c, String t) {}
      public void checkServerTrusted(X509Certificate[] c, String t) {}
      public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; } } };
    SSLContext ctx = SSLContext.getInstance("TLS"); ctx.init(null, all, null);
    Socket raw = new Socket(); raw.bind(new InetSocketAddress(src, 0)); raw.connect(new InetSocketAddress("127.0.0.1", port), 10000);
    SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(raw, "shop.lab", port, true);
    SSLParameters p = s.getSSLParameters(); p.setServerNames(java.util.List.of(new SNIHostName("shop.lab"))); s.setSSLParameters(p);
    OutputStream out = s.getOutputStream(); DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
    for (int i = 0; i < n; i++) {
      String path = pattern.replace("{i}", Integer.toString(i));
      out.write(("GET " + path + " HTTP/1.1\r\nHost: shop.lab\r\nUser-Agent: " + ua + "\r\nAccept: */*\r\n\r\n").getBytes()); out.flush();
      int len = 0; String line;
      while (!(line = readLine(in)).isEmpty()) { if (line.toLowerCase().startsWith("content-length:")) len = Integer.parseInt(line.substring(15).trim()); }
      in.readFully(new byte[len]);
    }
    s.close();
  }
  static String readLine(DataInputStream in) throws IOException {
    StringBuilder b = new StringBuilder(); int c;
    while ((c = in.read()) != -1 && c != '\n') if (c != '\r') b.append((char) c);
    return b.toString();
  }
}
"#;

/// The Go client: GETs with Go's net/http and crypto/tls (HTTP/2 when offered), from `src`.
pub(crate) const GO_CLIENT: &str = r#"
package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	src, port, ua, pattern := os.Args[1], os.Args[2], os.Args[3], os.Args[5]
	n, _ := strconv.Atoi(os.Args[4])
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, "127.0.0.1:"+port)
		},
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: "shop.lab"},
		ForceAttemptHTTP2: true,
	}
	c := &http.Client{Transport: tr}
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("GET", "https://shop.lab:"+port+strings.ReplaceAll(pattern, "{i}", strconv.Itoa(i)), nil)
		req.Header.Set("User-Agent", ua)
		resp, err := c.Do(req)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
"#;

/// Builds the Go client once per lab directory (clients run in parallel threads).
fn go_binary(dir: &Path) -> Result<std::path::PathBuf> {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let bin = dir.join("lab_client_go");
    if bin.exists() {
        return Ok(bin);
    }
    let source = dir.join("lab_client.go");
    std::fs::write(&source, GO_CLIENT)?;
    status(
        Command::new("go")
            .arg("build")
            .arg("-o")
            .arg(&bin)
            .arg(&source)
            // The user's build cache: the standard library compiles once, not per lab.
            .env("GO111MODULE", "off"),
        "go build of the Go client (is golang-go installed? scripts/setup.sh installs it)",
    )?;
    Ok(bin)
}

/// The Go client: `count` GETs of `pattern` with Go's TLS stack.
pub(crate) fn go(
    dir: &Path,
    src: Ipv4Addr,
    port: u16,
    ua: &str,
    count: usize,
    pattern: &str,
) -> Result<()> {
    let bin = go_binary(dir)?;
    status(
        Command::new(bin).args(tool_args(src, port, ua, count, pattern)),
        "go client",
    )
}

/// The arguments every scripted client (Python, Java, Go) takes, in its order.
fn tool_args(src: Ipv4Addr, port: u16, ua: &str, count: usize, pattern: &str) -> [String; 5] {
    [
        src.to_string(),
        port.to_string(),
        ua.to_owned(),
        count.to_string(),
        pattern.to_owned(),
    ]
}

fn status(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    Ok(())
}

fn url(port: u16, path: &str) -> String {
    format!("https://{SITE_HOST}:{port}{path}")
}

/// curl from `src`: `paths` over one keep-alive connection, with `method`.
pub(crate) fn curl(
    src: Ipv4Addr,
    port: u16,
    ua: &str,
    method: &str,
    paths: &[String],
) -> Result<()> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sk",
        "--http1.1",
        "-o",
        "/dev/null",
        "-X",
        method,
        "-A",
        ua,
    ])
    .arg("--interface")
    .arg(src.to_string())
    .arg("--resolve")
    .arg(format!("{SITE_HOST}:{port}:127.0.0.1"));
    for p in paths {
        cmd.arg(url(port, p)).args(["-o", "/dev/null"]);
    }
    status(&mut cmd, "curl")
}

/// The Python client in `mode` (`get`, `post`, `handshake`).
pub(crate) fn python(
    dir: &Path,
    mode: &str,
    src: Ipv4Addr,
    port: u16,
    ua: &str,
    count: usize,
    pattern: &str,
) -> Result<()> {
    let script = dir.join("lab_client.py");
    if !script.exists() {
        std::fs::write(&script, PYTHON_CLIENT)?;
    }
    status(
        Command::new("python3")
            .arg(&script)
            .arg(mode)
            .args(tool_args(src, port, ua, count, pattern)),
        "python client",
    )
}

/// The Java client (single-file source launch, JDK 11+).
pub(crate) fn java(
    dir: &Path,
    src: Ipv4Addr,
    port: u16,
    ua: &str,
    count: usize,
    pattern: &str,
) -> Result<()> {
    let source = dir.join("LabClient.java");
    if !source.exists() {
        std::fs::write(&source, JAVA_CLIENT)?;
    }
    status(
        Command::new("java")
            .arg(&source)
            .args(tool_args(src, port, ua, count, pattern)),
        "java client",
    )
}

/// The browser a [`browse`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Browser {
    Chromium,
    Firefox,
}

/// What a browser does in [`browse`].
#[derive(Debug, Clone)]
pub(crate) enum Browsing {
    /// A person: opens the shop and clicks `clicks` links, thinking between pages.
    Person {
        clicks: usize,
        think: (Duration, Duration),
    },
    /// A headless crawler: fetches `urls` directly, images off, no pause.
    Crawler { urls: Vec<String> },
}

/// The browse script, written once per lab directory.
const BROWSE_SCRIPT: &str = include_str!("../assets/browse.mjs");
/// The impersonating scraper (curl-cffi).
const IMPERSONATE_SCRIPT: &str = include_str!("../assets/impersonate.py");

/// Writes `text` to `dir/name` once (clients start in parallel threads).
fn script(dir: &Path, name: &str, text: &str) -> Result<std::path::PathBuf> {
    static WRITE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir.join(name);
    if !path.exists() {
        std::fs::write(&path, text)?;
    }
    Ok(path)
}

/// A real browser session from `src` driven by puppeteer-core (`tools` is the setup
/// script's `.cache`: `node/node_modules`). Chromium presents the lab's Chrome user agent
/// (people do not browse headless: the headless marker is a crawler rule of its own);
/// Firefox presents its own.
pub(crate) fn browse(
    dir: &Path,
    tools: &Path,
    browser: Browser,
    src: Ipv4Addr,
    port: u16,
    lang: &str,
    what: &Browsing,
) -> Result<()> {
    let modules = tools.join("node/node_modules");
    anyhow::ensure!(
        modules.join("puppeteer-core").exists(),
        "{} has no puppeteer-core: run scripts/setup.sh",
        modules.display()
    );
    let proxy = start_proxy(src, port)?;
    let (mode, clicks, think, urls) = match what {
        Browsing::Person { clicks, think } => ("person", *clicks, *think, Vec::new()),
        Browsing::Crawler { urls } => {
            ("crawler", 0, (Duration::ZERO, Duration::ZERO), urls.clone())
        }
    };
    let (executable, user_agent) = match browser {
        Browser::Chromium => (chromium_binary(), CHROME_UA),
        Browser::Firefox => ("/usr/bin/firefox-esr", ""),
    };
    let config = serde_json::json!({
        "browser": if browser == Browser::Firefox { "firefox" } else { "chrome" },
        "executable": executable,
        "proxyPort": proxy.port,
        "origin": format!("https://{SITE_HOST}:{port}"),
        "mode": mode,
        "clicks": clicks,
        "thinkMs": [think.0.as_millis() as u64, think.1.as_millis() as u64],
        "urls": urls,
        "userAgent": user_agent,
        "lang": lang,
    });
    // Each browser gets its own module copy of the script next to node_modules' parent, so
    // that `import 'puppeteer-core'` resolves.
    let js = script(&tools.join("node"), "lab-browse.mjs", BROWSE_SCRIPT)?;
    let home = dir.join(format!("home-{src}"));
    std::fs::create_dir_all(&home)?;
    status(
        Command::new("node")
            .arg(&js)
            .arg(config.to_string())
            // Browsers write their profiles and caches under HOME.
            .env("HOME", &home)
            .stdout(Stdio::null()),
        match browser {
            Browser::Chromium => "chromium (puppeteer-core)",
            Browser::Firefox => "firefox-esr (puppeteer-core)",
        },
    )
}

/// A scraper impersonating browsers with curl-cffi from `src`: `count` pages of `pattern`,
/// as `targets` (one curl-cffi target, or several rotated per request).
pub(crate) fn impersonate(
    dir: &Path,
    tools: &Path,
    src: Ipv4Addr,
    port: u16,
    count: usize,
    pattern: &str,
    targets: &str,
) -> Result<()> {
    let python = tools.join("lab-venv/bin/python");
    anyhow::ensure!(
        python.exists(),
        "{} missing: run scripts/setup.sh (curl-cffi)",
        python.display()
    );
    let py = script(dir, "lab_impersonate.py", IMPERSONATE_SCRIPT)?;
    status(
        Command::new(python)
            .arg(py)
            .arg(src.to_string())
            .arg(port.to_string())
            .arg(SITE_HOST)
            .arg(count.to_string())
            .arg(pattern)
            .arg(targets),
        "curl-cffi impersonator",
    )
}

pub(crate) fn chromium_binary() -> &'static str {
    if Path::new("/usr/bin/chromium").exists() {
        "/usr/bin/chromium"
    } else {
        "chromium-browser"
    }
}
