#!/usr/bin/env bash
# Measures the JA4 of every client this machine can run, one capture per client, and prints
# the families (JA4_a[0..4] + JA4_b, see ml/src/identity.rs) as ja4-families.tsv rows:
#   family  application  category  example_ja4  measured_with
# Needs root (tcpdump), the tools scripts/setup.sh installs, and a built ja4-sidecar.
# Usage: refdata/measured/measure.sh [path/to/ja4-sidecar] > refdata/measured/ja4-families.tsv
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SIDECAR="${1:-$ROOT/target/debug/ja4-sidecar}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$((20000 + RANDOM % 20000))
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/k.pem" -out "$WORK/c.pem" \
  -subj /CN=localhost -days 1 >/dev/null 2>&1
# HTTP/1.1 and h2 offered, so ALPN-sensitive clients show what they send to a web server.
openssl s_server -www -quiet -accept "$PORT" -cert "$WORK/c.pem" -key "$WORK/k.pem" \
  -alpn h2,http/1.1 </dev/null >/dev/null 2>&1 &
sleep 1
URL="https://localhost:$PORT/"
NODE_MODULES="$ROOT/.cache/node/node_modules"

measure() { # name category "what it was" command...
  local name=$1 category=$2 with=$3; shift 3
  rm -f "$WORK/c.pcap" "$WORK/td.err"
  tcpdump -i lo --immediate-mode -U -n -s 0 -w "$WORK/c.pcap" "tcp port $PORT" 2>"$WORK/td.err" &
  local td=$!
  for _ in $(seq 50); do grep -q listening "$WORK/td.err" 2>/dev/null && break; sleep 0.1; done
  # s_server answers HTTP/1 only: a client that chose h2 waits, and is stopped.
  timeout 15 "$@" >/dev/null 2>&1 || true
  sleep 0.5; kill -INT "$td"; wait "$td" 2>/dev/null || true
  "$SIDECAR" pcap --format json "$WORK/c.pcap" 2>/dev/null \
    | python3 -c '
import json, sys
name, category, with_ = sys.argv[1:4]
seen = {}
for line in sys.stdin:
    j = json.loads(line).get("ja4", "")
    if len(j) == 36:
        seen.setdefault(j[:4] + "_" + j[11:23], j)
for fam, j in sorted(seen.items()):
    print("\t".join([fam, name, category, j, with_]))
' "$name" "$category" "$with"
}

cat > "$WORK/ff.mjs" <<JS
import puppeteer from 'puppeteer-core';
const b = await puppeteer.launch({browser: process.argv[2], executablePath: process.argv[3],
  headless: true, acceptInsecureCerts: true, args: process.argv[2] === 'chrome' ? ['--no-sandbox'] : []});
const p = await b.newPage(); await p.goto('$URL'); await p.goto('$URL?again'); await b.close();
JS
cp "$WORK/ff.mjs" "$ROOT/.cache/node/measure-browser.mjs"
printf '#family\tapplication\tcategory\texample_ja4\tmeasured_with\n'
measure "Chromium" browser "Debian chromium $(chromium --version 2>/dev/null | awk '{print $2}'), puppeteer-core" \
  node "$ROOT/.cache/node/measure-browser.mjs" chrome /usr/bin/chromium
measure "Mozilla Firefox" browser "Debian firefox-esr $(firefox-esr --version 2>/dev/null | awk '{print $3}'), puppeteer-core (WebDriver BiDi)" \
  node "$ROOT/.cache/node/measure-browser.mjs" firefox /usr/bin/firefox-esr
rm -f "$ROOT/.cache/node/measure-browser.mjs"
measure "curl" library "$(curl --version | head -1 | cut -d' ' -f1-2,5)" curl -sk -o /dev/null "$URL"
measure "curl" library "$(curl --version | head -1 | cut -d' ' -f1-2,5), --http1.1" curl -sk --http1.1 -o /dev/null "$URL"
measure "Wget" library "GNU Wget $(wget --version | head -1 | awk '{print $3}') (GnuTLS)" wget -q --no-check-certificate -O /dev/null "$URL"
measure "Python" library "CPython $(python3 -c 'import platform; print(platform.python_version())') urllib, $(python3 -c 'import ssl; print(ssl.OPENSSL_VERSION)')" \
  python3 -c "import ssl,urllib.request as u;c=ssl.create_default_context();c.check_hostname=False;c.verify_mode=ssl.CERT_NONE;u.urlopen('$URL',context=c).read()"
measure "Node.js" library "Node $(node --version) fetch (undici)" \
  env NODE_TLS_REJECT_UNAUTHORIZED=0 node -e "fetch('$URL').then(r=>r.text())"
measure "Node.js" library "Node $(node --version) https" \
  env NODE_TLS_REJECT_UNAUTHORIZED=0 node -e "require('https').get('$URL',r=>r.resume())"
cat > "$WORK/M.java" <<JAVA
import java.net.http.*; import java.net.URI; import javax.net.ssl.*; import java.security.cert.X509Certificate;
public class M { public static void main(String[] a) throws Exception {
  TrustManager[] all = { new X509TrustManager() { public void checkClientTrusted(X509Certificate[] c, String t) {}
    public void checkServerTrusted(X509Certificate[] c, String t) {} public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; } } };
  SSLContext ctx = SSLContext.getInstance("TLS"); ctx.init(null, all, null);
  System.setProperty("jdk.internal.httpclient.disableHostnameVerification", "true");
  HttpClient.newBuilder().sslContext(ctx).build().send(HttpRequest.newBuilder(URI.create("$URL")).build(), HttpResponse.BodyHandlers.discarding()); } }
JAVA
measure "Java" library "OpenJDK $(java -version 2>&1 | head -1 | cut -d'"' -f2) java.net.http.HttpClient" java -Djdk.internal.httpclient.disableHostnameVerification=true "$WORK/M.java"
cat > "$WORK/m.go" <<GO
package main
import ("crypto/tls"; "net/http")
func main() { c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}; r, err := c.Get("$URL"); if err == nil { r.Body.Close() } }
GO
(cd "$WORK" && GO111MODULE=off go build -o m m.go)
measure "Go" library "$(go version | awk '{print $3}') net/http" "$WORK/m"
if [ -x "$ROOT/.cache/lab-venv/bin/python" ]; then
  for t in chrome safari firefox; do
    measure "curl-impersonate ($t)" browser "curl-cffi $("$ROOT/.cache/lab-venv/bin/python" -c 'import curl_cffi; print(curl_cffi.__version__)') impersonate=$t: the browser's own TLS stack, copied" \
      "$ROOT/.cache/lab-venv/bin/python" -c "from curl_cffi import requests; requests.get('$URL', impersonate='$t', verify=False)"
  done
fi
