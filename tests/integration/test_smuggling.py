"""Request smuggling and path-normalization differentials (issue 13, A1-A3), judged by what the
origin received and by the audit trail, never by what the proxy answered alone.

- Framing: a Connection header that nominates a framing or routing field (Content-Length,
  Transfer-Encoding, Host) must not make the proxy drop it and forward the body unframed, where
  the origin would read a second, undecided request out of it. Such requests are refused (400,
  audited with outcome ambiguous_framing) in plain HTTP, in a plain tunnel, in an intercepted
  TLS tunnel, and cannot poison a pooled upstream connection.
- Paths: when rules constrain paths, a path that origins decode differently (encoded '/' or
  '\\', ';' parameters, double encoding, overlong UTF-8, '//') is refused with 400 and audited
  (reason ambiguous_path); `ambiguous_paths: literal` restores matching as written.
- Upgrades: `upgrade=` in a rule decides whether a WebSocket upgrade is allowed.
"""

import socket
import ssl

import pytest

from clients import connect, tls_tunnel, tunnel, ws_handshake

SCHEMES = ["http", "tunnel", "https"]

# What the smuggled request asks for: outside every allow rule of these tests.
SMUGGLED = b"GET /path-echo/admin HTTP/1.1\r\nHost: origin.test\r\n\r\n"
SMUGGLED_EVIL = b"GET /path-echo/admin HTTP/1.1\r\nHost: evil.test\r\n\r\n"
ALLOW = ["domain=origin.test path=/echo,/inspect,/inspect/*,/,/early-hints,/nominate-framing,"
         "/bad-chunked"]
DENY = ["domain=origin.test path=/path-echo/*"]


def conn_for(p, scheme, host="origin.test"):
    """(connection, target prefix): absolute-form to the proxy, origin-form inside a plain
    CONNECT tunnel to port 80, or inside an intercepted TLS tunnel to 443."""
    if scheme == "http":
        return connect(p), "http://%s" % host
    if scheme == "tunnel":
        c, r = tunnel(p, host, 80)
        assert r.status == 200, r
        return c, ""
    return tls_tunnel(p, host), ""


def smuggled_paths(origins):
    return [x["target"] for x in origins.received() if "/path-echo" in x["target"]]


NOMINATIONS = [
    ("Connection: Content-Length", "cl"),
    ("Connection: content-length", "cl"),
    ("Connection: close, Content-Length", "cl"),
    ("Connection: keep-alive\r\nConnection: Content-Length", "cl"),
    ("Connection: Transfer-Encoding", "te"),
    ("Connection: Host", "cl"),
    ("Connection: HOST, x-foo", "cl"),
]


def smuggling_request(prefix: str, nomination: str, kind: str, smuggled: bytes) -> bytes:
    head = "POST %s/echo HTTP/1.1\r\nHost: origin.test\r\n%s\r\n" % (prefix, nomination)
    if kind == "cl":
        return (head + "Content-Length: %d\r\n\r\n" % len(smuggled)).encode() + smuggled
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + body


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("nomination,kind", NOMINATIONS, ids=[n[0] for n in NOMINATIONS])
def test_connection_cannot_nominate_framing_fields(proxy, origins, scheme, nomination, kind):
    p = proxy(allow=ALLOW + ["domain=evil.test"], deny=DENY)
    c, prefix = conn_for(p, scheme)
    with c:
        for smuggled in (SMUGGLED, SMUGGLED_EVIL):
            c.send(smuggling_request(prefix, nomination, kind, smuggled))
            r = c.response()
            assert r.status == 400, r
            assert b"Connection header names" in r.body, r
            break  # the proxy closes after a refused framing
    # The origin never saw the smuggled request (nor, here, the carrier).
    assert smuggled_paths(origins) == []
    assert origins.received() == []
    lines = p.audit(1, where=lambda x: x.get("outcome") == "ambiguous_framing")
    assert lines[0]["status"] == 400 and lines[0]["decision"] == "deny", lines


def test_pooled_upstream_connection_not_poisoned(proxy, origins):
    """A client tries to leave a half-request in a pooled upstream connection; the next
    client's request on that connection must be answered as itself."""
    p = proxy(allow=ALLOW, deny=DENY)
    with connect(p) as c:
        r = c.request("GET", "http://origin.test/", "origin.test")
        assert r.status == 200
    for nomination, kind in NOMINATIONS:
        with connect(p) as c:
            c.send(smuggling_request("http://origin.test", nomination, kind, SMUGGLED))
            assert c.response().status == 400
    with connect(p) as c:
        r = c.request("GET", "http://origin.test/inspect", "origin.test")
        assert r.status == 200 and b'"target": "/inspect"' in r.body, r
    assert smuggled_paths(origins) == []
    assert [x["target"] for x in origins.received()] == ["/", "/inspect"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_forwarded_body_is_framed_by_the_proxy(proxy, origins, scheme):
    """A body is forwarded with the framing the proxy read: the origin reads exactly one
    request, and the keep-alive connection serves the next one."""
    p = proxy(allow=ALLOW, deny=DENY)
    c, prefix = conn_for(p, scheme)
    with c:
        for body in (SMUGGLED, b"x" * 70000):
            r = c.request("POST", prefix + "/echo", "origin.test", body=body)
            assert r.status == 200 and r.body == body, r
        c.send(("POST %s/echo HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                % prefix).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED))
        r = c.response()
        assert r.status == 200 and r.body == SMUGGLED, r
    assert smuggled_paths(origins) == []
    assert [x["method"] for x in origins.received()] == ["POST", "POST", "POST"]


BAD_FRAMING = [
    ("Content-Length: 5\r\nContent-Length: 6", "more than one Content-Length"),
    ("Content-Length: 5\r\nTransfer-Encoding: chunked", "both Content-Length"),
    ("Transfer-Encoding: gzip, chunked", "other than chunked"),
    ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "more than one Transfer"),
]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("fields,why", BAD_FRAMING, ids=[b[1] for b in BAD_FRAMING])
def test_ambiguous_framing_refused(proxy, origins, scheme, fields, why):
    p = proxy(allow=ALLOW, deny=DENY)
    c, prefix = conn_for(p, scheme)
    with c:
        c.send(("POST %s/echo HTTP/1.1\r\nHost: origin.test\r\n%s\r\n\r\n0\r\n\r\n"
                % (prefix, fields)).encode() + SMUGGLED)
        try:
            r = c.response()
            assert r.status == 400, r
        except (EOFError, ConnectionResetError, ssl.SSLError):
            pass  # refused by the parser before a response could be written
    assert origins.received() == []


def test_http10_transfer_encoding_refused(proxy, origins):
    p = proxy(allow=ALLOW, deny=DENY)
    with connect(p) as c:
        c.send(b"POST http://origin.test/echo HTTP/1.0\r\nHost: origin.test\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
        r = c.response()
        assert r.status == 400 and b"HTTP/1.0" in r.body, r
    assert origins.received() == []


def test_connect_with_body_refused(proxy, origins):
    p = proxy(allow=ALLOW, deny=DENY)
    with connect(p) as c:
        c.send(b"CONNECT origin.test:80 HTTP/1.1\r\nHost: origin.test:80\r\n"
               b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED)
        r = c.response("CONNECT")
        assert r.status == 400, r
    assert origins.received() == []


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_response_framing_fields_survive_a_nominating_connection_header(proxy, origins, scheme):
    p = proxy(allow=ALLOW, deny=DENY)
    c, prefix = conn_for(p, scheme)
    with c:
        r = c.request("GET", prefix + "/nominate-framing", "origin.test")
        assert r.status == 200 and r.body == b"framed", r
        assert r.header("X-Gone") is None, r
        r = c.request("GET", prefix + "/", "origin.test")  # the connection is still in step
        assert r.status == 200, r


# ---- paths -----------------------------------------------------------------------------------

PATH_ALLOW = ["domain=origin.test path=/path-echo/public/*"]
PATH_DENY = ["domain=origin.test path=/path-echo/public/secret/*"]
AMBIGUOUS = [
    "/path-echo/public/..%2Fadmin",
    "/path-echo/public/..%2fadmin",
    "/path-echo/public/..;/admin",
    "/path-echo/public/.;/../admin",
    "/path-echo/public/%C0%AE%C0%AE/admin",
    "/path-echo/public/%c0%ae%c0%ae%c0%afadmin",
    "/path-echo/public/%E0%80%AE%E0%80%AE/admin",
    "/path-echo/public/%252e%252e/admin",
    "/path-echo/public/%252E%252E%252Fadmin",
    "/path-echo/public/%255cadmin",
    "/path-echo/public/..%5Cadmin",
    "/path-echo/public/secret%2Fkey",
    "/path-echo/public/secret;x/key",
    "/path-echo/public//secret/key",
    "/path-echo/public/%2573ecret/key",
    "/path-echo/public/%FF/key",
    "/path-echo/public/%ED%A0%80/key",
]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("path", AMBIGUOUS)
def test_ambiguous_path_refused(proxy, origins, scheme, path):
    p = proxy(allow=PATH_ALLOW, deny=PATH_DENY)
    c, prefix = conn_for(p, scheme)
    with c:
        r = c.request("GET", prefix + path, "origin.test")
    assert r.status == 400 and b"holds" in r.body, r
    assert origins.received() == []
    line = p.audit(1, where=lambda x: x.get("reason") == "ambiguous_path")[0]
    assert line["status"] == 400 and line["decision"] == "deny", line


@pytest.mark.parametrize("path", ["/path-echo/public/ok", "/path-echo/public/a%20b",
                                  "/path-echo/public/%E2%82%AC", "/path-echo/public/100%25"])
def test_unambiguous_paths_pass(proxy, origins, path):
    p = proxy(allow=PATH_ALLOW, deny=PATH_DENY)
    with connect(p) as c:
        r = c.request("GET", "http://origin.test" + path, "origin.test")
    assert r.status == 200, r
    assert len(origins.received()) == 1


def test_literal_paths_opt_in(proxy, origins):
    p = proxy(allow=PATH_ALLOW, deny=PATH_DENY, config="ambiguous_paths: literal\n")
    with connect(p) as c:
        r = c.request("GET", "http://origin.test/path-echo/public/secret%2Fkey", "origin.test")
        assert r.status == 200, r
    assert [x["target"] for x in origins.received()] == ["/path-echo/public/secret%2Fkey"]


def test_ambiguous_path_without_path_rules_passes(proxy, origins):
    p = proxy(allow=["domain=origin.test"])
    with connect(p) as c:
        r = c.request("GET", "http://origin.test/path-echo/a%2Fb;c", "origin.test")
    assert r.status == 200, r


# ---- upgrades --------------------------------------------------------------------------------


def websocket(p, scheme):
    c, prefix = conn_for(p, scheme)
    with c:
        h = ws_handshake(c, prefix + "/ws", "origin.test")
    return h.status


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_rule_allows_path_without_upgrade(proxy, origins, scheme):
    p = proxy(allow=["domain=origin.test path=/ws,/ upgrade=none"])
    assert websocket(p, scheme) == 403
    assert origins.received() == []
    c, prefix = conn_for(p, scheme)
    with c:
        assert c.request("GET", prefix + "/", "origin.test").status == 200
    line = p.audit(1, where=lambda x: x["decision"] == "deny")[0]
    assert line["reason"] == "no_rule_matched", line


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_upgrade_rules(proxy, origins, scheme):
    p = proxy(allow=["domain=origin.test path=/ws upgrade=websocket"])
    assert websocket(p, scheme) == 101
    p2 = proxy(allow=["domain=origin.test"], deny=["domain=origin.test upgrade=websocket"])
    assert websocket(p2, scheme) == 403
    c, prefix = conn_for(p2, scheme)
    with c:
        assert c.request("GET", prefix + "/", "origin.test").status == 200


# ---- every decided request is audited, whatever happens after the decision ------------------


def test_request_body_cut_short_is_audited(proxy, origins):
    p = proxy(allow=ALLOW, deny=DENY)
    with connect(p) as c:
        c.send(b"POST http://origin.test/echo?sink=1 HTTP/1.1\r\nHost: origin.test\r\n"
               b"Content-Length: 1000000\r\n\r\n" + b"x" * 200000)
        origins.wait_for(lambda recs: recs, what="the request at the origin")
    line = p.audit(1, where=lambda x: x.get("http_url", "").endswith("/echo?sink=1"))[0]
    assert line["decision"] == "allow" and line.get("status") is None, line
    assert line["outcome"] == "client_aborted", line


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bad_request_chunk_is_audited(proxy, origins, scheme):
    p = proxy(allow=ALLOW, deny=DENY)
    c, prefix = conn_for(p, scheme)
    with c:
        c.send(("POST %s/echo HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                % prefix).encode() + b"5\r\nhello\r\nZZ\r\nxx\r\n")
        r = c.response()
        assert r.status == 400, r
    line = p.audit(1, where=lambda x: x.get("outcome") == "bad_chunk")[0]
    assert line["status"] == 400 and line["decision"] == "allow", line


def test_client_gone_before_interim_response_is_audited(proxy, origins):
    p = proxy(allow=ALLOW, deny=DENY)
    with connect(p) as c:
        c.send(b"GET http://origin.test/early-hints?delay=0.3 HTTP/1.1\r\nHost: origin.test\r\n\r\n")
        origins.wait_for(lambda recs: recs, what="the request at the origin")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    line = p.audit(1, where=lambda x: "/early-hints" in x.get("http_url", ""))[0]
    assert line["outcome"] == "client_aborted", line


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_interim_response_relayed(proxy, origins, scheme):
    p = proxy(allow=ALLOW, deny=DENY)
    c, prefix = conn_for(p, scheme)
    with c:
        c.send(("GET %s/early-hints?delay=0.05 HTTP/1.1\r\nHost: origin.test\r\n\r\n"
                % prefix).encode())
        r = c.response(skip_interim=False)
        assert r.status == 103, r
        r = c.response()
        assert r.status == 200 and r.body == b"hinted", r
    line = p.audit(1)[0]
    assert line["status"] == 200 and "outcome" not in line, line


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_invalid_chunked_response_gives_502(proxy, origins, scheme):
    p = proxy(allow=ALLOW, deny=DENY)
    c, prefix = conn_for(p, scheme)
    with c:
        r = c.request("GET", prefix + "/bad-chunked", "origin.test")
    assert r.status == 502, r
    line = p.audit(1)[0]
    assert line["status"] == 502 and line["outcome"] == "upstream_bad_response", line


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_invalid_chunk_after_the_head_is_audited(proxy, origins, scheme):
    p = proxy(allow=ALLOW, deny=DENY)
    c, prefix = conn_for(p, scheme)
    with c:
        c.send(("GET %s/bad-chunked?late=1 HTTP/1.1\r\nHost: origin.test\r\n\r\n"
                % prefix).encode())
        with pytest.raises((EOFError, ValueError, ConnectionResetError, ssl.SSLError)):
            c.response()  # the head arrives, the body is cut: no terminating chunk
    line = p.audit(1)[0]
    assert line["status"] == 200 and line["outcome"] == "upstream_bad_response", line
