//! The lab's clients: real programs, each from its own loopback address — headless Chromium
//! (through a per-browser CONNECT proxy bound to its address), curl, Python's `ssl`/`http`,
//! and Java's TLS stack.
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

/// The Python client: GET/POST bursts over one keep-alive TLS connection, or handshakes only.
pub(crate) const PYTHON_CLIENT: &str = r#"
import http.client, socket, ssl, sys
mode, src, port, ua, count, pattern = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
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
    headers = {"User-Agent": ua, "Accept": "*/*"}
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

/// A person in headless Chromium: `pages` page views (with their styles, scripts, images and
/// cookies) with think times, through a proxy that connects from `src`.
pub(crate) fn chromium(
    dir: &Path,
    src: Ipv4Addr,
    port: u16,
    lang: &str,
    pages: &[String],
    think: Duration,
) -> Result<()> {
    let proxy = start_proxy(src, port)?;
    let profile = dir.join(format!("chromium-{src}"));
    for (i, p) in pages.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(think);
        }
        status(
            Command::new(chromium_binary())
                .args([
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--ignore-certificate-errors",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-default-apps",
                    "--virtual-time-budget=3000",
                    "--timeout=15000",
                ])
                .arg(format!("--proxy-server=http://127.0.0.1:{}", proxy.port))
                .arg(format!("--user-data-dir={}", profile.display()))
                // People do not browse headless: the headless marker is a bot signal (and
                // a crawler rule), so the browser presents its ordinary user agent.
                .arg(format!("--user-agent={CHROME_UA}"))
                .arg(format!("--lang={lang}"))
                .arg(format!("--accept-lang={lang}"))
                .arg("--dump-dom")
                .arg(url(port, p))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "chromium",
        )?;
    }
    Ok(())
}

pub(crate) fn chromium_binary() -> &'static str {
    if Path::new("/usr/bin/chromium").exists() {
        "/usr/bin/chromium"
    } else {
        "chromium-browser"
    }
}
