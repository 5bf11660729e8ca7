#!/usr/bin/env python3
"""fakereg.py - a tiny lying OCI registry for hypr-fetch's tests.

Serves one OCI image layout read-only under any repository name, always
behind an anonymous bearer-token flow. What it does to each request is read
from MODE_FILE at request time (default "ok"):
  ok         serve faithfully (Range requests get 206)
  baddigest  blobs have their first byte changed (same length)
  truncate   blobs: full Content-Length, half the bytes, then close (also
             for Range requests, so resuming never completes)
  stall [N]  blobs (of N bytes or more): half the bytes, then hang (for
             Ctrl-C tests); Range ok
  hang       blobs: read the request, answer nothing, keep the connection
  drip [S]   blobs: headers, then one byte every S seconds (default 1)
  longcl     blobs: a Content-Length 1000 bytes longer than the body, then
             the connection stays open (Range requests too)
  after N    blobs: the first N bytes asked for (also of a Range), then the
             connection stays open: each resume gains N bytes
  404        every manifest is unknown
  429        every request is rate limited (Retry-After: 3600)
  oauth      no anonymous token: only a POSTed OAuth2 refresh-token grant
             with refresh_token=refresh-xyz gets one (identity tokens)
Every request is logged to LOG as "METHOD PATH RANGE".

usage: fakereg.py LAYOUT PORT_FILE LOG MODE_FILE
"""
import hashlib
import json
import os
import socket
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAYOUT, PORT_FILE, LOG, MODE_FILE = sys.argv[1:5]
TOKEN = "fake-token-123"


def mode():
    """The mode's name and its arguments."""
    try:
        with open(MODE_FILE) as f:
            words = f.read().split()
    except OSError:
        words = []
    return (words or ["ok"])[0], words[1:]


def hold(conn, seconds=600):
    """Keep the connection open and silent until the client leaves."""
    conn.settimeout(seconds)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def blob_path(digest):
    if not digest.startswith("sha256:") or len(digest) != 71:
        return None
    h = digest[7:]
    if any(c not in "0123456789abcdef" for c in h):
        return None
    p = os.path.join(LAYOUT, "blobs", "sha256", h)
    return p if os.path.exists(p) else None


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", ctype="application/json", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        with open(LOG, "a") as f:
            f.write("POST %s %s\n" % (self.path, sorted(form)))
        if (self.path.startswith("/token") and form.get("grant_type") == ["refresh_token"]
                and form.get("refresh_token") == ["refresh-xyz"]):
            return self.send(200, json.dumps({"access_token": TOKEN}).encode())
        return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        m, args = mode()
        with open(LOG, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path,
                                    self.headers.get("Range", "-")))
        if m == "429":
            return self.send(429, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}',
                             extra={"Retry-After": "3600"})
        if self.path.startswith("/token"):
            if m == "oauth":
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
            return self.send(200, json.dumps({"token": TOKEN}).encode())
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            port = self.server.server_address[1]
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', extra={
                "WWW-Authenticate": 'Bearer realm="http://127.0.0.1:%d/token",'
                                    'service="fakereg",scope="repository:x:pull"' % port})
        if self.path == "/v2/":
            return self.send(200, b"{}")
        parts = self.path.split("/")
        # /v2/<name...>/manifests/<ref> or /v2/<name...>/blobs/<digest>
        if len(parts) < 5 or parts[1] != "v2":
            return self.send(404)
        kind, ref = parts[-2], parts[-1]
        if kind == "manifests":
            return self.manifest(m, ref)
        if kind == "blobs":
            return self.blob(m, args, ref)
        return self.send(404)

    def manifest(self, m, ref):
        unknown = b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
        if m == "404":
            return self.send(404, unknown)
        with open(os.path.join(LAYOUT, "index.json")) as f:
            index = json.load(f)
        desc = None
        for d in index["manifests"]:
            if ref in (d["digest"],
                       d.get("annotations", {}).get("org.opencontainers.image.ref.name")):
                desc = d
        p = blob_path(desc["digest"] if desc else ref)
        if p is None:
            return self.send(404, unknown)
        body = open(p, "rb").read()
        mt = (desc or {}).get("mediaType") or json.loads(body).get(
            "mediaType", "application/vnd.oci.image.manifest.v1+json")
        self.send(200, body, ctype=mt, extra={
            "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest()})

    def blob(self, m, args, digest):
        p = blob_path(digest)
        if p is None:
            return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        if m == "hang":
            return hold(self.connection)
        data = open(p, "rb").read()
        if m == "baddigest":
            data = bytes([data[0] ^ 0xff]) + data[1:]
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                return self.send(416)
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) + (1000 if m == "longcl" else 0)))
        self.send_header("Docker-Content-Digest", digest)
        if start:
            self.send_header("Content-Range",
                             "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.end_headers()
        if m == "drip":
            self.wfile.flush()
            try:
                for b in body:
                    time.sleep(float(args[0]) if args else 1.0)
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
            except OSError:
                pass
            return
        if m in ("longcl", "after"):
            self.wfile.write(body if m == "longcl" else body[:int(args[0])])
            self.wfile.flush()
            return hold(self.connection)
        if m == "stall" and len(data) < int(args[0] if args else 0):
            m = "ok"
        if m == "truncate" or (m == "stall" and start == 0):
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            if m == "stall":
                time.sleep(60)
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
srv.serve_forever()
