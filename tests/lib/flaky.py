#!/usr/bin/env python3
"""flaky.py - an HTTP proxy in front of a real registry that drops chosen
requests, for hypr push's resume tests.

Each connection carries one request (sent upstream with "Connection:
close"). PLAN_FILE, read at each request, has lines "METHOD N ACTION": the
Nth request of that method (counted from 1 since the proxy started) gets
ACTION:
  drop      read the request headers, close the connection: nothing
            reaches the registry
  half      send the headers and half the body upstream, then close both
            sides (the registry saw a cut body)
  noanswer  forward the whole request, read the registry's answer, close
            the client's connection without it
Every request is logged to LOG as "METHOD PATH ACTION".

usage: flaky.py UPSTREAM_PORT PORT_FILE PLAN_FILE LOG
"""
import os
import socket
import sys
import threading

UP, PORT_FILE, PLAN_FILE, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
counts = {}
lock = threading.Lock()


def plan(method, n):
    try:
        with open(PLAN_FILE) as f:
            for line in f:
                w = line.split()
                if len(w) == 3 and w[0] == method and int(w[1]) == n:
                    return w[2]
    except OSError:
        pass
    return "pass"


def read_head(c):
    buf = c.recv(65536)
    if buf[:1] == b"\x16":  # a TLS hello: plain HTTP here, as the registry says
        c.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return None, b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return None, b""
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def relay(src, dst):
    try:
        while True:
            d = src.recv(65536)
            if not d:
                break
            dst.sendall(d)
    except OSError:
        pass


def handle(c):
    try:
        head, rest = read_head(c)
        if head is None:
            return
        lines = head.split("\r\n")
        method, path = lines[0].split(" ")[:2]
        length = 0
        hdrs = []
        for h in lines[1:]:
            k = h.split(":", 1)[0].strip().lower()
            if k == "content-length":
                length = int(h.split(":", 1)[1])
            if k in ("connection", "keep-alive"):
                continue
            hdrs.append(h)
        with lock:
            counts[method] = counts.get(method, 0) + 1
            act = plan(method, counts[method])
            with open(LOG, "a") as f:
                f.write("%s %s %s\n" % (method, path, act))
        if act == "drop":
            return
        body = rest
        while len(body) < length:
            d = c.recv(65536)
            if not d:
                break
            body += d
        u = socket.create_connection(("127.0.0.1", UP))
        req = "\r\n".join([lines[0]] + hdrs + ["Connection: close", "", ""]).encode("latin-1")
        if act == "half":
            u.sendall(req + body[: len(body) // 2])
            u.close()
            return
        u.sendall(req + body)
        if act == "noanswer":
            while u.recv(65536):  # read it all, answer nothing
                pass
            u.close()
            return
        relay(u, c)
        u.close()
    except OSError:
        pass
    finally:
        c.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    with open(PORT_FILE + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(PORT_FILE + ".tmp", PORT_FILE)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


main()
