#!/usr/bin/env python3
"""A tiny counting HTTP proxy between one Kuryr driver and Neutron.

scripts/bench points each driver's Neutron endpoint at its own instance, so
both drivers' Neutron calls are counted the same way. Every request is
forwarded unchanged to UPSTREAM (a fresh connection each time, as Neutron's
dev-stack WSGI server closes after every response) and logged as one line:

    <seq> <unix time at arrival> <ms spent in Neutron> <METHOD> <path?query> <status>

The listening port (0 = any free one) is written to PORT_FILE once the socket
is bound. Standard library only.

usage: neutron_proxy.py UPSTREAM_URL LISTEN_PORT PORT_FILE LOG_FILE
"""
import http.client
import os
import http.server
import socketserver
import sys
import threading
import time
import urllib.parse

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length",
}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards the driver
    upstream = None  # (host, port), set in main
    log_file = None
    lock = threading.Lock()
    seq = 0

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _forward(self):
        arrived = time.time()
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        t0 = time.monotonic()
        try:
            conn = http.client.HTTPConnection(*self.upstream, timeout=300)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, reason, resp_headers = resp.status, resp.reason, resp.getheaders()
            conn.close()
        except OSError as exc:
            data = ('{"proxy_error": "%s"}' % exc).encode()
            status, reason, resp_headers = 502, "Bad Gateway", [("Content-Type", "application/json")]
        ms = (time.monotonic() - t0) * 1000
        with Proxy.lock:
            Proxy.seq += 1
            Proxy.log_file.write(
                "%d %.6f %.1f %s %s %d\n" % (Proxy.seq, arrived, ms, self.command, self.path, status))
            Proxy.log_file.flush()
        self.send_response_only(status, reason)
        for k, v in resp_headers:
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        if not no_body:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not no_body:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

    def log_message(self, *_args):  # the access log above is the only output
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    upstream, port, port_file, log_path = sys.argv[1:5]
    url = urllib.parse.urlsplit(upstream)
    Proxy.upstream = (url.hostname, url.port or 80)
    Proxy.log_file = open(log_path, "a", buffering=1)
    server = Server(("127.0.0.1", int(port)), Proxy)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
