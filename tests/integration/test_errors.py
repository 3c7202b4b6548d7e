"""Every error status the proxy answers itself: 403 (deny), 502 (connect, TLS verification),
504 (upstream timeout), 400 (malformed, request smuggling shapes), 431 (headers > 64 KiB),
421 is in test_tls.py; and start-up refusals for a bad rule or config."""

import time

import pytest

import origin as om
from auditcheck import denies
from clients import connect, curl, start_tls, tls_tunnel, tunnel

# ---- 403 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_deny_response(proxy, origins, scheme):
    p = proxy(allow=["domain=origin.test method=GET"])
    url = "%s://origin.test/echo?x=1" % scheme
    r = curl(p, url, "-X", "PUT", "--data-binary", "secret payload")
    assert r.status == 403, r
    assert r.header("X-Landjail-Decision") == "deny", r
    assert r.header("Content-Type").split(";")[0].strip() == "text/plain", r
    text = r.body.decode()
    assert "PUT" in text and url in text, text
    assert "--allow" in text, text
    assert origins.received() == [], "a denied request reached the origin"


def test_deny_suggested_rule_permits_the_request(proxy, origins):
    """The body suggests an --allow rule; taken as written, it lets the request through."""
    p = proxy(allow=["domain=origin.test method=GET"])
    r = curl(p, "http://origin.test/echo", "--data-binary", "hello")
    assert r.status == 403, r
    text = r.body.decode()
    suggested = None
    for line in text.splitlines():
        if "--allow" in line:
            rest = line.split("--allow", 1)[1].strip().lstrip("=").strip()
            if rest and rest[0] in "'\"":
                rest = rest[1:rest.index(rest[0], 1)]
            suggested = rest
            break
    assert suggested, text
    p2 = proxy(allow=[suggested])
    r2 = curl(p2, "http://origin.test/echo", "--data-binary", "hello")
    assert r2.status == 200 and r2.body == b"hello", (suggested, r2)


def test_denied_head_has_no_body_and_keeps_connection(proxy, origins):
    p = proxy(allow=["domain=origin.test method=GET"])
    with connect(p) as c:
        h = c.request("HEAD", "http://origin.test/", "origin.test")
        assert h.status == 403 and h.header("X-Landjail-Decision") == "deny", h
        g = c.request("GET", "http://origin.test/", "origin.test")  # parses only if no body
        assert g.status == 200 and g.body == om.HELLO, g
    assert [x["method"] for x in origins.received()] == ["GET"]


def test_denied_request_body_not_taken_as_next_request(proxy, origins):
    """A denied POST's body must be consumed (or the connection closed), never parsed as a
    request of its own."""
    p = proxy(allow=["domain=origin.test method=GET"])
    hidden = b"GET http://origin.test/path-echo/from-body HTTP/1.1\r\nHost: origin.test\r\n\r\n"
    with connect(p) as c:
        d = c.request("POST", "http://origin.test/echo", "origin.test", body=hidden)
        assert d.status == 403, d
        if "close" in (d.header("Connection") or "").lower():
            assert c.closed_by_peer(10)
        else:
            g = c.request("GET", "http://origin.test/path-echo/next", "origin.test")
            assert g.status == 200 and g.body == b"/path-echo/next", g
    assert origins.received("/path-echo/from-body") == []


def test_deny_on_stderr(proxy, origins):
    p = proxy(allow=["domain=origin.test method=GET"])
    r = curl(p, "http://origin.test/path-echo/denied", "-X", "POST")
    assert r.status == 403
    p.stop()
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("landjail_request decision=deny")]
    assert len(lines) == 1, p.stderr
    assert "http_method=POST" in lines[0] and "origin.test/path-echo/denied" in lines[0], lines


def test_deny_rule_wins_over_allow(proxy, origins):
    p = proxy(allow=["domain=origin.test"], deny=["domain=origin.test path=/path-echo/secret"])
    assert curl(p, "https://origin.test/path-echo/public").body == b"/path-echo/public"
    r = curl(p, "https://origin.test/path-echo/secret")
    assert r.status == 403 and r.header("X-Landjail-Decision") == "deny", r
    assert [x["target"] for x in origins.received()] == ["/path-echo/public"]
    d = denies(p.audit(1, where=lambda x: x["decision"] == "deny"))
    assert d[0]["reason"] == "deny_rule_matched"
    assert d[0]["matched_rule"] == "domain=origin.test path=/path-echo/secret"


# ---- 502 / 504 -------------------------------------------------------------------------------


def _error_via(p, scheme, host, target="/"):
    """The proxy's answer for a request to host, as (status, body): over plain HTTP, or over
    CONNECT (the proxy may refuse the CONNECT itself, or accept it and answer inside)."""
    if scheme == "http":
        with connect(p) as c:
            r = c.request("GET", "http://%s%s" % (host, target), host)
            return r.status, r.body.decode(errors="replace")
    c, r = tunnel(p, host, 443)
    if r.status != 200:
        c.close()
        return r.status, r.body.decode(errors="replace")
    with start_tls(c, p, host) as t:
        r = t.request("GET", target, host)
        return r.status, r.body.decode(errors="replace")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_502_connect_refused(proxy, origins, scheme):
    p = proxy(allow=["domain=closed.test"])
    status, body = _error_via(p, scheme, "closed.test")
    assert status == 502, body
    assert "connect" in body.lower(), body


@pytest.mark.parametrize("host", ["wrong.test", "untrusted.test"])
def test_502_upstream_certificate_rejected(proxy, origins, host):
    """wrong.test serves a certificate for another name; untrusted.test one from a CA nobody
    trusts. Both: 502 naming TLS, and the request never reaches the origin."""
    p = proxy(allow=["domain=" + host])
    status, body = _error_via(p, "https", host, "/path-echo/must-not-arrive")
    assert status == 502, body
    assert "tls" in body.lower(), body
    assert origins.received() == []


def test_502_without_upstream_ca(proxy, origins):
    """The origin's CA is not in the system store: without --upstream-ca it is not trusted."""
    p = proxy(upstream_ca=False)
    status, body = _error_via(p, "https", "origin.test", "/path-echo/must-not-arrive")
    assert status == 502 and "tls" in body.lower(), body
    assert origins.received() == []


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_504_upstream_slow_headers(proxy, origins, scheme):
    p = proxy(args=["--upstream-timeout", "1"])
    t = time.monotonic()
    status, body = _error_via(p, scheme, "origin.test", "/slow-headers?delay=5")
    elapsed = time.monotonic() - t
    assert status == 504, body
    assert elapsed < 4.5, "504 after %.1fs, the origin answers at 5s" % elapsed
    assert len(origins.received("/slow-headers")) == 1
    # and the proxy goes on serving
    assert curl(p, "%s://origin.test/" % scheme).body == om.HELLO


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_504_upstream_never_answers(proxy, origins, scheme):
    """slow.test accepts TCP connections and never says a word (no HTTP answer, no TLS
    handshake)."""
    p = proxy(allow=["domain=slow.test"], args=["--upstream-timeout", "1"])
    t = time.monotonic()
    status, body = _error_via(p, scheme, "slow.test")
    assert status == 504, body
    assert time.monotonic() - t < 8


# ---- 400: malformed requests and request smuggling shapes -------------------------------------

SMUGGLING = {
    "content-length-and-transfer-encoding":
        b"POST http://origin.test/echo HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-different-content-lengths":
        b"POST http://origin.test/echo HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 4\r\n"
        b"Content-Length: 5\r\n\r\nabcde",
    "absolute-uri-host-differs-from-host-header":
        b"GET http://origin.test/path-echo/x HTTP/1.1\r\nHost: other.test\r\n\r\n",
    "userinfo-in-url":
        b"GET http://user:pass@origin.test/path-echo/x HTTP/1.1\r\nHost: origin.test\r\n\r\n",
    "userinfo-spoofing-host":
        b"GET http://other.test@origin.test/path-echo/x HTTP/1.1\r\nHost: origin.test\r\n\r\n",
}
MALFORMED = {
    "garbage-request-line": b"THIS IS NOT HTTP\r\n\r\n",
    "content-length-not-a-number":
        b"POST http://origin.test/echo HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 4x\r\n\r\nabcd",
    "negative-content-length":
        b"POST http://origin.test/echo HTTP/1.1\r\nHost: origin.test\r\nContent-Length: -1\r\n\r\n",
    "space-before-colon":
        b"POST http://origin.test/echo HTTP/1.1\r\nHost: origin.test\r\nContent-Length : 4\r\n\r\nabcd",
    "two-host-headers":
        b"GET http://origin.test/path-echo/x HTTP/1.1\r\nHost: origin.test\r\nHost: other.test\r\n\r\n",
}


# Shapes after which the proxy cannot know where the next request starts: it must close.
FRAMING = {"content-length-and-transfer-encoding", "two-different-content-lengths",
           "garbage-request-line", "content-length-not-a-number", "negative-content-length",
           "space-before-colon"}


@pytest.mark.parametrize("name,raw", list(SMUGGLING.items()) + list(MALFORMED.items()),
                         ids=list(SMUGGLING) + list(MALFORMED))
def test_400_plain(proxy, origins, name, raw):
    p = proxy(allow=["domain=origin.test", "domain=other.test"])
    with connect(p) as c:
        c.send(raw)
        r = c.response()
        assert r.status == 400, r
        if name in FRAMING:
            # It cannot tell where the next request would start: it must not read on.
            assert c.closed_by_peer(10), "connection left open after a framing error"
    assert origins.received() == [], "a malformed request reached the origin"
    assert p.alive()


def test_bad_chunk_size_aborts_request(proxy, origins):
    """A body that cannot be framed is found while streaming: the origin may have seen the
    request head, but must never see it as a complete request, and the client connection
    ends (after a 400 when no response had started)."""
    p = proxy()
    with connect(p) as c:
        c.send(b"POST http://origin.test/echo HTTP/1.1\r\nHost: origin.test\r\n"
               b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n")
        try:
            r = c.response()
        except (EOFError, ConnectionResetError):
            r = None
        assert r is None or r.status == 400, r
        assert c.closed_by_peer(10)
    origins.wait_for(lambda rs: all(x["body_complete"] is False for x in rs), timeout=10,
                     what="no complete request at the origin")
    assert p.alive()


TUNNEL_SMUGGLING = {
    "content-length-and-transfer-encoding":
        b"POST /echo HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-different-content-lengths":
        b"POST /echo HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 4\r\n"
        b"Content-Length: 5\r\n\r\nabcde",
    "garbage-request-line": b"THIS IS NOT HTTP\r\n\r\n",
}


@pytest.mark.parametrize("raw", list(TUNNEL_SMUGGLING.values()), ids=list(TUNNEL_SMUGGLING))
def test_400_inside_tunnel(proxy, origins, raw):
    p = proxy()
    with tls_tunnel(p, "origin.test") as c:
        c.send(raw)
        r = c.response()
        assert r.status == 400, r
    assert origins.received() == []


def test_smuggled_second_request_never_forwarded(proxy, origins):
    """The classic CL.TE shape: a second request hidden in the body must not reach the origin
    as a request of its own."""
    p = proxy(allow=["domain=origin.test"])
    hidden = b"GET /path-echo/smuggled HTTP/1.1\r\nHost: origin.test\r\n\r\n"
    body = b"0\r\n\r\n" + hidden
    with connect(p) as c:
        c.send(b"POST http://origin.test/echo HTTP/1.1\r\nHost: origin.test\r\n"
               b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body) + body)
        r = c.response()
        assert r.status == 400, r
    assert origins.received("/path-echo/smuggled") == []


# ---- 431 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["one-big-header", "many-headers"])
def test_431_headers_over_64k(proxy, origins, shape):
    p = proxy()
    if shape == "one-big-header":
        extra = b"X-Big: " + b"a" * (70 * 1024) + b"\r\n"
    else:
        extra = b"".join(b"X-Many-%03d: %s\r\n" % (i, b"b" * 1000) for i in range(70))
    with connect(p) as c:
        c.send(b"GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n" + extra + b"\r\n")
        r = c.response()
        assert r.status == 431, r
    assert origins.received() == []
    assert curl(p, "http://origin.test/").body == om.HELLO


def test_headers_under_64k_pass(proxy, origins):
    p = proxy()
    value = "v" * (60 * 1024)
    with connect(p) as c:
        r = c.request("GET", "http://origin.test/inspect", "origin.test", headers=[("X-Big", value)])
        assert r.status == 200, r
    assert origins.received("/inspect")[0].header("X-Big") == value


# ---- start-up refusals -----------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["domain=origin.test:443", "domain=origin.test bogus=1",
                                  "method=GET method=POST", ""])
def test_bad_rule_refuses_to_start(proxy, rule):
    rc, err, ready = proxy.run_expecting_failure(["--allow", rule])
    assert rc != 0 and ready == b"", (rc, err)
    if rule:
        assert rule in err, err


def test_bad_config_refuses_to_start(proxy, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("allowlist:\n  - domain=origin.test\nno_such_key: 1\n")
    rc, err, ready = proxy.run_expecting_failure(["--config", str(cfg)])
    assert rc != 0 and ready == b"", (rc, err)
    assert "no_such_key" in err and str(cfg) in err, err
    assert "%s:3" % cfg in err, "the error should name file:line: %s" % err


def test_missing_config_refuses_to_start(proxy, tmp_path):
    rc, err, ready = proxy.run_expecting_failure(["--config", str(tmp_path / "absent.yaml")])
    assert rc != 0 and ready == b"" and "absent.yaml" in err, (rc, err)


def test_connect_refused_by_deny_rule_names_it(proxy, origins):
    p = proxy(allow=["domain=origin.test"], deny=["domain=origin.test"],
              config="tls:\n  intercept_denied: false\n")
    r = curl(p, "https://origin.test/path-echo/x")
    assert r.connect_status == 403, r
    assert origins.received() == []
    d = denies(p.audit(1, where=lambda x: x["decision"] == "deny"))
    assert d[0]["http_method"] == "CONNECT"
    assert d[0]["reason"] == "deny_rule_matched"
    assert d[0]["matched_rule"] == "domain=origin.test"


def test_intercepted_request_refused_by_deny_rule_names_it(proxy, origins):
    p = proxy(allow=["domain=origin.test"], deny=["domain=origin.test"])
    r = curl(p, "https://origin.test/path-echo/x")
    assert r.connect_status == 200 and r.status == 403, r
    assert b"domain=origin.test" in r.body, r
    assert origins.received() == []
    d = denies(p.audit(1, where=lambda x: x["decision"] == "deny"))
    assert (d[0]["http_method"], d[0]["http_url"]) == ("GET", "https://origin.test/path-echo/x")
    assert d[0]["reason"] == "deny_rule_matched"
    assert d[0]["matched_rule"] == "domain=origin.test"


def test_denial_lines_follow_the_log_level(proxy, origins):
    quiet = proxy(allow=["domain=origin.test method=GET"], args=["--log-level", "error"])
    assert curl(quiet, "http://origin.test/path-echo/x", "-X", "POST").status == 403
    assert len(denies(quiet.audit(1))) == 1  # the audit still has it
    quiet.stop()
    assert "landjail_request decision=deny" not in quiet.stderr
    loud = proxy(allow=["domain=origin.test method=GET"])
    assert curl(loud, "http://origin.test/path-echo/x", "-X", "POST").status == 403
    loud.audit(1)
    loud.stop()
    assert "landjail_request decision=deny" in loud.stderr


def test_second_proxy_cannot_share_the_port(proxy):
    """No SO_REUSEPORT: another process (of the same user) cannot join the proxy's port and
    take some of its connections."""
    first = proxy()
    rc, err, ready = proxy.run_expecting_failure(["--listen", "127.0.0.1:%d" % first.port])
    assert rc != 0 and ready == b"", (rc, err)
    assert "cannot listen" in err and "in use" in err, err
