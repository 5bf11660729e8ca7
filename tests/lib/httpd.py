#!/usr/bin/env python3
"""httpd.py - a tiny misbehaving web server for ADD <url> tests.

  /file     3000 bytes ("0123456789" repeated), Last-Modified 2001-09-09
  /after    the same, but a request without Range gets the first 1000
            bytes and then silence on an open connection; a Range request
            is served whole (206): a client that resumes completes
  /drip     headers (Content-Length 3000), then one byte every 0.5 s
  /big      2 MiB with its Content-Length
  /endless  no Content-Length, data until the client leaves
Every request is logged to LOG as "PATH RANGE".

usage: httpd.py PORT_FILE LOG
"""
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, LOG = sys.argv[1:3]
DATA = b"0123456789" * 300


def hold(conn, seconds=600):
    conn.settimeout(seconds)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def head(self, code, length, extra=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Last-Modified", "Sun, 09 Sep 2001 01:46:40 GMT")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def do_GET(self):
        rng = self.headers.get("Range", "-")
        with open(LOG, "a") as f:
            f.write("%s %s\n" % (self.path, rng))
        try:
            if self.path in ("/file", "/after"):
                start = int(rng[6:-1]) if rng.startswith("bytes=") else 0
                body = DATA[start:]
                if start:
                    self.head(206, len(body), {"Content-Range": "bytes %d-%d/%d" % (
                        start, len(DATA) - 1, len(DATA))})
                else:
                    self.head(200, len(body))
                if self.path == "/after" and not start:
                    self.wfile.write(body[:1000])
                    self.wfile.flush()
                    return hold(self.connection)
                self.wfile.write(body)
            elif self.path == "/drip":
                self.head(200, len(DATA))
                self.wfile.flush()
                for b in DATA:
                    time.sleep(0.5)
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
            elif self.path == "/big":
                self.head(200, 2 << 20)
                for _ in range(32):
                    self.wfile.write(b"x" * 65536)
            elif self.path == "/endless":
                self.head(200, None)
                while True:
                    self.wfile.write(b"y" * 65536)
            else:
                self.head(404, 0)
        except OSError:
            pass


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
srv.serve_forever()
