"""Forwarding behaviour, over plain HTTP (absolute-form) and, where it matters, inside an
intercepted CONNECT tunnel: methods, bodies, keep-alive, hop-by-hop headers, the normalized
path, real clients (curl, urllib)."""

import hashlib
import json
import ssl
import threading
import urllib.request

import pytest

import origin as om
from clients import connect, curl, tls_tunnel

SCHEMES = ["http", "https"]


def conn_for(p, scheme, host="origin.test"):
    """A connection on which requests for `host` are sent: to the proxy itself with
    absolute-form targets (http), or inside a TLS tunnel with origin-form targets (https)."""
    if scheme == "http":
        return connect(p), "http://%s" % host
    return tls_tunnel(p, host), ""


# ---- basic methods with curl -----------------------------------------------------------------


def test_http_get_curl(proxy, origins):
    p = proxy()
    r = curl(p, "http://origin.test/")
    assert r.rc == 0 and r.status == 200 and r.body == om.HELLO, r
    got = origins.received()
    assert len(got) == 1 and got[0]["listener"] == "http"
    # An origin server gets origin-form (RFC 9112 §3.2.1), with Host naming the origin.
    assert got[0]["request_line"] == "GET / HTTP/1.1", got
    assert got[0].header("Host") == "origin.test"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_head(proxy, origins, scheme):
    p = proxy()
    r = curl(p, "%s://origin.test/" % scheme, "-I")
    assert r.rc == 0 and r.status == 200, r
    assert r.header("Content-Length") == "17", r  # the origin's, passed on for HEAD
    assert r.body.endswith(b"\r\n\r\n") and om.HELLO not in r.body, r
    assert [x["method"] for x in origins.received()] == ["HEAD"]
    # A HEAD response has no body: the same connection must go on with the next response.
    c, base = conn_for(p, scheme)
    with c:
        h = c.request("HEAD", base + "/", "origin.test")
        assert h.status == 200 and h.body == b"" and h.header("Content-Length") == "17"
        g = c.request("GET", base + "/", "origin.test")
        assert g.status == 200 and g.body == om.HELLO, g


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("chunked", [False, True], ids=["fixed", "chunked"])
def test_post_echo(proxy, origins, tmp_path, scheme, chunked):
    p = proxy()
    body = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(40000))  # 1.25 MB
    f = tmp_path / "body"
    f.write_bytes(body)
    args = ["--data-binary", "@%s" % f, "-H", "Content-Type: application/octet-stream",
            "-H", "Expect:"]
    if chunked:
        args += ["-H", "Transfer-Encoding: chunked"]
    r = curl(p, "%s://origin.test/echo" % scheme, *args)
    assert r.rc == 0 and r.status == 200, r
    assert r.body == body, "echoed body differs (%d bytes back, %d sent)" % (len(r.body), len(body))
    got = origins.received("/echo")
    assert len(got) == 1 and got[0]["method"] == "POST" and got[0]["body_complete"] is True
    assert got[0]["body_len"] == len(body)
    assert got[0]["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_expect_100_continue(proxy, origins, tmp_path):
    """curl sends Expect: 100-continue and (with this timeout) would wait 20 s for the 100:
    the proxy must pass the interim response on (or answer it) so the upload goes at once."""
    p = proxy()
    body = b"z" * (2 * om.MIB)
    f = tmp_path / "body"
    f.write_bytes(body)
    r = curl(p, "http://origin.test/echo?sink=1", "--data-binary", "@%s" % f,
             "-H", "Expect: 100-continue", "--expect100-timeout", "20", timeout=10)
    assert r.rc == 0 and r.status == 200, r
    rep = json.loads(r.body)
    assert rep["body_len"] == len(body) and rep["body_sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_status_204_and_keepalive(proxy, origins, scheme):
    p = proxy()
    c, base = conn_for(p, scheme)
    with c:
        r = c.request("GET", base + "/status?code=204", "origin.test")
        assert r.status == 204 and r.body == b""
        r = c.request("GET", base + "/", "origin.test")
        assert r.status == 200 and r.body == om.HELLO, r


@pytest.mark.parametrize("scheme", SCHEMES)
def test_close_delimited_response_reframed(proxy, origins, scheme):
    """The origin ends its body by closing: the client still gets the whole body, and can
    tell it is complete (Content-Length, chunked, or a close of its own connection)."""
    p = proxy()
    c, base = conn_for(p, scheme)
    with c:
        r = c.request("GET", base + "/close-delimited", "origin.test")
        assert r.status == 200
        assert r.body.count(b"\n") == 100 and r.body.startswith(b"line 000")
        assert r.body.endswith(b"line 099 of a close-delimited body\n")


# ---- keep-alive, pipelining, concurrency -----------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_keepalive_two_requests_one_connection(proxy, origins, scheme):
    p = proxy()
    c, base = conn_for(p, scheme)
    with c:
        r1 = c.request("GET", base + "/path-echo/first", "origin.test")
        r2 = c.request("POST", base + "/echo", "origin.test", body=b"second body")
        assert (r1.status, r1.body) == (200, b"/path-echo/first"), r1
        assert (r2.status, r2.body) == (200, b"second body"), r2
        assert "close" not in (r1.header("Connection") or "").lower()
    assert [x["target"] for x in origins.received()] == ["/path-echo/first", "/echo"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_keepalive_upstream_reused(proxy, origins, scheme):
    """DESIGN §5: keep-alive on both sides — two requests from one client connection reach the
    origin on one upstream connection."""
    p = proxy()
    c, base = conn_for(p, scheme)
    with c:
        for i in range(3):
            r = c.request("GET", base + "/path-echo/%d" % i, "origin.test")
            assert r.status == 200 and r.body == b"/path-echo/%d" % i
    peers = {x["peer"] for x in origins.received("/path-echo/")}
    assert len(peers) == 1, "upstream connections not reused: %r" % peers


def test_pipelined_requests(proxy, origins):
    p = proxy()
    with connect(p) as c:
        c.send(b"".join(b"GET http://origin.test/path-echo/p%d HTTP/1.1\r\nHost: origin.test\r\n\r\n"
                        % i for i in range(3)))
        bodies = [c.response().body for _ in range(3)]
    assert bodies == [b"/path-echo/p0", b"/path-echo/p1", b"/path-echo/p2"]


def test_concurrent_clients(proxy, origins):
    p = proxy(args=["--threads", "2"])
    results = {}

    def one(i):
        scheme = SCHEMES[i % 2]
        try:
            c, base = conn_for(p, scheme)
            with c:
                results[i] = c.request("GET", base + "/path-echo/c%d" % i, "origin.test").body
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = repr(e).encode()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: b"/path-echo/c%d" % i for i in range(16)}


# ---- hop-by-hop headers ----------------------------------------------------------------------

HOP_REQUEST_HEADERS = [
    ("Connection", "keep-alive, X-Secret-Hop"),
    ("X-Secret-Hop", "named by Connection"),
    ("Keep-Alive", "timeout=5"),
    ("Proxy-Connection", "keep-alive"),
    ("TE", "trailers"),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "h2c"),
    ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
    ("X-End-To-End", "kept"),
]
HOP_NAMES = ["keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization",
             "x-secret-hop"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_hop_by_hop_request_headers_removed(proxy, origins, scheme):
    p = proxy()
    c, base = conn_for(p, scheme)
    with c:
        r = c.request("GET", base + "/inspect", "origin.test", headers=HOP_REQUEST_HEADERS)
        assert r.status == 200, r
        rep = json.loads(r.body)
    got = origins.received("/inspect")[0]
    names = got.header_names()
    for h in HOP_NAMES:
        assert h not in names, "hop-by-hop header %r reached the origin: %r" % (h, got["headers"])
    assert got.header("X-End-To-End") == "kept", got["headers"]
    conn = got.header("Connection")
    if conn is not None:
        assert {t.strip().lower() for t in conn.split(",")} <= {"keep-alive", "close"}, conn
    assert rep["headers"] == got["headers"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_hop_by_hop_response_headers_removed(proxy, origins, scheme):
    p = proxy()
    c, base = conn_for(p, scheme)
    with c:
        r = c.request("GET", base + "/hop-response", "origin.test")
    assert r.status == 200 and r.body == b"hop", r
    names = r.header_names()
    for h in ("x-origin-hop", "keep-alive", "proxy-connection"):
        assert h not in names, "hop-by-hop header %r reached the client: %r" % (h, r.headers)
    assert r.header("X-End") == "kept", r


# ---- the normalized path ---------------------------------------------------------------------

NORMALIZE = [
    ("/path-echo/a/./b/../c", "/path-echo/a/c"),
    ("/path-echo/a/./b/../c?x=1&y=a/../b", "/path-echo/a/c?x=1&y=a/../b"),  # query untouched
    ("/path-echo/a/b/../../c", "/path-echo/c"),
    ("/../path-echo/x", "/path-echo/x"),
    ("/path-echo/a/%2e%2e/c", "/path-echo/c"),  # encoded dots are dots (unreserved)
]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("sent,want", NORMALIZE, ids=[n[0] for n in NORMALIZE])
def test_normalized_path_forwarded(proxy, origins, scheme, sent, want):
    p = proxy()
    c, base = conn_for(p, scheme)
    with c:
        r = c.request("GET", base + sent, "origin.test")
    assert r.status == 200, r
    assert r.body.decode() == want
    assert [x["target"] for x in origins.received()] == [want]


def test_normalized_path_curl_path_as_is(proxy, origins):
    p = proxy()
    r = curl(p, "https://origin.test/path-echo/a/./b/../c", "--path-as-is")
    assert r.rc == 0 and r.body == b"/path-echo/a/c", r


def test_encoded_slash_not_decoded(proxy, origins):
    p = proxy()
    with connect(p) as c:
        r = c.request("GET", "http://origin.test/path-echo/a%2Fb", "origin.test")
    assert r.status == 200 and r.body in (b"/path-echo/a%2Fb", b"/path-echo/a%2fb"), r


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("sent", ["/path-echo/../inspect", "/path-echo/%2e%2e/inspect",
                                  "/path-echo/./../inspect"])
def test_path_rule_decided_on_normalized_path(proxy, origins, scheme, sent):
    """allow path=/path-echo/*: a path that climbs out of it is denied, and never forwarded."""
    p = proxy(allow=["domain=origin.test path=/path-echo/*"])
    c, base = conn_for(p, scheme)
    with c:
        r = c.request("GET", base + sent, "origin.test")
    assert r.status == 403 and r.header("X-Landjail-Decision") == "deny", r
    assert origins.received() == []


# ---- rules: port, other hosts, IPv6 -----------------------------------------------------------


def test_port_rule(proxy, origins):
    p = proxy(allow=["domain=origin.test port=443"])
    assert curl(p, "https://origin.test/").body == om.HELLO
    r = curl(p, "http://origin.test/")
    assert r.status == 403 and r.header("X-Landjail-Decision") == "deny", r
    assert [x["listener"] for x in origins.received()] == ["https"]


def test_wildcard_domain_rules(proxy, origins):
    p = proxy(allow=["domain=*.test"])  # `*` is one label: origin.test, other.test
    assert curl(p, "https://origin.test/").body == om.HELLO
    assert curl(p, "https://other.test/").body == om.HELLO
    p2 = proxy(allow=["domain=*.origin.test"])  # subdomains only: origin.test itself is not
    r = curl(p2, "http://origin.test/")
    assert r.status == 403, r


def test_ipv6_upstream(proxy, origins):
    if not origins.has_ipv6:
        pytest.skip("no IPv6 loopback here")
    p = proxy(allow=["domain=origin6.test"])
    r = curl(p, "https://origin6.test/")
    assert r.rc == 0 and r.body == om.HELLO, r
    r = curl(p, "http://origin6.test/path-echo/v6")
    assert r.body == b"/path-echo/v6", r
    assert sorted(x["listener"] for x in origins.received()) == ["http6", "https6"]


# ---- python urllib ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_python_urllib(proxy, origins, scheme):
    p = proxy()
    ctx = ssl.create_default_context(cafile=str(p.ca_pem))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": p.url, "https": p.url}),
        urllib.request.HTTPSHandler(context=ctx))
    with opener.open("%s://origin.test/" % scheme, timeout=20) as resp:
        assert resp.status == 200 and resp.read() == om.HELLO
    req = urllib.request.Request("%s://origin.test/echo" % scheme, data=b"from urllib",
                                 method="POST")
    with opener.open(req, timeout=20) as resp:
        assert resp.read() == b"from urllib"
    got = origins.received()
    assert [(x["method"], x["target"], x["tls"]) for x in got] == [
        ("GET", "/", scheme == "https"), ("POST", "/echo", scheme == "https")]
