#!/usr/bin/env python3
"""A test webhook receiver for the LetheNotify tests.

Listens on 127.0.0.1 and a free port, prints one JSON line {"url": "http://127.0.0.1:P"}, verifies
each delivery's Lethe-Signature with SECRET (the verification docs/notifications.md shows), appends
{"path", "headers", "body", "verified"} to LOG as one JSON line, and exits when its standard input
closes. Paths: /fail answers 500, /slow answers after 5 s, anything else 204.

  webhook_receiver.py LOG SECRET
"""
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify_lethe_signature(header, body, secret, tolerance=300, now=None):
    """True if header (`t=...,v1=...`) signs body (bytes) under secret (bytes), and is fresh."""
    now = time.time() if now is None else now
    t, signatures = None, []
    for part in header.split(","):
        k, _, v = part.strip().partition("=")
        if k == "t" and v.isdigit():
            t = int(v)
        elif k == "v1":
            signatures.append(v)
    if t is None or not signatures or abs(now - t) > tolerance:
        return False
    expected = hmac.new(secret, b"%d." % t + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


def main():
    log, secret = sys.argv[1], sys.argv[2].encode()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify_lethe_signature(self.headers.get("Lethe-Signature", ""), body, secret)
            with lock, open(log, "a") as f:
                f.write(json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": body.decode(), "verified": ok}) + "\n")
            if self.path == "/slow":
                time.sleep(5)
            status = 500 if self.path == "/fail" else 204
            self.send_response(status)
            payload = b"boom: the receiver failed" if status == 500 else b""
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"url": "http://127.0.0.1:%d" % server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
