"""An HTTP proxy on 127.0.0.1 that damages uploads on their way to the object store: one byte
in the middle of every large PUT body is flipped, the rest is relayed as is. It stands for a
faulty network path or store, so the tests can check that the upload step notices."""

from __future__ import annotations

import http.client
import http.server
import threading

LOOPBACK = "127.0.0.1"
MIN_BODY = 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream_port = 0
    damaged = 0

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = b""
            while True:
                line = self.rfile.readline()
                raw += line
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the empty line
                        trailer = self.rfile.readline()
                        raw += trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            return raw
                raw += self.rfile.read(size + 2)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _relay(self) -> None:
        body = self._body()
        if self.command == "PUT" and len(body) >= MIN_BODY:
            damaged = bytearray(body)
            damaged[len(damaged) // 2] ^= 0xFF
            body = bytes(damaged)
            type(self).damaged += 1
        conn = http.client.HTTPConnection(LOOPBACK, self.upstream_port, timeout=60)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for key, value in self.headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response_only(resp.status, resp.reason)
        head = self.command == "HEAD"
        for key, value in resp.getheaders():
            skip = ("transfer-encoding", "connection") + (() if head else ("content-length",))
            if key.lower() not in skip:
                self.send_header(key, value)
        if not head:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay


class CorruptingProxy:
    """`with CorruptingProxy(upstream_port) as proxy:` then send requests to `proxy.port`."""

    def __init__(self, upstream_port: int):
        self.handler = type("Handler", (_Handler,), {"upstream_port": upstream_port, "damaged": 0})
        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), self.handler)
        self.port = self.server.server_address[1]

    @property
    def damaged(self) -> int:
        return self.handler.damaged

    def __enter__(self) -> CorruptingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
