"""landjail-proxy inside Coder (issue 15 items 2 and 3), judged by what the origin received and
what the trail (and the fake Coder agent) recorded:

- session correlation: an allowed request that matches a target gets the session id and the
  sequence number of its own audit event in two headers, replacing the client's, in plain
  HTTP and inside intercepted TLS; other requests are left alone;
- a denied HTTPS tunnel (no rule can allow the host) is intercepted: each request inside gets
  a 403 and is audited with its method and full URL; nothing reaches the origin; a tunnel that
  ends before a request is audited as its CONNECT refusal; tls.intercept_denied: false and
  ports other than 443 keep the refusal at CONNECT."""

from __future__ import annotations

import socket
import ssl

import pytest

from clients import connect, tls_tunnel, tunnel
from coder_agent import FakeAgent

SESSION = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
SESSION_H = "X-Coder-Agent-Firewall-Session-Id"
SEQ_H = "X-Coder-Agent-Firewall-Sequence-Number"
SCHEMES = ["http", "https"]


def conn_for(p, scheme, host="origin.test"):
    if scheme == "http":
        return connect(p), "http://%s" % host
    return tls_tunnel(p, host), ""


def correlated(proxy, extra=""):
    return proxy(allow=("domain=origin.test",),
                 args=["--session-id", SESSION],
                 config="session_correlation_enabled: true\n"
                        "session_id_inject_targets:\n"
                        "  - 'domain=origin.test method=GET path=/inspect/gw/*'\n" + extra)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_correlation_headers_name_the_event(proxy, origins, scheme):
    p = correlated(proxy)
    c, base = conn_for(p, scheme)
    with c:
        spoof = [(SESSION_H, "forged"), (SEQ_H, "999")]
        for target in ("/inspect/other", "/inspect/gw/a", "/inspect/gw/b"):
            r = c.request("POST", base + target, "origin.test", headers=spoof, body=b"x")
            assert r.status == 200, r
    p.stop()
    got = {rec["path"]: rec for rec in origins.received("/inspect")}
    trail = {e["http_url"].split("origin.test", 1)[1]: e for e in p.audit()
             if e["event"] == "http_request" and e["http_method"] == "POST"}
    for target in ("/inspect/gw/a", "/inspect/gw/b"):
        rec = got[target]
        # Exactly one of each, the proxy's (a method= in the target is ignored).
        assert [k for k, _ in rec["headers"]].count(SESSION_H) == 1, rec["headers"]
        assert rec.header(SESSION_H) == SESSION, rec["headers"]
        assert int(rec.header(SEQ_H)) == trail[target]["sequence_number"], (rec, trail)
    # Not a target: the client's headers go through untouched, as any other header.
    assert got["/inspect/other"].header(SESSION_H) == "forged"
    seqs = sorted(e["sequence_number"] for e in p.audit() if e["event"] == "http_request")
    assert seqs == list(range(len(seqs))), seqs


def test_correlation_off_adds_nothing(proxy, origins):
    p = proxy(allow=("domain=origin.test",))
    c, base = conn_for(p, "http")
    with c:
        assert c.request("GET", base + "/inspect/gw/a", "origin.test").status == 200
    rec = origins.received("/inspect")[0]
    assert rec.header(SESSION_H) is None and rec.header(SEQ_H) is None
    p.stop()
    assert all("sequence_number" not in e for e in p.audit())


def test_correlation_without_target_is_refused(proxy):
    rc, err, ready = proxy.run_expecting_failure(
        ["--enable-session-correlation", "--allow", "domain=origin.test"])
    assert rc != 0 and ready == b"", err
    assert "--enable-session-correlation: session correlation needs a target" in err, err


# ---- denied HTTPS tunnels ---------------------------------------------------------------------


def denied_requests(p):
    return [e for e in p.audit() if e["event"] == "http_request" and e["decision"] == "deny"]


def test_denied_tunnel_is_intercepted_and_each_request_audited(proxy, origins, tmp_path):
    agent = FakeAgent(tmp_path / "agent.sock")
    try:
        p = proxy(allow=("domain=other.test",),
                  args=["--log-proxy-socket-path", agent.path, "--session-id", SESSION])
        with tls_tunnel(p, "origin.test") as c:
            r = c.request("POST", "/api/event_logging/v2/batch?x=1", "origin.test", body=b"{}")
            assert r.status == 403, r
            assert r.header("X-Landjail-Decision") == "deny", r
        with tls_tunnel(p, "origin.test") as c:
            r = c.request("GET", "/second", "origin.test")
            assert r.status == 403, r
        p.stop()
        assert origins.received() == [], "the origin was reached"
        urls = [(e["http_method"], e["http_url"]) for e in denied_requests(p)]
        assert urls == [("POST", "https://origin.test/api/event_logging/v2/batch?x=1"),
                        ("GET", "https://origin.test/second")], urls
        assert all(e["http_method"] != "CONNECT" for e in p.audit()
                   if e["event"] == "http_request"), p.audit()
        logs = agent.wait_logs(2)
        assert [(x["method"], x["url"], x["allowed"]) for x in logs] == [
            ("POST", "https://origin.test/api/event_logging/v2/batch?x=1", False),
            ("GET", "https://origin.test/second", False)]
    finally:
        agent.stop()


def test_denied_tunnel_is_never_resolved(proxy, origins):
    """A name that --resolve does not map and DNS cannot know: intercepted all the same."""
    p = proxy(allow=("domain=other.test",))
    with tls_tunnel(p, "nowhere.invalid") as c:
        r = c.request("GET", "/x", "nowhere.invalid")
        assert r.status == 403, r
        assert b"nowhere.invalid" in r.body
    p.stop()
    assert [e["http_url"] for e in denied_requests(p)] == ["https://nowhere.invalid/x"]


def test_tunnel_without_request_is_audited_as_connect(proxy, origins):
    p = proxy(allow=("domain=other.test",))
    c, r = tunnel(p, "origin.test")
    assert r.status == 200, r
    # A client that does not trust the proxy's CA gives up in the handshake.
    ctx = ssl.create_default_context()  # the system store only
    with pytest.raises(ssl.SSLError):
        ctx.wrap_socket(c.sock, server_hostname="origin.test")
    c.close()
    c2, r2 = tunnel(p, "origin.test")  # and one that sends nothing at all
    assert r2.status == 200
    c2.sock.shutdown(socket.SHUT_WR)
    c2.close()
    p.stop()
    events = [e for e in p.audit() if e["event"] == "http_request"]
    assert len(events) == 2, events
    for e in events:
        assert e["http_method"] == "CONNECT" and e["decision"] == "deny", e
        assert e["http_url"] == "origin.test:443" and e["outcome"] == "no_request", e
        assert "status" not in e, e


def test_old_behaviour_and_other_ports_refuse_at_connect(proxy, origins):
    p = proxy(allow=("domain=other.test",), config="tls:\n  intercept_denied: false\n")
    c, r = tunnel(p, "origin.test")
    c.close()
    assert r.status == 403, r
    p2 = proxy(allow=("domain=other.test",))
    c, r = tunnel(p2, "origin.test", 8443)
    c.close()
    assert r.status == 403, r
    for q in (p, p2):
        q.stop()
        e = [x for x in q.audit() if x["event"] == "http_request"]
        assert len(e) == 1 and e[0]["http_method"] == "CONNECT" and e[0]["status"] == 403, e


def test_plain_http_in_a_denied_tunnel_is_denied_per_request(proxy, origins):
    p = proxy(allow=("domain=other.test",))
    c, r = tunnel(p, "origin.test")
    with c:
        assert r.status == 200
        r = c.request("GET", "/plain", "origin.test:443")
        assert r.status == 403, r
    p.stop()
    assert origins.received() == []
    assert [e["http_url"] for e in denied_requests(p)] == ["http://origin.test:443/plain"]


def test_allowed_tunnel_unchanged(proxy, origins):
    p = proxy(allow=("domain=origin.test",))
    with tls_tunnel(p, "origin.test") as c:
        assert c.request("GET", "/", "origin.test").status == 200
    p.stop()
    assert len(origins.received()) == 1
