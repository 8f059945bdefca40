# A scraper that impersonates browsers with curl-impersonate (PyPI curl-cffi): Chrome's (or
# Safari's, Firefox's) TLS ClientHello, HTTP/2 settings and header set and order, a cookie
# jar, from the client's own address. Pages only, fetched directly, no pause.
# Usage: impersonate.py SRC PORT HOST COUNT PATTERN TARGETS (TARGETS: comma-separated
# curl-cffi targets; more than one rotates the impersonation per request).
import random, sys
from curl_cffi import requests
from curl_cffi.const import CurlOpt

src, port, host, count, pattern, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6].split(",")
opts = {CurlOpt.RESOLVE: [f"{host}:{port}:127.0.0.1".encode()]}
sessions = {t: requests.Session(impersonate=t, verify=False, interface=src, curl_options=opts) for t in targets}
for i in range(count):
    s = sessions[random.choice(targets)] if len(targets) > 1 else sessions[targets[0]]
    s.get(f"https://{host}:{port}" + pattern.replace("{i}", str(i)), timeout=15)
