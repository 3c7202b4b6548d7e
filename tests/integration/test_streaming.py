"""Bodies stream without buffering (DESIGN §5): a 100 MiB download and a 64 MiB upload with the
proxy's peak RSS bounded, chunked responses, Server-Sent Events flushed as they come."""

import hashlib
import http.client
import json
import os
import subprocess
import threading
import time

import pytest

import origin as om
from clients import clean_env, client_tls_context

# Peak RSS allowed for the proxy during a transfer far bigger than it (MiB). A build with
# sanitizers needs more: LANDJAIL_TEST_RSS_MIB raises it.
RSS_LIMIT_MIB = int(os.environ.get("LANDJAIL_TEST_RSS_MIB", "64"))


def stream_through_curl(p, url: str, timeout: float = 120):
    """curl through the proxy, body read from a pipe and hashed (no file on disk).
    Returns (rc, n_bytes, sha256, stderr)."""
    argv = ["curl", "-sS", "--max-time", str(timeout), "-x", p.url, "--cacert", str(p.ca_pem), url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = proc.stdout.read(1 << 20)
        if not chunk:
            break
        n += len(chunk)
        h.update(chunk)
    err = proc.stderr.read().decode(errors="replace")
    rc = proc.wait(timeout=30)
    return rc, n, h.hexdigest(), err


def _assert_rss_bounded(p, what):
    hwm = p.status_kib("VmHWM") // 1024
    assert hwm < RSS_LIMIT_MIB, ("proxy peak RSS %d MiB after %s (limit %d MiB): the body was "
                                 "buffered, not streamed" % (hwm, what, RSS_LIMIT_MIB))


@pytest.mark.parametrize("scheme,path,mb", [
    ("https", "/big", 100),
    ("http", "/big", 100),  # plain, known length: the proxy moves it with splice(2)
    ("http", "/big-chunked", 32),
], ids=["https-100MiB-content-length", "http-100MiB-content-length-spliced",
        "http-32MiB-chunked"])
def test_large_download_streamed(proxy, origins, scheme, path, mb):
    p = proxy()
    rc, n, digest, err = stream_through_curl(p, "%s://origin.test%s?mb=%d" % (scheme, path, mb))
    assert rc == 0, err
    assert n == mb * om.MIB
    assert digest == om.big_bytes_sha256(mb), "the body changed on the way"
    _assert_rss_bounded(p, "a %d MiB download" % mb)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_large_upload_streamed(proxy, origins, scheme):
    """64 MiB chunked upload from python http.client; the origin hashes what it receives."""
    p = proxy()
    mb = 64
    if scheme == "https":
        conn = http.client.HTTPSConnection("127.0.0.1", p.port, timeout=60,
                                           context=client_tls_context(p.ca_pem))
        conn.set_tunnel("origin.test", 443)
        target = "/echo?sink=1"
    else:
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=60)
        target = "http://origin.test/echo?sink=1"

    def body():
        for i in range(mb):
            yield om.big_block(i)

    conn.request("POST", target, body=body(), headers={"Host": "origin.test"},
                 encode_chunked=True)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert resp.status == 200, data
    rep = json.loads(data)
    assert rep["body_len"] == mb * om.MIB and rep["body_sha256"] == om.big_bytes_sha256(mb)
    _assert_rss_bounded(p, "a %d MiB upload" % mb)


# ---- Server-Sent Events ----------------------------------------------------------------------


def _sse_first_event_before_end(origins, token, read_line):
    """Reads until the first event's data line; at that moment the origin is still holding
    the stream (it waits for our gate), so event 1 was flushed before the response ended."""
    lines = []
    while True:
        line = read_line()
        assert line, "stream ended before the first event: %r" % lines
        lines.append(line)
        if line.startswith(b"data: "):
            break
    assert lines[-1] == b"data: event 1\n", lines
    # The origin notes its progress just after writing the event, so the client can be first.
    origins.wait_for(lambda rs: origins.state.sse_progress.get(token) == 1,
                     what="the origin to record event 1")
    assert token not in origins.state.sse_done, "the origin had already finished the stream"
    origins.state.open_gate(token)
    rest = b""
    while True:
        line = read_line()
        if not line:
            break
        rest += line
    assert b"data: event 2\n" in rest and b"data: event 3\n" in rest, rest


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_sse_python_http_client(proxy, origins, scheme):
    p = proxy()
    token = "py-%s-%d" % (scheme, time.monotonic_ns())
    if scheme == "https":
        conn = http.client.HTTPSConnection("127.0.0.1", p.port, timeout=20,
                                           context=client_tls_context(p.ca_pem))
        conn.set_tunnel("origin.test", 443)
        target = "/sse?n=3&interval=0.05&gate=" + token
    else:
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=20)
        target = "http://origin.test/sse?n=3&interval=0.05&gate=" + token
    conn.request("GET", target, headers={"Host": "origin.test", "Accept": "text/event-stream"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    _sse_first_event_before_end(origins, token, resp.readline)
    conn.close()
    origins.wait_for(lambda rs: token in origins.state.sse_done, what="the SSE stream to end")


def test_sse_curl_no_buffer(proxy, origins):
    p = proxy()
    token = "curl-%d" % time.monotonic_ns()
    proc = subprocess.Popen(["curl", "-sS", "-N", "--max-time", "30", "-x", p.url, "--cacert",
                             str(p.ca_pem),
                             "https://origin.test/sse?n=3&interval=0.05&gate=" + token],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        _sse_first_event_before_end(origins, token, proc.stdout.readline)
    finally:
        origins.state.open_gate(token)
        rc = proc.wait(timeout=30)
    assert rc == 0, proc.stderr.read()


def test_sse_timed_events_arrive_spread_out(proxy, origins):
    """Without a gate: events 0.5 s apart arrive 0.5 s apart (not all at the end)."""
    p = proxy()
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=20)
    conn.request("GET", "http://origin.test/sse?n=3&interval=0.5", headers={"Host": "origin.test"})
    resp = conn.getresponse()
    arrivals = []
    while True:
        line = resp.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            arrivals.append(time.monotonic())
    conn.close()
    assert len(arrivals) == 3
    # event 1 was sent ~1 s before event 3; a buffering proxy delivers them together
    assert arrivals[2] - arrivals[0] > 0.7, arrivals


def test_streaming_does_not_block_other_clients(proxy, origins):
    """While one client holds an open stream, others are served."""
    p = proxy()
    token = "hold-%d" % time.monotonic_ns()
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=20)
    conn.request("GET", "http://origin.test/sse?n=2&gate=" + token, headers={"Host": "origin.test"})
    resp = conn.getresponse()
    try:
        assert resp.readline() == b"id: 1\n"
        done = []

        def other():
            c2 = http.client.HTTPConnection("127.0.0.1", p.port, timeout=20)
            c2.request("GET", "http://origin.test/path-echo/meanwhile",
                       headers={"Host": "origin.test"})
            done.append(c2.getresponse().read())
            c2.close()

        t = threading.Thread(target=other)
        t.start()
        t.join(20)
        assert done == [b"/path-echo/meanwhile"]
    finally:
        origins.state.open_gate(token)
        resp.read()
        conn.close()
