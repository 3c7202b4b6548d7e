"""Fault matrix: the origin resets mid-body, the client disconnects mid-upload, a slow-loris
client, idle connections, SIGTERM with connections open. After each the proxy must keep
serving (and, at teardown, exit 0 on SIGTERM)."""

import signal
import socket
import struct
import threading
import time

import pytest

import origin as om
from clients import connect, curl, tls_tunnel


def assert_still_serving(p, scheme="http"):
    assert p.alive(), "the proxy died:\n" + p.stderr[-3000:]
    r = curl(p, "%s://origin.test/path-echo/after" % scheme)
    assert r.rc == 0 and r.body == b"/path-echo/after", r


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_origin_reset_mid_body(proxy, origins, scheme):
    p = proxy()
    r = curl(p, "%s://origin.test/reset-mid-body" % scheme)
    # The client must see a failed transfer, never a complete-looking one.
    assert r.rc in (18, 56), r  # curl: partial file / failure receiving data
    assert len(r.body) < om.RESET_BODY_LEN, r
    assert r.body == om.big_block(0)[:len(r.body)], "the bytes that arrived are not the origin's"
    assert_still_serving(p, scheme)


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_client_disconnects_mid_upload(proxy, origins, scheme, how):
    p = proxy()
    c = connect(p) if scheme == "http" else tls_tunnel(p, "origin.test")
    target = "http://origin.test/echo?sink=1" if scheme == "http" else "/echo?sink=1"
    c.send(b"POST %s HTTP/1.1\r\nHost: origin.test\r\nContent-Length: %d\r\n\r\n"
           % (target.encode(), 10 * om.MIB))
    c.send(om.big_block(0))
    # The origin sees the request begin (the body streams), then the proxy must end it.
    origins.wait_for(lambda rs: [x for x in rs if x["path"] == "/echo"], what="the upload")
    if how == "reset":
        raw = c.sock
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    rec = origins.wait_for(
        lambda rs: [x for x in rs if x["path"] == "/echo" and x["body_complete"] is not None],
        timeout=15, what="the proxy to end the upstream upload")[0]
    assert rec["body_complete"] is False and rec["body_len"] < 10 * om.MIB, rec
    assert_still_serving(p, scheme)


def test_slow_loris_cut_off_by_header_timeout(proxy, origins):
    """One header byte per second; --header-timeout 2 bounds the whole head, not the gap
    between bytes."""
    p = proxy(args=["--header-timeout", "2"])
    c = connect(p, timeout=20)
    stop = threading.Event()
    sent = []

    def drip():
        head = b"GET http://origin.test/path-echo/loris HTTP/1.1\r\nHost: origin.test\r\n"
        c.send(head)
        for b in b"X-Drip: " + b"d" * 60:
            if stop.wait(1.0):  # the attack's pace, not a synchronization
                return
            try:
                c.sock.send(bytes([b]))
                sent.append(b)
            except OSError:
                return

    t = threading.Thread(target=drip, daemon=True)
    start = time.monotonic()
    t.start()
    try:
        c.sock.settimeout(15)
        data = b""
        try:
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail("slow-loris connection still open after 15 s (sent %d bytes)" % len(sent))
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        t.join(5)
        c.close()
    assert elapsed < 8, "cut off only after %.1fs" % elapsed
    assert data == b"" or data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.1 400"), data
    assert origins.received() == []
    assert_still_serving(p)


def test_idle_keepalive_connection_closed(proxy, origins):
    """A client connection idle after its response is closed. Which limit closes it (the
    idle timeout, or the header timeout for the next request) is the proxy's choice: both
    are set to 1 s."""
    p = proxy(args=["--idle-timeout", "1", "--header-timeout", "1"])
    with connect(p) as c:
        r = c.request("GET", "http://origin.test/", "origin.test")
        assert r.body == om.HELLO
        t = time.monotonic()
        assert c.closed_by_peer(10), "idle connection not closed within 10 s"
        assert time.monotonic() - t > 0.5
    assert_still_serving(p)


def test_idle_timeout_closes_a_silent_stream(proxy, origins):
    """--idle-timeout: a response body with no traffic for that long is cut (the origin here
    holds the stream open, silent, after the first event)."""
    p = proxy(args=["--idle-timeout", "1"])
    token = "silent-%d" % time.monotonic_ns()
    try:
        with connect(p, timeout=10) as c:
            c.send(b"GET http://origin.test/sse?n=2&gate=%s HTTP/1.1\r\nHost: origin.test\r\n\r\n"
                   % token.encode())
            try:
                r = c.response()
            except (EOFError, ConnectionResetError, ValueError):
                r = None  # cut: what the test wants
            except socket.timeout:
                pytest.fail("a stream silent for 10 s was not cut by --idle-timeout 1")
            assert r is None, "the silent stream was not cut: %r" % r
    finally:
        origins.state.open_gate(token)
    assert origins.state.sse_progress.get(token) == 1
    assert_still_serving(p)


def test_idle_timeout_does_not_cut_a_flowing_stream(proxy, origins):
    """Events 0.5 s apart for 3 s with --idle-timeout 1: never idle for 1 s, never cut."""
    p = proxy(args=["--idle-timeout", "1"])
    with connect(p, timeout=20) as c:
        r = c.request("GET", "http://origin.test/sse?n=7&interval=0.5", "origin.test")
        assert r.status == 200
        assert r.body.count(b"data: event") == 7, r


def test_sigterm_with_idle_connections_exits_promptly(proxy, origins):
    p = proxy()
    idle = connect(p)
    assert idle.request("GET", "http://origin.test/", "origin.test").body == om.HELLO
    tunnel_conn = tls_tunnel(p, "origin.test")
    assert tunnel_conn.request("GET", "/path-echo/t", "origin.test").body == b"/path-echo/t"
    try:
        t = time.monotonic()
        assert p.stop() == 0  # SIGTERM; asserts status 0
        assert time.monotonic() - t < 10
    finally:
        idle.close()
        tunnel_conn.close()
    urls = [x["http_url"] for x in p.audit() if x.get("http_method") != "CONNECT"]
    assert urls == ["http://origin.test/", "https://origin.test/path-echo/t"], urls


def test_sigterm_lets_in_flight_stream_finish(proxy, origins):
    """SIGTERM while a response streams: the proxy stops accepting, the stream completes
    for the client, the proxy exits 0 and the request is in the audit."""
    p = proxy()
    token = "sigterm-%d" % time.monotonic_ns()
    stream = tls_tunnel(p, "origin.test")
    try:
        stream.send(b"GET /sse?n=3&interval=0.05&gate=%s HTTP/1.1\r\nHost: origin.test\r\n\r\n"
                    % token.encode())
        origins.wait_for(lambda rs: origins.state.sse_progress.get(token) == 1,
                         what="the stream to start")
        p.proc.send_signal(signal.SIGTERM)
        # Wait (bounded) for the proxy to stop accepting, so the signal is known to be handled.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", p.port), timeout=1).close()
            except OSError:
                break
            time.sleep(0.05)
        origins.state.open_gate(token)
        r = stream.response()
        assert r.status == 200 and r.body.count(b"data: event") == 3, r
    finally:
        origins.state.open_gate(token)
        stream.close()
    assert p.stop() == 0
    lines = [x for x in p.audit() if x.get("http_method") != "CONNECT"]
    assert [x["http_url"] for x in lines] == [
        "https://origin.test/sse?n=3&interval=0.05&gate=" + token], lines


def test_many_aborted_connections_leave_proxy_healthy(proxy, origins):
    """50 clients that connect and vanish at random points of a request."""
    p = proxy()
    pieces = [b"", b"GET http://origin.test/ HT", b"GET http://origin.test/ HTTP/1.1\r\nHo",
              b"CONNECT origin.test:443 HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00"]
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        s.sendall(pieces[i % len(pieces)])
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    assert_still_serving(p)
    assert_still_serving(p, "https")
    assert {x["target"] for x in origins.received()} == {"/path-echo/after"}


def test_keep_alive_after_a_spliced_body(proxy, origins):
    """After a large plain body moved with splice(2), the same client connection and the
    pooled upstream connection still carry the next request correctly."""
    import http.client
    p = proxy(args=["--threads", "1"])
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
    conn.request("GET", "http://origin.test/big?mb=1", headers={"Host": "origin.test"})
    r = conn.getresponse()
    assert r.status == 200 and len(r.read()) == om.MIB
    conn.request("GET", "http://origin.test/path-echo/after", headers={"Host": "origin.test"})
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"/path-echo/after"
    conn.close()
    got = origins.received()
    assert [x["target"] for x in got][-2:] == ["/big?mb=1", "/path-echo/after"]
    assert got[-1]["peer"] == got[-2]["peer"], "the upstream connection was not reused"
