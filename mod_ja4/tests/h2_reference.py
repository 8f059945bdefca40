"""The test's independent HTTP/2 fingerprint: a server that reads each client's raw frames
itself (its own framing, the `hpack` package's decoder — nothing of mod_ja4), writes
`path|akamai` per connection, and answers every request with `ok` through the `h2` package.

Usage: h2_reference.py CERT KEY TLS_PORT CLEAR_PORT OUT
"""
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
LETTERS = {b":method": "m", b":authority": "a", b":scheme": "s", b":path": "p", b":protocol": "r"}
lock = threading.Lock()


def fingerprint(raw):
    """(path, akamai) once the first request's header block is complete, else None."""
    if len(raw) < 24 or raw[:24] != PREFACE:
        return None
    at, settings, wu, prios, block, block_stream = 24, None, None, [], b"", None
    while at + 9 <= len(raw):
        n = int.from_bytes(raw[at:at + 3], "big")
        ty, flags = raw[at + 3], raw[at + 4]
        stream = int.from_bytes(raw[at + 5:at + 9], "big") & 0x7FFFFFFF
        if at + 9 + n > len(raw):
            return None
        p = raw[at + 9:at + 9 + n]
        at += 9 + n
        if ty == 4 and not flags & 1 and settings is None:
            settings = [(int.from_bytes(p[i:i + 2], "big"), int.from_bytes(p[i + 2:i + 6], "big"))
                        for i in range(0, len(p), 6)]
        elif ty == 8 and stream == 0 and wu is None:
            wu = int.from_bytes(p[:4], "big") & 0x7FFFFFFF
        elif ty == 2:
            dep = int.from_bytes(p[:4], "big")
            prios.append(f"{stream}:{dep >> 31}:{dep & 0x7FFFFFFF}:{p[4] + 1}")
        elif ty == 1:
            i, pad = 0, 0
            if flags & 0x8:
                pad, i = p[0], 1
            if flags & 0x20:
                i += 5
            block, block_stream = p[i:len(p) - pad], stream
            if flags & 0x4:
                break
        elif ty == 9 and stream == block_stream:
            block += p
            if flags & 0x4:
                break
    else:
        return None
    order, path = [], ""
    for name, value in hpack.Decoder().decode(block, raw=True):
        if not name.startswith(b":"):
            break
        order.append(LETTERS.get(name, "x"))
        if name == b":path":
            path = value.decode()
    s = ";".join(f"{k}:{v}" for k, v in (settings or []))
    return path, f"{s}|{'00' if wu is None else wu}|{','.join(prios) or '0'}|{','.join(order)}"


def serve(sock, out):
    raw, done = b"", False
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, validate_inbound_headers=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            if not done:
                raw += data
                fp = fingerprint(raw)
                if fp is not None:
                    done = True
                    with lock, open(out, "a") as f:
                        f.write(f"{fp[0]}|{fp[1]}\n")
            for e in conn.receive_data(data):
                if isinstance(e, h2.events.RequestReceived):
                    conn.send_headers(e.stream_id, [(":status", "200"), ("content-length", "3"),
                                                    ("content-type", "text/html")])
                    conn.send_data(e.stream_id, b"ok\n", end_stream=True)
                elif isinstance(e, h2.events.ConnectionTerminated):
                    sock.sendall(conn.data_to_send())
                    return
            sock.sendall(conn.data_to_send())
    except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
        return
    finally:
        sock.close()


def listen(port, ctx, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    while True:
        c, _ = s.accept()

        def run(c=c):
            try:
                c = ctx.wrap_socket(c, server_side=True) if ctx else c
            except (OSError, ssl.SSLError):
                c.close()
                return
            serve(c, out)
        threading.Thread(target=run, daemon=True).start()


def main():
    cert, key, tls_port, clear_port, out = sys.argv[1:6]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    threading.Thread(target=listen, args=(int(clear_port), None, out), daemon=True).start()
    print("ready", flush=True)
    listen(int(tls_port), ctx, out)


if __name__ == "__main__":
    main()
