"""A local origin server for the landjail-proxy integration tests (standard library only).

One `Origin` holds the shared state (what every listener received, gates the tests open, the
progress of streaming endpoints); `Origin.listen()` adds a listener: plain HTTP or HTTPS, on
127.0.0.1 or ::1, with a given certificate. Every request is recorded *when its headers
arrive* (method, raw request target, headers as received, TLS SNI, the peer's address) and
completed when its body has been read, so a test can assert what the origin received, and
that a denied request never reached it.

Endpoints: see origin_endpoints.py (one handler for every listener).

Run on its own for manual checks:
  /usr/bin/python3 tests/integration/origin.py --http 8080 --https 8443 --cert C --key K
"""

from __future__ import annotations

import argparse
import http.server
import socket
import ssl
import sys
import threading
import time

from origin_endpoints import (  # noqa: F401  (re-exported: the tests use origin.X)
    HELLO, RESET_BODY_LEN, RESET_SENT, SSE_DEFAULT_N, _Handler)
from origin_payload import MIB, big_block, big_bytes_sha256  # noqa: F401  (re-exported)
from origin_websocket import (  # noqa: F401  (re-exported)
    WS_BINARY, WS_CLOSE, WS_PING, WS_PONG, WS_TEXT, ws_accept, ws_encode, ws_read_frame)


# ---- shared state ----------------------------------------------------------------------------


class Record(dict):
    """One request as the origin received it (a dict, so it prints well in assertion output).

    Keys: id, listener, tls, sni, peer, method, target, path, query, request_line, version,
    headers ([name, value] as received, in order, duplicates kept), body_len, body_sha256,
    body_complete (None while the body is being read), chunked, time."""

    def header(self, name: str):
        for k, v in self["headers"]:
            if k.lower() == name.lower():
                return v
        return None

    def header_names(self):
        return [k.lower() for k, _ in self["headers"]]


class Origin:
    def __init__(self):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.records: list[Record] = []
        self.tls_errors: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.sse_progress: dict[str, int] = {}
        self.sse_done: dict[str, bool] = {}
        self.stopping = threading.Event()
        self.servers: list[_Server] = []
        self._next_id = 0

    # -- listeners --
    def listen(self, name: str, host: str = "127.0.0.1", port: int = 0,
               certfile: str | None = None, keyfile: str | None = None) -> "_Server":
        ctx = None
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            ctx.sni_callback = _remember_sni
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        srv = _Server(self, name, (host, port), family, ctx)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                             name="origin-" + name, daemon=True)
        t.start()
        with self.lock:
            self.servers.append(srv)
        return srv

    def stop(self):
        self.stopping.set()
        for g in list(self.gates.values()):
            g.set()
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()

    # -- records --
    def _new_record(self, **fields) -> Record:
        with self.changed:
            self._next_id += 1
            rec = Record(id=self._next_id, time=time.monotonic(), body_len=0, body_sha256=None,
                         body_complete=None, chunked=False, **fields)
            self.records.append(rec)
            self.changed.notify_all()
            return rec

    def _update(self, rec: Record, **fields):
        with self.changed:
            rec.update(fields)
            self.changed.notify_all()

    def clear(self):
        with self.lock:
            self.records.clear()
            self.tls_errors.clear()

    def received(self, path_prefix: str | None = None, method: str | None = None) -> list[Record]:
        """Requests received so far whose raw target path starts with path_prefix."""
        with self.lock:
            return [r for r in self.records
                    if (path_prefix is None or r["path"].startswith(path_prefix))
                    and (method is None or r["method"] == method)]

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "condition"):
        """Waits until predicate(records) is true (upper bound `timeout`); returns its value."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                value = predicate(list(self.records))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("origin: timed out after %.1fs waiting for %s; records: %r"
                                         % (timeout, what, self.records))
                self.changed.wait(min(left, 0.5))

    # -- gates (tests open them to let a streaming endpoint continue) --
    def gate(self, token: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(token, threading.Event())

    def open_gate(self, token: str):
        self.gate(token).set()


def _remember_sni(sslobj, server_name, _ctx):
    try:
        sslobj.lj_sni = server_name
    except AttributeError:
        pass
    return None


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, origin: Origin, name: str, addr, family, ssl_ctx):
        self.address_family = family
        self.origin = origin
        self.name = name
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def host(self) -> str:
        return self.server_address[0]

    @property
    def tls(self) -> bool:
        return self.ssl_ctx is not None

    def finish_request(self, request, client_address):
        # Runs in the per-connection thread: the TLS handshake must not block accept().
        sni = None
        if self.ssl_ctx is not None:
            request.settimeout(15)
            try:
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                with self.origin.lock:
                    self.origin.tls_errors.append("%s: %s" % (self.name, e))
                return
            sni = getattr(request, "lj_sni", None)
        request.settimeout(60)
        try:
            self.RequestHandlerClass(request, client_address, self, sni=sni)
        finally:
            if self.ssl_ctx is not None and request.fileno() != -1:
                # A graceful TLS end (close_notify), so a close-delimited body is complete.
                try:
                    request.settimeout(2)
                    request.unwrap()
                except (OSError, ValueError):
                    pass
                request.close()

    def handle_error(self, request, client_address):
        # Resets and aborted transfers are part of the tests; keep stderr quiet.
        pass




def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--http", type=int, help="plain HTTP port")
    ap.add_argument("--https", type=int, help="HTTPS port (needs --cert/--key)")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args(argv)
    o = Origin()
    if a.http is not None:
        s = o.listen("http", a.host, a.http)
        print("http on %s:%d" % (a.host, s.port), flush=True)
    if a.https is not None:
        s = o.listen("https", a.host, a.https, a.cert, a.key)
        print("https on %s:%d" % (a.host, s.port), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        o.stop()


if __name__ == "__main__":
    sys.exit(main())
