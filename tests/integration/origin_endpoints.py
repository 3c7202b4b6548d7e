# SPDX-License-Identifier: Apache-2.0
"""The origin's endpoints (tests/integration/origin.py): one request handler for every
listener; each request is recorded in the listener's `Origin` when its headers arrive and
completed when its body has been read.

Endpoints (any listener):
  GET|HEAD /                 "hello from origin" (Content-Length 17)
  * /echo                    echoes the request body (fixed length or chunked request);
                             /echo?headers=1 answers a JSON report instead (see report());
                             /echo?sink=1 reads the body without keeping it and answers the
                             JSON report with its length and sha256 (for large uploads)
  * /inspect[/...]           the JSON report, whatever the path
  GET /path-echo/...         the raw request target it received, as text/plain
  GET /big?mb=N              N MiB of deterministic bytes (big_bytes()), Content-Length
  GET /big-chunked?mb=N      the same bytes, Transfer-Encoding: chunked
  GET /sse?n=N&interval=S[&gate=T]
                             text/event-stream, chunked: event 1 at once, then events 2..N
                             S seconds apart; with gate=T it waits after event 1 until the
                             test calls open_gate(T) (upper bound 30 s). sse_progress[T] =
                             events sent so far, sse_done[T] set at the end
  GET /ws                    WebSocket (RFC 6455, by hand): echoes text/binary frames,
                             answers ping with pong, close with close
  GET /reset-mid-body        Content-Length 1 MiB, 100 KiB of body, then RST (SO_LINGER 0)
  GET /slow-headers?delay=S  waits S seconds (default 5) before answering "slow"
  GET /status?code=N         answers status N with an empty body (no body for 204/304)
  GET /hop-response          a response carrying hop-by-hop headers (Connection: X-Origin-Hop,
                             X-Origin-Hop, Keep-Alive, Proxy-Connection) and an end-to-end
                             X-End: kept
  GET /close-delimited       HTTP/1.1 response with neither Content-Length nor chunked: the
                             body ends when the origin closes the connection
  GET /bad-chunked[?late=1]  Transfer-Encoding: chunked with an invalid chunk size line at
                             once (or, with late=1, after one valid 5-byte chunk "hello")
  GET /early-hints?delay=S   waits S seconds (default 0.5), sends 103 Early Hints, waits S
                             again, then answers "hinted"
  GET /nominate-framing      a response whose Connection header names Content-Length and
                             Transfer-Encoding (they must not be dropped as hop-by-hop), body
                             "framed"
"""
from __future__ import annotations

import hashlib
import http.server
import json
import socket
import ssl
import struct
import time
import urllib.parse
from typing import TYPE_CHECKING

from origin_payload import MIB, big_block
from origin_websocket import (
    WS_BINARY, WS_CLOSE, WS_PING, WS_PONG, WS_TEXT, ws_accept, ws_encode, ws_read_frame)

if TYPE_CHECKING:
    from origin import Origin


HELLO = b"hello from origin"
RESET_BODY_LEN = MIB
RESET_SENT = 100 * 1024
SSE_DEFAULT_N = 3


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "landjail-test-origin"
    sys_version = ""

    def __init__(self, request, client_address, server, sni=None):
        self.sni = sni
        super().__init__(request, client_address, server)

    def log_message(self, fmt, *args):
        pass

    # every method goes through dispatch()
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    # ---- helpers ----
    @property
    def origin(self) -> Origin:
        return self.server.origin

    def _send(self, code: int, body: bytes = b"", ctype: str = "text/plain",
              extra: list | None = None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra or []:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")

    def _read_body(self, keep: bool):
        """Reads the request body (chunked or Content-Length). Returns the bytes (or b"" when
        not kept); updates the record; on a short body marks it incomplete and closes."""
        rec = self.record
        h = hashlib.sha256()
        kept = []
        total = 0
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        complete = True
        try:
            if "chunked" in te:
                self.origin._update(rec, chunked=True)
                while True:
                    line = self.rfile.readline(1024)
                    if not line.endswith(b"\n"):
                        complete = False
                        break
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while True:  # trailers
                            t = self.rfile.readline(65537)
                            if t in (b"\r\n", b"\n"):
                                break
                            if not t:
                                complete = False
                                break
                        break
                    left = size
                    while left:
                        data = self.rfile.read(min(left, 256 * 1024))
                        if not data:
                            complete = False
                            break
                        left -= len(data)
                        total += len(data)
                        h.update(data)
                        if keep:
                            kept.append(data)
                    if not complete:
                        break
                    if self.rfile.read(2) != b"\r\n":
                        complete = False
                        break
            else:
                left = int(self.headers.get("Content-Length") or 0)
                while left:
                    data = self.rfile.read(min(left, 256 * 1024))
                    if not data:
                        complete = False
                        break
                    left -= len(data)
                    total += len(data)
                    h.update(data)
                    if keep:
                        kept.append(data)
        except (OSError, ValueError):
            complete = False
        self.origin._update(rec, body_len=total, body_sha256=h.hexdigest(),
                            body_complete=complete)
        if not complete:
            self.close_connection = True
            return None
        return b"".join(kept)

    def report(self) -> dict:
        r = self.record
        return {k: r[k] for k in ("listener", "tls", "sni", "method", "target", "path", "query",
                                  "request_line", "version", "headers", "body_len",
                                  "body_sha256", "chunked")} | {"peer_port": r["peer"][1]}

    def _query(self) -> dict:
        return {k: v[-1] for k, v in urllib.parse.parse_qs(self.record["query"]).items()}

    # ---- dispatch ----
    def dispatch(self):
        target = self.path
        parts = urllib.parse.urlsplit(target)
        path = parts.path if not target.startswith("/") else target.split("?", 1)[0]
        self.record = self.origin._new_record(
            listener=self.server.name, tls=self.server.tls, sni=self.sni,
            peer=self.client_address[:2], method=self.command, target=target, path=path,
            query=parts.query, request_line=self.requestline, version=self.request_version,
            headers=[[k, v] for k, v in self.headers.items()])
        q = self._query()
        try:
            self._route(path, q)
        except (ConnectionError, ssl.SSLError, BrokenPipeError, socket.timeout, EOFError):
            self.close_connection = True

    def _route(self, path: str, q: dict):
        m = self.command
        if path == "/" and m in ("GET", "HEAD"):
            self._read_body(keep=False)
            return self._send(200, HELLO)
        if path == "/echo" or path.startswith("/inspect"):
            sink = q.get("sink") == "1"
            body = self._read_body(keep=not sink)
            if body is None:
                return
            if sink or q.get("headers") == "1" or path.startswith("/inspect"):
                return self._send(200, json.dumps(self.report()).encode(), "application/json")
            return self._send(200, body, "application/octet-stream")
        if path.startswith("/path-echo/"):
            self._read_body(keep=False)
            return self._send(200, self.record["target"].encode())
        if path in ("/big", "/big-chunked"):
            self._read_body(keep=False)
            mb = int(q.get("mb", "1"))
            chunked = path == "/big-chunked"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(mb * MIB))
            self.end_headers()
            if m == "HEAD":
                return
            for i in range(mb):
                block = big_block(i)
                if chunked:
                    for off in range(0, MIB, 64 * 1024):
                        self._chunk(block[off:off + 64 * 1024])
                else:
                    self.wfile.write(block)
            if chunked:
                self._end_chunks()
            return
        if path == "/sse":
            return self._sse(q)
        if path == "/ws":
            return self._websocket()
        if path == "/reset-mid-body":
            self._read_body(keep=False)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(RESET_BODY_LEN))
            self.end_headers()
            self.wfile.write(big_block(0)[:RESET_SENT])
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            # Closing every reference closes the fd now, and SO_LINGER 0 turns it into RST.
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
            return
        if path == "/slow-headers":
            self._read_body(keep=False)
            self.origin.stopping.wait(float(q.get("delay", "5")))
            return self._send(200, b"slow")
        if path == "/status":
            self._read_body(keep=False)
            code = int(q.get("code", "200"))
            self.send_response(code)
            if code not in (204, 304) and not 100 <= code < 200:
                self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/hop-response":
            self._read_body(keep=False)
            return self._send(200, b"hop", extra=[
                ("Connection", "X-Origin-Hop"), ("X-Origin-Hop", "must-not-reach-client"),
                ("Keep-Alive", "timeout=5, max=100"), ("Proxy-Connection", "keep-alive"),
                ("X-End", "kept")])
        if path == "/close-delimited":
            self._read_body(keep=False)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(100):
                self.wfile.write(b"line %03d of a close-delimited body\n" % i)
            self.close_connection = True
            return
        if path == "/bad-chunked":
            self._read_body(keep=False)
            head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            bad = b"ZZ-not-a-size\r\nxxxx\r\n"
            if q.get("late") == "1":
                self.wfile.write(head + b"5\r\nhello\r\n")
                self.wfile.flush()
                time.sleep(0.1)
                self.wfile.write(bad)
            else:
                self.wfile.write(head + bad)  # one write: one TLS record
            self.close_connection = True
            return
        if path == "/early-hints":
            self._read_body(keep=False)
            delay = float(q.get("delay", "0.5"))
            self.origin.stopping.wait(delay)
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            self.wfile.flush()
            self.origin.stopping.wait(delay)
            return self._send(200, b"hinted")
        if path == "/nominate-framing":
            self._read_body(keep=False)
            return self._send(200, b"framed", extra=[
                ("Connection", "Content-Length, Transfer-Encoding, X-Gone"), ("X-Gone", "1")])
        self._read_body(keep=False)
        return self._send(404, b"no such endpoint: " + path.encode())

    def _sse(self, q: dict):
        self._read_body(keep=False)
        n = int(q.get("n", str(SSE_DEFAULT_N)))
        interval = float(q.get("interval", "0.5"))
        token = q.get("gate")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        key = token or "sse-%d" % self.record["id"]
        for i in range(1, n + 1):
            if i == 2 and token:
                self.origin.gate(token).wait(30)
            elif i > 1:
                self.origin.stopping.wait(interval)
            self._chunk(b"id: %d\ndata: event %d\n\n" % (i, i))
            with self.origin.changed:
                self.origin.sse_progress[key] = i
                self.origin.changed.notify_all()
        self._end_chunks()
        with self.origin.changed:
            self.origin.sse_done[key] = True
            self.origin.changed.notify_all()

    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key")
        upgrade = (self.headers.get("Upgrade") or "").lower()
        conn_tokens = [t.strip().lower() for t in (self.headers.get("Connection") or "").split(",")]
        if upgrade != "websocket" or "upgrade" not in conn_tokens or not key:
            return self._send(400, b"not a websocket handshake")
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", ws_accept(key))
        self.end_headers()
        self.close_connection = True
        frames = 0
        while True:
            try:
                fin, op, masked, payload = ws_read_frame(self.rfile)
            except (EOFError, OSError):
                break
            frames += 1
            self.origin._update(self.record, ws_frames=frames, ws_last_masked=masked)
            if op in (WS_TEXT, WS_BINARY):
                self.wfile.write(ws_encode(op, payload, mask=False))
            elif op == WS_PING:
                self.wfile.write(ws_encode(WS_PONG, payload, mask=False))
            elif op == WS_CLOSE:
                self.wfile.write(ws_encode(WS_CLOSE, payload[:2], mask=False))
                break
