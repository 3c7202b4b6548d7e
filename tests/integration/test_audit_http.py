"""The HTTP collector sink (audit.http, DESIGN §6) of the real landjail-proxy: the events of
requests reach a local collector as the audit file has them (http and https with the
--upstream-ca), and events spooled while the collector was down are sent by the next run."""

import http.server
import json
import socket
import ssl
import threading

from clients import curl

ALLOW = "domain=origin.test method=GET"


class Collector:
    """A local collector on 127.0.0.1: keeps the body and Content-Type of each POST."""

    def __init__(self, port=0, certfile=None, keyfile=None):
        self.posts = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.posts.append((self.headers.get("Content-Type"), body.decode()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.scheme = "http"
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d/events" % (self.scheme, self.port)

    def lines(self):
        with self.lock:
            return [line for _, body in self.posts for line in body.splitlines()]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def config(url, spool_dir):
    return ("audit:\n  http:\n    url: %s\n    flush_interval_ms: 50\n    spool_dir: %s\n"
            % (url, spool_dir))


def file_lines(p):
    """The audit file's lines, as written (the collector must get the same bytes)."""
    return p.audit_path.read_text().splitlines()


def run_requests(p, n=3):
    for i in range(n):
        assert curl(p, "http://origin.test/path-echo/%d" % i).status == 200
    assert curl(p, "http://origin.test/echo", "--data-binary", "no").status == 403


def check_delivered(p, collector):
    p.stop()  # SIGTERM: what is queued is flushed (within the grace period)
    want = file_lines(p)
    assert collector.lines() == want, (collector.lines(), want, p.stderr)
    events = [json.loads(x) for x in want]
    assert len([x for x in events if x.get("event") == "http_request"]) >= 4, events


def test_events_reach_an_http_collector(proxy, origins, tmp_path):
    c = Collector()
    try:
        p = proxy(allow=[ALLOW], config=config(c.url, tmp_path / "spool"))
        run_requests(p)
        check_delivered(p, c)
        assert {ct for ct, _ in c.posts} == {"application/x-ndjson"}
        assert "not available" not in p.stderr, p.stderr
        assert list((tmp_path / "spool").iterdir()) == [], "nothing left in the spool"
    finally:
        c.close()


def test_an_https_collector_is_verified_with_the_upstream_ca(proxy, origins, pki, tmp_path):
    c = Collector(certfile=str(pki.origin_cert), keyfile=str(pki.origin_key))
    try:
        p = proxy(allow=[ALLOW], config=config(c.url, tmp_path / "spool"))  # --upstream-ca
        run_requests(p)
        check_delivered(p, c)
    finally:
        c.close()


def test_events_spooled_while_down_are_sent_by_the_next_run(proxy, origins, tmp_path):
    s = socket.socket()  # a port nobody listens on, until the collector takes it
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    url = "http://127.0.0.1:%d/events" % port
    spool = tmp_path / "spool"
    first = proxy(allow=[ALLOW], config=config(url, spool))
    run_requests(first)
    first.stop()
    assert "kept in %s" % spool in first.stderr, first.stderr
    assert list(spool.glob("*/*.ndjson")), "batches spooled"
    s.close()
    c = Collector(port)
    try:
        second = proxy(allow=[ALLOW], config=config(url, spool))
        run_requests(second, 1)
        second.stop()
        want = file_lines(first) + file_lines(second)
        assert c.lines() == want, (c.lines(), want, second.stderr)
        assert list(spool.iterdir()) == [], "the spool is emptied"
    finally:
        c.close()
